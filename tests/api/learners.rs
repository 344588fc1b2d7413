//! Learners' rights over their data: forgetting a learner (command line and the instructor's
//! button), checked on a real `cairn serve` whose log is captured, its data dir and database
//! file scanned byte by byte afterwards.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::feedserver::{FeedServer, Reply};
use crate::helpers::{client, csrf_in};
use crate::smtp::SmtpSink;

const GRACE: &str = "Grace Hopper";
const GRACE_EMAIL: &str = "grace.hopper@navy.example";
const ADA: &str = "Ada Lovelace";
const ADA_EMAIL: &str = "ada@example.edu";
const INSTRUCTOR: &str = "teacher@example.edu";
const PASSWORD: &str = "correct horse battery";

/// A feed of `posts` (title, hashtag); the author element names `author` when given.
fn rss(base: &str, author: Option<&str>, posts: &[(&str, &str)]) -> String {
    let items: String = posts
        .iter()
        .enumerate()
        .map(|(i, (title, tag))| {
            let by = author.map(|a| format!("<author>{a}</author>")).unwrap_or_default();
            format!(
                "<item><title>{title}</title><link>{base}/p{i}</link><guid>{base}/p{i}</guid>{by}\
                 <description>Thinking about {tag} today.</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Notes</title><link>{base}/</link>\
         <description>d</description>{items}</channel></rss>"
    )
}

/// Everything a process wrote to stdout and stderr, collected by reader threads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn follow(&self, mut from: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let into = self.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    }

    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The instance under test: its data dir, settings as environment, and its log.
struct Instance {
    dir: PathBuf,
    env: Vec<(String, String)>,
    log: Captured,
}

impl Instance {
    fn cmd(&self) -> Command {
        let mut c = crate::helpers::cairn_cmd();
        c.env("CAIRN_DATA_DIR", &self.dir);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs a command to completion (bounded), keeping its output in the log.
    async fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut c = self.cmd();
        c.args(args).stdin(Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || c.output()))
            .await
            .expect("the command finishes in time")
            .unwrap()
            .unwrap();
        self.log.push(&out.stdout);
        self.log.push(&out.stderr);
        out
    }
}

/// A running `cairn serve`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    base: String,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    async fn start(inst: &Instance) -> Server {
        let mut child = inst
            .cmd()
            .args(["serve"])
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let err_reader = inst.log.follow(stderr);
        // The first stdout line names the URL; read it byte by byte so nothing after it is lost.
        let log = inst.log.clone();
        let first = tokio::task::spawn_blocking(move || {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while stdout.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
                line.push(b[0]);
            }
            log.push(&line);
            log.push(b"\n");
            (String::from_utf8_lossy(&line).into_owned(), stdout)
        });
        let (line, stdout) =
            tokio::time::timeout(Duration::from_secs(60), first).await.expect("cairn serve starts").unwrap();
        let out_reader = inst.log.follow(stdout);
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| panic!("the start-up line names the URL: {line}"));
        Server { child, base, readers: vec![err_reader, out_reader] }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server as an operator would (SIGTERM) and waits, at most 30 s, for it to exit
    /// and for its output to be read.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `{base}{prefix}…` link in a mail, quoted-printable soft breaks undone.
fn link_in(mail: &str, base: &str, prefix: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(&format!("{base}{prefix}")).unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..].split_whitespace().next().unwrap().trim_end_matches('.').to_string()
}

