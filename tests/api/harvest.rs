//! The harvester against real HTTP servers: every format, the hard cases, misbehaving
//! servers and politeness.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use cairn::clock::Clock;
use cairn::db::feeds::{self, Feed, FeedStatus, NewFeed};
use cairn::db::links::{self, Authorship, LinkView};
use diesel::prelude::*;

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::helpers::{TestApp, spawn_with};

/// An app whose outbound policy allows the feed server, with the demo course's tasks
/// (#el30-data, #el30-cloud, …) in place.
pub async fn app_for(server: &FeedServer, adjust: impl FnOnce(&mut cairn::config::Settings)) -> TestApp {
    let origin = server.origin();
    let app = spawn_with(|s| {
        s.allow_origins = vec![origin];
        s.harvest.timeout_secs = 5;
        adjust(s);
    })
    .await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    app
}

pub fn add_feed(app: &TestApp, url: &str, name: &str) -> Feed {
    let mut c = app.pool.get().unwrap();
    let author = feeds::find_or_create_author(&mut c, name, None, cairn::clock::system_now()).unwrap();
    feeds::create_feed(
        &mut c,
        NewFeed {
            author_id: author.id,
            url,
            title: "",
            site_url: None,
            status: FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        },
        cairn::clock::system_now(),
    )
    .unwrap()
}

pub fn feed(app: &TestApp, id: i64) -> Feed {
    feeds::get_feed(&mut app.pool.get().unwrap(), id).unwrap()
}

/// Makes every feed due now.
pub fn make_due(app: &TestApp) {
    use cairn::db::schema::feeds::dsl;
    diesel::update(dsl::feeds).set(dsl::next_poll_at.eq(0)).execute(&mut app.pool.get().unwrap()).unwrap();
}

pub fn links_of(app: &TestApp, feed_id: i64) -> Vec<LinkView> {
    let all = links::recent(&mut app.pool.get().unwrap(), None, 10_000).unwrap();
    all.into_iter().filter(|v| v.link.feed_id == feed_id).collect()
}

pub async fn pass(app: &TestApp) -> cairn::harvest::PassSummary {
    app.harvester.run_pass(None, &|_, _| {}).await.unwrap()
}

/// A pass of `harvester` (the app's, on a clock of the test's) over the feeds due.
async fn pass_of(harvester: &cairn::harvest::Harvester) -> cairn::harvest::PassSummary {
    harvester.run_pass(None, &|_, _| {}).await.unwrap()
}

fn tags(v: &LinkView) -> Vec<String> {
    v.tasks.iter().map(|t| t.hashtag.clone()).collect()
}

fn by_title<'a>(links: &'a [LinkView], title: &str) -> &'a LinkView {
    links.iter().find(|v| v.link.title == title).unwrap_or_else(|| {
        panic!("no link titled {title:?} in {:?}", links.iter().map(|v| &v.link.title).collect::<Vec<_>>())
    })
}

fn encode(text: &str, enc: &'static encoding_rs::Encoding) -> Vec<u8> {
    enc.encode(text).0.into_owned()
}

