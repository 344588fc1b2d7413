//! Open Badges 2.0 documents (hosted verification): the Issuer Profile, one BadgeClass
//! per Task, Assertions and the revocation list, all under the public base URL.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::db::courses::Task;
use crate::db::institution::Institution;

pub const CONTEXT: &str = "https://w3id.org/openbadges/v2";

pub fn issuer_url(base: &str) -> String {
    format!("{base}/issuer")
}

pub fn revocation_list_url(base: &str) -> String {
    format!("{base}/issuer/revocations")
}

pub fn badge_class_url(base: &str, task: &Task) -> String {
    format!("{base}/badges/{}", task.slug())
}

pub fn assertion_url(base: &str, public_id: &str) -> String {
    format!("{base}/assertions/{public_id}")
}

/// `"sha256$" + hex(sha256(email + salt))`, the email lower-cased and trimmed.
pub fn identity_hash(email: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(email.trim().to_lowercase().as_bytes());
    h.update(salt.as_bytes());
    format!("sha256${}", hex::encode(h.finalize()))
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The Issuer Profile. `fallback_email` is used when the institution has none (the spec
/// expects a contact address).
pub fn issuer(base: &str, inst: &Institution, fallback_email: &str) -> Value {
    let mut doc = json!({
        "@context": CONTEXT,
        "type": "Issuer",
        "id": issuer_url(base),
        "name": inst.name,
        "url": if inst.url.is_empty() { format!("{base}/") } else { inst.url.clone() },
        "email": if inst.email.is_empty() { fallback_email.to_string() } else { inst.email.clone() },
        "revocationList": revocation_list_url(base),
    });
    if !inst.description.is_empty() {
        doc["description"] = json!(inst.description);
    }
    if inst.image_type.is_some() {
        doc["image"] = json!(format!("{base}/institution/image"));
    }
    doc
}

/// A Task's BadgeClass.
pub fn badge_class(base: &str, task: &Task, course_titles: &[String]) -> Value {
    let description = if task.description.trim().is_empty() {
        format!("Awarded for the task \u{201c}{}\u{201d} ({}).", task.title, task.hashtag)
    } else {
        task.description.clone()
    };
    let mut criteria = json!({"id": format!("{base}/tasks/{}", task.slug())});
    if !task.criteria.trim().is_empty() {
        criteria["narrative"] = json!(task.criteria);
    }
    let mut tags = vec![task.slug().to_string()];
    tags.extend(course_titles.iter().cloned());
    json!({
        "@context": CONTEXT,
        "type": "BadgeClass",
        "id": badge_class_url(base, task),
        "name": task.title,
        "description": description,
        "image": format!("{base}/tasks/{}/badge", task.slug()),
        "criteria": criteria,
        "issuer": issuer_url(base),
        "tags": tags,
    })
}

/// What an Assertion document is made of.
pub struct AssertionParts<'a> {
    pub base: &'a str,
    pub public_id: &'a str,
    pub badge_class: &'a str,
    pub salt: &'a str,
    pub identity: &'a str,
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub evidence_url: Option<&'a str>,
    pub narrative: Option<&'a str>,
    pub revoked: Option<&'a str>,
}

/// An Assertion (hosted verification). The image is the baked PNG.
pub fn assertion(p: &AssertionParts) -> Value {
    let id = assertion_url(p.base, p.public_id);
    let mut doc = json!({
        "@context": CONTEXT,
        "type": "Assertion",
        "id": id,
        "recipient": {"type": "email", "hashed": true, "salt": p.salt, "identity": p.identity},
        "badge": p.badge_class,
        "verification": {"type": "hosted"},
        "issuedOn": rfc3339(p.issued_on),
        "image": format!("{id}/badge.png"),
    });
    if let Some(e) = p.expires {
        doc["expires"] = json!(rfc3339(e));
    }
    let mut evidence = serde_json::Map::new();
    if let Some(url) = p.evidence_url {
        evidence.insert("id".into(), json!(url));
    }
    if let Some(n) = p.narrative.filter(|n| !n.trim().is_empty()) {
        evidence.insert("narrative".into(), json!(n));
        doc["narrative"] = json!(n);
    }
    if !evidence.is_empty() {
        doc["evidence"] = Value::Object(evidence);
    }
    if let Some(reason) = p.revoked {
        doc["revoked"] = json!(true);
        doc["revocationReason"] = json!(reason);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_hash_matches_the_spec_formula() {
        // sha256("alice@example.org" + "7c0ffee-salt"), as in the conformance fixtures.
        assert_eq!(
            identity_hash("Alice@Example.org", "7c0ffee-salt"),
            "sha256$c7e0fee9516aab810bfcec93598b25bbbecf8a2a1722badbdc7fb9a2de96561e"
        );
    }
}