/// Signs an instructor in on a fresh client of the server at `base`.
async fn sign_in(base: &str) -> reqwest::Client {
    let c = client();
    let page = c.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let res = c
        .post(format!("{base}/login"))
        .form(&[("csrf_token", csrf_in(&page).as_str()), ("email", INSTRUCTOR), ("password", PASSWORD), ("next", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign-in");
    c
}

/// POSTs an instructor form with a CSRF token from `/admin`.
async fn post_admin(c: &reqwest::Client, base: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let admin = c.get(format!("{base}/admin")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&admin);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    c.post(format!("{base}{path}")).form(&all).send().await.unwrap()
}

fn open_db(dir: &Path) -> SqliteConnection {
    let mut c = SqliteConnection::establish(dir.join("cairn.db").to_str().unwrap()).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut c, "PRAGMA busy_timeout = 5000;").unwrap();
    c
}

/// (link id, title) of an author's harvested posts, by the author's email.
fn posts_of(dir: &Path, email: &str) -> Vec<(i64, String)> {
    use cairn::db::schema::{authors, links};
    links::table
        .inner_join(authors::table)
        .filter(authors::email.eq(email))
        .order(links::id)
        .select((links::id, links::title))
        .load(&mut open_db(dir))
        .unwrap()
}

fn task_id(dir: &Path, hashtag: &str) -> i64 {
    use cairn::db::schema::tasks;
    tasks::table.filter(tasks::hashtag.eq(hashtag)).select(tasks::id).first(&mut open_db(dir)).unwrap()
}

/// Awards through the Reader's form; returns the award's public id.
async fn award(c: &reqwest::Client, base: &str, dir: &Path, link: i64, hashtag: &str) -> String {
    let task = task_id(dir, hashtag);
    let res = post_admin(
        c,
        base,
        "/admin/reader/award",
        &[
            ("link_id", &link.to_string()),
            ("task_id", &task.to_string()),
            ("narrative", "A thoughtful post."),
            ("back", "/admin/reader"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    use cairn::db::schema::awards;
    awards::table
        .filter(awards::link_id.eq(link).and(awards::task_id.eq(task)))
        .select(awards::public_id)
        .first(&mut open_db(dir))
        .unwrap()
}

/// The chain status of an award's record ("pending" or "recorded").
async fn proof_status(base: &str, id: &str) -> String {
    let v: serde_json::Value =
        client().get(format!("{base}/assertions/{id}/proof")).send().await.unwrap().json().await.unwrap();
    v["status"].as_str().unwrap_or_default().to_string()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { todo.push(p) } else { out.push(p) }
        }
    }
    out
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let hay = hay.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase().into_bytes();
    hay.windows(needle.len()).any(|w| w == needle.as_slice())
}

#[tokio::test]
async fn a_forgotten_learner_is_in_no_table_file_or_log_and_the_chain_and_other_badges_stay_valid() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpSink::start().await;
    let temp = tempfile::tempdir().unwrap();
    let inst = Instance {
        dir: temp.path().join("data"),
        env: [
            ("CAIRN_BIND", "127.0.0.1:0".to_string()),
            ("CAIRN_HARVEST_ENABLED", "false".into()),
            ("CAIRN_ALLOW_ORIGINS", feeds.origin()),
            ("CAIRN_SMTP_HOST", "127.0.0.1".into()),
            ("CAIRN_SMTP_PORT", smtp.port.to_string()),
            ("CAIRN_SMTP_TLS", "none".into()),
            ("CAIRN_CHAIN_RECORDS_PER_BLOCK", "2".into()),
            ("CAIRN_CHAIN_DIFFICULTY_BITS", "8".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        log: Captured::default(),
    };
    feeds.set(
        "/g.xml",
        Reply::xml(rss(
            &feeds.url("/g"),
            Some(&format!("{GRACE_EMAIL} ({GRACE})")),
            &[("Compilers", "#el30-data"), ("Clouds", "#el30-cloud")],
        )),
    );
    feeds.set("/a.xml", Reply::xml(rss(&feeds.url("/a"), None, &[("Engines", "#el30-data")])));

    assert!(inst.run(&["demo"], &[]).await.status.success(), "{}", inst.log.text());
    let made = inst.run(&["admin", "create-instructor", "--email", INSTRUCTOR], &[("CAIRN_PASSWORD", PASSWORD)]).await;
    assert!(made.status.success(), "{}", inst.log.text());
    let server = Server::start(&inst).await;
    let base = server.base.clone();

    // Grace joins through the public page and confirms by the emailed link.
    let anon = client();
    let page = anon.get(server.url("/join")).send().await.unwrap().text().await.unwrap();
    let res = anon
        .post(server.url("/join"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("name", GRACE),
            ("email", GRACE_EMAIL),
            ("url", &feeds.url("/g.xml")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = smtp.wait_for(1).await;
    let confirm = link_in(&mails[0], &base, "/join/confirm/");
    assert!(crate::join::confirm_through_page(&anon, &confirm).await.status().is_success());

    // Ada's feed is added by the instructor; both are harvested by `cairn harvest --once`.
    let teacher = sign_in(&base).await;
    let res = post_admin(
        &teacher,
        &base,
        "/admin/feeds",
        &[("name", ADA), ("email", ADA_EMAIL), ("url", &feeds.url("/a.xml"))],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(inst.run(&["harvest", "--once"], &[]).await.status.success(), "{}", inst.log.text());
    let grace_posts = posts_of(&inst.dir, GRACE_EMAIL);
    let ada_posts = posts_of(&inst.dir, ADA_EMAIL);
    assert_eq!((grace_posts.len(), ada_posts.len()), (2, 1), "{grace_posts:?} {ada_posts:?}");

    // Two awards fill a block (two records a block); Grace's second stays pending.
    let mined = award(&teacher, &base, &inst.dir, grace_posts[0].0, "#el30-data").await;
    let ada_award = award(&teacher, &base, &inst.dir, ada_posts[0].0, "#el30-data").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while proof_status(&base, &mined).await != "recorded" {
        assert!(Instant::now() < deadline, "the first award was never mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pending = award(&teacher, &base, &inst.dir, grace_posts[1].0, "#el30-cloud").await;
    assert_eq!(proof_status(&base, &pending).await, "pending");
    // The award mails (and the confirmation) are delivered before the forget: mail already sent.
    assert!(smtp.wait_for(4).await.len() >= 4, "award mails were not delivered");
    let salts: Vec<String> = {
        use cairn::db::schema::awards;
        awards::table
            .filter(awards::public_id.eq_any([&mined, &pending]))
            .select(awards::salt)
            .load(&mut open_db(&inst.dir))
            .unwrap()
    };
    assert_eq!(salts.len(), 2);
    let page = client().get(server.url(&format!("/assertions/{mined}"))).header("accept", "text/html").send().await;
    assert!(page.unwrap().text().await.unwrap().contains(GRACE), "the page named her before");

    // The scan below can see her: before the forget, the database holds her address.
    assert!(
        files_under(&inst.dir).iter().any(|p| contains_ci(&std::fs::read(p).unwrap(), GRACE_EMAIL)),
        "the scan cannot find what it looks for"
    );

    // Off a terminal the command refuses without --yes, and changes nothing.
    let refused = inst.run(&["learner", "forget", GRACE_EMAIL], &[]).await;
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(posts_of(&inst.dir, GRACE_EMAIL).len(), 2);

    let forgot = inst.run(&["learner", "forget", &GRACE_EMAIL.to_uppercase(), "--yes"], &[]).await;
    let said = String::from_utf8_lossy(&forgot.stdout).into_owned();
    assert!(forgot.status.success(), "{}", inst.log.text());
    assert!(said.contains("2 award(s) withdrawn, 2 post(s) deleted"), "{said}");

    // Her assertion URLs answer 410 Gone, as JSON and as a page, naming nobody.
    let c = client();
    for id in [&mined, &pending] {
        for (accept, kind) in [("application/ld+json", "application/json"), ("text/html", "text/html")] {
            let res = c.get(server.url(&format!("/assertions/{id}"))).header("accept", accept).send().await.unwrap();
            assert_eq!(res.status(), 410, "{id} as {accept}");
            let ct = res.headers()["content-type"].to_str().unwrap().to_string();
            assert!(ct.starts_with(kind), "{ct}");
            let body = res.text().await.unwrap();
            assert!(body.contains("withdrawn at the learner") && !body.contains("Grace"), "{body}");
        }
        let png = c.get(server.url(&format!("/assertions/{id}/badge.png"))).send().await.unwrap();
        assert_eq!(png.status(), 410);
    }
    // …and the revocation list lists them as withdrawn.
    let list: serde_json::Value = c.get(server.url("/issuer/revocations")).send().await.unwrap().json().await.unwrap();
    let revoked = list["revokedAssertions"].as_array().unwrap();
    for id in [&mined, &pending] {
        let entry = revoked.iter().find(|r| r["id"].as_str().unwrap().ends_with(id.as_str())).expect("listed");
        assert_eq!(entry["revocationReason"], "withdrawn");
    }
    assert_eq!(revoked.len(), 2, "only hers: {list}");

    // Ada's badge is untouched: the official validator still finds it valid, for her address.
    let (verdict, code) =
        crate::badges::validate(&server.url(&format!("/assertions/{ada_award}")), Some(ADA_EMAIL)).await;
    assert_eq!((verdict.as_str(), code), ("VALID", 0));

    // The chain verifies (the server keeps mining the withdrawal records meanwhile).
    let verify = inst.run(&["chain", "verify"], &[]).await;
    assert!(verify.status.success(), "{}", inst.log.text());

    // The audit says a forget happened, from the command line, with no one named.
    let events = cairn::db::learners::forget_events(&mut open_db(&inst.dir), 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor, events[0].instructor_id, events[0].awards_withdrawn),
        (cairn::db::learners::ForgetActor::Cli, None, 2)
    );

    server.stop().await;
    {
        let mut c = open_db(&inst.dir);
        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).unwrap();
    }
    let chain = inst.run(&["chain", "verify"], &[]).await;
    assert!(chain.status.success(), "{}", inst.log.text());

    // Nothing Cairn keeps or wrote holds her name, address or the salts.
    let mut needles = vec![GRACE.to_string(), GRACE_EMAIL.to_string()];
    needles.extend(salts);
    let files = files_under(&inst.dir);
    assert!(files.iter().any(|p| p.ends_with("cairn.db")), "{files:?}");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for n in &needles {
            assert!(!contains_ci(&bytes, n), "{} still holds {n:?}", path.display());
        }
    }
    let log = inst.log.text();
    assert!(log.contains("request") && log.contains("/join"), "the log was captured: {log}");
    for n in &needles {
        assert!(!contains_ci(log.as_bytes(), n), "the log holds {n:?}:\n{log}");
    }
}

#[tokio::test]
async fn an_instructor_forgets_a_learner_from_their_page_after_confirming() {
    let (app, _server, post) = crate::badges::app_with_post().await;
    let url = crate::badges::award_post(&app, post, "el30-data").await;
    let author = cairn::db::feeds::author_by_email(&mut app.pool.get().unwrap(), crate::badges::LEARNER)
        .unwrap()
        .expect("the learner is on file");

    let feeds = app.get_html("/admin/feeds").await;
    assert!(feeds.contains(&format!("href=\"/admin/learners/{}\"", author.id)), "the feeds page links the learner");
    let page = app.get_html(&format!("/admin/learners/{}", author.id)).await;
    let confirm_path = format!("/admin/learners/{}/forget", author.id);
    assert!(page.contains(&confirm_path), "the learner page links the confirmation");
    let confirm = app.get_html(&confirm_path).await;
    assert!(confirm.contains("Forget Ada Lovelace?") && confirm.contains("1 award(s)"), "{confirm}");

    // Without the form's token nothing happens.
    let res = app.client.post(app.url(&confirm_path)).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);

    let res = app.post_form(&confirm_path, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(crate::helpers::location(&res), "/admin/feeds");
    let after = app.get_html("/admin/feeds").await;
    assert!(after.contains("The learner was forgotten: 1 award(s) withdrawn") && !after.contains("Ada Lovelace"));

    let json = app.client.get(&url).header("accept", "application/ld+json").send().await.unwrap();
    assert_eq!(json.status(), 410);
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"]["message"], cairn::app::learners::WITHDRAWN);
    assert_eq!(app.get(&format!("/admin/learners/{}", author.id)).await.status(), 404);
    assert_eq!(app.get(&confirm_path).await.status(), 404);

    let mut c = app.pool.get().unwrap();
    let instructor = cairn::db::instructors::find_by_email(&mut c, crate::helpers::EMAIL).unwrap().unwrap();
    let events = cairn::db::learners::forget_events(&mut c, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor, events[0].instructor_id, events[0].awards_withdrawn),
        (cairn::db::learners::ForgetActor::Instructor, Some(instructor.id), 1)
    );
    let a = cairn::db::awards::by_public_id(&mut c, url.rsplit('/').next().unwrap()).unwrap();
    assert!(a.is_withdrawn() && a.salt.is_empty() && a.recipient_name.is_none() && a.evidence_url.is_none());
    assert_eq!(a.revocation_reason.as_deref(), Some("withdrawn"));
}

#[tokio::test]
async fn a_learner_downloads_their_data_and_is_forgotten_only_through_the_emailed_link() {
    let feeds = FeedServer::start().await;
    feeds.set("/g.xml", Reply::xml(rss(&feeds.url("/g"), None, &[("Compilers", "#el30-data"), ("Clouds", "#el30-x")])));
    let smtp = SmtpSink::start().await;
    let app = crate::harvest::app_for(&feeds, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;

    // Grace joins and confirms; her posts are harvested; one is awarded.
    let page = app.get_html("/join").await;
    let res = app
        .client
        .post(app.url("/join"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("name", GRACE),
            ("email", GRACE_EMAIL),
            ("url", &feeds.url("/g.xml")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mail = smtp.wait_for(1).await.remove(0);
    let confirm = link_in(&mail, &app.address, "/join/confirm/");
    let manage = link_in(&mail, &app.address, "/subscription/");
    assert!(crate::join::confirm_through_page(&app.client, &confirm).await.status().is_success());
    crate::harvest::pass(&app).await;
    app.login().await;
    let posts = posts_of(&app.data_dir, GRACE_EMAIL);
    assert_eq!(posts.len(), 2);
    let url = crate::badges::award_post(&app, posts[0].0, "el30-data").await;
    let public_id = url.rsplit('/').next().unwrap().to_string();
    assert!(smtp.wait_for(2).await.len() >= 2, "the badge mail");

    // Her private page lists her posts, the task each counts for, and the badge it earned.
    let page = app.client.get(&manage).send().await.unwrap().text().await.unwrap();
    let posts_part =
        &page[page.find("<h2>Your posts</h2>").expect("a posts section")..page.find("<h2>Your badges</h2>").unwrap()];
    let compilers = &posts_part[posts_part.find("Compilers").expect("the tagged post")..];
    let compilers = &compilers[..compilers.find("</li>\n</ul>").unwrap_or(compilers.len())];
    assert!(
        compilers.contains("#el30-data") && compilers.contains(&format!("href=\"/assertions/{public_id}\"")),
        "{compilers}"
    );
    assert!(compilers.contains("badge awarded"), "{compilers}");
    let clouds = &posts_part[posts_part.find("Clouds").expect("the untagged post")..];
    assert!(clouds.contains("Not counted for a task"), "{clouds}");

    // "Download my data": the subscription, both posts and the award, as a JSON attachment.
    let res = app.client.get(format!("{manage}/export")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let data: serde_json::Value = res.json().await.unwrap();
    assert_eq!(data["subscription"]["name"], GRACE);
    assert_eq!(data["subscription"]["email"], GRACE_EMAIL);
    assert_eq!(data["subscription"]["feeds"][0]["url"], feeds.url("/g.xml"));
    let titles: Vec<&str> = data["posts"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Compilers", "Clouds"]);
    let awards = data["awards"].as_array().unwrap();
    assert_eq!(awards.len(), 1);
    assert_eq!(
        (awards[0]["assertion_url"].as_str().unwrap(), awards[0]["hashtag"].as_str().unwrap()),
        (url.as_str(), "#el30-data")
    );
    // …and the baked badges, as a zip whose PNG is the one the assertion serves.
    let zip = app.client.get(format!("{manage}/badges.zip")).send().await.unwrap();
    assert_eq!(zip.status(), 200);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.bytes().await.unwrap().to_vec())).unwrap();
    let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, [format!("{public_id}.credential.json"), format!("{public_id}.png"), format!("{public_id}.svg")]);
    let mut png = Vec::new();
    archive.by_name(&format!("{public_id}.png")).unwrap().read_to_end(&mut png).unwrap();
    let served = app.client.get(format!("{url}/badge.png")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(png, served.to_vec());
    // The Open Badges 3.0 credential, as signed and served.
    let mut credential = String::new();
    archive.by_name(&format!("{public_id}.credential.json")).unwrap().read_to_string(&mut credential).unwrap();
    let served = app.client.get(format!("{url}/credential")).send().await.unwrap().text().await.unwrap();
    assert_eq!(credential, served);
    // A wrong private link gets nothing.
    let wrong = app.client.get(app.url(&format!("/subscription/{}/export", "ab".repeat(16)))).send().await.unwrap();
    assert_eq!(wrong.status(), 404);

    // "Forget me" only sends a link; nothing is erased yet.
    let sub = app.client.get(&manage).send().await.unwrap().text().await.unwrap();
    let res = app
        .client
        .post(format!("{manage}/forget"))
        .form(&[("csrf_token", csrf_in(&sub).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Check your email"));
    assert_eq!(posts_of(&app.data_dir, GRACE_EMAIL).len(), 2);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);

    // A guessed link does nothing, by GET or POST.
    let guessed = app.url(&format!("/forget/{}", "cd".repeat(16)));
    assert_eq!(app.client.get(&guessed).send().await.unwrap().status(), 404);
    let token = csrf_in(&app.get_html("/admin").await);
    let res = app.client.post(&guessed).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(posts_of(&app.data_dir, GRACE_EMAIL).len(), 2);

    // The emailed link shows what will go; opening it erases nothing (mail scanners open links).
    let mails = smtp.wait_for(3).await;
    let forget_mail = mails.iter().find(|m| m.contains("forget")).expect("the forget mail");
    assert!(forget_mail.contains(GRACE_EMAIL), "sent to her address on file");
    let link = link_in(forget_mail, &app.address, "/forget/");
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("2 collected post(s)") && page.contains("withdraw your 1"), "{page}");
    assert_eq!(posts_of(&app.data_dir, GRACE_EMAIL).len(), 2);

    // Confirming forgets her, as the instructor's button would.
    let res = app.client.post(&link).form(&[("csrf_token", csrf_in(&page).as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Cairn has forgotten you"));
    assert!(posts_of(&app.data_dir, GRACE_EMAIL).is_empty());
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 410);
    assert_eq!(app.client.get(&manage).send().await.unwrap().status(), 404);
    assert_eq!(app.client.get(&link).send().await.unwrap().status(), 404, "the link works once");
    let events = cairn::db::learners::forget_events(&mut app.pool.get().unwrap(), 10).unwrap();
    assert_eq!((events.len(), events[0].actor), (1, cairn::db::learners::ForgetActor::Learner));
}

#[tokio::test]
async fn a_learner_chooses_the_public_form_of_their_name_and_changes_it_for_future_awards() {
    let feeds = FeedServer::start().await;
    feeds.set(
        "/g.xml",
        Reply::xml(rss(&feeds.url("/g"), None, &[("Compilers", "#el30-data"), ("Clouds", "#el30-cloud")])),
    );
    let smtp = SmtpSink::start().await;
    let app = crate::harvest::app_for(&feeds, |s| {
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = smtp.port;
        s.mail.smtp_tls = cairn::config::SmtpTls::None;
    })
    .await;
    let join_page = app.get_html("/join").await;
    assert!(join_page.contains("name=\"shown\" value=\"initials\""), "the join form offers the choice");
    let join = |shown: &'static str, pseudonym: &'static str| {
        let (client, url, feed, csrf) =
            (app.client.clone(), app.url("/join"), feeds.url("/g.xml"), csrf_in(&join_page));
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("name", GRACE),
                    ("email", GRACE_EMAIL),
                    ("url", feed.as_str()),
                    ("shown", shown),
                    ("pseudonym", pseudonym),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let res = join("pseudonym", " ").await;
    assert_eq!(res.status(), 422, "a pseudonym must be typed");
    assert!(res.text().await.unwrap().contains("type the pseudonym"));
    assert_eq!(join("initials", "").await.status(), 200);
    let mail = smtp.wait_for(1).await.remove(0);
    let confirm = link_in(&mail, &app.address, "/join/confirm/");
    assert!(crate::join::confirm_through_page(&app.client, &confirm).await.status().is_success());
    let manage = link_in(&mail, &app.address, "/subscription/");
    crate::harvest::pass(&app).await;
    app.login().await;
    let posts = posts_of(&app.data_dir, GRACE_EMAIL);

    let page = |url: String| {
        let c = crate::helpers::client();
        async move { c.get(url).header("accept", "text/html").send().await.unwrap().text().await.unwrap() }
    };
    let first = crate::badges::award_post(&app, posts[0].0, "el30-data").await;
    let shown = page(first.clone()).await;
    assert!(shown.contains("G. H.") && !shown.contains(GRACE), "{shown}");
    let author = cairn::db::feeds::author_by_email(&mut app.pool.get().unwrap(), GRACE_EMAIL).unwrap().unwrap();
    let learner = app.get_html(&format!("/admin/learners/{}", author.id)).await;
    assert!(learner.contains(GRACE), "instructors see the real name");

    // Changed from the private link: the next award carries the pseudonym, the first keeps its name.
    let sub = app.client.get(&manage).send().await.unwrap().text().await.unwrap();
    assert!(sub.contains("value=\"initials\" checked"), "the page shows the current choice");
    let res = app
        .client
        .post(&manage)
        .form(&[
            ("csrf_token", csrf_in(&sub).as_str()),
            ("name", GRACE),
            ("url", &feeds.url("/g.xml")),
            ("shown", "pseudonym"),
            ("pseudonym", "Amazing Grace"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let second = crate::badges::award_post(&app, posts[1].0, "el30-cloud").await;
    let shown = page(second).await;
    assert!(shown.contains("Amazing Grace") && !shown.contains(GRACE), "{shown}");
    let kept = page(first).await;
    assert!(kept.contains("G. H.") && !kept.contains("Amazing Grace"), "{kept}");
}

/// (table, column) pairs of every table in the database whose `column` holds `needle`
/// anywhere in a row (compared without case; blobs byte for byte).
fn tables_holding(conn: &mut SqliteConnection, needle: &str) -> Vec<(String, String)> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables: Vec<Name> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'").load(conn).unwrap();
    let mut found = Vec::new();
    for t in tables {
        let cols: Vec<Name> = diesel::sql_query("SELECT name FROM pragma_table_info(?)")
            .bind::<diesel::sql_types::Text, _>(&t.name)
            .load(conn)
            .unwrap();
        for c in cols {
            let q = format!(
                "SELECT count(*) AS n FROM \"{t}\" WHERE instr(lower(CAST(\"{c}\" AS TEXT)), lower(?1)) > 0 \
                 OR instr(CAST(\"{c}\" AS BLOB), CAST(?1 AS BLOB)) > 0",
                t = t.name,
                c = c.name
            );
            let n: Count = diesel::sql_query(q).bind::<diesel::sql_types::Text, _>(needle).get_result(conn).unwrap();
            if n.n > 0 {
                found.push((t.name.clone(), c.name.clone()));
            }
        }
    }
    found
}

const HYPATIA: &str = "Hypatia Alexandrina";
const HYPATIA_EMAIL: &str = "hypatia@library.example";
const HYPATIA_EVIDENCE: &str = "https://hypatia.library.example/notes-on-data";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forget_reaches_webhook_payloads_idempotent_answers_the_newsletter_and_mail_files() {
    let (origin, got) = crate::api::receiver().await;
    let temp = tempfile::tempdir().unwrap();
    // No SMTP server: every mail is written as an .eml file in the data dir.
    let inst = Instance {
        dir: temp.path().join("data"),
        env: [
            ("CAIRN_BIND", "127.0.0.1:0".to_string()),
            ("CAIRN_HARVEST_ENABLED", "false".into()),
            ("CAIRN_ALLOW_ORIGINS", origin.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        log: Captured::default(),
    };
    assert!(inst.run(&["demo"], &[]).await.status.success(), "{}", inst.log.text());
    let made = inst.run(&["admin", "create-instructor", "--email", INSTRUCTOR], &[("CAIRN_PASSWORD", PASSWORD)]).await;
    assert!(made.status.success(), "{}", inst.log.text());
    let out = inst
        .run(&["admin", "token", "create", "--email", INSTRUCTOR, "--scope", "awards:write,read,webhooks:write"], &[])
        .await;
    assert!(out.status.success(), "{}", inst.log.text());
    let token = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
    let server = Server::start(&inst).await;
    let api = client();
    let call = |method: reqwest::Method, path: &str| api.request(method, server.url(path)).bearer_auth(&token);

    // Two webhooks: one that takes every event, one that keeps answering 503 (its deliveries
    // stay queued, their bodies fixed at the first attempt).
    for path in ["/hook", "/flaky"] {
        let res = call(reqwest::Method::POST, "/api/v1/webhooks")
            .json(&serde_json::json!({"url": format!("{origin}{path}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    // An award by API with an Idempotency-Key: its answer is remembered, naming her.
    let body = serde_json::json!({"task": "#el30-data", "recipient": HYPATIA_EMAIL, "name": HYPATIA,
                                  "evidence": HYPATIA_EVIDENCE, "narrative": "A careful reading."});
    let send = || call(reqwest::Method::POST, "/api/v1/awards").header("Idempotency-Key", "hypatia-1").json(&body);
    let res = send().send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let award: serde_json::Value = res.json().await.unwrap();
    let id = award["id"].as_str().unwrap().to_string();
    // She subscribes to the course's newsletter (the confirmation mail is written as a file).
    let anon = client();
    let slug = cairn::demo::DEMO_SLUG;
    let page = anon.get(server.url(&format!("/courses/{slug}/newsletter"))).send().await.unwrap().text().await.unwrap();
    let res = anon
        .post(server.url(&format!("/courses/{slug}/newsletter")))
        .form(&[("csrf_token", csrf_in(&page).as_str()), ("email", HYPATIA_EMAIL), ("name", HYPATIA)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Wait until both webhooks were tried and the mails (award, newsletter confirmation) written.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let heard: Vec<String> = got.lock().unwrap().iter().map(|r| r.path.clone()).collect();
        let mails: Vec<PathBuf> = files_under(&inst.dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .filter(|p| contains_ci(&std::fs::read(p).unwrap(), HYPATIA_EMAIL))
            .collect();
        if heard.iter().any(|p| p == "/hook") && heard.iter().any(|p| p == "/flaky") && mails.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "webhooks tried and mails written within 60 s: {heard:?} {mails:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heard = got.lock().unwrap().iter().find(|r| r.path == "/hook").unwrap().body.clone();
    assert!(heard.contains(HYPATIA_EMAIL) && heard.contains(HYPATIA_EVIDENCE), "the receiver heard of her: {heard}");
    {
        // Before the forget the scan finds her in each place this test is about.
        let mut c = open_db(&inst.dir);
        let holding = |n: &str, c: &mut SqliteConnection| tables_holding(c, n);
        let tables: Vec<String> = holding(HYPATIA_EMAIL, &mut c).into_iter().map(|(t, _)| t).collect();
        for t in ["webhook_deliveries", "api_idempotency", "newsletter_subscribers", "awards"] {
            assert!(tables.iter().any(|x| x == t), "{t} holds her address before the forget: {tables:?}");
        }
    }

    let forgot = inst.run(&["learner", "forget", HYPATIA_EMAIL, "--yes"], &[]).await;
    assert!(forgot.status.success(), "{}", inst.log.text());
    let said = String::from_utf8_lossy(&forgot.stdout).into_owned();
    // Her award mail and her newsletter confirmation were written as files; both go.
    assert!(said.contains("1 award(s) withdrawn, 0 post(s) deleted, 2 mail file(s) deleted"), "{said}");

    // A retry under the key gets the first status, only ids, and awards nothing more.
    let again = send().send().await.unwrap();
    assert_eq!(again.status(), 201);
    let replayed: serde_json::Value = again.json().await.unwrap();
    assert_eq!(replayed["id"], id.as_str(), "{replayed}");
    assert!(!replayed.to_string().contains(HYPATIA_EMAIL), "{replayed}");
    // The revocation the forget queued reaches the webhook with ids only.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let revoked: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/hook" && r.body.contains("award.revoked"))
            .map(|r| r.body.clone())
            .collect();
        if let Some(b) = revoked.first() {
            let doc: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(doc["data"]["id"], id.as_str());
            assert_eq!(doc["data"]["state"], "withdrawn");
            assert!(doc["data"]["recipient"].is_null() && !b.contains("hypatia"), "{b}");
            break;
        }
        assert!(Instant::now() < deadline, "the withdrawal reached the webhook within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
    {
        let mut c = open_db(&inst.dir);
        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).unwrap();
    }

    // Every column of every row of every table, and every file in the data dir: nothing of her.
    let mut c = open_db(&inst.dir);
    for needle in [HYPATIA_EMAIL, HYPATIA, HYPATIA_EVIDENCE] {
        let left = tables_holding(&mut c, needle);
        assert!(left.is_empty(), "{needle:?} is still in {left:?}");
    }
    drop(c);
    let files = files_under(&inst.dir);
    assert!(files.iter().any(|p| p.ends_with("cairn.db")), "{files:?}");
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "eml")), "other mail files stay: {files:?}");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for needle in [HYPATIA_EMAIL, HYPATIA, HYPATIA_EVIDENCE] {
            assert!(!contains_ci(&bytes, needle), "{} still holds {needle:?}", path.display());
        }
    }
}
