//! The dashboard's charts in headless Chromium: at one day of posts and at sixty, on a
//! desktop window and on a phone, no label of a chart overlaps a bar or another label, the
//! labels are drawn at a readable size, and the page does not scroll sideways. Screenshots go
//! where the layout tests put theirs (`CAIRN_SHOTS` to keep them).

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use fantoccini::Client;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};
use crate::layout::{intersects, screenshot, set_viewport, shots_dir, viewport};

const DAY: i64 = 86_400;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The demo course with a module and task of long titles (they wrap), posts on today only,
/// and six awards of which five are mined into a block, so that each of the dashboard's
/// charts has bars; returns the course and its tasks.
async fn demo_with_one_day() -> (TestApp, i64, Vec<i64>) {
    let app = spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    let course = cairn::db::courses::get_course_by_slug(&mut c, cairn::demo::DEMO_SLUG).unwrap().id;
    let now = cairn::clock::system_now();
    let module = cairn::app::courses::create_module(
        &mut c,
        course,
        &cairn::app::courses::TitledForm {
            title: "Recognition of what everyone contributed across the whole of the course".into(),
            description: String::new(),
        },
        now,
    )
    .unwrap();
    let form = cairn::app::courses::TaskForm {
        title: "Write a retrospective of your learning network, with its people and feeds".into(),
        description: "Look back.".into(),
        criteria: "A post tagged #el30-retrospective-of-the-whole-course.".into(),
        hashtag: "#el30-retrospective-of-the-whole-course".into(),
        expires_days: String::new(),
    };
    cairn::app::courses::create_task(&mut c, module.id, &form, None, now).unwrap();
    let tasks: Vec<i64> = cairn::db::courses::outline(&mut c, course)
        .unwrap()
        .modules
        .iter()
        .flat_map(|m| m.tasks.iter().map(|t| t.id))
        .collect();
    assert!(tasks.len() >= 9, "the demo's tasks and one more: {tasks:?}");
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    for i in 0..6 {
        let req = cairn::app::award::AwardRequest {
            task_id: tasks[i % 3],
            recipient_email: format!("learner{i}@example.edu"),
            evidence_url: Some(format!("https://example.org/evidence/{i}")),
            ..Default::default()
        };
        cairn::app::award::award(&mut c, &issuer, &req, now).unwrap();
    }
    drop(c);
    app.ledger.clone().mine_pass().await.unwrap();
    add_posts(&app, &tasks, 0..1, "one");
    (app, course, tasks)
}

/// Posts on each day `days` before today, to every task, more on some days than others, from
/// a learner's feed of its own (`name`).
fn add_posts(app: &TestApp, tasks: &[i64], days: std::ops::Range<i64>, name: &str) {
    let mut c = app.pool.get().unwrap();
    let now = cairn::clock::system_now();
    let today = now.div_euclid(DAY) * DAY;
    let author = cairn::db::feeds::find_or_create_author(
        &mut c,
        &format!("Learner {name}"),
        Some(&format!("{name}@example.edu")),
        now,
    )
    .unwrap();
    let feed = cairn::db::feeds::create_feed(
        &mut c,
        cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: &format!("https://{name}.example.org/feed.xml"),
            title: name,
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        },
        now,
    )
    .unwrap();
    c.transaction(|c| {
        let mut n = 0;
        for day in days {
            let at = today - day * DAY;
            for (t, &task) in tasks.iter().enumerate() {
                for _ in 0..(1 + (day + t as i64 * 3) % 4) {
                    let id = diesel::sql_query(format!(
                        "INSERT INTO links (feed_id, author_id, item_key, url, title, published_at, harvested_at, \
                         changed_at, content_hash, authorship) VALUES ({}, {}, 'id:{n}', 'https://{name}.example.org/{n}', \
                         'Post {n}', {at}, {at}, {now}, 'h', 'own') RETURNING id AS n",
                        feed.id, author.id
                    ))
                    .get_result::<N>(c)?
                    .n;
                    diesel::sql_query(format!(
                        "INSERT INTO link_tasks (link_id, task_id, source, tied, created_at) \
                         VALUES ({id}, {task}, 'hashtag', 1, {now})"
                    ))
                    .execute(c)?;
                    n += 1;
                }
            }
        }
        diesel::QueryResult::Ok(())
    })
    .unwrap();
}

/// Every chart's text (category labels, figures, legend entries, day marks) and bars, as
/// boxes in the page: `{texts: [{chart, text, left, top, right, bottom}], bars: [...],
/// charts: [{id, left, right, bars}], overflow}`.
async fn chart_boxes(browser: &Client) -> Value {
    browser
        .execute(
            "const box = (b, extra) => Object.assign({left: b.left, top: b.top, right: b.right, bottom: b.bottom,
                                                       width: b.width, height: b.height}, extra);
             const texts = [], bars = [], charts = [];
             for (const chart of document.querySelectorAll('.chart')) {
               if (chart.getClientRects().length === 0) continue;
               const walker = document.createTreeWalker(chart, NodeFilter.SHOW_TEXT);
               for (let t = walker.nextNode(); t; t = walker.nextNode()) {
                 if (!t.data.trim() || t.parentElement.closest('title, desc, [hidden]')) continue;
                 const range = document.createRange();
                 range.selectNodeContents(t);
                 const b = range.getBoundingClientRect();
                 if (b.width === 0 && b.height === 0) continue;
                 texts.push(box(b, {chart: chart.id, text: t.data.trim()}));
               }
               const own = [...chart.querySelectorAll('.bar')].map(b => box(b.getBoundingClientRect(), {chart: chart.id}));
               bars.push(...own);
               const c = chart.getBoundingClientRect();
               charts.push({id: chart.id, left: c.left, right: c.right, bars: own.length});
             }
             const e = document.scrollingElement;
             return {texts, bars, charts, overflow: e.scrollWidth - e.clientWidth};",
            vec![],
        )
        .await
        .unwrap()
}

