//! Prometheus metrics on their own listener (`[metrics] bind`): the series after a few
//! requests, an award and a revocation through the API, labelled by route pattern and never
//! by raw path or email; nothing at `/metrics` on the public listener; the scraped text and
//! `deploy/alerts.yml` checked by Prometheus's own `promtool` (Debian's `prometheus` package,
//! installed by scripts/test.sh; `PROMTOOL` names another binary).

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{EMAIL, PASSWORD, complete_profile, repo, settings};

/// The promtool binary: `PROMTOOL`, or `promtool` on PATH.
fn promtool() -> Command {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let found = Command::new(&bin).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{bin} not found: install Debian's prometheus package (scripts/test.sh does), or set PROMTOOL to its path"
    );
    Command::new(bin)
}

/// The value of the one sample whose line starts with `name{` and holds every label of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|want| l.contains(want))
        })
        .collect();
    assert_eq!(lines.len(), 1, "one sample of {name} with {labels:?} in:\n{text}");
    lines[0].rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_pass_promtool() {
    let temp = tempfile::tempdir().unwrap();
    let mut s = settings(temp.path());
    s.metrics.bind = Some("127.0.0.1:0".parse().unwrap());
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    s.peers.push(cairn::config::PeerFile {
        url: "https://partner.example.org".into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        name: "partner".into(),
        base_url: None,
    });
    let pool = cairn::startup::open_store(&s).unwrap();
    {
        let mut c = pool.get().unwrap();
        cairn::app::instructors::create(&mut c, EMAIL, PASSWORD, cairn::clock::system_now()).unwrap();
        complete_profile(&mut c);
        cairn::demo::seed(&mut c).unwrap();
    }
    let app = cairn::startup::Application::build_with_pool(&s, pool.clone()).unwrap();
    let (public, metrics) = (app.base_url().to_string(), app.metrics_addr().expect("a metrics listener"));
    assert_ne!(metrics, app.addr());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    // The peer answered a minute ago, at height 0.
    let now = cairn::clock::system_now();
    {
        let mut c = pool.get().unwrap();
        let peer = cairn::db::peers::list(&mut c).unwrap().into_iter().find(|p| p.name == "partner").unwrap();
        cairn::db::peers::record_contact(&mut c, peer.id, 0, 0, 0, now - 60).unwrap();
    }

    // An award and its revocation through the API, a read of it, and a path no route has.
    let token = {
        let mut c = pool.get().unwrap();
        let who = cairn::db::instructors::find_by_email(&mut c, EMAIL).unwrap().unwrap();
        let scopes = cairn::app::tokens::parse_scopes("awards:write,read").unwrap();
        let actor = cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli);
        cairn::app::tokens::create(&mut c, &actor, who.id, "metrics", &scopes, None, now).unwrap().secret
    };
    let client = crate::helpers::client();
    let recipient = "metrics.learner@example.edu";
    let res = client
        .post(format!("{public}/api/v1/awards"))
        .bearer_auth(&token)
        .json(&json!({"task": "#el30-data", "recipient": recipient, "evidence": "https://blog.example.org/m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let res = client.get(format!("{public}/api/v1/awards/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{public}/api/v1/awards/{id}/revoke"))
        .bearer_auth(&token)
        .json(&json!({"reason": "a test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(client.get(format!("{public}/no/such/{id}")).send().await.unwrap().status(), 404);

    // Never on the public listener.
    assert_eq!(client.get(format!("{public}/metrics")).send().await.unwrap().status(), 404);

    let res = client.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain") && ct.contains("version=0.0.4"), "{ct}");
    let text = res.text().await.unwrap();

    // Requests by route pattern, method and status; a path no route has is `unmatched`.
    let route = r#"route="/api/v1/awards/{id}""#;
    assert!(sample(&text, "cairn_http_requests_total", &[route, r#"method="GET""#, r#"status="200""#]) >= 1.0);
    let revoke = r#"route="/api/v1/awards/{id}/revoke""#;
    assert!(sample(&text, "cairn_http_requests_total", &[revoke, r#"method="POST""#, r#"status="200""#]) >= 1.0);
    assert!(sample(&text, "cairn_http_requests_total", &[r#"route="unmatched""#, r#"status="404""#]) >= 1.0);
    assert!(
        sample(&text, "cairn_http_request_duration_seconds_count", &[route, r#"method="GET""#]) >= 1.0,
        "a duration histogram per route"
    );
    assert!(
        text.contains(r#"cairn_http_request_duration_seconds_bucket{method="GET",route="/api/v1/awards/{id}",le="#)
    );
    // No raw path, id or email in any label.
    assert!(!text.contains(&id) && !text.contains(recipient) && !text.contains("/no/such"), "{text}");

    assert!(sample(&text, "cairn_awards_total", &[r#"surface="api""#]) >= 1.0);
    assert!(sample(&text, "cairn_revocations_total", &[r#"surface="api""#]) >= 1.0);
    for queue in ["outbox", "webhooks", "newsletter", "mentions"] {
        let label = format!(r#"queue="{queue}""#);
        assert!(sample(&text, "cairn_queue_depth", &[&label]) >= 0.0);
        assert!(sample(&text, "cairn_queue_oldest_age_seconds", &[&label]) >= 0.0);
    }
    assert!(sample(&text, "cairn_chain_height", &[]) >= 0.0);
    assert!(sample(&text, "cairn_chain_pending_records", &[]) >= 0.0);
    assert!(sample(&text, "cairn_chain_oldest_pending_age_seconds", &[]) >= 0.0);
    assert_eq!(sample(&text, "cairn_peer_last_sync_timestamp_seconds", &[r#"peer="partner""#]), (now - 60) as f64);
    let height = sample(&text, "cairn_chain_height", &[]);
    assert_eq!(sample(&text, "cairn_peer_lag_blocks", &[r#"peer="partner""#]), height);
    assert!(sample(&text, "cairn_db_pool_wait_seconds_count", &[]) >= 1.0);
    assert_eq!(sample(&text, "cairn_store_up", &[]), 1.0);
    let version = format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&text, "cairn_build_info", &[&version]), 1.0);

    // Prometheus's own checks: the exposition format and naming conventions, and the rules.
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = promtool().args(["check", "rules"]).arg(repo("deploy/alerts.yml")).output().unwrap();
    assert!(
        out.status.success(),
        "promtool check rules deploy/alerts.yml: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    handle.stop(true).await;
    // The metrics listener stops with the server.
    let gone = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            if tokio::net::TcpStream::connect(metrics).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the metrics listener still accepts connections after the server stopped");
}
