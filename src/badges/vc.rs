//! Open Badges 3.0: each award as an `OpenBadgeCredential` (W3C Verifiable Credentials Data
//! Model 2.0), signed with a `DataIntegrityProof` of the `eddsa-rdfc-2022` cryptosuite by the
//! institution's Ed25519 key, revocable through a `BitstringStatusListCredential`.
//!
//! The chain binding: the award's chain record is signed before its credential, and the
//! credential carries an `Evidence` item whose `id` is `{base}/assertions/{id}/proof` and
//! whose `description` states the record id (`SHA-256(0x00 ‖ record encoding)`, the record's
//! Merkle leaf). A verifier holding only the credential fetches that proof and checks that
//! its `record.id` is the stated one and that the record names the credential's assertion
//! URL and recipient hash; the credential's signature covers the statement.

use std::io::Write as _;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{did, ld, ob};
use crate::db::courses::Task;
use crate::db::institution::Institution;

/// The media type credentials are served as.
pub const MEDIA_TYPE: &str = "application/vc+ld+json";
/// Bits in one status list: the 16 KiB minimum the Bitstring Status List spec sets, so a
/// list does not narrow down who holds a credential.
pub const LIST_BITS: i64 = 131_072;
/// The `name` of the chain-record evidence item.
pub const CHAIN_EVIDENCE_NAME: &str = "Recognition chain record";
/// Precedes the record id in that item's `description`.
pub const CHAIN_EVIDENCE_PREFIX: &str = "Chain record id (SHA-256): ";

pub fn credential_url(base: &str, public_id: &str) -> String {
    format!("{}/credential", ob::assertion_url(base, public_id))
}

pub fn proof_url(base: &str, public_id: &str) -> String {
    format!("{}/proof", ob::assertion_url(base, public_id))
}

pub fn status_list_url(base: &str, list: i64) -> String {
    format!("{base}/credentials/status/{list}")
}

/// (list number, index in that list) of a credential's status index.
pub fn status_position(index: i64) -> (i64, i64) {
    (index / LIST_BITS + 1, index % LIST_BITS)
}

pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

/// The institution as an OB 3.0 `Profile` under its DID.
pub fn profile(base: &str, did: &str, inst: &Institution) -> Value {
    let mut p = json!({
        "id": did,
        "type": ["Profile"],
        "name": inst.name,
        "url": if inst.url.is_empty() { format!("{base}/") } else { inst.url.clone() },
    });
    if !inst.email.is_empty() {
        p["email"] = json!(inst.email);
    }
    if !inst.description.is_empty() {
        p["description"] = json!(inst.description);
    }
    p
}

/// A Task's `Achievement`.
pub fn achievement(base: &str, task: &Task) -> Value {
    let description = if task.description.trim().is_empty() {
        format!("Awarded for the task \u{201c}{}\u{201d} ({}).", task.title, task.hashtag)
    } else {
        task.description.clone()
    };
    let mut criteria = json!({"id": format!("{base}/tasks/{}", task.slug())});
    criteria["narrative"] = json!(if task.criteria.trim().is_empty() { &description } else { &task.criteria });
    json!({
        "id": ob::badge_class_url(base, task),
        "type": ["Achievement"],
        "name": task.title,
        "description": description,
        "criteria": criteria,
        "image": {"id": format!("{base}/tasks/{}/badge", task.slug()), "type": "Image"},
        "tag": [task.hashtag],
    })
}

/// What a credential is made of.
pub struct CredentialParts<'a> {
    pub base: &'a str,
    pub did: &'a str,
    pub institution: &'a Institution,
    pub task: &'a Task,
    pub public_id: &'a str,
    pub salt: &'a str,
    pub identity: &'a str,
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub evidence_url: Option<&'a str>,
    pub narrative: Option<&'a str>,
    /// The chain record's id, hex.
    pub record_id: &'a str,
    pub status_index: i64,
}

/// The unsigned credential.
pub fn credential(p: &CredentialParts) -> Value {
    let mut evidence = Vec::new();
    if let Some(url) = p.evidence_url {
        let mut post = json!({"id": url, "type": ["Evidence"], "name": "Post", "genre": "Blog post"});
        if let Some(n) = p.narrative.filter(|n| !n.trim().is_empty()) {
            post["narrative"] = json!(n);
        }
        evidence.push(post);
    }
    evidence.push(json!({
        "id": proof_url(p.base, p.public_id),
        "type": ["Evidence"],
        "name": CHAIN_EVIDENCE_NAME,
        "genre": "Recognition chain proof",
        "description": format!("{CHAIN_EVIDENCE_PREFIX}{}", p.record_id),
    }));
    let (list, at) = status_position(p.status_index);
    let list_url = status_list_url(p.base, list);
    let mut doc = json!({
        "@context": [ld::CREDENTIALS_V2, ld::OB_V3],
        "id": credential_url(p.base, p.public_id),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": p.task.title,
        "issuer": profile(p.base, p.did, p.institution),
        "validFrom": rfc3339(p.issued_on),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [{
                "type": "IdentityObject",
                "identityHash": p.identity,
                "identityType": "emailAddress",
                "hashed": true,
                "salt": p.salt,
            }],
            "achievement": achievement(p.base, p.task),
        },
        "evidence": evidence,
        "credentialStatus": {
            "id": format!("{list_url}#{at}"),
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": at.to_string(),
            "statusListCredential": list_url,
        },
    });
    if let Some(e) = p.expires {
        doc["validUntil"] = json!(rfc3339(e));
    }
    doc
}

