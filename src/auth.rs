//! Instructor sign-in: sessions, CSRF tokens and login throttling.
//!
//! The session lives in a signed cookie (HttpOnly, SameSite=Lax, Secure when the public
//! base URL is https). Every state-changing form carries the session's CSRF token; the
//! [`CsrfForm`] extractor refuses the request before the handler runs when it is missing or
//! wrong. Failed logins are counted per account and per client address; past a threshold
//! further attempts are refused with 429 for a growing period.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use rand::RngCore;
use serde::de::DeserializeOwned;

use crate::error::AppError;

const SESSION_INSTRUCTOR: &str = "instructor_id";
const SESSION_CSRF: &str = "csrf";
const SESSION_FLASH: &str = "flash";

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(SESSION_CSRF) {
        return t;
    }
    let t = random_token();
    let _ = session.insert(SESSION_CSRF, &t);
    t
}

/// Constant-time comparison of the submitted token with the session's.
pub fn verify_csrf(session: &Session, submitted: &str) -> Result<(), AppError> {
    let expected = session.get::<String>(SESSION_CSRF).ok().flatten().unwrap_or_default();
    if expected.is_empty() || expected.len() != submitted.len() {
        return Err(AppError::Csrf);
    }
    let diff = expected.bytes().zip(submitted.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 { Ok(()) } else { Err(AppError::Csrf) }
}

/// Marks the session as signed in; a fresh session id and CSRF token guard against fixation.
pub fn sign_in(session: &Session, instructor_id: i64) {
    session.renew();
    let _ = session.insert(SESSION_INSTRUCTOR, instructor_id);
    let _ = session.insert(SESSION_CSRF, random_token());
}

pub fn sign_out(session: &Session) {
    session.purge();
}

/// Stores a one-time message shown on the next page.
pub fn flash(session: &Session, message: impl Into<String>) {
    let _ = session.insert(SESSION_FLASH, message.into());
}

/// Takes the pending one-time message, if any.
pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(SESSION_FLASH).and_then(Result::ok)
}

/// The signed-in instructor's id, if any.
pub fn instructor_id(session: &Session) -> Option<i64> {
    session.get::<i64>(SESSION_INSTRUCTOR).ok().flatten()
}

/// Extractor for instructor-only handlers: redirects to the login page when not signed in.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub instructor_id: i64,
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        std::future::ready(match instructor_id(&session) {
            Some(instructor_id) => Ok(SignedIn { instructor_id }),
            None => {
                let next = match req.query_string() {
                    "" => req.path().to_string(),
                    q => format!("{}?{q}", req.path()),
                };
                // Only the GET target is worth returning to.
                let next = if req.method() == actix_web::http::Method::GET { next } else { "/admin".into() };
                Err(AppError::LoginRequired { next })
            }
        })
    }
}

/// The CSRF token of a submitted form (other fields are ignored here).
#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// An URL-encoded form whose CSRF token has been checked against the session before the
/// form itself is parsed.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let is_form = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
            // Without a form body there is no token: that is a CSRF failure, not a parse error.
            let token = if is_form {
                serde_urlencoded::from_bytes::<CsrfField>(&body).map(|f| f.csrf_token).unwrap_or_default()
            } else {
                String::new()
            };
            verify_csrf(&session, &token)?;
            let form = serde_urlencoded::from_bytes::<T>(&body)
                .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
            Ok(CsrfForm(form))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Counts failed logins per account and per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
    /// Failures an account may have before it is locked for a while.
    pub account_limit: u32,
    /// Failures a client address may have before it is locked for a while.
    pub address_limit: u32,
    /// How long failures are remembered.
    pub window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            entries: Mutex::new(HashMap::new()),
            account_limit: 5,
            address_limit: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl LoginThrottle {
    fn keys(email: &str, addr: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("account:{}", email.trim().to_lowercase()), true),
            (format!("address:{}", addr.map(|a| a.to_string()).unwrap_or_default()), false),
        ]
    }

    /// `Err(seconds)` when this account or address must wait before trying again.
    pub fn check(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for (key, is_account) in Self::keys(email, addr) {
            let limit = if is_account { self.account_limit } else { self.address_limit };
            if let Some(f) = entries.get(&key).filter(|f| f.count >= limit) {
                // 30 s after reaching the limit, doubling with each further failure, up to the window.
                let lock = Duration::from_secs(30u64 << (f.count - limit).min(5)).min(self.window);
                let elapsed = now.saturating_duration_since(f.last);
                if elapsed < lock {
                    wait = wait.max((lock - elapsed).as_secs().max(1));
                }
            }
        }
        if wait == 0 { Ok(()) } else { Err(wait) }
    }

    /// Records a failure; returns how long to stall the response (grows with the count).
    pub fn fail(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, f| now.saturating_duration_since(f.last) < window);
        }
        let mut worst = 0;
        for (key, _) in Self::keys(email, addr) {
            let f = entries.entry(key).or_insert(Failures { count: 0, last: now });
            if now.saturating_duration_since(f.last) >= self.window {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
            worst = worst.max(f.count);
        }
        Duration::from_millis(u64::from(worst.min(10)) * 100)
    }

    /// Forgets the account's failures after a successful login.
    pub fn succeed(&self, email: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&Self::keys(email, None)[0].0);
    }
}

/// SHA-256 (hex) of a token sent by email; only the hash is stored.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_limit_and_unlocked_by_time() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert!(t.check("a@x.org", Some(ip), now).is_ok());
            t.fail("a@x.org", Some(ip), now);
        }
        let wait = t.check("A@x.org", Some(ip), now).unwrap_err();
        assert!((1..=30).contains(&wait));
        // Another account from another address is not affected.
        assert!(t.check("b@x.org", Some("127.0.0.2".parse().unwrap()), now).is_ok());
        assert!(t.check("a@x.org", Some(ip), now + Duration::from_secs(31)).is_ok());
    }

    #[test]
    fn an_address_is_locked_after_many_accounts_fail() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for i in 0..20 {
            t.fail(&format!("u{i}@x.org"), Some(ip), now);
        }
        assert!(t.check("fresh@x.org", Some(ip), now).is_err());
        assert!(t.check("fresh@x.org", Some("10.0.0.10".parse().unwrap()), now).is_ok());
    }
}
