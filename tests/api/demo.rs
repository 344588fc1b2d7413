//! The offline demo: `serve --demo` seeds sample learners whose blogs the same server serves,
//! harvests them at start-up, keeps them publishing, shows awards as Webmentions on their
//! posts, and `cairn demo --remove` takes it all away.

use std::time::{Duration, Instant};

use cairn::config::Settings;
use diesel::RunQueryDsl;
use fantoccini::Locator;
use tempfile::TempDir;

use crate::helpers::{TestApp, cairn_cmd, client, settings, start_with};

pub struct Demo {
    pub app: TestApp,
    pub password: String,
    _temp: TempDir,
}

/// A fresh `serve --demo` on a random port: the demo seeded first, as `cairn serve --demo`
/// does, then the server with its jobs (the demo job subscribes and harvests at once).
pub async fn spawn_demo(adjust: impl FnOnce(&mut Settings)) -> Demo {
    let temp = tempfile::tempdir().unwrap();
    let mut s = settings(temp.path());
    s.demo.enabled = true;
    adjust(&mut s);
    let pool = cairn::startup::open_store(&s).unwrap();
    let outcome = cairn::demo::seed(&mut pool.get().unwrap()).unwrap();
    drop(pool);
    let app = start_with(&s).await;
    Demo { app, password: outcome.password, _temp: temp }
}

/// Polls `check` every 100 ms until it yields, for at most `limit`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(&mut app.pool.get().unwrap()).unwrap().n
}

/// The outbox's Webmentions and the demo blogs' received mentions, one per line: what a
/// failed wait for a mention shows.
fn mention_trail(app: &TestApp) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    let rows = diesel::sql_query(
        "SELECT 'outbox ' || kind || ' ' || status || ' attempts ' || attempts || ' next ' || next_attempt_at || \
         ' target ' || coalesce(target, '') || ' error ' || coalesce(last_error, '') AS line FROM outbox \
         UNION ALL SELECT 'mention ' || status || ' ' || source || ' ' || coalesce(reason, '') FROM demo_mentions \
         UNION ALL SELECT 'now ' || CAST(strftime('%s', 'now') AS TEXT)",
    )
    .load::<Row>(&mut app.pool.get().unwrap())
    .unwrap();
    rows.into_iter().map(|r| r.line).collect::<Vec<_>>().join("\n")
}

