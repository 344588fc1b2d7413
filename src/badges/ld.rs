//! JSON-LD to canonical N-Quads (RDF Dataset Canonicalization, RDFC-1.0), offline.
//!
//! Expansion and `toRdf` are the `json-ld` crate's (through `sophia_jsonld`); RDFC-1.0 is
//! `sophia_c14n`'s. The few contexts a credential may name are compiled into the binary and
//! served by a loader that knows nothing else: a document naming any other context fails
//! instead of reaching the network. Expansion is strict, so a term no context defines is an
//! error rather than a property silently dropped from what gets signed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

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
    /// Past the bounds a document from elsewhere is held to ([`Bounds`]).
    #[error("the document is too large to check: {0}")]
    TooLarge(String),
    #[error("checking the document took longer than its budget of {} s", .0.as_secs_f64())]
    OutOfTime(Duration),
}

/// Most RDF statements (quads) a document from elsewhere may have. Cairn's own credentials
/// have about fifty, its status lists about a dozen.
pub const MAX_FOREIGN_QUADS: usize = 2_000;
/// Most blank nodes a document from elsewhere may have. Cairn's own have a handful.
/// Canonicalization (RDFC-1.0) may take time growing steeply with blank nodes that look
/// alike: a ring of 400 takes seconds, one of 3,000 hours.
pub const MAX_FOREIGN_BLANK_NODES: usize = 200;
/// The wall-clock time canonicalizing a document from elsewhere may take, by default.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(5);

/// What a document from elsewhere (a credential to verify, its status list) is held to
/// before and while it is canonicalized: its statements and blank nodes are counted once it
/// is expanded, before the costly step, and the whole runs within a wall-clock deadline.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_quads: usize,
    pub max_blank_nodes: usize,
    /// When canonicalizing must be over.
    pub deadline: Instant,
    /// The budget the deadline was set from, for the error.
    pub budget: Duration,
}

impl Bounds {
    /// The default caps, with a deadline `budget` from now.
    pub fn foreign(budget: Duration) -> Bounds {
        Bounds {
            max_quads: MAX_FOREIGN_QUADS,
            max_blank_nodes: MAX_FOREIGN_BLANK_NODES,
            deadline: Instant::now() + budget,
            budget,
        }
    }

    /// Refuses `quads` past the caps.
    fn check(&self, quads: &Quads) -> Result<(), LdError> {
        let mut blank = HashSet::new();
        for ([s, p, o], g) in quads {
            for t in [Some(s), Some(p), Some(o), g.as_ref()].into_iter().flatten() {
                if let SimpleTerm::BlankNode(id) = t {
                    blank.insert(id.as_str());
                }
            }
        }
        if blank.len() > self.max_blank_nodes {
            return Err(LdError::TooLarge(format!("{} blank nodes, at most {}", blank.len(), self.max_blank_nodes)));
        }
        if quads.len() > self.max_quads {
            return Err(LdError::TooLarge(format!("{} RDF statements, at most {}", quads.len(), self.max_quads)));
        }
        Ok(())
    }
}

type ArcIri = Iri<Arc<str>>;
type Loader = StaticLoader<ArcIri, locspan::Span>;

/// A loader serving the given context documents under their URLs.
fn loader_of(contexts: &[(&str, String)]) -> Result<Loader, String> {
    let mut loader = Loader::new();
    for (url, text) in contexts {
        let iri = Iri::new(Arc::from(*url)).map_err(|e| format!("{url}: {e}"))?;
        let value = <json_syntax::Value<Location<ArcIri>> as json_syntax::Parse<_>>::parse_str(text, |span| {
            Location::new(iri.clone(), span)
        })
        .map_err(|e| format!("{url}: {e}"))?;
        loader = loader.with(iri, value);
    }
    Ok(loader)
}

