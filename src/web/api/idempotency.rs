//! Idempotent writes of the API: the `Idempotency-Key` header, the request's fingerprint,
//! and running a write once under a key, replaying its stored answer on a retry.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::SqliteConnection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::problem::{Problem, stored_response};
use super::{Caller, db, store};
use crate::app::tokens::{self, Answer};
use crate::db::{StoreError, StoreResult};
use crate::web::AppState;

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().map_err(|_| Problem::invalid("Idempotency-Key", "the key must be visible ASCII"))?;
    store(tokens::check_key(key))?;
    Ok(Some(key.to_string()))
}

/// The request's fingerprint for idempotency: the operation and its body, re-serialised so
/// that spacing and key order do not matter.
pub fn request_hash(op: &str, body: &impl Serialize) -> String {
    let value = serde_json::to_value(body).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{op}\n{value}").as_bytes()))
}

pub fn json_answer(status: u16, body: &impl Serialize) -> StoreResult<Answer> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Internal(e.into()))?;
    Ok(Answer { status, body })
}

/// Runs `write` under the request's idempotency key, if it has one, with what `prepare` made
/// outside the write transaction. A retry whose answer is already stored skips both.
pub async fn write_once<P: Send + 'static>(
    state: &web::Data<AppState>,
    caller: &Caller,
    key: Option<String>,
    hash: String,
    prepare: impl FnOnce(&mut SqliteConnection, i64) -> P + Send + 'static,
    write: impl FnOnce(&mut SqliteConnection, i64, P) -> StoreResult<Answer> + Send + 'static,
) -> Result<(Answer, bool), Problem> {
    let (token_id, now) = (caller.token.id, crate::clock::system_now());
    db(state, move |c| {
        if let Some(k) = &key
            && let Some(answer) = tokens::replay(c, token_id, k, &hash).map_err(Problem::from)?
        {
            return Ok((answer, true));
        }
        let prepared = prepare(c, now);
        match key {
            Some(k) => {
                tokens::idempotent(c, token_id, &k, &hash, now, |c| write(c, now, prepared)).map_err(Problem::from)
            }
            None => crate::db::write_tx(c, |c| write(c, now, prepared)).map(|a| (a, false)).map_err(Problem::from),
        }
    })
    .await
}

/// The response of a write's answer, marked when it is a replay.
pub fn answer_response(answer: Answer, replayed: bool, location: Option<String>) -> HttpResponse {
    let mut res = stored_response(answer.status, answer.body);
    if let Some(l) = location.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    if replayed {
        res.headers_mut()
            .insert(header::HeaderName::from_static("idempotent-replayed"), header::HeaderValue::from_static("true"));
    }
    res
}
