//! The `cairn` binary itself: help, configuration errors, instructor creation, and
//! `serve --demo` on a random port.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::{client, csrf_in};

use crate::helpers::cairn_cmd as cairn;

#[test]
fn help_explains_every_command() {
    let out = cairn().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["serve", "admin", "demo", "--bind", "--data-dir", "--base-url", "CAIRN_BIND"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    // Every setting is listed, from its one declaration.
    for key in cairn::config::KEYS {
        assert!(text.contains(key.env), "{} missing from --help", key.env);
    }
    let out = cairn().args(["admin", "create-instructor", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("CAIRN_PASSWORD"));
}

/// Every subcommand, at every depth, explains itself with `--help`.
#[test]
fn every_subcommand_has_help() {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, seen: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            path.push(sub.get_name().to_string());
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(!about.is_empty(), "`cairn {}` has no description", path.join(" "));
            let out = cairn().args(path.iter()).arg("--help").output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "`cairn {} --help` failed", path.join(" "));
            assert!(text.contains(&format!("Usage: cairn {}", path.join(" "))), "{text}");
            let first_line = about.lines().next().unwrap_or_default();
            assert!(text.contains(first_line), "`cairn {} --help` lacks its description:\n{text}", path.join(" "));
            seen.push(path.join(" "));
            walk(sub, path, seen);
            path.pop();
        }
    }
    let mut seen = vec![];
    walk(&cairn::cli::command(), &mut vec![], &mut seen);
    for expected in [
        "serve",
        "admin create-instructor",
        "admin reset-password",
        "harvest",
        "feed check",
        "award",
        "revoke",
        "chain verify",
        "chain export",
        "chain import",
        "chain upgrade",
        "identity",
        "peer add",
        "peer list",
        "peer remove",
        "webmention send",
        "demo",
    ] {
        assert!(seen.iter().any(|s| s == expected), "`cairn {expected}` is not a subcommand: {seen:?}");
    }
}

#[test]
fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn().current_dir(dir.path()).env("CAIRN_BIND", "not-an-address").arg("serve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("`bind`") && err.contains("CAIRN_BIND"), "{err}");

    std::fs::write(dir.path().join("cairn.toml"), "base_url = \"ftp://nope\"\n").unwrap();
    let out = cairn().current_dir(dir.path()).arg("demo").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("`base_url`"));
    assert!(!dir.path().join("data").exists(), "nothing was created");

    std::fs::write(dir.path().join("cairn.toml"), "bnid = \"127.0.0.1:1\"\n").unwrap();
    let out = cairn().current_dir(dir.path()).arg("demo").output().unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("bnid"));
}

#[test]
fn peers_in_the_configuration_file_join_the_trust_list() {
    let dir = tempfile::tempdir().unwrap();
    let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!("[[peers]]\nurl = \"http://127.0.0.1:9\"\npublic_key = \"{key}\"\nname = \"Other U\"\n"),
    )
    .unwrap();
    let out = cairn().current_dir(dir.path()).args(["peer", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("http://127.0.0.1:9") && text.contains("Other U"), "{text}");
    std::fs::write(dir.path().join("cairn.toml"), "[[peers]]\nurl = \"http://x\"\npublic_key = \"short\"\n").unwrap();
    let out = cairn().current_dir(dir.path()).args(["peer", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("`peers`"));
}

#[test]
fn create_instructor_reads_the_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = cairn()
        .args(["admin", "create-instructor", "--email", "Grace@Example.edu", "--data-dir"])
        .arg(&data)
        .env("CAIRN_PASSWORD", "a long enough password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().contains("grace@example.edu"));
    // Twice is refused, short passwords too, and no terminal means no prompt.
    let out = cairn()
        .args(["admin", "create-instructor", "--email", "grace@example.edu"])
        .env("CAIRN_DATA_DIR", &data)
        .env("CAIRN_PASSWORD", "a long enough password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("already exists"));
    let out = cairn()
        .args(["admin", "create-instructor", "--email", "x@example.edu"])
        .env("CAIRN_DATA_DIR", &data)
        .env("CAIRN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("at least 10"));
    let out = cairn()
        .args(["admin", "create-instructor", "--email", "y@example.edu"])
        .env("CAIRN_DATA_DIR", &data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("CAIRN_PASSWORD"));
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_demo_prints_the_url_and_a_password_that_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Child(
        cairn()
            .current_dir(dir.path())
            .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut password) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while (url.is_empty() || password.is_empty()) && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else { continue };
        if let Some(rest) = line.strip_prefix("Cairn is running at ") {
            url = rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        }
        if let Some((_, pw)) = line.split_once("password: ") {
            password = pw.trim().to_string();
        }
    }
    assert!(!url.is_empty() && password.len() >= 16, "url={url} password={password}");
    assert!(dir.path().join("data/cairn.db").exists(), "default data dir under the working directory");

    let http = client();
    let course = http.get(format!("{url}/courses/e-learning-3-0")).send().await.unwrap().text().await.unwrap();
    for tag in [
        "#el30-data",
        "#el30-cloud",
        "#el30-graph",
        "#el30-identity",
        "#el30-recognition",
        "#el30-community",
        "#el30-experience",
        "#el30-agency",
        "#el30-conclusion",
    ] {
        assert!(course.contains(tag), "{tag}");
    }
    assert_eq!(course.matches("<li class=\"module\">").count(), 9);

    let login = http.get(format!("{url}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&login);
    let res = http
        .post(format!("{url}/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", cairn::demo::DEMO_EMAIL), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(http.get(format!("{url}/admin")).send().await.unwrap().text().await.unwrap().contains("E-Learning 3.0"));
    let _ = child.0.kill();

    // Seeding again leaves the course alone (no duplicate) and prints a fresh password.
    let out = cairn().current_dir(dir.path()).arg("demo").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("already there"), "{text}");
    let pool = cairn::db::open(&dir.path().join("data/cairn.db")).unwrap();
    assert_eq!(cairn::db::courses::list_courses(&mut pool.get().unwrap()).unwrap().len(), 1);
}
