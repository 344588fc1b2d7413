//! The institution profile (the Open Badges Issuer): one row, created on first start.

use diesel::prelude::*;

use super::schema::institution;
use super::{StoreError, StoreResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = institution)]
pub struct Institution {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub email: String,
    pub description: String,
    pub image: Option<Vec<u8>>,
    pub image_type: Option<String>,
    pub updated_at: i64,
}

/// The profile's checked fields, as the store writes them (`app::institution` checks a form
/// into one).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub url: String,
    pub email: String,
    pub description: String,
}

/// Creates the profile with `name` when there is none yet.
pub fn ensure(conn: &mut SqliteConnection, name: &str, now: i64) -> StoreResult<()> {
    diesel::insert_or_ignore_into(institution::table)
        .values((institution::id.eq(1), institution::name.eq(name), institution::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut SqliteConnection) -> StoreResult<Institution> {
    institution::table
        .find(1)
        .select(Institution::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("institution"))
}

/// Saves the profile; `image` (bytes, MIME type) replaces the current image when given.
pub fn update(
    conn: &mut SqliteConnection,
    profile: &Profile,
    image: Option<(Vec<u8>, String)>,
    now: i64,
) -> StoreResult<()> {
    let Profile { name, url, email, description } = profile;
    crate::db::write_tx(conn, |conn| {
        diesel::update(institution::table.find(1))
            .set((
                institution::name.eq(name),
                institution::url.eq(url),
                institution::email.eq(email),
                institution::description.eq(description),
                institution::updated_at.eq(now),
            ))
            .execute(conn)?;
        if let Some((bytes, mime)) = image {
            diesel::update(institution::table.find(1))
                .set((institution::image.eq(bytes), institution::image_type.eq(mime)))
                .execute(conn)?;
        }
        Ok(())
    })
}
