//! Settings: defaults, then an optional `cairn.toml`, then `CAIRN_*` environment
//! variables and command-line flags (the latter two through clap, flags winning).
//!
//! Every key is validated at start-up; a bad value stops Cairn with a message that
//! names the key and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// Default address `cairn serve` listens on.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Default configuration file, read only when it exists.
pub const DEFAULT_CONFIG_FILE: &str = "cairn.toml";
/// Name given to the institution profile when it is first created.
pub const DEFAULT_INSTITUTION_NAME: &str = "Cairn Institution";

/// The keys a `cairn.toml` may hold. Unknown keys are an error, so a typo is not
/// silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub bind: Option<String>,
    /// Directory for the database, keys and generated files.
    pub data_dir: Option<PathBuf>,
    /// Public base URL; every Open Badges id derives from it.
    pub base_url: Option<String>,
    /// Name of the institution, used when its profile is first created.
    pub institution_name: Option<String>,
    /// Origins (`scheme://host:port`) exempt from the outbound address checks.
    pub allow_origins: Option<Vec<String>>,
    /// Harvest settings.
    pub harvest: Option<HarvestFile>,
    /// Outgoing mail settings.
    pub mail: Option<MailFile>,
    /// Recognition chain settings.
    pub chain: Option<ChainFile>,
    /// Trusted peer institutions (added to the trust list at start-up).
    pub peers: Option<Vec<PeerFile>>,
    /// Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Instructor session lifetimes.
    pub sessions: Option<SessionsFile>,
    /// Limits of the public join form.
    pub join: Option<JoinFile>,
}

/// One `[[peers]]` entry in cairn.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    pub url: String,
    /// The peer's Ed25519 public key, 64 hex digits (`cairn identity` prints it).
    pub public_key: String,
    #[serde(default)]
    pub name: String,
    /// The base URL the peer's assertions live under (its `/chain/identity`); default: `url`.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// `[chain]` in cairn.toml.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    pub network: Option<String>,
    pub records_per_block: Option<u32>,
    pub difficulty_bits: Option<u32>,
    pub mining: Option<bool>,
    pub finality_depth: Option<u64>,
}

/// The recognition chain this instance takes part in. The parameters are fixed for a
/// network once its data dir has blocks.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// Network name; instances of one network share its genesis.
    pub network: String,
    /// Records per block (5).
    pub records_per_block: u32,
    /// Leading zero bits of proof of work (16 = hex "0000").
    pub difficulty_bits: u32,
    /// Whether `cairn serve` mines blocks.
    pub mining: bool,
    /// Blocks on top of a block that make it final: no branch may then remove it (6).
    pub finality_depth: u64,
}

/// `[harvest]` in cairn.toml.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestFile {
    pub interval_secs: Option<u64>,
    pub concurrency: Option<usize>,
    pub per_host: Option<usize>,
    pub timeout_secs: Option<u64>,
    pub max_bytes: Option<usize>,
    pub enabled: Option<bool>,
}

/// `[mail]` in cairn.toml.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFile {
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub smtp_tls: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub from: Option<String>,
}

// ---- abuse limits: sessions, join, trusted proxies ----

/// `[sessions]` in cairn.toml.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsFile {
    pub idle_secs: Option<u64>,
    pub absolute_secs: Option<u64>,
}

/// `[join]` in cairn.toml.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinFile {
    pub mails_per_address_per_day: Option<u32>,
    pub per_client_per_hour: Option<u32>,
}

/// How long an instructor's session lives on the server.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// A session unused this long (seconds) is over.
    pub idle_secs: u64,
    /// A session is over this long (seconds) after sign-in, used or not.
    pub absolute_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings { idle_secs: 12 * 3600, absolute_secs: 7 * 24 * 3600 }
    }
}

