//! Awarding and revoking badges: one code path for the Reader, bulk awards and the
//! command line. An award stores the Assertion with both baked images in one transaction;
//! a second award of the same Task's badge to the same address is refused.

use diesel::prelude::*;
use rand::RngCore;

use super::art::{self, ArtKind};
use super::bake::{self, RasterCache};
use super::ob;
use crate::db::awards::{self, Award};
use crate::db::courses::{self, Task};
use crate::db::schema::{authors, awards as awards_t, links};
use crate::db::{StoreError, StoreResult, write_tx};
use crate::domain::Email;

/// What issuing needs besides the database.
pub struct Issuer<'a> {
    /// Public base URL, no trailing slash.
    pub base: &'a str,
    pub raster: &'a RasterCache,
    /// The institution's key: every award and revocation is signed into the chain's pool.
    pub signer: &'a cairn_chain::SigningKey,
}

/// A request to award a Task's badge.
#[derive(Debug, Clone, Default)]
pub struct AwardRequest {
    pub task_id: i64,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub evidence_url: Option<String>,
    pub narrative: Option<String>,
    pub link_id: Option<i64>,
    pub author_id: Option<i64>,
    pub awarded_by: Option<i64>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The Task's artwork as (SVG text if it is an SVG design, PNG bytes).
fn artwork(conn: &mut SqliteConnection, issuer: &Issuer, task: &Task) -> StoreResult<(Option<String>, Vec<u8>)> {
    let uploaded = courses::task_artwork(conn, task.id)?;
    let svg = match &uploaded {
        Some((bytes, mime)) if ArtKind::from_mime(mime) == Some(ArtKind::Png) => return Ok((None, bytes.clone())),
        Some((bytes, _)) => String::from_utf8_lossy(bytes).into_owned(),
        None => {
            let course =
                courses::places_of_task(conn, task.id)?.into_iter().next().map(|(c, _)| c.title).unwrap_or_default();
            art::default_svg(&task.title, &course, &task.hashtag)
        }
    };
    let png = issuer.raster.get_or_render((task.id, task.updated_at), svg.as_bytes()).map_err(|e| {
        StoreError::Internal(anyhow::anyhow!("the badge image of {} cannot be drawn: {e}", task.hashtag))
    })?;
    Ok((Some(svg), png.as_ref().clone()))
}

/// A baking failure is ours, never the client's.
fn baking(e: String) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("baking the badge image failed: {e}"))
}

/// Awards a badge. Refuses a second award of the same Task to the same address.
pub fn award(conn: &mut SqliteConnection, issuer: &Issuer, req: &AwardRequest) -> StoreResult<Award> {
    let email = Email::parse(&req.recipient_email).map_err(|e| StoreError::field("recipient", e))?;
    if let Some(url) = &req.evidence_url {
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(StoreError::field("evidence", format!("'{url}' is not a web address")));
        }
    }
    let task = courses::get_task(conn, req.task_id)?;
    let (svg, png) = artwork(conn, issuer, &task)?;
    write_tx(conn, |conn| {
        if let Some(prev) = awards::existing(conn, task.id, email.as_str())? {
            let when = chrono::DateTime::from_timestamp(prev.issued_on, 0).unwrap_or_default().format("%Y-%m-%d");
            return Err(StoreError::Conflict(format!(
                "This learner already has the badge for {} (awarded {when}); it was not awarded twice.",
                task.hashtag
            )));
        }
        let public_id = random_hex(16);
        let salt = random_hex(16);
        let identity = ob::identity_hash(email.as_str(), &salt);
        let issued_on = crate::db::now();
        let expires = task.expires_days.map(|d| issued_on + d * 86_400);
        let badge_class = ob::badge_class_url(issuer.base, &task);
        let doc = ob::assertion(&ob::AssertionParts {
            base: issuer.base,
            public_id: &public_id,
            badge_class: &badge_class,
            salt: &salt,
            identity: &identity,
            issued_on,
            expires,
            evidence_url: req.evidence_url.as_deref(),
            narrative: req.narrative.as_deref(),
            revoked: None,
        });
        let json = doc.to_string();
        let url = ob::assertion_url(issuer.base, &public_id);
        let baked_png = bake::bake_png(&png, &json).map_err(baking)?;
        let baked_svg = match &svg {
            Some(s) => bake::bake_svg(s, &url, &json).map_err(baking)?,
            // A PNG design: wrap it in an SVG so both baked forms exist.
            None => bake::bake_svg(&png_in_svg(&png), &url, &json).map_err(baking)?,
        };
        diesel::insert_into(awards_t::table)
            .values((
                awards_t::public_id.eq(&public_id),
                awards_t::task_id.eq(task.id),
                awards_t::link_id.eq(req.link_id),
                awards_t::author_id.eq(req.author_id),
                awards_t::recipient_email.eq(email.as_str()),
                awards_t::recipient_name.eq(&req.recipient_name),
                awards_t::salt.eq(&salt),
                awards_t::identity.eq(&identity),
                awards_t::evidence_url.eq(&req.evidence_url),
                awards_t::narrative.eq(&req.narrative),
                awards_t::issued_on.eq(issued_on),
                awards_t::expires.eq(expires),
                awards_t::awarded_by.eq(req.awarded_by),
                awards_t::assertion_json.eq(&json),
                awards_t::baked_svg.eq(baked_svg.as_bytes()),
                awards_t::baked_png.eq(&baked_png),
            ))
            .execute(conn)?;
        let award = awards::by_public_id(conn, &public_id)?;
        // The chain record enters the pool in the same transaction: no award without it.
        let fields = crate::ledger::fields_for(
            cairn_chain::RecordKind::Award,
            issuer.base,
            &url,
            &badge_class,
            &identity,
            req.evidence_url.as_deref(),
            issued_on,
        );
        crate::ledger::pool_record(conn, issuer.signer, fields, Some(award.id))?;
        // The learner hears of it without the award waiting: queued in the same transaction.
        crate::notify::enqueue(conn, award.id, &url, req.evidence_url.as_deref(), true)?;
        Ok(award)
    })
}

