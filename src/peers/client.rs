//! The HTTP client for peer institutions. Peer URLs are explicit, so they bypass the
//! private-address policy; redirects are never followed, proxies never used, time is bounded
//! and responses are size-capped, so nothing a peer sends makes Cairn contact another address
//! or hold more than [`MAX_BODY`] of its answer.

use std::time::Duration;

use cairn_chain::Block;
use serde::Deserialize;

use super::wire::{BlocksPage, Head, Identity, PAGE, Payload};

/// Largest response read from a peer.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Longest wait for a peer's whole answer, and for its connection.
const TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer's answer Cairn could not use.
#[derive(Debug, thiserror::Error)]
pub enum Answer {
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the response is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("malformed JSON: {0}")]
    NotJson(serde_json::Error),
}

/// Why an exchange with a peer failed, in a sentence for the peers page; the whole cause
/// chain is for the log.
pub fn in_words(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(answer) = cause.downcast_ref::<Answer>() {
            return match answer {
                Answer::Status(s) => format!("The peer answered {}.", s.as_u16()),
                Answer::TooLarge => format!("The peer's answer was larger than {} MB.", MAX_BODY / (1024 * 1024)),
                Answer::NotJson(_) => "The peer's answer was not valid JSON.".into(),
            };
        }
        if cause.downcast_ref::<crate::db::StoreError>().is_some() {
            return "Cairn's own database failed during the exchange; the log says why.".into();
        }
        if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
            return if http.is_timeout() {
                format!("The peer did not answer within {} s.", TIMEOUT.as_secs())
            } else if http.is_connect() {
                format!(
                    "Cairn could not connect to the peer within {} s: it may be offline, or its address wrong.",
                    CONNECT_TIMEOUT.as_secs()
                )
            } else {
                "The connection to the peer broke during the exchange.".into()
            };
        }
    }
    // Cairn's own words (a refused or unconnected chain), as a sentence.
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')),
        None => "The exchange with the peer failed.".into(),
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new() -> anyhow::Result<Client> {
        crate::net::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("Cairn/", env!("CARGO_PKG_VERSION"), " (peer)"))
            .build()?;
        Ok(Client { http })
    }

    /// `GET {url}/chain/identity`.
    pub async fn identity(&self, url: &str) -> anyhow::Result<Identity> {
        read_json(self.http.get(format!("{url}/chain/identity")).send().await?).await
    }

    /// `GET {url}/chain/head`.
    pub async fn head(&self, url: &str) -> anyhow::Result<Head> {
        read_json(self.http.get(format!("{url}/chain/head")).send().await?).await
    }

    /// `GET {url}/chain/blocks`: one page of the peer's main chain from height `from`.
    pub async fn blocks(&self, url: &str, from: u64) -> anyhow::Result<BlocksPage> {
        read_json(self.http.get(format!("{url}/chain/blocks?from={from}&limit={PAGE}")).send().await?).await
    }

    /// `POST {url}/chain/records`: relays a record (canonical bytes); the peer's status.
    pub async fn relay(&self, url: &str, record: &[u8]) -> reqwest::Result<reqwest::StatusCode> {
        let res = self
            .http
            .post(format!("{url}/chain/records"))
            .json(&Payload { data: cairn_chain::to_hex(record) })
            .send()
            .await?;
        Ok(res.status())
    }

    /// `POST {url}/chain/blocks`: announces a block. The answer does not matter: a peer
    /// lacking the parent syncs from us.
    pub async fn announce(&self, url: &str, block: &Block) {
        let _ = self
            .http
            .post(format!("{url}/chain/blocks"))
            .json(&Payload { data: cairn_chain::to_hex(&block.encode_stored()) })
            .send()
            .await;
    }
}

async fn read_json<T: for<'de> Deserialize<'de>>(mut res: reqwest::Response) -> anyhow::Result<T> {
    let status = res.status();
    if !status.is_success() {
        return Err(Answer::Status(status).into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Answer::TooLarge.into());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| Answer::NotJson(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_exchange_is_said_in_a_sentence_without_the_cause_chain() {
        let said = |e: anyhow::Error| in_words(&e.context("peer exchange"));
        assert_eq!(said(Answer::Status(reqwest::StatusCode::SERVICE_UNAVAILABLE).into()), "The peer answered 503.");
        assert_eq!(said(Answer::TooLarge.into()), "The peer's answer was larger than 16 MB.");
        let not_json = serde_json::from_str::<u8>("<html>").unwrap_err();
        assert_eq!(said(Answer::NotJson(not_json).into()), "The peer's answer was not valid JSON.");
        let store = crate::db::StoreError::Conflict("database is locked".into());
        assert_eq!(said(store.into()), "Cairn's own database failed during the exchange; the log says why.");
        let own = anyhow::anyhow!("the peer's chain does not connect to ours (another network?)");
        assert_eq!(in_words(&own), "The peer's chain does not connect to ours (another network?).");
    }
}
