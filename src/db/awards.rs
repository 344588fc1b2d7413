//! Stored awards (Open Badges Assertions).

use diesel::prelude::*;

use super::schema::{award_art, awards, tasks};
use super::{OptionalExt, StoreResult};

super::stored::stored_enum! {
    /// An award's standing, as the API's `state` filter names it.
    pub enum AwardState {
        /// Neither revoked nor expired.
        Valid = "valid",
        Revoked = "revoked",
        Expired = "expired",
    }
}

/// An award without its baked images.

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = awards)]
pub struct Award {
    pub id: i64,
    pub public_id: String,
    pub task_id: i64,
    pub link_id: Option<i64>,
    pub author_id: Option<i64>,
    #[serde(skip)]
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub salt: String,
    pub identity: String,
    pub evidence_url: Option<String>,
    pub narrative: Option<String>,
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub awarded_by: Option<i64>,
    /// When the learner was forgotten: the award then names nobody and its URL answers 410.
    pub withdrawn_at: Option<i64>,
}

impl Award {
    /// Where the award stands at `now`: revoked, expired or valid.
    pub fn state_at(&self, now: i64) -> AwardState {
        if self.is_revoked() {
            AwardState::Revoked
        } else if self.is_expired(now) {
            AwardState::Expired
        } else {
            AwardState::Valid
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn_at.is_some()
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e < now)
    }
}

/// What a new award row holds.
pub struct NewAward<'a> {
    pub public_id: &'a str,
    pub task_id: i64,
    pub link_id: Option<i64>,
    pub author_id: Option<i64>,
    pub recipient_email: &'a str,
    pub recipient_name: Option<&'a str>,
    pub salt: &'a str,
    pub identity: &'a str,
    pub evidence_url: Option<&'a str>,
    pub narrative: Option<&'a str>,
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub awarded_by: Option<i64>,
    pub assertion_json: &'a str,
    /// The artwork its images are baked from (see [`ensure_art`]).
    pub art_sha256: &'a str,
}

