//! The JSON API under /api/v1: tokens and scopes, awards through the Reader's rules,
//! idempotency under concurrent retries, problem details, per-token rate limits, the admin
//! token page, and the served OpenAPI document checked by tools Cairn did not write
//! (openapi-spec-validator and Schemathesis, pinned in scripts/api/requirements.txt).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{EMAIL, TestApp, cairn_cmd, location, spawn_with};

/// A token of the test instructor with `scopes`, made through the use case the CLI and the
/// admin page call.
fn token(app: &TestApp, scopes: &str) -> String {
    let mut c = app.pool.get().unwrap();
    let who = cairn::db::instructors::find_by_email(&mut c, EMAIL).unwrap().unwrap();
    let scopes = cairn::app::tokens::parse_scopes(scopes).unwrap();
    cairn::app::tokens::create(
        &mut c,
        &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
        who.id,
        "test",
        &scopes,
        None,
        cairn::clock::system_now(),
    )
    .unwrap()
    .secret
}

/// A server with the demo course (its tasks, `#el30-data` among them) and a token budget.
async fn api_app(per_minute: u32) -> TestApp {
    let app = spawn_with(|s| s.api.requests_per_minute = per_minute).await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    app
}

/// A client without cookies: what a script uses.
fn script() -> reqwest::Client {
    cairn::net::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    call(&script(), reqwest::Method::GET, app.url(path), Some(token), None).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    call(&script(), reqwest::Method::POST, app.url(path), Some(token), Some(body)).await
}

/// A problem response's document, after checking its media type, status and `type`.
async fn problem(res: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status of a {kind} problem");
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/problem+json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["type"], format!("/api/v1/reference#problem-{kind}"), "{doc}");
    assert_eq!(doc["status"], status);
    assert!(doc["title"].as_str().is_some_and(|t| !t.is_empty()) && doc["detail"].is_string(), "{doc}");
    doc
}

fn award_body(recipient: &str) -> Value {
    json!({"task": "#el30-data", "recipient": recipient, "evidence": "https://blog.example.org/data",
           "name": "Ada", "narrative": "A clear map."})
}

fn award_count(app: &TestApp) -> i64 {
    cairn::db::awards::count(&mut app.pool.get().unwrap()).unwrap()
}

