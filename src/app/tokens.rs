//! API access tokens: made for an instructor with scopes and an optional expiry, shown once
//! and kept only as a SHA-256 hash; checked on every API request; revoked by their owner.
//! And idempotent writes: the first answer under an `Idempotency-Key` is remembered in the
//! same transaction as the write, so a retry gets it again and never writes twice.

use diesel::SqliteConnection;

use crate::app::access::Actor;
use crate::db::tokens::{self, ApiToken, NewToken, Remembered, Scope};
use crate::db::{StoreError, StoreResult, instructors, write_tx};

/// What every token starts with, so that secret scanners and people can tell one.
pub const TOKEN_PREFIX: &str = "cairn_";
/// Longest token name.
const NAME_MAX: usize = 100;
/// Longest expiry, in days.
pub const MAX_EXPIRY_DAYS: i64 = 3650;
/// A token's last use is written at most this often, so that a busy client does not turn
/// every read into a write.
const TOUCH_EVERY_SECS: i64 = 60;
/// How long an idempotency key's answer is kept.
pub const IDEMPOTENCY_KEEP_SECS: i64 = 24 * 3600;
/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// Parses a comma-separated list of scopes (`awards:write,read`).
pub fn parse_scopes(words: &str) -> StoreResult<Vec<Scope>> {
    let mut scopes = Vec::new();
    for w in words.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let s = Scope::parse(w).ok_or_else(|| {
            StoreError::field("scope", format!("unknown scope '{w}'; the scopes are {}", Scope::WORDS.join(", ")))
        })?;
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if scopes.is_empty() {
        return Err(StoreError::field("scope", format!("name at least one scope of {}", Scope::WORDS.join(", "))));
    }
    Ok(scopes)
}

/// A new token: the stored row and the token itself, which is never shown again.
pub struct Created {
    pub token: ApiToken,
    pub secret: String,
}

/// Makes a token for an instructor, valid for `expires_days` days from `now` (or until
/// revoked). An instructor makes their own; only an admin (or the command line as the
/// institution) makes one for another instructor. Recorded in the audit trail.
pub fn create(
    conn: &mut SqliteConnection,
    actor: &Actor,
    instructor_id: i64,
    name: &str,
    scopes: &[Scope],
    expires_days: Option<i64>,
    now: i64,
) -> StoreResult<Created> {
    let name = name.trim();
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(StoreError::field("name", format!("a token name is at most {NAME_MAX} characters on one line")));
    }
    if scopes.is_empty() {
        return Err(StoreError::field("scope", "choose at least one scope"));
    }
    if let Some(d) = expires_days
        && !(1..=MAX_EXPIRY_DAYS).contains(&d)
    {
        return Err(StoreError::field("expires", format!("a token expires after 1 to {MAX_EXPIRY_DAYS} days")));
    }
    let owner = instructors::find(conn, instructor_id)?.ok_or(StoreError::NotFound("instructor"))?;
    if actor.instructor_id != Some(instructor_id) {
        actor.require_admin("make an API token for another instructor")?;
    }
    let secret = format!("{TOKEN_PREFIX}{}", crate::tokens::random_token());
    let hash = crate::tokens::token_hash(&secret);
    let token = tokens::insert(
        conn,
        &NewToken {
            instructor_id,
            name: if name.is_empty() { "API token" } else { name },
            token_hash: &hash,
            scopes,
            expires_at: expires_days.map(|d| now + d * 86_400),
            created_at: now,
        },
    )?;
    let detail = format!("\"{}\" for {} with the scopes {}", token.name, owner.email, token.scopes);
    crate::app::audit::record(conn, actor, "token.create", None, &format!("token {}", token.id), &detail, now)?;
    Ok(Created { token, secret })
}

/// Why a bearer token was not accepted. The API answers every case alike (401), so that a
/// stranger learns nothing about which tokens exist.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not one Cairn made")]
    Unknown,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The live token whose value is `secret`, its use at `now` from `addr` recorded.
pub fn authenticate(
    conn: &mut SqliteConnection,
    secret: &str,
    addr: Option<&str>,
    now: i64,
) -> Result<ApiToken, TokenError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Err(TokenError::Unknown);
    }
    let mut token = tokens::by_hash(conn, &crate::tokens::token_hash(secret))?.ok_or(TokenError::Unknown)?;
    if token.revoked_at.is_some() {
        return Err(TokenError::Revoked);
    }
    if !token.is_live(now) {
        return Err(TokenError::Expired);
    }
    let stale = token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_SECS);
    if stale || token.last_used_addr.as_deref() != addr {
        tokens::touch(conn, token.id, now, addr)?;
        token.last_used_at = Some(now);
        token.last_used_addr = addr.map(str::to_string);
    }
    Ok(token)
}

