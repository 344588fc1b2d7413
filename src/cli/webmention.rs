//! `cairn webmention`: sending one Webmention by hand, as the outbox would.

use std::time::Duration;

use clap::Subcommand;

use super::runtime;
use crate::config::Settings;
use crate::notify::outbox::{
    self, FOREGROUND_ATTEMPTS, FOREGROUND_MAX_WAIT_SECS, FOREGROUND_TIMEOUT_SECS, ForegroundLimits, Stopped,
};
use crate::webmention::{Outcome, Sender};

#[derive(Debug, Subcommand)]
pub enum WebmentionCommand {
    /// Discover TARGET's Webmention endpoint and send SOURCE → TARGET with the same code,
    /// limits, outbound policy and User-Agent as the outbox. Timeouts, 429 and 5xx are retried
    /// after what Retry-After asks, or else after 1 s doubling, each retry printed. The first
    /// bound reached ends it: --timeout (everything, attempts and waits), --attempts, or
    /// --max-wait (waits only); a retry whose wait would pass one is not made, and an attempt
    /// still running at --timeout is cut short. Prints what it did; exits non-zero, with the
    /// reason, when nothing was delivered.
    Send {
        source: String,
        target: String,
        /// Send exactly once (the same as --attempts 1): no retry, whatever the answer.
        #[arg(long)]
        once: bool,
        /// Most attempts in all.
        #[arg(long, value_name = "N", default_value_t = FOREGROUND_ATTEMPTS,
              value_parser = clap::value_parser!(u32).range(1..=20))]
        attempts: u32,
        /// Longest total wait between attempts, in seconds; a retry that would wait longer is
        /// not made.
        #[arg(long, value_name = "SECONDS", default_value_t = FOREGROUND_MAX_WAIT_SECS,
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        max_wait: u64,
        /// Longest the whole command takes, in seconds: discovery, sending, retries and the
        /// waits between them. Past it the command gives up with the reason.
        #[arg(long, value_name = "SECONDS", default_value_t = FOREGROUND_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
}

pub fn run(settings: &Settings, cmd: WebmentionCommand) -> anyhow::Result<()> {
    let WebmentionCommand::Send { source, target, once, attempts, max_wait, timeout } = cmd;
    let base = settings.public_base_url(settings.bind);
    let fetcher = crate::harvest::fetcher(&settings.harvest, &settings.allow_origins, &base)?;
    let sender = Sender::new(&fetcher, &base);
    let limits = ForegroundLimits {
        attempts: if once { 1 } else { attempts },
        max_wait_secs: max_wait,
        timeout: Duration::from_secs(timeout),
    };
    let done = runtime()?.block_on(outbox::send_in_foreground(&sender, &source, &target, limits, |r| {
        if let Outcome::Failed { reason, .. } = r.outcome {
            println!("attempt {}: {reason}; retrying in {} s", r.failed_attempt, r.wait_secs);
        }
        tokio::time::sleep(Duration::from_secs(r.wait_secs))
    }));
    match done.outcome {
        Outcome::Sent { endpoint, status, location } => {
            println!("endpoint: {endpoint}");
            println!("status: {status} (accepted)");
            if let Some(l) = location {
                println!("status page: {l}");
            }
            Ok(())
        }
        Outcome::NoEndpoint => {
            println!("endpoint: none ({target} advertises no Webmention endpoint)");
            anyhow::bail!("nothing was sent")
        }
        Outcome::NotATarget { status } => {
            println!("endpoint: none");
            anyhow::bail!("{}", crate::webmention::not_a_target(status))
        }
        Outcome::Failed { endpoint, reason, retry, .. } => {
            println!("endpoint: {}", endpoint.as_deref().unwrap_or("not found"));
            let n = done.attempts;
            let why = match done.stopped {
                Some(Stopped::Attempts) if once && retry => {
                    " (sent once, as asked; the answer is worth a retry later, which the outbox would make)".to_string()
                }
                Some(Stopped::Attempts) if once => " (sent once, as asked)".to_string(),
                Some(Stopped::Attempts) => format!(" (after {n} attempt(s), the most --attempts allows)"),
                Some(Stopped::MaxWait(wait)) => {
                    format!(" (after {n} attempt(s); the next would wait {wait} s, past --max-wait)")
                }
                Some(Stopped::Deadline(wait)) => {
                    format!(" (after {n} attempt(s); the next would wait {wait} s, past --timeout {timeout})")
                }
                Some(Stopped::TimedOut) => format!(" (gave up during attempt {n}, at --timeout {timeout})"),
                None => String::new(),
            };
            anyhow::bail!("{reason}{why}")
        }
    }
}
