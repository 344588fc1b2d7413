//! Awards end to end: the Reader, Open Badges 2.0 documents checked by the official
//! validator (scripts/obv), baked images, revocation, the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::harvest::{add_feed, app_for, pass};
use crate::helpers::TestApp;
use diesel::prelude::*;

pub const LEARNER: &str = "ada@example.edu";

/// The project's own driver of the official validator.
fn validator() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/obv/validate.sh")
}

/// A second, independent harness, only when asked for by `CAIRN_TEST_REFERENCE_OBV` (the path
/// of its `validate.sh`). The suite never looks outside the checkout on its own.
fn reference_validator() -> Option<PathBuf> {
    std::env::var_os("CAIRN_TEST_REFERENCE_OBV").map(PathBuf::from).filter(|p| p.is_file())
}

/// Runs one harness script; returns (whole stdout, last line, exit code).
async fn run_validator(script: &Path, target: &str, recipient: Option<&str>) -> (String, String, i32) {
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    if let Some(r) = recipient {
        cmd.args(["--recipient", r]);
    }
    cmd.arg(target);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "the validator {} is broken (exit {code}):\n{text}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, last, code)
}

/// Runs the official validator; returns (verdict line, exit code). When a reference harness
/// is named, it must reach the same verdict.
pub async fn validate(target: &str, recipient: Option<&str>) -> (String, i32) {
    let (text, last, code) = run_validator(&validator(), target, recipient).await;
    assert!(last == "VALID" || last.starts_with("INVALID: "), "no verdict line:\n{text}");
    assert_eq!(code == 0, last == "VALID", "the exit code contradicts the verdict:\n{text}");
    if let Some(reference) = reference_validator() {
        let (other, _, other_code) = run_validator(&reference, target, recipient).await;
        assert_eq!(code, other_code, "{target}: the reference harness disagrees:\n{text}\n---\n{other}");
    }
    (last, code)
}

/// An app with Ada's feed harvested (her email on file), the demo tasks, and a signed-in
/// instructor. Returns the app, the server and the id of her "Data & me" post.
pub async fn app_with_post() -> (TestApp, FeedServer, i64) {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let app = app_for(&server, |_| {}).await;
    {
        let mut c = app.pool.get().unwrap();
        let author =
            cairn::db::feeds::find_or_create_author(&mut c, "Ada Lovelace", Some(LEARNER), cairn::clock::system_now())
                .unwrap();
        cairn::db::feeds::create_feed(
            &mut c,
            cairn::db::feeds::NewFeed {
                author_id: author.id,
                url: &server.url("/f.xml"),
                title: "",
                site_url: None,
                status: cairn::db::feeds::FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            cairn::clock::system_now(),
        )
        .unwrap();
    }
    pass(&app).await;
    app.login().await;
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 10).unwrap();
    let post = links.iter().find(|v| v.link.title == "Data & me").unwrap().link.id;
    (app, server, post)
}

pub fn task_id(app: &TestApp, slug: &str) -> i64 {
    cairn::db::courses::get_task_by_slug(&mut app.pool.get().unwrap(), slug).unwrap().id
}

