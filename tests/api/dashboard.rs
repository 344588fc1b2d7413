//! The instructor dashboard at /admin: valid HTML, charts that name themselves, and figures
//! that agree with the database, counted afresh from the base tables.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::helpers::{TestApp, spawn_app};

const DAY: i64 = 86_400;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(c: &mut SqliteConnection, sql: &str, id: i64) -> i64 {
    diesel::sql_query(sql).bind::<BigInt, _>(id).get_result::<N>(c).unwrap().n
}

fn scalar(c: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(c).unwrap().n
}

fn exec(c: &mut SqliteConnection, sql: &str) {
    diesel::sql_query(sql).execute(c).unwrap();
}

/// The demo course with learners' posts over ten days, feeds in every state, six awards of
/// which five are in a block, and a post untied, one retied and one deleted by the store's own
/// functions; returns the course id and its task ids.
async fn course_with_activity() -> (TestApp, i64, Vec<i64>) {
    let app = spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    let course = cairn::db::courses::get_course_by_slug(&mut c, cairn::demo::DEMO_SLUG).unwrap();
    // A second task in the first module: a learner posting to both counts once for it.
    let first = cairn::db::courses::outline(&mut c, course.id).unwrap().modules[0].module.id;
    let form = cairn::app::courses::TaskForm {
        title: "Another look at data".into(),
        description: "A second post on the module's theme.".into(),
        criteria: "A post tagged #el30-data-again.".into(),
        hashtag: "#el30-data-again".into(),
        expires_days: String::new(),
    };
    cairn::app::courses::create_task(&mut c, first, &form, None, cairn::clock::system_now()).unwrap();
    let outline = cairn::db::courses::outline(&mut c, course.id).unwrap();
    assert_eq!(outline.modules[0].tasks.len(), 2);
    let tasks: Vec<i64> = outline.modules.iter().flat_map(|m| m.tasks.iter().map(|t| t.id)).collect();
    assert!(tasks.len() >= 3, "the demo course has tasks");
    let now = cairn::clock::system_now();
    let states = [("active", 0), ("active", 3), ("gone", 1), ("active", 0), ("paused", 0)];
    let mut authors = Vec::new();
    for (i, (status, errors)) in states.iter().enumerate() {
        let a = cairn::db::feeds::find_or_create_author(
            &mut c,
            &format!("Learner {i}"),
            Some(&format!("l{i}@example.edu")),
            cairn::clock::system_now(),
        )
        .unwrap();
        let feed = cairn::db::feeds::create_feed(
            &mut c,
            cairn::db::feeds::NewFeed {
                author_id: a.id,
                url: &format!("https://blog{i}.example.org/feed.xml"),
                title: &format!("Blog {i}"),
                site_url: None,
                status: cairn::db::feeds::FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            cairn::clock::system_now(),
        )
        .unwrap();
        exec(&mut c, &format!("UPDATE feeds SET status = '{status}', error_count = {errors} WHERE id = {}", feed.id));
        authors.push((a.id, feed.id));
    }
    let mut links = Vec::new();
    for i in 0..40_i64 {
        let (author, feed) = authors[(i % 4) as usize];
        // Some items carry no publication date: the harvest time counts then.
        let published = if i % 7 == 0 { "NULL".to_string() } else { (now - (i % 10) * DAY).to_string() };
        // Posts on the learner's own blog, classified as a harvest classifies them (an unchecked
        // post would be classified by housekeeping while the test reads the figures).
        let id = diesel::sql_query(format!(
            "INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, changed_at, \
             content_hash, authorship) VALUES ({feed}, {author}, 'id:{i}', 'https://blog{}.example.org/{i}', \
             'Post {i}', {published}, {}, {now}, 'h', 'own') RETURNING id AS n",
            i % 4,
            now - (i % 5) * DAY
        ))
        .get_result::<N>(&mut c)
        .unwrap()
        .n;
        let task = tasks[(i as usize) % tasks.len()];
        let tied = i32::from(i % 9 != 4);
        exec(
            &mut c,
            &format!(
                "INSERT INTO link_tasks (link_id, task_id, source, tied, created_at) VALUES ({id}, {task}, 'hashtag', {tied}, {now})"
            ),
        );
        links.push((id, task));
    }
    cairn::db::links::set_tie(&mut c, links[0].0, links[0].1, false, cairn::clock::system_now()).unwrap();
    cairn::db::links::set_tie(&mut c, links[4].0, links[4].1, true, cairn::clock::system_now()).unwrap();
    cairn::db::links::set_tie(&mut c, links[1].0, tasks[0], true, cairn::clock::system_now()).unwrap();
    exec(&mut c, &format!("UPDATE links SET published_at = {} WHERE id = {}", now - 2 * DAY, links[3].0));
    exec(&mut c, &format!("DELETE FROM links WHERE id = {}", links[2].0));
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    for i in 0..6 {
        let req = cairn::app::award::AwardRequest {
            task_id: tasks[i % 2],
            recipient_email: format!("l{i}@example.edu"),
            // The last names no author: the learner counts by address.
            author_id: authors.get(i).filter(|_| i < 5).map(|a| a.0),
            // Evidence Cairn did not harvest: a harvested post is evidence only for its author.
            evidence_url: Some(format!("https://example.org/evidence/{i}")),
            ..Default::default()
        };
        cairn::app::award::award(&mut c, &issuer, &req, now).unwrap();
    }
    drop(c);
    // Five records make a block (the default chain.records_per_block): one stays pending.
    app.ledger.clone().mine_pass().await.unwrap();
    assert_eq!(app.ledger.with_chain(|c| c.height()), 1, "one block mined");
    // Every notification has its first attempt before the figures are read, so that the page
    // and the database describe the same moment (the background sender may be delivering
    // them meanwhile; a retry waits a minute).
    let first_attempts = async {
        loop {
            app.notifier.deliver_due().await.unwrap();
            let waiting =
                diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE status = 'queued' AND attempts = 0")
                    .get_result::<N>(&mut app.pool.get().unwrap())
                    .unwrap()
                    .n;
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), first_attempts)
        .await
        .expect("every notification was tried once within a minute");
    app.login().await;
    (app, course.id, tasks)
}

/// The numbers in the row of table `table` whose attribute `attr` is `key`.
fn row(html: &str, table: &str, attr: &str) -> Vec<i64> {
    let t = &html[html.find(&format!("id=\"{table}\"")).unwrap_or_else(|| panic!("table {table}"))..];
    let t = &t[..t.find("</table>").unwrap()];
    let r = &t[t.find(attr).unwrap_or_else(|| panic!("{attr} in {table}"))..];
    let r = &r[..r.find("</tr>").unwrap()];
    r.split("<td>").skip(1).map(|c| c.split('<').next().unwrap().trim().parse().unwrap()).collect()
}

#[tokio::test]
async fn the_dashboards_figures_match_counts_from_the_database() {
    let (app, course, tasks) = course_with_activity().await;
    let html = app.get_html(&format!("/admin?course={course}")).await;
    let mut c = app.pool.get().unwrap();

    let modules = cairn::db::courses::outline(&mut c, course).unwrap().modules;
    let (mut posted_total, mut badged_total) = (0, 0);
    for m in &modules {
        let posted = count(
            &mut c,
            "SELECT count(DISTINCT l.author_id) AS n FROM module_tasks mt \
             JOIN link_tasks lt ON lt.task_id = mt.task_id AND lt.tied = 1 JOIN links l ON l.id = lt.link_id \
             WHERE mt.module_id = ?",
            m.module.id,
        );
        let badged = count(
            &mut c,
            "SELECT count(DISTINCT coalesce('a' || aw.author_id, 'e' || aw.recipient_email)) AS n FROM module_tasks mt \
             JOIN awards aw ON aw.task_id = mt.task_id \
             WHERE mt.module_id = ? AND aw.revoked_at IS NULL AND aw.withdrawn_at IS NULL",
            m.module.id,
        );
        assert_eq!(row(&html, "table-learners", &format!("data-module=\"{}\"", m.module.id)), vec![posted, badged]);
        posted_total += posted;
        badged_total += badged;
    }
    assert!(posted_total >= 4 && badged_total >= 5, "the seeded learners show: {posted_total} {badged_total}");

    let (mut recorded_total, mut pending_total) = (0, 0);
    for &t in &tasks {
        let all = count(&mut c, "SELECT count(*) AS n FROM awards WHERE task_id = ? AND withdrawn_at IS NULL", t);
        let recorded = count(
            &mut c,
            "SELECT count(*) AS n FROM awards a JOIN chain_records r ON r.award_id = a.id AND r.kind = 'award' \
             WHERE a.task_id = ? AND a.withdrawn_at IS NULL AND r.block_hash IS NOT NULL",
            t,
        );
        assert_eq!(row(&html, "table-awards", &format!("data-task=\"{t}\"")), vec![recorded, all - recorded]);
        recorded_total += recorded;
        pending_total += all - recorded;
    }
    assert_eq!((recorded_total, pending_total), (5, 1));

    // Posts per day: every day's total, and the sum over the course.
    let course_tasks = "SELECT mt.task_id FROM course_modules cm JOIN module_tasks mt ON mt.module_id = cm.module_id \
                        WHERE cm.course_id = ?";
    let days: Vec<(i64, i64)> = {
        #[derive(QueryableByName)]
        struct D {
            #[diesel(sql_type = BigInt)]
            day: i64,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(format!(
            "SELECT coalesce(l.published_at, l.harvested_at) / 86400 AS day, count(*) AS n FROM link_tasks lt \
             JOIN links l ON l.id = lt.link_id WHERE lt.tied = 1 AND lt.task_id IN ({course_tasks}) GROUP BY 1 ORDER BY 1"
        ))
        .bind::<BigInt, _>(course)
        .load::<D>(&mut c)
        .unwrap()
        .into_iter()
        .map(|d| (d.day, d.n))
        .collect()
    };
    assert!(days.len() >= 9, "posts over ten days: {days:?}");
    let table = &html[html.find("id=\"table-posts\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let shown: Vec<(String, i64)> = table
        .split("<tr><th scope=\"row\">")
        .skip(1)
        .map(|r| {
            let label = r.split('<').next().unwrap().to_string();
            let total = r.rsplit("<td>").next().unwrap().split('<').next().unwrap().parse().unwrap();
            (label, total)
        })
        .collect();
    let expected: Vec<(String, i64)> = days
        .iter()
        .map(|(d, n)| (chrono::DateTime::from_timestamp(d * DAY, 0).unwrap().format("%-d %B %Y").to_string(), *n))
        .collect();
    assert_eq!(shown, expected);

    let mut feeds = |sql: &str| scalar(&mut c, sql);
    assert_eq!(
        row(&html, "table-feeds", "<th scope=\"row\">OK").first().copied(),
        Some(feeds("SELECT count(*) AS n FROM feeds WHERE status = 'active' AND error_count = 0"))
    );
    assert_eq!(
        row(&html, "table-feeds", "<th scope=\"row\">Erroring"),
        vec![feeds("SELECT count(*) AS n FROM feeds WHERE status = 'active' AND error_count > 0")]
    );
    assert_eq!(
        row(&html, "table-feeds", "<th scope=\"row\">Gone"),
        vec![feeds("SELECT count(*) AS n FROM feeds WHERE status = 'gone'")]
    );
    let erroring: Vec<i64> = diesel::sql_query("SELECT id AS n FROM feeds WHERE status = 'active' AND error_count > 0")
        .load::<N>(&mut c)
        .unwrap()
        .into_iter()
        .map(|r| r.n)
        .collect();
    assert!(!erroring.is_empty());
    for id in erroring {
        assert!(html.contains(&format!("href=\"/admin/feeds?feed={id}#feed-{id}\"")), "erroring feed {id} is linked");
    }

    let outbox = |status: &str, tried: &str| {
        count(
            &mut app.pool.get().unwrap(),
            &format!(
                "SELECT count(*) AS n FROM outbox o JOIN awards a ON a.id = o.award_id \
                 WHERE o.status IN ({status}) AND {tried} AND a.task_id IN ({course_tasks})"
            ),
            course,
        )
    };
    let delivery = [
        ("Sent", outbox("'sent'", "1")),
        ("Retrying", outbox("'queued'", "o.attempts > 0")),
        ("Not tried yet", outbox("'queued'", "o.attempts = 0")),
        ("Failed", outbox("'failed', 'gave_up'", "1")),
        ("No endpoint", outbox("'no_endpoint'", "1")),
    ];
    assert!(delivery.iter().map(|(_, n)| n).sum::<i64>() >= 6, "each award queued a notification: {delivery:?}");
    for (label, n) in delivery {
        assert_eq!(row(&html, "table-delivery", &format!("<th scope=\"row\">{label}<")), vec![n], "{label}");
    }

    #[derive(QueryableByName)]
    struct Top {
        #[diesel(sql_type = Nullable<BigInt>)]
        h: Option<i64>,
        #[diesel(sql_type = Nullable<Text>)]
        at: Option<String>,
    }
    let top: Top = diesel::sql_query(
        "SELECT max(height) AS h, (SELECT CAST(timestamp AS TEXT) FROM blocks WHERE on_main = 1 ORDER BY height DESC LIMIT 1) AS at \
         FROM blocks WHERE on_main = 1",
    )
    .get_result(&mut c)
    .unwrap();
    assert_eq!(top.h, Some(1));
    let stamp: i64 = top.at.unwrap().parse().unwrap();
    let chain = &html[html.find("id=\"chain-figures\"").unwrap()..];
    assert!(chain.contains("<dt>Height</dt><dd>1</dd>"), "{}", &chain[..300]);
    assert!(chain.contains(&format!(
        "datetime=\"{}\"",
        chrono::DateTime::from_timestamp(stamp, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )));
    let pending = scalar(&mut c, "SELECT count(*) AS n FROM chain_records WHERE block_hash IS NULL");
    assert_eq!(pending, 1);
    assert!(chain.contains(&format!("<dt>Pending records</dt><dd>{pending}</dd>")));
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Tally {
    #[diesel(sql_type = BigInt)]
    task: i64,
    #[diesel(sql_type = Text)]
    bucket: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn tallies(c: &mut SqliteConnection, sql: &str) -> Vec<Tally> {
    diesel::sql_query(sql).load(c).unwrap()
}

/// The running totals the page reads against counts made afresh from awards, chain records and
/// the outbox, then the page's award and delivery tables against the same counts.
async fn assert_totals_hold(app: &TestApp, course: i64, tasks: &[i64], step: &str) {
    let mut c = app.pool.get().unwrap();
    let awards = tallies(
        &mut c,
        "SELECT aw.task_id AS task, 'awards' AS bucket, count(*) AS n FROM awards aw \
         WHERE aw.withdrawn_at IS NULL GROUP BY 1 \
         UNION ALL SELECT aw.task_id, 'recorded', count(*) FROM awards aw \
         JOIN chain_records r ON r.award_id = aw.id AND r.kind = 'award' AND r.block_hash IS NOT NULL \
         WHERE aw.withdrawn_at IS NULL GROUP BY 1 ORDER BY 1, 2",
    );
    let kept = tallies(
        &mut c,
        "SELECT task_id AS task, 'awards' AS bucket, awards AS n FROM dashboard_task_awards WHERE awards != 0 \
         UNION ALL SELECT task_id, 'recorded', recorded FROM dashboard_task_awards WHERE recorded != 0 ORDER BY 1, 2",
    );
    assert_eq!(kept, awards, "award totals {step}");
    let delivery = tallies(
        &mut c,
        "SELECT aw.task_id AS task, o.status || '/' || (o.attempts > 0) AS bucket, count(*) AS n \
         FROM outbox o JOIN awards aw ON aw.id = o.award_id GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let kept = tallies(
        &mut c,
        "SELECT task_id AS task, status || '/' || tried AS bucket, n FROM dashboard_task_delivery WHERE n != 0 \
         ORDER BY 1, 2",
    );
    assert_eq!(kept, delivery, "delivery totals {step}");
    drop(c);

    let html = app.get_html(&format!("/admin?course={course}")).await;
    let of = |task: i64, bucket: &str| awards.iter().find(|t| t.task == task && t.bucket == bucket).map_or(0, |t| t.n);
    for &t in tasks {
        let recorded = of(t, "recorded");
        assert_eq!(
            row(&html, "table-awards", &format!("data-task=\"{t}\"")),
            vec![recorded, of(t, "awards") - recorded]
        );
    }
    let shown = |buckets: &[&str]| -> i64 {
        delivery.iter().filter(|d| tasks.contains(&d.task) && buckets.contains(&d.bucket.as_str())).map(|d| d.n).sum()
    };
    for (label, buckets) in [
        ("Sent", &["sent/0", "sent/1"][..]),
        ("Retrying", &["queued/1"][..]),
        ("Not tried yet", &["queued/0"][..]),
        ("Failed", &["failed/0", "failed/1", "gave_up/0", "gave_up/1"][..]),
        ("No endpoint", &["no_endpoint/0", "no_endpoint/1"][..]),
    ] {
        assert_eq!(
            row(&html, "table-delivery", &format!("<th scope=\"row\">{label}<")),
            vec![shown(buckets)],
            "{label} {step}"
        );
    }
}

#[tokio::test]
async fn the_running_totals_follow_notifications_revocations_the_chain_withdrawals_and_removals() {
    use cairn::db::outbox::{Settled, Status, settle};
    let (app, course, tasks) = course_with_activity().await;
    assert_totals_hold(&app, course, &tasks, "after awarding and mining").await;
    let now = cairn::clock::system_now();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };

    // Each way a delivery attempt ends, as the sender stores it.
    let mut c = app.pool.get().unwrap();
    let notes: Vec<i64> = diesel::sql_query("SELECT id AS n FROM outbox WHERE award_id IS NOT NULL ORDER BY id")
        .load::<N>(&mut c)
        .unwrap()
        .into_iter()
        .map(|r| r.n)
        .collect();
    assert!(notes.len() >= 6, "each award queued a notification: {notes:?}");
    let retry = |status| Settled::Retry { status, error: "503".into(), next_attempt_at: now + 60 };
    let outcomes = [
        (1, retry(Status::Queued)),
        (1, Settled::Done { status: Status::Sent, endpoint: None, location: None }),
        (1, Settled::Failed { error: "refused".into(), endpoint: None }),
        (3, retry(Status::GaveUp)),
        (1, Settled::Done { status: Status::NoEndpoint, endpoint: None, location: None }),
    ];
    for (&id, (attempts, outcome)) in notes.iter().zip(outcomes) {
        settle(&mut c, id, attempts, outcome, now).unwrap();
    }
    // A retry that fails again stays in its bucket.
    settle(&mut c, notes[0], 2, retry(Status::Queued), now).unwrap();
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after deliveries").await;

    // A revocation: the award still counts, its revocation record counts for nothing.
    let mut c = app.pool.get().unwrap();
    #[derive(QueryableByName)]
    struct Word {
        #[diesel(sql_type = Text)]
        w: String,
    }
    let revoked: Word = diesel::sql_query("SELECT public_id AS w FROM awards WHERE recipient_email = 'l1@example.edu'")
        .get_result(&mut c)
        .unwrap();
    cairn::app::award::revoke(&mut c, &issuer, &revoked.w, "copied", now).unwrap();
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after a revocation").await;

    // Every block set aside gives its records back to the pool; a block holding them joins the
    // main chain again as the store does it (one statement per record).
    let mut c = app.pool.get().unwrap();
    let (_, returned) = cairn::db::chain::clear_blocks(&mut c).unwrap();
    assert!(returned >= 5, "the block's records went back to the pool: {returned}");
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after the blocks left the main chain").await;
    let mut c = app.pool.get().unwrap();
    exec(&mut c, "UPDATE chain_records SET block_hash = printf('%064d', 7) WHERE id % 2 = 0");
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after a block took some records again").await;

    // A learner forgotten: their awards withdrawn, their notifications deleted.
    let mut c = app.pool.get().unwrap();
    let forgotten = cairn::app::learners::forget(
        &mut c,
        &issuer,
        cairn::app::learners::Who::Email("l0@example.edu"),
        cairn::app::learners::Requester::Staff(cairn::app::access::Actor::institution(
            cairn::app::access::Surface::Cli,
        )),
        now,
    )
    .unwrap();
    assert_eq!(forgotten.awards_withdrawn, 1);
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after a learner was forgotten").await;

    // The demo removed: a demo learner's award is deleted, its record unlinked.
    let mut c = app.pool.get().unwrap();
    let demo_learner: Word =
        diesel::sql_query("SELECT email AS w FROM demo_learners ORDER BY id LIMIT 1").get_result(&mut c).unwrap();
    let req = cairn::app::award::AwardRequest {
        task_id: tasks[2],
        recipient_email: demo_learner.w,
        evidence_url: Some("https://example.org/demo".into()),
        ..Default::default()
    };
    cairn::app::award::award(&mut c, &issuer, &req, now).unwrap();
    exec(&mut c, "UPDATE chain_records SET block_hash = printf('%064d', 8) WHERE block_hash IS NULL");
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after a demo learner's award").await;
    let mut c = app.pool.get().unwrap();
    let removed = cairn::demo::remove(&mut c).unwrap();
    assert_eq!(removed.awards, 1);
    drop(c);
    assert_totals_hold(&app, course, &tasks, "after the demo was removed").await;
}

#[tokio::test]
async fn the_dashboard_is_valid_html_and_each_chart_has_a_title_and_a_description() {
    let (app, course, _) = course_with_activity().await;
    let html = app.get_html(&format!("/admin?course={course}")).await;
    let charts: Vec<&str> = html.split("<div class=\"chart ").skip(1).collect();
    assert_eq!(charts.len(), 6, "six charts");
    for chart in charts {
        let head = &chart[..chart.find('>').unwrap()];
        assert!(head.contains("role=\"img\""));
        let id = head.split("id=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(head.contains(&format!("aria-labelledby=\"{id}-title {id}-desc\"")));
        let title = chart.split(&format!("<span id=\"{id}-title\" hidden>")).nth(1).unwrap().split('<').next().unwrap();
        let desc = chart.split(&format!("<span id=\"{id}-desc\" hidden>")).nth(1).unwrap().split('<').next().unwrap();
        assert!(title.len() > 5 && desc.len() > 20, "{id}: {title:?} / {desc:?}");
    }
    // Every chart has its figures in a table too, and nothing comes from elsewhere.
    assert_eq!(html.matches("<details><summary>").count(), 6);
    assert!(!html.contains("<script src=\"http") && !html.contains("cdn"), "no CDN");
    let errors = crate::pagecheck::nu_errors(&[(format!("/admin?course={course}"), html)]);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[tokio::test]
async fn an_empty_site_shows_the_course_form_and_an_unknown_course_is_not_found() {
    let app = spawn_app().await;
    app.login().await;
    let html = app.get_html("/admin").await;
    assert!(html.contains("No courses yet") && !html.contains("class=\"chart "));
    assert_eq!(app.get("/admin?course=999").await.status(), 404);
}
