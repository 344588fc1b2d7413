//! The institution profile (the Open Badges Issuer): one row, created on first start.

use diesel::prelude::*;

use super::schema::institution;
use super::{StoreError, StoreResult};
use crate::badges::art::Artwork;
use crate::domain::{Email, FieldErrors, Text, parse_optional_url};

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

/// The editable fields, as typed into the form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct InstitutionForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub description: String,
}

/// Creates the profile with `name` when there is none yet.
pub fn ensure(conn: &mut SqliteConnection, name: &str) -> StoreResult<()> {
    diesel::insert_or_ignore_into(institution::table)
        .values((institution::id.eq(1), institution::name.eq(name), institution::updated_at.eq(super::now())))
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

/// Checks the form; returns (name, url, email, description) cleaned up.
pub fn validate(form: &InstitutionForm) -> StoreResult<(String, String, String, String)> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Text::TITLE.parse(&form.name).map_err(|e| e.replace("title", "name")));
    let url = errors.check("url", parse_optional_url(&form.url));
    let email = errors.check(
        "email",
        if form.email.trim().is_empty() { Ok(String::new()) } else { Email::parse(&form.email).map(|e| e.to_string()) },
    );
    let description = errors.check("description", Text::DESCRIPTION.parse(&form.description));
    let (Some(name), Some(url), Some(email), Some(description)) = (name, url, email, description) else {
        return Err(StoreError::Invalid(errors));
    };
    Ok((name, url, email, description))
}

/// Validates and saves the profile; `image` replaces the current image when given.
pub fn update(conn: &mut SqliteConnection, form: &InstitutionForm, image: Option<Artwork>) -> StoreResult<()> {
    let (name, url, email, description) = validate(form)?;
    crate::db::write_tx(conn, |conn| {
        diesel::update(institution::table.find(1))
            .set((
                institution::name.eq(name),
                institution::url.eq(url),
                institution::email.eq(email),
                institution::description.eq(description),
                institution::updated_at.eq(super::now()),
            ))
            .execute(conn)?;
        if let Some(art) = image {
            diesel::update(institution::table.find(1))
                .set((institution::image.eq(art.bytes), institution::image_type.eq(art.kind.mime())))
                .execute(conn)?;
        }
        Ok(())
    })
}
