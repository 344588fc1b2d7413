//! Cairn's own verifier of Open Badges 3.0 credentials (any issuer's, not only Cairn's):
//! the `eddsa-rdfc-2022` proof, the validity dates, the revocation status list and, for a
//! credential that states one, its chain record.
//!
//! The credential and its status list come from anywhere, so each is canonicalized within
//! [`ld::Bounds`]: at most [`ld::MAX_FOREIGN_QUADS`] statements and
//! [`ld::MAX_FOREIGN_BLANK_NODES`] blank nodes, counted before the costly step, and one
//! wall-clock budget for all of it.
//!
//! `did:key` issuers are resolved offline. `did:web` DID documents, status lists and chain
//! proofs are fetched with the outbound client, under its address policy, size and time
//! limits; over https, or over http for an origin the policy names (a loopback test server).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{did, ld, vc};
use crate::net::Fetcher;

/// Largest credential file read, in bytes.
pub const MAX_FILE: usize = 2 * 1024 * 1024;

/// What a credential turned out to be.
#[derive(Debug, Clone)]
pub struct Report {
    pub issuer: String,
    pub method: String,
    pub name: Option<String>,
    pub validity: vc::Validity,
    /// `Some(true)` when the status list has its bit set.
    pub revoked: Option<bool>,
    /// The chain record the credential states, when it states one.
    pub chain: Option<ChainCheck>,
}

impl Report {
    /// Valid, and not revoked.
    pub fn holds(&self) -> bool {
        self.revoked != Some(true) && !matches!(self.chain, Some(ChainCheck::Mismatch(_)))
    }
}

/// How the stated chain record compared with the proof served for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// The record at the proof URL has the stated id, names the credential's recipient hash,
    /// and its bytes hash to that id; with the proof's status (`pending`, `recorded`).
    Matches {
        proof_url: String,
        status: String,
    },
    Mismatch(String),
    /// The proof could not be fetched (the credential itself may still be valid).
    Unavailable(String),
}

/// Why a credential does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Proof(#[from] vc::ProofError),
    #[error("{0}")]
    Fetch(String),
}

/// The credential inside a file: its JSON, or the credential baked into a PNG or SVG.
pub fn credential_from_file(bytes: &[u8]) -> Result<Value, String> {
    if bytes.len() > MAX_FILE {
        return Err(format!("the file is larger than {} KiB", MAX_FILE / 1024));
    }
    let text = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        super::bake::unbake_png_as(bytes, super::bake::OB3_KEYWORD)
            .ok_or("the PNG carries no Open Badges 3.0 credential (iTXt openbadgecredential)")?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| "the file is neither JSON, a PNG nor an SVG")?;
        if text.trim_start().starts_with('<') {
            super::bake::unbake_svg_credential(text)
                .ok_or("the SVG carries no Open Badges 3.0 credential (<openbadges:credential>)")?
        } else {
            text.to_string()
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("the credential is not JSON: {e}"))
}

/// Resolves verification methods: `did:key` offline, `did:web` by fetching the DID document
/// once per DID.
struct Resolver<'a> {
    fetcher: &'a Fetcher,
    documents: HashMap<String, Value>,
}

impl Resolver<'_> {
    async fn load(&mut self, method: &str) -> Result<(), VerifyError> {
        let did = method.split('#').next().unwrap_or_default();
        if !did.starts_with("did:web:") || self.documents.contains_key(did) {
            return Ok(());
        }
        let url =
            document_url(self.fetcher, did).ok_or_else(|| VerifyError::Fetch(format!("{did} is not a did:web")))?;
        let doc = fetch_json(self.fetcher, &url).await?;
        if doc.get("id").and_then(Value::as_str) != Some(did) {
            return Err(VerifyError::Fetch(format!("the DID document at {url} is not {did}'s")));
        }
        self.documents.insert(did.to_string(), doc);
        Ok(())
    }

    fn resolve(&self, method: &str) -> vc::Resolved {
        if method.starts_with("did:key:") {
            return vc::resolve_did_key(method);
        }
        let did = method.split('#').next().unwrap_or_default();
        let doc = self.documents.get(did).ok_or_else(|| format!("{method} cannot be resolved"))?;
        vc::method_in(doc, method)
    }
}

/// The DID document URL of a `did:web`: https, or http when the outbound policy names that
/// origin itself.
fn document_url(fetcher: &Fetcher, did: &str) -> Option<String> {
    let plain = did::did_web_document_url(did, "http")?;
    let allowed = url::Url::parse(&plain).is_ok_and(|u| fetcher.config().policy.allows_origin(&u));
    if allowed { Some(plain) } else { did::did_web_document_url(did, "https") }
}

