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

// ---------------------------------------------------------------------------------------------
// Every key, a signed manifest, and a restore that checks everything before it replaces anything.

const TOKEN_NAME: &str = "nightly-import";

/// Runs a `cairn` command with the chain settings of these tests on `dir`.
async fn cairn_on(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = cairn_cmd();
    c.env("CAIRN_DATA_DIR", dir).env("CAIRN_CHAIN_DIFFICULTY_BITS", "8").args(args);
    output(c).await
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn api_award(app: &TestApp, token: &str, task: &str, recipient: &str) -> reqwest::Response {
    let body = serde_json::json!({"task": task, "recipient": recipient,
        "evidence": format!("https://blog.example.org/{recipient}"), "narrative": "A clear map."});
    app.client.post(app.url("/api/v1/awards")).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn credential(app: &TestApp, id: &str) -> serde_json::Value {
    let res = app.client.get(app.url(&format!("/assertions/{id}/credential"))).send().await.unwrap();
    assert_eq!(res.status(), 200, "credential of {id}");
    res.json().await.unwrap()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn key_files(dir: &std::path::Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".key"))
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn a_rotated_institution_backed_up_during_100_awards_restores_to_a_working_one_whose_credentials_verify() {
    let app = spawn_with(|s| {
        s.chain.difficulty_bits = 8;
        s.api.requests_per_minute = 100_000;
    })
    .await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    let (token, webhook) = {
        let mut c = app.pool.get().unwrap();
        let who = cairn::db::instructors::find_by_email(&mut c, crate::helpers::EMAIL).unwrap().unwrap();
        let scopes = cairn::app::tokens::parse_scopes("awards:write,read").unwrap();
        let t = cairn::app::tokens::create(
            &mut c,
            &cairn::app::access::Actor::institution(cairn::app::access::Surface::Cli),
            who.id,
            TOKEN_NAME,
            &scopes,
            None,
            cairn::clock::system_now(),
        )
        .unwrap();
        let now = cairn::clock::system_now();
        let url = "https://hooks.example.org/services/T0/B0/hooksecret";
        let hook = cairn::db::webhooks::insert(&mut c, who.id, url, "whsec_c2VjcmV0LW9mLXRoZS1ob29r", now).unwrap();
        cairn::db::webhooks::remove(&mut c, who.id, hook.id, now).unwrap();
        (t.secret, hook)
    };

    // An award signed with the institution's own key, a rotation, and one signed with the new key.
    let res = api_award(&app, &token, "#el30-data", "before@example.edu").await;
    assert_eq!(res.status(), 201);
    let before: serde_json::Value = res.json().await.unwrap();
    let out = cairn_on(&app.data_dir, &["--base-url", &app.address, "identity", "rotate"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let new_key = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().rsplit('#').next().unwrap().to_string();
    let res = api_award(&app, &token, "#el30-data", "after@example.edu").await;
    assert_eq!(res.status(), 201);
    let after: serde_json::Value = res.json().await.unwrap();
    let old_cred = credential(&app, before["id"].as_str().unwrap()).await;
    let new_cred = credential(&app, after["id"].as_str().unwrap()).await;
    assert!(new_cred["proof"]["verificationMethod"].as_str().unwrap().ends_with(&new_key), "{new_cred}");
    assert_ne!(old_cred["proof"]["verificationMethod"], new_cred["proof"]["verificationMethod"]);

    // 100 awards in flight while the backup is taken: ten clients, ten awards each.
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut flight = Vec::new();
    for w in 0..10 {
        // A connection per request: no reuse of one the server may be closing.
        let client =
            reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(60)).build().unwrap();
        let (url, token, done) = (app.url("/api/v1/awards"), token.clone(), done.clone());
        flight.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..10 {
                let body = serde_json::json!({"task": TASKS[i % TASKS.len()], "recipient": format!("f{w}-{i}@example.edu"),
                    "evidence": format!("https://f{w}.example.org/{i}")});
                // As a script does: a request that got no answer is sent again under its
                // Idempotency-Key, which awards it exactly once.
                let mut tries = 0;
                let res = loop {
                    tries += 1;
                    let sent = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("flight-{w}-{i}"))
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(res) => break res,
                        Err(e) if tries < 3 => eprintln!("sent again after: {e}"),
                        Err(e) => panic!("award f{w}-{i}: {e}"),
                    }
                };
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answers.push((res.status(), res.text().await.unwrap()));
            }
            answers
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 5 {
        assert!(Instant::now() < deadline, "no award was acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("backup.tar.gz");
    let acknowledged_at_start = done.load(std::sync::atomic::Ordering::SeqCst);
    let out = cairn_on(&app.data_dir, &["backup", archive.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(acknowledged_at_start < 100, "the backup began while awards were in flight");
    assert!(text(&out).contains("3 key file(s)"), "institution, session and the rotated key: {}", text(&out));
    for f in flight {
        for (status, body) in f.await.unwrap() {
            assert_eq!(status, 201, "{body}");
        }
    }
    let addr = app.address.clone();
    let stopped = app.stop().await;
    // Restore into a fresh dir, refusing any other institution.
    let fresh = work.path().join("restored");
    let did = String::from_utf8_lossy(&cairn_on(&stopped.0, &["identity"]).await.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("institution DID (the same key): ").map(str::to_string))
        .unwrap();
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    let out = cairn_on(
        &fresh,
        &["restore", archive.to_str().unwrap(), "--data-dir", fresh.to_str().unwrap(), "--expect-institution", &did],
    )
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("Credentials are signed with {new_key}")), "{said}");
    assert!(said.contains(crate::helpers::EMAIL), "the instructors are listed: {said}");
    assert!(said.contains(&format!("{TOKEN_NAME:?} of {}", crate::helpers::EMAIL)), "{said}");
    assert!(said.contains(&format!("#{} to https://hooks.example.org of", webhook.id)), "{said}");
    for secret in [token.as_str(), webhook.secret.as_str(), "hooksecret"] {
        assert!(!said.contains(secret), "a secret is printed: {said}");
    }

    // Every key, byte for byte, at 0600 in a 0700 dir.
    assert_eq!(key_files(&fresh), key_files(&stopped.0));
    assert_eq!(key_files(&fresh).len(), 3, "{:?}", key_files(&fresh));
    for k in key_files(&fresh) {
        assert_eq!(std::fs::read(fresh.join(&k)).unwrap(), std::fs::read(stopped.0.join(&k)).unwrap(), "{k}");
        #[cfg(unix)]
        assert_eq!(mode(&fresh.join(&k)), 0o600, "{k}");
    }
    #[cfg(unix)]
    assert_eq!(mode(&fresh), 0o700);
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".cairn-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Served on the same address (the credentials name its did:web), the restored instance
    // awards, answers the status list, and every credential verifies independently.
    let mut s = settings(&fresh);
    s.bind = addr.strip_prefix("http://").unwrap().parse().unwrap();
    s.chain.difficulty_bits = 8;
    s.chain.mining = false;
    s.api.requests_per_minute = 100_000;
    let copy = start_with(&s).await;
    assert_eq!(copy.address, addr);
    let res = api_award(&copy, &token, "#el30-cloud", "restored@example.edu").await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let made: serde_json::Value = res.json().await.unwrap();
    let status = copy.client.get(copy.url("/credentials/status/1")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let restored_cred = credential(&copy, made["id"].as_str().unwrap()).await;
    assert!(restored_cred["proof"]["verificationMethod"].as_str().unwrap().ends_with(&new_key));
    for (what, cred) in
        [("before the rotation", &old_cred), ("after it", &new_cred), ("after the restore", &restored_cred)]
    {
        let v = crate::credentials::verify_js(cred).await;
        assert!(v.verified && v.signature && v.revoked == Some(false), "{what}: {v:?}");
    }
    // The rotation works on the restored instance too.
    let out = cairn_on(&fresh, &["--base-url", &addr, "identity", "rotate"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let _ = copy.stop().await;
}

/// One member of a hand-made archive: a file, or a symbolic link to `link`.
struct Entry {
    name: String,
    bytes: Vec<u8>,
    link: Option<String>,
}

fn read_archive(path: &std::path::Path) -> Vec<Entry> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            Entry { name, bytes, link: None }
        })
        .collect()
}

fn write_archive(path: &std::path::Path, entries: &[Entry]) {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    ));
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        match &e.link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &e.name, target).unwrap();
            }
            None => {
                h.set_size(e.bytes.len() as u64);
                h.set_cksum();
                tar.append_data(&mut h, &e.name, e.bytes.as_slice()).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn member<'a>(entries: &'a mut [Entry], name: &str) -> &'a mut Entry {
    entries.iter_mut().find(|e| e.name == name).unwrap()
}

