//! Open Badges 3.0 credential benchmarks:
//! 1. award latency with the credential included: 500 awards through the award use case (the
//!    Reader's and the command line's one path: assertion, baked images, chain record, signed
//!    credential made first, then stored with the outbox rows in one transaction), median and p99; and the credential's own share
//!    (building and signing one, canonicalization included);
//! 2. Cairn's own verifier (`cairn credential verify`): credentials verified per second, the
//!    proof and dates checked against a resolved DID document (CPU only), and whole
//!    verifications against the server on 127.0.0.1 (DID document, status list and chain
//!    proof fetched each time);
//! 3. the verifier's bounds on a credential from elsewhere: refusing a ring of 3,000 blank
//!    nodes (goal: under 1 s; canonicalizing it would take hours), and checking a ring at the
//!    200-node cap (the slowest kind of credential still accepted).
//!
//! Run: `cargo bench --bench credentials`. Mining is off (it has its own benchmark).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

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
        last = cairn::app::award::award(&mut conn, &issuer, &req, cairn::clock::system_now())?.public_id;
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
    let bounds = cairn::badges::ld::Bounds::foreign(std::time::Duration::from_secs(3600));
    let n = 300;
    let t = Instant::now();
    for _ in 0..n {
        cairn::badges::vc::verify_proof(&credential, &mut |m| cairn::badges::vc::method_in(&did_doc, m), &bounds)?;
        cairn::badges::vc::validity(&credential, cairn::clock::system_now())?;
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
            let report = cairn::badges::verify::verify(
                &credential,
                &fetcher,
                cairn::clock::system_now(),
                cairn::badges::ld::DEFAULT_BUDGET,
            )
            .await?;
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

    // 3. A credential from elsewhere, held to the verifier's bounds.
    let budget = cairn::badges::ld::DEFAULT_BUDGET;
    for (nodes, rounds) in [(3_000, 5), (cairn::badges::ld::MAX_FOREIGN_BLANK_NODES - 10, 3)] {
        let doc = ring(nodes);
        let bytes = doc.to_string().len();
        let mut times = Vec::new();
        let mut outcome = String::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let result = rt.block_on(cairn::badges::verify::verify(&doc, &fetcher, cairn::clock::system_now(), budget));
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            outcome = match result {
                Ok(r) => format!("checked ({})", r.method),
                Err(e) => e.to_string(),
            };
        }
        times.sort_by(f64::total_cmp);
        println!(
            "`credential verify` on a ring of {nodes} blank nodes ({} KB): median {:.1} ms, worst {:.1} ms; {outcome}{}",
            bytes / 1000,
            percentile(&times, 0.5),
            times[times.len() - 1],
            if nodes > 1000 { "   goal: refused in < 1 s" } else { "" }
        );
    }
    Ok(())
}

/// A credential whose evidence is a ring of `n` Profiles, each the next one's parent
/// organization: blank nodes that all look alike, canonicalization's worst case. Its proof
/// names a did:key issuer (offline) with a signature of zeros: the bounds are met first.
fn ring(n: usize) -> serde_json::Value {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let mb = cairn::badges::did::multibase(&key.verifying_key());
    let did = format!("did:key:{mb}");
    let evidence: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"id": format!("_:r{i}"), "type": ["Profile"], "parentOrg": format!("_:r{}", (i + 1) % n)}))
        .collect();
    serde_json::json!({
        "@context": [cairn::badges::ld::CREDENTIALS_V2, cairn::badges::ld::OB_V3],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Ring",
        "issuer": {"id": did, "type": ["Profile"], "name": "Elsewhere"},
        "validFrom": "2024-01-01T00:00:00Z",
        "credentialSubject": {"type": ["AchievementSubject"], "achievement": {
            "id": "urn:uuid:8f0e2a54-7d1b-4c6e-9a3f-2b5d6c7e8f90", "type": ["Achievement"], "name": "Ring",
            "description": "d", "criteria": {"narrative": "n"}}},
        "evidence": evidence,
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-rdfc-2022",
            "created": "2024-01-01T00:00:00Z",
            "verificationMethod": format!("{did}#{mb}"),
            "proofPurpose": "assertionMethod",
            "proofValue": format!("z{}", bs58::encode([0u8; 64]).into_string()),
        },
    })
}