/// Why a document could not be signed or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Ld(#[from] ld::LdError),
    #[error("{0}")]
    Invalid(String),
    #[error("the signature does not match the document")]
    BadSignature,
}

fn invalid(m: impl Into<String>) -> ProofError {
    ProofError::Invalid(m.into())
}

/// The bytes `eddsa-rdfc-2022` signs: SHA-256 of the canonical proof options (with the
/// document's context) followed by SHA-256 of the canonical document without its proof.
/// With `bounds`, for a document from elsewhere, each canonicalization is held to them.
fn hash_data(unsecured: &Value, options: &Value, bounds: Option<&ld::Bounds>) -> Result<Vec<u8>, ProofError> {
    let canonicalize = |doc: &Value| match bounds {
        Some(b) => ld::canonicalize_bounded(doc, b),
        None => ld::canonicalize(doc),
    };
    let mut config = options.clone();
    config["@context"] = unsecured.get("@context").cloned().ok_or_else(|| invalid("the document has no @context"))?;
    // Credentials signed in the same second with the same key share their proof options, so
    // the last options' hash is kept: one canonicalization (milliseconds) saved per credential.
    static LAST_CONFIG: std::sync::Mutex<Option<(String, Vec<u8>)>> = std::sync::Mutex::new(None);
    let config_text = config.to_string();
    let cached = LAST_CONFIG
        .lock()
        .ok()
        .and_then(|last| last.as_ref().filter(|(text, _)| *text == config_text).map(|(_, hash)| hash.clone()));
    let (config_hash, document) = match cached {
        Some(hash) => (hash, canonicalize(unsecured)),
        None => {
            // The two canonicalizations are independent and each costs milliseconds (JSON-LD
            // context processing): run side by side.
            let (config_nq, document) = std::thread::scope(|s| {
                let config = s.spawn(|| canonicalize(&config));
                let document = canonicalize(unsecured);
                (config.join(), document)
            });
            let config_nq = config_nq.map_err(|_| invalid("canonicalizing the proof options failed"))??;
            let hash = Sha256::digest(config_nq.as_bytes()).to_vec();
            if let Ok(mut last) = LAST_CONFIG.lock() {
                *last = Some((config_text, hash.clone()));
            }
            (hash, document)
        }
    };
    let mut out = config_hash;
    out.extend_from_slice(&Sha256::digest(document?.as_bytes()));
    Ok(out)
}

/// Adds a `DataIntegrityProof` (`eddsa-rdfc-2022`, purpose `assertionMethod`) made at
/// `created` by `key`, named in the proof as `method`.
pub fn sign(mut doc: Value, key: &SigningKey, method: &str, created: i64) -> Result<Value, ProofError> {
    let options = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": rfc3339(created),
        "verificationMethod": method,
        "proofPurpose": "assertionMethod",
    });
    let signature = key.sign(&hash_data(&doc, &options, None)?);
    let mut proof = options;
    proof["proofValue"] = json!(format!("z{}", bs58::encode(signature.to_bytes()).into_string()));
    doc["proof"] = proof;
    Ok(doc)
}

/// A verification method's key and controller, or why it cannot be had.
pub type Resolved = Result<(VerifyingKey, String), String>;