#[tokio::test]
async fn every_format_is_harvested_with_absolute_links_clean_html_and_hashtag_ties() {
    let server = FeedServer::start().await;
    let latin = String::from_utf8(fixture("latin1.xml.txt")).unwrap();
    let w1252 = encoding_rs::WINDOWS_1252;
    let mut utf16 = vec![0xff, 0xfe];
    for u in format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>{latin}").encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let routes: Vec<(&str, Reply)> = vec![
        ("/feeds/rss2.xml", Reply::xml(fixture("rss2.xml"))),
        ("/feeds/atom10.xml", Reply::typed(fixture("atom10.xml"), "application/atom+xml")),
        ("/feeds/atom03.xml", Reply::typed(fixture("atom03.xml"), "application/atom+xml")),
        ("/feeds/rss091.xml", Reply::xml(fixture("rss091.xml"))),
        ("/feeds/rss10.rdf", Reply::typed(fixture("rss10.rdf"), "application/rdf+xml")),
        ("/feeds/noversion.xml", Reply::xml(fixture("rss-noversion.xml"))),
        ("/feeds/feed11.json", Reply::typed(fixture("feed11.json"), "application/feed+json")),
        ("/feeds/feed10.json", Reply::typed(fixture("feed10.json"), "application/json")),
        (
            "/enc/declared.xml",
            Reply::xml(encode(&format!("<?xml version=\"1.0\" encoding=\"windows-1252\"?>{latin}"), w1252)),
        ),
        ("/enc/header.xml", Reply::typed(encode(&latin, w1252), "text/xml; charset=windows-1252")),
        ("/enc/utf16.xml", Reply::xml(utf16)),
        ("/enc/undeclared.xml", Reply::xml(encode(&latin, w1252))),
    ];
    for (path, reply) in &routes {
        server.set(path, reply.clone());
    }
    let app = app_for(&server, |_| {}).await;
    let ids: Vec<i64> = routes.iter().map(|(p, _)| add_feed(&app, &server.url(p), p).id).collect();
    let summary = pass(&app).await;
    assert_eq!(
        summary.failed,
        0,
        "{summary:?}: {:?}",
        ids.iter().map(|i| feed(&app, *i).last_error).collect::<Vec<_>>()
    );

    // RSS 2.0: relative links, sanitised HTML, hashtags in text and categories.
    let rss = links_of(&app, ids[0]);
    assert_eq!(rss.len(), 3);
    let data = by_title(&rss, "Data & me");
    assert_eq!(data.link.url.as_deref(), Some(server.url("/2019/data-and-me").as_str()));
    assert_eq!(data.link.author_name.as_deref(), Some("Ada Lovelace"));
    let html = &data.link.summary_html;
    assert!(!html.contains("<script") && !html.contains("onerror") && !html.contains("javascript:"), "{html}");
    assert!(html.contains(&server.url("/img/chart.png")), "{html}");
    assert_eq!(tags(data), vec!["#el30-cloud", "#el30-data"]);
    assert!(tags(by_title(&rss, "Not about databases")).is_empty(), "#el30-database is not #el30-data");
    let permalink =
        rss.iter().find(|v| v.link.url.as_deref() == Some("https://ada.example.org/2019/permalink-only")).unwrap();
    assert_eq!(tags(permalink), vec!["#el30-graph"]);
    assert!(permalink.link.title.starts_with("An item with no title"));
    assert_eq!(feed(&app, ids[0]).title, "Ada's learning log");

    // Atom 1.0 with xml:base; an HTML title becomes plain text; the enclosure is not the post.
    let atom = links_of(&app, ids[1]);
    let identity = by_title(&atom, "Identity online");
    assert_eq!(identity.link.url.as_deref(), Some("https://grace.example.org/blog/posts/identity.html"));
    assert!(identity.link.summary_html.contains("https://grace.example.org/blog/about.html"));
    assert_eq!(tags(identity), vec!["#el30-identity"]);
    assert_eq!(identity.link.author_name.as_deref(), Some("Grace Hopper"));

    for (i, title, tag) in [
        (2, "Community in 2005", "#el30-community"),
        (3, "Experience matters", "#el30-experience"),
        (4, "On agency", "#el30-agency"),
        (5, "Recognition without a version", "#el30-recognition"),
        (6, "Looking back", "#el30-conclusion"),
        (7, "Cloud thoughts", "#el30-cloud"),
    ] {
        let l = links_of(&app, ids[i]);
        assert_eq!(l.len(), 1, "{}", routes[i].0);
        let v = by_title(&l, title);
        assert_eq!(tags(v), vec![tag], "{}", routes[i].0);
        assert!(v.link.url.as_deref().is_some_and(|u| u.starts_with("https://")), "{}", routes[i].0);
        assert!(!v.link.summary_html.contains("onerror"), "{}", routes[i].0);
    }
    assert!(links_of(&app, ids[7])[0].link.summary_html.contains("&lt;b&gt;"), "content_text is text, not HTML");
    assert_eq!(links_of(&app, ids[4])[0].link.author_name.as_deref(), Some("Rudi"));

    // The same text in four encodings reads the same. Four feeds deliver one post: the first
    // to be stored owns it and is tied; the others are duplicates of it, never tied.
    let mut owners = Vec::new();
    for i in 8..12 {
        let l = links_of(&app, ids[i]);
        assert_eq!(l.len(), 1, "{}", routes[i].0);
        assert_eq!(l[0].link.title, "Données ouvertes — déjà là", "{}", routes[i].0);
        assert_eq!(feed(&app, ids[i]).title, "Café du savoir", "{}", routes[i].0);
        match l[0].link.authorship {
            Authorship::Own => {
                assert_eq!(tags(&l[0]), vec!["#el30-data"], "{}", routes[i].0);
                owners.push(l[0].link.author_id);
            }
            other => {
                assert_eq!(other, Authorship::Duplicate, "{}", routes[i].0);
                assert!(tags(&l[0]).is_empty(), "{}", routes[i].0);
            }
        }
    }
    assert_eq!(owners.len(), 1, "one first learner");
    for i in 8..12 {
        let l = &links_of(&app, ids[i])[0].link;
        assert!(l.author_id == owners[0] || l.duplicate_of == Some(owners[0]), "{}", routes[i].0);
    }
    // Politeness: one request per feed, naming Cairn.
    assert_eq!(server.total_hits(), routes.len());
    assert!(server.last_header("/feeds/rss2.xml", "user-agent").unwrap().contains("Cairn/"));
}