/// Limits of `/join`, which anyone can use to make Cairn send mail.
#[derive(Debug, Clone, Copy)]
pub struct JoinSettings {
    /// Confirmation mails one email address may receive in 24 hours.
    pub mails_per_address_per_day: u32,
    /// Join attempts one client address may make in an hour.
    pub per_client_per_hour: u32,
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings { mails_per_address_per_day: 3, per_client_per_hour: 10 }
    }
}

/// Reverse proxies whose `X-Forwarded-For` header is believed; empty means none is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses IPs (`10.0.0.1`) and CIDRs (`10.0.0.0/8`, `::1/128`).
    pub fn parse(items: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::with_capacity(items.len());
        for raw in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let net = match raw.parse::<ipnet::IpNet>() {
                Ok(n) => n,
                Err(_) => raw
                    .parse::<std::net::IpAddr>()
                    .map(ipnet::IpNet::from)
                    .map_err(|_| format!("'{raw}' is not an IP address or CIDR range"))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How the harvester polls feeds.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// Seconds between polls of one feed (jittered by up to 10%).
    pub interval_secs: u64,
    /// Feeds fetched at once, in all.
    pub concurrency: usize,
    /// Requests at once to one host.
    pub per_host: usize,
    /// Total time allowed for one request, in seconds.
    pub timeout_secs: u64,
    /// Largest response body read, in bytes.
    pub max_bytes: usize,
    /// Whether `cairn serve` runs the harvester.
    pub enabled: bool,
}

impl Default for HarvestSettings {
    fn default() -> Self {
        HarvestSettings {
            interval_secs: 3600,
            concurrency: 8,
            per_host: 2,
            timeout_secs: 20,
            max_bytes: 5 * 1024 * 1024,
            enabled: true,
        }
    }
}

/// TLS mode for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// Outgoing mail: SMTP when a host is set, otherwise `.eml` files under the data dir.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// The From address.
    pub from: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

/// Values given on the command line or in the environment (clap merges the two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub base_url: Option<String>,
    pub institution_name: Option<String>,
}

/// Validated settings shared by every command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP server binds. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Data directory (database, session key, outbox files).
    pub data_dir: PathBuf,
    /// Public base URL without a trailing slash. `None` means "derive it from the
    /// address actually bound" (`http://` + bind address).
    pub base_url: Option<Url>,
    /// Institution name used when the profile row is first created.
    pub institution_name: String,
    /// Exact origins exempt from the outbound address checks.
    pub allow_origins: Vec<String>,
    pub harvest: HarvestSettings,
    pub mail: MailSettings,
    pub chain: ChainSettings,
    /// Peers from the configuration file.
    pub peers: Vec<PeerFile>,
    pub sessions: SessionSettings,
    pub join: JoinSettings,
    pub trusted_proxies: TrustedProxies,
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration value for `{key}` ({origin}): {message}")]
    Invalid { key: &'static str, origin: &'static str, message: String },
}

