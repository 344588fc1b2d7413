//! Open Badges 3.0 credentials, checked by a verifier Cairn did not write: the Digital
//! Credentials Consortium's `@digitalcredentials/vc` with the `eddsa-rdfc-2022` cryptosuite
//! (scripts/vc), offline, resolving the server's `did:web` over loopback.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Installs the pinned verifier once per test run.
fn verifier() -> PathBuf {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/vc");
    let ready = READY.get_or_init(|| {
        let out = Command::new("bash").arg(dir.join("setup.sh")).output().map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    });
    if let Err(e) = ready {
        panic!("the credential verifier cannot be installed (scripts/vc/setup.sh):\n{e}");
    }
    dir.join("verify.mjs")
}

/// What the independent verifier says of a credential.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) verified: bool,
    pub(crate) signature: bool,
    pub(crate) revoked: Option<bool>,
    pub(crate) errors: Vec<String>,
}

pub(crate) async fn verify_js(credential: &Value) -> Verdict {
    let script = verifier();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), credential.to_string()).unwrap();
    let path = file.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || Command::new("node").arg(script).arg(path).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!("the verifier printed no verdict:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    Verdict {
        verified: v["verified"].as_bool().unwrap(),
        signature: v["signature"].as_bool().unwrap(),
        revoked: v["revoked"].as_bool(),
        errors: v["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap_or_default().to_string()).collect(),
    }
}

/// A server with the demo course and one award of `#el30-data` made through the award use
/// case; returns the award's public id.
async fn app_with_award(evidence: &str) -> (TestApp, String) {
    let app = spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    // The badge expires a month after it is awarded, so the credential has a `validUntil`.
    {
        use cairn::db::schema::tasks;
        use diesel::prelude::*;
        diesel::update(tasks::table.filter(tasks::hashtag.eq("#el30-data")))
            .set(tasks::expires_days.eq(Some(30i64)))
            .execute(&mut c)
            .unwrap();
    }
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-data".into(),
        recipient: "Lin@Example.edu".into(),
        evidence: evidence.into(),
        narrative: Some("A clear post on data.".into()),
        ..Default::default()
    };
    let award = cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
    drop(c);
    (app, award.public_id)
}