/// Revokes one of the instructor's tokens (their own, or any instructor's for an admin).
/// Recorded in the audit trail.
pub fn revoke(
    conn: &mut SqliteConnection,
    actor: &Actor,
    instructor_id: i64,
    token_id: i64,
    now: i64,
) -> StoreResult<ApiToken> {
    if actor.instructor_id != Some(instructor_id) {
        actor.require_admin("revoke another instructor's API token")?;
    }
    let token = tokens::revoke(conn, instructor_id, token_id, now)?;
    crate::app::audit::record(conn, actor, "token.revoke", None, &format!("token {}", token.id), &token.name, now)?;
    Ok(token)
}

/// The answer of a write, as remembered under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Why an idempotent write was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was used before with a different request.
    #[error("this Idempotency-Key was used with a different request; use a new key for a new request")]
    Mismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for IdempotencyError {
    fn from(e: diesel::result::Error) -> Self {
        IdempotencyError::Store(e.into())
    }
}

/// Checks an idempotency key's form: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::field(
            "Idempotency-Key",
            format!("an idempotency key is 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// Runs the write `f` once per (token, key): inside one write transaction the remembered
/// answer is looked up, and when there is none `f` runs and its answer is stored before the
/// commit. A retry with the same request gets the first answer (`true`: replayed); another
/// request under the same key is refused. An `Err` from `f` (our failure, not a refusal the
/// client should see again) rolls everything back and remembers nothing.
pub fn idempotent(
    conn: &mut SqliteConnection,
    token_id: i64,
    key: &str,
    request_hash: &str,
    now: i64,
    f: impl FnOnce(&mut SqliteConnection) -> StoreResult<Answer>,
) -> Result<(Answer, bool), IdempotencyError> {
    write_tx(conn, |conn| {
        if let Some(answer) = replay(conn, token_id, key, request_hash)? {
            return Ok((answer, true));
        }
        let answer = f(conn)?;
        let r = Remembered {
            request_hash: request_hash.to_string(),
            status: i64::from(answer.status),
            response: answer.body.clone(),
        };
        tokens::remember(conn, token_id, key, &r, now)?;
        Ok((answer, false))
    })
}

/// The answer already given under a key, if any; a key used with another request is refused.
/// Read on its own it lets a retry skip costly work, and [`idempotent`] asks again inside its
/// transaction.
pub fn replay(
    conn: &mut SqliteConnection,
    token_id: i64,
    key: &str,
    request_hash: &str,
) -> Result<Option<Answer>, IdempotencyError> {
    let Some(r) = tokens::remembered(conn, token_id, key)? else {
        return Ok(None);
    };
    if r.request_hash != request_hash {
        return Err(IdempotencyError::Mismatch);
    }
    Ok(Some(Answer { status: u16::try_from(r.status).unwrap_or(500), body: r.response }))
}

/// Reduces every remembered answer that names a forgotten learner to ids (a forget's part; in
/// the caller's transaction). `ids` are the public ids of their awards; `personal` their
/// address, names and evidence URLs. In a JSON answer each object whose `id` is one of `ids`
/// keeps only `id` and `url`, and every other string that holds a personal value becomes
/// null; an answer that is not JSON becomes `{}`. A retry under the key still gets the
/// status it got the first time, so it never awards twice. Returns how many answers changed.
pub fn redact_answers(conn: &mut SqliteConnection, ids: &[String], personal: &[String]) -> StoreResult<usize> {
    let needles: Vec<String> = ids.iter().chain(personal).filter(|n| !n.is_empty()).cloned().collect();
    let rows = tokens::answers_mentioning(conn, &needles)?;
    for (token_id, key, response) in &rows {
        let reduced = match serde_json::from_str::<serde_json::Value>(response) {
            Ok(mut doc) => {
                reduce(&mut doc, ids, personal);
                doc.to_string()
            }
            Err(_) => "{}".to_string(),
        };
        tokens::set_answer(conn, *token_id, key, &reduced)?;
    }
    Ok(rows.len())
}

/// See [`redact_answers`].
fn reduce(v: &mut serde_json::Value, ids: &[String], personal: &[String]) {
    use serde_json::Value;
    let names = |s: &str| crate::domain::mentions_any(s, personal);
    match v {
        Value::Object(map) => {
            if map.get("id").and_then(Value::as_str).is_some_and(|id| ids.iter().any(|i| i == id)) {
                map.retain(|k, _| k == "id" || k == "url");
            }
            for child in map.values_mut() {
                reduce(child, ids, personal);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| reduce(c, ids, personal)),
        Value::String(s) if names(s) => *v = Value::Null,
        _ => {}
    }
}

/// Forgets idempotency answers older than [`IDEMPOTENCY_KEEP_SECS`].
pub fn forget_old_answers(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    tokens::forget_before(conn, now - IDEMPOTENCY_KEEP_SECS)
}

/// The token's instructor as an actor on the API: their roles, narrowed to the token's courses
/// when it names some.
pub fn actor(
    conn: &mut SqliteConnection,
    token: &crate::db::tokens::ApiToken,
    client: Option<String>,
) -> StoreResult<crate::app::access::Actor> {
    let actor =
        crate::app::access::Actor::load_id(conn, token.instructor_id, crate::app::access::Surface::Api, client)?;
    Ok(actor.narrowed(crate::db::staff::token_courses(conn, token.id)?))
}

/// Narrows a token to `courses`: it then acts only there, with its instructor's roles.
pub fn narrow(conn: &mut SqliteConnection, token: i64, courses: &[i64]) -> StoreResult<()> {
    write_tx(conn, |c| crate::db::staff::set_token_courses(c, token, courses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_parsed_from_words_and_unknown_ones_refused() {
        assert_eq!(parse_scopes("awards:write,read").unwrap(), [Scope::AwardsWrite, Scope::Read]);
        assert_eq!(parse_scopes(" read , read ").unwrap(), [Scope::Read]);
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("read,admin").unwrap_err().to_string().contains("unknown scope 'admin'"));
    }

    #[test]
    fn a_token_works_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        let who = crate::app::instructors::create(&mut c, "ada@example.edu", "correct horse battery", 0).unwrap();
        let t0 = 1_700_000_000;
        let made = create(
            &mut c,
            &Actor::institution(crate::app::access::Surface::Cli),
            who.id,
            "sync",
            &[Scope::Read],
            Some(1),
            t0,
        )
        .unwrap();
        assert!(made.secret.starts_with(TOKEN_PREFIX) && made.secret.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(made.token.token_hash, made.secret, "only the hash is stored");
        let used = authenticate(&mut c, &made.secret, Some("127.0.0.1"), t0 + 5).unwrap();
        assert_eq!((used.last_used_at, used.last_used_addr.as_deref()), (Some(t0 + 5), Some("127.0.0.1")));
        assert!(matches!(authenticate(&mut c, &made.secret, None, t0 + 86_400), Err(TokenError::Expired)));
        assert!(matches!(authenticate(&mut c, "cairn_nope", None, t0), Err(TokenError::Unknown)));
        let other = create(
            &mut c,
            &Actor::institution(crate::app::access::Surface::Cli),
            who.id,
            "ci",
            &[Scope::AwardsWrite],
            None,
            t0,
        )
        .unwrap();
        revoke(&mut c, &Actor::institution(crate::app::access::Surface::Cli), who.id, other.token.id, t0 + 10).unwrap();
        assert!(matches!(authenticate(&mut c, &other.secret, None, t0 + 11), Err(TokenError::Revoked)));
        assert!(matches!(
            revoke(&mut c, &Actor::institution(crate::app::access::Surface::Cli), who.id + 1, other.token.id, t0),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn answers_naming_a_learner_keep_only_ids() {
        let mut doc = serde_json::json!({
            "results": [
                {"id": "a1", "url": "https://x/assertions/a1", "recipient": "ada@example.edu", "name": "Ada L"},
                {"id": "b2", "recipient": "bob@example.edu", "note": "for Ada L"}
            ]
        });
        reduce(&mut doc, &["a1".into()], &["ada@example.edu".into(), "Ada L".into()]);
        assert_eq!(
            doc,
            serde_json::json!({"results": [
                {"id": "a1", "url": "https://x/assertions/a1"},
                {"id": "b2", "recipient": "bob@example.edu", "note": null}
            ]})
        );
    }

    #[test]
    fn a_key_runs_its_write_once_and_refuses_another_request() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        let who = crate::app::instructors::create(&mut c, "ada@example.edu", "correct horse battery", 0).unwrap();
        let t = create(
            &mut c,
            &Actor::institution(crate::app::access::Surface::Cli),
            who.id,
            "",
            &[Scope::AwardsWrite],
            None,
            0,
        )
        .unwrap()
        .token;
        let mut runs = 0;
        let mut write = |_: &mut SqliteConnection| {
            runs += 1;
            Ok(Answer { status: 201, body: "{\"id\":\"a\"}".into() })
        };
        let (first, replayed) = idempotent(&mut c, t.id, "k1", "h1", 0, &mut write).unwrap();
        assert!(!replayed);
        let (again, replayed) = idempotent(&mut c, t.id, "k1", "h1", 1, &mut write).unwrap();
        assert!(replayed);
        assert_eq!(first, again);
        assert!(matches!(idempotent(&mut c, t.id, "k1", "h2", 2, &mut write), Err(IdempotencyError::Mismatch)));
        assert_eq!(runs, 1);
        assert_eq!(forget_old_answers(&mut c, IDEMPOTENCY_KEEP_SECS + 1).unwrap(), 1);
    }
}
