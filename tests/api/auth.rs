use std::time::{Duration, Instant};

use crate::helpers::{
    EMAIL, PASSWORD, TestApp, behind_local_proxy, cairn_cmd, location, login_with, spawn_app, spawn_with,
};

#[tokio::test]
async fn instructor_pages_redirect_to_login_when_signed_out() {
    let app = spawn_app().await;
    for path in [
        "/admin",
        "/admin/courses/1",
        "/admin/modules/1",
        "/admin/tasks/1",
        "/admin/institution",
        "/admin/modules/1/tasks/new",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/login?next=%2Fadmin"), "{path} -> {}", location(&res));
    }
    // A state-changing request while signed out changes nothing.
    let res = app.post_form("/admin/courses", &[("title", "Sneaky")]).await;
    assert_eq!(res.status(), 303);
    let mut conn = app.pool.get().unwrap();
    assert!(cairn::db::courses::list_courses(&mut conn).unwrap().is_empty());
}

#[tokio::test]
async fn login_needs_the_right_password_and_returns_to_the_page_asked_for() {
    let app = spawn_app().await;
    let res = app.login_as(EMAIL, "wrong password!").await;
    assert_eq!(res.status(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains("do not match"), "{body}");
    assert!(body.contains(EMAIL), "the typed email is kept");
    assert_eq!(app.get("/admin").await.status(), 303);

    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "ADA@example.edu"),
            ("password", PASSWORD),
            ("next", "/admin/institution"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin/institution");
    assert_eq!(app.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let app = spawn_app().await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD), ("next", "//evil.example/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin");
}

#[tokio::test]
async fn the_session_cookie_is_httponly_samesite_lax_and_signed() {
    let app = spawn_app().await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = res.headers().get("set-cookie").expect("session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("cairn_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // The cookie carries a random id and nothing else; a forged one is ignored.
    let value = cookie.split(';').next().unwrap().trim_start_matches("cairn_session=");
    assert!(!value.contains("instructor") && value.len() < 200, "{value}");
    let last = value.chars().last().unwrap();
    let forged = format!("{}{}", &value[..value.len() - 1], if last == 'a' { 'b' } else { 'a' });
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = other.get(app.url("/admin")).header("cookie", format!("cairn_session={forged}")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = other.get(app.url("/admin")).header("cookie", format!("cairn_session={value}")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the genuine cookie works");
}

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_refused() {
    let app = spawn_app().await;
    app.login().await;
    let res = app.client.post(app.url("/admin/courses")).form(&[("title", "No token")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(app.url("/admin/courses"))
        .form(&[("title", "Wrong token"), ("csrf_token", &"0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("CSRF"));
    // Multipart forms too.
    let form = reqwest::multipart::Form::new().text("title", "x").text("hashtag", "#no-token");
    let course = app.create_course("Tokens").await;
    let module = app.create_module(course, "M").await;
    let res = app.client.post(app.url(&format!("/admin/modules/{module}/tasks"))).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // Logout and login need it as well.
    let res = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res =
        app.client.post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let mut conn = app.pool.get().unwrap();
    let titles: Vec<String> =
        cairn::db::courses::list_courses(&mut conn).unwrap().into_iter().map(|c| c.title).collect();
    assert_eq!(titles, vec!["Tokens".to_string()]);
    assert!(cairn::db::courses::list_tasks(&mut conn).unwrap().is_empty());
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_account() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.login_as(EMAIL, "not the password").await.status(), 401);
    }
    // Now even the right password must wait.
    let res = app.login_as(EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Another account from the same address is not locked yet.
    let mut conn = app.pool.get().unwrap();
    cairn::app::instructors::create(&mut conn, "grace@example.edu", PASSWORD, cairn::clock::system_now()).unwrap();
    drop(conn);
    assert_eq!(app.login_as("grace@example.edu", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    app.login().await;
    assert_eq!(app.get("/admin").await.status(), 200);
    let res = app.post_form("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 303);
}

/// The `cairn_session` cookie a response set.
fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cairn_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// GET /admin with only `cookie`: 200 when it is a live session.
async fn admin_with(app: &TestApp, cookie: &str) -> reqwest::Response {
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    bare.get(app.url("/admin")).header("cookie", cookie).send().await.unwrap()
}

#[tokio::test]
async fn a_cookie_saved_before_sign_out_no_longer_opens_admin() {
    let app = spawn_app().await;
    let (client, res) = login_with(&app, EMAIL, PASSWORD, None).await;
    assert_eq!(res.status(), 303);
    let saved = session_cookie(&res);
    assert_eq!(admin_with(&app, &saved).await.status(), 200);
    let page = client.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::csrf_in(&page);
    let res = client.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = admin_with(&app, &saved).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    let n = cairn::db::sessions::count_for(&mut app.pool.get().unwrap(), 1).unwrap();
    assert_eq!(n, 0, "the session row is gone");
}

#[tokio::test]
async fn changing_the_password_signs_out_every_session() {
    let app = spawn_app().await;
    let (a, _) = login_with(&app, EMAIL, PASSWORD, None).await;
    let (_b, res) = login_with(&app, EMAIL, PASSWORD, None).await;
    let b_cookie = session_cookie(&res);
    assert_eq!(admin_with(&app, &b_cookie).await.status(), 200);

    let page = a.get(app.url("/admin/password")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::csrf_in(&page);
    let new = "a much better passphrase";
    // A wrong current password or a mismatch changes nothing.
    let res = a
        .post(app.url("/admin/password"))
        .form(&[("csrf_token", csrf.as_str()), ("current", "wrong one!!"), ("new", new), ("again", new)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not your current password"));
    assert_eq!(admin_with(&app, &b_cookie).await.status(), 200);

    let res = a
        .post(app.url("/admin/password"))
        .form(&[("csrf_token", csrf.as_str()), ("current", PASSWORD), ("new", new), ("again", new)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("every session"));
    assert_eq!(a.get(app.url("/admin")).send().await.unwrap().status(), 303, "this browser is signed out");
    assert_eq!(admin_with(&app, &b_cookie).await.status(), 303, "the other browser is signed out");
    assert_eq!(login_with(&app, EMAIL, PASSWORD, None).await.1.status(), 401);
    assert_eq!(login_with(&app, EMAIL, new, None).await.1.status(), 303);
}

#[tokio::test]
async fn cairn_admin_reset_password_signs_the_instructor_out() {
    let app = spawn_app().await;
    let (_, res) = login_with(&app, EMAIL, PASSWORD, None).await;
    let cookie = session_cookie(&res);
    assert_eq!(admin_with(&app, &cookie).await.status(), 200);
    let dir = app.data_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        cairn_cmd()
            .env("CAIRN_DATA_DIR", &dir)
            .env("CAIRN_PASSWORD", "reset by the admin 42")
            .args(["admin", "reset-password", "--email", EMAIL])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) signed out"));
    assert_eq!(admin_with(&app, &cookie).await.status(), 303);
    assert_eq!(login_with(&app, EMAIL, "reset by the admin 42", None).await.1.status(), 303);
    // An unknown email is an error, and a short password is refused.
    let dir = app.data_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        cairn_cmd()
            .env("CAIRN_DATA_DIR", &dir)
            .env("CAIRN_PASSWORD", "short")
            .args(["admin", "reset-password", "--email", EMAIL])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_expiry() {
    let app = spawn_with(|s| {
        s.sessions.idle_secs = 300;
        s.sessions.absolute_secs = 3600;
    })
    .await;
    let set = |sql: &str| {
        use diesel::RunQueryDsl;
        diesel::sql_query(sql).execute(&mut app.pool.get().unwrap()).unwrap();
    };
    let now = cairn::clock::system_now();
    let (_, res) = login_with(&app, EMAIL, PASSWORD, None).await;
    let cookie = session_cookie(&res);
    // Used four minutes ago: still alive (idle expiry is five).
    set(&format!("UPDATE sessions SET last_seen_at = {}", now - 240));
    assert_eq!(admin_with(&app, &cookie).await.status(), 200);
    set(&format!("UPDATE sessions SET last_seen_at = {}", now - 301));
    assert_eq!(admin_with(&app, &cookie).await.status(), 303, "idle too long");

    let (_, res) = login_with(&app, EMAIL, PASSWORD, None).await;
    let cookie = session_cookie(&res);
    set(&format!("UPDATE sessions SET created_at = {}", now - 3500));
    assert_eq!(admin_with(&app, &cookie).await.status(), 200, "in use and not yet an hour old");
    set(&format!("UPDATE sessions SET created_at = {}", now - 3601));
    assert_eq!(admin_with(&app, &cookie).await.status(), 303, "past the absolute expiry, however busy");
}

#[tokio::test]
async fn next_never_leads_off_the_site() {
    let app = spawn_app().await;
    for next in ["/\t/evil.example", "//evil", "/\\evil", "https://evil", "/\r\n/evil", "\\\\evil"] {
        let csrf = app.csrf().await;
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/admin", "{next:?}");
    }
    // Signed in now: /login sends straight on to `next`, checked the same way.
    for query in ["next=/%09/evil.example", "next=//evil", "next=/%5Cevil", "next=https://evil", "next=%2F%2Fevil"] {
        let res = app.get(&format!("/login?{query}")).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/admin", "{query}");
    }
    let res = app.get("/login?next=/admin/institution%3Fx%3D1").await;
    assert_eq!(location(&res), "/admin/institution?x=1", "a same-site path is kept");
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_from_one_address_does_not_lock_out_another() {
    let app = spawn_with(behind_local_proxy).await;
    let attempts = (0..30).map(|_| {
        let app = &app;
        async move { login_with(app, EMAIL, "a wrong password", Some("203.0.113.7")).await.1.status().as_u16() }
    });
    let statuses = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(attempts))
        .await
        .expect("the burst is answered in time");
    let failed = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(failed, 5, "only five guesses are checked: {statuses:?}");
    assert_eq!(refused, 25);
    // The right password from the attacker's address must wait…
    assert_eq!(login_with(&app, EMAIL, PASSWORD, Some("203.0.113.7")).await.1.status(), 429);
    // …but the instructor at another address signs in at once.
    assert_eq!(login_with(&app, EMAIL, PASSWORD, Some("198.51.100.9")).await.1.status(), 303);
}

#[tokio::test]
async fn parallel_logins_do_not_starve_other_pages() {
    let app = spawn_with(behind_local_proxy).await;
    let started = Instant::now();
    let logins = (0..30).map(|i| {
        let app = &app;
        async move {
            let password = if i % 2 == 0 { PASSWORD } else { "not the password" };
            login_with(app, EMAIL, password, Some(&format!("198.51.100.{}", i + 1))).await.1.status().as_u16()
        }
    });
    let pages = async {
        // While the logins hash, the health check and a page that needs the database still answer.
        let mut worst = Duration::ZERO;
        for _ in 0..10 {
            for path in ["/health", "/", "/institution"] {
                let t = Instant::now();
                let res = app.client.get(app.url(path)).send().await.unwrap();
                assert_eq!(res.status(), 200, "{path}");
                worst = worst.max(t.elapsed());
            }
        }
        worst
    };
    let (statuses, worst) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(futures_util::future::join_all(logins), pages)
    })
    .await
    .expect("logins and pages finish in time");
    assert!(worst < Duration::from_secs(2), "a page took {worst:?} during the login burst");
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 15, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 15, "{statuses:?}");
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_private_and_loosened_modes_are_fixed_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let app = crate::helpers::start(&dir).await;
    // A mail written to a file, as when no SMTP server is set.
    cairn::email::Mailer::new(&crate::helpers::settings(&dir).mail, &dir)
        .unwrap()
        .send(cairn::email::Email {
            to: "a@example.edu".into(),
            subject: "s".into(),
            text: "t".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let eml = std::fs::read_dir(dir.join("mail")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("mail")), 0o700);
    assert_eq!(mode(&eml), 0o600);
    for f in ["cairn.db", "session.key", "institution.key"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for f in ["cairn.db-wal", "cairn.db-shm"] {
        if dir.join(f).exists() {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }
    app.stop().await;
    let loosen = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    loosen(&dir, 0o755);
    loosen(&dir.join("mail"), 0o755);
    loosen(&eml, 0o644);
    loosen(&dir.join("cairn.db"), 0o644);
    loosen(&dir.join("session.key"), 0o644);
    let app = crate::helpers::start(&dir).await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("mail")), 0o700);
    assert_eq!(mode(&eml), 0o600);
    assert_eq!(mode(&dir.join("cairn.db")), 0o600);
    assert_eq!(mode(&dir.join("session.key")), 0o600);
    app.stop().await;
}

/// Runs `cairn serve` on a fresh data dir, makes `paths` requests, stops it and returns what
/// it logged.
async fn served_log(paths: &[&str]) -> String {
    use std::io::BufRead;
    let temp = tempfile::tempdir().unwrap();
    let mut child = cairn_cmd()
        .env("CAIRN_DATA_DIR", temp.path())
        .env("CAIRN_BIND", "127.0.0.1:0")
        .env("CAIRN_HARVEST_ENABLED", "false")
        .env("CAIRN_CHAIN_MINING", "false")
        .env("RUST_LOG", "info")
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        line.split_whitespace().find(|w| w.starts_with("http://")).map(|u| u.trim_end_matches('/').to_string())
    });
    let base = tokio::time::timeout(Duration::from_secs(60), base).await.expect("cairn serve starts").unwrap();
    let base = base.expect("the start-up line names the URL");
    let c = crate::helpers::client();
    for p in paths {
        let res = c.get(format!("{base}{p}")).send().await.unwrap();
        assert!(res.status().is_client_error(), "{p}: {}", res.status());
    }
    child.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn request_logs_redact_tokens_and_have_no_colour_when_not_a_terminal() {
    let confirm = "c0ffee".repeat(10);
    let manage = "beef".repeat(16);
    let log = tokio::time::timeout(
        Duration::from_secs(90),
        served_log(&[&format!("/join/confirm/{confirm}"), &format!("/subscription/{manage}")]),
    )
    .await
    .expect("in time");
    assert!(log.contains("/join/confirm/[redacted]") && log.contains("/subscription/[redacted]"), "{log}");
    assert!(!log.contains(&confirm) && !log.contains(&manage), "a token reached the log: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log that is not a terminal: {log:?}");
}
