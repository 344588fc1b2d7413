//! A teaching team: an owner invites a reviewer, who accepts through the mailed link; the
//! reviewer awards in their course and is refused (403, with the reason) editing it,
//! revoking, or awarding in another course, through the web, the command line and the API;
//! the audit trail records each of these and keeps no learner's personal data after a forget.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;

use crate::helpers::{TestApp, cairn_cmd, client, csrf_in, spawn_app};

const REVIEWER: &str = "rev@example.edu";
const OWNER: &str = "own@example.edu";
const PASSWORD: &str = "a long enough password";

fn slug_of(app: &TestApp, course: i64) -> String {
    cairn::db::courses::get_course(&mut app.pool.get().unwrap(), course).unwrap().slug
}

/// The newest .eml file holding `needle`, waiting (at most ten seconds) for the notifier.
async fn mail_with(app: &TestApp, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.notifier.deliver_due().await.unwrap();
        let found = std::fs::read_dir(app.data_dir.join("mail")).ok().and_then(|dir| {
            dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).find(|m| m.contains(needle))
        });
        if let Some(m) = found {
            return m.replace("=\r\n", "").replace("=\n", "");
        }
        assert!(Instant::now() < deadline, "no mail with {needle}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The mail's `{prefix}…` link, on the test server (the command line writes links with the
/// configured base URL, which the test's command line does not have).
fn link_in(mail: &str, base: &str, prefix: &str) -> String {
    let start = mail.find(prefix).unwrap_or_else(|| panic!("no {prefix} link in {mail}"));
    format!("{base}{}", mail[start..].split_whitespace().next().unwrap())
}

/// A signed-in client of someone accepting an invitation by setting a password.
async fn accept(app: &TestApp, link: &str) -> reqwest::Client {
    let c = client();
    let page = c.get(link).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Join the teaching team"), "{page}");
    let res = c
        .post(link)
        .form(&[("csrf_token", csrf_in(&page).as_str()), ("password", PASSWORD), ("again", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(c.get(app.url("/admin")).send().await.unwrap().status(), 200, "signed in");
    c
}

async fn post_as(app: &TestApp, c: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = c.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    let token = csrf_in(&page);
    let mut body = vec![("csrf_token", token.as_str())];
    body.extend_from_slice(fields);
    c.post(app.url(path)).header("accept", "application/json").form(&body).send().await.unwrap()
}

/// Two courses with a task each and one learner's post in each, tied to its task.
async fn two_courses(app: &TestApp) -> (i64, i64, i64, i64) {
    app.login().await;
    let a = app.create_course("Course Alpha").await;
    let b = app.create_course("Course Beta").await;
    let ma = app.create_module(a, "A1").await;
    let mb = app.create_module(b, "B1").await;
    assert_eq!(app.create_task(ma, "Alpha task", "#tm-alpha").await.status(), 303);
    assert_eq!(app.create_task(mb, "Beta task", "#tm-beta").await.status(), 303);
    let (ta, tb) = (crate::badges::task_id(app, "tm-alpha"), crate::badges::task_id(app, "tm-beta"));
    let now = cairn::clock::system_now();
    app.pool
        .get()
        .unwrap()
        .batch_execute(&format!(
            "INSERT INTO authors (name, email, created_at) VALUES ('Lea Learner', 'lea@example.org', {now});
             INSERT INTO feeds (author_id, url, site_url, title, status, next_poll_at, error_count, created_at, updated_at)
             SELECT id, 'https://lea.example.net/feed', 'https://lea.example.net/', 'Lea', 'active', {now}, 0, {now}, {now}
             FROM authors WHERE name = 'Lea Learner';
             INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at,
                                content_hash, authorship)
             SELECT f.id, f.author_id, 'id:' || n.k, 'https://lea.example.net/' || n.k, 'Lea on ' || n.k, {now}, {now},
                    {now}, 'h', 'own' FROM feeds f, (SELECT 'alpha' AS k UNION ALL SELECT 'beta') n WHERE f.title = 'Lea';
             INSERT INTO link_tasks (link_id, task_id, source, tied, created_at)
             SELECT id, CASE WHEN item_key = 'id:alpha' THEN {ta} ELSE {tb} END, 'hashtag', 1, {now}
             FROM links WHERE title LIKE 'Lea on %';"
        ))
        .unwrap();
    let post = |k: &str| -> i64 {
        use cairn::db::schema::links;
        links::table
            .filter(links::item_key.eq(format!("id:{k}")))
            .select(links::id)
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    (a, b, post("alpha"), post("beta"))
}

#[tokio::test]
async fn an_owner_invites_a_reviewer_who_awards_in_their_course_only_on_the_web_the_cli_and_the_api() {
    let app = spawn_app().await;
    let (a, b, alpha_post, beta_post) = two_courses(&app).await;
    let slug_a = slug_of(&app, a);
    let data = app.data_dir.clone();
    let cli = |args: &[&str]| {
        let out = cairn_cmd().args(args).arg("--data-dir").arg(&data).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };

    // The admin makes an owner of Alpha on the command line; the owner invites a reviewer on
    // the web.
    let (ok, said) = cli(&["admin", "invite", "--email", OWNER, "--course", &slug_a, "--role", "owner"]);
    assert!(ok, "{said}");
    let owner = accept(&app, &link_in(&mail_with(&app, OWNER).await, &app.address, "/invitations/")).await;
    let res = post_as(
        &app,
        &owner,
        "/admin/staff/invite",
        &[("email", REVIEWER), ("target", &a.to_string()), ("role", "reviewer")],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // An owner of Alpha cannot invite to Beta.
    let res = post_as(
        &app,
        &owner,
        "/admin/staff/invite",
        &[("email", "x@example.edu"), ("target", &b.to_string()), ("role", "reviewer")],
    )
    .await;
    assert_eq!(res.status(), 403);
    let mail = mail_with(&app, "reviewer of Course Alpha").await;
    assert!(mail.contains("reviewer of Course Alpha"), "{mail}");
    let link = link_in(&mail, &app.address, "/invitations/");
    let reviewer = accept(&app, &link).await;
    assert_eq!(client().get(&link).send().await.unwrap().status(), 404, "the link works once");

    // Web: award in Alpha; refused awarding in Beta, revoking, and editing Alpha.
    let res = post_as(
        &app,
        &reviewer,
        "/admin/reader/award",
        &[("link_id", &alpha_post.to_string()), ("task_id", &crate::badges::task_id(&app, "tm-alpha").to_string())],
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let public_id =
        cairn::db::awards::for_links(&mut app.pool.get().unwrap(), &[alpha_post]).unwrap()[0].public_id.clone();
    let res = post_as(
        &app,
        &reviewer,
        "/admin/reader/award",
        &[("link_id", &beta_post.to_string()), ("task_id", &crate::badges::task_id(&app, "tm-beta").to_string())],
    )
    .await;
    assert_eq!(res.status(), 403);
    let why = res.text().await.unwrap();
    assert!(why.contains("Course Beta"), "the refusal names the course: {why}");
    let res = post_as(&app, &reviewer, &format!("/admin/awards/{public_id}/revoke"), &[("reason", "no")]).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("editor or owner"));
    let res =
        post_as(&app, &reviewer, &format!("/admin/courses/{a}"), &[("title", "Renamed"), ("description", "")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(reviewer.get(app.url("/admin/staff")).send().await.unwrap().status(), 403);

    // Command line, as the reviewer.
    let (ok, said) = cli(&[
        "--as",
        REVIEWER,
        "award",
        "--task",
        "#tm-beta",
        "--recipient",
        "lea@example.org",
        "--evidence",
        "https://lea.example.net/beta",
    ]);
    assert!(!ok && said.contains("Course Beta"), "{said}");
    let (ok, said) = cli(&["--as", REVIEWER, "revoke", &public_id, "--reason", "no"]);
    assert!(!ok && said.contains("editor or owner"), "{said}");

    // API, with a token of the reviewer's.
    let (ok, said) = cli(&["admin", "token", "create", "--email", REVIEWER, "--scope", "awards:write"]);
    assert!(ok, "{said}");
    let token = said.lines().find(|l| l.starts_with("cairn_")).expect("the token").trim().to_string();
    let api = |task: &str, recipient: &str| {
        client()
            .post(app.url("/api/v1/awards"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"task": task, "recipient": recipient, "evidence": ""}))
            .send()
    };
    let res = api("#tm-beta", "zed@example.org").await.unwrap();
    assert_eq!(res.status(), 403);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("forbidden"), "{problem}");
    let res = api("#tm-alpha", "zed@example.org").await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // The audit trail has each step, with who and where from.
    let (ok, said) = cli(&["admin", "audit", "--json"]);
    assert!(ok, "{said}");
    let events: Vec<serde_json::Value> = said.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let has = |action: &str, actor: &str, surface: &str| {
        events.iter().any(|e| e["action"] == action && e["actor"] == actor && e["surface"] == surface)
    };
    assert!(has("invitation.create", "command line", "cli"), "{said}");
    assert!(has("invitation.accept", OWNER, "web"), "{said}");
    assert!(has("invitation.create", OWNER, "web"), "{said}");
    assert!(has("award.create", REVIEWER, "web"), "{said}");
    assert!(has("award.create", REVIEWER, "api"), "{said}");
    assert!(has("course.create", crate::helpers::EMAIL, "web"), "{said}");
    let web_award = events.iter().find(|e| e["action"] == "award.create" && e["surface"] == "web").unwrap();
    assert_eq!(web_award["subject"], public_id.as_str(), "the award by its public id");
    assert!(web_award["client"].as_str().is_some_and(|c| c.starts_with("127.")), "{web_award}");

    // The owner reads their course's trail on the web; the reviewer may not.
    let page = owner.get(app.url("/admin/audit")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("award.create") && page.contains(REVIEWER), "{page}");
    let now = chrono::DateTime::from_timestamp(cairn::clock::system_now(), 0).unwrap();
    let today = now.format("%-d %B %Y").to_string();
    assert!(page.contains(&format!("<tr><td>{today}, ")), "times as \"7 December 2026, 21:58 UTC\": {page}");
    assert_eq!(reviewer.get(app.url("/admin/audit")).send().await.unwrap().status(), 403);

    // A forget leaves the trail whole, with nothing of the learner in it.
    let before = events.len();
    let (ok, said) = cli(&["learner", "forget", "lea@example.org", "--yes"]);
    assert!(ok, "{said}");
    let (_, after) = cli(&["admin", "audit", "--json"]);
    assert!(after.lines().count() >= before, "{after}");
    assert!(
        !after.contains("lea@example.org") && !after.contains("Lea Learner") && !after.contains("zed@example.org"),
        "{after}"
    );
}

/// Each `(method, path)` as the client gets it: its status.
async fn status_of(app: &TestApp, c: &reqwest::Client, path: &str) -> u16 {
    c.get(app.url(path)).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_reviewer_reads_and_changes_only_their_courses_posts_and_institution_settings_stay_with_admins() {
    let hooks = "http://127.0.0.1:9";
    let app = crate::helpers::spawn_with(|s| s.allow_origins = vec![hooks.to_string()]).await;
    let (a, b, alpha_post, beta_post) = two_courses(&app).await;
    let data = app.data_dir.clone();
    let cli = |args: &[&str]| {
        let out = cairn_cmd().args(args).arg("--data-dir").arg(&data).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, said) =
        cli(&["admin", "invite", "--email", REVIEWER, "--course", &slug_of(&app, a), "--role", "reviewer"]);
    assert!(ok, "{said}");
    let reviewer = accept(&app, &link_in(&mail_with(&app, REVIEWER).await, &app.address, "/invitations/")).await;
    let (ta, tb) = (crate::badges::task_id(&app, "tm-alpha"), crate::badges::task_id(&app, "tm-beta"));

    // The Reader and the Posts page list the posts and the courses of Alpha only; an admin's
    // list both.
    for path in ["/admin/reader", "/admin/links"] {
        let page = reviewer.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Lea on alpha"), "{path}: {page}");
        assert!(!page.contains("Lea on beta") && !page.contains("Course Beta"), "{path}: {page}");
        let page = app.client.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Lea on alpha") && page.contains("Lea on beta"), "{path}: {page}");
    }

    // Tie, dismiss and star: in Alpha yes, in Beta no.
    let res = post_as(
        &app,
        &reviewer,
        &format!("/admin/links/{alpha_post}/tie"),
        &[("task_id", &ta.to_string()), ("tied", "1")],
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = post_as(
        &app,
        &reviewer,
        &format!("/admin/links/{beta_post}/tie"),
        &[("task_id", &tb.to_string()), ("tied", "0")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Course Beta"));
    let res = post_as(
        &app,
        &reviewer,
        &format!("/admin/links/{beta_post}/tie"),
        &[("task_id", &ta.to_string()), ("tied", "1")],
    )
    .await;
    assert_eq!(res.status(), 200, "a reviewer ties any post to their own course's task");
    let res = post_as(
        &app,
        &reviewer,
        &format!("/admin/links/{beta_post}/tie"),
        &[("task_id", &ta.to_string()), ("tied", "0")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let flag = |post: i64, flag: &'static str| {
        let (p, r) = (post.to_string(), &reviewer);
        let app = &app;
        async move { post_as(app, r, "/admin/reader/flag", &[("link_id", &p), ("flag", flag), ("on", "1")]).await }
    };
    let res = flag(beta_post, "dismissed").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("reviewer of this post's course"));
    assert_eq!(flag(beta_post, "starred").await.status(), 403);
    assert_eq!(flag(alpha_post, "starred").await.status(), 200);

    // The API acts with the reviewer's roles.
    let (ok, said) =
        cli(&["admin", "token", "create", "--email", REVIEWER, "--scope", "read,reader:write,webhooks:write"]);
    assert!(ok, "{said}");
    let token = said.lines().find(|l| l.starts_with("cairn_")).expect("the token").trim().to_string();
    let queue: serde_json::Value =
        client().get(app.url("/api/v1/reader")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let titles: Vec<&str> = queue["entries"].as_array().unwrap().iter().filter_map(|e| e["title"].as_str()).collect();
    assert_eq!(titles, ["Lea on alpha"], "{queue}");
    let api_post =
        |path: String, body: serde_json::Value| client().post(app.url(&path)).bearer_auth(&token).json(&body).send();
    let res =
        api_post(format!("/api/v1/reader/{beta_post}/dismiss"), serde_json::json!({"dismissed": true})).await.unwrap();
    assert_eq!(res.status(), 403);
    let res = api_post(format!("/api/v1/reader/{beta_post}/tie"), serde_json::json!({"task_id": tb, "tied": false}))
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res =
        api_post(format!("/api/v1/reader/{alpha_post}/dismiss"), serde_json::json!({"dismissed": true})).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = api_post("/api/v1/webhooks".into(), serde_json::json!({"url": format!("{hooks}/hook")})).await.unwrap();
    assert_eq!(res.status(), 403, "a webhook hears of every award: an admin's");

    // The dashboard lists and charts Alpha alone, with no course forms.
    let page = reviewer.get(app.url("/admin")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Course Alpha") && !page.contains("Course Beta"), "{page}");
    assert!(!page.contains("Create course") && !page.contains("/move"), "{page}");
    assert!(
        page.contains(&format!("href=\"/admin/courses/{a}/learners\"")),
        "a reviewer's course leads to its roster: {page}"
    );
    assert_eq!(status_of(&app, &reviewer, &format!("/admin?course={b}")).await, 403);
    let page = app.get_html("/admin").await;
    assert!(page.contains("Course Beta") && page.contains("Create course"));

    // Pages of the course's owners and of the institution's admins.
    assert_eq!(status_of(&app, &reviewer, "/admin/feeds").await, 200, "the team reads learners' feeds");
    assert_eq!(status_of(&app, &reviewer, "/admin/learners").await, 200);
    assert_eq!(status_of(&app, &reviewer, &format!("/admin/courses/{a}/learners")).await, 200);
    assert_eq!(status_of(&app, &reviewer, &format!("/admin/courses/{b}/learners")).await, 403);
    assert_eq!(status_of(&app, &reviewer, &format!("/admin/courses/{b}/progress")).await, 403);
    assert_eq!(status_of(&app, &reviewer, &format!("/admin/courses/{a}/newsletter")).await, 403);
    assert_eq!(status_of(&app, &reviewer, "/admin/mentions").await, 403);
    assert_eq!(status_of(&app, &reviewer, "/admin/feeds/opml").await, 403);
    let lea = cairn::db::feeds::author_by_email(&mut app.pool.get().unwrap(), "lea@example.org").unwrap().unwrap().id;
    assert_eq!(status_of(&app, &reviewer, &format!("/admin/learners/{lea}/forget")).await, 403);
    let res =
        post_as(&app, &reviewer, "/admin/feeds", &[("name", "X"), ("email", ""), ("url", "https://x.example.net/")])
            .await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("owner of a course"));
    assert_eq!(status_of(&app, &app.client, &format!("/admin/courses/{a}/newsletter")).await, 200);

    // Institution settings on the command line: refused as the reviewer, done as the
    // institution, and recorded.
    let (ok, said) = cli(&["--as", REVIEWER, "identity", "rotate"]);
    assert!(!ok && said.contains("institution admin"), "{said}");
    let (ok, said) = cli(&["--as", REVIEWER, "learner", "forget", "lea@example.org", "--yes"]);
    assert!(!ok && said.contains("institution admin"), "{said}");
    let backup = app.data_dir.join("team-backup.tar.gz");
    let (ok, said) = cli(&["--as", REVIEWER, "backup", backup.to_str().unwrap()]);
    assert!(!ok && said.contains("institution admin") && !backup.exists(), "{said}");
    let (ok, said) = cli(&["--as", REVIEWER, "restore", backup.to_str().unwrap()]);
    assert!(!ok && said.contains("without --as"), "{said}");
    let (ok, said) = cli(&["--as", REVIEWER, "peer", "remove", "https://peer.example.org"]);
    assert!(!ok && said.contains("institution admin"), "{said}");
    let (ok, said) = cli(&["identity", "rotate"]);
    assert!(ok, "{said}");
    let (ok, said) = cli(&["admin", "token", "create", "--email", crate::helpers::EMAIL, "--scope", "webhooks:write"]);
    assert!(ok, "{said}");
    let admin_token = said.lines().find(|l| l.starts_with("cairn_")).expect("the token").trim().to_string();
    let res = client()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&admin_token)
        .json(&serde_json::json!({"url": format!("{hooks}/hook/s3cr3t-path")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let (ok, said) = cli(&["learner", "forget", "lea@example.org", "--yes"]);
    assert!(ok, "{said}");

    let (ok, said) = cli(&["admin", "audit", "--json"]);
    assert!(ok, "{said}");
    let events: Vec<serde_json::Value> = said.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let one = |action: &str| {
        events.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("no {action} in {said}")).clone()
    };
    assert_eq!(one("key.rotate")["actor"], "command line");
    assert!(
        events.iter().any(|e| e["action"] == "token.create" && e["detail"].as_str().unwrap().contains(REVIEWER)),
        "{said}"
    );
    let hook = one("webhook.create");
    assert_eq!((hook["actor"].as_str(), hook["surface"].as_str()), (Some(crate::helpers::EMAIL), Some("api")));
    assert_eq!(hook["subject"], hooks, "the webhook's origin only: {hook}");
    assert!(!said.contains("s3cr3t-path"), "a webhook's path is not kept: {said}");
    let forget = one("learner.forget");
    assert_eq!(forget["surface"], "cli");
    assert!(forget["subject"].as_str().unwrap().starts_with("forget "), "{forget}");
    assert!(!said.contains("lea@example.org") && !said.contains("Lea Learner"), "{said}");
}
