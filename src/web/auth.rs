//! Instructor sign-in: sessions, CSRF tokens and login throttling.
//!
//! The session cookie (HttpOnly, SameSite=Lax, Secure when the public base URL is https)
//! carries only a random id. A signed-in session lives in the database ([`SessionBackend`]),
//! so signing out, a password change or expiry ends it for every copy of the cookie; an
//! anonymous visitor's session (a CSRF token for a public form) lives in a bounded map in
//! memory and costs the database nothing. Every state-changing form carries the session's CSRF
//! token; the [`CsrfForm`] extractor refuses the request before the handler runs when it is
//! missing or wrong. Failed logins are counted per (account, address) pair and per address;
//! past a threshold further attempts from there wait for a growing period (429).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;

use crate::config::SessionSettings;
use crate::db::{DbPool, sessions};
use crate::tokens::{random_token, token_hash};
use crate::web::error::AppError;

const SESSION_INSTRUCTOR: &str = "instructor_id";
const SESSION_CSRF: &str = "csrf";
const SESSION_FLASH: &str = "flash";

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
    if crate::tokens::same(&expected, submitted) { Ok(()) } else { Err(AppError::Csrf) }
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
    // Removing an absent key still marks the session changed, which would cost a store write
    // on every page view.
    if !session.contains_key(SESSION_FLASH) {
        return None;
    }
    session.remove_as::<String>(SESSION_FLASH).and_then(Result::ok)
}

/// The signed-in instructor's id, if any.
pub fn instructor_id(session: &Session) -> Option<i64> {
    session.get::<i64>(SESSION_INSTRUCTOR).ok().flatten()
}

/// A session's values, as actix-session keeps them (JSON-encoded values by key).
type SessionState = HashMap<String, String>;

/// Anonymous sessions forgotten after this long unused.
const ANON_IDLE_SECS: i64 = 2 * 3600;
/// Anonymous sessions kept in one generation of the map (at most twice this in all).
const ANON_GENERATION: usize = 20_000;

/// Anonymous sessions in two generations: when the current one is full it becomes the previous
/// one and the old previous one is dropped, so memory stays bounded however many visitors come,
/// and a session in use is carried forward.
#[derive(Default)]
struct AnonSessions {
    current: HashMap<String, (i64, SessionState)>,
    previous: HashMap<String, (i64, SessionState)>,
}

impl AnonSessions {
    fn get(&mut self, key: &str, now: i64) -> Option<SessionState> {
        let entry = match self.current.get_mut(key) {
            Some(e) => {
                if now - e.0 >= ANON_IDLE_SECS {
                    self.current.remove(key);
                    return None;
                }
                e.0 = now;
                return Some(e.1.clone());
            }
            None => self.previous.remove(key)?,
        };
        if now - entry.0 >= ANON_IDLE_SECS {
            return None;
        }
        let state = entry.1.clone();
        self.put(key.to_string(), state.clone(), now);
        Some(state)
    }

    fn put(&mut self, key: String, state: SessionState, now: i64) {
        if self.current.len() >= ANON_GENERATION && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, (now, state));
    }

    fn remove(&mut self, key: &str) -> bool {
        self.current.remove(key).is_some() | self.previous.remove(key).is_some()
    }
}

/// actix-session storage: signed-in sessions in the `sessions` table (only the id's hash),
/// anonymous ones in memory. A session becomes a database session only by being saved afresh
/// with an instructor in it, which [`sign_in`] forces by renewing the id.
#[derive(Clone)]
pub struct SessionBackend {
    pool: DbPool,
    life: SessionSettings,
    anon: std::sync::Arc<Mutex<AnonSessions>>,
}

impl SessionBackend {
    pub fn new(pool: DbPool, life: SessionSettings) -> SessionBackend {
        SessionBackend { pool, life, anon: Default::default() }
    }

    fn anon(&self) -> std::sync::MutexGuard<'_, AnonSessions> {
        self.anon.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instructor_in(state: &SessionState) -> Option<i64> {
        state.get(SESSION_INSTRUCTOR).and_then(|v| serde_json::from_str(v).ok())
    }

