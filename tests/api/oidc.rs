//! Sign-in through an OpenID Connect provider. The provider is a real one, the npm package
//! `oidc-provider` (scripts/oidc), started on 127.0.0.1 for each test; the ID token checks are
//! also driven with tokens signed here, against discovery and a key set served by a real local
//! HTTP server (tests/api/feedserver.rs).

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use cairn::app::sso::{self, Refusal, SsoError};
use cairn::config::{OidcSettings, Settings};
use fantoccini::Locator;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, Audience, EndUserEmail, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId, JsonWebKeySet, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::{Value, json};

use crate::feedserver::{FeedServer, Reply};
use crate::helpers::{EMAIL, TestApp, spawn_with};

const CLIENT_ID: &str = "cairn-test";
const CLIENT_SECRET: &str = "the-client-secret-never-shown";

/// Installs the pinned provider once per test run.
fn provider_script() -> PathBuf {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/oidc");
    let ready = READY.get_or_init(|| {
        let out = Command::new("bash").arg(dir.join("setup.sh")).output().map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    });
    if let Err(e) = ready {
        panic!("the OpenID provider cannot be installed (scripts/oidc/setup.sh):\n{e}");
    }
    dir.join("provider.mjs")
}

/// A running `oidc-provider`; it stops when dropped (its standard input closes, and it is killed).
struct Provider {
    child: Child,
    issuer: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider; [`Provider::configure`] gives it the client once Cairn's address is known.
    fn start() -> Provider {
        let script = provider_script();
        let mut child = Command::new("node")
            .arg(&script)
            .current_dir(script.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node scripts/oidc/provider.mjs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).expect("the provider did not start within 30 s");
        let issuer = serde_json::from_str::<Value>(&first).unwrap()["issuer"].as_str().unwrap().to_string();
        Provider { child, issuer, lines }
    }

    /// Registers Cairn (its callback under `base_url`) and the accounts, by login name.
    fn configure(&mut self, base_url: &str, accounts: Value) {
        let config = json!({
            "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "redirect_uris": [format!("{base_url}/login/oidc/callback")]},
            "accounts": accounts,
        });
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{config}").unwrap();
        stdin.flush().unwrap();
        let ready = self.lines.recv_timeout(Duration::from_secs(30)).expect("the provider did not take its client");
        assert!(ready.contains("\"ready\":true"), "{ready}");
    }
}

/// `[oidc]` for the provider at `issuer`.
fn oidc_settings(issuer: &str, provisioning: bool) -> OidcSettings {
    let mut s = Settings::defaults().oidc;
    s.issuer = Some(issuer.to_string());
    s.name = Some("Test University Login".into());
    s.client_id = Some(CLIENT_ID.into());
    s.client_secret = Some(CLIENT_SECRET.into());
    s.scopes = vec!["openid".into(), "email".into(), "groups".into()];
    s.admin_groups = vec!["cairn-admins".into()];
    s.allow_provisioning = provisioning;
    s
}

fn accounts() -> Value {
    json!({
        "ada": {"email": "Ada@Example.EDU", "email_verified": true, "groups": ["staff"]},
        "ada-admin": {"email": EMAIL, "email_verified": true, "groups": ["staff", "cairn-admins"]},
        "newbie": {"email": "new@example.edu", "email_verified": true, "groups": ["staff"]},
        "boss": {"email": "boss@example.edu", "email_verified": true, "groups": ["cairn-admins"]},
        "unverified": {"email": "unverified@example.edu", "email_verified": false, "groups": ["cairn-admins"]},
    })
}

/// Cairn with `[oidc]` pointing at a fresh provider that knows [`accounts`].
async fn app_with_provider(provisioning: bool, adjust: impl FnOnce(&mut Settings)) -> (TestApp, Provider) {
    let mut provider = Provider::start();
    let issuer = provider.issuer.clone();
    let app = spawn_with(|s| {
        s.oidc = oidc_settings(&issuer, provisioning);
        s.allow_origins = vec![issuer.clone()];
        adjust(s);
    })
    .await;
    provider.configure(&app.address, accounts());
    (app, provider)
}

