use std::path::{Path, PathBuf};

use cairn::config::Settings;
use cairn::db::DbPool;
use cairn::startup::Application;
use reqwest::multipart;
use tempfile::TempDir;

pub const EMAIL: &str = "ada@example.edu";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub harvester: cairn::harvest::Harvester,
    pub ledger: std::sync::Arc<cairn::ledger::Ledger>,
    pub notifier: cairn::notify::Notifier,
    pub client: reqwest::Client,
    pub pool: DbPool,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    _temp: Option<TempDir>,
}

/// Test settings: a random port, the given data dir, no background harvesting or scheduled
/// newsletter (tests run passes and send issues themselves) and no SMTP (mail goes to .eml files) unless a test says otherwise.
pub fn settings(data_dir: &Path) -> Settings {
    // The declared defaults only: no CAIRN_* variable or ./cairn.toml of the machine leaks in.
    let mut s = Settings::defaults();
    s.bind = "127.0.0.1:0".parse().expect("address");
    s.data_dir = data_dir.to_path_buf();
    s.institution_name = "Test University".into();
    s.harvest.enabled = false;
    s.newsletter.enabled = false;
    s.mail.smtp_host = None;
    s.allow_origins.clear();
    s
}

/// A fresh server with an empty data dir and one instructor (EMAIL / PASSWORD).
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Like `spawn_app`, with the settings adjusted first (allowed origins, SMTP, limits).
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut s = settings(temp.path());
    adjust(&mut s);
    let mut app = start_with(&s).await;
    let mut conn = app.pool.get().unwrap();
    cairn::app::instructors::create(&mut conn, EMAIL, PASSWORD, cairn::clock::system_now()).expect("create instructor");
    complete_profile(&mut conn);
    drop(conn);
    app._temp = Some(temp);
    app
}

/// Gives the institution profile the web address and contact email it needs before the first
/// award (its name comes from the settings), as an instructor does on /admin/institution.
pub fn complete_profile(conn: &mut diesel::SqliteConnection) {
    let name = cairn::db::institution::get(conn).unwrap().name;
    let form = cairn::app::institution::InstitutionForm {
        name,
        url: "https://university.example.edu/".into(),
        email: "badges@university.example.edu".into(),
        description: String::new(),
    };
    cairn::app::institution::update(conn, &form, None, cairn::clock::system_now()).expect("complete the profile");
}

/// Starts a server on an existing data dir (used to test restarts).
pub async fn start(data_dir: &Path) -> TestApp {
    start_with(&settings(data_dir)).await
}

pub async fn start_with(s: &Settings) -> TestApp {
    let app = Application::build(s).expect("build app");
    let address = app.base_url().to_string();
    let pool = app.pool();
    let handle = app.handle();
    let harvester = app.harvester();
    let ledger = app.ledger();
    let notifier = app.notifier();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        harvester,
        ledger,
        notifier,
        client: client(),
        pool,
        data_dir: s.data_dir.clone(),
        handle,
        _temp: None,
    }
}

pub fn client() -> reqwest::Client {
    cairn::net::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        // Never reuse a connection the server may be closing (its keep-alive is 5 s).
        .pool_idle_timeout(cairn::net::POOL_IDLE)
        .build()
        .unwrap()
}

