//! `cairn backup` while the server runs and awards flow, and `cairn restore` into a fresh dir.

use std::io::{BufRead as _, Read as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{TestApp, cairn_cmd, settings, spawn_with, start_with};

const WRITERS: usize = 4;
const PER_WRITER: usize = 50;
const TASKS: [&str; 9] = [
    "#el30-data",
    "#el30-cloud",
    "#el30-graph",
    "#el30-identity",
    "#el30-recognition",
    "#el30-community",
    "#el30-experience",
    "#el30-agency",
    "#el30-conclusion",
];

fn cmd(app_dir: &std::path::Path, base: &str) -> Command {
    let mut c = cairn_cmd();
    c.env("CAIRN_DATA_DIR", app_dir).env("CAIRN_BASE_URL", base).env("CAIRN_CHAIN_DIFFICULTY_BITS", "8");
    c
}

async fn output(mut c: Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(180), tokio::task::spawn_blocking(move || c.output()))
        .await
        .expect("the command finishes in time")
        .unwrap()
        .unwrap()
}

/// The public ids of the awards a writer's output acknowledged.
fn ids_in(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(": awarded "))
        .map(|l| l.rsplit('/').next().unwrap().trim().to_string())
        .collect()
}

async fn running_app() -> TestApp {
    let app = spawn_with(|s| s.chain.difficulty_bits = 8).await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    app
}

#[tokio::test]
async fn a_backup_taken_during_200_concurrent_awards_restores_every_acknowledged_award_with_the_same_key() {
    let app = running_app().await;
    let work = tempfile::tempdir().unwrap();

    // Four writers award 50 badges each from the command line, as fast as they can, while
    // the server runs and mines.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let csv = work.path().join(format!("w{w}.csv"));
        let mut rows = String::from("task,recipient,evidence,name,narrative\n");
        for i in 0..PER_WRITER {
            let task = TASKS[i % TASKS.len()];
            rows.push_str(&format!("{task},l{w}-{i}@example.org,https://l{w}.example.org/{i},,\n"));
        }
        std::fs::write(&csv, rows).unwrap();
        let mut c = cmd(&app.data_dir, &app.address);
        let mut child = c
            .args(["award", "--csv", csv.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acked = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                acked.lock().unwrap().push(line);
            }
        });
        writers.push((child, reader));
    }

    // Once some awards are acknowledged, the backup begins; what was acknowledged by then
    // must be in it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids_in(&acked.lock().unwrap()).len() < 30 {
        assert!(Instant::now() < deadline, "the writers acknowledged too few awards");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = ids_in(&acked.lock().unwrap());
    let archive = work.path().join("backup.tar.gz");
    let mut b = cmd(&app.data_dir, &app.address);
    b.env("CAIRN_SMTP_PASSWORD", "s3cret-pw-never-in-backups").args(["backup", archive.to_str().unwrap()]);
    let out = output(b).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Backed up"), "{out:?}");

    for (child, reader) in writers {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let refused: Vec<String> =
            acked.lock().unwrap().iter().filter(|l| !l.contains(": awarded ")).cloned().collect();
        assert!(out.status.success(), "a writer failed: {}{refused:?}", String::from_utf8_lossy(&out.stderr));
        reader.join().unwrap();
    }
    let all = ids_in(&acked.lock().unwrap());
    assert_eq!(all.len(), WRITERS * PER_WRITER, "every award was made");
    assert!(before.len() < all.len(), "the backup began while awards were still flowing");

    // The archive holds no secret setting.
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap()).read_to_end(&mut plain).unwrap();
    assert!(!plain.windows(10).any(|w| w == b"s3cret-pw-"), "the SMTP password is in the backup");
    assert!(String::from_utf8_lossy(&plain).contains("[redacted]"));

    // A non-empty data dir is refused without --force.
    let fresh = work.path().join("restored");
    let mut r = cairn_cmd();
    r.args(["restore", archive.to_str().unwrap(), "--data-dir", app.data_dir.to_str().unwrap()]);
    let refused = output(r).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not empty; add --force"), "{refused:?}");

    let mut r = cairn_cmd();
    r.env("CAIRN_CHAIN_DIFFICULTY_BITS", "8").args([
        "restore",
        archive.to_str().unwrap(),
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    let restored = output(r).await;
    let said = String::from_utf8_lossy(&restored.stdout).into_owned();
    assert!(restored.status.success(), "{said}{}", String::from_utf8_lossy(&restored.stderr));
    assert!(said.contains("The chain is valid"), "{said}");

    // The same identity key.
    let key = |d: &std::path::Path| std::fs::read(d.join("institution.key")).unwrap();
    assert_eq!(key(&fresh), key(&app.data_dir));
    let identity = |d: &std::path::Path| {
        let mut c = cairn_cmd();
        c.env("CAIRN_DATA_DIR", d).env("CAIRN_CHAIN_DIFFICULTY_BITS", "8").arg("identity");
        c
    };
    let (a, b) = (output(identity(&app.data_dir)).await, output(identity(&fresh)).await);
    assert!(a.status.success() && b.status.success());
    assert_eq!(String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b.stdout));
    let mut verify = cairn_cmd();
    verify.env("CAIRN_DATA_DIR", &fresh).env("CAIRN_CHAIN_DIFFICULTY_BITS", "8").args(["chain", "verify"]);
    let verified = output(verify).await;
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    // The restored instance serves every award acknowledged before the backup began.
    let _stopped = app.stop().await;
    let mut s = settings(&fresh);
    s.chain.difficulty_bits = 8;
    s.chain.mining = false;
    let copy = start_with(&s).await;
    for id in &before {
        let res =
            copy.client.get(copy.url(&format!("/assertions/{id}"))).header("accept", "application/ld+json").send();
        let res = res.await.unwrap();
        assert_eq!(res.status(), 200, "{id}");
        let doc: serde_json::Value = res.json().await.unwrap();
        assert!(doc["id"].as_str().unwrap().ends_with(id.as_str()), "{doc}");
    }
}