/// Waits until the demo post at `path` shows a badge's mention; returns the page. A failure
/// shows the outbox and the received mentions. The bound is the delivery job's tick (an award
/// from another process wakes no one) and the work itself, with room for a loaded machine; no
/// retry a minute later is expected (see `cairn::net::POOL_IDLE`).
async fn mention_shown(app: &TestApp, path: &str) -> String {
    let limit = Duration::from_secs(30);
    let deadline = Instant::now() + limit;
    loop {
        let page = app.get_html(path).await;
        if page.contains("Badge awarded:") {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the mention on the demo post did not show within {limit:?}; outbox and demo mentions:\n{}",
            mention_trail(app)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs the demo instructor in on the app's client.
async fn sign_in(demo: &Demo) {
    let res = demo.app.login_as(cairn::demo::DEMO_EMAIL, &demo.password).await;
    assert_eq!(res.status(), 303, "the demo instructor signs in");
}

/// Waits until the start-up harvest stored every seeded post.
async fn harvested(app: &TestApp) {
    until(Duration::from_secs(30), "the start-up harvest", || async {
        (count(app, "SELECT count(*) AS n FROM links") >= cairn::demo::blogs::SEEDED as i64).then_some(())
    })
    .await;
}

#[tokio::test]
async fn demo_blogs_serve_a_mix_of_feeds_and_post_pages_that_take_webmentions() {
    let demo = spawn_demo(|_| {}).await;
    let app = &demo.app;
    let index = app.get_html("/demo/blogs/").await;
    assert!(index.contains("class=\"demo-label\">Demo<"), "the index is marked as demo");
    let learners = cairn::db::demo::learners(&mut app.pool.get().unwrap()).unwrap();
    assert!((6..=8).contains(&learners.len()), "{} learners", learners.len());
    let mut formats = std::collections::HashSet::new();
    for l in &learners {
        formats.insert(l.format);
        let feed_path = format!("/demo/blogs/{}/{}", l.slug, l.format.file());
        let res = app.get(&feed_path).await;
        assert_eq!(res.status(), 200, "{feed_path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(l.format.content_type()));
        let feed = feed_rs::parser::parse(res.bytes().await.unwrap().as_ref()).expect("a feed that parses");
        assert!(feed.entries.len() >= 2, "{feed_path} has its posts");
        // Each post page advertises the blog's endpoint, in the header and in the page.
        let post_url = feed.entries[0].links[0].href.clone();
        assert!(post_url.starts_with(&format!("{}/demo/blogs/{}/", app.address, l.slug)), "{post_url}");
        let res = client().get(&post_url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let endpoint = format!("{}/demo/blogs/{}/webmention", app.address, l.slug);
        assert_eq!(res.headers()["link"].to_str().unwrap(), format!("<{endpoint}>; rel=\"webmention\""));
        let page = res.text().await.unwrap();
        assert!(page.contains(&format!("<link rel=\"webmention\" href=\"{endpoint}\">")));
        assert!(page.contains("class=\"demo-label\">Demo<"), "every blog page is marked as demo");
    }
    assert_eq!(formats.len(), 3, "RSS, Atom and JSON Feed across the learners");

    // The endpoint takes only its own blog's posts as targets, and checks the source.
    let l = &learners[0];
    let post = cairn::db::demo::posts_of(&mut app.pool.get().unwrap(), l.id, 1).unwrap().remove(0);
    let endpoint = app.url(&format!("/demo/blogs/{}/webmention", l.slug));
    let target = app.url(&format!("/demo/blogs/{}/{}/", l.slug, post.slug));
    let other_blog = app.url(&format!("/demo/blogs/{}/{}/", learners[1].slug, post.slug));
    for (source, target) in [
        ("not a url", target.as_str()),
        ("https://example.org/a", other_blog.as_str()),
        ("https://example.org/a", "https://example.org/b"),
    ] {
        let res = client().post(&endpoint).form(&[("source", source), ("target", target)]).send().await.unwrap();
        assert_eq!(res.status(), 400, "{source} -> {target}");
    }
    // A source that does not link to the post is checked and never shown.
    let source = app.url("/demo/blogs/");
    let res = client().post(&endpoint).form(&[("source", source.as_str()), ("target", &target)]).send().await.unwrap();
    assert_eq!(res.status(), 202);
    until(Duration::from_secs(20), "the mention check", || async {
        (count(app, "SELECT count(*) AS n FROM demo_mentions WHERE status = 'rejected'") == 1).then_some(())
    })
    .await;
    assert!(app.get_html(&format!("/demo/blogs/{}/{}/", l.slug, post.slug)).await.contains("No mentions yet."));

    // Without --demo there are no demo blogs at all.
    let plain = crate::helpers::spawn_app().await;
    assert_eq!(plain.get("/demo/blogs/").await.status(), 404);
    assert_eq!(plain.get(&format!("/demo/blogs/{}/{}/", l.slug, post.slug)).await.status(), 404);
}

#[tokio::test]
async fn only_the_servers_own_origin_is_exempt_and_only_in_demo_mode() {
    let other = crate::feedserver::FeedServer::start().await;
    other.set("/f.xml", crate::feedserver::Reply::xml(crate::feedserver::fixture("rss2.xml")));
    let demo = spawn_demo(|_| {}).await;
    let fetcher = demo.app.harvester.fetcher();
    let own = demo.app.url("/demo/blogs/noor/feed.xml");
    let fetched = fetcher.get(&own, &Default::default(), "*/*").await.expect("the demo blogs are fetched");
    assert_eq!(fetched.status, 200);
    // Another port on the same loopback address is still refused.
    let err = fetcher.get(&other.url("/f.xml"), &Default::default(), "*/*").await.unwrap_err();
    assert!(matches!(err, cairn::net::FetchError::Forbidden(_)), "{err}");
    let err = fetcher.get("http://localhost:1/", &Default::default(), "*/*").await.unwrap_err();
    assert!(matches!(err, cairn::net::FetchError::Forbidden(_)), "{err}");
    assert_eq!(other.total_hits(), 0);
    // Without demo mode, the server's own origin is refused like any loopback address.
    let plain = crate::helpers::spawn_app().await;
    let err = plain.harvester.fetcher().get(&plain.url("/health"), &Default::default(), "*/*").await.unwrap_err();
    assert!(matches!(err, cairn::net::FetchError::Forbidden(_)), "{err}");
}

#[tokio::test]
async fn learners_are_subscribed_and_harvested_at_start_with_tags_mixed() {
    let started = Instant::now();
    let demo = spawn_demo(|_| {}).await;
    let app = &demo.app;
    sign_in(&demo).await;
    let first_title = cairn::demo::blogs::post(0).2;
    until(Duration::from_secs(30), "a demo post in the Reader", || async {
        app.get_html("/admin/reader").await.contains(&first_title).then_some(())
    })
    .await;
    eprintln!("first demo post in the Reader after {:?}", started.elapsed());
    harvested(app).await;
    let learners = cairn::db::demo::learners(&mut app.pool.get().unwrap()).unwrap().len() as i64;
    assert_eq!(
        count(app, "SELECT count(*) AS n FROM feeds WHERE status = 'active' AND url LIKE '%/demo/blogs/%'"),
        learners
    );
    assert_eq!(count(app, "SELECT count(*) AS n FROM authors WHERE name LIKE '% (demo)'"), learners);
    // Tagged posts are tied to their task; three are untagged; one is tied by its category alone.
    let untied = count(app, "SELECT count(*) AS n FROM links WHERE id NOT IN (SELECT link_id FROM link_tasks)");
    assert_eq!(untied, 3);
    let by_category = cairn::demo::blogs::post(5);
    assert_eq!(by_category.5, cairn::demo::blogs::Tagging::CategoryOnly);
    let sql = format!(
        "SELECT count(*) AS n FROM links JOIN link_tasks ON link_tasks.link_id = links.id WHERE links.url LIKE '%/{}/'",
        by_category.1
    );
    assert_eq!(count(app, &sql), 1, "the category-only post is tied to its task");
}

#[tokio::test]
async fn an_award_on_a_demo_post_shows_on_the_post_as_a_mention() {
    let demo = spawn_demo(|_| {}).await;
    let app = &demo.app;
    harvested(app).await;
    sign_in(&demo).await;
    let (link_id, url, task_id): (i64, String, i64) = {
        let mut c = app.pool.get().unwrap();
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            url: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            task_id: i64,
        }
        let r: Row = diesel::sql_query(
            "SELECT links.id, links.url, link_tasks.task_id FROM links JOIN link_tasks ON link_id = links.id LIMIT 1",
        )
        .get_result(&mut c)
        .unwrap();
        (r.id, r.url, r.task_id)
    };
    let res = app
        .post_form(
            "/admin/reader/award",
            &[("link_id", &link_id.to_string()), ("task_id", &task_id.to_string()), ("narrative", "Well argued.")],
        )
        .await;
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let path = url.strip_prefix(&app.address).unwrap().to_string();
    let page = mention_shown(app, &path).await;
    let public_id: String = {
        use cairn::db::schema::awards::dsl::*;
        use diesel::prelude::*;
        awards.select(public_id).first(&mut app.pool.get().unwrap()).unwrap()
    };
    let task_title = cairn::db::courses::get_task(&mut app.pool.get().unwrap(), task_id).unwrap().title;
    let expected =
        format!("Badge awarded: <a class=\"u-url\" href=\"{}/assertions/{public_id}\">{task_title}</a>", app.address);
    assert!(page.contains(&expected), "{page}");
}

#[tokio::test]
async fn demo_learners_keep_publishing_and_each_new_post_is_harvested() {
    let demo = spawn_demo(|s| s.demo.post_every_secs = 1).await;
    let app = &demo.app;
    harvested(app).await;
    let seeded = cairn::demo::blogs::SEEDED as i64;
    until(Duration::from_secs(30), "two new demo posts harvested", || async {
        let posts = count(app, "SELECT count(*) AS n FROM demo_posts");
        let links = count(app, "SELECT count(*) AS n FROM links");
        (posts >= seeded + 2 && links >= seeded + 2).then_some(())
    })
    .await;
    // The new post is on its blog and in its feed.
    let newest = cairn::demo::blogs::post(cairn::demo::blogs::SEEDED);
    let learner = cairn::demo::blogs::LEARNERS[newest.0].0;
    assert!(app.get_html(&format!("/demo/blogs/{learner}/")).await.contains(&newest.2));
    assert_eq!(app.get(&format!("/demo/blogs/{learner}/{}/", newest.1)).await.status(), 200);
}

#[test]
fn the_post_interval_is_a_setting() {
    let s = cairn::config::Settings::defaults();
    assert_eq!(s.demo.post_every_secs, 180);
    assert!(!s.demo.enabled, "demo mode comes only from --demo");
    let env = |k: &str| (k == "CAIRN_DEMO_POST_EVERY_SECS").then(|| "0".to_string());
    let err = cairn::config::Settings::from_sources(None, &env, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("demo.post_every_secs"), "{err}");
}

/// Every row of every table, as text, that holds `needle` (outside the chain's own tables).
fn rows_holding(app: &TestApp, needle: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let mut c = app.pool.get().unwrap();
    let tables: Vec<Name> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'").load(&mut c).unwrap();
    let mut found = Vec::new();
    for t in tables.iter().map(|t| t.name.as_str()) {
        // The chain is append-only: its records and blocks stay (README, "The offline demo").
        if matches!(t, "chain_records" | "blocks" | "chain_meta" | "peer_relays") {
            continue;
        }
        let cols: Vec<Name> =
            diesel::sql_query(format!("SELECT name FROM pragma_table_info('{t}')")).load(&mut c).unwrap();
        let any = cols.iter().map(|col| format!("instr(CAST(\"{}\" AS TEXT), ?) > 0", col.name)).collect::<Vec<_>>();
        let sql = format!("SELECT count(*) AS n FROM \"{t}\" WHERE {}", any.join(" OR "));
        let mut q = diesel::sql_query(sql).into_boxed();
        for _ in &cols {
            q = q.bind::<diesel::sql_types::Text, _>(needle.to_string());
        }
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n = q.get_result::<N>(&mut c).unwrap().n;
        if n > 0 {
            found.push(format!("{t}: {n} row(s) hold {needle:?}"));
        }
    }
    found
}

#[tokio::test]
async fn demo_remove_leaves_no_demo_rows_and_real_data_untouched() {
    let demo = spawn_demo(|_| {}).await;
    let app = &demo.app;
    harvested(app).await;
    // Real data beside the demo: an instructor, a course with a task, a learner's feed, post and award.
    cairn::app::instructors::create(
        &mut app.pool.get().unwrap(),
        crate::helpers::EMAIL,
        crate::helpers::PASSWORD,
        cairn::clock::system_now(),
    )
    .unwrap();
    app.login().await;
    let course = app.create_course("Real Course").await;
    let module = app.create_module(course, "Real Week").await;
    assert_eq!(app.create_task(module, "Real task", "#real-week1").await.status(), 303);
    let real_server = crate::feedserver::FeedServer::start().await;
    {
        let mut c = app.pool.get().unwrap();
        let author = cairn::db::feeds::find_or_create_author(
            &mut c,
            "Real Learner",
            Some("real@example.edu"),
            cairn::clock::system_now(),
        )
        .unwrap();
        cairn::db::feeds::create_feed(
            &mut c,
            cairn::db::feeds::NewFeed {
                author_id: author.id,
                url: &real_server.url("/f.xml"),
                title: "Real blog",
                site_url: None,
                status: cairn::db::feeds::FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            cairn::clock::system_now(),
        )
        .unwrap();
    }
    let award_as = |task: &str, to: &str, evidence: &str| {
        let out = cairn_cmd()
            .env("CAIRN_DATA_DIR", &app.data_dir)
            .env("CAIRN_BASE_URL", &app.address)
            .args(["award", "--task", task, "--recipient", to, "--evidence", evidence, "--name", "N"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    award_as("#real-week1", "real@example.edu", &real_server.url("/post"));
    // An award to a demo learner, mentioned back on the demo post.
    let (who, slug, ..) = cairn::demo::blogs::post(0);
    let learner = cairn::demo::blogs::LEARNERS[who].0;
    let demo_post = app.url(&format!("/demo/blogs/{learner}/{slug}/"));
    award_as("#el30-data", &cairn::demo::blogs::email(learner), &demo_post);
    let path = demo_post.strip_prefix(&app.address).unwrap().to_string();
    mention_shown(app, &path).await;
    let before_real = (
        count(app, "SELECT count(*) AS n FROM awards WHERE recipient_email = 'real@example.edu'"),
        count(app, "SELECT count(*) AS n FROM courses WHERE title = 'Real Course'"),
        count(app, "SELECT count(*) AS n FROM tasks WHERE hashtag = '#real-week1'"),
        count(app, "SELECT count(*) AS n FROM feeds WHERE title = 'Real blog'"),
        count(app, "SELECT count(*) AS n FROM instructors WHERE email = 'ada@example.edu'"),
    );
    assert_eq!(before_real, (1, 1, 1, 1, 1));
    let chain_before = count(app, "SELECT count(*) AS n FROM chain_records");
    let data_dir = app.data_dir.clone();
    let pool = app.pool.clone();
    let Demo { app, password: _, _temp } = demo;
    app.stop().await;

    let out = cairn_cmd().env("CAIRN_DATA_DIR", &data_dir).args(["demo", "--remove"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Removed the demo: 7 learners, 7 feeds"), "{text}");
    assert!(text.contains("chain stay"), "{text}");

    let after = crate::helpers::start(&data_dir).await;
    for needle in [
        cairn::demo::blogs::LEARNER_DOMAIN,
        "/demo/blogs/",
        "E-Learning 3.0",
        cairn::demo::DEMO_EMAIL,
        "#el30-",
        "(demo)",
    ] {
        let found = rows_holding(&after, needle);
        assert!(found.is_empty(), "{found:?}");
    }
    for t in ["demo_state", "demo_learners", "demo_posts", "demo_mentions"] {
        assert_eq!(count(&after, &format!("SELECT count(*) AS n FROM {t}")), 0, "{t}");
    }
    let after_real = (
        count(&after, "SELECT count(*) AS n FROM awards WHERE recipient_email = 'real@example.edu'"),
        count(&after, "SELECT count(*) AS n FROM courses WHERE title = 'Real Course'"),
        count(&after, "SELECT count(*) AS n FROM tasks WHERE hashtag = '#real-week1'"),
        count(&after, "SELECT count(*) AS n FROM feeds WHERE title = 'Real blog'"),
        count(&after, "SELECT count(*) AS n FROM instructors WHERE email = 'ada@example.edu'"),
    );
    assert_eq!(after_real, before_real, "real data is untouched");
    assert_eq!(count(&after, "SELECT count(*) AS n FROM chain_records"), chain_before, "the chain keeps its records");
    drop(pool);
    after.stop().await;
}

#[tokio::test]
async fn in_a_real_browser_a_fresh_demo_awards_a_post_and_the_post_shows_the_mention() {
    let demo = spawn_demo(|_| {}).await;
    let app = &demo.app;
    harvested(app).await;
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    let result = async {
        browser.goto(&app.url("/login")).await?;
        browser.find(Locator::Css("#email")).await?.send_keys(cairn::demo::DEMO_EMAIL).await?;
        browser.find(Locator::Css("#password")).await?.send_keys(&demo.password).await?;
        browser.find(Locator::Css("form.card button[type=submit]")).await?.click().await?;
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Id("courses")).await?;
        browser.goto(&app.url("/admin/reader")).await?;
        // A demo post with an award button for its task.
        let button = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("article form.award-form button"))
            .await?;
        let card = button.find(Locator::XPath("ancestor::article[1]")).await?;
        let card_id = card.attr("id").await?.unwrap();
        let post_link = card.find(Locator::Css("a[href*='/demo/blogs/']")).await?.attr("href").await?.unwrap();
        button.click().await?;
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("#{card_id} a[href^='/assertions/']")))
            .await?;
        // The Webmention reaches the demo post; reload it (bounded) until the mention shows.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            browser.goto(&post_link).await?;
            let found = browser.find_all(Locator::Css(".demo-mentions li")).await?;
            if let Some(li) = found.first() {
                let text = li.text().await?;
                let href = li.find(Locator::Css("a")).await?.attr("href").await?.unwrap_or_default();
                return Ok::<_, fantoccini::error::CmdError>((text, href));
            }
            assert!(Instant::now() < deadline, "the mention did not reach the demo post within 30 s");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    .await;
    let _ = browser.close().await;
    let (text, href) = result.expect("browser flow");
    assert!(text.starts_with("Badge awarded: "), "{text}");
    assert!(href.starts_with(&format!("{}/assertions/", app.address)), "{href}");
    // The link leads to the verification page, which says the badge is valid.
    let page = client().get(&href).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("This badge is <strong>valid</strong>"), "{}", &page[..page.len().min(500)]);
}

/// The script's whole process group, stopped when dropped.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &pgid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn demo_network_runs_three_peers_and_an_award_on_one_shows_its_block_on_all_three() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let ports: Vec<u16> = {
        let held: Vec<std::net::TcpListener> =
            (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        held.iter().map(|l| l.local_addr().unwrap().port()).collect()
    };
    let root = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(crate::helpers::repo("scripts/demo-network.sh"))
        .env("CAIRN_BIN", env!("CARGO_BIN_EXE_cairn"))
        .env("DEMO_NETWORK_PORTS", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" "))
        .env("DEMO_NETWORK_DIR", root.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(var);
        }
    }
    let mut group = Group(cmd.spawn().unwrap());
    let stdout = group.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut urls = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while urls.len() < 3 {
        assert!(Instant::now() < deadline, "the script did not print three URLs within 120 s");
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else { continue };
        if let Some(rest) = line.strip_prefix(&format!("Institution {}: ", urls.len() + 1)) {
            urls.push(rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string());
        }
    }
    for (url, port) in urls.iter().zip(&ports) {
        assert_eq!(url, &format!("http://127.0.0.1:{port}"));
    }
    // Each trusts the two others.
    let out = cairn_cmd().env("CAIRN_DATA_DIR", root.path().join("inst1")).args(["peer", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(list.contains(&urls[1]) && list.contains(&urls[2]), "{list}");

    let out = cairn_cmd()
        .env("CAIRN_DATA_DIR", root.path().join("inst1"))
        .env("CAIRN_BASE_URL", &urls[0])
        .env("CAIRN_CHAIN_NETWORK", "cairn-demo-network")
        .env("CAIRN_CHAIN_RECORDS_PER_BLOCK", "1")
        .args(["award", "--task", "#el30-data", "--recipient", "noor@learners.cairn.example.org", "--evidence"])
        .arg(format!("{}/demo/blogs/noor/1-notes-on-open-data/", urls[0]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let http = client();
    // Two institutions may mine a block at the same height at once; the network settles on one
    // chain, which every institution then serves.
    let tips = until(Duration::from_secs(90), "the block on every institution, on one chain", || async {
        let mut tips = Vec::new();
        for url in &urls {
            let res = http.get(format!("{url}/chain/head")).send().await.ok()?;
            let head: serde_json::Value = res.json().await.ok()?;
            if head["height"].as_u64()? < 1 {
                return None;
            }
            tips.push(head["hash"].as_str()?.to_string());
        }
        tips.windows(2).all(|w| w[0] == w[1]).then_some(tips)
    })
    .await;
    assert_eq!(tips.len(), 3, "one chain: {tips:?}");
    drop(group);
    for port in ports {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still served after stopping");
    }
}

#[test]
fn a_demo_beyond_loopback_needs_a_base_url_and_warns_that_its_instructor_is_live() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: once past the checks, binding it
    // fails, so nothing here ever listens beyond loopback.
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let out = cairn_cmd()
            .env("CAIRN_DATA_DIR", dir.path())
            .env_remove("CAIRN_BASE_URL")
            .args(["serve", "--demo", "--bind", "192.0.2.1:0"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = serve(&[]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stderr.contains("--base-url") && stderr.contains("demo instructor"), "{stderr}");
    assert!(!stdout.contains("password"), "no password is printed: {stdout}");
    assert!(!dir.path().join("cairn.db").exists(), "refused before anything is opened or seeded");

    let (ok, stdout, stderr) = serve(&["--base-url", "https://demo.example.org"]);
    assert!(!ok, "192.0.2.1 cannot be bound here: {stdout}{stderr}");
    assert!(
        stderr.contains("WARNING: this demo listens on 192.0.2.1:0 and is reached at https://demo.example.org")
            && stderr.contains(&format!("sign in as the demo instructor {}", cairn::demo::DEMO_EMAIL))
            && stderr.contains("password printed below"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot listen on 192.0.2.1:0"), "{stderr}");
}

#[test]
fn no_base_url_did_or_exempt_origin_comes_from_an_unspecified_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    for bind in ["0.0.0.0:0", "[::]:0"] {
        s.bind = bind.parse().unwrap();
        s.base_url = None;
        for demo in [false, true] {
            s.demo.enabled = demo;
            // Refused before binding (so nothing here listens on every address).
            let err = cairn::startup::Application::build(&s).err().expect("refused").to_string();
            assert!(err.contains("--base-url"), "{bind} demo={demo}: {err}");
            // Commands that only name the instance get the loopback address, never this one.
            let base = s.public_base_url(s.bind);
            assert!(base.starts_with("http://127.0.0.1:") || base.starts_with("http://[::1]:"), "{base}");
            let did = cairn::badges::did::did_web(&base).unwrap();
            assert!(!did.contains("0.0.0.0") && !did.contains("%5B%3A%3A%5D"), "{did}");
        }
    }
    // A base URL naming an unspecified address is refused as a setting.
    let out = cairn_cmd()
        .env("CAIRN_DATA_DIR", dir.path())
        .env("CAIRN_BASE_URL", "http://0.0.0.0:8080")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("unspecified address"), "{stderr}");
}