async fn get_credential(app: &TestApp, id: &str) -> (reqwest::header::HeaderMap, Value) {
    let res = app.client.get(app.url(&format!("/assertions/{id}/credential"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

#[tokio::test]
async fn an_award_is_a_signed_open_badge_credential_that_an_independent_verifier_accepts() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (h, cred) = get_credential(&app, &id).await;
    assert_eq!(h["content-type"], "application/vc+ld+json");
    assert_eq!(h["access-control-allow-origin"], "*");

    let did = format!("did:web:{}", app.address.trim_start_matches("http://").replace(':', "%3A"));
    assert_eq!(
        cred["@context"],
        json!(["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"])
    );
    assert_eq!(cred["type"], json!(["VerifiableCredential", "OpenBadgeCredential"]));
    assert_eq!(cred["issuer"]["id"], did);
    assert_eq!(cred["issuer"]["type"], json!(["Profile"]));
    let subject = &cred["credentialSubject"];
    assert_eq!(subject["type"], json!(["AchievementSubject"]));
    let identity = &subject["identifier"][0];
    assert_eq!(identity["type"], "IdentityObject");
    assert_eq!(identity["identityType"], "emailAddress");
    assert_eq!(identity["hashed"], true);
    let salt = identity["salt"].as_str().unwrap();
    assert_eq!(identity["identityHash"], cairn::badges::ob::identity_hash("lin@example.edu", salt));
    assert!(!cred.to_string().contains("lin@example.edu"), "the plain address is never in the credential");
    // The same salt and hash as the Open Badges 2.0 assertion.
    let assertion: Value = app
        .client
        .get(app.url(&format!("/assertions/{id}")))
        .header("accept", "application/ld+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assertion["recipient"]["salt"], salt);
    assert_eq!(assertion["recipient"]["identity"], identity["identityHash"]);
    let achievement = &subject["achievement"];
    assert_eq!(achievement["type"], json!(["Achievement"]));
    assert_eq!(achievement["tag"], json!(["#el30-data"]));
    for field in ["name", "description"] {
        assert!(achievement[field].as_str().is_some_and(|s| !s.is_empty()), "{field}: {achievement}");
    }
    assert!(achievement["criteria"]["narrative"].as_str().is_some(), "{achievement}");
    assert_eq!(achievement["image"]["type"], "Image");
    assert_eq!(cred["evidence"][0]["id"], "https://lin.example.org/data");
    assert_eq!(cred["evidence"][0]["narrative"], "A clear post on data.");
    assert!(cred["validFrom"].as_str().unwrap().ends_with('Z'));
    let until = chrono::DateTime::parse_from_rfc3339(cred["validUntil"].as_str().unwrap()).unwrap();
    let from = chrono::DateTime::parse_from_rfc3339(cred["validFrom"].as_str().unwrap()).unwrap();
    assert_eq!((until - from).num_days(), 30);
    assert_eq!(cred["credentialStatus"]["type"], "BitstringStatusListEntry");
    assert_eq!(cred["credentialStatus"]["statusPurpose"], "revocation");
    assert_eq!(cred["proof"]["type"], "DataIntegrityProof");
    assert_eq!(cred["proof"]["cryptosuite"], "eddsa-rdfc-2022");
    assert!(cred["proof"]["verificationMethod"].as_str().unwrap().starts_with(&format!("{did}#z6Mk")));

    // The DID document lists the key as a Multikey.
    let doc: Value = app.client.get(app.url("/.well-known/did.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["id"], did);
    assert_eq!(doc["verificationMethod"][0]["type"], "Multikey");
    assert_eq!(doc["verificationMethod"][0]["id"], cred["proof"]["verificationMethod"]);
    assert!(doc["verificationMethod"][0]["publicKeyMultibase"].as_str().unwrap().starts_with("z6Mk"));

    let v = verify_js(&cred).await;
    assert!(v.verified && v.signature && v.errors.is_empty(), "{v:?}\n{cred:#}");
    assert_eq!(v.revoked, Some(false), "{v:?}");
}

#[tokio::test]
async fn any_changed_field_fails_independent_verification() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (_, cred) = get_credential(&app, &id).await;
    let other_did = format!("did:web:{}", "127.0.0.1%3A1");
    type Change = Box<dyn Fn(&mut Value)>;
    let changes: Vec<(&str, Change)> = vec![
        ("achievement name", Box::new(|c| c["credentialSubject"]["achievement"]["name"] = json!("Something else"))),
        ("credential name", Box::new(|c| c["name"] = json!("Something else"))),
        (
            "recipient hash",
            Box::new(|c| {
                c["credentialSubject"]["identifier"][0]["identityHash"] =
                    json!(cairn::badges::ob::identity_hash("eve@example.org", "x"))
            }),
        ),
        ("evidence", Box::new(|c| c["evidence"][0]["id"] = json!("https://eve.example.org/copied"))),
        ("validFrom", Box::new(|c| c["validFrom"] = json!("2020-01-01T00:00:00Z"))),
        ("validUntil", Box::new(|c| c["validUntil"] = json!("2099-01-01T00:00:00Z"))),
        ("issuer name", Box::new(|c| c["issuer"]["name"] = json!("Another University"))),
        ("issuer", Box::new(move |c| c["issuer"]["id"] = json!(other_did.clone()))),
    ];
    for (what, change) in changes {
        let mut tampered = cred.clone();
        change(&mut tampered);
        assert_ne!(tampered, cred, "{what}: the change must change something");
        let v = verify_js(&tampered).await;
        assert!(!v.verified && !v.signature, "changing the {what} still verified: {v:?}");
    }
}

#[tokio::test]
async fn a_revoked_award_is_reported_revoked_through_the_status_list() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (_, cred) = get_credential(&app, &id).await;
    let list_url = cred["credentialStatus"]["statusListCredential"].as_str().unwrap().to_string();
    let before: Value = app.client.get(&list_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(before["type"], json!(["VerifiableCredential", "BitstringStatusListCredential"]));
    assert_eq!(verify_js(&cred).await.revoked, Some(false));

    revoke_from_another_process(&app, &id).await;

    let after: Value = app.client.get(&list_url).send().await.unwrap().json().await.unwrap();
    assert_ne!(
        before["credentialSubject"]["encodedList"], after["credentialSubject"]["encodedList"],
        "the very next request sees the bit flipped"
    );
    let index: i64 = cred["credentialStatus"]["statusListIndex"].as_str().unwrap().parse().unwrap();
    let encoded = after["credentialSubject"]["encodedList"].as_str().unwrap();
    assert!(cairn::badges::vc::list_bit(encoded, index).unwrap());
    let v = verify_js(&cred).await;
    assert_eq!(v.revoked, Some(true), "{v:?}");
    assert!(v.signature && !v.verified, "{v:?}");
}

#[tokio::test]
async fn both_baked_credential_images_unbake_to_a_credential_that_verifies_and_the_ob2_images_stay() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (_, served) = get_credential(&app, &id).await;
    let get = |path: String| {
        let client = app.client.clone();
        let url = app.url(&path);
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let mime = res.headers()["content-type"].to_str().unwrap().to_string();
            (mime, res.bytes().await.unwrap().to_vec())
        }
    };
    use cairn::badges::bake;
    let (mime, png) = get(format!("/assertions/{id}/credential.png")).await;
    assert_eq!(mime, "image/png");
    image::load_from_memory(&png).expect("a valid PNG");
    let from_png: Value = serde_json::from_str(&bake::unbake_png_as(&png, "openbadgecredential").unwrap()).unwrap();
    assert_eq!(from_png, served);
    assert_eq!(png.windows(b"openbadgecredential".len()).filter(|w| w == b"openbadgecredential").count(), 1);
    assert!(bake::unbake_png(&png).is_none(), "the OB 3.0 image carries the credential only");

    let (mime, svg) = get(format!("/assertions/{id}/credential.svg")).await;
    assert_eq!(mime, "image/svg+xml");
    let svg = String::from_utf8(svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let first = doc.root_element().first_element_child().unwrap();
    assert_eq!(first.tag_name().name(), "credential");
    assert_eq!(first.tag_name().namespace(), Some("https://purl.imsglobal.org/ob/v3p0"));
    let from_svg: Value = serde_json::from_str(first.text().unwrap()).unwrap();
    assert_eq!(from_svg, served);

    for unbaked in [from_png, from_svg] {
        let v = verify_js(&unbaked).await;
        assert!(v.verified && v.revoked == Some(false), "{v:?}");
    }

    // The Open Badges 2.0 images still carry the hosted assertion alone.
    let (_, png2) = get(format!("/assertions/{id}/badge.png")).await;
    let assertion: Value = serde_json::from_str(&bake::unbake_png(&png2).unwrap()).unwrap();
    assert_eq!(assertion["type"], "Assertion");
    assert!(bake::unbake_png_as(&png2, "openbadgecredential").is_none());
    let (_, svg2) = get(format!("/assertions/{id}/badge.svg")).await;
    let svg2 = String::from_utf8(svg2).unwrap();
    assert!(svg2.contains("<openbadges:assertion verify="), "{svg2}");
    assert!(bake::unbake_svg_credential(&svg2).is_none());
}

#[tokio::test]
async fn the_credential_states_its_chain_record_which_the_proof_serves() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (_, cred) = get_credential(&app, &id).await;
    let (record_id, proof_url) = cairn::badges::vc::chain_binding(&cred).expect("a chain evidence item");
    assert_eq!(proof_url, app.url(&format!("/assertions/{id}/proof")));
    let proof: Value = app.client.get(&proof_url).send().await.unwrap().json().await.unwrap();
    let record = &proof["record"];
    assert_eq!(record["id"], record_id.as_str());
    // The id is the SHA-256 of 0x00 and the record's encoding, checked here from the bytes.
    let bytes = hex::decode(record["bytes_hex"].as_str().unwrap()).unwrap();
    use sha2::Digest as _;
    let leaf_hex = hex::encode(sha2::Sha256::digest([&[0u8][..], &bytes].concat()));
    assert_eq!(leaf_hex, record_id);
    assert_eq!(record["assertion_url"], app.url(&format!("/assertions/{id}")));
    assert_eq!(record["recipient_hash"], cred["credentialSubject"]["identifier"][0]["identityHash"]);

    // The statement is signed: pointing it at another record fails verification.
    let mut moved = cred.clone();
    let items = moved["evidence"].as_array_mut().unwrap();
    let chain = items.iter_mut().find(|e| e["id"] == proof_url.as_str()).unwrap();
    chain["description"] = json!(format!("{}{}", cairn::badges::vc::CHAIN_EVIDENCE_PREFIX, "00".repeat(32)));
    assert!(!verify_js(&moved).await.signature);

    // The verification page offers the credential.
    let page = app
        .client
        .get(app.url(&format!("/assertions/{id}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("href=\"{}/credential\"", app.url(&format!("/assertions/{id}")))), "{page}");
    assert!(page.contains(">Download credential</a>"));
}

/// Revokes an award with `cairn revoke`, as an instructor at the command line would; the
/// server sees the commit from its next request on (the command takes longer to start than
/// the server's document cache trusts its last look at the store).
async fn revoke_from_another_process(app: &TestApp, id: &str) {
    let (dir, base, id) = (app.data_dir.clone(), app.address.clone(), id.to_string());
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::cairn_cmd()
            .env("CAIRN_DATA_DIR", &dir)
            .env("CAIRN_BASE_URL", &base)
            .args(["revoke", &id, "--reason", "Plagiarised"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run_verify(file: &std::path::Path, allow: Option<&str>) -> (bool, String) {
    let mut cmd = crate::helpers::cairn_cmd();
    if let Some(origin) = allow {
        cmd.env("CAIRN_ALLOW_ORIGINS", origin);
    }
    let out = cmd.args(["credential", "verify"]).arg(file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn cairns_own_verifier_checks_did_web_credentials_under_the_outbound_policy() {
    let (app, id) = app_with_award("https://lin.example.org/data").await;
    let (_, cred) = get_credential(&app, &id).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credential.json");
    std::fs::write(&file, cred.to_string()).unwrap();
    let origin = app.address.clone();

    let (ok, text) = tokio::task::spawn_blocking({
        let (file, origin) = (file.clone(), origin.clone());
        move || run_verify(&file, Some(&origin))
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("signature: valid (eddsa-rdfc-2022, did:web:"), "{text}");
    assert!(text.contains("status: not revoked"), "{text}");
    assert!(text.contains("chain record: matches (pending"), "{text}");
    assert!(text.trim_end().ends_with("VALID"), "{text}");

    // Without the origin in the policy, the loopback DID document is never fetched.
    let (ok, text) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || run_verify(&file, None)
    })
    .await
    .unwrap();
    assert!(!ok && text.contains("does not verify"), "{text}");

    // The baked PNG holds the same credential.
    let png = app.client.get(app.url(&format!("/assertions/{id}/credential.png"))).send().await.unwrap();
    let png_file = dir.path().join("badge.png");
    std::fs::write(&png_file, png.bytes().await.unwrap()).unwrap();
    let mut tampered = cred.clone();
    tampered["credentialSubject"]["achievement"]["name"] = json!("Something else");
    let tampered_file = dir.path().join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    let (png_ok, tampered_out) = tokio::task::spawn_blocking({
        let origin = origin.clone();
        move || (run_verify(&png_file, Some(&origin)), run_verify(&tampered_file, Some(&origin)))
    })
    .await
    .unwrap();
    assert!(png_ok.0, "{}", png_ok.1);
    assert!(!tampered_out.0 && tampered_out.1.contains("signature does not match"), "{}", tampered_out.1);

    // Revoked: the status list says so and the command fails.
    revoke_from_another_process(&app, &id).await;
    let (ok, text) = tokio::task::spawn_blocking(move || run_verify(&file, Some(&origin))).await.unwrap();
    assert!(!ok && text.contains("status: REVOKED"), "{text}");
}

#[tokio::test]
async fn cairns_own_verifier_checks_did_key_credentials_offline() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mb = cairn::badges::did::multibase(&key.verifying_key());
    let did = format!("did:key:{mb}");
    let doc = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Offline",
        "issuer": {"id": did, "type": ["Profile"], "name": "Elsewhere"},
        "validFrom": "2024-01-01T00:00:00Z",
        "credentialSubject": {"type": ["AchievementSubject"], "achievement": {
            "id": "urn:uuid:8f0e2a54-7d1b-4c6e-9a3f-2b5d6c7e8f90", "type": ["Achievement"], "name": "Offline",
            "description": "d", "criteria": {"narrative": "n"}}},
    });
    let signed = cairn::badges::vc::sign(doc, &key, &format!("{did}#{mb}"), 1_704_067_200).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("offline.json");
    std::fs::write(&file, signed.to_string()).unwrap();
    // No origin is allowed: nothing may be fetched, and nothing needs to be.
    let (ok, text) = run_verify(&file, None);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("signature: valid (eddsa-rdfc-2022, {did}#{mb})")), "{text}");
    assert!(text.contains("status: no status list"), "{text}");

    let mut tampered = signed.clone();
    tampered["issuer"]["name"] = json!("Someone else");
    std::fs::write(&file, tampered.to_string()).unwrap();
    let (ok, text) = run_verify(&file, None);
    assert!(!ok && text.contains("signature does not match"), "{text}");
}

#[tokio::test]
async fn a_rotated_key_signs_new_credentials_while_old_ones_keep_verifying() {
    let (app, old_id) = app_with_award("https://lin.example.org/data").await;
    let (_, old) = get_credential(&app, &old_id).await;
    let old_method = old["proof"]["verificationMethod"].as_str().unwrap().to_string();

    let out = crate::helpers::cairn_cmd()
        .env("CAIRN_DATA_DIR", &app.data_dir)
        .env("CAIRN_BASE_URL", &app.address)
        .args(["identity", "rotate"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let new_method = text.lines().next().unwrap().strip_prefix("new credential key: ").unwrap().to_string();
    assert_ne!(new_method, old_method);
    // The chain identity is untouched: `cairn identity` still prints the same key.
    let identity = crate::helpers::cairn_cmd().env("CAIRN_DATA_DIR", &app.data_dir).arg("identity").output().unwrap();
    assert!(String::from_utf8_lossy(&identity.stdout).contains(&app.ledger.institution_id()));

    let doc: Value = app.client.get(app.url("/.well-known/did.json")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = doc["assertionMethod"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(ids, vec![new_method.as_str(), old_method.as_str()], "the new key first, the old one kept");

    // The running server signs the next award with the new key, at once.
    let mut c = app.pool.get().unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-cloud".into(),
        recipient: "lin@example.edu".into(),
        evidence: "https://lin.example.org/cloud".into(),
        ..Default::default()
    };
    let new_id =
        cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap().public_id;
    drop(c);
    let (_, new) = get_credential(&app, &new_id).await;
    assert_eq!(new["proof"]["verificationMethod"], new_method.as_str());

    for (what, cred) in [("old", &old), ("new", &new)] {
        let v = verify_js(cred).await;
        assert!(v.verified && v.revoked == Some(false), "{what}: {v:?}");
    }
    // The status list is signed with the new key, and still verifies for the old credential.
    let list: Value = app
        .client
        .get(old["credentialStatus"]["statusListCredential"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["proof"]["verificationMethod"], new_method.as_str());
}

/// A credential from elsewhere whose evidence is a ring of `n` Profiles, each the next one's
/// parent organization: `n` blank nodes that all look alike, canonicalization's worst case.
/// The proof names a did:key issuer (resolved offline) and carries a signature of zeros.
fn blank_node_ring(n: usize) -> Value {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let mb = cairn::badges::did::multibase(&key.verifying_key());
    let did = format!("did:key:{mb}");
    let evidence: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("_:r{i}"), "type": ["Profile"], "parentOrg": format!("_:r{}", (i + 1) % n)}))
        .collect();
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
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

#[tokio::test]
async fn a_foreign_credential_past_the_verifiers_bounds_is_refused_before_canonicalization() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, doc: &Value| {
        let file = dir.path().join(name);
        std::fs::write(&file, doc.to_string()).unwrap();
        file
    };
    // 3,000 blank nodes in a ring (canonicalizing it would take hours): refused on the count.
    let ring = write("ring.json", &blank_node_ring(3_000));
    assert!(std::fs::metadata(&ring).unwrap().len() > 150_000);
    let (ok, text) = run_verify(&ring, None);
    assert!(!ok, "{text}");
    assert!(text.contains("too large to check") && text.contains("blank nodes, at most 200"), "{text}");
    assert!(!text.contains("signature"), "the signature is never reached: {text}");

    // Few blank nodes but thousands of statements: refused on those.
    let mut tags = blank_node_ring(2);
    tags["credentialSubject"]["achievement"]["tag"] = json!((0..2_500).map(|i| format!("#t{i}")).collect::<Vec<_>>());
    let (ok, text) = run_verify(&write("tags.json", &tags), None);
    assert!(!ok && text.contains("RDF statements, at most 2000"), "{text}");

    // Within the bounds, a ring is canonicalized and its (zero) signature checked as usual.
    let (ok, text) = run_verify(&write("small.json", &blank_node_ring(20)), None);
    assert!(!ok && text.contains("signature does not match"), "{text}");

    // The budget is a flag, and documented.
    let help = crate::helpers::cairn_cmd().args(["credential", "verify", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(help.contains("--budget <SECONDS>") && help.contains("[default: 5]"), "{help}");
}