/// An SVG that shows a PNG design (so a PNG badge can also be baked as SVG).
fn png_in_svg(png: &[u8]) -> String {
    use base64::Engine as _;
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png)
        .into_dimensions()
        .unwrap_or((400, 400));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><image width=\"{w}\" height=\"{h}\" href=\"data:image/png;base64,{}\"/></svg>",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Awards the badge of `task_id` for a harvested post, to the post's author.
pub fn award_link(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    link_id: i64,
    task_id: i64,
    narrative: Option<String>,
    by: Option<i64>,
) -> StoreResult<Award> {
    let (url, author_id, name, email): (Option<String>, i64, String, Option<String>) = links::table
        .inner_join(authors::table)
        .filter(links::id.eq(link_id))
        .select((links::url, authors::id, authors::name, authors::email))
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("link"))?;
    let email = email.ok_or_else(|| {
        StoreError::Conflict(format!(
            "{name} has no email address on file, so no badge can be issued to them; add one on the Feeds page."
        ))
    })?;
    award(
        conn,
        issuer,
        &AwardRequest {
            task_id,
            recipient_email: email,
            recipient_name: Some(name),
            evidence_url: url,
            narrative: narrative.filter(|n| !n.trim().is_empty()),
            link_id: Some(link_id),
            author_id: Some(author_id),
            awarded_by: by,
        },
    )
}

/// Revokes an award with a reason; a revocation record enters the chain's pool.
pub fn revoke(conn: &mut SqliteConnection, issuer: &Issuer, public_id: &str, reason: &str) -> StoreResult<Award> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(StoreError::field("reason", "give a reason for the revocation"));
    }
    write_tx(conn, |conn| {
        let a = awards::by_public_id(conn, public_id)?;
        if a.is_revoked() {
            return Err(StoreError::Conflict("This award was already revoked.".into()));
        }
        let now = crate::db::now();
        diesel::update(awards_t::table.find(a.id))
            .set((awards_t::revoked_at.eq(now), awards_t::revocation_reason.eq(reason)))
            .execute(conn)?;
        let task = courses::get_task(conn, a.task_id)?;
        let fields = crate::ledger::fields_for(
            cairn_chain::RecordKind::Revocation,
            issuer.base,
            &ob::assertion_url(issuer.base, &a.public_id),
            &ob::badge_class_url(issuer.base, &task),
            &a.identity,
            a.evidence_url.as_deref(),
            now,
        );
        crate::ledger::pool_record(conn, issuer.signer, fields, Some(a.id))?;
        // The Webmention is sent again so the learner's site sees the page now says revoked.
        crate::notify::enqueue(
            conn,
            a.id,
            &ob::assertion_url(issuer.base, &a.public_id),
            a.evidence_url.as_deref(),
            false,
        )?;
        awards::by_public_id(conn, public_id)
    })
}

/// The Assertion document as served now (revocation included).
pub fn assertion_document(base: &str, a: &Award, task: &Task) -> serde_json::Value {
    let badge_class = ob::badge_class_url(base, task);
    ob::assertion(&ob::AssertionParts {
        base,
        public_id: &a.public_id,
        badge_class: &badge_class,
        salt: &a.salt,
        identity: &a.identity,
        issued_on: a.issued_on,
        expires: a.expires,
        evidence_url: a.evidence_url.as_deref(),
        narrative: a.narrative.as_deref(),
        revoked: a.revocation_reason.as_deref().filter(|_| a.is_revoked()),
    })
}

/// The public id from an assertion URL (or the id itself).
pub fn public_id_of(url_or_id: &str) -> String {
    let t = url_or_id.trim().trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t).to_string()
}
