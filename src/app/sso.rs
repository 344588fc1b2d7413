//! Single sign-on through the institution's OpenID Connect provider: the Authorization Code
//! flow with PKCE, `state` and `nonce`, the provider found by discovery, the ID token checked
//! by the `openidconnect` crate against the provider's keys, and the rules of who signs in.
//!
//! - [`Sso::begin`] gives the provider's authorization address and the [`Pending`] flow the
//!   caller keeps server-side (state, nonce, PKCE verifier, when it began).
//! - [`Sso::finish`] exchanges the code (with the verifier and the client secret) and checks
//!   the ID token: signature against the provider's JWKS (cached; fetched again once when a
//!   token names a key it lacks), `iss`, `aud`, `exp`, `iat` and `nonce`.
//! - [`admit`] decides: only a verified email matches an instructor (case-insensitively);
//!   with provisioning, an unknown one becomes an instructor with no course role and no
//!   password; members of the admin groups become admins. Leaving a group demotes no one.
//!
//! Requests to the provider go through [`IdpHttp`]: bounded in time and size, `https://` only
//! unless the exact origin is in `allow_origins`, and no redirect is followed. The client
//! secret, codes and tokens never appear in an error or a log line.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use diesel::SqliteConnection;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdTokenVerifier, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IdToken,
    IdTokenClaims, IssuerUrl, JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::OidcSettings;
use crate::db::{StoreError, instructors};
use crate::net::OutboundPolicy;

/// How long a started sign-in may take before its callback is refused.
pub const FLOW_SECS: i64 = 600;
/// How long discovery (and the key set read with it) is trusted before it is read again.
const DISCOVERY_SECS: i64 = 3600;
/// The least time between two reads of the key set for an unknown key.
const JWKS_REFRESH_SECS: i64 = 10;
/// Clock difference allowed with the provider, for `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// An ID token issued longer ago than this is refused (it is used at once after issue).
const MAX_TOKEN_AGE_SECS: i64 = 600;
/// The largest answer read from the provider.
const MAX_BODY: usize = 1024 * 1024;
/// The largest ID token looked at.
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// The path of the callback under the base URL: the redirect URI registered at the provider.
pub const CALLBACK_PATH: &str = "/login/oidc/callback";

/// The ID token's claims beyond the standard ones, read by name (the email and groups claims
/// are settings).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type Token = IdToken<OtherClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Claims = IdTokenClaims<OtherClaims, CoreGenderClaim>;

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the ID token is not a signed JWT Cairn can read")]
    Malformed,
    #[error("the ID token was issued by someone else ({0})")]
    WrongIssuer(String),
    #[error("the ID token was issued for another client ({0})")]
    WrongAudience(String),
    #[error("the ID token has expired ({0})")]
    Expired(String),
    #[error("the ID token's issue time is wrong ({0})")]
    IssueTime(String),
    #[error("the ID token does not belong to this sign-in (nonce: {0})")]
    WrongNonce(String),
    #[error("the ID token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the ID token's signature is not valid ({0})")]
    BadSignature(String),
    #[error("the ID token was refused: {0}")]
    Other(String),
}

impl From<ClaimsVerificationError> for Refusal {
    fn from(e: ClaimsVerificationError) -> Refusal {
        match e {
            ClaimsVerificationError::InvalidIssuer(m) => Refusal::WrongIssuer(m),
            ClaimsVerificationError::InvalidAudience(m) => Refusal::WrongAudience(m),
            ClaimsVerificationError::Expired(m) if m.starts_with(IAT_PREFIX) => Refusal::IssueTime(m),
            ClaimsVerificationError::Expired(m) => Refusal::Expired(m),
            ClaimsVerificationError::InvalidNonce(m) => Refusal::WrongNonce(m),
            ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
                Refusal::UnknownKey
            }
            ClaimsVerificationError::SignatureVerification(s) => Refusal::BadSignature(s.to_string()),
            other => Refusal::Other(other.to_string()),
        }
    }
}

const IAT_PREFIX: &str = "issued ";

/// Why a sign-in through the provider did not happen, in words for the person signing in.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The provider could not be reached or answered wrongly (discovery, keys, token endpoint).
    #[error("the identity provider could not be used: {0}")]
    Provider(String),
    /// The sign-in took too long, or was already used.
    #[error("this sign-in has expired; start again")]
    Stale,
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The provider vouches for no verified email.
    #[error("{0}")]
    Email(String),
    /// A verified email that matches no instructor, without provisioning.
    #[error("no instructor account has the email address {0}; ask an admin to invite you")]
    NoAccount(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A started sign-in, kept server-side (in the session) until its callback: single use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    nonce: String,
    verifier: String,
    /// When it began (unix seconds).
    pub created: i64,
}

