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