#[tokio::test]
async fn an_unchanged_feed_costs_a_304_and_a_changed_item_updates_its_link() {
    let server = FeedServer::start().await;
    let body = String::from_utf8(fixture("rss2.xml")).unwrap();
    server.set(
        "/f.xml",
        Reply::Feed {
            body: body.clone().into_bytes(),
            content_type: "application/rss+xml".into(),
            etag: Some("\"v1\"".into()),
        },
    );
    let app = app_for(&server, |_| {}).await;
    let f = add_feed(&app, &server.url("/f.xml"), "Ada");
    // Time moves only when the test moves it.
    let (clock, hand) = Clock::manual(f.next_poll_at);
    let harvester = app.harvester.clone().with_clock(clock);
    pass_of(&harvester).await;
    assert_eq!(links_of(&app, f.id).len(), 3);
    let next = feed(&app, f.id).next_poll_at;
    assert!(next > f.next_poll_at + 3000, "next poll about an hour later");

    hand.set(next - 1);
    assert_eq!(pass_of(&harvester).await.feeds, 0, "not polled before its time");
    hand.set(next);
    let s = pass_of(&harvester).await;
    assert_eq!(s.not_modified, 1);
    assert_eq!(server.last_header("/f.xml", "if-none-match").as_deref(), Some("\"v1\""));
    assert_eq!(server.hits("/f.xml"), 2);

    // The post is edited (new title, hashtag gone), and an item appears twice.
    let changed =
        body.replace("Data &amp; me", "Data and me, revised").replace("My post for #el30-data.", "My post, untagged.");
    let changed = changed.replace("</channel>", "<item><title>Twice</title><link>https://ada.example.org/twice</link></item><item><title>Twice</title><link>https://ada.example.org/twice</link></item></channel>");
    server.set(
        "/f.xml",
        Reply::Feed {
            body: changed.into_bytes(),
            content_type: "application/rss+xml".into(),
            etag: Some("\"v2\"".into()),
        },
    );
    hand.set(feed(&app, f.id).next_poll_at);
    let s = pass_of(&harvester).await;
    assert_eq!((s.added, s.updated), (1, 1), "{s:?}");
    let l = links_of(&app, f.id);
    assert_eq!(l.len(), 4, "no duplicates");
    let edited = by_title(&l, "Data and me, revised");
    assert_eq!(tags(edited), vec!["#el30-cloud"], "the hashtag tie went with the hashtag");
}