/// Where to send the browser, and what to keep.
pub struct Begun {
    pub url: String,
    pub pending: Pending,
}

/// What the provider vouches for, from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
}

/// Who signed in, and what the sign-in changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub instructor_id: i64,
    /// A new instructor was made for this email.
    pub provisioned: bool,
    /// The instructor became an admin through an admin group.
    pub promoted: bool,
}

/// The rules of who signs in, from the settings.
#[derive(Debug, Clone)]
pub struct Rules {
    pub admin_groups: Vec<String>,
    pub allow_provisioning: bool,
}

/// Lets a verified identity in: matches its email to an instructor, or makes one (with
/// provisioning), and grants admin to members of an admin group. Never demotes.
pub fn admit(conn: &mut SqliteConnection, rules: &Rules, who: &Identity, now: i64) -> Result<Admitted, SsoError> {
    let Some(email) = who.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) else {
        return Err(SsoError::Email("the identity provider did not say which email address is yours".into()));
    };
    if !who.email_verified {
        return Err(SsoError::Email(format!(
            "the identity provider has not verified the email address {email}, so it cannot sign you in here"
        )));
    }
    let admin = who.groups.iter().any(|g| rules.admin_groups.contains(g));
    match instructors::find_by_email(conn, email)? {
        Some(instructor) => {
            let promoted = admin && !instructor.admin;
            if promoted {
                instructors::set_admin(conn, instructor.id, true)?;
            }
            Ok(Admitted { instructor_id: instructor.id, provisioned: false, promoted })
        }
        None if rules.allow_provisioning => {
            let instructor = crate::app::instructors::create_with(conn, email, None, admin, now)?;
            Ok(Admitted { instructor_id: instructor.id, provisioned: true, promoted: admin })
        }
        None => Err(SsoError::NoAccount(email.to_lowercase())),
    }
}

/// The provider's answers as last read.
struct Discovered {
    metadata: CoreProviderMetadata,
    /// When discovery was read.
    at: i64,
    /// When the key set was last read.
    jwks_at: i64,
}

/// The configured provider: settings, HTTP client and the cached discovery.
pub struct Sso {
    issuer: IssuerUrl,
    name: String,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    email_claim: String,
    groups_claim: String,
    pub rules: Rules,
    http: IdpHttp,
    cache: tokio::sync::Mutex<Option<Discovered>>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso").field("issuer", &self.issuer.as_str()).field("name", &self.name).finish_non_exhaustive()
    }
}