/// Lists every member again in the manifest (size and SHA-256) and signs it with `key`, as
/// someone holding that key would.
fn resign(entries: &mut [Entry], key: &cairn_chain::SigningKey) {
    use ed25519_dalek::Signer as _;
    use sha2::Digest as _;
    let listed: Vec<serde_json::Value> = entries
        .iter()
        .filter(|e| e.name != "manifest.json" && e.name != "manifest.sig")
        .map(|e| {
            serde_json::json!({"name": e.name, "size": e.bytes.len(),
                "sha256": cairn_chain::to_hex(&sha2::Sha256::digest(&e.bytes))})
        })
        .collect();
    let m = member(entries, "manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    manifest["members"] = serde_json::Value::Array(listed);
    m.bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let signed = [b"cairn-backup-manifest-v2\n".as_slice(), &m.bytes].concat();
    let sig = cairn_chain::to_hex(&key.sign(&signed).to_bytes());
    member(entries, "manifest.sig").bytes = sig.into_bytes();
}

/// The archive's database with `sql` run on it.
fn altered_db(entries: &mut [Entry], sql: &str) {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.db");
    let db = member(entries, "cairn.db");
    std::fs::write(&path, &db.bytes).unwrap();
    {
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute(sql).unwrap();
    }
    db.bytes = std::fs::read(&path).unwrap();
}

/// Every file under `dir` with its bytes (nothing for a missing dir).
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut all: Vec<(String, Vec<u8>)> = rd
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn every_tampered_archive_is_refused_with_its_reason_and_the_data_dir_is_left_as_it_was() {
    let app = spawn_with(|s| s.chain.difficulty_bits = 8).await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    {
        let mut c = app.pool.get().unwrap();
        let raster = cairn::badges::bake::RasterCache::default();
        let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
        for (i, task) in TASKS.iter().take(6).enumerate() {
            let req = cairn::app::award::HashtagAward {
                task: task.to_string(),
                recipient: format!("t{i}@example.edu"),
                evidence: format!("https://t{i}.example.org/post"),
                ..Default::default()
            };
            cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
        }
    }
    let dir = app.data_dir.clone();

    // A rotation whose key file is then lost, and one more rotation: it needs only the lost
    // key's public half, and leaves exactly one new key file.
    let rotate = |dir: std::path::PathBuf| async move { cairn_on(&dir, &["identity", "rotate"]).await };
    let out = rotate(dir.clone()).await;
    assert!(out.status.success(), "{}", text(&out));
    let lost: Vec<String> = key_files(&dir).into_iter().filter(|k| k.starts_with("credential-")).collect();
    assert_eq!(lost.len(), 1);
    std::fs::remove_file(dir.join(&lost[0])).unwrap();
    let out = rotate(dir.clone()).await;
    assert!(out.status.success(), "rotating after the current key's file was lost: {}", text(&out));
    let now_keys: Vec<String> = key_files(&dir).into_iter().filter(|k| k.starts_with("credential-")).collect();
    assert_eq!(now_keys.len(), 1, "{now_keys:?}");
    assert_ne!(now_keys, lost);

    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.tar.gz");
    let out = cairn_on(&dir, &["backup", good.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Note: {}", lost[0])), "the lost key is reported: {}", text(&out));
    // The data dir's own chain settings are written; other ones given to the command are refused.
    let mut c = cairn_cmd();
    c.env("CAIRN_DATA_DIR", &dir).env("CAIRN_CHAIN_DIFFICULTY_BITS", "9").args(["backup", "other.tar.gz"]);
    let other = output(c).await;
    assert!(!other.status.success());
    assert!(
        text(&other).contains("the data dir's chain is network") && text(&other).contains("8 bits"),
        "{}",
        text(&other)
    );
    let institution = {
        let seed: [u8; 32] = std::fs::read(dir.join("institution.key")).unwrap().try_into().unwrap();
        cairn_chain::SigningKey::from_bytes(&seed)
    };
    let _stopped = app.stop().await;

    // A data dir that a restore with --force would replace.
    let target = work.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("cairn.db"), b"the database in place").unwrap();
    std::fs::write(target.join("institution.key"), [7u8; 32]).unwrap();
    let before = tree(&target);

    type Tamper = Box<dyn Fn(&mut Vec<Entry>)>;
    let (k1, k2) = (institution.clone(), institution.clone());
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "extra trigger",
            Box::new(move |e| {
                altered_db(
                    e,
                    "CREATE TRIGGER leak AFTER INSERT ON awards BEGIN \
                     UPDATE institution SET name = (SELECT email FROM authors LIMIT 1); END;",
                );
                resign(e, &k1);
            }),
            "extra trigger \"leak\" on \"awards\"",
        ),
        (
            "extra table",
            Box::new(move |e| {
                altered_db(e, "CREATE TABLE exfil (x TEXT);");
                resign(e, &k2);
            }),
            "extra table \"exfil\"",
        ),
        (
            "symlinked member",
            Box::new(|e| {
                let db = member(e, "cairn.db");
                db.link = Some("/etc/passwd".into());
                db.bytes.clear();
            }),
            "member cairn.db is not a regular file",
        ),
        (
            "edited member",
            Box::new(|e| {
                let db = member(e, "cairn.db");
                let last = db.bytes.len() - 1;
                db.bytes[last] ^= 1;
            }),
            "member cairn.db was changed",
        ),
        (
            "signature of another key",
            Box::new(|e| {
                altered_db(e, "UPDATE institution SET name = 'Intruder';");
                resign(e, &cairn_chain::SigningKey::from_bytes(&[9u8; 32]));
            }),
            "the manifest is not signed by the institution key it names",
        ),
        (
            "unexpected member",
            Box::new(|e| e.push(Entry { name: "notes.txt".into(), bytes: b"x".to_vec(), link: None })),
            "unexpected member \"notes.txt\"",
        ),
        (
            "format 1",
            Box::new(|e| {
                let m = member(e, "manifest.json");
                let mut v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
                v["format"] = 1.into();
                m.bytes = serde_json::to_vec(&v).unwrap();
            }),
            "this archive is in format 1",
        ),
    ];
    for (what, tamper, reason) in cases {
        let mut entries = read_archive(&good);
        tamper(&mut entries);
        let bad = work.path().join("bad.tar.gz");
        write_archive(&bad, &entries);
        let out = cairn_on(&target, &["restore", bad.to_str().unwrap(), "--force"]).await;
        assert!(!out.status.success(), "{what} was restored: {}", text(&out));
        assert!(text(&out).contains(reason), "{what}: {}", text(&out));
        assert_eq!(tree(&target), before, "{what}: the data dir changed");
        // A missing target is not even created.
        let absent = work.path().join("absent");
        let out = cairn_on(&absent, &["restore", bad.to_str().unwrap()]).await;
        assert!(!out.status.success() && text(&out).contains(reason), "{what}: {}", text(&out));
        assert!(!absent.exists(), "{what}");
        let stray: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".cairn-restore-"))
            .collect();
        assert!(stray.is_empty(), "{what}: {stray:?}");
    }

    // An archive of another institution, when this one is expected.
    let stranger = cairn_chain::to_hex(&cairn_chain::SigningKey::from_bytes(&[3u8; 32]).verifying_key().to_bytes());
    let out =
        cairn_on(&target, &["restore", good.to_str().unwrap(), "--force", "--expect-institution", &stranger]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("not of the expected institution"), "{}", text(&out));
    assert_eq!(tree(&target), before);

    // The untouched archive replaces the data dir, and says what was missing.
    let ours = cairn_chain::to_hex(&institution.verifying_key().to_bytes());
    let out = cairn_on(&target, &["restore", good.to_str().unwrap(), "--force", "--expect-institution", &ours]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Note: {}", lost[0])), "{}", text(&out));
    assert_eq!(std::fs::read(target.join("institution.key")).unwrap(), institution.to_bytes());
    assert_eq!(key_files(&target), key_files(&dir));
    let verify = cairn_on(&target, &["chain", "verify"]).await;
    assert!(verify.status.success(), "{}", text(&verify));
}