impl Settings {
    /// Builds settings from defaults, the config file and the overrides.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let (file, file_origin) = match &overrides.config {
            Some(path) => (read_file(path)?, "configuration file"),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                (read_file(Path::new(DEFAULT_CONFIG_FILE))?, "cairn.toml")
            }
            None => (FileSettings::default(), "default"),
        };
        let file = apply_env(file, &|k| std::env::var(k).ok())?;
        Self::resolve(file, file_origin, overrides)
    }

    fn resolve(file: FileSettings, file_origin: &'static str, o: &Overrides) -> Result<Settings, ConfigError> {
        let pick = |flag: &Option<String>, file: Option<String>, env: &'static str| match flag {
            Some(v) => (Some(v.clone()), env),
            None => (file, file_origin),
        };

        let (bind_raw, origin) = pick(&o.bind, file.bind, "CAIRN_BIND / --bind");
        let bind_raw = bind_raw.unwrap_or_else(|| DEFAULT_BIND.to_string());
        let bind: SocketAddr = bind_raw.trim().parse().map_err(|_| ConfigError::Invalid {
            key: "bind",
            origin,
            message: format!("'{bind_raw}' is not an address like 127.0.0.1:8080"),
        })?;

        let data_dir = o.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "data_dir",
                origin: "CAIRN_DATA_DIR / --data-dir",
                message: "must not be empty".into(),
            });
        }

        let (base_raw, origin) = pick(&o.base_url, file.base_url, "CAIRN_BASE_URL / --base-url");
        let base_url = match base_raw.filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(raw) => Some(parse_base_url(&raw).map_err(|message| ConfigError::Invalid {
                key: "base_url",
                origin,
                message,
            })?),
        };

        let (name_raw, origin) =
            pick(&o.institution_name, file.institution_name, "CAIRN_INSTITUTION_NAME / --institution-name");
        let institution_name =
            name_raw.map(|s| s.trim().to_string()).unwrap_or_else(|| DEFAULT_INSTITUTION_NAME.to_string());
        if institution_name.is_empty() || institution_name.chars().count() > 200 {
            return Err(ConfigError::Invalid {
                key: "institution_name",
                origin,
                message: "must be 1 to 200 characters".into(),
            });
        }

        let allow_origins = file.allow_origins.unwrap_or_default();
        crate::net::OutboundPolicy::new(&allow_origins).map_err(|message| ConfigError::Invalid {
            key: "allow_origins",
            origin: "CAIRN_ALLOW_ORIGINS / allow_origins",
            message,
        })?;

        let h = file.harvest.unwrap_or_default();
        let d = HarvestSettings::default();
        let harvest = HarvestSettings {
            interval_secs: h.interval_secs.unwrap_or(d.interval_secs),
            concurrency: h.concurrency.unwrap_or(d.concurrency),
            per_host: h.per_host.unwrap_or(d.per_host),
            timeout_secs: h.timeout_secs.unwrap_or(d.timeout_secs),
            max_bytes: h.max_bytes.unwrap_or(d.max_bytes),
            enabled: h.enabled.unwrap_or(d.enabled),
        };
        let bad = |key: &'static str, message: &str| ConfigError::Invalid {
            key,
            origin: "[harvest] / CAIRN_HARVEST_*",
            message: message.into(),
        };
        if harvest.interval_secs < 60 {
            return Err(bad("harvest.interval_secs", "must be at least 60 seconds"));
        }
        if !(1..=256).contains(&harvest.concurrency) {
            return Err(bad("harvest.concurrency", "must be between 1 and 256"));
        }
        if !(1..=64).contains(&harvest.per_host) {
            return Err(bad("harvest.per_host", "must be between 1 and 64"));
        }
        if !(1..=600).contains(&harvest.timeout_secs) {
            return Err(bad("harvest.timeout_secs", "must be between 1 and 600"));
        }
        if !(1024..=512 * 1024 * 1024).contains(&harvest.max_bytes) {
            return Err(bad("harvest.max_bytes", "must be between 1 KiB and 512 MiB"));
        }

        let m = file.mail.unwrap_or_default();
        let smtp_tls = match m.smtp_tls.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "mail.smtp_tls",
                    origin: "[mail] / CAIRN_SMTP_TLS",
                    message: format!("'{other}' is not one of none, starttls, tls"),
                });
            }
        };
        let host_for_from =
            base_url.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "localhost".into());
        let from = m.from.unwrap_or_else(|| format!("Cairn <cairn@{host_for_from}>"));
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid {
                key: "mail.from",
                origin: "[mail] / CAIRN_MAIL_FROM",
                message: format!("'{from}' is not an address like Cairn <cairn@example.edu>"),
            });
        }
        let mail = MailSettings {
            smtp_port: m.smtp_port.unwrap_or(match smtp_tls {
                SmtpTls::Tls => 465,
                SmtpTls::StartTls => 587,
                SmtpTls::None => 25,
            }),
            smtp_host: m.smtp_host.filter(|h| !h.trim().is_empty()),
            smtp_tls,
            smtp_username: m.smtp_username.filter(|u| !u.is_empty()),
            smtp_password: m.smtp_password,
            from,
        };

        let c = file.chain.unwrap_or_default();
        let chain = ChainSettings {
            network: c.network.unwrap_or_else(|| "cairn".into()),
            records_per_block: c.records_per_block.unwrap_or(5),
            difficulty_bits: c.difficulty_bits.unwrap_or(16),
            mining: c.mining.unwrap_or(true),
            finality_depth: c.finality_depth.unwrap_or(6),
        };
        let bad = |key: &'static str, message: &str| ConfigError::Invalid {
            key,
            origin: "[chain] / CAIRN_CHAIN_*",
            message: message.into(),
        };
        if chain.network.trim().is_empty() || chain.network.len() > 100 {
            return Err(bad("chain.network", "must be 1 to 100 characters"));
        }
        if !(1..=1000).contains(&chain.records_per_block) {
            return Err(bad("chain.records_per_block", "must be between 1 and 1000"));
        }
        if !(1..=40).contains(&chain.difficulty_bits) {
            return Err(bad("chain.difficulty_bits", "must be between 1 and 40"));
        }
        if !(1..=10_000).contains(&chain.finality_depth) {
            return Err(bad("chain.finality_depth", "must be between 1 and 10000"));
        }

        let peers = file.peers.unwrap_or_default();
        for p in &peers {
            let key_ok = p.public_key.len() == 64 && p.public_key.chars().all(|c| c.is_ascii_hexdigit());
            let url_ok = url::Url::parse(&p.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !key_ok || !url_ok {
                return Err(ConfigError::Invalid {
                    key: "peers",
                    origin: "[[peers]] in the configuration file",
                    message: format!("each peer needs an http(s) url and a 64-hex-digit public_key ({})", p.url),
                });
            }
        }

        let (sessions, join, trusted_proxies) = resolve_limits(file.sessions, file.join, file.trusted_proxies)?;

        Ok(Settings {
            bind,
            data_dir,
            base_url,
            institution_name,
            allow_origins,
            harvest,
            mail,
            chain,
            peers,
            sessions,
            join,
            trusted_proxies,
        })
    }

    /// Path of the SQLite database inside the data dir.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("cairn.db")
    }

    /// The public base URL (no trailing slash) given the address actually bound.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        match &self.base_url {
            Some(u) => u.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }
}