/// Checks a document's `eddsa-rdfc-2022` proof; `resolve` gives the key a verification
/// method id names and the method's controller. Returns the method id. The document may
/// come from anywhere: it is canonicalized within `bounds`.
pub fn verify_proof(
    doc: &Value,
    resolve: &mut dyn FnMut(&str) -> Resolved,
    bounds: &ld::Bounds,
) -> Result<String, ProofError> {
    let proof =
        doc.get("proof").filter(|p| p.is_object()).ok_or_else(|| invalid("the document has no single proof"))?;
    let field = |k: &str| proof.get(k).and_then(Value::as_str).ok_or_else(|| invalid(format!("the proof has no {k}")));
    if field("type")? != "DataIntegrityProof" || field("cryptosuite")? != "eddsa-rdfc-2022" {
        return Err(invalid("the proof is not a DataIntegrityProof of the eddsa-rdfc-2022 cryptosuite"));
    }
    if field("proofPurpose")? != "assertionMethod" {
        return Err(invalid("the proof's purpose is not assertionMethod"));
    }
    let method = field("verificationMethod")?.to_string();
    let sig = field("proofValue")?
        .strip_prefix('z')
        .and_then(|s| bs58::decode(s).into_vec().ok())
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| invalid("the proofValue is not a base58btc Ed25519 signature"))?;
    let (key, controller) = resolve(&method).map_err(ProofError::Invalid)?;
    let issuer = match doc.get("issuer") {
        Some(Value::String(s)) => s.as_str(),
        Some(i) => i.get("id").and_then(Value::as_str).unwrap_or_default(),
        None => "",
    };
    if controller != issuer {
        return Err(invalid(format!("the signing key belongs to {controller}, not to the issuer {issuer}")));
    }
    let mut options = proof.clone();
    if let Some(o) = options.as_object_mut() {
        o.remove("proofValue");
    }
    let mut unsecured = doc.clone();
    if let Some(o) = unsecured.as_object_mut() {
        o.remove("proof");
    }
    let data = hash_data(&unsecured, &options, Some(bounds))?;
    key.verify_strict(&data, &Signature::from_bytes(&sig)).map_err(|_| ProofError::BadSignature)?;
    Ok(method)
}

/// Resolves a `did:key` verification method offline.
pub fn resolve_did_key(method: &str) -> Result<(VerifyingKey, String), String> {
    let (controller, fragment) = method.split_once('#').unwrap_or((method, ""));
    let mb = controller.strip_prefix("did:key:").ok_or_else(|| format!("{method} is not a did:key"))?;
    if !fragment.is_empty() && fragment != mb {
        return Err(format!("{method} names another key than its DID"));
    }
    let key = did::key_from_multibase(mb).ok_or_else(|| format!("{method} is not an Ed25519 did:key"))?;
    Ok((key, controller.to_string()))
}

/// Finds a verification method in a DID document: its key and controller.
pub fn method_in(document: &Value, method: &str) -> Result<(VerifyingKey, String), String> {
    let did = document.get("id").and_then(Value::as_str).unwrap_or_default();
    let asserts = document.get("assertionMethod").and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|m| m.as_str() == Some(method) || m.get("id").and_then(Value::as_str) == Some(method))
    });
    if !asserts {
        return Err(format!("{did} does not list {method} as an assertion method"));
    }
    let vm = document
        .get("verificationMethod")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|m| m.get("id").and_then(Value::as_str) == Some(method)))
        .ok_or_else(|| format!("{did} has no verification method {method}"))?;
    let controller = vm.get("controller").and_then(Value::as_str).unwrap_or_default();
    if controller != did || !method.starts_with(&format!("{did}#")) {
        return Err(format!("{method} is not controlled by {did}"));
    }
    let key = vm
        .get("publicKeyMultibase")
        .and_then(Value::as_str)
        .and_then(did::key_from_multibase)
        .ok_or_else(|| format!("{method} is not an Ed25519 Multikey"))?;
    Ok((key, did.to_string()))
}

/// What the rest of a credential says, once its proof holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    /// (status list URL, index) when the credential has a revocation status.
    pub status: Option<(String, i64)>,
}

/// Reads the dates and status entry of a credential, refusing it outside its validity at `now`.
pub fn validity(doc: &Value, now: i64) -> Result<Validity, ProofError> {
    let types = doc.get("type").and_then(Value::as_array).cloned().unwrap_or_default();
    if !types.iter().any(|t| t == "VerifiableCredential") {
        return Err(invalid("the document is not a VerifiableCredential"));
    }
    let from = doc.get("validFrom").and_then(Value::as_str).and_then(parse_time);
    let until = match doc.get("validUntil") {
        None => None,
        Some(v) => Some(v.as_str().and_then(parse_time).ok_or_else(|| invalid("validUntil is not a date-time"))?),
    };
    let from = from.ok_or_else(|| invalid("validFrom is missing or not a date-time"))?;
    if from > now {
        return Err(invalid(format!("the credential is not valid before {}", rfc3339(from))));
    }
    if let Some(u) = until.filter(|u| *u < now) {
        return Err(invalid(format!("the credential expired at {}", rfc3339(u))));
    }
    let status = match doc.get("credentialStatus") {
        None => None,
        Some(s) => {
            let url = s.get("statusListCredential").and_then(Value::as_str);
            let index = s.get("statusListIndex").and_then(Value::as_str).and_then(|i| i.parse::<i64>().ok());
            let purpose = s.get("statusPurpose").and_then(Value::as_str);
            match (url, index, purpose) {
                (Some(u), Some(i), Some("revocation")) if (0..LIST_BITS * 8).contains(&i) => Some((u.to_string(), i)),
                _ => return Err(invalid("the credentialStatus is not a revocation BitstringStatusListEntry")),
            }
        }
    };
    Ok(Validity { valid_from: from, valid_until: until, status })
}

