//! Layout in headless Chromium: instructors' pages use a desktop window's width without
//! scrolling sideways and keep the navigation on one line; public pages fit a phone; the
//! verification page's badge stays clear of its status box and prints as a one-page
//! certificate. Screenshots go to a temporary directory, or to `CAIRN_SHOTS` when it is set
//! (for looking at them by eye). The window, screenshot and box helpers serve the other
//! browser tests too.

use std::path::PathBuf;

use fantoccini::Client;
use serde_json::Value;

use crate::helpers::TestApp;

/// Where screenshots go: `CAIRN_SHOTS` if set, else a directory removed with the guard.
pub(crate) fn shots_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("CAIRN_SHOTS") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (PathBuf::from(dir), None)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

/// Opens `url`, saves a screenshot as `name`.png and returns how far the page reaches past
/// the window sideways (0 when it fits).
async fn overflow(browser: &Client, url: &str, dir: &std::path::Path, name: &str) -> i64 {
    browser.goto(url).await.unwrap();
    let png = screenshot(browser).await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot of {url}");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    let v = browser
        .execute("const e = document.scrollingElement; return e.scrollWidth - e.clientWidth;", vec![])
        .await
        .unwrap();
    v.as_i64().unwrap()
}

/// Waits for the page's `load` event.
pub(crate) async fn wait_loaded(browser: &Client) {
    let loaded = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             if (document.readyState === 'complete') done(true);
             else window.addEventListener('load', () => done(true));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(loaded, Value::Bool(true), "the page finished loading");
}

/// A screenshot of the loaded page. Under load, chromedriver can abandon a screenshot it
/// began while the page was still settling ("aborted by navigation"); that one is taken again.
pub(crate) async fn screenshot(browser: &Client) -> Vec<u8> {
    wait_loaded(browser).await;
    match browser.screenshot().await {
        Ok(png) => png,
        Err(first) => {
            eprintln!("screenshot failed once, taking it again: {first}");
            browser.screenshot().await.unwrap()
        }
    }
}

/// The loaded page printed to PDF. Under load, Chromium's inspector can answer "Printing
/// failed" for a page still settling; that print is made again.
async fn print_pdf(browser: &Client) -> Vec<u8> {
    wait_loaded(browser).await;
    match browser.print(fantoccini::wd::PrintConfiguration::default()).await {
        Ok(pdf) => pdf,
        Err(first) => {
            eprintln!("printing failed once, printing again: {first}");
            browser.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap()
        }
    }
}

/// The viewport's width as the page sees it.
pub(crate) async fn viewport(browser: &Client) -> i64 {
    browser.execute("return window.innerWidth;", vec![]).await.unwrap().as_i64().unwrap()
}

/// Resizes the window so that the page's viewport is `w` × `h`.
pub(crate) async fn set_viewport(browser: &Client, w: u32, h: u32) {
    browser.set_window_size(w, h).await.unwrap();
    // Window decorations, if any, take some of the window: grow it by what is missing.
    let inner: Vec<i64> = serde_json::from_value(
        browser.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.unwrap(),
    )
    .unwrap();
    let (dw, dh) = (i64::from(w) - inner[0], i64::from(h) - inner[1]);
    if dw != 0 || dh != 0 {
        browser.set_window_size((i64::from(w) + dw) as u32, (i64::from(h) + dh) as u32).await.unwrap();
    }
}

async fn site() -> (TestApp, String, i64) {
    let (app, assertion) = crate::portfolio::app_with_learner().await;
    let mut c = app.pool.get().unwrap();
    let course = cairn::db::courses::get_course_by_slug(&mut c, cairn::demo::DEMO_SLUG).unwrap().id;
    // A feed that fails with a long message, as the Feeds table meets them.
    let author = cairn::db::feeds::find_or_create_author(
        &mut c,
        "Sam Longname-Example",
        Some("sam@example.edu"),
        cairn::clock::system_now(),
    )
    .unwrap();
    let feed = cairn::db::feeds::create_feed(
        &mut c,
        cairn::db::feeds::NewFeed {
            author_id: author.id,
            url: "https://a-rather-long-blog-name.example.org/category/el30/feed/atom.xml?utm_source=cairn",
            title: "",
            site_url: None,
            status: cairn::db::feeds::FeedStatus::Active,
            confirm_token_hash: None,
            manage_token_hash: None,
        },
        cairn::clock::system_now(),
    )
    .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE feeds SET error_count = 4, last_error = 'the server answered 503 Service Unavailable \
             after 3 redirects and a read timeout of 20 s' WHERE id = {}",
            feed.id
        )),
        &mut c,
    )
    .unwrap();
    drop(c);
    (app, assertion, course)
}

