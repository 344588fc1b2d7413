//! How soon a newcomer sees something to award: from starting `cairn serve --demo` on a fresh
//! data dir to the first demo post in the Reader (signed in as the demo instructor, the Reader
//! polled every 50 ms). Three runs, each on a new data dir; prints each and the median.
//!
//! Run: `cargo bench --bench demo` (the figure includes start-up, migrations, seeding, the
//! demo instructor's sign-in and the start-up harvest of every demo blog).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn one_run() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(var);
        }
    }
    let started = Instant::now();
    let mut server = Server(
        cmd.current_dir(dir.path())
            .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = server.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut password) = (String::new(), String::new());
    while url.is_empty() || password.is_empty() {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("serve --demo printed its URL and password");
        if let Some(rest) = line.strip_prefix("Cairn is running at ") {
            url = rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        }
        if let Some((_, pw)) = line.split_once("password: ") {
            password = pw.trim().to_string();
        }
    }
    cairn::net::install_crypto_provider();
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = client.get(format!("{url}/login")).send().await.unwrap().text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let at = login.find(marker).unwrap() + marker.len();
    let csrf = &login[at..at + login[at..].find('"').unwrap()];
    let res = client
        .post(format!("{url}/login"))
        .form(&[("csrf_token", csrf), ("email", cairn::demo::DEMO_EMAIL), ("password", &password), ("next", "")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "sign-in: {}", res.status());
    let wanted = cairn::demo::blogs::post(0).2;
    let deadline = started + Duration::from_secs(120);
    loop {
        let page = client.get(format!("{url}/admin/reader")).send().await.unwrap().text().await.unwrap();
        if page.contains(&wanted) {
            return started.elapsed();
        }
        assert!(Instant::now() < deadline, "no demo post in the Reader within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let mut times = Vec::new();
    for i in 1..=RUNS {
        let t = one_run().await;
        println!("run {i}: first demo post in the Reader {:.2} s after `serve --demo` started", t.as_secs_f64());
        times.push(t);
    }
    times.sort();
    println!("median: {:.2} s", times[RUNS / 2].as_secs_f64());
}