#[tokio::test]
async fn redirects_are_followed_and_a_permanent_one_updates_the_feed() {
    let server = FeedServer::start().await;
    server.set("/new.xml", Reply::xml(fixture("rss2.xml")));
    server.set("/old.xml", Reply::Redirect { status: 301, to: "/new.xml".into() });
    server.set("/temp.xml", Reply::Redirect { status: 302, to: "/new.xml".into() });
    server.set("/loop-a", Reply::Redirect { status: 302, to: "/loop-b".into() });
    server.set("/loop-b", Reply::Redirect { status: 302, to: "/loop-a".into() });
    let app = app_for(&server, |_| {}).await;
    let moved = add_feed(&app, &server.url("/old.xml"), "A");
    let temp = add_feed(&app, &server.url("/temp.xml"), "B");
    let looping = add_feed(&app, &server.url("/loop-a"), "C");
    pass(&app).await;
    assert_eq!(feed(&app, moved.id).url, server.url("/new.xml"));
    assert_eq!(feed(&app, temp.id).url, server.url("/temp.xml"), "a temporary redirect changes nothing");
    assert_eq!(links_of(&app, temp.id).len(), 3);
    let err = feed(&app, looping.id).last_error.unwrap();
    assert!(err.contains("too many redirects"), "{err}");
    assert!(server.hits("/loop-a") + server.hits("/loop-b") <= 6, "at most 5 redirects followed");
}

#[tokio::test]
async fn gone_feeds_stop_and_busy_servers_are_backed_off() {
    let server = FeedServer::start().await;
    server.set("/gone.xml", Reply::Status { status: 410, headers: vec![], body: vec![] });
    server.set(
        "/busy.xml",
        Reply::Status { status: 429, headers: vec![("Retry-After".into(), "7200".into())], body: vec![] },
    );
    server.set("/down.xml", Reply::Status { status: 503, headers: vec![], body: vec![] });
    server.set("/missing.xml", Reply::Status { status: 404, headers: vec![], body: vec![] });
    let app = app_for(&server, |_| {}).await;
    let gone = add_feed(&app, &server.url("/gone.xml"), "A");
    let busy = add_feed(&app, &server.url("/busy.xml"), "B");
    let down = add_feed(&app, &server.url("/down.xml"), "C");
    let missing = add_feed(&app, &server.url("/missing.xml"), "D");
    let before = missing.next_poll_at;
    let (clock, hand) = Clock::manual(before);
    let harvester = app.harvester.clone().with_clock(clock);
    pass_of(&harvester).await;
    assert_eq!(feed(&app, gone.id).status.as_str(), "gone");
    let b = feed(&app, busy.id);
    assert!(b.next_poll_at >= before + 7200, "Retry-After honoured");
    assert!(b.last_error.unwrap().contains("429"));
    let d = feed(&app, down.id);
    assert!(d.next_poll_at >= before + 60 && d.next_poll_at < before + 3600, "first backoff is short");
    assert!(feed(&app, missing.id).last_error.unwrap().contains("404"));

    // A second failure doubles the wait; the gone feed is not asked again.
    let before = d.next_poll_at;
    hand.set(before);
    pass_of(&harvester).await;
    let d2 = feed(&app, down.id);
    assert_eq!(d2.error_count, 2);
    assert!(d2.next_poll_at >= before + 120, "backoff doubled");
    assert_eq!(server.hits("/gone.xml"), 1);
}

