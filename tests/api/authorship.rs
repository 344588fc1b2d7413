//! A badge goes only to the author of the post: the attack of subscribing someone else's
//! writing, replayed against a real server and real feeds. Cairn's own feeds are refused as
//! anyone's blog; an aggregator's posts from other sites are marked "posted elsewhere", never
//! tied by hashtag and awarded only when confirmed; a post another learner's feed delivered
//! first is a duplicate and never awarded to the later learner. And every award input is
//! checked by one set of rules, whichever surface it comes through.

use cairn::db::feeds::{self, FeedStatus, NewFeed};
use cairn::db::links::{Authorship, Link};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::feedserver::{FeedServer, Reply};
use crate::harvest::app_for;
use crate::helpers::{EMAIL, TestApp, cairn_cmd, csrf_in};

const NOOR: &str = "noor@example.edu";
const EVE: &str = "eve@example.edu";

/// A learner with a feed at `url`, added as an instructor would (active at once).
fn learner(app: &TestApp, name: &str, email: &str, url: &str, manage_hash: Option<&str>) -> i64 {
    let mut c = app.pool.get().unwrap();
    let author = feeds::find_or_create_author(&mut c, name, Some(email), cairn::clock::system_now()).unwrap();
    feeds::create_feed(
        &mut c,
        NewFeed {
            author_id: author.id,
            url,
            title: "",
            site_url: None,
            status: FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: manage_hash,
        },
        cairn::clock::system_now(),
    )
    .unwrap()
    .id
}

fn rss(site: &str, items: &[(&str, &str, Option<&str>, &str)]) -> String {
    let mut xml =
        format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Posts</title><link>{site}</link>");
    for (title, link, author, text) in items {
        let by = author.map(|a| format!("<author>{a}</author>")).unwrap_or_default();
        xml.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><guid>{link}</guid>{by}<description>{text}</description></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

fn links_of_feed(app: &TestApp, feed_id: i64) -> Vec<Link> {
    use cairn::db::schema::links::dsl;
    use diesel::prelude::*;
    dsl::links.filter(dsl::feed_id.eq(feed_id)).select(Link::as_select()).load(&mut app.pool.get().unwrap()).unwrap()
}

fn link<'a>(links: &'a [Link], url: &str) -> &'a Link {
    links.iter().find(|l| l.url.as_deref() == Some(url)).unwrap_or_else(|| panic!("no link {url}"))
}

fn tied(app: &TestApp, link_id: i64) -> Vec<String> {
    cairn::db::links::tasks_of_link(&mut app.pool.get().unwrap(), link_id)
        .unwrap()
        .into_iter()
        .map(|t| t.hashtag)
        .collect()
}

