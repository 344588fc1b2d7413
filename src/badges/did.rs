//! The institution's DID: `did:web` from the public base URL, its DID document listing the
//! Ed25519 keys as `Multikey` verification methods, and `did:key` for offline checks.
//!
//! Mapping (the did:web method's own rules): the host, then `%3A` and the port when the URL
//! has one, then each path segment after a `:`. `https://cairn.example.org` is
//! `did:web:cairn.example.org`, resolved at `/.well-known/did.json`;
//! `http://127.0.0.1:8080` is `did:web:127.0.0.1%3A8080`; `https://example.org/mooc` is
//! `did:web:example.org:mooc`, resolved at `https://example.org/mooc/did.json`. Cairn serves
//! the same document at both paths, so either mapping of a proxied base URL finds it.

use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};

use super::ld;

/// The multicodec prefix of an Ed25519 public key.
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// `did:web` for a base URL (no trailing slash). `None` for a URL that is not one.
pub fn did_web(base: &str) -> Option<String> {
    let url = url::Url::parse(base).ok()?;
    let host = url.host_str()?;
    let mut did = format!("did:web:{}", host.to_ascii_lowercase());
    if let Some(port) = url.port() {
        did.push_str(&format!("%3A{port}"));
    }
    for seg in url.path_segments().into_iter().flatten().filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(seg);
    }
    Some(did)
}

/// Where a `did:web` DID document is fetched from, over `scheme` (the method says https;
/// a loopback test server speaks http).
pub fn did_web_document_url(did: &str, scheme: &str) -> Option<String> {
    let rest = did.strip_prefix("did:web:")?;
    let rest = rest.split('#').next()?;
    let mut parts = rest.split(':');
    let host = parts.next()?.replace("%3A", ":").replace("%3a", ":");
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return None;
    }
    let path: Vec<&str> = parts.collect();
    if path.iter().any(|p| p.is_empty() || p.contains('/') || *p == "." || *p == "..") {
        return None;
    }
    Some(if path.is_empty() {
        format!("{scheme}://{host}/.well-known/did.json")
    } else {
        format!("{scheme}://{host}/{}/did.json", path.join("/"))
    })
}

/// The key as a Multikey `publicKeyMultibase`: `z` + base58btc(0xed01 ‖ key), `z6Mk…`.
pub fn multibase(key: &VerifyingKey) -> String {
    let mut bytes = ED25519_PUB.to_vec();
    bytes.extend_from_slice(key.as_bytes());
    format!("z{}", bs58::encode(bytes).into_string())
}

/// The key from a `publicKeyMultibase` (or a `did:key` identifier's tail).
pub fn key_from_multibase(s: &str) -> Option<VerifyingKey> {
    let bytes = bs58::decode(s.strip_prefix('z')?).into_vec().ok()?;
    let raw: [u8; 32] = bytes.strip_prefix(&ED25519_PUB[..])?.try_into().ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

/// The verification method id of a key under a DID: the DID, `#`, the key's multibase, so
/// that a rotated key keeps its id.
pub fn method_id(did: &str, key: &VerifyingKey) -> String {
    format!("{did}#{}", multibase(key))
}

/// The DID document: every key listed (the current one first), each usable to assert
/// credentials, so that credentials signed before a rotation still verify.
pub fn document(did: &str, keys: &[VerifyingKey]) -> Value {
    let methods: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": method_id(did, k),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multibase(k),
            })
        })
        .collect();
    let ids: Vec<String> = keys.iter().map(|k| method_id(did, k)).collect();
    json!({
        "@context": [ld::DID_V1, ld::MULTIKEY_V1],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
        "authentication": ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_map_to_did_web_and_back() {
        assert_eq!(did_web("https://Cairn.example.org").unwrap(), "did:web:cairn.example.org");
        assert_eq!(did_web("http://127.0.0.1:8080").unwrap(), "did:web:127.0.0.1%3A8080");
        assert_eq!(did_web("https://example.org/mooc/el30").unwrap(), "did:web:example.org:mooc:el30");
        assert_eq!(
            did_web_document_url("did:web:127.0.0.1%3A8080#z6Mk", "http").unwrap(),
            "http://127.0.0.1:8080/.well-known/did.json"
        );
        assert_eq!(
            did_web_document_url("did:web:example.org:mooc:el30", "https").unwrap(),
            "https://example.org/mooc/el30/did.json"
        );
        assert!(did_web_document_url("did:web:example.org:..:x", "https").is_none());
        assert!(did_web_document_url("did:web:evil.org%2Fx@127.0.0.1", "https").is_none());
    }

    #[test]
    fn keys_round_trip_through_multibase() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let mb = multibase(&key);
        assert!(mb.starts_with("z6Mk"), "{mb}");
        assert_eq!(key_from_multibase(&mb), Some(key));
        assert_eq!(key_from_multibase("z6Mkxyz"), None);
    }
}