/// Opens the dashboard at `w` × `h`, saves a screenshot as `name` and checks its charts;
/// returns what is wrong, one line each.
async fn check(browser: &Client, url: &str, (w, h): (u32, u32), dir: &std::path::Path, name: &str) -> Vec<String> {
    set_viewport(browser, w, h).await;
    browser.goto(url).await.unwrap();
    assert_eq!(viewport(browser).await, i64::from(w), "the viewport of {name}");
    let png = screenshot(browser).await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot of {name}");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    let boxes = chart_boxes(browser).await;
    let mut wrong = Vec::new();
    let overflow = boxes["overflow"].as_i64().unwrap();
    if overflow > 0 {
        wrong.push(format!("{name}: the page scrolls sideways by {overflow} px"));
    }
    let charts = boxes["charts"].as_array().unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["chart-posts", "chart-learners", "chart-awards", "chart-feeds", "chart-delivery", "chart-chain"],
        "{name}: the dashboard's six charts show"
    );
    for c in charts {
        if c["bars"].as_u64().unwrap() == 0 {
            wrong.push(format!("{name}: {} draws no bar", c["id"]));
        }
    }
    let texts = boxes["texts"].as_array().unwrap();
    let bars = boxes["bars"].as_array().unwrap();
    let describe = |b: &Value| {
        format!(
            "{} {:?} at ({:.1}, {:.1})–({:.1}, {:.1})",
            b["chart"].as_str().unwrap(),
            b["text"].as_str().unwrap_or("bar"),
            b["left"].as_f64().unwrap(),
            b["top"].as_f64().unwrap(),
            b["right"].as_f64().unwrap(),
            b["bottom"].as_f64().unwrap()
        )
    };
    for b in bars {
        let chart = charts.iter().find(|c| c["id"] == b["chart"]).unwrap();
        if b["width"].as_f64().unwrap() < 1.0 || b["height"].as_f64().unwrap() < 1.0 {
            wrong.push(format!("{name}: a bar too small to see: {}", describe(b)));
        }
        if b["left"].as_f64().unwrap() < chart["left"].as_f64().unwrap() - 0.5
            || b["right"].as_f64().unwrap() > chart["right"].as_f64().unwrap() + 0.5
        {
            wrong.push(format!("{name}: a bar leaves its chart: {}", describe(b)));
        }
    }
    for (i, t) in texts.iter().enumerate() {
        // Type a reader can make out: 12 px type or larger draws boxes at least 13.5 px high
        // (a 640-unit drawing scaled to a phone drew 6 px type).
        if t["height"].as_f64().unwrap() < 13.5 {
            wrong.push(format!("{name}: text drawn too small: {}", describe(t)));
        }
        for b in bars.iter().filter(|b| intersects(t, b)) {
            wrong.push(format!("{name}: {} overlaps the bar {}", describe(t), describe(b)));
        }
        for o in texts.iter().skip(i + 1).filter(|o| intersects(t, o)) {
            wrong.push(format!("{name}: {} overlaps {}", describe(t), describe(o)));
        }
    }
    assert!(texts.len() >= 30, "{name}: the charts' labels and figures were found: {}", texts.len());
    wrong
}

#[tokio::test]
async fn the_dashboards_charts_keep_labels_clear_of_bars_from_one_day_to_sixty_on_a_desktop_and_a_phone() {
    let (app, course, tasks) = demo_with_one_day().await;
    let (dir, _guard) = shots_dir();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    set_viewport(&browser, 1280, 900).await;
    crate::browser::sign_in(&browser, &app.url("/login")).await.unwrap();
    let url = app.url(&format!("/admin?course={course}"));
    let mut wrong = Vec::new();
    for (size, width) in [((1280, 900), "desktop"), ((375, 667), "phone")] {
        wrong.extend(check(&browser, &url, size, &dir, &format!("dashboard-1-day-{width}")).await);
    }
    // One day of posts draws one column per task, a day's width among the chart's days.
    let one_day = browser
        .execute(
            "return [...document.querySelectorAll('#chart-posts .bar')].map(b =>
                 b.getBoundingClientRect().width / b.closest('svg').getBoundingClientRect().width);",
            vec![],
        )
        .await
        .unwrap();
    let shares: Vec<f64> = serde_json::from_value(one_day).unwrap();
    assert_eq!(shares.len(), tasks.len(), "one column per task: {shares:?}");
    assert!(shares.iter().all(|&s| s > 0.0 && s < 0.1), "a day is a column, not the whole strip: {shares:?}");

    add_posts(&app, &tasks, 1..60, "sixty");
    for (size, width) in [((1280, 900), "desktop"), ((375, 667), "phone")] {
        wrong.extend(check(&browser, &url, size, &dir, &format!("dashboard-60-days-{width}")).await);
    }
    let columns =
        browser.execute("return document.querySelectorAll('#chart-posts .bar').length;", vec![]).await.unwrap();
    assert_eq!(columns, Value::from(tasks.len() * 60), "a column for each task's day with posts");
    let _ = browser.close().await;
    assert!(wrong.is_empty(), "{} problems (screenshots in {}):\n{}", wrong.len(), dir.display(), wrong.join("\n"));
}
