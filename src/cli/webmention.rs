//! `cairn webmention`: sending one Webmention by hand, as the outbox would.

use clap::Subcommand;

use super::runtime;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum WebmentionCommand {
    /// Discover TARGET's Webmention endpoint and send SOURCE → TARGET once, with the same
    /// code, limits and outbound policy as the outbox. Prints what it did; exits non-zero
    /// when nothing was delivered.
    Send { source: String, target: String },
}

pub fn run(settings: &Settings, cmd: WebmentionCommand) -> anyhow::Result<()> {
    let WebmentionCommand::Send { source, target } = cmd;
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    match runtime()?.block_on(crate::webmention::send(&fetcher, &source, &target)) {
        crate::webmention::Outcome::Sent { endpoint, status, location } => {
            println!("endpoint: {endpoint}");
            println!("status: {status} (accepted)");
            if let Some(l) = location {
                println!("status page: {l}");
            }
            Ok(())
        }
        crate::webmention::Outcome::NoEndpoint => {
            println!("endpoint: none ({target} advertises no Webmention endpoint)");
            anyhow::bail!("nothing was sent")
        }
        crate::webmention::Outcome::Failed { endpoint, reason, retry, .. } => {
            println!("endpoint: {}", endpoint.as_deref().unwrap_or("not found"));
            anyhow::bail!("{reason}{}", if retry { " (the outbox would retry this)" } else { "" })
        }
    }
}