#[tokio::test]
async fn a_pass_stamps_its_links_and_its_next_polls_from_one_reading_of_the_clock() {
    let server = FeedServer::start().await;
    let body = String::from_utf8(fixture("rss2.xml")).unwrap();
    server.set("/a.xml", Reply::xml(body.clone().into_bytes()));
    server.set("/b.xml", Reply::xml(fixture("atom10.xml")));
    let app = app_for(&server, |s| s.harvest.interval_secs = 3600).await;
    let a = add_feed(&app, &server.url("/a.xml"), "Ada");
    let b = add_feed(&app, &server.url("/b.xml"), "Grace");
    // A clock that moves one second each time it is read: everything a pass writes carries
    // the one value it read.
    let t0 = b.next_poll_at + 1000;
    let ticks = Arc::new(AtomicI64::new(t0));
    let read = ticks.clone();
    let harvester = app.harvester.clone().with_clock(Clock::from_fn(move || read.fetch_add(1, Ordering::SeqCst)));
    let s = pass_of(&harvester).await;
    assert_eq!((s.feeds, s.failed), (2, 0), "{s:?}");
    assert_eq!(ticks.load(Ordering::SeqCst), t0 + 1, "the pass read the clock once");
    let tie_times = |feed_id: i64| -> Vec<i64> {
        use cairn::db::schema::{link_tasks, links};
        link_tasks::table
            .inner_join(links::table)
            .filter(links::feed_id.eq(feed_id))
            .select(link_tasks::created_at)
            .load(&mut app.pool.get().unwrap())
            .unwrap()
    };
    for f in [&a, &b] {
        let polled = feed(&app, f.id);
        assert_eq!((polled.last_polled_at, polled.last_success_at), (Some(t0), Some(t0)), "feed {}", f.id);
        assert_eq!(polled.updated_at, t0);
        // The interval, give or take its tenth of jitter, from the same `now`.
        assert!((t0 + 3240..=t0 + 3960).contains(&polled.next_poll_at), "{} after {t0}", polled.next_poll_at);
        let links = links_of(&app, f.id);
        assert!(!links.is_empty());
        for l in &links {
            assert_eq!((l.link.harvested_at, l.link.changed_at), (t0, t0), "{}", l.link.title);
        }
        let ties = tie_times(f.id);
        assert!(!ties.is_empty() && ties.iter().all(|t| *t == t0), "{ties:?}");
    }

    // At the next poll, an edited post is stamped with that pass's time; the others keep theirs.
    server.set("/a.xml", Reply::xml(body.replace("Data &amp; me", "Data and me, revised").into_bytes()));
    let t1 = feed(&app, a.id).next_poll_at.max(feed(&app, b.id).next_poll_at);
    ticks.store(t1, Ordering::SeqCst);
    let s = pass_of(&harvester).await;
    assert_eq!((s.feeds, s.updated), (2, 1), "{s:?}");
    assert_eq!(ticks.load(Ordering::SeqCst), t1 + 1, "the pass read the clock once");
    for l in links_of(&app, a.id) {
        let want = if l.link.title == "Data and me, revised" { (t0, t1) } else { (t0, t0) };
        assert_eq!((l.link.harvested_at, l.link.changed_at), want, "{}", l.link.title);
    }
    for f in [&a, &b] {
        let polled = feed(&app, f.id);
        assert_eq!(polled.last_polled_at, Some(t1));
        assert!((t1 + 3240..=t1 + 3960).contains(&polled.next_poll_at), "{} after {t1}", polled.next_poll_at);
    }
}

