//! API access tokens (only their SHA-256 is stored) and the remembered answers of writes sent
//! with an `Idempotency-Key`.

use diesel::prelude::*;

use super::schema::{api_idempotency, api_tokens};
use super::{StoreError, StoreResult};

super::stored::stored_enum! {
    /// What a token may do.
    pub enum Scope {
        /// Read awards, courses, modules, tasks and the Reader queue.
        Read = "read",
        /// Award, award in batches and revoke.
        AwardsWrite = "awards:write",
        /// Tie posts to Tasks and dismiss them in the Reader.
        ReaderWrite = "reader:write",
        /// Register and remove webhooks.
        WebhooksWrite = "webhooks:write",
    }
}

/// A stored token, without the token itself.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub instructor_id: i64,
    pub name: String,
    pub token_hash: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_addr: Option<String>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl ApiToken {
    /// The scopes the token holds (unknown words, which nothing writes, are ignored).
    pub fn scope_list(&self) -> Vec<Scope> {
        self.scopes.split(',').filter_map(|w| Scope::parse(w.trim())).collect()
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scope_list().contains(&scope)
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// What a new token row holds.
pub struct NewToken<'a> {
    pub instructor_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scopes: &'a [Scope],
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

pub fn insert(conn: &mut SqliteConnection, t: &NewToken) -> StoreResult<ApiToken> {
    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::instructor_id.eq(t.instructor_id),
            api_tokens::name.eq(t.name),
            api_tokens::token_hash.eq(t.token_hash),
            api_tokens::scopes.eq(scopes.join(",")),
            api_tokens::expires_at.eq(t.expires_at),
            api_tokens::created_at.eq(t.created_at),
        ))
        .returning(ApiToken::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

/// The token with this hash, if any (live or not).
pub fn by_hash(conn: &mut SqliteConnection, hash: &str) -> StoreResult<Option<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .select(ApiToken::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// An instructor's tokens, newest first.
pub fn list_for(conn: &mut SqliteConnection, instructor_id: i64) -> StoreResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::instructor_id.eq(instructor_id))
        .order(api_tokens::id.desc())
        .select(ApiToken::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Revokes one of an instructor's tokens at `now`; a token already revoked keeps its time.
pub fn revoke(conn: &mut SqliteConnection, instructor_id: i64, id: i64, now: i64) -> StoreResult<ApiToken> {
    let target = api_tokens::table.filter(api_tokens::id.eq(id).and(api_tokens::instructor_id.eq(instructor_id)));
    diesel::update(target.filter(api_tokens::revoked_at.is_null()))
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
    target.select(ApiToken::as_select()).first(conn).optional()?.ok_or(StoreError::NotFound("token"))
}

/// Revokes every live token of an instructor at `now` (their password changed); returns how many.
pub fn revoke_all(conn: &mut SqliteConnection, instructor_id: i64, now: i64) -> StoreResult<usize> {
    Ok(diesel::update(
        api_tokens::table.filter(api_tokens::instructor_id.eq(instructor_id).and(api_tokens::revoked_at.is_null())),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)?)
}

/// Records a use of the token.
pub fn touch(conn: &mut SqliteConnection, id: i64, now: i64, addr: Option<&str>) -> StoreResult<()> {
    diesel::update(api_tokens::table.find(id))
        .set((api_tokens::last_used_at.eq(now), api_tokens::last_used_addr.eq(addr)))
        .execute(conn)?;
    Ok(())
}

/// The remembered answer to a write made with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = api_idempotency)]
pub struct Remembered {
    pub request_hash: String,
    pub status: i64,
    pub response: String,
}

pub fn remembered(conn: &mut SqliteConnection, token_id: i64, key: &str) -> StoreResult<Option<Remembered>> {
    api_idempotency::table
        .filter(api_idempotency::token_id.eq(token_id).and(api_idempotency::key.eq(key)))
        .select(Remembered::as_select())
        .first(conn)
        .optional()
        .map_err(Into::into)
}

/// Remembers an answer; the primary key refuses a second one under the same key.
pub fn remember(conn: &mut SqliteConnection, token_id: i64, key: &str, r: &Remembered, now: i64) -> StoreResult<()> {
    diesel::insert_into(api_idempotency::table)
        .values((
            api_idempotency::token_id.eq(token_id),
            api_idempotency::key.eq(key),
            api_idempotency::request_hash.eq(&r.request_hash),
            api_idempotency::status.eq(r.status),
            api_idempotency::response.eq(&r.response),
            api_idempotency::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// (token id, key, answer) of every remembered answer that holds one of `needles`
/// (compared without case).
pub fn answers_mentioning(conn: &mut SqliteConnection, needles: &[String]) -> StoreResult<Vec<(i64, String, String)>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};
    let mut found: Vec<(i64, String, String)> = Vec::new();
    for n in needles.iter().filter(|n| !n.is_empty()) {
        let cond = sql::<Bool>("instr(lower(response), lower(").bind::<Text, _>(n).sql(")) > 0");
        let rows: Vec<(i64, String, String)> = api_idempotency::table
            .filter(cond)
            .select((api_idempotency::token_id, api_idempotency::key, api_idempotency::response))
            .load(conn)?;
        for r in rows {
            if !found.iter().any(|f| f.0 == r.0 && f.1 == r.1) {
                found.push(r);
            }
        }
    }
    Ok(found)
}

/// Replaces a remembered answer's body.
pub fn set_answer(conn: &mut SqliteConnection, token_id: i64, key: &str, response: &str) -> StoreResult<()> {
    diesel::update(
        api_idempotency::table.filter(api_idempotency::token_id.eq(token_id).and(api_idempotency::key.eq(key))),
    )
    .set(api_idempotency::response.eq(response))
    .execute(conn)?;
    Ok(())
}

/// Forgets remembered answers older than `before`.
pub fn forget_before(conn: &mut SqliteConnection, before: i64) -> StoreResult<usize> {
    Ok(diesel::delete(api_idempotency::table.filter(api_idempotency::created_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scope_words_round_trip() {
        crate::db::stored::assert_round_trip!(super::Scope);
    }
}
