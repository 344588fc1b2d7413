//! The site's page checks, over every HTML page a visitor or a signed-in instructor can reach
//! by following links from the home page, the admin pages and a learner's pages: valid HTML by
//! the Nu HTML Checker (vnu.jar) and no accessibility violation (WCAG 2 A and AA rules) by
//! axe-core in headless Chromium. Both are pinned in scripts/pagecheck/.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::TestApp;
use crate::helpers::repo;

/// Most pages one crawl visits.
const MAX_PAGES: usize = 80;

/// vnu.jar and axe.min.js, set up by the project's own script.
fn tools() -> (PathBuf, PathBuf) {
    let out = Command::new("bash").arg(repo("scripts/pagecheck/setup.sh")).output().expect("run setup.sh");
    assert!(out.status.success(), "scripts/pagecheck/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(|l| PathBuf::from(l.trim()));
    (lines.next().expect("vnu.jar"), lines.next().expect("axe.min.js"))
}

/// Links on `html` that lead to other pages of the site.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|h| h.replace("&amp;", "&").replace("&#38;", "&"))
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .filter(|h| {
            ![".svg", ".png", ".xml", ".json", ".atom", ".rss", ".opml", "download", "/static/", "/export"]
                .iter()
                .any(|skip| h.contains(skip))
        })
        .map(|h| h.split('#').next().unwrap_or_default().to_string())
        .collect()
}

/// Every HTML page reachable from `start` by GET, at most [`MAX_PAGES`]: (path, body).
async fn crawl(app: &TestApp, client: &reqwest::Client, start: &[String]) -> Vec<(String, String)> {
    let mut queue: VecDeque<String> = start.iter().cloned().collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    let mut pages = Vec::new();
    while let Some(path) = queue.pop_front() {
        if pages.len() >= MAX_PAGES {
            break;
        }
        let res = client.get(app.url(&path)).header("accept", "text/html").send().await.unwrap();
        let html_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
        if !res.status().is_success() || !html_type {
            continue;
        }
        let body = res.text().await.unwrap();
        for link in links(&body) {
            if seen.insert(link.clone()) {
                queue.push_back(link);
            }
        }
        pages.push((path, body));
    }
    pages
}

