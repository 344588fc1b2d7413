//! `/healthz`, `/readyz` and `/health` on real servers: the answers when all is well, and the
//! failing check named when the jobs do not run, no database connection is free, a migration
//! is pending or the key file is not the institution's.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use serde_json::Value;

use crate::helpers::{TestApp, client, settings, spawn_app};

/// How long a test waits for the server to become ready (the jobs start beside it).
const READY_WITHIN: Duration = Duration::from_secs(15);

async fn readyz(app_url: &str) -> (u16, Value) {
    let res = client().get(format!("{app_url}/readyz")).send().await.expect("GET /readyz");
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.expect("JSON"))
}

/// Asks `/readyz` until it answers 200, within [`READY_WITHIN`].
async fn until_ready(app: &TestApp) -> Value {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let (status, body) = readyz(&app.address).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "not ready in time: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The check named `name` of a `/readyz` answer.
fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"].as_array().expect("checks").iter().find(|c| c["name"] == name).unwrap_or_else(|| {
        panic!("no check {name} in {body}");
    })
}

fn failing(body: &Value) -> Vec<String> {
    body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_serving_app_is_healthy_and_ready_with_every_check_named() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200, "the older /health stays");
    let body = until_ready(&app).await;
    assert_eq!(body["ready"], true);
    let names: Vec<&str> = body["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, cairn::app::health::CHECKS);
    assert!(failing(&body).is_empty(), "{body}");
    assert!(check(&body, "migrations")["detail"].as_str().unwrap().contains("schema version 20"), "{body}");
    // HEAD, as uptime monitors ask, answers as GET does.
    let res = app.client.head(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn without_the_job_runner_the_app_is_healthy_but_not_ready() {
    let temp = tempfile::tempdir().unwrap();
    let s = settings(temp.path());
    let pool = cairn::startup::open_store(&s).unwrap();
    let app = cairn::startup::Application::build_with_pool(&s, pool).unwrap();
    let (url, handle) = (app.base_url().to_string(), app.handle());
    tokio::spawn(app.run_without_jobs());
    let res = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = readyz(&url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(failing(&body), ["jobs"], "{body}");
    assert_eq!(check(&body, "jobs")["detail"], "the background jobs have not started");
    handle.stop(true).await;
}

#[tokio::test]
async fn a_database_without_a_free_connection_is_not_ready_within_the_bound() {
    let app = spawn_app().await;
    until_ready(&app).await;
    // Every pooled connection taken, as a stuck request or a long lock would.
    let held: Vec<_> = (0..app.pool.max_size()).map(|_| app.pool.get().expect("a connection")).collect();
    // Asked from a thread of its own: the background jobs share this test's runtime, and one
    // waiting for a connection would hold the test up, not the server.
    let url = app.address.clone();
    let (status, body, took, live) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let asked = Instant::now();
        let (status, body) = rt.block_on(readyz(&url));
        let took = asked.elapsed();
        let live = rt.block_on(async { client().get(format!("{url}/healthz")).send().await.unwrap().status() });
        (status, body, took, live)
    })
    .join()
    .unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing(&body), ["database", "migrations", "chain", "keys"], "{body}");
    let detail = check(&body, "database")["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("within 2 s"), "{detail}");
    assert!(took < cairn::app::health::BOUND + Duration::from_secs(3), "the check took {took:?}");
    assert_eq!(live, 200, "liveness does not touch the database");
    drop(held);
    until_ready(&app).await;
}

#[tokio::test]
async fn a_pending_migration_is_named() {
    let app = spawn_app().await;
    until_ready(&app).await;
    let mut conn = app.pool.get().unwrap();
    let latest: String = {
        use diesel::prelude::*;
        #[derive(diesel::QueryableByName)]
        struct V {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
            .get_result::<V>(&mut conn)
            .unwrap()
            .version
    };
    conn.batch_execute(&format!("DELETE FROM __diesel_schema_migrations WHERE version = '{latest}'")).unwrap();
    drop(conn);
    let (status, body) = readyz(&app.address).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing(&body), ["migrations"], "{body}");
    let detail = check(&body, "migrations")["detail"].as_str().unwrap().to_string();
    // Versions are stored as the digits of the migration's name.
    let name = detail.strip_prefix("1 pending: ").unwrap_or_else(|| panic!("{detail}"));
    assert_eq!(name.split('_').next().unwrap().replace('-', ""), latest, "{detail}");
}

#[tokio::test]
async fn an_institution_key_file_that_is_not_the_institution_s_is_named() {
    let app = spawn_app().await;
    until_ready(&app).await;
    std::fs::write(app.data_dir.join("institution.key"), [7u8; 32]).unwrap();
    let (status, body) = readyz(&app.address).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(failing(&body), ["keys"], "{body}");
    assert!(check(&body, "keys")["detail"].as_str().unwrap().contains("institution.key"), "{body}");
}

/// `cairn db status` on `data`: its stdout, after checking it succeeded.
fn db_status(data: &std::path::Path) -> String {
    let out = crate::helpers::cairn_cmd().args(["db", "status"]).env("CAIRN_DATA_DIR", data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn db_status_prints_the_schema_version_and_the_pending_migrations_without_running_them() {
    let data = tempfile::tempdir().unwrap();
    let names = cairn::db::backup::migration_names().unwrap();
    let (latest, before) = (names.last().unwrap(), &names[names.len() - 2]);
    let out = db_status(data.path());
    assert!(out.contains("schema version: none") && out.contains("database: none"), "{out}");
    assert!(!data.path().join("cairn.db").exists(), "status creates no database");

    let pool = cairn::startup::open_store(&settings(data.path())).unwrap();
    let out = db_status(data.path());
    let version = latest.split('_').next().unwrap().replace('-', "");
    assert!(out.contains(&format!("schema version: {version} ({latest})")), "{out}");
    assert!(out.contains(&format!("migrations applied: {}", names.len())), "{out}");
    assert!(out.contains("pending migrations: none"), "{out}");

    // As a database of the previous release would be.
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!("DELETE FROM __diesel_schema_migrations WHERE version = '{version}'")).unwrap();
    drop(conn);
    let out = db_status(data.path());
    assert!(out.contains(&format!("({before})")), "the previous migration is the version now: {out}");
    assert!(out.contains(&format!("pending migrations (1):\n  {latest}\n")), "{out}");
    let out = db_status(data.path());
    assert!(out.contains("pending migrations (1)"), "status ran nothing: {out}");

    // A database a newer release migrated.
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}'), ('29991231000000')"
    ))
    .unwrap();
    drop(conn);
    let out = db_status(data.path());
    assert!(out.contains("pending migrations: none"), "{out}");
    assert!(out.contains("unknown to this one (1):\n  29991231000000"), "{out}");
}