/// The shipped contexts as JSON, and every term any of them defines (at any depth).
struct Shipped {
    contexts: Vec<(&'static str, serde_json::Value)>,
    terms: HashSet<String>,
}

static SHIPPED: LazyLock<Result<Shipped, String>> = LazyLock::new(|| {
    fn collect(ctx: &serde_json::Value, terms: &mut HashSet<String>) {
        if let Some(map) = ctx.as_object() {
            for (k, v) in map {
                if !k.starts_with('@') {
                    terms.insert(k.clone());
                }
                if let Some(scoped) = v.get("@context") {
                    collect(scoped, terms);
                }
            }
        }
    }
    let mut terms = HashSet::new();
    let mut contexts = Vec::new();
    for (url, text) in CONTEXTS {
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{url}: {e}"))?;
        if let Some(ctx) = doc.get("@context") {
            collect(ctx, &mut terms);
        }
        contexts.push((url, doc));
    }
    Ok(Shipped { contexts, terms })
});

/// Every string of a JSON value (keys and values), and the prefix of each that looks like a
/// compact IRI, into `out`; nested `@context`s are skipped when `skip_contexts`.
fn strings_of(v: &serde_json::Value, skip_contexts: bool, out: &mut HashSet<String>) {
    fn add(s: &str, out: &mut HashSet<String>) {
        if let Some((prefix, _)) = s.split_once(':') {
            out.insert(prefix.to_string());
        }
        out.insert(s.to_string());
    }
    match v {
        serde_json::Value::String(s) => add(s, out),
        serde_json::Value::Array(items) => items.iter().for_each(|i| strings_of(i, skip_contexts, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                add(k, out);
                if !(skip_contexts && k == "@context") {
                    strings_of(v, skip_contexts, out);
                }
            }
        }
        _ => {}
    }
}

/// A context with only the term definitions in `keep` (keywords always stay), scoped
/// contexts pruned alike.
fn prune(ctx: &serde_json::Value, keep: &HashSet<String>) -> serde_json::Value {
    match ctx {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .filter(|(k, _)| k.starts_with('@') || keep.contains(*k))
                .map(|(k, v)| {
                    let mut v = v.clone();
                    if let Some(scoped) = v.get("@context").map(|c| prune(c, keep)) {
                        v["@context"] = scoped;
                    }
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The terms a document names: every string in it (a key, a type, a value that a
/// `@vocab`-typed term expands, the prefix of a compact IRI) that a shipped context defines.
/// Sorted, it keys the loader cache.
fn terms_named(doc: &serde_json::Value, shipped: &Shipped) -> Vec<String> {
    let mut strings = HashSet::new();
    strings_of(doc, false, &mut strings);
    let mut named: Vec<String> = strings.into_iter().filter(|s| shipped.terms.contains(s)).collect();
    named.sort_unstable();
    named
}

/// The terms JSON-LD can look up for a document naming `named`: those, closed over the strings
/// of their own definitions (a definition may name another term or prefix).
fn terms_used(named: &[String], shipped: &Shipped) -> HashSet<String> {
    let mut used: HashSet<String> = named.iter().cloned().collect();
    loop {
        let mut more = HashSet::new();
        for (_, ctx) in &shipped.contexts {
            definitions_of(&ctx["@context"], &used, &mut more);
        }
        let before = used.len();
        used.extend(more.into_iter().filter(|s| shipped.terms.contains(s)));
        if used.len() == before {
            return used;
        }
    }
}

/// The strings of the definitions of `used` terms, at any depth, into `out`.
fn definitions_of(ctx: &serde_json::Value, used: &HashSet<String>, out: &mut HashSet<String>) {
    if let Some(map) = ctx.as_object() {
        for (k, v) in map {
            if k.starts_with('@') || used.contains(k) {
                strings_of(v, true, out);
                if let Some(scoped) = v.get("@context") {
                    definitions_of(scoped, used, out);
                }
            }
        }
    }
}

/// Loaders serving the shipped contexts cut down to the terms a kind of document uses, by
/// those terms. JSON-LD processing copies the whole active context at every typed node, so
/// a context holding only what the document can look up makes canonicalization several
/// times cheaper, with the same result: a term the document never names is never consulted.
static PRUNED: LazyLock<Mutex<HashMap<Vec<String>, Arc<Loader>>>> = LazyLock::new(Mutex::default);

/// Kinds of document kept at most: Cairn signs and checks a handful.
const PRUNED_KEEP: usize = 32;

fn loader_for(doc: &serde_json::Value) -> Result<Arc<Loader>, LdError> {
    let shipped = SHIPPED.as_ref().map_err(|e| LdError::Expand(format!("a shipped context is broken: {e}")))?;
    let named = terms_named(doc, shipped);
    if let Some(l) = PRUNED.lock().ok().and_then(|m| m.get(&named).cloned()) {
        return Ok(l);
    }
    let keep = terms_used(&named, shipped);
    let contexts: Vec<(&str, String)> = shipped
        .contexts
        .iter()
        .map(|(url, doc)| {
            let mut doc = doc.clone();
            doc["@context"] = prune(&doc["@context"], &keep);
            (*url, doc.to_string())
        })
        .collect();
    let loader =
        Arc::new(loader_of(&contexts).map_err(|e| LdError::Expand(format!("a shipped context is broken: {e}")))?);
    if let Ok(mut m) = PRUNED.lock() {
        if m.len() >= PRUNED_KEEP {
            m.clear();
        }
        m.insert(named, loader.clone());
    }
    Ok(loader)
}

type Quads = HashSet<Spog<SimpleTerm<'static>>>;

/// The canonical N-Quads of a JSON-LD document (RDFC-1.0 with SHA-256).
///
/// Cairn signs documents of a few fixed shapes that differ only in their values (ids, names,
/// dates, hashes). JSON-LD expansion of a shape is done once, with each free string value
/// replaced by a numbered placeholder IRI, and the values are then put back into the
/// resulting quads; canonicalization proper runs on every document. A value goes back only
/// where it means what the placeholder meant: as a literal, any string; as an IRI, only an
/// absolute IRI that no context could have rewritten. Anything else, and any document that
/// could not be read this way, takes the whole JSON-LD path instead, so the result is always
/// exactly the processor's.
pub fn canonicalize(doc: &serde_json::Value) -> Result<String, LdError> {
    let quads = match shaped_quads(doc) {
        Some(quads) => quads,
        None => quads_of(doc, &*loader_for(doc)?)?,
    };
    normalized(&quads)
}

/// [`canonicalize`] for a document from elsewhere, within `bounds`: expanded, counted
/// against the caps, then canonicalized, all before the deadline. The work runs on a thread
/// of its own; when the deadline passes first, the error is returned at once and the thread
/// is left to finish on its own (within the caps that is short; the command line that asks
/// exits on the error).
pub fn canonicalize_bounded(doc: &serde_json::Value, bounds: &Bounds) -> Result<String, LdError> {
    let left = bounds.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(LdError::OutOfTime(bounds.budget));
    }
    // Counted on the JSON first, in one cheap walk: a document that names more blank nodes
    // than the cap is refused before expansion, which itself takes time on a large document.
    let named = blank_nodes_in_json(doc);
    if named > bounds.max_blank_nodes {
        return Err(LdError::TooLarge(format!("{named} blank nodes, at most {}", bounds.max_blank_nodes)));
    }
    let (doc, caps) = (doc.clone(), *bounds);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("canonicalize".into())
        .spawn(move || {
            let result = (|| {
                let quads = match shaped_quads(&doc) {
                    Some(quads) => quads,
                    None => quads_of(&doc, &*loader_for(&doc)?)?,
                };
                caps.check(&quads)?;
                if Instant::now() >= caps.deadline {
                    return Err(LdError::OutOfTime(caps.budget));
                }
                normalized(&quads)
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| LdError::Canon(format!("cannot start canonicalizing: {e}")))?;
    match rx.recv_timeout(left) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LdError::OutOfTime(bounds.budget)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(LdError::Canon("canonicalizing stopped without an answer".into()))
        }
    }
}

/// The blank nodes a JSON-LD document makes at least, read from its JSON: each distinct
/// `_:` label, and each node object without an `id` (value and set objects are not nodes).
/// Embedded contexts are skipped.
fn blank_nodes_in_json(doc: &serde_json::Value) -> usize {
    fn walk<'a>(v: &'a serde_json::Value, labels: &mut HashSet<&'a str>, anonymous: &mut usize) {
        match v {
            serde_json::Value::String(s) if s.starts_with("_:") => {
                labels.insert(s);
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, labels, anonymous)),
            serde_json::Value::Object(map) => {
                let named = ["id", "@id"].iter().any(|k| map.get(*k).is_some_and(|i| i.is_string()));
                if !named && !map.contains_key("@value") && !map.contains_key("@set") {
                    *anonymous += 1;
                }
                for (k, v) in map {
                    if k != "@context" {
                        walk(v, labels, anonymous);
                    }
                }
            }
            _ => {}
        }
    }
    let (mut labels, mut anonymous) = (HashSet::new(), 0);
    walk(doc, &mut labels, &mut anonymous);
    labels.len() + anonymous
}

/// [`canonicalize`] by the whole JSON-LD path, every time.
#[cfg(test)]
fn canonicalize_full(doc: &serde_json::Value) -> Result<String, LdError> {
    normalized(&quads_of(doc, &*loader_for(doc)?)?)
}

fn normalized(quads: &Quads) -> Result<String, LdError> {
    let mut out = Vec::new();
    sophia_c14n::rdfc10::normalize(quads, &mut out).map_err(|e| LdError::Canon(e.to_string()))?;
    String::from_utf8(out).map_err(|e| LdError::Canon(e.to_string()))
}

#[cfg(test)]
fn canonicalize_with(doc: &serde_json::Value, loader: &Loader) -> Result<String, LdError> {
    normalized(&quads_of(doc, loader)?)
}

/// The RDF dataset of a JSON-LD document: expansion and `toRdf`.
fn quads_of(doc: &serde_json::Value, loader: &Loader) -> Result<Quads, LdError> {
    let options = JsonLdOptions::new().with_expansion_policy(Policy::Strict).with_document_loader(loader.clone());
    let parser = JsonLdParser::new_with_options(options);
    let text = doc.to_string();
    // Every context is in memory, so the future is ready at its first poll; one that is not
    // would be waiting on something outside, which must never happen.
    let source = parser
        .async_parse_str(&text)
        .now_or_never()
        .ok_or_else(|| LdError::Expand("the document needs something not shipped with Cairn".into()))?;
    source.collect_quads().map_err(|e| LdError::Expand(e.to_string()))
}

/// What marks a placeholder: this prefix and the value's number.
const SLOT: &str = "urn:x-cairn-slot:";

/// Shapes kept at most (each a few dozen quads).
const SHAPES_KEEP: usize = 64;
/// Largest shape kept, as JSON: Cairn's own documents are a few kilobytes; a larger one, from
/// elsewhere, takes the whole path rather than a place in the cache.
const SHAPE_KEY_MAX: usize = 16 * 1024;

/// The quads of each document shape seen, with placeholders for its values, by shape.
static SHAPES: LazyLock<Mutex<HashMap<String, Arc<Quads>>>> = LazyLock::new(Mutex::default);

/// Keys whose string values JSON-LD reads as terms or keywords, not as data: they stay in the
/// shape. (`@vocab`-typed terms are found in the shipped contexts.)
static FIXED_KEYS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    fn collect(ctx: &serde_json::Value, out: &mut HashSet<String>) {
        if let Some(map) = ctx.as_object() {
            for (k, v) in map {
                if v.get("@type").and_then(|t| t.as_str()) == Some("@vocab") {
                    out.insert(k.clone());
                }
                if let Some(scoped) = v.get("@context") {
                    collect(scoped, out);
                }
            }
        }
    }
    let mut keys: HashSet<String> = ["@context", "type", "@type", "@vocab", "@base", "@language", "@direction"]
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Ok(shipped) = SHIPPED.as_ref() {
        for (_, doc) in &shipped.contexts {
            collect(&doc["@context"], &mut keys);
        }
    }
    keys
});

/// The document with each free string value replaced by a placeholder, and those values in
/// order; `None` when a key or value itself looks like a placeholder.
fn shape_of<'a>(v: &'a serde_json::Value, values: &mut Vec<&'a str>) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match v {
        Value::String(s) => {
            if s.contains(SLOT) {
                return None;
            }
            values.push(s);
            Value::String(format!("{SLOT}{}", values.len() - 1))
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| shape_of(i, values)).collect::<Option<_>>()?),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, item) in map {
                // A key is never replaced, so one that looks like a placeholder would be taken
                // for one.
                if k.contains(SLOT) {
                    return None;
                }
                let shaped = if FIXED_KEYS.contains(k) {
                    if holds_slot(item) {
                        return None;
                    }
                    item.clone()
                } else {
                    shape_of(item, values)?
                };
                out.insert(k.clone(), shaped);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Whether any string in `v` (key or value) looks like a placeholder.
fn holds_slot(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains(SLOT),
        serde_json::Value::Array(items) => items.iter().any(holds_slot),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains(SLOT) || holds_slot(v)),
        _ => false,
    }
}