/// Signs in as `login` at the provider with a fresh HTTP client (so no earlier sign-in at the
/// provider is reused), following every redirect by hand and submitting the provider's login
/// form; returns the client (signed in at Cairn when it worked) and Cairn's answer to the callback.
async fn sign_in_through(app: &TestApp, provider: &Provider, login: &str) -> (reqwest::Client, reqwest::Response) {
    let client = crate::helpers::client();
    let mut url = app.url("/login/oidc?next=/admin/institution");
    let mut logged_in = false;
    for _ in 0..12 {
        let res = client.get(&url).send().await.unwrap();
        if url.starts_with(&app.url("/login/oidc/callback")) {
            assert!(logged_in, "the provider's login form was never shown");
            return (client, res);
        }
        if res.status().is_redirection() {
            let location = res.headers()["location"].to_str().unwrap();
            url = reqwest::Url::parse(&url).unwrap().join(location).unwrap().to_string();
            continue;
        }
        let page = res.text().await.unwrap();
        assert!(url.starts_with(&provider.issuer), "stopped at {url}: {page}");
        // The provider's login form: post it as a browser would, then follow on.
        let action = page.split("action=\"").nth(1).and_then(|s| s.split('"').next()).expect("a form");
        let target = reqwest::Url::parse(&url).unwrap().join(action).unwrap();
        let res = client
            .post(target.clone())
            .form(&[("prompt", "login"), ("login", login), ("password", "anything")])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_redirection(), "the provider's login answered {}", res.status());
        logged_in = true;
        url = target.join(res.headers()["location"].to_str().unwrap()).unwrap().to_string();
    }
    panic!("the sign-in did not come back to Cairn");
}

fn instructor(app: &TestApp, email: &str) -> Option<cairn::db::instructors::Instructor> {
    let mut conn = app.pool.get().unwrap();
    cairn::db::instructors::find_by_email(&mut conn, email).unwrap()
}

#[tokio::test]
async fn an_instructor_signs_in_through_the_provider_in_a_real_browser() {
    let (app, provider) = app_with_provider(false, |_| {}).await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        browser.goto(&app.url("/admin/institution")).await?;
        assert!(browser.current_url().await?.path().starts_with("/login"));
        let button = browser.find(Locator::Css("#sso")).await?;
        assert_eq!(button.text().await?, "Sign in with Test University Login");
        button.click().await?;
        // The provider's own login page.
        browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("input[name=login]")).await?;
        assert!(browser.current_url().await?.as_str().starts_with(&provider.issuer));
        browser.find(Locator::Css("input[name=login]")).await?.send_keys("ada").await?;
        browser.find(Locator::Css("input[name=password]")).await?.send_keys("anything").await?;
        browser.find(Locator::Css("button[type=submit]")).await?.click().await?;
        // Back at Cairn, signed in, on the page first asked for.
        browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_url(&reqwest::Url::parse(&app.url("/admin/institution")).unwrap())
            .await?;
        let heading = browser.find(Locator::Css("main h1")).await?.text().await?;
        assert_eq!(heading, "Institution profile");
        let header = browser.find(Locator::Css("header")).await?.text().await?;
        assert!(header.contains("Sign out"), "{header}");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("browser flow");

    // A server-side session, as a password sign-in makes.
    let ada = instructor(&app, EMAIL).unwrap();
    let mut conn = app.pool.get().unwrap();
    assert_eq!(cairn::db::sessions::count_for(&mut conn, ada.id).unwrap(), 1);
}