impl Sso {
    /// The provider of `[oidc]`, or `None` when the section is empty. A partial section, an
    /// unreadable secret file or an `http://` issuer outside `allow_origins` is an error that
    /// names the setting (never the secret).
    pub fn from_settings(s: &OidcSettings, base_url: &str, allow_origins: &[String]) -> Result<Option<Sso>, String> {
        if !s.is_set() {
            return Ok(None);
        }
        let issuer = s.issuer.clone().ok_or("[oidc] needs issuer")?;
        let client_id = s.client_id.clone().ok_or("[oidc] needs client_id")?;
        let secret = s.secret()?;
        let policy = OutboundPolicy::new(allow_origins)?;
        let issuer_url = url::Url::parse(&issuer).map_err(|e| format!("[oidc] issuer: {e}"))?;
        if issuer_url.scheme() != "https" && !policy.allows_origin(&issuer_url) {
            return Err(format!(
                "[oidc] issuer {issuer} must start with https:// (an http:// issuer only when its origin is in \
                 allow_origins)"
            ));
        }
        let name = s.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| {
            issuer_url.host_str().unwrap_or("the identity provider").trim_start_matches("www.").to_string()
        });
        let redirect = RedirectUrl::new(format!("{}{CALLBACK_PATH}", base_url.trim_end_matches('/')))
            .map_err(|e| format!("the callback address: {e}"))?;
        Ok(Some(Sso {
            issuer: IssuerUrl::new(issuer).map_err(|e| format!("[oidc] issuer: {e}"))?,
            name,
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(secret),
            redirect,
            scopes: s.scopes.clone(),
            email_claim: s.email_claim.clone(),
            groups_claim: s.groups_claim.clone(),
            rules: Rules { admin_groups: s.admin_groups.clone(), allow_provisioning: s.allow_provisioning },
            http: IdpHttp::new(policy).map_err(|e| format!("the identity provider's HTTP client: {e}"))?,
            cache: tokio::sync::Mutex::new(None),
        }))
    }

    /// The provider's name, for "Sign in with {name}".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The redirect URI to register at the provider.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.as_str()
    }

    /// The provider's metadata, read by discovery on first use and again after an hour.
    async fn discovered(&self, now: i64) -> Result<tokio::sync::MutexGuard<'_, Option<Discovered>>, SsoError> {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_none_or(|d| now - d.at >= DISCOVERY_SECS || now < d.at) {
            let metadata =
                CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await.map_err(|e| {
                    SsoError::Provider(format!("discovery at {} failed: {}", self.issuer.as_str(), chain(&e)))
                })?;
            *cache = Some(Discovered { metadata, at: now, jwks_at: now });
        }
        Ok(cache)
    }

    fn client(&self, metadata: &CoreProviderMetadata) -> ClientParts {
        CoreClient::from_provider_metadata(metadata.clone(), self.client_id.clone(), Some(self.client_secret.clone()))
            .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a sign-in: the provider's authorization address with a fresh state, nonce and
    /// PKCE challenge, and the [`Pending`] flow to keep.
    pub async fn begin(&self, now: i64) -> Result<Begun, SsoError> {
        let cache = self.discovered(now).await?;
        let metadata = &cache.as_ref().ok_or_else(|| SsoError::Provider("no discovery".into()))?.metadata;
        let client = self.client(metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Begun {
            url: url.to_string(),
            pending: Pending {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
                created: now,
            },
        })
    }

    /// Completes a sign-in at its callback: the code is exchanged for tokens and the ID token
    /// checked. `iss` is the callback's `iss` parameter (RFC 9207), when the provider sends one.
    pub async fn finish(
        &self,
        pending: Pending,
        code: &str,
        iss: Option<&str>,
        now: i64,
    ) -> Result<Identity, SsoError> {
        if now - pending.created > FLOW_SECS || now < pending.created - LEEWAY_SECS {
            return Err(SsoError::Stale);
        }
        if let Some(iss) = iss
            && iss != self.issuer.as_str()
        {
            return Err(Refusal::WrongIssuer(format!("the answer came from {iss}")).into());
        }
        let raw = {
            // A copy, so that a slow token endpoint holds up no other sign-in.
            let metadata = {
                let cache = self.discovered(now).await?;
                cache.as_ref().ok_or_else(|| SsoError::Provider("no discovery".into()))?.metadata.clone()
            };
            let client = self.client(&metadata);
            let request = client
                .exchange_code(AuthorizationCode::new(code.to_string()))
                .map_err(|e| SsoError::Provider(e.to_string()))?
                .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()));
            let response = request.request_async(&self.http).await.map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    SsoError::Provider(format!("the token endpoint refused the code ({})", r.error()))
                }
                other => SsoError::Provider(format!("the token endpoint failed: {}", chain(&other))),
            })?;
            response
                .id_token()
                .ok_or_else(|| SsoError::Provider("the token endpoint sent no ID token".into()))?
                .to_string()
        };
        self.verify_id_token(&raw, &pending.nonce, now).await
    }

    /// Checks an ID token as [`Sso::finish`] does: signature against the provider's keys
    /// (read again once when the token names a key they lack), `iss`, `aud`, `exp`, `iat` and
    /// `nonce`; then reads the email, its verification and the groups.
    pub async fn verify_id_token(&self, raw: &str, nonce: &str, now: i64) -> Result<Identity, SsoError> {
        if raw.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Malformed.into());
        }
        let token: Token = raw.parse().map_err(|_| Refusal::Malformed)?;
        let nonce = Nonce::new(nonce.to_string());
        let mut cache = self.discovered(now).await?;
        let first = {
            let d = cache.as_ref().ok_or_else(|| SsoError::Provider("no discovery".into()))?;
            token.claims(&self.verifier(&d.metadata, d.metadata.jwks().clone(), now), &nonce).map(|c| self.identity(c))
        };
        match first {
            Ok(identity) => Ok(identity),
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let d = cache.as_mut().ok_or_else(|| SsoError::Provider("no discovery".into()))?;
                if now - d.jwks_at < JWKS_REFRESH_SECS && now >= d.jwks_at {
                    return Err(Refusal::UnknownKey.into());
                }
                let jwks = JsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
                    .await
                    .map_err(|e| SsoError::Provider(format!("the key set could not be read: {}", chain(&e))))?;
                d.metadata = d.metadata.clone().set_jwks(jwks.clone());
                d.jwks_at = now;
                tracing::info!(issuer = self.issuer.as_str(), "read the identity provider's key set again");
                let verifier = self.verifier(&d.metadata, jwks, now);
                Ok(token.claims(&verifier, &nonce).map(|c| self.identity(c)).map_err(Refusal::from)?)
            }
            Err(e) => Err(Refusal::from(e).into()),
        }
    }

    fn verifier(
        &self,
        metadata: &CoreProviderMetadata,
        jwks: JsonWebKeySet<openidconnect::core::CoreJsonWebKey>,
        now: i64,
    ) -> CoreIdTokenVerifier<'static> {
        let algs: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| **a != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect();
        CoreIdTokenVerifier::new_confidential_client(
            self.client_id.clone(),
            self.client_secret.clone(),
            self.issuer.clone(),
            jwks,
        )
        .set_allowed_algs(algs)
        .set_time_fn(move || timestamp(now - LEEWAY_SECS))
        .set_issue_time_verifier_fn(move |iat| {
            let iat = iat.timestamp();
            if iat > now + LEEWAY_SECS {
                Err(format!("{IAT_PREFIX}in the future, {} s from now", iat - now))
            } else if iat < now - MAX_TOKEN_AGE_SECS {
                Err(format!("{IAT_PREFIX}{} s ago, more than {MAX_TOKEN_AGE_SECS} s", now - iat))
            } else {
                Ok(())
            }
        })
    }

    fn identity(&self, claims: &Claims) -> Identity {
        let other = &claims.additional_claims().claims;
        let email = if self.email_claim == "email" { claims.email().map(|e| e.as_str().to_string()) } else { None }
            .or_else(|| other.get(&self.email_claim).and_then(|v| v.as_str()).map(str::to_string));
        let verified = claims.email_verified().or_else(|| match other.get("email_verified") {
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(serde_json::Value::String(s)) => Some(s == "true"),
            _ => None,
        });
        let groups = match other.get(&self.groups_claim) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|g| g.as_str()).map(str::to_string).take(1000).collect()
            }
            Some(serde_json::Value::String(g)) => vec![g.clone()],
            _ => Vec::new(),
        };
        Identity {
            subject: claims.subject().as_str().to_string(),
            email,
            email_verified: verified == Some(true),
            groups,
        }
    }
}

