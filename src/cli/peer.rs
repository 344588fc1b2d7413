//! `cairn peer`: the trust list of peer institutions.

use std::io::{IsTerminal, Write};

use clap::Subcommand;

use super::{rfc3339, runtime};
use crate::config::Settings;
use crate::startup::open_store;

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Fetch URL's identity, show its fingerprint, and trust it after confirmation.
    Add {
        /// The peer's base URL, e.g. https://cairn.other.edu
        url: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List trusted peers with their state.
    List,
    /// Stop trusting a peer.
    Remove { url: String },
}

pub fn run(settings: &Settings, cmd: PeerCommand, acting: Option<&str>) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let mut conn = pool.get()?;
    let actor = super::actor(&mut conn, acting)?;
    match cmd {
        PeerCommand::Add { url, yes } => {
            let client = crate::peers::client::Client::new()?;
            let candidate =
                runtime()?.block_on(crate::app::peers::fetch_candidate(&client, &url, &settings.chain.network))?;
            println!("Peer {}: {}", candidate.url, candidate.name);
            println!("base URL:    {}", candidate.base_url);
            println!("public key:  {}", candidate.public_key);
            println!("fingerprint: {}", candidate.fingerprint());
            if !yes {
                if !std::io::stdin().is_terminal() {
                    anyhow::bail!("not confirmed: run in a terminal to confirm, or pass --yes");
                }
                print!("Trust this institution? Compare the fingerprint with theirs. [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    anyhow::bail!("not added");
                }
            }
            let peer = crate::app::peers::trust(&mut conn, &actor, None, &candidate, crate::clock::system_now())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Added {} to the trust list.", peer.url);
            Ok(())
        }
        PeerCommand::List => {
            let list = crate::db::peers::list(&mut conn)?;
            if list.is_empty() {
                println!("No peers.");
            }
            for p in list {
                println!(
                    "{}  {}  fingerprint {}  height {}  relayed {}  last contact {}{}{}",
                    p.url,
                    p.name,
                    crate::peers::fingerprint(&p.public_key),
                    p.last_height.map_or("?".into(), |h| h.to_string()),
                    p.records_relayed,
                    rfc3339(p.last_contact_at).unwrap_or_else(|| "never".into()),
                    p.last_error.map(|e| format!("  last error: {e}")).unwrap_or_default(),
                    if p.finality_refusals > 0 {
                        format!(
                            "  refused {} branch(es) it mined that would remove final blocks (last: {})",
                            p.finality_refusals,
                            p.last_refusal.unwrap_or_default()
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        PeerCommand::Remove { url } => {
            crate::app::peers::remove(&mut conn, &actor, None, &url, crate::clock::system_now())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Removed {url} from the trust list.");
            Ok(())
        }
    }
}