/// The value of the first `name="csrf_token"` input in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF token") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.unwrap()
    }

    /// A CSRF token valid for the current session (taken from a page with a form).
    pub async fn csrf(&self) -> String {
        let page = self.get("/login").await.text().await.unwrap();
        if page.contains("csrf_token") {
            return csrf_in(&page);
        }
        csrf_in(&self.get_html("/admin").await)
    }

    pub async fn login_as(&self, email: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.client
            .post(self.url("/login"))
            .form(&[("csrf_token", csrf.as_str()), ("email", email), ("password", password), ("next", "")])
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self) {
        let res = self.login_as(EMAIL, PASSWORD).await;
        assert_eq!(res.status(), 303, "login should redirect");
    }

    /// POSTs a form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.client.post(self.url(path)).form(&all).send().await.expect("POST")
    }

    /// POSTs a multipart form with the CSRF token and an optional file in `file_field`.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        file: Option<(Vec<u8>, &str)>,
    ) -> reqwest::Response {
        let mut form = multipart::Form::new().text("csrf_token", self.csrf().await);
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        if let Some((bytes, name)) = file {
            form = form.part(file_field.to_string(), multipart::Part::bytes(bytes).file_name(name.to_string()));
        }
        self.client.post(self.url(path)).multipart(form).send().await.expect("POST multipart")
    }

    /// Creates a course and returns its admin id (from the redirect).
    pub async fn create_course(&self, title: &str) -> i64 {
        let res = self.post_form("/admin/courses", &[("title", title), ("description", "About it")]).await;
        assert_eq!(res.status(), 303);
        id_from_location(&res, "/admin/courses/")
    }

    pub async fn create_module(&self, course: i64, title: &str) -> i64 {
        let res =
            self.post_form(&format!("/admin/courses/{course}/modules"), &[("title", title), ("description", "")]).await;
        assert_eq!(res.status(), 303);
        let mut conn = self.pool.get().unwrap();
        let outline = cairn::db::courses::outline(&mut conn, course).unwrap();
        outline.modules.iter().find(|m| m.module.title == title).expect("module created").module.id
    }

    pub async fn create_task(&self, module: i64, title: &str, hashtag: &str) -> reqwest::Response {
        self.post_multipart(
            &format!("/admin/modules/{module}/tasks"),
            &[("title", title), ("hashtag", hashtag), ("description", "Do it"), ("criteria", "**Post** it")],
            "badge",
            None,
        )
        .await
    }

    /// Stops the server; returns its data dir and the guard that keeps a temporary one alive.
    pub async fn stop(self) -> (PathBuf, Option<TempDir>) {
        self.handle.stop(true).await;
        (self.data_dir, self._temp)
    }
}

/// A new client with its own cookies that signs in (taking a CSRF token from /login first),
/// optionally as if behind a proxy that sent `X-Forwarded-For: forwarded`.
pub async fn login_with(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> (reqwest::Client, reqwest::Response) {
    let c = client();
    let mut get = c.get(app.url("/login"));
    if let Some(f) = forwarded {
        get = get.header("x-forwarded-for", f);
    }
    let page = get.send().await.expect("GET /login").text().await.unwrap();
    let csrf = csrf_in(&page);
    let mut post = c.post(app.url("/login")).form(&[
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("password", password),
        ("next", ""),
    ]);
    if let Some(f) = forwarded {
        post = post.header("x-forwarded-for", f);
    }
    let res = post.send().await.expect("POST /login");
    (c, res)
}

/// Settings that believe `X-Forwarded-For` from 127.0.0.1, as behind a reverse proxy there.
pub fn behind_local_proxy(s: &mut cairn::config::Settings) {
    s.trusted_proxies = cairn::config::TrustedProxies::parse(&["127.0.0.1".to_string()]).unwrap();
}

/// The `cairn` binary, hermetic: no `CAIRN_*` variable of the environment the tests run in
/// reaches it, and it runs in an empty directory, so no `./cairn.toml` is read either.
pub fn cairn_cmd() -> std::process::Command {
    static EMPTY_DIR: std::sync::OnceLock<TempDir> = std::sync::OnceLock::new();
    let dir = EMPTY_DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CAIRN_") {
            c.env_remove(var);
        }
    }
    c.current_dir(dir.path());
    c
}

pub fn id_from_location(res: &reqwest::Response, prefix: &str) -> i64 {
    let loc = res.headers().get("location").expect("redirect").to_str().unwrap();
    let rest = loc.strip_prefix(prefix).unwrap_or_else(|| panic!("{loc} does not start with {prefix}"));
    rest.split(['#', '/', '?']).next().unwrap().parse().unwrap()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// A small valid PNG.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 90, 140, 255]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A file of the repository, by its path from the root.
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}
