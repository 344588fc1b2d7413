//! Request ids and the log format: `X-Request-Id` generated, replaced when a client that is no
//! trusted proxy forges one, kept from a trusted proxy; and `CAIRN_LOG_FORMAT=json` on the real
//! binary, one JSON object a line with the request id on a request's line.

use std::io::Read as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{behind_local_proxy, cairn_cmd, client, spawn_app, spawn_with};

fn id_of(res: &reqwest::Response) -> String {
    res.headers().get("x-request-id").expect("an X-Request-Id").to_str().unwrap().to_string()
}

fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_response_carries_a_new_request_id() {
    let app = spawn_app().await;
    let (a, b) = (app.get("/").await, app.get("/no/such/page").await);
    assert_eq!(b.status(), 404);
    let (a, b) = (id_of(&a), id_of(&b));
    assert!(generated(&a) && generated(&b), "{a} {b}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn an_id_forged_by_a_client_that_is_no_trusted_proxy_is_replaced() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "forged-by-client").send().await.unwrap();
    let id = id_of(&res);
    assert_ne!(id, "forged-by-client");
    assert!(generated(&id), "{id}");
}

#[tokio::test]
async fn a_trusted_proxy_s_id_is_kept_unless_it_is_unfit() {
    let app = spawn_with(behind_local_proxy).await;
    let res = app.client.get(app.url("/")).header("x-request-id", "edge-7f3a.42").send().await.unwrap();
    assert_eq!(id_of(&res), "edge-7f3a.42");
    let long = "x".repeat(129);
    let res = app.client.get(app.url("/")).header("x-request-id", long.as_str()).send().await.unwrap();
    assert!(generated(&id_of(&res)), "an id over 128 characters is replaced");
    let res = app.client.get(app.url("/")).header("x-request-id", "two words").send().await.unwrap();
    assert!(generated(&id_of(&res)), "an id with a space is replaced");
}

/// A `cairn serve` child, killed if a test fails before stopping it.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_request_id_and_no_probe_lines() {
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve(
        cairn_cmd()
            .args(["serve"])
            .env("CAIRN_LOG_FORMAT", "json")
            .env("CAIRN_BIND", "127.0.0.1:0")
            .env("CAIRN_DATA_DIR", data.path())
            .env("CAIRN_HARVEST_ENABLED", "false")
            .env("CAIRN_NEWSLETTER_ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = serve.0.stdout.take().unwrap();
    let mut stderr = serve.0.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    // The first stdout line names the URL.
    let first = tokio::task::spawn_blocking(move || {
        let (mut line, mut b) = (Vec::new(), [0u8; 1]);
        while stdout.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
            line.push(b[0]);
        }
        (String::from_utf8_lossy(&line).into_owned(), stdout)
    });
    let (line, _stdout) = tokio::time::timeout(Duration::from_secs(60), first).await.expect("serve starts").unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| panic!("the start-up line names the URL: {line}"));
    let c = client();
    for probe in ["/healthz", "/readyz", "/health"] {
        let res = c.get(format!("{base}{probe}")).send().await.unwrap();
        assert!(res.headers().contains_key("x-request-id"), "{probe}");
    }
    let res = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = id_of(&res);
    let pid = serve.0.id().to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while serve.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "cairn serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = tokio::task::spawn_blocking(move || errors.join().unwrap()).await.unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()), "{logs}");
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let home = requests.iter().find(|l| l["path"] == "/").unwrap_or_else(|| panic!("no line for GET /: {logs}"));
    assert_eq!(home["level"], "INFO");
    assert_eq!(home["status"], 200);
    assert_eq!(home["span"]["request_id"], id.as_str(), "{home}");
    for probe in ["/healthz", "/readyz", "/health"] {
        assert!(!requests.iter().any(|l| l["path"] == probe), "{probe} is logged at info: {logs}");
    }
}

#[test]
fn a_failing_command_reports_its_error_as_a_json_line() {
    let data = tempfile::tempdir().unwrap();
    // A restore of an archive that does not exist fails before it changes anything.
    let out = cairn_cmd()
        .args(["restore", "/nonexistent/cairn-backup.tar.gz"])
        .env("CAIRN_LOG_FORMAT", "json")
        .env("CAIRN_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let last = lines.last().unwrap_or_else(|| panic!("no line: {stderr}"));
    assert_eq!(last["level"], "ERROR");
    assert!(last["error"].as_str().unwrap().contains("cairn-backup.tar.gz"), "{last}");
}

#[test]
fn an_unknown_log_format_is_refused_before_anything_runs() {
    let data = tempfile::tempdir().unwrap();
    let out = cairn_cmd()
        .args(["identity"])
        .env("CAIRN_LOG_FORMAT", "xml")
        .env("CAIRN_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.format") && stderr.contains("'xml' is not text or json"), "{stderr}");
    assert!(std::fs::read_dir(data.path()).unwrap().next().is_none(), "nothing was created");
}
