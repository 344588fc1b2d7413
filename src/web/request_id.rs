//! Every request's id: taken from `X-Request-Id` when a trusted proxy sent it (see
//! `trusted_proxies`), else made here. It is returned in the response's `X-Request-Id` and is
//! a field of the span every log line of the request is written in.

use std::net::IpAddr;

/// The header that carries the id, both ways.
pub const HEADER: &str = "x-request-id";
/// The longest id accepted from a proxy.
pub const MAX_LEN: usize = 128;

/// True for an id fit to accept: 1 to [`MAX_LEN`] visible ASCII characters.
pub fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A new id: 16 random bytes in hex.
pub fn generate() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The id of a request from `peer` that carried `given` (its `X-Request-Id`, if any): `given`
/// when the peer is a trusted proxy and the id is acceptable, else a new one.
pub fn choose(peer: Option<IpAddr>, given: Option<&[u8]>, trusted: &crate::config::TrustedProxies) -> String {
    let from_proxy = peer.is_some_and(|p| trusted.contains(&p.to_canonical()));
    match given.and_then(|g| std::str::from_utf8(g).ok()) {
        Some(id) if from_proxy && acceptable(id) => id.to_string(),
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustedProxies;

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8".to_string()]).unwrap()
    }

    #[test]
    fn a_trusted_proxy_s_id_is_kept_and_anyone_else_s_replaced() {
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let outsider: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(choose(Some(proxy), Some(b"abc-123"), &proxies()), "abc-123");
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(choose(Some(mapped), Some(b"abc-123"), &proxies()), "abc-123");
        let replaced = choose(Some(outsider), Some(b"abc-123"), &proxies());
        assert_ne!(replaced, "abc-123");
        assert_eq!(replaced.len(), 32);
        assert!(replaced.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(choose(None, Some(b"abc-123"), &proxies()), "abc-123");
    }

    #[test]
    fn an_unfit_id_is_replaced_even_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let long = "a".repeat(MAX_LEN + 1);
        let fits = "a".repeat(MAX_LEN);
        assert_eq!(choose(Some(proxy), Some(fits.as_bytes()), &proxies()), fits);
        for bad in [long.as_bytes(), b"", b"has space", b"tab\there", b"new\nline", "caf\u{e9}".as_bytes(), b"\xff"] {
            let got = choose(Some(proxy), Some(bad), &proxies());
            assert_ne!(got.as_bytes(), bad);
            assert_eq!(got.len(), 32, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(generate(), generate());
    }
}