/// `u` + base64url (no padding) of the GZIP-compressed bitstring, index 0 the first byte's
/// most significant bit.
pub fn encode_list(revoked: &[i64]) -> Result<String, ProofError> {
    let mut bits = vec![0u8; (LIST_BITS / 8) as usize];
    for &i in revoked {
        if (0..LIST_BITS).contains(&i) {
            bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bits).map_err(|e| invalid(e.to_string()))?;
    let packed = gz.finish().map_err(|e| invalid(e.to_string()))?;
    Ok(format!("u{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(packed)))
}

/// Whether bit `index` is set in an `encodedList`. Decompression is bounded: a list larger
/// than any index a credential may name is refused.
pub fn list_bit(encoded: &str, index: i64) -> Result<bool, ProofError> {
    use std::io::Read as _;
    let packed = encoded
        .strip_prefix('u')
        .and_then(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok())
        .ok_or_else(|| invalid("the encodedList is not multibase base64url"))?;
    // Bytes for eight minimum-size lists: every index a credential may name, and no more.
    let limit = LIST_BITS as u64;
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(packed.as_slice())
        .take(limit)
        .read_to_end(&mut bits)
        .map_err(|_| invalid("the encodedList is not GZIP data"))?;
    let byte = bits.get((index / 8) as usize).ok_or_else(|| invalid("the status index lies outside the list"))?;
    Ok(byte & (0x80 >> (index % 8)) != 0)
}

/// The unsigned `BitstringStatusListCredential` number `list`.
pub fn status_list(base: &str, did: &str, list: i64, revoked: &[i64], now: i64) -> Result<Value, ProofError> {
    let url = status_list_url(base, list);
    Ok(json!({
        "@context": [ld::CREDENTIALS_V2],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": did,
        "validFrom": rfc3339(now),
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_list(revoked)?,
        },
    }))
}

/// The record id a credential states, and the proof URL it names.
pub fn chain_binding(doc: &Value) -> Option<(String, String)> {
    let items = doc.get("evidence")?.as_array()?;
    items.iter().find_map(|e| {
        let id = e.get("id")?.as_str()?;
        let hex = e.get("description")?.as_str()?.strip_prefix(CHAIN_EVIDENCE_PREFIX)?;
        (e.get("name")?.as_str()? == CHAIN_EVIDENCE_NAME && id.ends_with("/proof"))
            .then(|| (hex.to_string(), id.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn bounds() -> ld::Bounds {
        ld::Bounds::foreign(ld::DEFAULT_BUDGET)
    }

    fn signed() -> (Value, String) {
        let k = key();
        let did = format!("did:key:{}", did::multibase(&k.verifying_key()));
        let method = format!("{did}#{}", did::multibase(&k.verifying_key()));
        let doc = status_list("https://x.example", &did, 1, &[3, 70_000], 1_700_000_000).unwrap();
        (sign(doc, &k, &method, 1_700_000_000).unwrap(), method)
    }

    #[test]
    fn a_signed_document_verifies_and_any_change_breaks_it() {
        let (doc, method) = signed();
        assert_eq!(verify_proof(&doc, &mut |m| resolve_did_key(m), &bounds()).unwrap(), method);
        let mut changed = doc.clone();
        changed["credentialSubject"]["statusPurpose"] = json!("suspension");
        assert!(matches!(
            verify_proof(&changed, &mut |m| resolve_did_key(m), &bounds()),
            Err(ProofError::BadSignature)
        ));
        let mut dated = doc.clone();
        dated["proof"]["created"] = json!("2020-01-01T00:00:00Z");
        assert!(matches!(verify_proof(&dated, &mut |m| resolve_did_key(m), &bounds()), Err(ProofError::BadSignature)));
        let other = SigningKey::from_bytes(&[1; 32]);
        let mut stolen = doc.clone();
        stolen["issuer"] = json!(format!("did:key:{}", did::multibase(&other.verifying_key())));
        assert!(verify_proof(&stolen, &mut |m| resolve_did_key(m), &bounds()).is_err());
    }

    #[test]
    fn the_status_list_sets_exactly_the_revoked_bits() {
        let (doc, _) = signed();
        let list = doc["credentialSubject"]["encodedList"].as_str().unwrap();
        assert!(list_bit(list, 3).unwrap());
        assert!(list_bit(list, 70_000).unwrap());
        assert!(!list_bit(list, 4).unwrap());
        assert!(!list_bit(list, 0).unwrap());
        assert!(list_bit(list, LIST_BITS).is_err());
        assert_eq!(status_position(5), (1, 5));
        assert_eq!(status_position(LIST_BITS + 2), (2, 2));
    }
}
