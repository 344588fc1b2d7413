//! A real browser: headless Chromium driven over WebDriver signs in and creates a task.
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::{EMAIL, PASSWORD, spawn_app};

/// One browser at a time: two Chromiums beside the other tests on a 2-core runner starve
/// each other's renderers until WebDriver commands time out.
static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The chromedriver process, and this test's turn with the browser; both end when dropped.
pub struct Driver(std::process::Child, #[allow(dead_code)] tokio::sync::SemaphorePermit<'static>);
impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium outlives a killed chromedriver: end the driver's whole process group, which
        // the browser it started belongs to.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signs the demo instructor in through the login form at `login_url`; returns once the
/// course list shows.
pub async fn sign_in(browser: &fantoccini::Client, login_url: &str) -> Result<(), fantoccini::error::CmdError> {
    browser.goto(login_url).await?;
    browser.find(Locator::Css("#email")).await?.send_keys(EMAIL).await?;
    browser.find(Locator::Css("#password")).await?.send_keys(PASSWORD).await?;
    browser.find(Locator::Css("form.card button[type=submit]")).await?.click().await?;
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Id("courses")).await?;
    Ok(())
}

/// A headless Chromium session through chromedriver; the driver stops when dropped.
pub async fn start_browser() -> (Driver, tempfile::TempDir, fantoccini::Client) {
    let turn = BROWSERS.acquire().await.expect("the browser semaphore is never closed");
    let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&driver_bin).exists(),
        "{driver_bin} not found: install Debian's chromium and chromium-driver (see .ci/run)"
    );
    // Port 0: the driver picks a free port itself and says which ("... on port N."), so no
    // other process can take it between our choice and its bind.
    let mut child = Command::new(&driver_bin)
        // A process group of its own, so that dropping the driver can end the browser too.
        .process_group(0)
        .arg("--port=0")
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let driver = Driver(child, turn);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("ChromeDriver was started successfully on port ") {
                let _ = tx.send(port.trim_end_matches('.').parse::<u16>().ok());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("chromedriver did not say it had started within 30 s")
        .expect("chromedriver named no port");
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    let chrome_bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let user_data = tempfile::tempdir().unwrap();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chrome_bin,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-crash-reporter", "--disable-breakpad", "--disable-component-update", "--disable-sync",
                     "--window-size=1024,900", format!("--user-data-dir={}", user_data.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .unwrap_or_else(|e| panic!("cannot start a browser session: {e}"));

    (driver, user_data, browser)
}

#[tokio::test]
async fn an_instructor_signs_in_and_creates_a_task_in_a_real_browser() {
    let app = spawn_app().await;
    {
        let mut conn = app.pool.get().unwrap();
        let course = cairn::app::courses::create_course(
            &mut conn,
            &cairn::app::courses::TitledForm { title: "Browser Course".into(), description: String::new() },
            cairn::clock::system_now(),
        )
        .unwrap();
        cairn::app::courses::create_module(
            &mut conn,
            course.id,
            &cairn::app::courses::TitledForm { title: "Week One".into(), description: String::new() },
            cairn::clock::system_now(),
        )
        .unwrap();
    }

    let (_driver, _profile, browser) = start_browser().await;
    let result = async {
        browser.goto(&app.url("/admin")).await?;
        // Redirected to the login page.
        assert!(browser.current_url().await?.path().starts_with("/login"));
        sign_in(&browser, browser.current_url().await?.as_ref()).await?;
        browser.find(Locator::LinkText("Browser Course")).await?.click().await?;
        browser.find(Locator::LinkText("Add task")).await?.click().await?;
        browser.find(Locator::Css("#f-title")).await?.send_keys("Post from the browser").await?;
        browser.find(Locator::Css("#f-hashtag")).await?.send_keys("#browser-week1").await?;
        browser.find(Locator::Css("#f-criteria")).await?.send_keys("Write **something**.").await?;
        browser.find(Locator::Css("#task-form button[type=submit]")).await?.click().await?;
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(".flash")).await?;
        let flash = browser.find(Locator::Css(".flash")).await?.text().await?;
        assert!(flash.contains("#browser-week1"), "{flash}");
        browser.goto(&app.url("/tasks/browser-week1")).await?;
        let heading = browser.find(Locator::Css("h1")).await?.text().await?;
        assert_eq!(heading, "Post from the browser");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("browser flow");

    let mut conn = app.pool.get().unwrap();
    assert!(cairn::db::courses::get_task_by_slug(&mut conn, "browser-week1").is_ok());
}

#[tokio::test]
async fn an_instructor_awards_a_badge_from_the_reader_and_opens_its_verification_page() {
    let (app, _server, post) = crate::badges::app_with_post().await;
    let (_driver, _profile, browser) = start_browser().await;
    let result = async {
        sign_in(&browser, &app.url("/login")).await?;
        browser.goto(&app.url("/admin/reader")).await?;
        let card = format!("#link-{post}");
        let button = browser.find(Locator::Css(&format!("{card} form.award-form button"))).await?;
        assert!(button.text().await?.contains("#el30-"));
        button.click().await?;
        // The card updates in place: an assertion link appears without a page load.
        let link = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("{card} a[href^='/assertions/']")))
            .await?;
        let status = browser.find(Locator::Id("reader-status")).await?.text().await?;
        assert!(status.contains("awarded to Ada Lovelace"), "{status}");
        link.click().await?;
        browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("article.h-entry")).await?;
        let status = browser.find(Locator::Css(".status")).await?.text().await?;
        assert!(status.contains("valid"), "{status}");
        let svg_href =
            browser.find(Locator::Css("a[href$='badge.svg?download=1']")).await?.attr("href").await?.unwrap();
        // Open the baked SVG itself (the download link without ?download).
        let svg_url = svg_href.replace("?download=1", "");
        browser.goto(&svg_url).await?;
        let source = browser.source().await?;
        assert!(source.contains("openbadges:assertion"), "the image carries its assertion");
        Ok::<_, fantoccini::error::CmdError>(svg_href)
    }
    .await;
    let _ = browser.close().await;
    let svg_href = result.expect("browser flow");
    // The download link serves the same baked image as an attachment.
    assert!(svg_href.starts_with(&app.address), "{svg_href}");
    let res = app.client.get(&svg_href).send().await.unwrap();
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert!(res.text().await.unwrap().contains("<openbadges:assertion verify="));
}
