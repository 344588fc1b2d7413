//! Learners' public badges pages: a random public id per learner, and whether they hid it.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::StoreResult;
use super::schema::{authors, awards, portfolios, tasks};

/// A learner's page as the public may see it.
#[derive(Debug, Clone)]
pub struct Portfolio {
    pub author_id: i64,
    pub public_id: String,
    pub hidden: bool,
    /// The learner's name as they chose to be shown (given, initials or pseudonym).
    pub name: String,
}

/// One badge on the page.
#[derive(Debug, Clone, Queryable)]
pub struct PortfolioBadge {
    pub public_id: String,
    pub task_id: i64,
    pub issued_on: i64,
    pub expires: Option<i64>,
    /// The name the award was made out to, as its documents show it.
    pub recipient_name: Option<String>,
    pub task_title: String,
    pub task_description: String,
    pub hashtag: String,
}

fn select(
    conn: &mut SqliteConnection,
    filter: impl FnOnce(
        portfolios::BoxedQuery<'static, diesel::sqlite::Sqlite>,
    ) -> portfolios::BoxedQuery<'static, diesel::sqlite::Sqlite>,
) -> StoreResult<Option<Portfolio>> {
    let row: Option<(i64, String, bool)> = filter(portfolios::table.into_boxed())
        .select((portfolios::author_id, portfolios::public_id, portfolios::hidden))
        .first(conn)
        .optional()?;
    let Some((author_id, public_id, hidden)) = row else { return Ok(None) };
    let name = super::learners::public_name_of(conn, author_id)?;
    Ok(Some(Portfolio { author_id, public_id, hidden, name }))
}

/// The page with this public id, hidden or not.
pub fn by_public_id(conn: &mut SqliteConnection, public_id: &str) -> StoreResult<Option<Portfolio>> {
    let public_id = public_id.to_string();
    select(conn, move |q| q.filter(portfolios::public_id.eq(public_id)))
}

/// The page of the learner an award was made to: by its post's author, else by the address
/// they joined with.
pub fn of_award(conn: &mut SqliteConnection, author_id: Option<i64>, email: &str) -> StoreResult<Option<Portfolio>> {
    let author = match author_id {
        Some(id) => Some(id),
        None => authors::table.filter(authors::email.eq(email)).select(authors::id).first(conn).optional()?,
    };
    match author {
        Some(id) => of_author(conn, id),
        None => Ok(None),
    }
}

/// The learner's page.
pub fn of_author(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Option<Portfolio>> {
    select(conn, move |q| q.filter(portfolios::author_id.eq(author_id)))
}

/// Hides or shows the learner's page.
pub fn set_hidden(conn: &mut SqliteConnection, author_id: i64, hidden: bool) -> StoreResult<()> {
    diesel::update(portfolios::table.find(author_id)).set(portfolios::hidden.eq(hidden)).execute(conn)?;
    Ok(())
}

/// Most badges one page lists.
pub const MAX_BADGES: i64 = 500;

/// The learner's badges that still stand (not revoked), newest first: those awarded for their
/// posts and those made out to the address they joined with.
pub fn badges(conn: &mut SqliteConnection, author_id: i64) -> StoreResult<Vec<PortfolioBadge>> {
    let email: Option<String> = authors::table.find(author_id).select(authors::email).first(conn)?;
    let mut q = awards::table.inner_join(tasks::table).into_boxed();
    q = match email {
        Some(e) => q.filter(awards::author_id.eq(author_id).or(awards::recipient_email.eq(e))),
        None => q.filter(awards::author_id.eq(author_id)),
    };
    Ok(q.filter(awards::revoked_at.is_null())
        .order((awards::issued_on.desc(), awards::id.desc()))
        .limit(MAX_BADGES)
        .select((
            awards::public_id,
            awards::task_id,
            awards::issued_on,
            awards::expires,
            awards::recipient_name,
            tasks::title,
            tasks::description,
            tasks::hashtag,
        ))
        .load(conn)?)
}
