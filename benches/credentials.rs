//! Open Badges 3.0 credential benchmarks:
//! 1. award latency with the credential included: 500 awards through the award use case (the
//!    Reader's and the command line's one path: assertion, baked images, chain record, signed
//!    credential made first, then stored with the outbox rows in one transaction), median and p99; and the credential's own share
//!    (building and signing one, canonicalization included);
//! 2. Cairn's own verifier (`cairn credential verify`): credentials verified per second, the
//!    proof and dates checked against a resolved DID document (CPU only), and whole
//!    verifications against the server on 127.0.0.1 (DID document, status list and chain
//!    proof fetched each time).
//!
//! Run: `cargo bench --bench credentials`. Mining is off (it has its own benchmark).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks fail loudly by design

mod common;
use common::percentile;

use std::time::Instant;

use cairn::config::Settings;
use cairn::startup::Application;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse()?;
    settings.data_dir = dir.path().to_path_buf();
    settings.harvest.enabled = false;
    settings.chain.mining = false;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let app = rt.block_on(async { Application::build(&settings) })?;
    let base = app.base_url().to_string();
    let pool = app.pool();
    let ledger = app.ledger();
    rt.spawn(app.run_until_stopped());
    let mut conn = pool.get()?;
    cairn::demo::seed(&mut conn)?;
    let task = cairn::db::courses::get_task_by_slug(&mut conn, "el30-data")?;
    println!("credential benchmarks, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // 1. Award latency, credential included.
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &base, raster: &raster, signer: ledger.key() };
    let mut lat = Vec::new();
    let mut last = String::new();
    for i in 0..500 {
        let req = cairn::app::award::AwardRequest {
            task_id: task.id,
            recipient_email: format!("learner{i}@example.edu"),
            evidence_url: Some(format!("https://learner{i}.example.org/post")),
            narrative: Some("A thoughtful post.".into()),
            ..Default::default()
        };
        let t = Instant::now();
        last = cairn::app::award::award(&mut conn, &issuer, &req, cairn::db::now())?.public_id;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "award latency with the credential (500 awards, use case: signed and baked first, stored in one transaction): median {:.2} ms, p99 {:.2} ms   goal: median < 5 ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    let award = cairn::db::awards::by_public_id(&mut conn, &last)?;
    let institution = cairn::db::institution::get(&mut conn)?;
    let did = cairn::badges::did::did_web(&base).expect("a did:web");
    let method = cairn::badges::did::method_id(&did, &ledger.key().verifying_key());
    let mut sign = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let doc = cairn::badges::vc::credential(&cairn::badges::vc::CredentialParts {
            base: &base,
            did: &did,
            institution: &institution,
            task: &task,
            public_id: &award.public_id,
            salt: &award.salt,
            identity: &award.identity,
            issued_on: award.issued_on,
            expires: award.expires,
            evidence_url: award.evidence_url.as_deref(),
            narrative: award.narrative.as_deref(),
            record_id: &"ab".repeat(32),
            status_index: 1,
        });
        cairn::badges::vc::sign(doc, ledger.key(), &method, award.issued_on)?;
        sign.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sign.sort_by(f64::total_cmp);
    println!(
        "of which building and signing the credential (eddsa-rdfc-2022, two RDFC-1.0 canonicalizations): median {:.2} ms, p99 {:.2} ms",
        percentile(&sign, 0.5),
        percentile(&sign, 0.99)
    );

    let credential: serde_json::Value = serde_json::from_str(&cairn::db::credentials::json_of(&mut conn, &last)?)?;
    let mut canon = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        cairn::badges::ld::canonicalize(&credential)?;
        canon.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    canon.sort_by(f64::total_cmp);
    println!(
        "one JSON-LD expansion + RDFC-1.0 canonicalization of a signed credential: median {:.2} ms",
        percentile(&canon, 0.5)
    );

    // 2. Cairn's verifier.
    let did_doc = cairn::badges::award::did_document(&mut conn, &base, ledger.key())?;
    let n = 300;
    let t = Instant::now();
    for _ in 0..n {
        cairn::badges::vc::verify_proof(&credential, &mut |m| cairn::badges::vc::method_in(&did_doc, m))?;
        cairn::badges::vc::validity(&credential, cairn::db::now())?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verification, proof and dates against a resolved DID document: {:.0} credentials/s ({:.2} ms each, one core)",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
    let fetcher = cairn::harvest::fetcher(&settings.harvest, std::slice::from_ref(&base), &base)?;
    let n = 100;
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            let report = cairn::badges::verify::verify(&credential, &fetcher, cairn::db::now()).await?;
            anyhow::ensure!(report.holds() && report.revoked == Some(false), "{report:?}");
        }
        Ok(())
    })?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verification as `cairn credential verify` does it (DID document, status list and chain proof fetched from 127.0.0.1 each time): {:.0} credentials/s ({:.2} ms each)",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
    Ok(())
}