#[tokio::test]
async fn an_award_made_through_the_api_follows_the_readers_rules() {
    let app = api_app(10_000).await;
    let t = token(&app, "awards:write,read");

    let res = post(&app, &t, "/api/v1/awards", award_body("Learner@Example.edu")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let loc = location(&res);
    let a: Value = res.json().await.unwrap();
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["url"], app.url(&format!("/assertions/{id}")));
    assert_eq!(loc, a["url"].as_str().unwrap(), "Location is the assertion URL");
    assert_eq!(
        (a["task"].as_str(), a["recipient"].as_str(), a["state"].as_str()),
        (Some("#el30-data"), Some("learner@example.edu"), Some("valid"))
    );
    // The assertion is the real, public one.
    let doc: Value = app.client.get(a["url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["evidence"]["id"], "https://blog.example.org/data", "{doc}");

    // The same duplicate refusal as the Reader and the command line.
    let dup = problem(post(&app, &t, "/api/v1/awards", award_body("learner@example.edu")).await, 409, "conflict").await;
    assert!(dup["detail"].as_str().unwrap().contains("already has the badge for #el30-data"), "{dup}");
    let bad = json!({"task": "#el30-nothing", "recipient": "x@example.edu", "evidence": "https://b.example/p"});
    let bad = problem(post(&app, &t, "/api/v1/awards", bad).await, 422, "invalid").await;
    assert!(bad["errors"]["task"].as_str().unwrap().contains("no task has the hashtag"), "{bad}");
    let not_url = json!({"task": "#el30-data", "recipient": "y@example.edu", "evidence": "javascript:alert(1)"});
    problem(post(&app, &t, "/api/v1/awards", not_url).await, 422, "invalid").await;
    let res = call(&script(), reqwest::Method::POST, app.url("/api/v1/awards"), Some(&t), None).await;
    problem(res, 400, "bad-request").await;
    let long = json!({"task": "#el30-data", "recipient": "z@example.edu", "evidence": "https://b.example/p",
                      "narrative": "x".repeat(10_001)});
    let long = problem(post(&app, &t, "/api/v1/awards", long).await, 422, "invalid").await;
    assert!(long["errors"]["narrative"].is_string(), "{long}");
    assert_eq!(award_count(&app), 1);

    // One award: its status, chain standing and proof, and notifications.
    let d: Value = get(&app, &t, &format!("/api/v1/awards/{id}")).await.json().await.unwrap();
    assert_eq!(d["award"]["id"], id.as_str());
    assert_eq!(d["chain"]["status"], "pending", "{d}");
    assert_eq!(d["proof"]["status"], "pending", "{d}");
    let kinds: Vec<&str> = d["notifications"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"email") && kinds.contains(&"webmention"), "{d}");
    problem(get(&app, &t, "/api/v1/awards/nope").await, 404, "not-found").await;

    // A list, filtered and paged by cursor.
    for who in ["b@example.edu", "c@example.edu"] {
        assert_eq!(post(&app, &t, "/api/v1/awards", award_body(who)).await.status(), 201);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/awards?task=%23el30-data&limit=2".to_string();
    for _ in 0..5 {
        let page: Value = get(&app, &t, &path).await.json().await.unwrap();
        seen.extend(page["awards"].as_array().unwrap().iter().map(|a| a["recipient"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/awards?task=%23el30-data&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["c@example.edu", "b@example.edu", "learner@example.edu"], "newest first, each once");
    let one: Value = get(&app, &t, "/api/v1/awards?recipient=B@example.edu").await.json().await.unwrap();
    assert_eq!(one["awards"].as_array().unwrap().len(), 1);
    let future: Value = get(&app, &t, "/api/v1/awards?issued_after=2999-01-01T00:00:00Z").await.json().await.unwrap();
    assert!(future["awards"].as_array().unwrap().is_empty());
    problem(get(&app, &t, "/api/v1/awards?issued_after=yesterday").await, 422, "invalid").await;
    problem(get(&app, &t, "/api/v1/awards?state=lost").await, 400, "bad-request").await;
    problem(get(&app, &t, "/api/v1/awards?limit=0").await, 422, "invalid").await;

    // Revoke, through the same use case.
    let r = post(&app, &t, &format!("/api/v1/awards/{id}/revoke"), json!({"reason": "copied"})).await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!((r["state"].as_str(), r["revocation_reason"].as_str()), (Some("revoked"), Some("copied")));
    problem(post(&app, &t, &format!("/api/v1/awards/{id}/revoke"), json!({"reason": "again"})).await, 409, "conflict")
        .await;
    let revoked: Value = get(&app, &t, "/api/v1/awards?state=revoked").await.json().await.unwrap();
    assert_eq!(revoked["awards"].as_array().unwrap().len(), 1);
    let valid: Value = get(&app, &t, "/api/v1/awards?state=valid").await.json().await.unwrap();
    assert_eq!(valid["awards"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_reports_each_award_and_holds_at_most_500() {
    let app = api_app(10_000).await;
    let t = token(&app, "awards:write");
    let items = json!({"awards": [
        award_body("one@example.edu"),
        award_body("one@example.edu"),
        {"task": "#el30-none", "recipient": "two@example.edu", "evidence": "https://b.example/p"},
        {"task": "#el30-cloud", "recipient": "two@example.edu", "evidence": "https://b.example/q"},
    ]});
    let res = post(&app, &t, "/api/v1/awards/batch", items).await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let statuses: Vec<u64> = out["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 409, 422, 201], "{out}");
    assert_eq!((out["awarded"].as_u64(), out["refused"].as_u64()), (Some(2), Some(2)));
    assert_eq!(out["results"][1]["problem"]["type"], "/api/v1/reference#problem-conflict");
    assert!(out["results"][3]["award"]["url"].as_str().unwrap().starts_with(&app.url("/assertions/")));
    assert_eq!(award_count(&app), 2);

    let too_many: Vec<Value> = (0..501).map(|i| award_body(&format!("l{i}@example.edu"))).collect();
    let doc = problem(post(&app, &t, "/api/v1/awards/batch", json!({"awards": too_many})).await, 422, "invalid").await;
    assert!(doc["errors"]["awards"].as_str().unwrap().contains("1 to 500"), "{doc}");
    assert_eq!(award_count(&app), 2, "a refused batch awards nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_retries_with_one_key_award_exactly_once() {
    let app = api_app(10_000).await;
    let t = token(&app, "awards:write");
    let url = app.url("/api/v1/awards");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (url, t) = (url.clone(), t.clone());
        set.spawn(async move {
            let res = script()
                .post(url)
                .bearer_auth(t)
                .header("Idempotency-Key", "award-ada-data-1")
                .json(&award_body("ada@example.org"))
                .send()
                .await
                .unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (res.status().as_u16(), replayed, res.text().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = set.join_next().await {
        answers.push(r.unwrap());
    }
    assert!(answers.iter().all(|(s, _, _)| *s == 201), "every retry gets the first answer: {answers:?}");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1, "one request did the work");
    assert!(answers.windows(2).all(|w| w[0].2 == w[1].2), "the same body each time");
    assert_eq!(award_count(&app), 1, "exactly one award");

    // Another body under the same key is refused; a new key for it works.
    let other = script()
        .post(&url)
        .bearer_auth(&t)
        .header("Idempotency-Key", "award-ada-data-1")
        .json(&award_body("someone-else@example.org"))
        .send()
        .await
        .unwrap();
    problem(other, 422, "idempotency-key-reused").await;
    let batch = json!({"awards": [award_body("b1@example.org"), award_body("b2@example.org")]});
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let res = script()
            .post(app.url("/api/v1/awards/batch"))
            .bearer_auth(&t)
            .header("Idempotency-Key", "batch-1")
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        bodies.push(res.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert!(bodies[0].contains("\"awarded\":2"), "{}", bodies[0]);
    assert_eq!(award_count(&app), 3, "a retried batch awards nothing more");
}

#[tokio::test]
async fn scopes_are_enforced() {
    let (app, _server, post_id) = crate::badges::app_with_post().await;
    let read = token(&app, "read");
    let write = token(&app, "awards:write");
    let reader = token(&app, "reader:write");

    problem(post(&app, &read, "/api/v1/awards", award_body("a@example.edu")).await, 403, "insufficient-scope").await;
    problem(
        post(&app, &read, "/api/v1/awards/batch", json!({"awards": [award_body("a@example.edu")]})).await,
        403,
        "insufficient-scope",
    )
    .await;
    problem(post(&app, &reader, "/api/v1/awards", award_body("a@example.edu")).await, 403, "insufficient-scope").await;
    for path in ["/api/v1/awards", "/api/v1/courses", "/api/v1/tasks", "/api/v1/modules", "/api/v1/reader"] {
        problem(get(&app, &write, path).await, 403, "insufficient-scope").await;
        assert_eq!(get(&app, &read, path).await.status(), 200, "{path}");
    }
    let data = crate::badges::task_id(&app, "el30-data");
    let cloud = crate::badges::task_id(&app, "el30-cloud");
    let tie = json!({"task_id": cloud});
    problem(post(&app, &read, &format!("/api/v1/reader/{post_id}/tie"), tie.clone()).await, 403, "insufficient-scope")
        .await;
    assert_eq!(award_count(&app), 0);

    // The Reader queue, filtered as in the Reader; tie and dismiss.
    let q: Value = get(&app, &read, &format!("/api/v1/reader?task={data}&status=new")).await.json().await.unwrap();
    let entry =
        q["entries"].as_array().unwrap().iter().find(|e| e["id"] == post_id).expect("the post is queued").clone();
    assert!(entry["tasks"].as_array().unwrap().iter().any(|t| t["hashtag"] == "#el30-data"), "{entry}");
    let tied: Value = post(&app, &reader, &format!("/api/v1/reader/{post_id}/tie"), tie).await.json().await.unwrap();
    let tags: Vec<&str> = tied["tasks"].as_array().unwrap().iter().map(|t| t["hashtag"].as_str().unwrap()).collect();
    assert!(tags.contains(&"#el30-cloud"), "{tied}");
    let gone = post(&app, &reader, &format!("/api/v1/reader/{post_id}/dismiss"), json!({})).await;
    assert_eq!(gone.json::<Value>().await.unwrap()["dismissed"], true);
    let q: Value = get(&app, &read, "/api/v1/reader?status=new").await.json().await.unwrap();
    assert!(q["entries"].as_array().unwrap().iter().all(|e| e["id"] != post_id), "dismissed posts leave the queue");
    let q: Value = get(&app, &read, "/api/v1/reader?status=dismissed").await.json().await.unwrap();
    assert!(q["entries"].as_array().unwrap().iter().any(|e| e["id"] == post_id));
    problem(post(&app, &reader, "/api/v1/reader/999999/dismiss", json!({})).await, 404, "not-found").await;
}

#[tokio::test]
async fn tokens_never_open_admin_pages_and_cookies_never_open_the_api() {
    let app = api_app(10_000).await;
    let t = token(&app, "awards:write,read,reader:write");

    // A signed-in browser's cookie is not a credential for the API.
    app.login().await;
    assert_eq!(app.get("/admin").await.status(), 200, "the session works for the admin pages");
    problem(app.get("/api/v1/courses").await, 401, "unauthorized").await;
    let res = app.client.post(app.url("/api/v1/awards")).json(&award_body("c@example.edu")).send().await.unwrap();
    let res_auth = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    problem(res, 401, "unauthorized").await;
    assert_eq!(res_auth.as_deref(), Some("Bearer"));
    assert_eq!(award_count(&app), 0);

    // A token is not a credential for the admin pages.
    let c = script();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/admin", "/admin/reader", "/admin/tokens", "/admin/feeds"] {
        let res = no_redirects.get(app.url(path)).bearer_auth(&t).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/login"), "{path}");
    }
    let res =
        no_redirects.post(app.url("/admin/tokens")).bearer_auth(&t).form(&[("scope", "read")]).send().await.unwrap();
    assert_ne!(res.status(), 200);
    assert_eq!(cairn::db::tokens::list_for(&mut app.pool.get().unwrap(), 1).unwrap().len(), 1, "no token was made");

    // Bad, revoked and expired tokens all get the same answer.
    for bad in ["", "Basic abc", "Bearer cairn_0000", "Bearer nonsense"] {
        let res = c.get(app.url("/api/v1/courses")).header("Authorization", bad).send().await.unwrap();
        problem(res, 401, "unauthorized").await;
    }
    let expired = {
        let mut conn = app.pool.get().unwrap();
        let made = cairn::app::tokens::create(
            &mut conn,
            &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
            1,
            "old",
            &[cairn::db::tokens::Scope::Read],
            Some(1),
            0,
        )
        .unwrap();
        made.secret
    };
    problem(get(&app, &expired, "/api/v1/courses").await, 401, "unauthorized").await;
    let mut conn = app.pool.get().unwrap();
    let live = cairn::db::tokens::list_for(&mut conn, 1).unwrap().into_iter().find(|x| x.name == "test").unwrap();
    assert!(live.last_used_at.is_none(), "not used yet");
    drop(conn);
    assert_eq!(get(&app, &t, "/api/v1/courses").await.status(), 200);
    let mut conn = app.pool.get().unwrap();
    let used = cairn::db::tokens::list_for(&mut conn, 1).unwrap().into_iter().find(|x| x.name == "test").unwrap();
    assert_eq!(used.last_used_addr.as_deref(), Some("127.0.0.1"));
    assert!(used.last_used_at.is_some());
    assert_ne!(used.token_hash, t, "only the hash is stored");
    cairn::app::tokens::revoke(
        &mut conn,
        &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
        1,
        used.id,
        cairn::clock::system_now(),
    )
    .unwrap();
    drop(conn);
    problem(get(&app, &t, "/api/v1/courses").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_token_page_shows_a_token_once_and_revokes_it() {
    let app = api_app(10_000).await;
    app.login().await;
    let html = app.get_html("/admin/tokens").await;
    assert!(html.contains("No tokens yet"));
    let res = app
        .post_form(
            "/admin/tokens",
            &[
                ("name", "LMS sync"),
                ("scope", "read"),
                ("scope", "awards:write"),
                ("expires", "30"),
                ("current", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let marker = "<code class=\"hash\" id=\"token-value\">";
    let start = html.find(marker).unwrap() + marker.len();
    let secret = html[start..start + html[start..].find('<').unwrap()].to_string();
    assert!(secret.starts_with("cairn_"), "{secret}");
    assert_eq!(get(&app, &secret, "/api/v1/tasks").await.status(), 200);
    let again = app.get_html("/admin/tokens").await;
    assert!(again.contains("LMS sync") && !again.contains(&secret), "the token is shown only once");
    assert!(again.contains("read,awards:write") && again.contains("127.0.0.1"), "scopes and last use are listed");

    let bad = app
        .post_form("/admin/tokens", &[("name", "x"), ("scope", "everything"), ("current", crate::helpers::PASSWORD)])
        .await;
    assert_eq!(bad.status(), 422);
    let body = bad.text().await.unwrap().replace("&#39;", "'");
    assert!(body.contains("role=\"alert\">Unknown scope 'everything'; the scopes are "), "a sentence: {body}");
    assert!(!body.contains("invalid input") && !body.contains("scope: unknown"), "no raw error: {body}");

    let id = cairn::db::tokens::list_for(&mut app.pool.get().unwrap(), 1).unwrap()[0].id;
    let res = app.post_form(&format!("/admin/tokens/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), 303);
    problem(get(&app, &secret, "/api/v1/tasks").await, 401, "unauthorized").await;
    assert!(app.get_html("/admin/tokens").await.contains("revoked"));
}

#[tokio::test]
async fn the_command_line_prints_a_new_token_alone_on_its_last_line() {
    let app = api_app(10_000).await;
    let dir = app.data_dir.clone();
    let out = cairn_cmd()
        .args(["admin", "token", "create", "--email", EMAIL, "--scope", "awards:write,read", "--expires", "7"])
        .env("CAIRN_DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text.lines().last().unwrap().to_string();
    assert!(secret.starts_with("cairn_") && !secret.contains(' '), "{text}");
    let res = post(&app, &secret, "/api/v1/awards", award_body("cli@example.edu")).await;
    assert_eq!(res.status(), 201);
    let list =
        cairn_cmd().args(["admin", "token", "list", "--email", EMAIL]).env("CAIRN_DATA_DIR", &dir).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("awards:write,read") && list.contains("live") && !list.contains(&secret), "{list}");
    let id = list.split('\t').next().unwrap().trim().to_string();
    let revoke = cairn_cmd()
        .args(["admin", "token", "revoke", "--email", EMAIL, &id])
        .env("CAIRN_DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(revoke.status.success());
    problem(get(&app, &secret, "/api/v1/tasks").await, 401, "unauthorized").await;
    let bad = cairn_cmd()
        .args(["admin", "token", "create", "--email", EMAIL, "--scope", "root"])
        .env("CAIRN_DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope 'root'"));
}

#[tokio::test]
async fn a_token_past_its_budget_gets_429_with_retry_after() {
    let app = api_app(3).await;
    let t = token(&app, "read");
    let other = token(&app, "read");
    for remaining in [2, 1, 0] {
        let res = get(&app, &t, "/api/v1/tasks").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["ratelimit-policy"], "\"per-token\";q=3;w=60");
        let now = res.headers()["ratelimit"].to_str().unwrap().to_string();
        assert!(now.starts_with(&format!("\"per-token\";r={remaining};t=")), "{now}");
    }
    let res = get(&app, &t, "/api/v1/tasks").await;
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert!(res.headers().contains_key("ratelimit"));
    problem(res, 429, "rate-limited").await;
    assert_eq!(get(&app, &other, "/api/v1/tasks").await.status(), 200, "each token has its own budget");
}

#[tokio::test]
async fn the_reference_page_is_served_by_cairn_from_the_document() {
    let app = api_app(10_000).await;
    let res = script().get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let html = script().get(app.url("/api/v1/reference")).send().await.unwrap().text().await.unwrap();
    let ops = doc["paths"].as_object().unwrap().values().flat_map(|p| p.as_object().unwrap().keys()).count();
    assert_eq!(ops, 15);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(html.contains(&format!("{} {path}", method.to_uppercase())), "{method} {path} is described");
        }
    }
    assert!(html.contains("id=\"problem-idempotency-key-reused\""));
    // Nothing is loaded from elsewhere: every script, image and stylesheet is this site's own.
    for attr in ["src=\"", "<link rel=\"stylesheet\" href=\""] {
        for (i, _) in html.match_indices(attr) {
            assert!(html[i + attr.len()..].starts_with('/'), "an outside resource: {}", &html[i..i + 60]);
        }
    }
    problem(script().get(app.url("/api/v1/nothing")).send().await.unwrap(), 404, "not-found").await;
    problem(script().delete(app.url("/api/v1/awards")).send().await.unwrap(), 405, "method-not-allowed").await;
}

/// The pinned API tools' Python, set up by the project's own script.
fn api_python() -> PathBuf {
    let out = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/api/setup.sh"))
        .output()
        .expect("run scripts/api/setup.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scripts/api/setup.sh failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(text.lines().last().expect("the python path").trim())
}

/// Runs a command for at most `limit`, killing it after; returns (exit status, stdout + stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = format!("{}{}", std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(err).unwrap());
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_served_document_is_valid_openapi_and_schemathesis_finds_no_fault() {
    let app = api_app(1_000_000).await;
    let t = token(&app, "awards:write,read,reader:write");
    let python = tokio::task::spawn_blocking(api_python).await.unwrap();
    let bin = python.parent().unwrap().to_path_buf();
    let doc_url = app.url("/api/v1/openapi.json");

    // openapi-spec-validator, on the document as served.
    let mut v = Command::new(&python);
    v.args([
        "-c",
        "import json, sys, urllib.request\n\
         from openapi_spec_validator import validate\n\
         from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
         doc = json.load(urllib.request.urlopen(sys.argv[1]))\n\
         assert doc['openapi'].startswith('3.1'), doc['openapi']\n\
         validate(doc, cls=OpenAPIV31SpecValidator)\n\
         print('VALID')",
        &doc_url,
    ]);
    let (status, text) = tokio::task::spawn_blocking(move || run_bounded(v, Duration::from_secs(120))).await.unwrap();
    assert!(status.success() && text.trim_end().ends_with("VALID"), "openapi-spec-validator:\n{text}");

    // Schemathesis against the live server, with a token, for a bounded number of examples:
    // no 5xx, and every status, media type and body as the document says.
    let work = tempfile::tempdir().unwrap();
    let mut st = Command::new(bin.join("st"));
    st.args(["run", &doc_url, "--url", &app.address, "-H", &format!("Authorization: Bearer {t}")])
        .args(["--max-examples", "10", "--seed", "17", "--request-timeout", "20", "--no-color"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .current_dir(work.path());
    let started = Instant::now();
    let (status, text) = tokio::task::spawn_blocking(move || run_bounded(st, Duration::from_secs(240))).await.unwrap();
    assert!(status.success(), "Schemathesis found faults:\n{text}");
    assert!(text.contains("Tested: 15"), "every operation was tested:\n{text}");
    let generated = text.lines().find(|l| l.contains("generated,")).unwrap_or("");
    assert!(generated.contains("passed") && !generated.contains("failed"), "{text}");
    eprintln!("Schemathesis: {} in {:?}", generated.trim(), started.elapsed());
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A webhook receiver on 127.0.0.1 that records every request; `/flaky` answers 503, the
/// rest 204.
pub(crate) async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_end..(head_end + len).min(buf.len())]).to_string();
                let status = if path == "/flaky" { "503 Service Unavailable" } else { "204 No Content" };
                store.lock().unwrap().push(Received { path, headers, body });
                let _ = stream.write_all(format!("HTTP/1.1 {status}\r\nConnection: close\r\n\r\n").as_bytes()).await;
            });
        }
    });
    (origin, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_hear_of_awards_signed_as_standard_webhooks_says() {
    let (origin, got) = receiver().await;
    let app = spawn_with(|s| {
        s.allow_origins = vec![origin.clone()];
        s.chain.records_per_block = 1;
        s.chain.difficulty_bits = 8;
    })
    .await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    let t = token(&app, "awards:write,read,webhooks:write");
    let read_only = token(&app, "read");

    let hook = json!({"url": format!("{origin}/hook")});
    problem(post(&app, &read_only, "/api/v1/webhooks", hook.clone()).await, 403, "insufficient-scope").await;
    let res = post(&app, &t, "/api/v1/webhooks", hook).await;
    assert_eq!(res.status(), 201);
    let w: Value = res.json().await.unwrap();
    let secret = w["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{w}");
    let flaky: Value =
        post(&app, &t, "/api/v1/webhooks", json!({"url": format!("{origin}/flaky")})).await.json().await.unwrap();
    let listed: Value = get(&app, &t, "/api/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
    assert!(listed["webhooks"][0]["secret"].is_null(), "the secret is shown only once");
    problem(post(&app, &t, "/api/v1/webhooks", json!({"url": "ftp://x.example/"})).await, 422, "invalid").await;

    let a: Value = post(&app, &t, "/api/v1/awards", award_body("hook@example.edu")).await.json().await.unwrap();
    let id = a["id"].as_str().unwrap().to_string();
    // Let the award be recorded before it is revoked, so the three events come in that order.
    let started = Instant::now();
    let events = |got: &std::sync::Arc<std::sync::Mutex<Vec<Received>>>| -> Vec<Received> {
        got.lock().unwrap().iter().filter(|r| r.path == "/hook").cloned().collect()
    };
    while events(&got).len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "award.created and award.recorded within 60 s: {:?}",
            events(&got)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post(&app, &t, &format!("/api/v1/awards/{id}/revoke"), json!({"reason": "copied"})).await.status(), 200);
    while events(&got).len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "award.revoked within 60 s: {:?}", events(&got));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = events(&got);
    let types: Vec<String> = received
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["award.created", "award.recorded", "award.revoked"]);
    for r in &received {
        let doc: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["data"]["id"], id.as_str(), "{doc}");
    }
    let recorded: Value = serde_json::from_str(&received[1].body).unwrap();
    assert!(recorded["data"]["block"]["hash"].as_str().is_some_and(|h| h.len() == 64), "{recorded}");

    // Every signature verifies with the Standard Webhooks reference library (the
    // `standardwebhooks` package from PyPI, pinned in scripts/api/requirements.txt); a
    // tampered body does not.
    let python = tokio::task::spawn_blocking(api_python).await.unwrap();
    let messages: Vec<Value> = received
        .iter()
        .map(|r| json!({"headers": r.headers.iter().cloned().collect::<std::collections::HashMap<_, _>>(), "body": r.body}))
        .collect();
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), json!({"secret": secret, "messages": messages}).to_string()).unwrap();
    let mut v = Command::new(&python);
    v.args([
        "-c",
        "import json, sys\n\
         from standardwebhooks.webhooks import Webhook, WebhookVerificationError\n\
         doc = json.load(open(sys.argv[1]))\n\
         wh = Webhook(doc['secret'])\n\
         for m in doc['messages']:\n\
         \x20   wh.verify(m['body'], m['headers'])\n\
         \x20   try:\n\
         \x20       wh.verify(m['body'] + ' ', m['headers'])\n\
         \x20       sys.exit('a tampered body verified')\n\
         \x20   except WebhookVerificationError:\n\
         \x20       pass\n\
         print('VERIFIED', len(doc['messages']))",
    ])
    .arg(input.path());
    let (status, text) = tokio::task::spawn_blocking(move || run_bounded(v, Duration::from_secs(60))).await.unwrap();
    assert!(status.success() && text.contains("VERIFIED 3"), "standardwebhooks:\n{text}");
    let ids: std::collections::HashSet<&str> =
        received.iter().map(|r| r.headers.iter().find(|(k, _)| k == "webhook-id").unwrap().1.as_str()).collect();
    assert_eq!(ids.len(), 3, "each message has its own id");

    // A receiver that fails is retried later under the outbox's backoff, not dropped.
    let flaky_id = flaky["id"].as_i64().unwrap();
    let mut conn = app.pool.get().unwrap();
    let tried = cairn::db::webhooks::recent(&mut conn, flaky_id, 10).unwrap();
    assert!(!tried.is_empty());
    let first = tried.iter().find(|d| d.attempts > 0).expect("an attempt was made");
    assert_eq!(first.status, cairn::db::webhooks::DeliveryStatus::Queued);
    assert_eq!(first.last_error.as_deref(), Some("the receiver answered 503 Service Unavailable"));
    assert!(first.next_attempt_at >= first.updated_at + 60, "the next attempt waits at least a minute");
    drop(conn);
    // The list tells each webhook's latest outcome: sent for one, a retry and its reason for the other.
    let listed: Value = get(&app, &t, "/api/v1/webhooks").await.json().await.unwrap();
    let by_id = |id: i64| listed["webhooks"].as_array().unwrap().iter().find(|w| w["id"] == id).unwrap().clone();
    let good = by_id(w["id"].as_i64().unwrap());
    assert_eq!(good["last_delivery"]["status"], "sent", "{listed}");
    assert!(good["last_delivery"]["error"].is_null(), "{listed}");
    let bad = by_id(flaky_id);
    assert_eq!(bad["last_delivery"]["status"], "queued", "{listed}");
    assert_eq!(bad["last_delivery"]["error"], "the receiver answered 503 Service Unavailable", "{listed}");
    assert!(bad["last_delivery"]["attempts"].as_i64().unwrap() >= 1, "{listed}");
    let removed =
        call(&script(), reqwest::Method::DELETE, app.url(&format!("/api/v1/webhooks/{flaky_id}")), Some(&t), None)
            .await;
    assert_eq!(removed.status(), 204);
    let left = cairn::db::webhooks::recent(&mut app.pool.get().unwrap(), flaky_id, 10).unwrap();
    assert!(
        left.iter().all(|d| d.status != cairn::db::webhooks::DeliveryStatus::Queued),
        "its queued events are dropped"
    );
}

#[tokio::test]
async fn webhook_urls_are_checked_before_they_are_stored() {
    let (origin, _got) = receiver().await;
    let app = spawn_with(|s| s.allow_origins = vec![origin.clone()]).await;
    let t = token(&app, "webhooks:write,read");
    for (url, why) in [
        ("http://169.254.169.254/latest/meta-data/", "internal address"),
        ("https://169.254.169.254/hook", "internal address"),
        ("https://127.0.0.1/hook", "internal address"),
        ("https://[::1]/hook", "internal address"),
        ("https://0x7f.1/hook", "internal address"),
        ("https://localhost/hook", "internal address"),
        ("https://[::ffff:10.0.0.1]/hook", "internal address"),
        ("http://registrar.example.edu/hook", "must use https"),
        ("https://user:pw@registrar.example.edu/hook", "without a user name"),
        ("ftp://registrar.example.edu/hook", "https address"),
    ] {
        let doc = problem(post(&app, &t, "/api/v1/webhooks", json!({ "url": url })).await, 422, "invalid").await;
        let reason = doc["errors"]["url"].to_string();
        assert!(reason.contains(why), "{url}: {doc}");
    }
    // A host name that resolves to nothing is refused too (".invalid" never resolves, RFC 6761).
    let doc = problem(
        post(&app, &t, "/api/v1/webhooks", json!({"url": "https://hooks.cairn.invalid/x"})).await,
        422,
        "invalid",
    )
    .await;
    assert!(doc["errors"]["url"].to_string().contains("no address"), "{doc}");
    let listed: Value = get(&app, &t, "/api/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed["webhooks"], json!([]), "nothing refused was stored");
    // An origin in allow_origins may use http and an internal address.
    let res = post(&app, &t, "/api/v1/webhooks", json!({"url": format!("{origin}/hook")})).await;
    assert_eq!(res.status(), 201);
    let w: Value = res.json().await.unwrap();
    assert!(w["last_delivery"].is_null(), "{w}");
    // The document says what a refusal looks like.
    let doc: Value = script().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let create = &doc["paths"]["/api/v1/webhooks"]["post"]["responses"]["422"];
    assert!(create["description"].as_str().unwrap().contains("allow_origins"), "{create}");
    assert!(doc["components"]["schemas"]["LastDelivery"]["properties"]["error"].is_object());
}

/// The single mail among `mails` whose subject starts with `subject`.
fn mail_with<'a>(mails: &'a [String], subject: &str) -> Vec<&'a String> {
    mails.iter().filter(|m| m.contains(&format!("Subject: {subject}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_reset_stops_the_tokens_and_webhooks_a_session_made() {
    let (origin, got) = receiver().await;
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = spawn_with(|s| {
        s.allow_origins = vec![origin.clone()];
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    app.login().await;

    // A session alone does not make a token: the page asks for the password again.
    let scopes = [("name", "stolen"), ("scope", "read"), ("scope", "awards:write"), ("scope", "webhooks:write")];
    let mut fields = scopes.to_vec();
    fields.push(("current", "not the password"));
    let res = app.post_form("/admin/tokens", &fields).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not your current password"));
    assert!(cairn::db::tokens::list_for(&mut app.pool.get().unwrap(), 1).unwrap().is_empty());
    fields.pop();
    fields.push(("current", crate::helpers::PASSWORD));
    let html = app.post_form("/admin/tokens", &fields).await.text().await.unwrap();
    let marker = "<code class=\"hash\" id=\"token-value\">";
    let start = html.find(marker).unwrap() + marker.len();
    let before = html[start..start + html[start..].find('<').unwrap()].to_string();
    let res = post(&app, &before, "/api/v1/webhooks", json!({"url": format!("{origin}/before")})).await;
    assert_eq!(res.status(), 201);

    // Each creation is mailed to the instructor, through the real SMTP listener, with no secret in it.
    let mails = smtp.wait_for(2).await;
    let token_mail = mail_with(&mails, "An API token was created");
    let hook_mail = mail_with(&mails, "A webhook was created");
    assert_eq!((token_mail.len(), hook_mail.len()), (1, 1), "{} mails", mails.len());
    assert!(token_mail[0].contains(&format!("To: {}", crate::helpers::EMAIL)), "{}", token_mail[0]);
    assert!(token_mail[0].contains("stolen") && !token_mail[0].contains(&before), "{}", token_mail[0]);
    assert!(hook_mail[0].contains(&format!("{origin}/before")) && !hook_mail[0].contains("whsec_"), "{}", hook_mail[0]);

    // Both work until the reset.
    assert_eq!(post(&app, &before, "/api/v1/awards", award_body("one@example.edu")).await.status(), 201);
    let started = Instant::now();
    while !got.lock().unwrap().iter().any(|r| r.path == "/before") {
        assert!(started.elapsed() < Duration::from_secs(30), "the webhook heard of the first award within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let out = cairn_cmd()
        .args(["admin", "reset-password", "--email", EMAIL])
        .env("CAIRN_DATA_DIR", &app.data_dir)
        .env("CAIRN_PASSWORD", "a brand new password")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("1 API token(s) revoked, 1 webhook(s) disabled"), "{said}");

    // The token is refused; the webhook hears of no award made after the reset, while one
    // registered afterwards (with a token made on the command line) does.
    problem(get(&app, &before, "/api/v1/tasks").await, 401, "unauthorized").await;
    let out = cairn_cmd()
        .args(["admin", "token", "create", "--email", EMAIL, "--scope", "awards:write,read,webhooks:write"])
        .env("CAIRN_DATA_DIR", &app.data_dir)
        .env("CAIRN_SMTP_HOST", "127.0.0.1")
        .env("CAIRN_SMTP_PORT", smtp.port.to_string())
        .env("CAIRN_SMTP_TLS", "none")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
    let listed: Value = get(&app, &after, "/api/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed["webhooks"], json!([]), "the disabled webhook is no longer listed");
    assert_eq!(post(&app, &after, "/api/v1/webhooks", json!({"url": format!("{origin}/after")})).await.status(), 201);
    let heard_before = got.lock().unwrap().iter().filter(|r| r.path == "/before").count();
    assert_eq!(post(&app, &after, "/api/v1/awards", award_body("two@example.edu")).await.status(), 201);
    let started = Instant::now();
    while !got.lock().unwrap().iter().any(|r| r.path == "/after" && r.body.contains("two@example.edu")) {
        assert!(started.elapsed() < Duration::from_secs(30), "the new webhook heard of the award within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let late: Vec<String> =
        got.lock().unwrap().iter().filter(|r| r.path == "/before").skip(heard_before).map(|r| r.body.clone()).collect();
    assert!(late.iter().all(|b| !b.contains("two@example.edu")), "the disabled webhook heard: {late:?}");
    // The command-line token was mailed too.
    let started = Instant::now();
    while mail_with(&smtp.messages(), "An API token was created").len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the command-line token's mail arrived within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Changing the password on its page does the same and says how many.
    assert_eq!(app.login_as(EMAIL, "a brand new password").await.status(), 303);
    let res = app
        .post_form(
            "/admin/password",
            &[("current", "a brand new password"), ("new", "another new password"), ("again", "another new password")],
        )
        .await;
    let page = res.text().await.unwrap();
    assert!(
        page.contains("1 API token(s) revoked") && page.contains("1 webhook(s) disabled"),
        "the page says how many: {page}"
    );
    problem(get(&app, &after, "/api/v1/tasks").await, 401, "unauthorized").await;
}