    async fn create(&self, state: SessionState) -> anyhow::Result<SessionKey> {
        let token = random_token();
        match Self::instructor_in(&state) {
            Some(id) => {
                let (hash, json) = (token_hash(&token), serde_json::to_string(&state)?);
                crate::db::run(&self.pool, move |c| sessions::create(c, &hash, id, &json, crate::clock::system_now()))
                    .await
                    .map_err(store_failure)?;
            }
            None => self.anon().put(token.clone(), state, crate::clock::system_now()),
        }
        SessionKey::try_from(token).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A session store failure as the session middleware carries it (it answers a bare 500 and
/// keeps the error only for the log): a busy database is marked [`crate::db::Unavailable`] so
/// that the error middleware answers 503 with `Retry-After` instead.
fn store_failure(e: crate::db::StoreError) -> anyhow::Error {
    if crate::db::is_unavailable(&e) { anyhow::Error::new(e).context(crate::db::Unavailable) } else { e.into() }
}

impl SessionStore for SessionBackend {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let token = key.as_ref();
        let now = crate::clock::system_now();
        if let Some(state) = self.anon().get(token, now) {
            return Ok(Some(state));
        }
        let (hash, life) = (token_hash(token), self.life);
        let json = crate::db::run(&self.pool, move |c| sessions::touch(c, &hash, life, now))
            .await
            .map_err(|e| LoadError::Other(store_failure(e)))?;
        match json {
            Some(j) => serde_json::from_str(&j).map(Some).map_err(|e| LoadError::Deserialization(e.into())),
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        state: SessionState,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        self.create(state).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        key: SessionKey,
        mut state: SessionState,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let token = key.as_ref().to_string();
        let now = crate::clock::system_now();
        if Self::instructor_in(&state).is_none() {
            self.anon().put(token, state, now);
            return Ok(key);
        }
        if self.anon().remove(&token) {
            // Signed in without a fresh id: never let an old anonymous id become a signed-in one.
            return self.create(state).await.map_err(UpdateError::Other);
        }
        let hash = token_hash(&token);
        let json = serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let live = crate::db::run(&self.pool, move |c| sessions::set_state(c, &hash, &json))
            .await
            .map_err(|e| UpdateError::Other(store_failure(e)))?;
        if live {
            return Ok(key);
        }
        // Revoked while this request ran: keep the rest of the session, but signed out.
        state.remove(SESSION_INSTRUCTOR);
        self.create(state).await.map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, _key: &SessionKey, _ttl: &actix_web::cookie::time::Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        if self.anon().remove(key.as_ref()) {
            return Ok(());
        }
        let hash = token_hash(key.as_ref());
        crate::db::run(&self.pool, move |c| sessions::delete(c, &hash)).await?;
        Ok(())
    }
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

/// Extractor for handlers whose use case checks roles: the signed-in instructor as an
/// [`Actor`](crate::app::access::Actor), with their roles loaded and the client's address
/// noted for the audit trail. Redirects to the login page when not signed in.
pub struct Acting(pub crate::app::access::Actor);

impl Acting {
    pub fn instructor_id(&self) -> i64 {
        self.0.instructor_id.unwrap_or_default()
    }
}

impl FromRequest for Acting {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed = SignedIn::from_request(req, payload).into_inner();
        let state = req.app_data::<web::Data<crate::web::AppState>>().cloned();
        let client = state.as_ref().and_then(|s| s.client_ip(req)).map(|ip| ip.to_string());
        Box::pin(async move {
            let who = signed?;
            let state = state.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no application state")))?;
            let actor = state
                .db(move |c| {
                    crate::app::access::Actor::load_id(c, who.instructor_id, crate::app::access::Surface::Web, client)
                })
                .await?;
            Ok(Acting(actor))
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

/// Counts failed logins per (account, client address) pair and per client address.
///
/// A pair past its limit waits, so a stranger's wrong guesses never lock an instructor out of
/// their own address; an address past its limit waits whatever account it tries. Each attempt
/// is recorded before the password is checked, in the same critical section as the check, so a
/// burst of parallel guesses cannot all slip in before the first failure is counted.
#[derive(Debug)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
    /// Failures one address may have against one account before it must wait.
    pub pair_limit: u32,
    /// Failures one address may have in all before it must wait.
    pub address_limit: u32,
    /// How long failures are remembered.
    pub window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            entries: Mutex::new(HashMap::new()),
            pair_limit: 5,
            address_limit: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Entries kept at most; past it, forgotten failures are dropped first.
const THROTTLE_ENTRIES: usize = 100_000;

impl LoginThrottle {
    fn keys(email: &str, addr: Option<IpAddr>) -> [(String, bool); 2] {
        let addr = addr.map(|a| crate::notify::limit_key(a).to_string()).unwrap_or_default();
        [(format!("pair:{}|{addr}", email.trim().to_lowercase()), true), (format!("address:{addr}"), false)]
    }

    /// Records a login attempt, or refuses it with the seconds to wait. The attempt counts as a
    /// failure until [`LoginThrottle::succeed`] says otherwise.
    pub fn attempt(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= THROTTLE_ENTRIES {
            let window = self.window;
            entries.retain(|_, f| now.saturating_duration_since(f.last) < window);
            if entries.len() >= THROTTLE_ENTRIES {
                // Still full of live entries: keep the address ones, which bound a flood.
                entries.retain(|k, _| k.starts_with("address:"));
            }
        }
        let keys = Self::keys(email, addr);
        let mut wait = 0u64;
        for (key, is_pair) in &keys {
            let limit = if *is_pair { self.pair_limit } else { self.address_limit };
            if let Some(f) = entries.get(key) {
                let elapsed = now.saturating_duration_since(f.last);
                if f.count >= limit && elapsed < self.window {
                    // 30 s at the limit, doubling with each further failure, up to the window.
                    let lock = Duration::from_secs(30u64 << (f.count - limit).min(5)).min(self.window);
                    if elapsed < lock {
                        wait = wait.max((lock - elapsed).as_secs().max(1));
                    }
                }
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for (key, _) in keys {
            let f = entries.entry(key).or_insert(Failures { count: 0, last: now });
            if now.saturating_duration_since(f.last) >= self.window {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
        Ok(())
    }

    /// Takes back the attempt of a successful login: the pair starts afresh.
    pub fn succeed(&self, email: &str, addr: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let [(pair, _), (address, _)] = Self::keys(email, addr);
        entries.remove(&pair);
        if let Some(f) = entries.get_mut(&address) {
            f.count = f.count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_waits_after_its_limit_but_the_account_stays_open_elsewhere() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert!(t.attempt("a@x.org", Some(ip), now).is_ok());
        }
        let wait = t.attempt("A@x.org", Some(ip), now).unwrap_err();
        assert!((1..=30).contains(&wait));
        // The same account from another address is not affected.
        assert!(t.attempt("a@x.org", Some("127.0.0.2".parse().unwrap()), now).is_ok());
        assert!(t.attempt("a@x.org", Some(ip), now + Duration::from_secs(31)).is_ok());
    }

    #[test]
    fn an_address_waits_after_many_accounts_fail() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for i in 0..20 {
            assert!(t.attempt(&format!("u{i}@x.org"), Some(ip), now).is_ok());
        }
        assert!(t.attempt("fresh@x.org", Some(ip), now).is_err());
        assert!(t.attempt("fresh@x.org", Some("10.0.0.10".parse().unwrap()), now).is_ok());
    }

    #[test]
    fn parallel_attempts_cannot_pass_the_limit_together() {
        let t = std::sync::Arc::new(LoginThrottle::default());
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || t.attempt("a@x.org", Some(ip), now).is_ok())
            })
            .collect();
        let passed = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn a_success_clears_the_pair() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..4 {
            t.attempt("a@x.org", Some(ip), now).unwrap();
        }
        t.attempt("a@x.org", Some(ip), now).unwrap();
        t.succeed("a@x.org", Some(ip));
        for _ in 0..5 {
            assert!(t.attempt("a@x.org", Some(ip), now).is_ok());
        }
    }
}