/// Awards through the Reader's form; returns the assertion URL.
pub async fn award_post(app: &TestApp, post: i64, slug: &str) -> String {
    let res = app
        .post_form(
            "/admin/reader/award",
            &[
                ("link_id", &post.to_string()),
                ("task_id", &task_id(app, slug).to_string()),
                ("narrative", "A thoughtful post."),
                ("back", "/admin/reader"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let awards = cairn::db::awards::for_links(&mut app.pool.get().unwrap(), &[post]).unwrap();
    let a = awards.iter().find(|a| a.task_id == task_id(app, slug)).expect("award stored");
    app.url(&format!("/assertions/{}", a.public_id))
}

#[tokio::test]
async fn an_award_is_a_valid_hosted_open_badge_with_baked_images_and_no_email_in_public() {
    let (app, _server, post) = app_with_post().await;
    let url = award_post(&app, post, "el30-data").await;

    // Machines get JSON-LD, browsers a page.
    let res = app.client.get(&url).header("accept", "application/ld+json, application/json").send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/ld+json");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["@context"], "https://w3id.org/openbadges/v2");
    assert_eq!(doc["type"], "Assertion");
    assert_eq!(doc["id"], url);
    assert_eq!(doc["verification"]["type"], "hosted");
    assert_eq!(doc["recipient"]["hashed"], true);
    let salt = doc["recipient"]["salt"].as_str().unwrap();
    assert_eq!(doc["recipient"]["identity"], cairn::badges::ob::identity_hash(LEARNER, salt));
    assert_eq!(doc["evidence"]["id"], _server.url("/2019/data-and-me"));
    assert_eq!(doc["badge"], app.url("/badges/el30-data"));
    assert_eq!(doc["image"], format!("{url}/badge.png"));
    let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("class=\"h-entry assertion\"") && page.contains("valid"));
    assert!(page.contains(&_server.url("/2019/data-and-me")));

    // No recipient email in any public document or page.
    let svg = app.client.get(format!("{url}/badge.svg")).send().await.unwrap().text().await.unwrap();
    let png = app.client.get(format!("{url}/badge.png")).send().await.unwrap().bytes().await.unwrap();
    assert!(svg.contains("<openbadges:assertion verify="));
    for (what, text) in [
        ("assertion", doc.to_string()),
        ("page", page.clone()),
        ("svg", svg.clone()),
        ("png", String::from_utf8_lossy(&png).to_string()),
        ("badge class", app.client.get(app.url("/badges/el30-data")).send().await.unwrap().text().await.unwrap()),
        ("issuer", app.client.get(app.url("/issuer")).send().await.unwrap().text().await.unwrap()),
    ] {
        assert!(!text.contains(LEARNER), "the email leaks in the {what}");
    }

    // The official validator: hosted URL, baked SVG and PNG, right and wrong recipients.
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("badge.svg");
    let png_path = dir.path().join("badge.png");
    std::fs::write(&svg_path, &svg).unwrap();
    std::fs::write(&png_path, &png).unwrap();
    for target in [url.as_str(), svg_path.to_str().unwrap(), png_path.to_str().unwrap()] {
        let (verdict, code) = validate(target, None).await;
        assert_eq!((verdict.as_str(), code), ("VALID", 0), "{target}");
    }
    let (verdict, code) = validate(&url, Some(LEARNER)).await;
    assert_eq!((verdict.as_str(), code), ("VALID", 0));
    let (verdict, code) = validate(png_path.to_str().unwrap(), Some(LEARNER)).await;
    assert_eq!((verdict.as_str(), code), ("VALID", 0));
    let (verdict, code) = validate(&url, Some("mallory@example.edu")).await;
    assert_eq!(code, 1, "{verdict}");
    assert!(verdict.starts_with("INVALID"), "{verdict}");

    // Revoked: the document says so, the list lists it, the page says it in words, and
    // the validator no longer accepts it.
    let public_id = url.rsplit('/').next().unwrap().to_string();
    let res = app
        .post_form(
            &format!("/admin/awards/{public_id}/revoke"),
            &[("reason", "Posted by someone else"), ("back", "/admin/reader")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let doc: serde_json::Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["revoked"], true);
    assert_eq!(doc["revocationReason"], "Posted by someone else");
    let list: serde_json::Value =
        app.client.get(app.url("/issuer/revocations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["revokedAssertions"][0]["id"], url);
    let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("was <strong>revoked</strong>: Posted by someone else"));
    let (verdict, code) = validate(&url, None).await;
    assert_eq!(code, 1, "{verdict}");
}

/// The validator rejects what it must: each case differs from a valid award in one way.
#[tokio::test]
async fn the_validator_rejects_a_wrong_recipient_a_forged_copy_a_missing_assertion_and_public_hosts() {
    let (app, server, post) = app_with_post().await;
    let url = award_post(&app, post, "el30-data").await;
    let (verdict, code) = validate(&url, Some(LEARNER)).await;
    assert_eq!((verdict.as_str(), code), ("VALID", 0));

    let (verdict, code) = validate(&url, Some("mallory@example.edu")).await;
    assert_eq!(code, 1);
    assert!(verdict.contains("did not match"), "{verdict}");

    // A faithful copy hosted on another origin is not the issuer's.
    let res = app.client.get(&url).header("accept", "application/ld+json").send().await.unwrap();
    let mut copy: serde_json::Value = res.json().await.unwrap();
    copy["id"] = server.url("/copy").into();
    server.set("/copy", Reply::typed(copy.to_string(), "application/ld+json"));
    let (verdict, code) = validate(&server.url("/copy"), None).await;
    assert_eq!(code, 1);
    assert!(verdict.contains("not hosted in allowed origins"), "{verdict}");

    // A baked image that points at an assertion the issuer does not host.
    let svg = app.client.get(format!("{url}/badge.svg")).send().await.unwrap().text().await.unwrap();
    let missing = app.url("/assertions/no-such-award");
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("forged.svg");
    std::fs::write(&forged, svg.replace(&url, &missing)).unwrap();
    let (verdict, code) = validate(forged.to_str().unwrap(), None).await;
    assert_eq!(code, 1);
    assert!(verdict.contains(&format!("GET {missing} answered HTTP 404")), "{verdict}");

    // An image without badge data.
    let plain = dir.path().join("plain.png");
    let png = app.client.get(format!("{url}/badge.png")).send().await.unwrap().bytes().await.unwrap();
    std::fs::write(&plain, without_png_chunk(&png, b"iTXt")).unwrap();
    let (verdict, code) = validate(plain.to_str().unwrap(), Some(LEARNER)).await;
    assert_eq!(code, 1);
    assert!(verdict.contains("no Open Badges metadata"), "{verdict}");

    // Only loopback hosts are fetched: the tests never reach the internet.
    let (verdict, code) = validate("https://badges.example.org/assertions/1", None).await;
    assert_eq!(code, 1);
    assert!(verdict.contains("offline: refused to fetch https://badges.example.org/assertions/1"), "{verdict}");
}

/// The PNG without its chunks of one type.
fn without_png_chunk(png: &[u8], kind: &[u8; 4]) -> Vec<u8> {
    let mut out = png[..8].to_vec();
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 12 + len;
        if &png[at + 4..at + 8] != kind {
            out.extend_from_slice(&png[at..end]);
        }
        at = end;
    }
    assert!(out.len() < png.len(), "the PNG has no {} chunk", String::from_utf8_lossy(kind));
    out
}

#[tokio::test]
async fn the_same_badge_is_not_awarded_twice_and_the_recipient_can_be_checked() {
    let (app, _server, post) = app_with_post().await;
    let url = award_post(&app, post, "el30-data").await;
    let res = app
        .client
        .post(app.url("/admin/reader/award"))
        .header("accept", "application/json")
        .form(&[
            ("csrf_token", app.csrf().await.as_str()),
            ("link_id", &post.to_string()),
            ("task_id", &task_id(&app, "el30-data").to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("already has the badge"));
    assert_eq!(cairn::db::awards::count(&mut app.pool.get().unwrap()).unwrap(), 1);

    // A second task for the same post is fine, and answers JSON for the in-place update.
    let res = app
        .client
        .post(app.url("/admin/reader/award"))
        .header("accept", "application/json")
        .form(&[
            ("csrf_token", app.csrf().await.as_str()),
            ("link_id", &post.to_string()),
            ("task_id", &task_id(&app, "el30-cloud").to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["card"].as_str().unwrap().contains("awarded"));

    // "Check the recipient" on the public page.
    let visitor = crate::helpers::client();
    let page = visitor.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::csrf_in(&page);
    for (email, answer) in
        [("ADA@example.edu ", "Yes: this badge was awarded"), ("eve@example.edu", "No: this badge was not")]
    {
        let res = visitor
            .post(format!("{url}/check"))
            .form(&[("csrf_token", csrf.as_str()), ("email", email)])
            .send()
            .await
            .unwrap();
        assert!(res.text().await.unwrap().contains(answer), "{email}");
    }
}

#[tokio::test]
async fn the_reader_filters_and_pages_by_keyset() {
    let server = FeedServer::start().await;
    // 60 posts, a third tagged #el30-graph.
    let mut xml =
        String::from("<rss version=\"2.0\"><channel><title>Many</title><link>https://many.example.org/</link>");
    for i in 0..60 {
        let tag = if i % 3 == 0 { "#el30-graph" } else { "" };
        xml.push_str(&format!("<item><title>Post number {i:02}</title><link>https://many.example.org/{i}</link><description>Text {tag}</description></item>"));
    }
    xml.push_str("</channel></rss>");
    server.set("/many.xml", Reply::xml(xml));
    let app = app_for(&server, |_| {}).await;
    add_feed(&app, &server.url("/many.xml"), "Many");
    pass(&app).await;
    app.login().await;

    let first = app.get_html("/admin/reader").await;
    assert_eq!(first.matches("class=\"link reader-card").count(), 25);
    let next = first
        .split("rel=\"next\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(next.contains("before="), "{next}");
    let second = app.get_html(&next).await;
    assert_eq!(second.matches("class=\"link reader-card").count(), 25);
    let titles = |html: &str| -> Vec<String> {
        html.match_indices("Post number ").map(|(i, _)| html[i..i + 14].to_string()).collect()
    };
    let (a, b) = (titles(&first), titles(&second));
    assert!(a.iter().all(|t| !b.contains(t)), "pages do not overlap");

    let graph = task_id(&app, "el30-graph");
    let tagged = app.get_html(&format!("/admin/reader?task={graph}")).await;
    assert_eq!(tagged.matches("class=\"link reader-card").count(), 20);
    let text = app.get_html("/admin/reader?q=number+07").await;
    assert_eq!(text.matches("class=\"link reader-card").count(), 1);
    // Empty filter fields (as the form sends them) mean "any".
    let any = app.get_html("/admin/reader?course=&module=&task=&feed=&status=&q=").await;
    assert_eq!(any.matches("class=\"link reader-card").count(), 25);

    // Dismiss one, star one: the status filters follow.
    let links = cairn::db::links::recent(&mut app.pool.get().unwrap(), None, 100).unwrap();
    let (x, y) = (links[0].link.id.to_string(), links[1].link.id.to_string());
    app.post_form("/admin/reader/flag", &[("link_id", &x), ("flag", "dismissed"), ("on", "1")]).await;
    app.post_form("/admin/reader/flag", &[("link_id", &y), ("flag", "starred"), ("on", "1")]).await;
    assert_eq!(app.get_html("/admin/reader?status=dismissed").await.matches("class=\"link reader-card").count(), 1);
    assert_eq!(app.get_html("/admin/reader?status=starred").await.matches("class=\"link reader-card").count(), 1);
    let fresh = app.get_html("/admin/reader?status=new").await;
    assert!(!fresh.contains(&format!("id=\"link-{x}\"")));

    // Bulk: award the selected graph posts their own task.
    let tagged_ids: Vec<String> =
        links.iter().filter(|v| !v.tasks.is_empty()).take(3).map(|v| v.link.id.to_string()).collect();
    let mut body = vec![
        ("csrf_token".to_string(), app.csrf().await),
        ("task_id".into(), String::new()),
        ("back".into(), "/admin/reader".into()),
    ];
    for id in &tagged_ids {
        body.push(("link_id".into(), id.clone()));
    }
    let res = app.client.post(app.url("/admin/reader/bulk")).form(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // The feed author has no email: nothing can be issued, and the reason is given.
    let results = res.text().await.unwrap();
    assert!(results.contains("Awarded 0 badge(s)") && results.contains("no email address on file"), "{results}");
}

fn cairn_cmd(data_dir: &std::path::Path, base: &str) -> Command {
    let mut c = crate::helpers::cairn_cmd();
    c.env("CAIRN_DATA_DIR", data_dir).env("CAIRN_BASE_URL", base);
    c
}

#[tokio::test]
async fn the_command_line_awards_like_the_reader_in_bulk_too_and_revokes() {
    let (app, _server, _post) = app_with_post().await;
    let (dir, base) = (app.data_dir.clone(), app.address.clone());
    let out = {
        let (dir, base) = (dir.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            cairn_cmd(&dir, &base)
                .args([
                    "award",
                    "--task",
                    "#el30-agency",
                    "--recipient",
                    "grace@example.edu",
                    "--evidence",
                    "https://grace.example.org/agency",
                    "--name",
                    "Grace",
                    "--narrative",
                    "Well argued",
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.starts_with(&format!("{base}/assertions/")), "{url}");
    // The running server serves it at once.
    let doc: serde_json::Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["evidence"]["narrative"], "Well argued");

    let csv = dir.join("awards.csv");
    std::fs::write(
        &csv,
        "task,recipient,evidence,name,narrative\n\
         #el30-agency,grace@example.edu,https://grace.example.org/agency,Grace,again\n\
         #el30-cloud,\"lin@example.edu\",https://lin.example.org/cloud,Lin,\"Clouds, explained\"\n\
         #no-such-task,x@example.edu,https://x.example.org/,,\n\
         #el30-data,not-an-email,https://x.example.org/,,\n",
    )
    .unwrap();
    let out = {
        let (dir, base, csv) = (dir.clone(), base.clone(), csv.clone());
        tokio::task::spawn_blocking(move || {
            cairn_cmd(&dir, &base).arg("award").arg("--csv").arg(&csv).output().unwrap()
        })
        .await
        .unwrap()
    };
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success(), "some rows failed");
    assert!(text.contains("row 2: not awarded: This learner already has the badge"), "{text}");
    assert!(text.contains("row 3: awarded "), "{text}");
    assert!(text.contains("row 4: not awarded: no task has the hashtag #no-such-task"), "{text}");
    assert!(text.contains("row 5: not awarded:") && text.contains("not an email address"), "{text}");
    assert!(text.contains("1 awarded, 3 not awarded."), "{text}");

    let out = {
        let (dir, base, url) = (dir.clone(), base.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            cairn_cmd(&dir, &base).args(["revoke", &url, "--reason", "Duplicate account"]).output().unwrap()
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["revoked"], true);
}

#[tokio::test]
async fn an_expiring_badge_says_so_and_learners_find_their_badges_on_their_private_page() {
    let (app, server, post) = app_with_post().await;
    // The task's badge is valid for 30 days (set on the task form).
    let mut c = app.pool.get().unwrap();
    let task = cairn::db::courses::get_task_by_slug(&mut c, "el30-data").unwrap();
    drop(c);
    let res = app
        .post_multipart(
            &format!("/admin/tasks/{}", task.id),
            &[
                ("title", &task.title),
                ("hashtag", "#el30-data"),
                ("description", ""),
                ("criteria", ""),
                ("expires_days", "30"),
            ],
            "badge",
            None,
        )
        .await;
    assert_eq!(res.status(), 303);
    let bad = app
        .post_multipart(
            &format!("/admin/tasks/{}", task.id),
            &[("title", "x"), ("hashtag", "#el30-data"), ("expires_days", "soon")],
            "badge",
            None,
        )
        .await;
    assert_eq!(bad.status(), 422);
    let url = award_post(&app, post, "el30-data").await;
    let doc: serde_json::Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    let issued = chrono::DateTime::parse_from_rfc3339(doc["issuedOn"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(doc["expires"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_days(), 30);
    let page = app.client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<dt>Expires</dt>"));

    // The learner subscribes through Join; their private page lists the badge.
    let join = app.get_html("/join").await;
    let csrf = crate::helpers::csrf_in(&join);
    let res = app
        .client
        .post(app.url("/join"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Ada"),
            ("email", LEARNER),
            ("url", &server.url("/second.xml")),
        ])
        .send()
        .await
        .unwrap();
    // The address serves no feed, so use the existing subscription's management token instead.
    assert_eq!(res.status(), 422);
    let token = cairn::tokens::random_token();
    {
        use cairn::db::schema::feeds::dsl;
        diesel::update(dsl::feeds)
            .set(dsl::manage_token_hash.eq(cairn::tokens::token_hash(&token)))
            .execute(&mut app.pool.get().unwrap())
            .unwrap();
    }
    let mine = app.get_html(&format!("/subscription/{token}")).await;
    let id = url.rsplit('/').next().unwrap();
    assert!(
        mine.contains(&format!("/assertions/{id}/badge.svg?download=1"))
            && mine.contains(&format!("/assertions/{id}/badge.png?download=1"))
    );
}

/// The verification page leads with what the badge is and a "Verified" box that names each
/// check in plain words; the comment is labelled and rendered from Markdown, sanitised; one
/// section holds every download; and a failed check turns the box to "Not verified".
#[tokio::test]
async fn the_verification_page_summarises_the_badge_and_names_each_check() {
    let app = crate::helpers::spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-data".into(),
        recipient: "lin@example.edu".into(),
        name: Some("Lin Evans".into()),
        evidence: "https://lin.example.org/data".into(),
        narrative: Some("A **careful** post. <script>alert(1)</script>".into()),
    };
    let award = cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
    drop(c);
    let url = app.url(&format!("/assertions/{}", award.public_id));
    let page = |client: reqwest::Client| {
        let url = url.clone();
        async move { client.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap() }
    };
    let html = page(crate::helpers::client()).await;
    let summary = &html[html.find("<dl class=\"summary\">").expect("a summary")..];
    let summary = &summary[..summary.find("</dl>").unwrap()];
    for part in [
        "Issued to",
        "Lin Evans",
        "<dt>Course</dt>",
        "href=\"/courses/e-learning-3-0\"",
        "E-Learning 3.0",
        "Issued by",
        "Test University",
        "Issued on",
        "Earned by",
    ] {
        assert!(summary.contains(part), "the summary names {part}: {summary}");
    }
    assert!(html.contains("<h2 id=\"verified-h\">Verified</h2>"), "{html}");
    let checks: Vec<&str> = html.match_indices("<li class=\"check-").map(|(i, _)| &html[i..i + 40]).collect();
    assert_eq!(checks.len(), 4, "{checks:?}");
    for words in ["Signature valid", "Not revoked", "Not expired", "recognition chain"] {
        assert!(html.contains(words), "the checks say {words}");
    }
    assert!(html.contains("<h2 id=\"comment-h\">The instructor's comment</h2>"));
    assert!(html.contains("<strong>careful</strong>") && !html.contains("<script>alert"), "Markdown, sanitised");
    let downloads = &html[html.find("<section class=\"downloads\"").expect("a download section")..];
    for link in
        ["/credential\"", "/credential.svg\"", "/credential.png\"", "/badge.svg?download=1", "/badge.png?download=1"]
    {
        assert!(downloads.contains(link), "the downloads hold {link}");
    }
    assert_eq!(html.matches("class=\"downloads\"").count(), 1, "one download section");
    assert!(html.contains("/check#check-h\""), "the recipient check answers where it is asked");

    // A credential that no longer verifies is reported as such (seen signed in: never cached).
    let mut c = app.pool.get().unwrap();
    diesel::sql_query(
        "UPDATE credentials SET credential_json = replace(credential_json, 'lin.example.org', 'eve.example.org')",
    )
    .execute(&mut c)
    .unwrap();
    drop(c);
    app.login().await;
    let html = page(app.client.clone()).await;
    assert!(html.contains("<h2 id=\"verified-h\">Not verified</h2>"), "{html}");
    assert!(html.contains("<li class=\"check-failed\""), "{html}");
    assert!(html.contains("Signature not valid"), "{html}");

    // A revoked badge says when and why.
    let mut c = app.pool.get().unwrap();
    cairn::app::award::revoke(&mut c, &issuer, &award.public_id, "copied work", cairn::clock::system_now()).unwrap();
    drop(c);
    let html = page(app.client.clone()).await;
    assert!(html.contains("Revoked on ") && html.contains(": copied work."), "{html}");
}

/// The chain proof answers JSON to programs and a page that explains it to people.
#[tokio::test]
async fn the_chain_proof_is_a_page_for_people_and_json_for_programs() {
    let (app, public_id) = crate::serving::app_with_award().await;
    let proof = app.url(&format!("/assertions/{public_id}/proof"));
    let client = crate::helpers::client();
    for accept in ["application/json", "*/*"] {
        let res = client.get(&proof).header("accept", accept).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["record"]["assertion_url"], app.url(&format!("/assertions/{public_id}")), "{accept}");
    }
    let res = client.get(&proof).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    for part in
        ["Chain proof of this badge", "What this is", "Waiting to be recorded", "Check it yourself", "proof as JSON"]
    {
        assert!(html.contains(part), "the page says {part}: {html}");
    }
}
