//! `cairn credential`: checking an Open Badges 3.0 credential with Cairn's own verifier;
//! and `cairn identity rotate`, a new key for signing credentials.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::runtime;
use crate::badges::verify::{self, ChainCheck};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Check an Open Badges 3.0 credential: FILE is its JSON, or a PNG or SVG with one baked
    /// in. Checks the eddsa-rdfc-2022 proof (did:key issuers offline; did:web issuers by
    /// fetching their DID document under the outbound policy), the validity dates, the
    /// revocation status list, and the chain record the credential states. Prints what it
    /// found; exits non-zero unless the credential holds.
    ///
    /// The credential may come from anywhere, so it is held to bounds before its signature
    /// is checked: at most 2,000 RDF statements and 200 blank nodes (Cairn's own have about
    /// fifty and a handful), and --budget seconds for canonicalizing it and its status list.
    Verify {
        file: PathBuf,
        /// Wall-clock time canonicalizing the credential and its status list may take in all.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::badges::ld::DEFAULT_BUDGET.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=600))]
        budget: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Make a new key for signing Open Badges 3.0 credentials (and status lists). The DID
    /// document keeps every earlier key as a verification method, so credentials signed
    /// before keep verifying; the chain identity does not change. Running servers sign with
    /// the new key from their next award on.
    Rotate,
}

/// `cairn identity rotate`.
pub fn rotate(settings: &Settings, acting: Option<&str>) -> anyhow::Result<()> {
    let pool = crate::startup::open_store(settings)?;
    let chain_key = crate::ledger::load_key(&settings.data_dir)?;
    let mut conn = pool.get()?;
    let actor = super::actor(&mut conn, acting)?;
    let key =
        crate::app::credentials::rotate(&mut conn, &actor, &settings.data_dir, &chain_key, crate::clock::system_now())?;
    let base = settings.public_base_url(settings.bind);
    let did = crate::badges::award::issuer_did(&base)?;
    println!("new credential key: {did}#{key}");
    println!("earlier keys stay in {did}'s DID document; credentials signed with them keep verifying");
    Ok(())
}

pub fn run(settings: &Settings, cmd: CredentialCommand) -> anyhow::Result<()> {
    let CredentialCommand::Verify { file, budget } = cmd;
    let mut bytes = Vec::new();
    std::fs::File::open(&file)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, verify::MAX_FILE as u64 + 1), &mut bytes))
        .with_context(|| format!("cannot read {}", file.display()))?;
    let doc = verify::credential_from_file(&bytes).map_err(anyhow::Error::msg)?;
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    let report = runtime()?
        .block_on(verify::verify(&doc, &fetcher, crate::clock::system_now(), std::time::Duration::from_secs(budget)))
        .map_err(|e| anyhow::anyhow!("the credential does not verify: {e}"))?;
    println!("credential: {}", report.name.as_deref().unwrap_or("(unnamed)"));
    println!("issuer: {}", report.issuer);
    println!("signature: valid (eddsa-rdfc-2022, {})", report.method);
    let until = report.validity.valid_until.map(crate::badges::vc::rfc3339);
    println!(
        "valid: from {}{}",
        crate::badges::vc::rfc3339(report.validity.valid_from),
        until.map(|u| format!(" until {u}")).unwrap_or_default()
    );
    match report.revoked {
        None => println!("status: no status list"),
        Some(true) => println!("status: REVOKED"),
        Some(false) => println!("status: not revoked"),
    }
    match &report.chain {
        None => {}
        Some(ChainCheck::Matches { proof_url, status }) => println!("chain record: matches ({status}, {proof_url})"),
        Some(ChainCheck::Mismatch(why)) => println!("chain record: MISMATCH: {why}"),
        Some(ChainCheck::Unavailable(why)) => println!("chain record: not checked: {why}"),
    }
    if report.holds() {
        println!("VALID");
        Ok(())
    } else {
        anyhow::bail!("the credential does not hold")
    }
}