/// The quads of `doc` from its shape's, or `None` to take the whole path.
fn shaped_quads(doc: &serde_json::Value) -> Option<Quads> {
    let mut values = Vec::new();
    let shape = shape_of(doc, &mut values)?;
    let key = shape.to_string();
    if key.len() > SHAPE_KEY_MAX {
        return None;
    }
    let cached = SHAPES.lock().ok().and_then(|m| m.get(&key).cloned());
    let template = match cached {
        Some(t) => t,
        None => {
            let quads = Arc::new(quads_of(&shape, &*loader_for(&shape).ok()?).ok()?);
            if let Ok(mut m) = SHAPES.lock() {
                if m.len() >= SHAPES_KEEP {
                    m.clear();
                }
                m.insert(key, quads.clone());
            }
            quads
        }
    };
    let shipped = SHIPPED.as_ref().ok()?;
    let mut out = Quads::with_capacity(template.len());
    for (spo, graph) in template.iter() {
        let [s, p, o] = spo;
        let graph = match graph {
            Some(g) => Some(filled(g, &values, shipped)?),
            None => None,
        };
        out.insert(([filled(s, &values, shipped)?, filled(p, &values, shipped)?, filled(o, &values, shipped)?], graph));
    }
    Some(out)
}

/// The number of the placeholder `s` is, if it is exactly one.
fn slot_number(s: &str) -> Option<usize> {
    let n = s.strip_prefix(SLOT)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Whether JSON-LD would keep `value`, met where an IRI is expected, exactly as it is: an
/// absolute IRI of plain characters whose scheme no context defines as a prefix.
fn iri_kept(value: &str, shipped: &Shipped) -> bool {
    let plain = value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b));
    let Some((scheme, _)) = value.split_once(':') else { return false };
    plain && !scheme.is_empty() && scheme != "_" && !shipped.terms.contains(scheme) && Iri::new(value).is_ok()
}

