//! JSON-LD to canonical N-Quads (RDF Dataset Canonicalization, RDFC-1.0), offline.
//!
//! Expansion and `toRdf` are the `json-ld` crate's (through `sophia_jsonld`); RDFC-1.0 is
//! `sophia_c14n`'s. The few contexts a credential may name are compiled into the binary and
//! served by a loader that knows nothing else: a document naming any other context fails
//! instead of reaching the network. Expansion is strict, so a term no context defines is an
//! error rather than a property silently dropped from what gets signed.

use std::sync::{Arc, LazyLock};

use futures_util::FutureExt as _;
use locspan::Location;
use sophia_api::quad::Spog;
use sophia_api::source::QuadSource as _;
use sophia_api::term::SimpleTerm;
use sophia_iri::Iri;
use sophia_jsonld::loader::StaticLoader;
use sophia_jsonld::{JsonLdOptions, JsonLdParser, Policy};

pub const CREDENTIALS_V2: &str = "https://www.w3.org/ns/credentials/v2";
pub const OB_V3: &str = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
pub const DID_V1: &str = "https://www.w3.org/ns/did/v1";
pub const MULTIKEY_V1: &str = "https://w3id.org/security/multikey/v1";

/// The shipped contexts: (URL, document).
pub const CONTEXTS: [(&str, &str); 2] = [
    (CREDENTIALS_V2, include_str!("contexts/credentials-v2.jsonld")),
    (OB_V3, include_str!("contexts/ob-context-3.0.3.json")),
];

/// Why a document cannot be canonicalized.
#[derive(Debug, thiserror::Error)]
pub enum LdError {
    #[error("the document is not JSON-LD that the shipped contexts define: {0}")]
    Expand(String),
    #[error("canonicalization failed: {0}")]
    Canon(String),
}

type ArcIri = Iri<Arc<str>>;
type Loader = StaticLoader<ArcIri, locspan::Span>;

static LOADER: LazyLock<Result<Loader, String>> = LazyLock::new(|| {
    let mut loader = Loader::new();
    for (url, text) in CONTEXTS {
        let iri = Iri::new(Arc::from(url)).map_err(|e| format!("{url}: {e}"))?;
        let value = <json_syntax::Value<Location<ArcIri>> as json_syntax::Parse<_>>::parse_str(text, |span| {
            Location::new(iri.clone(), span)
        })
        .map_err(|e| format!("{url}: {e}"))?;
        loader = loader.with(iri, value);
    }
    Ok(loader)
});

/// The canonical N-Quads of a JSON-LD document (RDFC-1.0 with SHA-256).
pub fn canonicalize(doc: &serde_json::Value) -> Result<String, LdError> {
    let loader = LOADER.as_ref().map_err(|e| LdError::Expand(format!("a shipped context is broken: {e}")))?;
    let options = JsonLdOptions::new().with_expansion_policy(Policy::Strict).with_document_loader(loader.clone());
    let parser = JsonLdParser::new_with_options(options);
    let text = doc.to_string();
    // Every context is in memory, so the future is ready at its first poll; one that is not
    // would be waiting on something outside, which must never happen.
    let source = parser
        .async_parse_str(&text)
        .now_or_never()
        .ok_or_else(|| LdError::Expand("the document needs something not shipped with Cairn".into()))?;
    let quads: std::collections::HashSet<Spog<SimpleTerm<'static>>> =
        source.collect_quads().map_err(|e| LdError::Expand(e.to_string()))?;
    let mut out = Vec::new();
    sophia_c14n::rdfc10::normalize(&quads, &mut out).map_err(|e| LdError::Canon(e.to_string()))?;
    String::from_utf8(out).map_err(|e| LdError::Canon(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_credential_canonicalizes_with_the_shipped_contexts_only() {
        let doc = json!({
            "@context": [CREDENTIALS_V2, OB_V3],
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": {"id": "did:web:example.org", "type": ["Profile"], "name": "U"},
            "validFrom": "2026-01-01T00:00:00Z",
            "credentialSubject": {"type": ["AchievementSubject"], "achievement": {
                "id": "https://example.org/badges/x", "type": ["Achievement"], "name": "X",
                "criteria": {"narrative": "Do it"}, "description": "d"}},
        });
        let nq = canonicalize(&doc).unwrap();
        assert!(nq.contains("<https://purl.imsglobal.org/spec/vc/ob/vocab.html#OpenBadgeCredential>"), "{nq}");
        assert!(nq.contains("\"2026-01-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime>"), "{nq}");
        assert!(nq.contains("_:c14n0"), "{nq}");
        // The same graph written in another order canonicalizes to the same bytes.
        let mut again = doc.clone();
        again["type"] = json!(["VerifiableCredential", "OpenBadgeCredential"]);
        assert_eq!(canonicalize(&again).unwrap(), nq);

        let foreign = json!({"@context": "https://example.org/ctx", "name": "x"});
        assert!(matches!(canonicalize(&foreign), Err(LdError::Expand(_))));
    }
}