#[tokio::test]
async fn slow_and_endless_servers_are_cut_off_without_stalling_the_others() {
    let server = FeedServer::start().await;
    server.set("/slow.xml", Reply::Trickle { body: fixture("rss2.xml"), pause: Duration::from_millis(200) });
    server.set("/endless.xml", Reply::Endless);
    server.set("/fine.xml", Reply::xml(fixture("atom10.xml")));
    let app = app_for(&server, |s| {
        s.harvest.timeout_secs = 2;
        s.harvest.max_bytes = 1024 * 1024;
    })
    .await;
    let slow = add_feed(&app, &server.url("/slow.xml"), "A");
    let endless = add_feed(&app, &server.url("/endless.xml"), "B");
    let fine = add_feed(&app, &server.url("/fine.xml"), "C");
    let started = std::time::Instant::now();
    let s = pass(&app).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(s.failed, 2);
    let e = feed(&app, slow.id).last_error.unwrap();
    assert!(e.contains("did not answer within 2 seconds"), "{e}");
    let e = feed(&app, endless.id).last_error.unwrap();
    assert!(e.contains("larger than 1048576 bytes"), "{e}");
    assert_eq!(links_of(&app, fine.id).len(), 1);
}

#[tokio::test]
async fn a_malformed_feed_keeps_its_links_and_reports_the_error() {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let app = app_for(&server, |_| {}).await;
    let f = add_feed(&app, &server.url("/f.xml"), "Ada");
    pass(&app).await;
    assert_eq!(links_of(&app, f.id).len(), 3);
    for (body, why) in [
        (fixture("malformed.xml"), "malformed XML"),
        (fixture("page-nofeed.html"), "HTML page"),
        (b"{\"version\": \"nope\"".to_vec(), "JSON"),
    ] {
        server.set("/f.xml", Reply::xml(body));
        make_due(&app);
        let s = pass(&app).await;
        assert_eq!(s.failed, 1, "{why}");
        let err = feed(&app, f.id).last_error.unwrap();
        assert!(err.contains(why), "{why}: {err}");
        assert_eq!(links_of(&app, f.id).len(), 3, "nothing deleted ({why})");
    }
}

#[tokio::test]
async fn requests_to_one_host_are_limited_and_private_addresses_refused() {
    let server = FeedServer::start().await;
    for i in 0..6 {
        server.set(
            &format!("/f{i}.xml"),
            Reply::Delayed { wait: Duration::from_millis(300), then: Box::new(Reply::xml(fixture("atom10.xml"))) },
        );
    }
    let app = app_for(&server, |s| s.harvest.per_host = 2).await;
    for i in 0..6 {
        add_feed(&app, &server.url(&format!("/f{i}.xml")), &format!("L{i}"));
    }
    // Not on the allow list: another port on loopback, and the same port as "localhost".
    let other = add_feed(&app, "http://127.0.0.1:9/feed.xml", "Probe");
    let named = add_feed(&app, &format!("http://localhost:{}/f0.xml", server.port), "Probe2");
    let decimal = add_feed(&app, "http://2130706433/feed.xml", "Probe3");
    pass(&app).await;
    assert_eq!(server.max_in_flight(), 2, "per-host limit");
    for id in [other.id, named.id, decimal.id] {
        let e = feed(&app, id).last_error.unwrap();
        assert!(e.contains("private, loopback or otherwise internal"), "{e}");
    }
    assert_eq!(server.hits("/f0.xml"), 1, "the localhost spelling never reached the server");
}

#[tokio::test]
async fn manual_ties_and_unties_survive_later_harvests() {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    let app = app_for(&server, |_| {}).await;
    app.login().await;
    let f = add_feed(&app, &server.url("/f.xml"), "Ada");
    pass(&app).await;
    let data = by_title(&links_of(&app, f.id), "Data & me").link.id;
    let mut c = app.pool.get().unwrap();
    let data_task = cairn::db::courses::get_task_by_slug(&mut c, "el30-data").unwrap();
    let agency = cairn::db::courses::get_task_by_slug(&mut c, "el30-agency").unwrap();
    drop(c);
    // Untie #el30-data and tie #el30-agency through the instructor page.
    let res = app
        .post_form(&format!("/admin/links/{data}/tie"), &[("task_id", &data_task.id.to_string()), ("tied", "0")])
        .await;
    assert_eq!(res.status(), 303);
    let res =
        app.post_form(&format!("/admin/links/{data}/tie"), &[("task_id", &agency.id.to_string()), ("tied", "1")]).await;
    assert_eq!(res.status(), 303);
    // The post changes (so it is re-read) and is harvested again.
    let body = String::from_utf8(fixture("rss2.xml")).unwrap().replace("My post for", "Edited: my post for");
    server.set("/f.xml", Reply::xml(body));
    make_due(&app);
    assert_eq!(pass(&app).await.updated, 1);
    let link = by_title(&links_of(&app, f.id), "Data & me").clone();
    assert_eq!(tags(&link), vec!["#el30-agency", "#el30-cloud"]);
    let page = app.get_html(&format!("/admin/links?task={}", agency.id)).await;
    assert!(page.contains("Data &amp; me") || page.contains("Data &#38; me"), "filter by task");
}