/// A template term with its placeholder (if any) replaced; `None` when the placeholder stands
/// where its value would not be read the same way, or is only part of the term.
fn filled(t: &SimpleTerm<'static>, values: &[&str], shipped: &Shipped) -> Option<SimpleTerm<'static>> {
    use sophia_api::MownStr;
    use sophia_api::term::IriRef;
    let value = |s: &str| -> Option<Option<&str>> {
        match slot_number(s) {
            Some(n) => values.get(n).map(|v| Some(*v)),
            None if s.contains(SLOT) => None,
            None => Some(None),
        }
    };
    Some(match t {
        SimpleTerm::Iri(iri) => match value(iri.as_str())? {
            Some(v) if iri_kept(v, shipped) => SimpleTerm::Iri(IriRef::new_unchecked(MownStr::from(v.to_string()))),
            Some(_) => return None,
            None => t.clone(),
        },
        SimpleTerm::LiteralDatatype(lex, dt) => {
            if dt.as_str().contains(SLOT) {
                return None;
            }
            match value(lex)? {
                Some(v) => SimpleTerm::LiteralDatatype(MownStr::from(v.to_string()), dt.clone()),
                None => t.clone(),
            }
        }
        SimpleTerm::LiteralLanguage(lex, tag, dir) => match value(lex)? {
            Some(v) => SimpleTerm::LiteralLanguage(MownStr::from(v.to_string()), tag.clone(), *dir),
            None => t.clone(),
        },
        SimpleTerm::BlankNode(_) => t.clone(),
        SimpleTerm::Triple(_) | SimpleTerm::Variable(_) => return None,
    })
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
    #[test]
    fn a_document_past_the_caps_or_its_deadline_is_refused_and_one_within_them_canonicalizes_as_ever() {
        let (credential, unsigned, _) = signed_forms();
        let within = Bounds::foreign(DEFAULT_BUDGET);
        for doc in [&credential, &unsigned] {
            assert_eq!(canonicalize_bounded(doc, &within).unwrap(), canonicalize(doc).unwrap());
        }
        let nq = canonicalize(&credential).unwrap();
        let quads = nq.lines().count();
        let blank: HashSet<&str> = nq.split_whitespace().filter(|t| t.starts_with("_:")).collect();
        assert!(quads < MAX_FOREIGN_QUADS / 20 && blank.len() < MAX_FOREIGN_BLANK_NODES / 10, "{quads} {blank:?}");
        let few_quads = Bounds { max_quads: quads - 1, ..within };
        let err = canonicalize_bounded(&credential, &few_quads).unwrap_err().to_string();
        assert!(err.contains(&format!("{quads} RDF statements, at most {}", quads - 1)), "{err}");
        let few_blank = Bounds { max_blank_nodes: blank.len() - 1, ..within };
        let err = canonicalize_bounded(&credential, &few_blank).unwrap_err().to_string();
        assert!(err.contains(&format!("{} blank nodes, at most {}", blank.len(), blank.len() - 1)), "{err}");
        // Counted on the JSON alone, a ring of labels is refused before expansion.
        let ring: Vec<serde_json::Value> = (0..300)
            .map(
                |i| json!({"id": format!("_:r{i}"), "type": ["Profile"], "parentOrg": format!("_:r{}", (i + 1) % 300)}),
            )
            .collect();
        let mut ringed = unsigned.clone();
        ringed["evidence"] = json!(ring);
        assert!(blank_nodes_in_json(&ringed) > 300);
        let err = canonicalize_bounded(&ringed, &within).unwrap_err().to_string();
        assert!(err.contains("blank nodes, at most 200"), "{err}");
        assert!(blank_nodes_in_json(&credential) <= blank.len() + 1, "{}", blank_nodes_in_json(&credential));
        let late = Bounds { deadline: Instant::now(), ..within };
        let err = canonicalize_bounded(&credential, &late).unwrap_err();
        assert!(matches!(err, LdError::OutOfTime(_)), "{err}");
        assert!(err.to_string().contains("budget of 5 s"), "{err}");
    }

    #[test]
    fn contexts_cut_to_a_documents_terms_canonicalize_exactly_as_the_whole_ones() {
        let full: Vec<(&str, String)> = CONTEXTS.iter().map(|(u, t)| (*u, t.to_string())).collect();
        let full = loader_of(&full).unwrap();
        let (credential, unsigned, options) = signed_forms();
        let list =
            crate::badges::vc::status_list("https://x.example", "did:web:x.example", 1, &[3], 1_700_000_000).unwrap();
        for doc in [credential, unsigned, options, list] {
            let cut = canonicalize(&doc).unwrap();
            assert_eq!(cut, canonicalize_with(&doc, &full).unwrap(), "{doc}");
            assert!(cut.lines().count() > 3, "{cut}");
        }
        // A term the document names but no shipped context defines is still refused.
        let mut stray = serde_json::from_str::<serde_json::Value>(CREDENTIAL).unwrap();
        stray["credentialSubject"]["favouriteColour"] = json!("green");
        assert_eq!(
            canonicalize(&stray).is_err(),
            canonicalize_with(&stray, &full).is_err(),
            "the cut contexts judge an unknown term as the whole ones do"
        );
    }

    #[test]
    fn documents_read_by_their_shape_canonicalize_exactly_as_by_the_whole_path() {
        let (credential, unsigned, options) = signed_forms();
        // The usual documents take the shape path.
        for doc in [&credential, &unsigned, &options] {
            assert!(shaped_quads(doc).is_some(), "{doc}");
        }
        let tricky = [
            "plain",
            "quotes \" and \\ backslash",
            "line\nbreak\ttab\r",
            "naïve café — 学习 🎓",
            "Evidence",
            "Profile",
            "emailAddress",
            "assertionMethod",
            "id",
            "@id",
            "",
            " ",
            "did:example:123",
            "https://other.example/x?y=1#z",
            "relative/path",
            "#fragment",
            "_:b0",
            "urn:x-cairn-slot:0",
            "xsd:string",
            "https://bad host/",
            "https://example.org/<script>",
            "2026-13-45T99:00:00Z",
        ];
        let mut shaped = 0;
        for (i, value) in tricky.iter().enumerate() {
            for path in [
                &["name"][..],
                &["credentialSubject", "achievement", "name"],
                &["credentialSubject", "achievement", "criteria", "narrative"],
                &["credentialSubject", "achievement", "id"],
                &["credentialSubject", "identifier", "0", "salt"],
                &["evidence", "0", "id"],
                &["evidence", "1", "description"],
                &["issuer", "id"],
                &["issuer", "url"],
                &["id"],
                &["validFrom"],
                &["credentialStatus", "statusPurpose"],
                &["credentialSubject", "identifier", "0", "identityType"],
                &["proof", "verificationMethod"],
                &["proof", "proofPurpose"],
            ] {
                let mut doc = credential.clone();
                let mut at = &mut doc;
                for step in path {
                    at = match step.parse::<usize>() {
                        Ok(n) => &mut at[n],
                        Err(_) => &mut at[*step],
                    };
                }
                *at = json!(value);
                let whole = canonicalize_full(&doc).map_err(|e| e.to_string());
                let fast = canonicalize(&doc).map_err(|e| e.to_string());
                assert_eq!(fast.is_ok(), whole.is_ok(), "{path:?} = {value:?}: {fast:?} / {whole:?}");
                if let (Ok(a), Ok(b)) = (&fast, &whole) {
                    assert_eq!(a, b, "{path:?} = {value:?}");
                }
                shaped += usize::from(shaped_quads(&doc).is_some());
            }
            assert!(i < tricky.len());
        }
        assert!(shaped > 100, "most variants take the shape path: {shaped}");
        // A key that looks like a placeholder is never taken for one.
        let mut keyed = credential.clone();
        keyed["credentialSubject"]["urn:x-cairn-slot:0"] = json!("x");
        assert!(shaped_quads(&keyed).is_none());
        assert_eq!(canonicalize(&keyed).is_ok(), canonicalize_full(&keyed).is_ok());
        // A document with more or fewer values is a shape of its own.
        let mut longer = credential.clone();
        longer["credentialSubject"]["achievement"]["tag"] = json!(["#a", "#b", "https://x.example/t"]);
        longer.as_object_mut().unwrap().remove("validUntil");
        assert_eq!(canonicalize(&longer).unwrap(), canonicalize_full(&longer).unwrap());
    }

    /// The signed credential, its unsecured document and its proof options: the three
    /// documents signing and verifying canonicalize.
    fn signed_forms() -> (serde_json::Value, serde_json::Value, serde_json::Value) {
        let credential: serde_json::Value = serde_json::from_str(CREDENTIAL).unwrap();
        let mut unsigned = credential.clone();
        unsigned.as_object_mut().unwrap().remove("proof");
        let mut options = credential["proof"].clone();
        options.as_object_mut().unwrap().remove("proofValue");
        options["@context"] = credential["@context"].clone();
        (credential, unsigned, options)
    }

    const CREDENTIAL: &str = r##"{"@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"], "credentialStatus": {"id": "http://127.0.0.1:40165/credentials/status/1#1", "statusListCredential": "http://127.0.0.1:40165/credentials/status/1", "statusListIndex": "1", "statusPurpose": "revocation", "type": "BitstringStatusListEntry"}, "credentialSubject": {"achievement": {"criteria": {"id": "http://127.0.0.1:40165/tasks/el30-data", "narrative": "- A post on your own blog, tagged **#el30-data**."}, "description": "Write a post describing a data source.", "id": "http://127.0.0.1:40165/badges/el30-data", "image": {"id": "http://127.0.0.1:40165/tasks/el30-data/badge", "type": "Image"}, "name": "Open up a data source", "tag": ["#el30-data"], "type": ["Achievement"]}, "identifier": [{"hashed": true, "identityHash": "sha256$dca4330fee1ba739ae67d2eac2bf4fe404805cc2a3b5da320180d7a2de4b934e", "identityType": "emailAddress", "salt": "2c1fcd3e52fc75ae13f157d4088e0109", "type": "IdentityObject"}], "type": ["AchievementSubject"]}, "evidence": [{"genre": "Blog post", "id": "https://lin.example.org/data", "name": "Post", "narrative": "A clear post on data.", "type": ["Evidence"]}, {"description": "Chain record id (SHA-256): aa3f", "genre": "Recognition chain proof", "id": "http://127.0.0.1:40165/assertions/7c9f/proof", "name": "Recognition chain record", "type": ["Evidence"]}], "id": "http://127.0.0.1:40165/assertions/7c9f/credential", "issuer": {"id": "did:web:127.0.0.1%3A40165", "name": "Test University", "type": ["Profile"], "url": "http://127.0.0.1:40165/"}, "name": "Open up a data source", "proof": {"created": "2026-11-30T11:00:00Z", "cryptosuite": "eddsa-rdfc-2022", "proofPurpose": "assertionMethod", "proofValue": "z2Feh", "type": "DataIntegrityProof", "verificationMethod": "did:web:127.0.0.1%3A40165#z6Mks"}, "type": ["VerifiableCredential", "OpenBadgeCredential"], "validFrom": "2026-11-30T11:00:00Z", "validUntil": "2027-11-30T11:00:00Z"}"##;
}
