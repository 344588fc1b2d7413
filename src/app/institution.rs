//! The institution profile, the Open Badges Issuer every badge names: its fields checked as
//! typed, and its image checked as a badge image is.

use diesel::SqliteConnection;

use crate::badges::art::Artwork;
use crate::db::institution::{self, Institution, Profile};
use crate::db::{StoreError, StoreResult};
use crate::domain::{Email, FieldErrors, Text, parse_optional_url};

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

/// Checks the form; the profile cleaned up, or every problem at once.
pub fn validate(form: &InstitutionForm) -> StoreResult<Profile> {
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
    Ok(Profile { name, url, email, description })
}

/// Checks and saves the profile; `image` replaces the current image when given.
pub fn update(
    conn: &mut SqliteConnection,
    form: &InstitutionForm,
    image: Option<Artwork>,
    now: i64,
) -> StoreResult<()> {
    let profile = validate(form)?;
    institution::update(conn, &profile, image.map(|a| (a.bytes, a.kind.mime().to_string())), now)
}

/// Creates the profile named `name` on first start (the name from the settings); an existing
/// profile is kept as it is.
pub fn ensure(conn: &mut SqliteConnection, name: &str, now: i64) -> StoreResult<()> {
    institution::ensure(conn, name, now)
}

/// What the profile still lacks before it can stand as the issuer of a badge: its name, web
/// address and contact email are what an employer checking a badge is shown.
pub fn missing_for_issuing(inst: &Institution) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if inst.name.trim().is_empty() {
        missing.push("a name");
    }
    if inst.url.trim().is_empty() {
        missing.push("a web address");
    }
    if inst.email.trim().is_empty() {
        missing.push("a contact email");
    }
    missing
}

/// What the profile lacks, read from the store (empty when it is complete).
pub fn missing(conn: &mut SqliteConnection) -> StoreResult<Vec<&'static str>> {
    Ok(missing_for_issuing(&institution::get(conn)?))
}

/// Where the profile is completed.
pub const PROFILE_FORM: &str = "/admin/institution";

/// The issuer profile comes first: the first award is refused until the profile has a name,
/// a web address and a contact email. An instance that has already issued keeps issuing (its
/// badges already name it), and its pages keep asking for the missing fields.
pub fn ready_to_issue(conn: &mut SqliteConnection) -> StoreResult<()> {
    let missing = missing(conn)?;
    if missing.is_empty() || crate::db::awards::count(conn)? > 0 {
        return Ok(());
    }
    Err(StoreError::ConflictFixedAt {
        message: format!(
            "Complete the institution profile before the first award: it lacks {}. Every badge names the \
             institution as its issuer, and employers who check a badge are shown it.",
            in_words(&missing)
        ),
        href: PROFILE_FORM,
        label: "Complete the institution profile",
    })
}

/// The missing fields in a sentence: "a, b and c".
pub fn in_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