async fn fetch_json(fetcher: &Fetcher, url: &str) -> Result<Value, VerifyError> {
    let got = fetcher
        .get(url, &Default::default(), "application/json, application/ld+json, */*;q=0.1")
        .await
        .map_err(|e| VerifyError::Fetch(format!("{url}: {e}")))?;
    if !got.status.is_success() {
        return Err(VerifyError::Fetch(format!("{url}: HTTP {}", got.status.as_u16())));
    }
    serde_json::from_slice(&got.body).map_err(|e| VerifyError::Fetch(format!("{url}: not JSON ({e})")))
}

fn issuer_of(doc: &Value) -> String {
    match doc.get("issuer") {
        Some(Value::String(s)) => s.clone(),
        Some(i) => i.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        None => String::new(),
    }
}

/// Verifies `doc` at `now`: its proof, dates and revocation status, and its chain record when
/// it states one. Checking the proofs of the credential and its status list (their
/// canonicalization) takes at most `budget` in all; fetching has the outbound client's own
/// time limits.
pub async fn verify(doc: &Value, fetcher: &Fetcher, now: i64, budget: Duration) -> Result<Report, VerifyError> {
    let mut clock = Budget { total: budget, spent: Duration::ZERO };
    let mut resolver = Resolver { fetcher, documents: HashMap::new() };
    let method = doc.pointer("/proof/verificationMethod").and_then(Value::as_str).unwrap_or_default().to_string();
    resolver.load(&method).await?;
    let method = clock.run(|b| vc::verify_proof(doc, &mut |m| resolver.resolve(m), b))?;
    let validity = vc::validity(doc, now)?;
    let issuer = issuer_of(doc);
    let revoked = match &validity.status {
        None => None,
        Some((url, index)) => {
            let list = fetch_json(fetcher, url).await?;
            let list_method =
                list.pointer("/proof/verificationMethod").and_then(Value::as_str).unwrap_or_default().to_string();
            resolver.load(&list_method).await?;
            clock
                .run(|b| vc::verify_proof(&list, &mut |m| resolver.resolve(m), b))
                .map_err(|e| VerifyError::Fetch(format!("the status list {url} does not verify: {e}")))?;
            if issuer_of(&list) != issuer {
                return Err(VerifyError::Fetch(format!("the status list {url} has another issuer")));
            }
            let encoded = list.pointer("/credentialSubject/encodedList").and_then(Value::as_str).unwrap_or_default();
            Some(vc::list_bit(encoded, *index)?)
        }
    };
    let chain = match vc::chain_binding(doc) {
        None => None,
        Some((record_id, proof_url)) => Some(check_chain(fetcher, doc, &record_id, &proof_url).await),
    };
    let name = doc.get("name").and_then(Value::as_str).map(str::to_string);
    Ok(Report { issuer, method, name, validity, revoked, chain })
}

/// The canonicalization budget of one verification, spent proof by proof.
struct Budget {
    total: Duration,
    spent: Duration,
}

impl Budget {
    /// Runs `check` with the caps and what is left of the budget.
    fn run<T>(&mut self, check: impl FnOnce(&ld::Bounds) -> T) -> T {
        let started = std::time::Instant::now();
        let left = self.total.saturating_sub(self.spent);
        let bounds = ld::Bounds { deadline: started + left, budget: self.total, ..ld::Bounds::foreign(left) };
        let out = check(&bounds);
        self.spent += started.elapsed();
        out
    }
}

async fn check_chain(fetcher: &Fetcher, doc: &Value, record_id: &str, proof_url: &str) -> ChainCheck {
    let proof = match fetch_json(fetcher, proof_url).await {
        Ok(p) => p,
        Err(e) => return ChainCheck::Unavailable(e.to_string()),
    };
    let record = &proof["record"];
    let bytes = record["bytes_hex"].as_str().and_then(|h| hex::decode(h).ok()).unwrap_or_default();
    let leaf = cairn_chain::Hash::of(&[&[0u8][..], &bytes].concat()).to_hex();
    let hash = doc.pointer("/credentialSubject/identifier/0/identityHash").and_then(Value::as_str);
    if record["id"].as_str() != Some(record_id) || leaf != record_id {
        ChainCheck::Mismatch(format!("{proof_url} serves another record than {record_id}"))
    } else if record["recipient_hash"].as_str() != hash {
        ChainCheck::Mismatch(format!("the record at {proof_url} names another recipient"))
    } else {
        let status = proof["status"].as_str().unwrap_or("unknown").to_string();
        ChainCheck::Matches { proof_url: proof_url.to_string(), status }
    }
}