/// Stores a new award and returns it.
pub fn insert(conn: &mut SqliteConnection, a: &NewAward) -> StoreResult<Award> {
    diesel::insert_into(awards::table)
        .values((
            awards::public_id.eq(a.public_id),
            awards::task_id.eq(a.task_id),
            awards::link_id.eq(a.link_id),
            awards::author_id.eq(a.author_id),
            awards::recipient_email.eq(a.recipient_email),
            awards::recipient_name.eq(a.recipient_name),
            awards::salt.eq(a.salt),
            awards::identity.eq(a.identity),
            awards::evidence_url.eq(a.evidence_url),
            awards::narrative.eq(a.narrative),
            awards::issued_on.eq(a.issued_on),
            awards::expires.eq(a.expires),
            awards::awarded_by.eq(a.awarded_by),
            awards::assertion_json.eq(a.assertion_json),
            awards::baked_svg.eq(&[][..]),
            awards::baked_png.eq(&[][..]),
            awards::art_sha256.eq(a.art_sha256),
        ))
        .returning(Award::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

/// Marks an award revoked at `at` with `reason`.
pub fn set_revoked(conn: &mut SqliteConnection, id: i64, at: i64, reason: &str) -> StoreResult<()> {
    diesel::update(awards::table.find(id))
        .set((awards::revoked_at.eq(at), awards::revocation_reason.eq(reason)))
        .execute(conn)?;
    Ok(())
}

pub fn by_public_id(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<Award> {
    awards::table.filter(awards::public_id.eq(public_id)).select(Award::as_select()).first(conn).found("award")
}

/// Stores a badge design once, under the SHA-256 (hex) of its SVG and PNG forms.
pub fn ensure_art(conn: &mut SqliteConnection, sha256: &str, svg: &[u8], png: &[u8], now: i64) -> StoreResult<()> {
    // Nearly always stored already: look before binding tens of kilobytes that SQLite copies.
    let stored = award_art::table.find(sha256).select(award_art::sha256).first::<String>(conn).optional()?;
    if stored.is_some() {
        return Ok(());
    }
    diesel::insert_or_ignore_into(award_art::table)
        .values((
            award_art::sha256.eq(sha256),
            award_art::svg.eq(svg),
            award_art::png.eq(png),
            award_art::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the badge designs no award names any more.
pub fn delete_unused_art(conn: &mut SqliteConnection) -> StoreResult<usize> {
    let used = awards::table.filter(awards::art_sha256.is_not_null()).select(awards::art_sha256.assume_not_null());
    Ok(diesel::delete(award_art::table.filter(award_art::sha256.ne_all(used))).execute(conn)?)
}

/// An award's images as stored: baked whole (older awards), or the design they are baked
/// from with the Assertion.
#[derive(Debug, Clone, Default)]
pub struct StoredImages {
    pub baked_svg: Vec<u8>,
    pub baked_png: Vec<u8>,
    /// The design's (SVG, PNG).
    pub art: Option<(Vec<u8>, Vec<u8>)>,
    pub assertion_json: String,
}

/// The stored images of an award.
pub fn images(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<StoredImages> {
    type Row = (Vec<u8>, Vec<u8>, String, Option<Vec<u8>>, Option<Vec<u8>>);
    let (baked_svg, baked_png, assertion_json, svg, png): Row = awards::table
        .left_join(award_art::table)
        .filter(awards::public_id.eq(public_id))
        .select((
            awards::baked_svg,
            awards::baked_png,
            awards::assertion_json,
            award_art::svg.nullable(),
            award_art::png.nullable(),
        ))
        .first(conn)
        .found("award")?;
    Ok(StoredImages { baked_svg, baked_png, art: svg.zip(png), assertion_json })
}

/// The standing award of `task_id` to `email`, if any. A revoked award does not count: the
/// badge may be issued again after a revocation.
pub fn existing(conn: &mut SqliteConnection, task_id: i64, email: &str) -> StoreResult<Option<Award>> {
    awards::table
        .filter(awards::task_id.eq(task_id).and(awards::recipient_email.eq(email)))
        .filter(awards::revoked_at.is_null())
        .select(Award::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// Awards made for any of `link_ids`.
pub fn for_links(conn: &mut SqliteConnection, link_ids: &[i64]) -> StoreResult<Vec<Award>> {
    awards::table.filter(awards::link_id.eq_any(link_ids)).select(Award::as_select()).load(conn).map_err(Into::into)
}

/// A learner's awards (by author, or by address for awards made from the command line),
/// with their Tasks, newest first.
pub fn for_learner(
    conn: &mut SqliteConnection,
    author_id: i64,
    email: Option<&str>,
) -> StoreResult<Vec<(Award, crate::db::courses::Task)>> {
    let mut q = awards::table.inner_join(tasks::table).into_boxed();
    q = match email {
        Some(e) => q.filter(awards::author_id.eq(author_id).or(awards::recipient_email.eq(e.to_string()))),
        None => q.filter(awards::author_id.eq(author_id)),
    };
    q.order(awards::issued_on.desc())
        .select((Award::as_select(), crate::db::courses::Task::as_select()))
        .load(conn)
        .map_err(Into::into)
}

/// Revoked awards: (public id, reason).
pub fn revoked(conn: &mut SqliteConnection) -> StoreResult<Vec<(String, Option<String>)>> {
    awards::table
        .filter(awards::revoked_at.is_not_null())
        .order(awards::revoked_at)
        .select((awards::public_id, awards::revocation_reason))
        .load(conn)
        .map_err(Into::into)
}

pub fn count(conn: &mut SqliteConnection) -> StoreResult<i64> {
    awards::table.count().get_result(conn).map_err(Into::into)
}

/// An award with its Task, in one query (the hot path of assertion requests).
pub fn with_task(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<(Award, crate::db::courses::Task)> {
    awards::table
        .inner_join(tasks::table)
        .filter(awards::public_id.eq(public_id))
        .select((Award::as_select(), crate::db::courses::Task::as_select()))
        .first(conn)
        .found("award")
}