#[tokio::test]
async fn the_course_publishes_its_posts_as_rss_atom_and_json_feed() {
    let server = FeedServer::start().await;
    server.set("/f.xml", Reply::xml(fixture("rss2.xml")));
    server.set("/g.xml", Reply::typed(fixture("atom10.xml"), "application/atom+xml"));
    let app = app_for(&server, |_| {}).await;
    add_feed(&app, &server.url("/f.xml"), "Ada");
    add_feed(&app, &server.url("/g.xml"), "Grace");
    pass(&app).await;
    for (fmt, ctype) in
        [("rss", "application/rss+xml"), ("atom", "application/atom+xml"), ("json", "application/feed+json")]
    {
        let res = app.get(&format!("/courses/e-learning-3-0/feed.{fmt}")).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(ctype));
        let body = res.bytes().await.unwrap();
        let parsed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{fmt}: {e:?}"));
        // Tied posts only: "Data & me", the permalink post, and Grace's identity post.
        assert_eq!(parsed.entries.len(), 3, "{fmt}");
        let grace = parsed.entries.iter().find(|e| e.title.as_ref().unwrap().content.contains("Identity")).unwrap();
        assert_eq!(grace.links[0].href, "https://grace.example.org/blog/posts/identity.html", "{fmt}");
        assert_eq!(grace.authors[0].name.as_deref(), Some("Grace Hopper"), "{fmt}");
    }
    let task_feed = app.get("/tasks/el30-identity/feed.atom").await.bytes().await.unwrap();
    assert_eq!(feed_rs::parser::parse(&task_feed[..]).unwrap().entries.len(), 1);
    assert_eq!(app.get("/tasks/el30-identity/feed.xml").await.status(), 404);
}

#[tokio::test]
async fn a_long_feed_is_stored_whole_with_every_tie() {
    // 23 items: rows go in as 16 + 4 + 1 + 1 + 1, and so do their ties.
    let tags_by_item = ["#el30-data", "#el30-cloud", "#el30-graph"];
    let items: String = (0..23)
        .map(|i| {
            format!(
                "<item><title>Post {i}</title><link>https://long.example.org/{i}</link>\
                 <description>Post {i} for {}</description></item>",
                tags_by_item[i % 3]
            )
        })
        .collect();
    let server = FeedServer::start().await;
    server.set(
        "/long.xml",
        Reply::Feed {
            body: format!("<rss version=\"2.0\"><channel><title>Long</title><link>https://long.example.org/</link>{items}</channel></rss>").into_bytes(),
            content_type: "application/rss+xml".into(),
            etag: None,
        },
    );
    let app = app_for(&server, |_| {}).await;
    let f = add_feed(&app, &server.url("/long.xml"), "Lin");
    let s = pass(&app).await;
    assert_eq!(s.added, 23, "{s:?}");
    let l = links_of(&app, f.id);
    assert_eq!(l.len(), 23);
    for i in 0..23 {
        let post = by_title(&l, &format!("Post {i}"));
        assert_eq!(post.link.url.as_deref(), Some(format!("https://long.example.org/{i}").as_str()));
        assert_eq!(tags(post), vec![tags_by_item[i % 3]], "post {i}");
    }
}