/// The `[sessions]`, `[join]` and `trusted_proxies` settings, validated.
fn resolve_limits(
    s: Option<SessionsFile>,
    j: Option<JoinFile>,
    proxies: Option<Vec<String>>,
) -> Result<(SessionSettings, JoinSettings, TrustedProxies), ConfigError> {
    let (s, j) = (s.unwrap_or_default(), j.unwrap_or_default());
    let (ds, dj) = (SessionSettings::default(), JoinSettings::default());
    let sessions = SessionSettings {
        idle_secs: s.idle_secs.unwrap_or(ds.idle_secs),
        absolute_secs: s.absolute_secs.unwrap_or(ds.absolute_secs),
    };
    let bad = |key: &'static str, origin: &'static str, message: &str| ConfigError::Invalid {
        key,
        origin,
        message: message.into(),
    };
    let year = 366 * 24 * 3600;
    if !(1..=year).contains(&sessions.idle_secs) {
        return Err(bad("sessions.idle_secs", "[sessions] / CAIRN_SESSION_IDLE_SECS", "must be 1 second to a year"));
    }
    if !(1..=year).contains(&sessions.absolute_secs) {
        return Err(bad(
            "sessions.absolute_secs",
            "[sessions] / CAIRN_SESSION_ABSOLUTE_SECS",
            "must be 1 second to a year",
        ));
    }
    let join = JoinSettings {
        mails_per_address_per_day: j.mails_per_address_per_day.unwrap_or(dj.mails_per_address_per_day),
        per_client_per_hour: j.per_client_per_hour.unwrap_or(dj.per_client_per_hour),
    };
    if !(1..=1000).contains(&join.mails_per_address_per_day) {
        return Err(bad(
            "join.mails_per_address_per_day",
            "[join] / CAIRN_JOIN_MAILS_PER_DAY",
            "must be between 1 and 1000",
        ));
    }
    if !(1..=100_000).contains(&join.per_client_per_hour) {
        return Err(bad(
            "join.per_client_per_hour",
            "[join] / CAIRN_JOIN_PER_CLIENT_PER_HOUR",
            "must be between 1 and 100000",
        ));
    }
    let trusted_proxies = TrustedProxies::parse(&proxies.unwrap_or_default())
        .map_err(|m| bad("trusted_proxies", "trusted_proxies / CAIRN_TRUSTED_PROXIES", &m))?;
    Ok((sessions, join, trusted_proxies))
}