#[tokio::test]
async fn pages_fit_a_desktop_window_and_a_phone_and_the_badge_clears_the_status_box() {
    let (app, assertion, course) = site().await;
    let (dir, _guard) = shots_dir();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;

    // Public pages on a phone.
    set_viewport(&browser, 375, 667).await;
    let public = [
        ("/", "public-home"),
        ("/join", "public-join"),
        ("/login", "public-login"),
        ("/chain", "public-chain"),
        ("/institution", "public-institution"),
        (&format!("/courses/{}", cairn::demo::DEMO_SLUG), "public-course"),
        (assertion.strip_prefix(&app.address).unwrap(), "public-verification-phone"),
    ];
    browser.goto(&app.url("/")).await.unwrap();
    assert_eq!(viewport(&browser).await, 375, "the phone's viewport");
    let mut wide = Vec::new();
    for (path, name) in &public {
        let over = overflow(&browser, &app.url(path), &dir, name).await;
        if over > 0 {
            wide.push(format!("{path}: {over} px too wide at 375 px"));
        }
    }
    let phone_rects = rects(&browser).await;

    // The verification page on a desktop, then instructors' pages.
    set_viewport(&browser, 1280, 800).await;
    let desktop_rects = {
        overflow(&browser, &assertion, &dir, "public-verification-desktop").await;
        rects(&browser).await
    };
    for (width, r) in [(375, &phone_rects), (1280, &desktop_rects)] {
        let badge = &r["badge"];
        for other in ["status", "title"] {
            assert!(
                !intersects(badge, &r[other]),
                "at {width} px the badge {badge} overlaps the {other} box {}",
                r[other]
            );
        }
        assert!(badge["width"].as_f64().unwrap() > 50.0, "the badge shows at {width} px");
    }

    crate::browser::sign_in(&browser, &app.url("/login")).await.unwrap();
    assert_eq!(viewport(&browser).await, 1280, "the desktop's viewport");
    let admin = [
        ("/admin".to_string(), "admin-dashboard"),
        ("/admin/reader".into(), "admin-reader"),
        ("/admin/feeds".into(), "admin-feeds"),
        ("/admin/links".into(), "admin-posts"),
        ("/admin/mentions".into(), "admin-mentions"),
        ("/admin/peers".into(), "admin-peers"),
        ("/admin/tokens".into(), "admin-tokens"),
        ("/admin/institution".into(), "admin-institution"),
        (format!("/admin/courses/{course}"), "admin-course"),
    ];
    for (path, name) in &admin {
        let over = overflow(&browser, &app.url(path), &dir, name).await;
        if over > 0 {
            wide.push(format!("{path}: {over} px too wide at 1280 px"));
        }
        // The navigation is one line: every link sits on the brand's row.
        let rows = browser
            .execute(
                "return new Set([...document.querySelectorAll('header.site nav a, header.site nav button')]
                    .map(e => Math.round(e.getBoundingClientRect().top / 10))).size;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(rows, Value::from(1), "{path}: the navigation takes {rows} rows at 1280 px");
    }
    assert!(wide.is_empty(), "pages scroll sideways:\n{}", wide.join("\n"));

    // The Feeds table fits the window: no header wraps and the table needs no scrolling of its own.
    browser.goto(&app.url("/admin/feeds")).await.unwrap();
    let fit = browser
        .execute(
            "const t = document.querySelector('#feeds');
             const th = [...t.querySelectorAll('th')];
             const line = parseFloat(getComputedStyle(th[0]).lineHeight);
             return [t.parentElement.scrollWidth <= t.parentElement.clientWidth,
                     th.every(h => h.getBoundingClientRect().height < 2 * line + 16)];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fit, serde_json::json!([true, true]), "the Feeds table at 1280 px");

    // On a narrower window the instructors' links move to a row of their own, whole.
    set_viewport(&browser, 900, 800).await;
    browser.goto(&app.url("/admin")).await.unwrap();
    let collapsed = browser
        .execute(
            "const nav = document.querySelector('.nav-admin').getBoundingClientRect();
             const brand = document.querySelector('.brand').getBoundingClientRect();
             const e = document.scrollingElement;
             return [nav.top >= brand.bottom, e.scrollWidth <= e.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(collapsed, serde_json::json!([true, true]), "the navigation at 900 px");
    std::fs::write(dir.join("admin-dashboard-900.png"), screenshot(&browser).await).unwrap();
}

/// Bounding boxes of the verification page's badge, status box and title.
async fn rects(browser: &Client) -> Value {
    browser
        .execute(
            "const r = s => { const b = document.querySelector(s).getBoundingClientRect();
                              return {left: b.left, top: b.top, right: b.right, bottom: b.bottom, width: b.width}; };
             return {badge: r('img.badge'), status: r('.status'), title: r('h1')};",
            vec![],
        )
        .await
        .unwrap()
}

pub(crate) fn intersects(a: &Value, b: &Value) -> bool {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
    f(a, "left") < f(b, "right")
        && f(b, "left") < f(a, "right")
        && f(a, "top") < f(b, "bottom")
        && f(b, "top") < f(a, "bottom")
}

#[tokio::test]
async fn the_verification_page_prints_as_one_page_with_its_address_and_a_qr_code() {
    let (app, assertion, _) = site().await;
    let html = app.client.get(&assertion).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let qr = &html[html.find("<svg class=\"qr\"").expect("an inline QR code")..];
    let qr = &qr[..qr.find("</svg>").unwrap()];
    assert!(
        qr.contains("role=\"img\"")
            && qr.contains(&format!("aria-label=\"QR code of this page&#39;s address, {assertion}\""))
    );
    assert!(qr.contains("<path"), "the code's modules are drawn");
    assert!(html.contains(&format!("<span class=\"address\">{assertion}</span>")), "the address is printed");

    let (dir, _guard) = shots_dir();
    let (_driver, _profile, browser) = crate::browser::start_browser().await;
    browser.goto(&assertion).await.unwrap();
    let pdf = print_pdf(&browser).await;
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(dir.join("certificate.pdf"), &pdf).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert_eq!(pages, 1, "the certificate prints on one page");
    // On screen the QR code and the printed address stay out of the way.
    let shown = browser
        .execute("return getComputedStyle(document.querySelector('.certificate-link')).display;", vec![])
        .await
        .unwrap();
    assert_eq!(shown, Value::from("none"));
}