#[test]
fn restore_refuses_an_archive_that_is_not_a_backup() {
    let work = tempfile::tempdir().unwrap();
    let bogus = work.path().join("x.tar.gz");
    std::fs::write(&bogus, b"not an archive").unwrap();
    let out = cairn_cmd()
        .args(["restore", bogus.to_str().unwrap(), "--data-dir", work.path().join("d").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a Cairn backup"), "{out:?}");
}

#[tokio::test]
async fn the_server_takes_scheduled_backups_and_keeps_the_newest() {
    let backups = tempfile::tempdir().unwrap();
    for day in ["20200101", "20200102", "20200103"] {
        std::fs::write(backups.path().join(format!("cairn-backup-{day}T000000Z.tar.gz")), b"old").unwrap();
    }
    std::fs::write(backups.path().join("notes.txt"), b"not an archive: left alone").unwrap();
    let dir = backups.path().to_path_buf();
    let app = spawn_with(|s| {
        s.backup.dir = Some(dir);
        s.backup.keep = 2;
    })
    .await;
    let names = || {
        let mut n: Vec<String> =
            std::fs::read_dir(backups.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        n.sort();
        n
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // Three old archives and a note: a new archive, then the oldest two pruned, leaves three.
    while names().len() != 3 {
        assert!(Instant::now() < deadline, "no scheduled backup: {:?}", names());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = names();
    assert_eq!(n[0], "cairn-backup-20200103T000000Z.tar.gz", "{n:?}");
    assert!(n[1].starts_with("cairn-backup-") && n[1] > n[0], "{n:?}");
    assert_eq!(n[2], "notes.txt");
    // The new archive restores.
    let fresh = tempfile::tempdir().unwrap();
    let mut r = cairn_cmd();
    r.args([
        "restore",
        backups.path().join(&n[1]).to_str().unwrap(),
        "--data-dir",
        fresh.path().join("d").to_str().unwrap(),
    ]);
    let out = output(r).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = app.stop().await;
}