fn token(app: &TestApp) -> String {
    let mut c = app.pool.get().unwrap();
    let who = cairn::db::instructors::find_by_email(&mut c, EMAIL).unwrap().unwrap();
    let scopes = cairn::app::tokens::parse_scopes("awards:write").unwrap();
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

async fn api_award(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let res =
        reqwest::Client::new().post(app.url("/api/v1/awards")).bearer_auth(token).json(body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn api_batch(app: &TestApp, token: &str, awards: Vec<Value>) -> Value {
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/awards/batch"))
        .bearer_auth(token)
        .json(&json!({ "awards": awards }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Runs `cairn award ARGS` against the app's data dir; (success, stdout + stderr).
async fn cli_award(app: &TestApp, args: Vec<String>) -> (bool, String) {
    let (dir, base) = (app.data_dir.clone(), app.address.clone());
    let out = tokio::task::spawn_blocking(move || {
        cairn_cmd().env("CAIRN_DATA_DIR", &dir).env("CAIRN_BASE_URL", &base).arg("award").args(args).output().unwrap()
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn task_id(app: &TestApp, slug: &str) -> i64 {
    cairn::db::courses::get_task_by_slug(&mut app.pool.get().unwrap(), slug).unwrap().id
}

async fn reader_award(app: &TestApp, link: i64, task: i64, narrative: &str, confirm: bool) -> (StatusCode, String) {
    let (link, task) = (link.to_string(), task.to_string());
    let mut fields = vec![("link_id", link.as_str()), ("task_id", task.as_str()), ("narrative", narrative)];
    if confirm {
        fields.push(("allow_foreign_evidence", "1"));
    }
    let res = app.post_form("/admin/reader/award", &fields).await;
    let status = res.status();
    (status, res.text().await.unwrap())
}

#[tokio::test]
async fn cairns_own_feeds_are_no_ones_blog_at_join_address_change_and_add_feed() {
    let server = FeedServer::start().await;
    // As on a public instance (here: demo mode), Cairn can fetch its own pages: the refusal is
    // Cairn's rule, not the outbound address rules'.
    let app = app_for(&server, |s| s.demo.enabled = true).await;
    let course_feed = app.url("/courses/e-learning-3-0/feed.rss");
    assert_eq!(app.get(&course_feed.replace(&app.address, "")).await.status(), 200, "the course feed exists");
    // Another site that redirects to it.
    server.set("/sneaky", Reply::Redirect { status: 301, to: course_feed.clone() });
    let refused = "is a page or feed of this Cairn site";

    for url in [course_feed.clone(), server.url("/sneaky"), app.url("/courses/e-learning-3-0")] {
        let page = app.get_html("/join").await;
        let csrf = csrf_in(&page);
        let res = app
            .client
            .post(app.url("/join"))
            .form(&[("csrf_token", csrf.as_str()), ("name", "Eve"), ("email", EVE), ("url", url.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{url}");
        let body = res.text().await.unwrap();
        assert!(body.contains(refused), "{url}: {body}");
    }
    assert!(feeds::list_feeds(&mut app.pool.get().unwrap()).unwrap().iter().all(|(f, _)| !f.url.contains("/courses/")));

    // A learner's own change of address, from the private link.
    server.set("/eve.xml", Reply::xml(rss(&server.url("/"), &[("Mine", &server.url("/eve/1"), None, "#el30-data")])));
    let manage = "manage-token-of-eve";
    let feed = learner(&app, "Eve", EVE, &server.url("/eve.xml"), Some(&cairn::tokens::token_hash(manage)));
    let page = app.get_html(&format!("/subscription/{manage}")).await;
    let csrf = csrf_in(&page);
    let res = app
        .client
        .post(app.url(&format!("/subscription/{manage}")))
        .form(&[("csrf_token", csrf.as_str()), ("name", "Eve"), ("email", EVE), ("url", course_feed.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains(refused));
    assert_eq!(crate::harvest::feed(&app, feed).url, server.url("/eve.xml"), "the address did not change");

    // The instructor's "add feed" and change of address.
    app.login().await;
    let res = app.post_form("/admin/feeds", &[("name", "Eve"), ("email", ""), ("url", &course_feed)]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains(refused));
    let res = app.post_form(&format!("/admin/feeds/{feed}"), &[("url", &server.url("/sneaky"))]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains(refused));
    assert_eq!(crate::harvest::feed(&app, feed).url, server.url("/eve.xml"));
}

#[tokio::test]
async fn an_aggregators_posts_are_marked_untied_and_awarded_only_when_confirmed_and_duplicates_never() {
    let server = FeedServer::start().await;
    let app = app_for(&server, |_| {}).await;
    let noor_post = "https://noor.example.org/2018/open-data";
    let zed_post = "https://zed.example.net/graphs";
    let eve_post = server.url("/eve/cloud");
    server.set(
        "/noor.xml",
        Reply::xml(rss(
            "https://noor.example.org/",
            &[("Open data in class", noor_post, None, "My post for #el30-data")],
        )),
    );
    // Eve's "blog" is a planet: Noor's post, a stranger's, and one post of her own.
    server.set(
        "/planet.xml",
        Reply::xml(rss(
            &server.url("/"),
            &[
                ("Open data in class", noor_post, Some("noor@example.org (Noor Haddad)"), "My post for #el30-data"),
                ("Graphs", zed_post, Some("zed@example.net (Zed Writer)"), "Drawing #el30-graph"),
                ("My cloud", &eve_post, None, "Notes for #el30-cloud"),
            ],
        )),
    );
    let noor = learner(&app, "Noor Haddad", NOOR, &server.url("/noor.xml"), None);
    let eve = learner(&app, "Eve", EVE, &server.url("/planet.xml"), None);
    // Noor's feed delivers her post first.
    app.harvester.run_pass(Some(noor), &|_, _| {}).await.unwrap();
    app.harvester.run_pass(Some(eve), &|_, _| {}).await.unwrap();

    let noors = links_of_feed(&app, noor);
    let original = link(&noors, noor_post);
    assert_eq!(original.authorship, Authorship::Own);
    assert_eq!(tied(&app, original.id), ["#el30-data"]);

    let eves = links_of_feed(&app, eve);
    let copy = link(&eves, noor_post);
    let noor_author = cairn::db::feeds::get_feed(&mut app.pool.get().unwrap(), noor).unwrap().author_id;
    assert_eq!((copy.authorship, copy.duplicate_of), (Authorship::Duplicate, Some(noor_author)));
    assert!(tied(&app, copy.id).is_empty(), "a duplicate is never tied by hashtag");
    let foreign = link(&eves, zed_post);
    assert_eq!(foreign.authorship, Authorship::Elsewhere);
    assert_eq!(foreign.author_name.as_deref(), Some("Zed Writer"));
    assert!(tied(&app, foreign.id).is_empty(), "a post from elsewhere is never tied by hashtag");
    let own = link(&eves, &eve_post);
    assert_eq!(own.authorship, Authorship::Own);
    assert_eq!(tied(&app, own.id), ["#el30-cloud"]);
    // A later harvest keeps it so.
    crate::harvest::make_due(&app);
    app.harvester.run_pass(Some(eve), &|_, _| {}).await.unwrap();
    assert!(tied(&app, foreign.id).is_empty() && tied(&app, copy.id).is_empty());

    // The Reader shows them apart, with the post's own author; an instructor may still tie
    // the post from elsewhere to a Task by hand.
    app.login().await;
    let graph = task_id(&app, "el30-graph").to_string();
    let res = app.post_form(&format!("/admin/links/{}/tie", foreign.id), &[("task_id", &graph), ("tied", "1")]).await;
    assert_eq!(res.status(), 303);
    let reader = app.get_html(&format!("/admin/reader?author={}", copy.author_id)).await;
    assert!(reader.contains("Posted elsewhere") && reader.contains("Zed Writer"), "{reader}");
    assert!(reader.contains("Duplicate of Noor Haddad"), "{reader}");
    assert!(reader.contains("name=\"allow_foreign_evidence\""), "the award of a post from elsewhere asks to confirm");

    // The API refuses the foreign post without the flag, and awards it with it.
    let t = token(&app);
    let award = json!({"task": "#el30-graph", "recipient": EVE, "evidence": zed_post});
    let (status, body) = api_award(&app, &t, &award).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("was posted elsewhere"), "{body}");
    let mut confirmed = award.clone();
    confirmed["allow_foreign_evidence"] = json!(true);
    let (status, body) = api_award(&app, &t, &confirmed).await;
    assert_eq!(status, 201, "{body}");

    // So does the command line.
    let cli = ["--task", "#el30-identity", "--recipient", EVE, "--evidence", zed_post];
    let (ok, out) = cli_award(&app, args(&cli)).await;
    assert!(!ok && out.contains("was posted elsewhere") && out.contains("--allow-foreign-evidence"), "{out}");
    let (ok, out) = cli_award(&app, args(&[&cli[..], &["--allow-foreign-evidence"]].concat())).await;
    assert!(ok, "{out}");
    assert!(out.trim().starts_with(&app.url("/assertions/")), "{out}");

    // The duplicate is Noor's: never awarded to Eve, flag or not, on any surface.
    for flag in [false, true] {
        let body =
            json!({"task": "#el30-data", "recipient": EVE, "evidence": noor_post, "allow_foreign_evidence": flag});
        let (status, body) = api_award(&app, &t, &body).await;
        assert_eq!(status, 409, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("harvested first from Noor Haddad's own site"), "{body}");
    }
    let (ok, out) = cli_award(
        &app,
        args(&["--task", "#el30-data", "--recipient", EVE, "--evidence", noor_post, "--allow-foreign-evidence"]),
    )
    .await;
    assert!(!ok && out.contains("harvested first from Noor Haddad's own site"), "{out}");
    let data = task_id(&app, "el30-data");
    for confirm in [false, true] {
        let (status, body) = reader_award(&app, copy.id, data, "", confirm).await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("Noor Haddad"), "{body}");
    }
    // Noor gets it, by the Reader and by address.
    let (status, body) = reader_award(&app, original.id, data, "", false).await;
    assert_eq!(status, 303, "{body}");

    // The Reader asks to confirm a post from elsewhere, and awards it once confirmed.
    let cloud = task_id(&app, "el30-cloud");
    let (status, body) = reader_award(&app, foreign.id, cloud, "", false).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("was posted elsewhere"), "{body}");
    let (status, body) = reader_award(&app, foreign.id, cloud, "", true).await;
    assert_eq!(status, 303, "{body}");
    // Eve's own post needs no confirmation of authorship; as it is tagged #el30-cloud, not
    // #el30-agency, the Reader asks about the task first.
    let agency = task_id(&app, "el30-agency");
    let (status, body) = reader_award(&app, own.id, agency, "", false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Confirm the award") && body.contains("not #el30-agency"), "{body}");
    let (own_id, agency_id) = (own.id.to_string(), agency.to_string());
    let res =
        app.post_form("/admin/reader/award", &[("link_id", &own_id), ("task_id", &agency_id), ("confirm", "1")]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // Bulk awards never confirm: the post from elsewhere and the duplicate are listed as refused.
    let experience = task_id(&app, "el30-experience").to_string();
    let (fid, cid) = (foreign.id.to_string(), copy.id.to_string());
    let res = app
        .post_form(
            "/admin/reader/bulk",
            &[("link_id", fid.as_str()), ("link_id", cid.as_str()), ("task_id", experience.as_str())],
        )
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Awarded 0 badge(s).") && page.contains("was posted elsewhere"), "{page}");
}

#[tokio::test]
async fn posts_harvested_before_the_rules_are_classified_after_the_upgrade() {
    let server = FeedServer::start().await;
    let app = app_for(&server, |_| {}).await;
    let zed_post = "https://zed.example.net/graphs";
    server.set(
        "/planet.xml",
        Reply::xml(rss(
            &server.url("/"),
            &[("Graphs", zed_post, None, "Drawing #el30-graph"), ("Mine", &server.url("/eve/1"), None, "#el30-cloud")],
        )),
    );
    let eve = learner(&app, "Eve", EVE, &server.url("/planet.xml"), None);
    app.harvester.run_pass(Some(eve), &|_, _| {}).await.unwrap();
    // As an older release left them: unchecked, and tied by hashtag.
    let graph = task_id(&app, "el30-graph");
    let as_before_the_upgrade = || {
        use cairn::db::schema::{link_tasks, links};
        use diesel::prelude::*;
        let mut c = app.pool.get().unwrap();
        diesel::update(links::table).set(links::authorship.eq(Authorship::Unchecked)).execute(&mut c).unwrap();
        let foreign = link(&links_of_feed(&app, eve), zed_post).id;
        diesel::insert_or_ignore_into(link_tasks::table)
            .values((
                link_tasks::link_id.eq(foreign),
                link_tasks::task_id.eq(graph),
                link_tasks::source.eq("hashtag"),
                link_tasks::tied.eq(true),
                link_tasks::created_at.eq(0i64),
            ))
            .execute(&mut c)
            .unwrap();
        foreign
    };
    let foreign = as_before_the_upgrade();
    assert_eq!(tied(&app, foreign), ["#el30-graph"]);
    // The housekeeping pass classifies them by the harvest's rules.
    let n = cairn::db::links::classify_unchecked(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(n, 2);
    let eves = links_of_feed(&app, eve);
    assert_eq!(link(&eves, zed_post).authorship, Authorship::Elsewhere);
    assert!(tied(&app, foreign).is_empty(), "its hashtag tie is gone");
    assert_eq!(link(&eves, &server.url("/eve/1")).authorship, Authorship::Own);
    assert_eq!(cairn::db::links::classify_unchecked(&mut app.pool.get().unwrap()).unwrap(), 0);

    // An award before that pass classifies the post itself, and judges it by the rules.
    let foreign = as_before_the_upgrade();
    let t = token(&app);
    let (status, body) =
        api_award(&app, &t, &json!({"task": "#el30-graph", "recipient": EVE, "evidence": zed_post})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("was posted elsewhere"), "{body}");
    assert_eq!(link(&links_of_feed(&app, eve), zed_post).authorship, Authorship::Elsewhere);
    assert!(tied(&app, foreign).is_empty());
}

#[tokio::test]
async fn every_surface_refuses_the_same_bad_award_input_with_the_same_words() {
    let server = FeedServer::start().await;
    let app = app_for(&server, |_| {}).await;
    let long_url = format!("{}/{}", server.url("/noor"), "a".repeat(2048));
    server.set(
        "/noor.xml",
        Reply::xml(rss(
            &server.url("/"),
            &[("Mine", &server.url("/noor/1"), None, "#el30-data"), ("Long", &long_url, None, "#el30-data")],
        )),
    );
    let noor = learner(&app, "Noor Haddad", NOOR, &server.url("/noor.xml"), None);
    app.harvester.run_pass(Some(noor), &|_, _| {}).await.unwrap();
    let links = links_of_feed(&app, noor);
    let (post, long) = (link(&links, &server.url("/noor/1")).id, link(&links, &long_url).id);
    let good = server.url("/noor/1");
    app.login().await;
    let t = token(&app);
    let data = task_id(&app, "el30-data");

    let too_long = "n".repeat(10_001);
    let long_name = "N".repeat(201);
    // (what, name, narrative, evidence, the words every surface says)
    let cases: Vec<(&str, &str, String, String, &str)> = vec![
        (
            "long narrative",
            "",
            too_long.clone(),
            good.clone(),
            "the narrative must have at most 10000 characters (it has 10001)",
        ),
        (
            "bell in narrative",
            "",
            "ding\u{7}dong".into(),
            good.clone(),
            "the narrative must not contain control characters (line breaks are fine)",
        ),
        (
            "header in name",
            "Ann\r\nBcc: x@example.org",
            String::new(),
            good.clone(),
            "the name must not contain control characters or line breaks",
        ),
        (
            "long name",
            long_name.as_str(),
            String::new(),
            good.clone(),
            "the name must have at most 200 characters (it has 201)",
        ),
        ("long evidence", "", String::new(), long_url.clone(), "the evidence must have at most 2048 characters"),
        (
            "script evidence",
            "",
            String::new(),
            "javascript:alert(1)".into(),
            "'javascript:alert(1)' is not a web address (http or https)",
        ),
        (
            "newline in evidence",
            "",
            String::new(),
            format!("{good}\r\nx"),
            "the evidence must not contain control characters or line breaks",
        ),
    ];
    for (what, name, narrative, evidence, words) in &cases {
        // The API, alone and in a batch.
        let mut body = json!({"task": "#el30-data", "recipient": NOOR, "evidence": evidence, "narrative": narrative});
        if !name.is_empty() {
            body["name"] = json!(name);
        }
        let (status, answer) = api_award(&app, &t, &body).await;
        assert_eq!(status, 422, "{what}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(words), "{what}: {answer}");
        let batch = api_batch(&app, &t, vec![body.clone()]).await;
        assert_eq!(batch["results"][0]["status"], 422, "{what}: {batch}");
        assert!(batch["results"][0]["problem"]["detail"].as_str().unwrap().contains(words), "{what}: {batch}");
        // The command line, alone and from a CSV file.
        let mut cli =
            args(&["--task", "#el30-data", "--recipient", NOOR, "--evidence", evidence, "--narrative", narrative]);
        if !name.is_empty() {
            cli.extend(args(&["--name", name]));
        }
        let (ok, out) = cli_award(&app, cli).await;
        assert!(!ok && out.contains(words), "{what}: {out}");
        let csv = app.data_dir.join("awards.csv");
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        std::fs::write(
            &csv,
            format!(
                "task,recipient,evidence,name,narrative\n#el30-data,{NOOR},{},{},{}\n",
                quote(evidence),
                quote(name),
                quote(narrative)
            ),
        )
        .unwrap();
        let (ok, out) = cli_award(&app, vec!["--csv".into(), csv.to_string_lossy().into()]).await;
        assert!(!ok && out.contains("row 2: not awarded:") && out.contains(words), "{what}: {out}");
        // The Reader, one post and in bulk: it takes the narrative, and the evidence is the post.
        let reader_link = match *what {
            "long evidence" => Some(long),
            w if w.contains("narrative") => Some(post),
            _ => None, // the Reader takes the name from the learner's record and the evidence from the post
        };
        if let Some(l) = reader_link {
            let (status, answer) = reader_award(&app, l, data, narrative, false).await;
            assert_eq!(status, 422, "{what}: {answer}");
            assert!(answer.contains(&words.replace('\'', "&#x27;")), "{what}: {answer}");
            let (l, d) = (l.to_string(), data.to_string());
            let res = app
                .post_form("/admin/reader/bulk", &[("link_id", &l), ("task_id", &d), ("narrative", narrative)])
                .await;
            assert_eq!(res.status(), 200);
            let page = res.text().await.unwrap();
            assert!(page.contains("Awarded 0 badge(s).") && page.contains(&words.replace('\'', "&#x27;")), "{what}");
        }
    }
    // Nothing was awarded, and a good award still goes through everywhere.
    let (status, answer) = api_award(&app, &t, &json!({"task": "#el30-data", "recipient": NOOR, "evidence": good, "name": "Noor", "narrative": "Line one\r\nline two"})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["narrative"], "Line one\nline two");
}