type ClientParts = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn timestamp(t: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// An error and its causes in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A failed request to the provider, in words (no body, no secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// The HTTP client `openidconnect` talks to the provider through: our reqwest, bounded in
/// time (10 s to connect, 20 s in all) and size ([`MAX_BODY`]), `https://` only unless the
/// exact origin is allowed, and no redirects.
pub struct IdpHttp {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl IdpHttp {
    fn new(policy: OutboundPolicy) -> anyhow::Result<IdpHttp> {
        crate::net::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(format!("Cairn/{} (single sign-on)", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(IdpHttp { client, policy })
    }

    async fn send(&self, request: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, HttpError> {
        let url = url::Url::parse(&request.uri().to_string()).map_err(|e| HttpError(format!("bad address: {e}")))?;
        if url.scheme() != "https" && !self.policy.allows_origin(&url) {
            return Err(HttpError(format!("{} is not an https:// address", url.origin().ascii_serialization())));
        }
        let where_ = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError(format!("{where_}: {e}")))?;
        let mut res = self.client.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                HttpError(format!("{where_} did not answer in time"))
            } else {
                HttpError(format!("cannot reach {where_}: {}", chain(&e)))
            }
        })?;
        if res.content_length().is_some_and(|n| n as usize > MAX_BODY) {
            return Err(HttpError(format!("{where_} sent more than {MAX_BODY} bytes")));
        }
        let mut builder = openidconnect::http::Response::builder().status(res.status().as_u16());
        for (name, value) in res.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| HttpError(format!("{where_}: {}", chain(&e))))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError(format!("{where_} sent more than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|e| HttpError(format!("{where_}: {e}")))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
