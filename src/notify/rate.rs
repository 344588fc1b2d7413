//! Per-client request limits in fixed windows, for the public endpoints anyone can call
//! (received Webmentions, peers, joining).

/// Webmentions a client address may send per minute.
pub const MENTIONS_PER_MINUTE: u32 = 30;

/// Counts requests per client address in fixed windows (a minute unless said otherwise).
#[derive(Debug)]
pub struct RateLimit {
    per_window: u32,
    window_secs: i64,
    windows: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>,
}

/// The key a per-client limit counts under: an IPv4 address, or an IPv6 address's /64, which
/// one client typically holds whole.
pub fn limit_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Client addresses a [`RateLimit`] remembers at most; past it, finished windows are dropped,
/// then the oldest half.
const RATE_ENTRIES: usize = 10_000;

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        Self::per_window(per_minute, 60)
    }

    pub fn per_window(limit: u32, window_secs: i64) -> RateLimit {
        RateLimit { per_window: limit, window_secs: window_secs.max(1), windows: Default::default() }
    }

    /// True when `addr` may make another request now.
    pub fn allow(&self, addr: Option<std::net::IpAddr>, now: i64) -> bool {
        self.check(addr, now).is_ok()
    }

    /// Counts a request; `Err(seconds)` until the window ends when the limit is passed.
    pub fn check(&self, addr: Option<std::net::IpAddr>, now: i64) -> Result<(), u64> {
        let Some(addr) = addr.map(limit_key) else { return Ok(()) };
        let window = self.window_secs;
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= RATE_ENTRIES && !w.contains_key(&addr) {
            w.retain(|_, (start, _)| now - *start < window);
            if w.len() >= RATE_ENTRIES {
                let mut starts: Vec<i64> = w.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                w.retain(|_, (start, _)| *start > cut);
            }
        }
        let e = w.entry(addr).or_insert((now, 0));
        if now - e.0 >= window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        if e.1 <= self.per_window { Ok(()) } else { Err((e.0 + window - now).max(1) as u64) }
    }
}
