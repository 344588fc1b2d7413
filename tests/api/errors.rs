use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_pages_are_html_for_browsers_and_json_for_scripts() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/no/such/page")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("404"));

    let res = app.client.get(app.url("/courses/missing")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], 404);
    assert_eq!(body["error"]["message"], "course not found");
}

#[tokio::test]
async fn malformed_requests_get_a_clear_error_not_a_crash() {
    let app = spawn_app().await;
    app.login().await;
    // A move with a bogus direction: the form cannot be read.
    let course = app.create_course("Errors").await;
    let res = app
        .client
        .post(app.url(&format!("/admin/courses/{course}/move")))
        .header("accept", "application/json")
        .form(&[("csrf_token", app.csrf().await.as_str()), ("dir", "sideways")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("form could not be read"));
    // A non-numeric id in a path.
    let res = app.get("/admin/courses/abc").await;
    assert_eq!(res.status(), 404);
    // The server is still fine.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_course_title_that_is_too_long_is_reported_next_to_the_field() {
    let app = spawn_app().await;
    app.login().await;
    let long = "x".repeat(201);
    let res = app.post_form("/admin/courses", &[("title", long.as_str()), ("description", "kept text")]).await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("at most 200 characters"));
    assert!(body.contains("kept text"), "the description typed is still there");
}

/// A server on `pool` (a pool the test shapes), on a fresh data dir with one instructor.
async fn serve_with_pool(
    shape: impl FnOnce(
        diesel::r2d2::Builder<diesel::r2d2::ConnectionManager<diesel::SqliteConnection>>,
    ) -> diesel::r2d2::Builder<diesel::r2d2::ConnectionManager<diesel::SqliteConnection>>,
) -> (tempfile::TempDir, std::path::PathBuf, cairn::db::DbPool, String, actix_web::dev::ServerHandle) {
    use diesel::r2d2::{ConnectionManager, Pool};
    let temp = tempfile::tempdir().unwrap();
    let s = crate::helpers::settings(temp.path());
    {
        // Created and migrated as `cairn serve` does, then closed.
        let store = cairn::startup::open_store(&s).unwrap();
        cairn::app::instructors::create(
            &mut store.get().unwrap(),
            crate::helpers::EMAIL,
            crate::helpers::PASSWORD,
            cairn::clock::system_now(),
        )
        .unwrap();
    }
    let path = s.database_path();
    let manager = ConnectionManager::<diesel::SqliteConnection>::new(path.to_str().unwrap());
    let pool = shape(Pool::builder()).build(manager).unwrap();
    let app = cairn::startup::Application::build_with_pool(&s, pool.clone()).unwrap();
    let (base, handle) = (app.base_url().to_string(), app.handle());
    tokio::spawn(app.run_until_stopped());
    (temp, path, pool, base, handle)
}

/// A 503 page, JSON error or problem answer's `Retry-After`, in seconds.
fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers().get("retry-after").expect("a 503 says when to retry").to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_pool_with_no_free_connection_answers_503_with_retry_after_in_every_format() {
    // One connection, given up on after a quarter of a second.
    let (_temp, _, pool, base, handle) =
        serve_with_pool(|b| b.max_size(1).connection_timeout(std::time::Duration::from_millis(250))).await;
    let client = crate::helpers::client();
    // An instructor signs in first: their session lives in the database.
    let signed_in = crate::helpers::client();
    let login = signed_in.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::csrf_in(&login);
    let res = signed_in
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", crate::helpers::EMAIL),
            ("password", crate::helpers::PASSWORD),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    // The test holds the only connection (waiting, boundedly, for a starting worker to give it back).
    let held = pool.get_timeout(std::time::Duration::from_secs(10)).unwrap();

    // The session itself cannot be read: the session layer's failure is a 503 too.
    let res = signed_in.get(format!("{base}/admin")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!((1..=60).contains(&retry_after(&res)));
    let page = res.text().await.unwrap();
    assert!(page.contains("the database is busy"), "{page}");

    let res = client.get(format!("{base}/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!((1..=60).contains(&retry_after(&res)));
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains("503") && page.contains("the database is busy"), "{page}");
    assert!(!page.contains("pool") && !page.contains("timed out"), "internals stay in the log: {page}");

    let res = client.get(format!("{base}/courses/any")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!((1..=60).contains(&retry_after(&res)));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], 503);
    assert!(body["error"]["message"].as_str().unwrap().contains("the database is busy"), "{body}");

    let res = client.get(format!("{base}/api/v1/courses")).bearer_auth("cairn_unchecked").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!((1..=60).contains(&retry_after(&res)));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["type"], "/api/v1/reference#problem-busy", "{doc}");
    assert_eq!(doc["status"], 503);
    assert!(doc["detail"].as_str().unwrap().contains("the database is busy"), "{doc}");

    // With the connection back, the same pages answer, and the session was kept.
    drop(held);
    let res = client.get(format!("{base}/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = signed_in.get(format!("{base}/admin")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    handle.stop(false).await;
}

#[tokio::test]
async fn a_database_locked_by_another_writer_answers_503_with_retry_after() {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    // Connections without a busy timeout, so a held write lock is "database is locked" at once;
    // only one, so that the server's own writers never meet each other's locks.
    let (_temp, path, pool, base, handle) = serve_with_pool(|b| b.max_size(1)).await;
    let secret = {
        let mut c = pool.get().unwrap();
        let scopes = cairn::app::tokens::parse_scopes("read").unwrap();
        cairn::app::tokens::create(
            &mut c,
            &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
            1,
            "test",
            &scopes,
            None,
            cairn::clock::system_now(),
        )
        .unwrap()
        .secret
    };
    let client = crate::helpers::client();
    let courses = format!("{base}/api/v1/courses");

    // Another process's writer holds the write lock (it waits, boundedly, for the server's own).
    let mut writer = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    writer.batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE;").unwrap();
    // The first call with a token records its use: a write.
    let res = client.get(&courses).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(res.status(), 503, "{:?}", res.headers());
    assert!((1..=60).contains(&retry_after(&res)));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["type"], "/api/v1/reference#problem-busy", "{doc}");
    assert!(doc["detail"].as_str().unwrap().contains("the database is busy"), "{doc}");
    assert!(!doc.to_string().contains("locked"), "internals stay in the log: {doc}");

    writer.batch_execute("ROLLBACK;").unwrap();
    let res = client.get(&courses).bearer_auth(&secret).send().await.unwrap();
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
    handle.stop(false).await;
}
