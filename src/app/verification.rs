//! What a badge's public page says about it: each check an employer would want made, in
//! plain words, with its outcome.

use diesel::SqliteConnection;

use crate::db::awards::Award;
use crate::db::{StoreError, StoreResult};
use crate::ledger::ChainStatus;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Neither: not applicable, or not settled yet (a record waiting for its block).
    Pending,
}

impl Outcome {
    /// The word the page's style and screen readers use.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
        }
    }
}

/// One check and what it found.
#[derive(Debug, Clone)]
pub struct Check {
    pub outcome: Outcome,
    pub text: String,
}

/// Checks the signature of the award's Open Badges 3.0 credential, as stored, against this
/// institution's DID document: `Ok(Some(method))` when it verifies, `Ok(None)` when the award
/// has no credential, `Err(reason)` inside when it does not verify.
pub fn credential_signature(
    conn: &mut SqliteConnection,
    base: &str,
    chain_key: &cairn_chain::SigningKey,
    public_id: &str,
) -> StoreResult<Option<Result<String, String>>> {
    let json = match crate::db::credentials::json_of(conn, public_id) {
        Ok(json) => json,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&json) else {
        return Ok(Some(Err("the stored credential is not JSON".into())));
    };
    let did_doc = crate::badges::award::did_document(conn, base, chain_key)?;
    let result = crate::badges::vc::verify_proof(&doc, &mut |m| crate::badges::vc::method_in(&did_doc, m));
    Ok(Some(result.map_err(|e| e.to_string())))
}

/// The checks of an award at `now`, in the order the page lists them. `members` is the
/// number of institutions that share the chain; `day` writes a time as a date.
pub fn checks(
    award: &Award,
    issuer: &str,
    signature: &Option<Result<String, String>>,
    chain: &ChainStatus,
    members: usize,
    now: i64,
    day: impl Fn(i64) -> String,
) -> Vec<Check> {
    let check = |outcome, text: String| Check { outcome, text };
    let mut out = Vec::with_capacity(4);
    out.push(match signature {
        Some(Ok(_)) => check(
            Outcome::Passed,
            format!("Signature valid: the credential is signed with a key that {issuer} publishes."),
        ),
        Some(Err(why)) => check(Outcome::Failed, format!("Signature not valid: {why}.")),
        None => check(
            Outcome::Pending,
            "No signed credential: this badge was awarded before signed credentials were issued.".into(),
        ),
    });
    out.push(match (award.revoked_at, &award.revocation_reason) {
        (None, _) => check(Outcome::Passed, format!("Not revoked: {issuer} has not withdrawn it.")),
        (Some(at), Some(reason)) => check(Outcome::Failed, format!("Revoked on {}: {reason}.", day(at))),
        (Some(at), None) => check(Outcome::Failed, format!("Revoked on {}.", day(at))),
    });
    out.push(match award.expires {
        None => check(Outcome::Passed, "Not expired: it does not expire.".into()),
        Some(e) if e > now => check(Outcome::Passed, format!("Not expired: valid until {}.", day(e))),
        Some(e) => check(Outcome::Failed, format!("Expired on {}.", day(e))),
    });
    let shared = match members {
        0 | 1 => "the recognition chain".to_string(),
        n => format!("the recognition chain shared by {n} institutions"),
    };
    out.push(match chain {
        ChainStatus::Recorded { height, depth, is_final, .. } => {
            let standing = match (*is_final, *depth) {
                (true, _) => "final: no later change to the chain can remove it".to_string(),
                (false, 1) => "1 confirmation so far".to_string(),
                (false, n) => format!("{n} confirmations so far"),
            };
            check(Outcome::Passed, format!("Recorded on {shared}, in block {height}; {standing}."))
        }
        ChainStatus::Pending => {
            check(Outcome::Pending, format!("Waiting to be recorded on {shared}: the next block will hold it."))
        }
        ChainStatus::None => {
            check(Outcome::Pending, "Not on the recognition chain: it was awarded before the chain was kept.".into())
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn award() -> Award {
        Award {
            id: 1,
            public_id: "x".into(),
            task_id: 1,
            link_id: None,
            author_id: None,
            recipient_email: "a@example.org".into(),
            recipient_name: None,
            salt: "s".into(),
            identity: "i".into(),
            evidence_url: None,
            narrative: None,
            issued_on: 100,
            expires: Some(200),
            revoked_at: None,
            revocation_reason: None,
            awarded_by: None,
            withdrawn_at: None,
        }
    }

    #[test]
    fn each_check_says_what_it_found() {
        let day = |t: i64| format!("day {t}");
        let recorded = ChainStatus::Recorded { height: 3, hash: "ab".into(), depth: 7, is_final: true };
        let ok = checks(&award(), "Uni", &Some(Ok("m".into())), &recorded, 3, 150, day);
        assert!(ok.iter().all(|c| c.outcome == Outcome::Passed), "{ok:?}");
        assert!(ok[3].text.contains("shared by 3 institutions") && ok[3].text.contains("final"), "{ok:?}");
        assert!(ok[2].text.contains("valid until day 200"));

        let mut revoked = award();
        revoked.revoked_at = Some(120);
        revoked.revocation_reason = Some("plagiarism".into());
        let bad = checks(&revoked, "Uni", &Some(Err("bad signature".into())), &ChainStatus::Pending, 1, 250, day);
        let outcomes: Vec<Outcome> = bad.iter().map(|c| c.outcome).collect();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::Failed, Outcome::Failed, Outcome::Pending]);
        assert_eq!(bad[1].text, "Revoked on day 120: plagiarism.");
        assert_eq!(bad[2].text, "Expired on day 200.");
    }
}
