//! An award's badge: the Task's artwork, a new Assertion baked into it (PNG and SVG), and
//! the Assertion as served later. The rules of awarding and revoking are `app::award`'s.

use diesel::SqliteConnection;
use rand::RngCore;

use super::art::{self, ArtKind};
use super::bake::{self, RasterCache};
use super::ob;
use crate::db::StoreError;
use crate::db::StoreResult;
use crate::db::awards::Award;
use crate::db::courses::{self, Task};

/// What issuing needs besides the database.
pub struct Issuer<'a> {
    /// Public base URL, no trailing slash.
    pub base: &'a str,
    pub raster: &'a RasterCache,
    /// The institution's key: every award and revocation is signed into the chain's pool.
    pub signer: &'a cairn_chain::SigningKey,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The Task's artwork as (SVG text if it is an SVG design, PNG bytes).
pub fn artwork(conn: &mut SqliteConnection, issuer: &Issuer, task: &Task) -> StoreResult<(Option<String>, Vec<u8>)> {
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

/// An award's documents, made before it is stored.
pub struct Baked {
    pub public_id: String,
    pub salt: String,
    /// The recipient's hashed identity.
    pub identity: String,
    pub badge_class: String,
    /// The Assertion's URL.
    pub url: String,
    /// The Assertion as JSON-LD.
    pub json: String,
    pub baked_png: Vec<u8>,
    pub baked_svg: String,
}

/// What an Assertion says beyond its Task and recipient.
pub struct Claim<'a> {
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub evidence_url: Option<&'a str>,
    pub narrative: Option<&'a str>,
}

/// Makes a new Assertion for `email` and bakes it into both forms of the Task's artwork
/// (`art` from [`artwork`]); a fresh public id and salt each time.
pub fn bake_new(
    issuer: &Issuer,
    task: &Task,
    (svg, png): &(Option<String>, Vec<u8>),
    email: &str,
    claim: &Claim,
) -> StoreResult<Baked> {
    let public_id = random_hex(16);
    let salt = random_hex(16);
    let identity = ob::identity_hash(email, &salt);
    let badge_class = ob::badge_class_url(issuer.base, task);
    let doc = ob::assertion(&ob::AssertionParts {
        base: issuer.base,
        public_id: &public_id,
        badge_class: &badge_class,
        salt: &salt,
        identity: &identity,
        issued_on: claim.issued_on,
        expires: claim.expires,
        evidence_url: claim.evidence_url,
        narrative: claim.narrative,
        revoked: None,
    });
    let json = doc.to_string();
    let url = ob::assertion_url(issuer.base, &public_id);
    let baked_png = bake::bake_png(png, &json).map_err(baking)?;
    let baked_svg = match svg {
        Some(s) => bake::bake_svg(s, &url, &json).map_err(baking)?,
        // A PNG design: wrap it in an SVG so both baked forms exist.
        None => bake::bake_svg(&png_in_svg(png), &url, &json).map_err(baking)?,
    };
    Ok(Baked { public_id, salt, identity, badge_class, url, json, baked_png, baked_svg })
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