#[tokio::test]
async fn the_flow_signs_in_an_existing_instructor_whose_session_ends_at_sign_out() {
    let (app, provider) = app_with_provider(false, |_| {}).await;
    let ada = instructor(&app, EMAIL).unwrap();
    let before = { cairn::db::sessions::count_for(&mut app.pool.get().unwrap(), ada.id).unwrap() };
    let (client, res) = sign_in_through(&app, &provider, "ada").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/institution");
    let page = client.get(app.url("/admin/institution")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert_eq!(cairn::db::sessions::count_for(&mut app.pool.get().unwrap(), ada.id).unwrap(), before + 1);
    // Not an admin group member: the flag is left as it was (create() made an admin).
    assert!(instructor(&app, EMAIL).unwrap().admin);

    // Sign-out revokes it on the server.
    let csrf = crate::helpers::csrf_in(&page);
    let res = client.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(cairn::db::sessions::count_for(&mut app.pool.get().unwrap(), ada.id).unwrap(), before);
    assert_eq!(client.get(app.url("/admin/institution")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn provisioning_makes_instructors_and_admin_groups_make_admins() {
    let (app, provider) = app_with_provider(true, |_| {}).await;

    let (_, res) = sign_in_through(&app, &provider, "newbie").await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let newbie = instructor(&app, "new@example.edu").expect("provisioned");
    assert!(!newbie.admin, "not in an admin group");
    assert!(newbie.password_hash.is_empty(), "no password");

    let (_, res) = sign_in_through(&app, &provider, "boss").await;
    assert_eq!(res.status(), 303);
    assert!(instructor(&app, "boss@example.edu").expect("provisioned").admin, "admin group member");

    // An unverified email is refused, and no one is made for it.
    let (_, res) = sign_in_through(&app, &provider, "unverified").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("has not verified the email address"));
    assert!(instructor(&app, "unverified@example.edu").is_none());

    // An existing instructor in an admin group becomes an admin; leaving it demotes no one.
    {
        let mut conn = app.pool.get().unwrap();
        cairn::db::instructors::set_admin(&mut conn, instructor(&app, EMAIL).unwrap().id, false).unwrap();
    }
    let (_, res) = sign_in_through(&app, &provider, "ada").await;
    assert_eq!(res.status(), 303);
    assert!(!instructor(&app, EMAIL).unwrap().admin, "no admin group: unchanged");
    let (_, res) = sign_in_through(&app, &provider, "ada-admin").await;
    assert_eq!(res.status(), 303);
    assert!(instructor(&app, EMAIL).unwrap().admin, "admin group: promoted");
    let (_, res) = sign_in_through(&app, &provider, "ada").await;
    assert_eq!(res.status(), 303);
    assert!(instructor(&app, EMAIL).unwrap().admin, "left the group: not demoted");
}

#[tokio::test]
async fn without_provisioning_an_unknown_email_is_refused() {
    let (app, provider) = app_with_provider(false, |_| {}).await;
    let (_, res) = sign_in_through(&app, &provider, "boss").await;
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(page.contains("no instructor account has the email address boss@example.edu"), "{page}");
    assert!(instructor(&app, "boss@example.edu").is_none());
}

#[tokio::test]
async fn hostile_callbacks_get_a_clear_400_and_starts_are_limited() {
    let (app, _provider) = app_with_provider(false, |_| {}).await;
    for path in [
        "/login/oidc/callback",
        "/login/oidc/callback?state=junk&code=junk",
        "/login/oidc/callback?code=junk",
        &format!("/login/oidc/callback?state={}&code=x", "a".repeat(10_000)),
        "/login/oidc/callback?state=%ZZ",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 400, "{path}");
        let page = res.text().await.unwrap();
        assert!(page.contains("Start again"), "{path}: {page}");
        assert!(!page.contains(CLIENT_SECRET));
    }
    // A real state with the provider's refusal, or an answer naming another issuer: 403, and
    // the state is used up either way.
    let state_of = |res: &reqwest::Response| {
        let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        location.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned()
    };
    let start = app.get("/login/oidc").await;
    assert_eq!(start.status(), 303);
    let state = state_of(&start);
    let res = app.get(&format!("/login/oidc/callback?state={state}&error=access_denied")).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("did not sign you in (access_denied)"));
    let res = app.get(&format!("/login/oidc/callback?state={state}&code=x")).await;
    assert_eq!(res.status(), 400, "used once");
    let state = state_of(&app.get("/login/oidc").await);
    let res = app.get(&format!("/login/oidc/callback?state={state}&code=x&iss=https%3A%2F%2Fevil.example")).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("issued by someone else"));

    // Each start keeps a flow: a client may start 30 in ten minutes (two were started above).
    for i in 2..30 {
        let res = app.get("/login/oidc").await;
        assert_eq!(res.status(), 303, "start {i}");
    }
    let res = app.get("/login/oidc").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn passwords_off_leaves_only_the_provider_and_needs_one_to_start() {
    let (app, provider) = app_with_provider(false, |s| s.auth.passwords = false).await;
    let page = app.get_html("/login").await;
    assert!(page.contains("Sign in with Test University Login"));
    assert!(!page.contains("type=\"password\""), "{page}");
    let csrf = crate::helpers::csrf_in(&app.get_html("/join").await);
    let form = [("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", crate::helpers::PASSWORD)];
    let res = app.client.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Password sign-in is turned off"));
    assert_eq!(sign_in_through(&app, &provider, "ada").await.1.status(), 303);

    // Without [oidc], start-up refuses.
    let dir = tempfile::tempdir().unwrap();
    let mut s = crate::helpers::settings(dir.path());
    s.auth.passwords = false;
    let err = cairn::startup::Application::build(&s).err().expect("refused").to_string();
    assert!(err.contains("[auth] passwords = false") && err.contains("[oidc]"), "{err}");
    // A partial section, too; and the secret never shows in the settings' debug form.
    s.auth.passwords = true;
    s.oidc = oidc_settings(&provider.issuer, false);
    s.oidc.client_id = None;
    let err = cairn::startup::Application::build(&s).err().expect("refused").to_string();
    assert!(err.contains("client_id"), "{err}");
    s.oidc = oidc_settings("http://idp.example.edu", false);
    let err = cairn::startup::Application::build(&s).err().expect("refused").to_string();
    assert!(err.contains("https://") && !err.contains(CLIENT_SECRET), "{err}");
    assert!(!format!("{s:?}").contains(CLIENT_SECRET));
}

// ID tokens signed here, checked against a discovery document and a key set served by a real
// local HTTP server.

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Groups {
    groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

type TestToken = IdToken<Groups, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// An Ed25519 signing key with key id `kid`.
fn signing_key(kid: &str) -> CoreEdDsaPrivateSigningKey {
    use base64::Engine as _;
    let seed: [u8; 32] = rand::random();
    // PKCS#8 for Ed25519: a fixed prefix, then the 32-byte seed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(JsonWebKeyId::new(kid.into()))).unwrap()
}

fn jwks(keys: &[&CoreEdDsaPrivateSigningKey]) -> Reply {
    let set: JsonWebKeySet<CoreJsonWebKey> = JsonWebKeySet::new(keys.iter().map(|k| k.as_verification_key()).collect());
    Reply::typed(serde_json::to_vec(&set).unwrap(), "application/json")
}

struct Claimed<'a> {
    issuer: &'a str,
    audience: &'a str,
    nonce: &'a str,
    issued: i64,
    expires: i64,
    email_verified: bool,
}

fn token(key: &CoreEdDsaPrivateSigningKey, c: &Claimed<'_>) -> String {
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap();
    let standard = StandardClaims::new(SubjectIdentifier::new("subject-1".into()))
        .set_email(Some(EndUserEmail::new("Ada@Example.edu".into())))
        .set_email_verified(Some(c.email_verified));
    let claims = IdTokenClaims::new(
        IssuerUrl::new(c.issuer.into()).unwrap(),
        vec![Audience::new(c.audience.into())],
        at(c.expires),
        at(c.issued),
        standard,
        Groups { groups: vec!["staff".into(), "cairn-admins".into()] },
    )
    .set_nonce(Some(Nonce::new(c.nonce.into())));
    TestToken::new(claims, key, CoreJwsSigningAlgorithm::EdDsa, None, None).unwrap().to_string()
}

#[tokio::test]
async fn id_tokens_with_a_wrong_audience_nonce_time_issuer_or_key_are_refused() {
    let server = FeedServer::start().await;
    let issuer = server.origin();
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    });
    server.set("/.well-known/openid-configuration", Reply::typed(discovery.to_string(), "application/json"));
    let (k1, k2, stranger) = (signing_key("k1"), signing_key("k2"), signing_key("k9"));
    server.set("/jwks", jwks(&[&k1]));
    let sso =
        sso::Sso::from_settings(&oidc_settings(&issuer, false), "http://127.0.0.1:9", std::slice::from_ref(&issuer))
            .unwrap()
            .unwrap();

    let now = cairn::clock::system_now();
    let good = Claimed {
        issuer: &issuer,
        audience: CLIENT_ID,
        nonce: "the-nonce",
        issued: now,
        expires: now + 300,
        email_verified: true,
    };
    let who = sso.verify_id_token(&token(&k1, &good), "the-nonce", now).await.expect("a good token");
    assert_eq!(who.email.as_deref(), Some("Ada@Example.edu"));
    assert!(who.email_verified);
    assert_eq!(who.groups, ["staff", "cairn-admins"]);
    assert_eq!((server.hits("/.well-known/openid-configuration"), server.hits("/jwks")), (1, 1));

    let refusal = |r: Result<sso::Identity, SsoError>| match r {
        Err(SsoError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let wrong_aud = token(&k1, &Claimed { audience: "someone-else", ..good });
    assert!(matches!(refusal(sso.verify_id_token(&wrong_aud, "the-nonce", now).await), Refusal::WrongAudience(_)));
    let wrong_nonce = token(&k1, &Claimed { nonce: "another", ..good });
    assert!(matches!(refusal(sso.verify_id_token(&wrong_nonce, "the-nonce", now).await), Refusal::WrongNonce(_)));
    let expired = token(&k1, &Claimed { issued: now - 7200, expires: now - 3600, ..good });
    assert!(matches!(refusal(sso.verify_id_token(&expired, "the-nonce", now).await), Refusal::Expired(_)));
    let future = token(&k1, &Claimed { issued: now + 3600, expires: now + 7200, ..good });
    assert!(matches!(refusal(sso.verify_id_token(&future, "the-nonce", now).await), Refusal::IssueTime(_)));
    let other_issuer = token(&k1, &Claimed { issuer: "https://evil.example", ..good });
    assert!(matches!(refusal(sso.verify_id_token(&other_issuer, "the-nonce", now).await), Refusal::WrongIssuer(_)));
    let forged = format!("{}x", token(&k1, &good));
    assert!(matches!(
        refusal(sso.verify_id_token(&forged, "the-nonce", now).await),
        Refusal::BadSignature(_) | Refusal::Malformed
    ));
    assert_eq!(refusal(sso.verify_id_token("not a token", "the-nonce", now).await), Refusal::Malformed);
    assert_eq!(server.hits("/jwks"), 1, "none of these needed the keys again");

    // An unknown key: the key set is read again once, then the token is refused.
    let later = now + 30;
    let unknown = token(&stranger, &Claimed { issued: later, expires: later + 300, ..good });
    assert_eq!(refusal(sso.verify_id_token(&unknown, "the-nonce", later).await), Refusal::UnknownKey);
    assert_eq!(server.hits("/jwks"), 2);
    // Right after, another unknown key is refused without reading the keys again.
    assert_eq!(refusal(sso.verify_id_token(&unknown, "the-nonce", later + 1).await), Refusal::UnknownKey);
    assert_eq!(server.hits("/jwks"), 2);

    // A rotated key the provider now publishes is found by that one new read.
    server.set("/jwks", jwks(&[&k1, &k2]));
    let later = now + 60;
    let rotated = token(&k2, &Claimed { issued: later, expires: later + 300, ..good });
    assert!(sso.verify_id_token(&rotated, "the-nonce", later).await.is_ok());
    assert_eq!(server.hits("/jwks"), 3);
    assert!(sso.verify_id_token(&rotated, "the-nonce", later + 1).await.is_ok());
    assert_eq!(server.hits("/jwks"), 3, "cached");

    // An unverified email passes the token checks but not admission.
    let unverified = token(&k1, &Claimed { email_verified: false, issued: later, expires: later + 300, ..good });
    let who = sso.verify_id_token(&unverified, "the-nonce", later).await.unwrap();
    assert!(!who.email_verified);
}