/// Four more badges (one revoked), so that a block records the learner's badge: the public id
/// of the revoked one.
async fn recorded_and_revoked(app: &TestApp) -> String {
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let now = cairn::clock::system_now();
    let mut c = app.pool.get().unwrap();
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let req = cairn::app::award::HashtagAward {
                task: "#el30-data".into(),
                recipient: format!("peer{i}@example.edu"),
                evidence: format!("https://peer{i}.example.org/post"),
                ..Default::default()
            };
            cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, now).unwrap().public_id
        })
        .collect();
    cairn::app::award::revoke(&mut c, &issuer, &ids[0], "Awarded by mistake.", now).unwrap();
    drop(c);
    app.ledger.wake.notify_one();
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.ledger.with_chain(|c| c.height()) < 1 {
        assert!(Instant::now() < deadline, "no block within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ids[0].clone()
}

/// The demo course, a learner with a badge, and the pages of both a visitor and an instructor.
async fn site() -> (TestApp, Vec<(String, String)>, Vec<(String, String)>) {
    let (app, assertion) = crate::portfolio::app_with_learner().await;
    let assertion = assertion.strip_prefix(&app.address).unwrap().to_string();
    let revoked = recorded_and_revoked(&app).await;
    let anonymous = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let start: Vec<String> = ["/", "/join", "/login", "/chain", "/institution", "/subscription"]
        .into_iter()
        .map(String::from)
        .chain([format!("/join?course={}", cairn::demo::DEMO_SLUG), format!("/assertions/{revoked}")])
        .chain([format!("{assertion}/proof"), assertion, format!("/subscription/{}", crate::portfolio::MANAGE_TOKEN)])
        // The pages a confirmation mail's link opens (they show a button whatever the token).
        .chain(["/join/confirm/t0k3n".to_string(), "/newsletter/confirm/t0k3n".to_string()])
        .collect();
    let public = crawl(&app, &anonymous, &start).await;
    app.login().await;
    let admin_start: Vec<String> = [
        "/admin",
        "/admin/reader",
        "/admin/feeds",
        "/admin/learners",
        "/admin/links",
        "/admin/mentions",
        "/admin/peers",
        "/admin/institution",
        "/admin/password",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let admin = crawl(&app, &app.client, &admin_start).await;
    (app, public, admin)
}

#[tokio::test]
async fn every_page_is_valid_html_by_the_nu_checker() {
    let (_app, public, admin) = site().await;
    assert!(
        public.len() >= 8 && admin.len() >= 8,
        "the crawl found {} public and {} admin pages",
        public.len(),
        admin.len()
    );
    assert!(admin.iter().any(|(path, body)| path == "/admin" && body.contains("id=\"dashboard\"")), "the dashboard");
    let has = |what: &str, test: &dyn Fn(&str, &str) -> bool| {
        assert!(public.iter().any(|(path, body)| test(path, body)), "the crawl checks {what}");
    };
    has("the join page of a course", &|p, b| p.starts_with("/join?course=") && b.contains("Join E-Learning 3.0"));
    has("the lost private link page", &|p, b| p == "/subscription" && b.contains("Lost your private link?"));
    has("a revoked badge", &|p, b| p.starts_with("/assertions/") && b.to_lowercase().contains("revoked"));
    has("a recorded proof", &|p, b| p.ends_with("/proof") && b.contains("Recorded in block 1"));
    let pages: Vec<(String, String)> = public.into_iter().chain(admin).collect();
    let errors = nu_errors(&pages);
    assert!(errors.is_empty(), "{} HTML errors:\n{}", errors.len(), errors.join("\n"));
}

/// The Nu HTML Checker's errors on `pages` (path, body), each as "path:line: message — extract".
pub fn nu_errors(pages: &[(String, String)]) -> Vec<String> {
    let (vnu, _) = tools();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (n, (path, body)) in pages.iter().enumerate() {
        let file = dir.path().join(format!("page{n}.html"));
        std::fs::write(&file, body).unwrap();
        files.push((file, path.clone()));
    }
    let started = Instant::now();
    let mut child = Command::new("java")
        .arg("-jar")
        .arg(&vnu)
        .args(["--errors-only", "--format", "json"])
        .args(files.iter().map(|(f, _)| f))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java (see scripts/pagecheck/setup.sh)");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "vnu ran for over 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let report: Value = serde_json::from_str(&reader.join().unwrap()).expect("vnu's JSON report");
    report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "error")
        .map(|m| {
            let file = m["url"].as_str().unwrap_or_default();
            let path = files
                .iter()
                .find(|(f, _)| file.ends_with(&*f.file_name().unwrap().to_string_lossy()))
                .map_or("?", |(_, p)| p.as_str());
            format!("{path}:{}: {} — {}", m["lastLine"], m["message"], m["extract"])
        })
        .collect()
}

#[tokio::test]
async fn no_page_has_an_accessibility_violation_in_a_browser() {
    let (_, axe) = tools();
    let axe = std::fs::read_to_string(axe).unwrap();
    let (app, public, admin) = site().await;
    // The check itself finds what it should: a page with an image without a text alternative.
    let bad = crate::feedserver::FeedServer::start().await;
    bad.set(
        "/bad.html",
        crate::feedserver::Reply::typed("<!doctype html><title>Bad</title><img src=\"x.png\">", "text/html"),
    );
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        let check = async |url: String| -> Result<Vec<String>, fantoccini::error::CmdError> {
            let path =
                url.split_once("://").map_or("", |(_, rest)| rest.find('/').map_or("", |i| &rest[i..])).to_string();
            browser.goto(&url).await?;
            browser.execute(&axe, vec![]).await?;
            let found = browser
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                        .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' — ' +
                                   v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))))
                        .catch(e => done(['axe failed: ' + e]));",
                    vec![],
                )
                .await?;
            Ok(found
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| format!("{path}: {}", v.as_str().unwrap_or_default()))
                .collect())
        };
        let control = check(bad.url("/bad.html")).await?;
        let mut violations = Vec::new();
        for (path, _) in &public {
            violations.extend(check(app.url(path)).await?);
        }
        crate::browser::sign_in(&browser, &app.url("/login")).await?;
        for (path, _) in &admin {
            violations.extend(check(app.url(path)).await?);
        }
        Ok::<_, fantoccini::error::CmdError>((control, violations))
    }
    .await;
    let _ = browser.close().await;
    let (control, violations) = result.expect("browser");
    assert!(control.iter().any(|v| v.contains("image-alt")), "axe missed a known violation: {control:?}");
    assert!(violations.is_empty(), "{} violations:\n{}", violations.len(), violations.join("\n"));
}