/// `[sessions]`, `[join]` and `trusted_proxies` from the environment.
fn apply_limits_env(file: &mut FileSettings, var: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let num = |name: &'static str, key: &'static str| -> Result<Option<u64>, ConfigError> {
        var(name)
            .map(|v| {
                v.trim().parse().map_err(|_| ConfigError::Invalid {
                    key,
                    origin: name,
                    message: format!("'{v}' is not a number"),
                })
            })
            .transpose()
    };
    let small = |v: Option<u64>, name: &'static str, key: &'static str| -> Result<Option<u32>, ConfigError> {
        v.map(|n| {
            u32::try_from(n).map_err(|_| ConfigError::Invalid {
                key,
                origin: name,
                message: format!("{n} is too large"),
            })
        })
        .transpose()
    };
    if let Some(v) = var("CAIRN_TRUSTED_PROXIES") {
        file.trusted_proxies = Some(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    }
    let mut s = file.sessions.take().unwrap_or_default();
    s.idle_secs = num("CAIRN_SESSION_IDLE_SECS", "sessions.idle_secs")?.or(s.idle_secs);
    s.absolute_secs = num("CAIRN_SESSION_ABSOLUTE_SECS", "sessions.absolute_secs")?.or(s.absolute_secs);
    file.sessions = Some(s);
    let mut j = file.join.take().unwrap_or_default();
    let (n, k) = ("CAIRN_JOIN_MAILS_PER_DAY", "join.mails_per_address_per_day");
    j.mails_per_address_per_day = small(num(n, k)?, n, k)?.or(j.mails_per_address_per_day);
    let (n, k) = ("CAIRN_JOIN_PER_CLIENT_PER_HOUR", "join.per_client_per_hour");
    j.per_client_per_hour = small(num(n, k)?, n, k)?.or(j.per_client_per_hour);
    file.join = Some(j);
    Ok(())
}

/// Environment variables for the keys that have no flag; they override the file.
fn apply_env(mut file: FileSettings, var: &dyn Fn(&str) -> Option<String>) -> Result<FileSettings, ConfigError> {
    fn num<T: std::str::FromStr>(
        var: &dyn Fn(&str) -> Option<String>,
        name: &'static str,
        key: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        match var(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Invalid {
                key,
                origin: name,
                message: format!("'{v}' is not a number"),
            }),
        }
    }
    /// Booleans are strict: a typo stops start-up rather than meaning "on".
    fn boolean(
        var: &dyn Fn(&str) -> Option<String>,
        name: &'static str,
        key: &'static str,
    ) -> Result<Option<bool>, ConfigError> {
        match var(name) {
            None => Ok(None),
            Some(v) => match v.trim() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(ConfigError::Invalid { key, origin: name, message: format!("'{v}' is not true or false") }),
            },
        }
    }
    if let Some(v) = var("CAIRN_ALLOW_ORIGINS") {
        file.allow_origins = Some(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    }
    let mut h = file.harvest.take().unwrap_or_default();
    h.interval_secs = num(var, "CAIRN_HARVEST_INTERVAL", "harvest.interval_secs")?.or(h.interval_secs);
    h.concurrency = num(var, "CAIRN_HARVEST_CONCURRENCY", "harvest.concurrency")?.or(h.concurrency);
    h.per_host = num(var, "CAIRN_HARVEST_PER_HOST", "harvest.per_host")?.or(h.per_host);
    h.timeout_secs = num(var, "CAIRN_HARVEST_TIMEOUT", "harvest.timeout_secs")?.or(h.timeout_secs);
    h.max_bytes = num(var, "CAIRN_HARVEST_MAX_BYTES", "harvest.max_bytes")?.or(h.max_bytes);
    h.enabled = boolean(var, "CAIRN_HARVEST_ENABLED", "harvest.enabled")?.or(h.enabled);
    file.harvest = Some(h);
    let mut m = file.mail.take().unwrap_or_default();
    m.smtp_host = var("CAIRN_SMTP_HOST").or(m.smtp_host);
    m.smtp_port = num(var, "CAIRN_SMTP_PORT", "mail.smtp_port")?.or(m.smtp_port);
    m.smtp_tls = var("CAIRN_SMTP_TLS").or(m.smtp_tls);
    m.smtp_username = var("CAIRN_SMTP_USERNAME").or(m.smtp_username);
    m.smtp_password = var("CAIRN_SMTP_PASSWORD").or(m.smtp_password);
    m.from = var("CAIRN_MAIL_FROM").or(m.from);
    file.mail = Some(m);
    let mut c = file.chain.take().unwrap_or_default();
    c.network = var("CAIRN_CHAIN_NETWORK").or(c.network);
    c.records_per_block = num(var, "CAIRN_CHAIN_RECORDS_PER_BLOCK", "chain.records_per_block")?.or(c.records_per_block);
    c.difficulty_bits = num(var, "CAIRN_CHAIN_DIFFICULTY_BITS", "chain.difficulty_bits")?.or(c.difficulty_bits);
    c.finality_depth = num(var, "CAIRN_CHAIN_FINALITY_DEPTH", "chain.finality_depth")?.or(c.finality_depth);
    c.mining = boolean(var, "CAIRN_CHAIN_MINING", "chain.mining")?.or(c.mining);
    file.chain = Some(c);
    apply_limits_env(&mut file, var)?;
    Ok(file)
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{raw}' must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(format!("'{raw}' has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{raw}' must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(o: Overrides) -> Result<Settings, ConfigError> {
        Settings::resolve(FileSettings::default(), "default", &o)
    }

    #[test]
    fn defaults_bind_loopback_8080_and_derive_the_base_url() {
        let s = resolve(Overrides::default()).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.public_base_url(s.bind), "http://127.0.0.1:8080");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = resolve(Overrides { bind: Some("nowhere".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("`bind`") && err.contains("CAIRN_BIND"), "{err}");
        let err =
            resolve(Overrides { base_url: Some("ftp://x".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("`base_url`"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file_and_unknown_file_keys_are_refused() {
        let file: FileSettings =
            toml::from_str("bind = \"127.0.0.1:9000\"\nbase_url = \"https://c.example.edu/\"").unwrap();
        let s = Settings::resolve(
            file,
            "cairn.toml",
            &Overrides { bind: Some("127.0.0.1:9001".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(s.bind.port(), 9001);
        assert_eq!(s.public_base_url(s.bind), "https://c.example.edu");
        let err = toml::from_str::<FileSettings>("bnd = \"x\"").unwrap_err().to_string();
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn environment_sets_harvest_mail_and_allowed_origins() {
        let env = |k: &str| match k {
            "CAIRN_ALLOW_ORIGINS" => Some("http://127.0.0.1:9001, http://localhost:9002".to_string()),
            "CAIRN_HARVEST_PER_HOST" => Some("4".to_string()),
            "CAIRN_SMTP_HOST" => Some("127.0.0.1".to_string()),
            "CAIRN_SMTP_TLS" => Some("none".to_string()),
            _ => None,
        };
        let file = apply_env(FileSettings::default(), &env).unwrap();
        let s = Settings::resolve(file, "default", &Overrides::default()).unwrap();
        assert_eq!(s.allow_origins.len(), 2);
        assert_eq!(s.harvest.per_host, 4);
        assert_eq!(s.mail.smtp_tls, SmtpTls::None);
        assert_eq!(s.mail.smtp_port, 25);
        let bad = |k: &str| (k == "CAIRN_HARVEST_PER_HOST").then(|| "many".to_string());
        let err = apply_env(FileSettings::default(), &bad).unwrap_err().to_string();
        assert!(err.contains("harvest.per_host"), "{err}");
        let bad = |k: &str| (k == "CAIRN_ALLOW_ORIGINS").then(|| "http://x.org/path".to_string());
        let file = apply_env(FileSettings::default(), &bad).unwrap();
        let err = Settings::resolve(file, "default", &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("allow_origins"), "{err}");
    }

    #[test]
    fn booleans_are_strict_and_finality_depth_is_bounded() {
        let maybe = |k: &str| (k == "CAIRN_CHAIN_MINING").then(|| "maybe".to_string());
        let err = apply_env(FileSettings::default(), &maybe).unwrap_err().to_string();
        assert!(err.contains("chain.mining") && err.contains("'maybe'"), "{err}");
        let off = |k: &str| (k == "CAIRN_CHAIN_MINING" || k == "CAIRN_HARVEST_ENABLED").then(|| "off".to_string());
        let s =
            Settings::resolve(apply_env(FileSettings::default(), &off).unwrap(), "d", &Overrides::default()).unwrap();
        assert!(!s.chain.mining && !s.harvest.enabled);
        assert_eq!(
            Settings::resolve(FileSettings::default(), "d", &Overrides::default()).unwrap().chain.finality_depth,
            6
        );
        let zero = |k: &str| (k == "CAIRN_CHAIN_FINALITY_DEPTH").then(|| "0".to_string());
        let file = apply_env(FileSettings::default(), &zero).unwrap();
        let err = Settings::resolve(file, "d", &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("chain.finality_depth"), "{err}");
    }

    #[test]
    fn limits_have_defaults_and_come_from_the_environment() {
        let s = resolve(Overrides::default()).unwrap();
        assert_eq!((s.sessions.idle_secs, s.sessions.absolute_secs), (12 * 3600, 7 * 24 * 3600));
        assert_eq!((s.join.mails_per_address_per_day, s.join.per_client_per_hour), (3, 10));
        assert!(s.trusted_proxies.is_empty());
        let env = |k: &str| match k {
            "CAIRN_TRUSTED_PROXIES" => Some("10.0.0.0/8, 192.168.1.7,::1".to_string()),
            "CAIRN_SESSION_IDLE_SECS" => Some("60".to_string()),
            "CAIRN_JOIN_PER_CLIENT_PER_HOUR" => Some("5".to_string()),
            _ => None,
        };
        let file = apply_env(FileSettings::default(), &env).unwrap();
        let s = Settings::resolve(file, "default", &Overrides::default()).unwrap();
        assert!(s.trusted_proxies.contains(&"10.1.2.3".parse().unwrap()));
        assert!(s.trusted_proxies.contains(&"192.168.1.7".parse().unwrap()));
        assert!(s.trusted_proxies.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        assert!(!s.trusted_proxies.contains(&"192.168.1.8".parse().unwrap()));
        assert_eq!(s.sessions.idle_secs, 60);
        assert_eq!(s.join.per_client_per_hour, 5);
        let bad = |k: &str| (k == "CAIRN_TRUSTED_PROXIES").then(|| "not-an-ip".to_string());
        let file = apply_env(FileSettings::default(), &bad).unwrap();
        let err = Settings::resolve(file, "default", &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
        let file: FileSettings = toml::from_str("[join]\nmails_per_address_per_day = 0").unwrap();
        let err = Settings::resolve(file, "cairn.toml", &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("join.mails_per_address_per_day"), "{err}");
    }
}
