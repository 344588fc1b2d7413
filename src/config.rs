//! Settings: defaults, then an optional `cairn.toml`, then `CAIRN_*` environment variables,
//! then command-line flags, the later winning.
//!
//! Every setting is declared once, in [`KEYS`]: its file key, environment variable, flag,
//! default, meaning and validation. Loading, the `--help` text and the README's settings
//! table all come from that list (a test keeps the README in step). A bad value stops Cairn
//! with a message that names the key and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// Default configuration file, read only when it exists.
pub const DEFAULT_CONFIG_FILE: &str = "cairn.toml";

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
        Settings::defaults().sessions
    }
}

/// Scheduled backups by `cairn serve`.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// Where archives go; `None`: no scheduled backups.
    pub dir: Option<PathBuf>,
    pub interval_hours: u64,
    /// Archives kept; older ones are deleted.
    pub keep: u32,
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
        Settings::defaults().join
    }
}

/// The course newsletter's schedule and pace.
#[derive(Debug, Clone, Copy)]
pub struct NewsletterSettings {
    /// Local hour (0-23, in each course's time zone) at which the day's issue is built and sent.
    pub hour: u32,
    /// Newsletter messages sent per minute at most, over all courses.
    pub max_per_minute: u32,
    /// Whether `cairn serve` builds the daily issues on schedule (queued copies are sent either way).
    pub enabled: bool,
}

impl Default for NewsletterSettings {
    fn default() -> Self {
        Settings::defaults().newsletter
    }
}

/// The offline demo (`cairn serve --demo`).
#[derive(Debug, Clone, Copy)]
pub struct DemoSettings {
    /// Seconds between the demo learners' new posts.
    pub post_every_secs: u64,
    /// Set by `cairn serve --demo`, never by configuration: serve the demo blogs.
    pub enabled: bool,
}

/// Limits of the JSON API.
#[derive(Debug, Clone, Copy)]
pub struct ApiSettings {
    /// Requests one token may make in a minute.
    pub requests_per_minute: u32,
}

/// Webhook deliveries.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Days a settled delivery keeps its body before housekeeping drops it.
    pub keep_delivered_days: u32,
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
        Settings::defaults().harvest
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

/// Sign-in through the institution's OpenID Connect provider (`[oidc]`). Unset (no issuer):
/// no such sign-in. [`OidcSettings::client_secret`] is never printed by `Debug`.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer's identifier exactly as the provider names it (discovery is read from
    /// `{issuer}/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// The name on the sign-in button; `None`: the issuer's host.
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// A file holding the client secret (its first line), instead of `client_secret`.
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Vec<String>,
    /// The ID token claim that holds the instructor's email.
    pub email_claim: String,
    /// The ID token claim that lists the person's groups.
    pub groups_claim: String,
    /// Members of any of these groups are institution admins.
    pub admin_groups: Vec<String>,
    /// Whether an unknown verified email becomes an instructor.
    pub allow_provisioning: bool,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("email_claim", &self.email_claim)
            .field("groups_claim", &self.groups_claim)
            .field("admin_groups", &self.admin_groups)
            .field("allow_provisioning", &self.allow_provisioning)
            .finish()
    }
}

impl OidcSettings {
    /// True when any part of the client is set: then all of it must be.
    pub fn is_set(&self) -> bool {
        self.issuer.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || self.client_secret_file.is_some()
    }

    /// The client secret, from `client_secret` or the first line of `client_secret_file`.
    /// The error names the setting, never the secret.
    pub fn secret(&self) -> Result<String, String> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), Some(_)) => Err("set [oidc] client_secret or client_secret_file, not both".into()),
            (Some(s), None) => Ok(s.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read [oidc] client_secret_file {}: {e}", path.display()))?;
                let secret = text.lines().next().unwrap_or_default().trim().to_string();
                if secret.is_empty() {
                    return Err(format!("[oidc] client_secret_file {} is empty", path.display()));
                }
                Ok(secret)
            }
            (None, None) => Err("[oidc] needs client_secret or client_secret_file".into()),
        }
    }
}

/// The Prometheus metrics listener (`[metrics]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsSettings {
    /// Where `cairn serve` serves `/metrics`; `None`: no metrics listener.
    pub bind: Option<SocketAddr>,
}

/// How instructors sign in (`[auth]`).
#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    /// Whether the email and password form signs in; `false` leaves only `[oidc]`.
    pub passwords: bool,
}

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people to read.
    #[default]
    Text,
    /// One JSON object a line, for a log collector.
    Json,
}

/// Logging (`[log]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSettings {
    pub format: LogFormat,
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
    pub backup: BackupSettings,
    pub newsletter: NewsletterSettings,
    pub api: ApiSettings,
    pub demo: DemoSettings,
    pub webhooks: WebhookSettings,
    pub auth: AuthSettings,
    pub oidc: OidcSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration value for `{key}` ({origin}): {message}")]
    Invalid { key: &'static str, origin: String, message: String },
}

/// A value as given: text from the environment or a flag, or a TOML value from the file.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Text(&'a str),
    Toml(&'a toml::Value),
}

impl Raw<'_> {
    fn text(self) -> Result<String, String> {
        match self {
            Raw::Text(t) => Ok(t.to_string()),
            Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
            Raw::Toml(v) => Err(format!("expected a string, found {}", v.type_str())),
        }
    }

    /// Text, with blank meaning "not set".
    fn optional_text(self) -> Result<Option<String>, String> {
        Ok(Some(self.text()?).filter(|s| !s.trim().is_empty()))
    }

    fn number<T: TryFrom<i64> + std::str::FromStr + std::fmt::Display + PartialOrd>(
        self,
        min: T,
        max: T,
    ) -> Result<T, String> {
        let n: T = match self {
            Raw::Text(t) => t.trim().parse().map_err(|_| format!("'{t}' is not a number"))?,
            Raw::Toml(toml::Value::Integer(i)) => T::try_from(*i).map_err(|_| format!("{i} is out of range"))?,
            Raw::Toml(v) => return Err(format!("expected a number, found {}", v.type_str())),
        };
        if n < min || n > max {
            return Err(format!("{n} is not between {min} and {max}"));
        }
        Ok(n)
    }

    /// Booleans are strict: a typo stops start-up rather than meaning "on".
    fn boolean(self) -> Result<bool, String> {
        match self {
            Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(format!("'{t}' is not true or false")),
            },
            Raw::Toml(v) => Err(format!("expected true or false, found {}", v.type_str())),
        }
    }

    /// A list: a TOML array of strings, or comma-separated text.
    fn list(self) -> Result<Vec<String>, String> {
        let items: Vec<String> = match self {
            Raw::Text(t) => t.split(',').map(str::to_string).collect(),
            Raw::Toml(toml::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| format!("expected strings, found {}", v.type_str()))
                })
                .collect::<Result<_, _>>()?,
            Raw::Toml(v) => return Err(format!("expected a list of strings, found {}", v.type_str())),
        };
        Ok(items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }
}

/// Settings being assembled: some defaults depend on other keys (the SMTP port on the TLS
/// mode, the From address on the base URL), so they stay open until every source is read.
struct Draft {
    s: Settings,
    smtp_port: Option<u16>,
    from: Option<String>,
}

type Apply = fn(&mut Draft, Raw<'_>) -> Result<(), String>;

/// One setting, declared once.
pub struct Key {
    /// The file key: `bind`, or `section.key` for `[section] key`.
    pub name: &'static str,
    /// Read from the configuration file (all but `config` itself).
    pub in_file: bool,
    /// The environment variable.
    pub env: &'static str,
    /// The long flag (without `--`), for the few settings that have one.
    pub flag: Option<&'static str>,
    /// What the flag's value is, for `--help`.
    pub value_name: &'static str,
    /// The default, as it would be written; `None` when there is none or it is derived.
    pub default: Option<&'static str>,
    /// How the default reads in the docs when it is not a plain value.
    pub default_doc: &'static str,
    /// What it means, with its valid values.
    pub help: &'static str,
    apply: Apply,
}

const YEAR_SECS: u64 = 366 * 24 * 3600;

/// Every setting. The order is the order of the README table and `--help`.
pub static KEYS: &[Key] = &[
    Key {
        name: "config",
        in_file: false,
        env: "CAIRN_CONFIG",
        flag: Some("config"),
        value_name: "FILE",
        default: None,
        default_doc: "`./cairn.toml` when it exists",
        help: "The configuration file (TOML, with the file keys of this table).",
        apply: |_, _| Ok(()),
    },
    Key {
        name: "bind",
        in_file: true,
        env: "CAIRN_BIND",
        flag: Some("bind"),
        value_name: "ADDR",
        default: Some("127.0.0.1:8080"),
        default_doc: "",
        help: "Address to listen on. Port 0 picks a free port.",
        apply: |d, v| {
            let raw = v.text()?;
            d.s.bind = raw.trim().parse().map_err(|_| format!("'{raw}' is not an address like 127.0.0.1:8080"))?;
            Ok(())
        },
    },
    Key {
        name: "data_dir",
        in_file: true,
        env: "CAIRN_DATA_DIR",
        flag: Some("data-dir"),
        value_name: "DIR",
        default: Some("data"),
        default_doc: "",
        help: "Holds `cairn.db` (SQLite), `session.key` (cookie signing key), `institution.key` and `mail/`. \
               Created 0700, its files 0600 (`mail/` 0700); at every start looser modes are reported and tightened.",
        apply: |d, v| {
            let dir = v.text()?;
            if dir.trim().is_empty() {
                return Err("must not be empty".into());
            }
            d.s.data_dir = PathBuf::from(dir);
            Ok(())
        },
    },
    Key {
        name: "base_url",
        in_file: true,
        env: "CAIRN_BASE_URL",
        flag: Some("base-url"),
        value_name: "URL",
        default: None,
        default_doc: "`http://` + bound address",
        help: "Public base URL; every Open Badges id and the DID derive from it. With `https://`, cookies are marked \
               `Secure`. Never derived from an unspecified address: `serve` on `0.0.0.0` or `::` refuses to start \
               without it (other commands then name `127.0.0.1` or `::1`, with a warning), as does `serve --demo` on \
               any address but loopback. A URL whose host is `0.0.0.0` or `::` is refused.",
        apply: |d, v| {
            d.s.base_url = v.optional_text()?.map(|raw| parse_base_url(&raw)).transpose()?;
            Ok(())
        },
    },
    Key {
        name: "institution_name",
        in_file: true,
        env: "CAIRN_INSTITUTION_NAME",
        flag: Some("institution-name"),
        value_name: "NAME",
        default: Some("Cairn Institution"),
        default_doc: "",
        help: "Name given to the institution profile when it is first created; afterwards the profile is edited \
               on its page. 1 to 200 characters.",
        apply: |d, v| {
            let name = v.text()?.trim().to_string();
            if name.is_empty() || name.chars().count() > 200 {
                return Err("must be 1 to 200 characters".into());
            }
            d.s.institution_name = name;
            Ok(())
        },
    },
    Key {
        name: "allow_origins",
        in_file: true,
        env: "CAIRN_ALLOW_ORIGINS",
        flag: None,
        value_name: "ORIGINS",
        default: None,
        default_doc: "none",
        help: "Exact origins (`scheme://host:port`, comma-separated in the environment) exempt from the outbound \
               address checks, e.g. a feed server on the same machine in a demo or test. Never ranges.",
        apply: |d, v| {
            let origins = v.list()?;
            crate::net::OutboundPolicy::new(&origins)?;
            d.s.allow_origins = origins;
            Ok(())
        },
    },
    Key {
        name: "harvest.interval_secs",
        in_file: true,
        env: "CAIRN_HARVEST_INTERVAL",
        flag: None,
        value_name: "SECONDS",
        default: Some("3600"),
        default_doc: "",
        help: "Seconds between polls of a feed (±10% jitter). 60 to a year.",
        apply: |d, v| {
            d.s.harvest.interval_secs = v.number(60, YEAR_SECS)?;
            Ok(())
        },
    },
    Key {
        name: "harvest.concurrency",
        in_file: true,
        env: "CAIRN_HARVEST_CONCURRENCY",
        flag: None,
        value_name: "N",
        default: Some("8"),
        default_doc: "",
        help: "Feeds fetched at once in all. 1 to 256.",
        apply: |d, v| {
            d.s.harvest.concurrency = v.number(1, 256)?;
            Ok(())
        },
    },
    Key {
        name: "harvest.per_host",
        in_file: true,
        env: "CAIRN_HARVEST_PER_HOST",
        flag: None,
        value_name: "N",
        default: Some("2"),
        default_doc: "",
        help: "Requests at once to one host. 1 to 64.",
        apply: |d, v| {
            d.s.harvest.per_host = v.number(1, 64)?;
            Ok(())
        },
    },
    Key {
        name: "harvest.timeout_secs",
        in_file: true,
        env: "CAIRN_HARVEST_TIMEOUT",
        flag: None,
        value_name: "SECONDS",
        default: Some("20"),
        default_doc: "",
        help: "Total time for one request (connect: at most 10 s). 1 to 600.",
        apply: |d, v| {
            d.s.harvest.timeout_secs = v.number(1, 600)?;
            Ok(())
        },
    },
    Key {
        name: "harvest.max_bytes",
        in_file: true,
        env: "CAIRN_HARVEST_MAX_BYTES",
        flag: None,
        value_name: "BYTES",
        default: Some("5242880"),
        default_doc: "",
        help: "Largest response read; longer ones are cut off and reported. 1 KiB to 512 MiB.",
        apply: |d, v| {
            d.s.harvest.max_bytes = v.number(1024, 512 * 1024 * 1024)?;
            Ok(())
        },
    },
    Key {
        name: "harvest.enabled",
        in_file: true,
        env: "CAIRN_HARVEST_ENABLED",
        flag: None,
        value_name: "BOOL",
        default: Some("true"),
        default_doc: "",
        help: "Whether `cairn serve` polls feeds in the background.",
        apply: |d, v| {
            d.s.harvest.enabled = v.boolean()?;
            Ok(())
        },
    },
    Key {
        name: "mail.smtp_host",
        in_file: true,
        env: "CAIRN_SMTP_HOST",
        flag: None,
        value_name: "HOST",
        default: None,
        default_doc: "none",
        help: "SMTP server. Without one, mail is written as `.eml` files in `<data_dir>/mail/` and the Feeds page \
               says so.",
        apply: |d, v| {
            d.s.mail.smtp_host = v.optional_text()?;
            Ok(())
        },
    },
    Key {
        name: "mail.smtp_port",
        in_file: true,
        env: "CAIRN_SMTP_PORT",
        flag: None,
        value_name: "PORT",
        default: None,
        default_doc: "587 / 465 / 25 by TLS mode",
        help: "SMTP port.",
        apply: |d, v| {
            d.smtp_port = Some(v.number(1, u16::MAX)?);
            Ok(())
        },
    },
    Key {
        name: "mail.smtp_tls",
        in_file: true,
        env: "CAIRN_SMTP_TLS",
        flag: None,
        value_name: "MODE",
        default: Some("starttls"),
        default_doc: "",
        help: "`starttls` (required), `tls` (implicit TLS) or `none`.",
        apply: |d, v| {
            let mode = v.text()?;
            d.s.mail.smtp_tls = match mode.trim().to_ascii_lowercase().as_str() {
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                _ => return Err(format!("'{mode}' is not one of none, starttls, tls")),
            };
            Ok(())
        },
    },
    Key {
        name: "mail.smtp_username",
        in_file: true,
        env: "CAIRN_SMTP_USERNAME",
        flag: None,
        value_name: "NAME",
        default: None,
        default_doc: "none",
        help: "SMTP user name.",
        apply: |d, v| {
            d.s.mail.smtp_username = v.optional_text()?;
            Ok(())
        },
    },
    Key {
        name: "mail.smtp_password",
        in_file: true,
        env: "CAIRN_SMTP_PASSWORD",
        flag: None,
        value_name: "PASSWORD",
        default: None,
        default_doc: "none",
        help: "SMTP password (never logged).",
        apply: |d, v| {
            d.s.mail.smtp_password = Some(v.text()?);
            Ok(())
        },
    },
    Key {
        name: "mail.from",
        in_file: true,
        env: "CAIRN_MAIL_FROM",
        flag: None,
        value_name: "MAILBOX",
        default: None,
        default_doc: "`Cairn <cairn@HOST>`",
        help: "The From address, like `Cairn <cairn@example.edu>`.",
        apply: |d, v| {
            let from = v.text()?;
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!("'{from}' is not an address like Cairn <cairn@example.edu>"));
            }
            d.from = Some(from);
            Ok(())
        },
    },
    Key {
        name: "chain.network",
        in_file: true,
        env: "CAIRN_CHAIN_NETWORK",
        flag: None,
        value_name: "NAME",
        default: Some("cairn"),
        default_doc: "",
        help: "The chain's network; instances of one network derive the same genesis. 1 to 100 characters. Fixed \
               once a data dir has used it.",
        apply: |d, v| {
            let network = v.text()?;
            if network.trim().is_empty() || network.len() > 100 {
                return Err("must be 1 to 100 characters".into());
            }
            d.s.chain.network = network;
            Ok(())
        },
    },
    Key {
        name: "chain.records_per_block",
        in_file: true,
        env: "CAIRN_CHAIN_RECORDS_PER_BLOCK",
        flag: None,
        value_name: "N",
        default: Some("5"),
        default_doc: "",
        help: "Records a block holds. 1 to 1000. Fixed once a data dir has used it.",
        apply: |d, v| {
            d.s.chain.records_per_block = v.number(1, 1000)?;
            Ok(())
        },
    },
    Key {
        name: "chain.difficulty_bits",
        in_file: true,
        env: "CAIRN_CHAIN_DIFFICULTY_BITS",
        flag: None,
        value_name: "BITS",
        default: Some("16"),
        default_doc: "",
        help: "Leading zero bits of a block's hash (16 = hex `0000`). 1 to 40. Fixed once a data dir has used it.",
        apply: |d, v| {
            d.s.chain.difficulty_bits = v.number(1, 40)?;
            Ok(())
        },
    },
    Key {
        name: "chain.mining",
        in_file: true,
        env: "CAIRN_CHAIN_MINING",
        flag: None,
        value_name: "BOOL",
        default: Some("true"),
        default_doc: "",
        help: "Whether `cairn serve` mines blocks.",
        apply: |d, v| {
            d.s.chain.mining = v.boolean()?;
            Ok(())
        },
    },
    Key {
        name: "chain.finality_depth",
        in_file: true,
        env: "CAIRN_CHAIN_FINALITY_DEPTH",
        flag: None,
        value_name: "BLOCKS",
        default: Some("6"),
        default_doc: "",
        help: "Blocks on top of a block that make it final: no branch may then remove it. 1 to 10000.",
        apply: |d, v| {
            d.s.chain.finality_depth = v.number(1, 10_000)?;
            Ok(())
        },
    },
    Key {
        name: "trusted_proxies",
        in_file: true,
        env: "CAIRN_TRUSTED_PROXIES",
        flag: None,
        value_name: "ADDRS",
        default: None,
        default_doc: "none",
        help: "Reverse proxies (IPs or CIDRs, e.g. `127.0.0.1`, `10.0.0.0/8`; comma-separated in the environment) \
               whose `X-Forwarded-For` is believed. The client is the rightmost address in it that is not a trusted \
               proxy. Every per-client limit (login, join, Webmention, peers) uses it; without it the header is \
               ignored.",
        apply: |d, v| {
            d.s.trusted_proxies = TrustedProxies::parse(&v.list()?)?;
            Ok(())
        },
    },
    Key {
        name: "sessions.idle_secs",
        in_file: true,
        env: "CAIRN_SESSION_IDLE_SECS",
        flag: None,
        value_name: "SECONDS",
        default: Some("43200"),
        default_doc: "",
        help: "An instructor session unused this long (12 h) ends. 1 second to a year.",
        apply: |d, v| {
            d.s.sessions.idle_secs = v.number(1, YEAR_SECS)?;
            Ok(())
        },
    },
    Key {
        name: "sessions.absolute_secs",
        in_file: true,
        env: "CAIRN_SESSION_ABSOLUTE_SECS",
        flag: None,
        value_name: "SECONDS",
        default: Some("604800"),
        default_doc: "",
        help: "An instructor session ends this long (7 days) after sign-in, however busy. 1 second to a year.",
        apply: |d, v| {
            d.s.sessions.absolute_secs = v.number(1, YEAR_SECS)?;
            Ok(())
        },
    },
    Key {
        name: "auth.passwords",
        in_file: true,
        env: "CAIRN_AUTH_PASSWORDS",
        flag: None,
        value_name: "BOOL",
        default: Some("true"),
        default_doc: "",
        help: "Whether instructors may sign in with an email and password. `false` leaves only the identity \
               provider's button on `/login` and refuses the password form; `cairn serve` then refuses to start \
               without a complete `[oidc]` section.",
        apply: |d, v| {
            d.s.auth.passwords = v.boolean()?;
            Ok(())
        },
    },
    Key {
        name: "oidc.issuer",
        in_file: true,
        env: "CAIRN_OIDC_ISSUER",
        flag: None,
        value_name: "URL",
        default: None,
        default_doc: "none (no single sign-on)",
        help: "The OpenID Connect provider's issuer identifier, exactly as it names itself, e.g. \
               `https://login.example.edu/realms/staff`; its `/.well-known/openid-configuration` is read on first \
               use. `https://` only, unless the origin is in `allow_origins`.",
        apply: |d, v| {
            d.s.oidc.issuer = v
                .optional_text()?
                .map(|raw| {
                    let raw = raw.trim().to_string();
                    let url = Url::parse(&raw).map_err(|e| format!("'{raw}' is not a URL ({e})"))?;
                    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                        return Err(format!("'{raw}' must be an http(s) URL with a host"));
                    }
                    if url.query().is_some() || url.fragment().is_some() {
                        return Err(format!("'{raw}' must not have a query or fragment"));
                    }
                    Ok(raw)
                })
                .transpose()?;
            Ok(())
        },
    },
    Key {
        name: "oidc.name",
        in_file: true,
        env: "CAIRN_OIDC_NAME",
        flag: None,
        value_name: "NAME",
        default: None,
        default_doc: "the issuer's host",
        help: "The provider's name on the sign-in button (\"Sign in with NAME\"). 1 to 60 characters.",
        apply: |d, v| {
            let name = v.optional_text()?.map(|n| n.trim().to_string());
            if name.as_ref().is_some_and(|n| n.chars().count() > 60) {
                return Err("must be 1 to 60 characters".into());
            }
            d.s.oidc.name = name;
            Ok(())
        },
    },
    Key {
        name: "oidc.client_id",
        in_file: true,
        env: "CAIRN_OIDC_CLIENT_ID",
        flag: None,
        value_name: "ID",
        default: None,
        default_doc: "none",
        help: "Cairn's client id at the provider.",
        apply: |d, v| {
            d.s.oidc.client_id = v.optional_text()?.map(|s| s.trim().to_string());
            Ok(())
        },
    },
    Key {
        name: "oidc.client_secret",
        in_file: true,
        env: "CAIRN_OIDC_CLIENT_SECRET",
        flag: None,
        value_name: "SECRET",
        default: None,
        default_doc: "none",
        help: "Cairn's client secret at the provider (never logged nor shown). Or `client_secret_file`.",
        apply: |d, v| {
            d.s.oidc.client_secret = v.optional_text()?;
            Ok(())
        },
    },
    Key {
        name: "oidc.client_secret_file",
        in_file: true,
        env: "CAIRN_OIDC_CLIENT_SECRET_FILE",
        flag: None,
        value_name: "FILE",
        default: None,
        default_doc: "none",
        help: "A file whose first line is the client secret, read at start-up (instead of `client_secret`).",
        apply: |d, v| {
            d.s.oidc.client_secret_file = v.optional_text()?.map(PathBuf::from);
            Ok(())
        },
    },
    Key {
        name: "oidc.scopes",
        in_file: true,
        env: "CAIRN_OIDC_SCOPES",
        flag: None,
        value_name: "SCOPES",
        default: Some("openid,email"),
        default_doc: "",
        help: "Scopes asked for (comma-separated in the environment); `openid` is always asked for. Add the one \
               your provider needs to put groups in the ID token (often `groups`).",
        apply: |d, v| {
            let scopes = v.list()?;
            if let Some(bad) = scopes.iter().find(|s| s.contains(|c: char| c.is_whitespace() || c == '"')) {
                return Err(format!("'{bad}' is not a scope"));
            }
            d.s.oidc.scopes = scopes;
            Ok(())
        },
    },
    Key {
        name: "oidc.email_claim",
        in_file: true,
        env: "CAIRN_OIDC_EMAIL_CLAIM",
        flag: None,
        value_name: "CLAIM",
        default: Some("email"),
        default_doc: "",
        help: "The ID token claim holding the email that is matched, case-insensitively, to an instructor's. \
               The token's `email_verified` must be true.",
        apply: |d, v| {
            d.s.oidc.email_claim = claim_name(&v.text()?)?;
            Ok(())
        },
    },
    Key {
        name: "oidc.groups_claim",
        in_file: true,
        env: "CAIRN_OIDC_GROUPS_CLAIM",
        flag: None,
        value_name: "CLAIM",
        default: Some("groups"),
        default_doc: "",
        help: "The ID token claim listing the person's groups (a list of strings, or one string).",
        apply: |d, v| {
            d.s.oidc.groups_claim = claim_name(&v.text()?)?;
            Ok(())
        },
    },
    Key {
        name: "oidc.admin_groups",
        in_file: true,
        env: "CAIRN_OIDC_ADMIN_GROUPS",
        flag: None,
        value_name: "GROUPS",
        default: None,
        default_doc: "none",
        help: "Groups (comma-separated in the environment) whose members are institution admins: a member who \
               signs in through the provider becomes an admin if not one already. Leaving a group never demotes \
               anyone; another admin does that.",
        apply: |d, v| {
            d.s.oidc.admin_groups = v.list()?;
            Ok(())
        },
    },
    Key {
        name: "oidc.allow_provisioning",
        in_file: true,
        env: "CAIRN_OIDC_ALLOW_PROVISIONING",
        flag: None,
        value_name: "BOOL",
        default: Some("false"),
        default_doc: "",
        help: "Whether a verified email that matches no instructor becomes a new instructor (with no course \
               role, and no password) at its first sign-in. Off: only existing instructors sign in.",
        apply: |d, v| {
            d.s.oidc.allow_provisioning = v.boolean()?;
            Ok(())
        },
    },
    Key {
        name: "join.mails_per_address_per_day",
        in_file: true,
        env: "CAIRN_JOIN_MAILS_PER_DAY",
        flag: None,
        value_name: "N",
        default: Some("3"),
        default_doc: "",
        help: "Confirmation mails `/join` sends to one email address in 24 hours; past it, 429 with `Retry-After`. \
               1 to 1000.",
        apply: |d, v| {
            d.s.join.mails_per_address_per_day = v.number(1, 1000)?;
            Ok(())
        },
    },
    Key {
        name: "join.per_client_per_hour",
        in_file: true,
        env: "CAIRN_JOIN_PER_CLIENT_PER_HOUR",
        flag: None,
        value_name: "N",
        default: Some("10"),
        default_doc: "",
        help: "Join requests (with a name, email and address filled in) one client address may make in an hour; \
               past it, 429 with `Retry-After`. 1 to 100000.",
        apply: |d, v| {
            d.s.join.per_client_per_hour = v.number(1, 100_000)?;
            Ok(())
        },
    },
    Key {
        name: "backup.dir",
        in_file: true,
        env: "CAIRN_BACKUP_DIR",
        flag: None,
        value_name: "DIR",
        default: None,
        default_doc: "none (no scheduled backups)",
        help: "Where `cairn serve` writes scheduled backups (`cairn-backup-YYYYMMDDTHHMMSSZ.tar.gz`, the archive of                `cairn backup`). Created 0700. Best on another disk than the data dir.",
        apply: |d, v| {
            d.s.backup.dir = v.optional_text()?.map(PathBuf::from);
            Ok(())
        },
    },
    Key {
        name: "backup.interval_hours",
        in_file: true,
        env: "CAIRN_BACKUP_INTERVAL_HOURS",
        flag: None,
        value_name: "HOURS",
        default: Some("24"),
        default_doc: "",
        help: "Hours between scheduled backups (counted from the newest archive in `backup.dir`, so a restart does                not take an extra one). 1 to 8784.",
        apply: |d, v| {
            d.s.backup.interval_hours = v.number(1, 8784)?;
            Ok(())
        },
    },
    Key {
        name: "backup.keep",
        in_file: true,
        env: "CAIRN_BACKUP_KEEP",
        flag: None,
        value_name: "N",
        default: Some("7"),
        default_doc: "",
        help: "Scheduled backups kept in `backup.dir`; older ones are deleted after each new one. 1 to 1000.",
        apply: |d, v| {
            d.s.backup.keep = v.number(1, 1000)?;
            Ok(())
        },
    },
    Key {
        name: "metrics.bind",
        in_file: true,
        env: "CAIRN_METRICS_BIND",
        flag: None,
        value_name: "ADDR",
        default: None,
        default_doc: "none (no metrics listener)",
        help: "Address of a second listener where `cairn serve` serves Prometheus metrics at `/metrics` (for example \
               `127.0.0.1:9464`); they are never served on `bind`. Keep it reachable only by the monitoring server. \
               Port 0 picks a free port.",
        apply: |d, v| {
            d.s.metrics.bind = match v.optional_text()? {
                Some(raw) => {
                    Some(raw.trim().parse().map_err(|_| format!("'{raw}' is not an address like 127.0.0.1:9464"))?)
                }
                None => None,
            };
            Ok(())
        },
    },
    Key {
        name: "newsletter.hour",
        in_file: true,
        env: "CAIRN_NEWSLETTER_HOUR",
        flag: None,
        value_name: "HOUR",
        default: Some("7"),
        default_doc: "",
        help: "Hour of the day (0 to 23, in each course's time zone, set on its newsletter page) from which the \
               day's newsletter issue is built and sent, once per day.",
        apply: |d, v| {
            d.s.newsletter.hour = v.number(0, 23)?;
            Ok(())
        },
    },
    Key {
        name: "newsletter.max_per_minute",
        in_file: true,
        env: "CAIRN_NEWSLETTER_MAX_PER_MINUTE",
        flag: None,
        value_name: "N",
        default: Some("600"),
        default_doc: "",
        help: "Newsletter messages sent per minute at most, over all courses, through pooled SMTP connections. \
               1 to 1000000.",
        apply: |d, v| {
            d.s.newsletter.max_per_minute = v.number(1, 1_000_000)?;
            Ok(())
        },
    },
    Key {
        name: "newsletter.enabled",
        in_file: true,
        env: "CAIRN_NEWSLETTER_ENABLED",
        flag: None,
        value_name: "BOOL",
        default: Some("true"),
        default_doc: "",
        help: "Whether `cairn serve` builds each course's daily issue on schedule. Copies already queued (by \
               `cairn newsletter send` or \"Send now\") are sent either way.",
        apply: |d, v| {
            d.s.newsletter.enabled = v.boolean()?;
            Ok(())
        },
    },
    Key {
        name: "api.requests_per_minute",
        in_file: true,
        env: "CAIRN_API_REQUESTS_PER_MINUTE",
        flag: None,
        value_name: "N",
        default: Some("600"),
        default_doc: "",
        help: "Requests one API token may make in a minute; past it, 429 with `Retry-After`, and every answer \
               carries `RateLimit` and `RateLimit-Policy`. 1 to 1000000.",
        apply: |d, v| {
            d.s.api.requests_per_minute = v.number(1, 1_000_000)?;
            Ok(())
        },
    },
    Key {
        name: "webhooks.keep_delivered_days",
        in_file: true,
        env: "CAIRN_WEBHOOKS_KEEP_DELIVERED_DAYS",
        flag: None,
        value_name: "DAYS",
        default: Some("30"),
        default_doc: "",
        help: "Days a webhook delivery that was sent (or failed for good) keeps its body, which names the \
               recipient; then housekeeping drops the body and keeps the outcome. 1 to 3650.",
        apply: |d, v| {
            d.s.webhooks.keep_delivered_days = v.number(1, 3650)?;
            Ok(())
        },
    },
    Key {
        name: "demo.post_every_secs",
        in_file: true,
        env: "CAIRN_DEMO_POST_EVERY_SECS",
        flag: None,
        value_name: "SECONDS",
        default: Some("180"),
        default_doc: "",
        help: "With `cairn serve --demo`, seconds between the demo learners' new posts (each is harvested at \
               once). 1 to a day.",
        apply: |d, v| {
            d.s.demo.post_every_secs = v.number(1, 86_400)?;
            Ok(())
        },
    },
    Key {
        name: "log.format",
        in_file: true,
        env: "CAIRN_LOG_FORMAT",
        flag: None,
        value_name: "FORMAT",
        default: Some("text"),
        default_doc: "",
        help: "How log lines are written to stderr: `text` for people, or `json`, one JSON object a line (with \
               `timestamp`, `level`, `target`, the event's fields and `span.request_id` on a request's lines).",
        apply: |d, v| {
            d.s.log.format = match v.text()?.trim() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => return Err(format!("'{other}' is not text or json")),
            };
            Ok(())
        },
    },
];

/// Variables read outside the settings, listed with them in the README.
pub static OTHER_VARIABLES: &[(&str, &str, &str)] = &[
    ("CAIRN_PASSWORD", "—", "Password for `admin create-instructor` and `admin reset-password`."),
    (
        "RUST_LOG",
        "`info,actix_server=warn`",
        "Log filter (logs go to stderr, coloured only when stderr is a terminal; tokens in request paths are \
         logged as `[redacted]`).",
    ),
];

/// The `[[peers]]` table of the file, which is a list of records rather than one value.
const PEERS_DOC: &str = "Peer institutions trusted at start-up (more can be added with `cairn peer add` or on \
    `/admin/peers`). `base_url` (default: `url`) is where the peer's assertions live; its records must lie under it.";

/// Flag values from the command line, by key name (`bind`, `data_dir`, ...).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    values: Vec<(&'static str, String)>,
}

impl Overrides {
    /// Sets the flag of `key` (a [`KEYS`] name); unknown names are ignored.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Overrides {
        if let Some(k) = KEYS.iter().find(|k| k.name == key && k.flag.is_some()) {
            self.values.push((k.name, value.into()));
        }
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// The flags of [`KEYS`] found in parsed command-line arguments (see [`flag_args`]).
    pub fn from_matches(matches: &clap::ArgMatches) -> Overrides {
        let mut o = Overrides::default();
        for key in KEYS.iter().filter(|k| k.flag.is_some()) {
            if let Ok(Some(v)) = matches.try_get_one::<String>(key.name) {
                o.values.push((key.name, v.clone()));
            }
        }
        o
    }
}

/// The global flags of [`KEYS`], for the command line. Their help names the environment
/// variable and the default.
pub fn flag_args() -> Vec<clap::Arg> {
    KEYS.iter()
        .filter_map(|k| {
            let flag = k.flag?;
            Some(clap::Arg::new(k.name).long(flag).value_name(k.value_name).global(true).help(format!(
                "{} [env: {}] [default: {}]",
                first_sentence(k.help),
                k.env,
                plain(default_text(k))
            )))
        })
        .collect()
}

/// Every setting in one block of text, for the end of `cairn --help`.
pub fn settings_help() -> String {
    let mut out =
        String::from("Settings, in increasing priority: defaults, the file (cairn.toml), the environment, flags.\n\n");
    out.push_str(&format!("  {:<42} {:<32} {}\n", "FILE KEY", "ENVIRONMENT", "DEFAULT"));
    for k in KEYS {
        let file = if k.in_file { file_key(k) } else { "-".to_string() };
        out.push_str(&format!("  {file:<42} {:<32} {}\n", k.env, plain(default_text(k))));
    }
    out.push_str(&format!("  {:<42} {:<32} {}\n", "[[peers]] url, public_key, name, base_url", "-", "none"));
    for (var, default, _) in OTHER_VARIABLES {
        out.push_str(&format!("  {:<42} {var:<32} {}\n", "-", plain(default.to_string())));
    }
    out.push_str("\nREADME.md explains each one.");
    out
}

/// The README's settings table, generated from [`KEYS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| file key | environment | flag | default | meaning |\n|---|---|---|---|---|\n");
    for k in KEYS {
        let file = if k.in_file { format!("`{}`", file_key(k)) } else { "—".to_string() };
        let flag = k.flag.map_or("—".to_string(), |f| format!("`--{f}`"));
        out.push_str(&format!("| {file} | `{}` | {flag} | {} | {} |\n", k.env, default_text(k), k.help));
    }
    out.push_str(&format!("| `[[peers]]` `url`, `public_key`, `name`, `base_url` | — | — | none | {PEERS_DOC} |\n"));
    for (var, default, meaning) in OTHER_VARIABLES {
        out.push_str(&format!("| — | `{var}` | — | {default} | {meaning} |\n"));
    }
    out
}

fn file_key(k: &Key) -> String {
    match k.name.split_once('.') {
        Some((section, key)) => format!("[{section}] {key}"),
        None => k.name.to_string(),
    }
}

fn default_text(k: &Key) -> String {
    match k.default {
        Some(d) => format!("`{d}`"),
        None => k.default_doc.to_string(),
    }
}

fn plain(s: String) -> String {
    s.replace('`', "")
}

fn first_sentence(help: &str) -> &str {
    help.split_once(". ").map_or(help.trim_end_matches('.'), |(first, _)| first)
}

impl Settings {
    /// The declared defaults only: no file, no environment, no flags. Tests start here, so
    /// nothing from the machine leaks into them.
    pub fn defaults() -> Settings {
        let mut d = Draft::blank();
        for k in KEYS {
            if let Some(v) = k.default {
                // A declared default always passes its own validation (a test checks it).
                let _ = (k.apply)(&mut d, Raw::Text(v));
            }
        }
        d.finish()
    }

    /// Defaults, then the configuration file (`--config`, `CAIRN_CONFIG`, or `./cairn.toml`
    /// when it exists), then `CAIRN_*` variables, then flags.
    pub fn load(flags: &Overrides) -> Result<Settings, ConfigError> {
        let env = |k: &str| std::env::var(k).ok();
        let config = flags.get("config").map(PathBuf::from).or_else(|| env("CAIRN_CONFIG").map(PathBuf::from));
        let file = match config {
            Some(path) => Some(read_file(&path)?),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => Some(read_file(Path::new(DEFAULT_CONFIG_FILE))?),
            None => None,
        };
        Self::from_sources(file.as_ref(), &env, flags)
    }

    /// Builds settings from a parsed file, an environment and flags.
    pub fn from_sources(
        file: Option<&(PathBuf, toml::Table)>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let mut d = Draft::blank();
        fn invalid(k: &'static Key, origin: String) -> impl FnOnce(String) -> ConfigError {
            move |message| ConfigError::Invalid { key: k.name, origin, message }
        }
        for k in KEYS {
            if let Some(v) = k.default {
                (k.apply)(&mut d, Raw::Text(v)).map_err(invalid(k, "default".into()))?;
            }
        }
        if let Some((path, table)) = file {
            let origin = path.file_name().map_or_else(|| path.display().to_string(), |n| n.display().to_string());
            for (name, value) in file_values(path, table)? {
                if name == "peers" {
                    d.s.peers = peers_of(value).map_err(|message| ConfigError::Invalid {
                        key: "peers",
                        origin: format!("[[peers]] in {origin}"),
                        message,
                    })?;
                    continue;
                }
                let k = KEYS.iter().find(|k| k.in_file && k.name == name).ok_or_else(|| ConfigError::Parse {
                    path: path.clone(),
                    message: format!("unknown key `{name}`"),
                })?;
                (k.apply)(&mut d, Raw::Toml(value)).map_err(invalid(k, origin.clone()))?;
            }
        }
        for k in KEYS {
            if let Some(v) = env(k.env) {
                (k.apply)(&mut d, Raw::Text(&v)).map_err(invalid(k, k.env.to_string()))?;
            }
        }
        for k in KEYS {
            if let (Some(flag), Some(v)) = (k.flag, flags.get(k.name)) {
                (k.apply)(&mut d, Raw::Text(v)).map_err(invalid(k, format!("--{flag}")))?;
            }
        }
        Ok(d.finish())
    }

    /// Path of the SQLite database inside the data dir.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("cairn.db")
    }

    /// The public base URL (no trailing slash) given the address actually bound. Never one of
    /// an unspecified address (`0.0.0.0`, `::`), which names no host: `serve` refuses to start
    /// there without `base_url` ([`crate::startup::check_bind`]); a command that only names
    /// the instance gets the loopback address of the same family and port, with a warning.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        match &self.base_url {
            Some(u) => u.as_str().trim_end_matches('/').to_string(),
            None if bound.ip().is_unspecified() => {
                let loopback = match bound {
                    SocketAddr::V4(_) => SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, bound.port())),
                    SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port())),
                };
                tracing::warn!(
                    bind = %bound,
                    "bind is an unspecified address and base_url is not set: naming this instance http://{loopback}; \
                     set base_url to the address people reach it at"
                );
                format!("http://{loopback}")
            }
            None => format!("http://{bound}"),
        }
    }
}

impl Draft {
    /// Placeholders only: every one is replaced by a declared default before use.
    fn blank() -> Draft {
        Draft {
            s: Settings {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                data_dir: PathBuf::new(),
                base_url: None,
                institution_name: String::new(),
                allow_origins: Vec::new(),
                harvest: HarvestSettings {
                    interval_secs: 0,
                    concurrency: 0,
                    per_host: 0,
                    timeout_secs: 0,
                    max_bytes: 0,
                    enabled: false,
                },
                mail: MailSettings {
                    smtp_host: None,
                    smtp_port: 0,
                    smtp_tls: SmtpTls::StartTls,
                    smtp_username: None,
                    smtp_password: None,
                    from: String::new(),
                },
                chain: ChainSettings {
                    network: String::new(),
                    records_per_block: 0,
                    difficulty_bits: 0,
                    mining: false,
                    finality_depth: 0,
                },
                peers: Vec::new(),
                sessions: SessionSettings { idle_secs: 0, absolute_secs: 0 },
                join: JoinSettings { mails_per_address_per_day: 0, per_client_per_hour: 0 },
                trusted_proxies: TrustedProxies::default(),
                api: ApiSettings { requests_per_minute: 0 },
                backup: BackupSettings { dir: None, interval_hours: 0, keep: 0 },
                newsletter: NewsletterSettings { hour: 0, max_per_minute: 0, enabled: false },
                demo: DemoSettings { post_every_secs: 0, enabled: false },
                webhooks: WebhookSettings { keep_delivered_days: 0 },
                auth: AuthSettings { passwords: true },
                metrics: MetricsSettings { bind: None },
                oidc: OidcSettings {
                    issuer: None,
                    name: None,
                    client_id: None,
                    client_secret: None,
                    client_secret_file: None,
                    scopes: Vec::new(),
                    email_claim: String::new(),
                    groups_claim: String::new(),
                    admin_groups: Vec::new(),
                    allow_provisioning: false,
                },
                log: LogSettings::default(),
            },
            smtp_port: None,
            from: None,
        }
    }

    /// Fills the defaults that depend on other keys.
    fn finish(self) -> Settings {
        let Draft { mut s, smtp_port, from } = self;
        s.mail.smtp_port = smtp_port.unwrap_or(match s.mail.smtp_tls {
            SmtpTls::Tls => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        });
        s.mail.from = from.unwrap_or_else(|| {
            let host = s.base_url.as_ref().and_then(|u| u.host_str().map(str::to_string));
            format!("Cairn <cairn@{}>", host.as_deref().unwrap_or("localhost"))
        });
        s
    }
}

/// The file's values by dotted key, in file order; `[section]` tables open one level.
fn file_values<'a>(path: &Path, table: &'a toml::Table) -> Result<Vec<(String, &'a toml::Value)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (key, v) in section {
                    if matches!(v, toml::Value::Table(_)) {
                        return Err(ConfigError::Parse {
                            path: path.to_path_buf(),
                            message: format!("unknown section `{name}.{key}`"),
                        });
                    }
                    out.push((format!("{name}.{key}"), v));
                }
            }
            v => out.push((name.clone(), v)),
        }
    }
    Ok(out)
}

/// `[[peers]]` entries, each with an http(s) url and a 64-hex-digit key.
fn peers_of(value: &toml::Value) -> Result<Vec<PeerFile>, String> {
    let peers: Vec<PeerFile> = value.clone().try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    for p in &peers {
        let key_ok = p.public_key.len() == 64 && p.public_key.chars().all(|c| c.is_ascii_hexdigit());
        let url_ok = url::Url::parse(&p.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !key_ok || !url_ok {
            return Err(format!("each peer needs an http(s) url and a 64-hex-digit public_key ({})", p.url));
        }
    }
    Ok(peers)
}

/// A claim name: letters, digits and `_ - . : /`, 1 to 100 characters.
fn claim_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
    {
        return Err(format!("'{raw}' is not a claim name"));
    }
    Ok(name.to_string())
}

fn read_file(path: &Path) -> Result<(PathBuf, toml::Table), ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let table =
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    Ok((path.to_path_buf(), table))
}

fn unspecified(raw: &str) -> String {
    format!(
        "'{raw}' names an unspecified address, which no one can reach; give the address people reach this instance at"
    )
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{raw}' must start with http:// or https://"));
    }
    match url.host() {
        None => return Err(format!("'{raw}' has no host")),
        Some(url::Host::Ipv4(ip)) if ip.is_unspecified() => return Err(unspecified(raw)),
        Some(url::Host::Ipv6(ip)) if ip.is_unspecified() => return Err(unspecified(raw)),
        Some(_) => {}
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{raw}' must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file(text: &str) -> (PathBuf, toml::Table) {
        (PathBuf::from("cairn.toml"), toml::from_str(text).unwrap())
    }

    fn with_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Settings::from_sources(None, &env, &Overrides::default())
    }

    #[test]
    fn every_declared_default_passes_its_own_validation() {
        for k in KEYS {
            if let Some(v) = k.default {
                let mut d = Draft::blank();
                assert!((k.apply)(&mut d, Raw::Text(v)).is_ok(), "{}: default {v} is invalid", k.name);
            }
        }
        let names: std::collections::HashSet<_> = KEYS.iter().map(|k| k.name).collect();
        let envs: std::collections::HashSet<_> = KEYS.iter().map(|k| k.env).collect();
        assert_eq!(names.len(), KEYS.len(), "a key is declared twice");
        assert_eq!(envs.len(), KEYS.len(), "an environment variable is declared twice");
    }

    #[test]
    fn defaults_bind_loopback_8080_and_derive_the_base_url() {
        let s = Settings::defaults();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.public_base_url(s.bind), "http://127.0.0.1:8080");
        // Never from an unspecified address: the loopback one of its family instead.
        assert_eq!(s.public_base_url("0.0.0.0:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(s.public_base_url("[::]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(s.public_base_url("192.0.2.7:9000".parse().unwrap()), "http://192.0.2.7:9000");
        assert_eq!((s.harvest.interval_secs, s.harvest.max_bytes, s.harvest.enabled), (3600, 5 * 1024 * 1024, true));
        assert_eq!((s.mail.smtp_port, s.mail.from.as_str()), (587, "Cairn <cairn@localhost>"));
        assert_eq!((s.chain.records_per_block, s.chain.difficulty_bits, s.chain.finality_depth), (5, 16, 6));
        assert_eq!((s.sessions.idle_secs, s.sessions.absolute_secs), (12 * 3600, 7 * 24 * 3600));
        assert_eq!((s.join.mails_per_address_per_day, s.join.per_client_per_hour), (3, 10));
        assert!(s.trusted_proxies.is_empty() && s.allow_origins.is_empty() && s.mail.smtp_host.is_none());
    }

    #[test]
    fn a_bad_value_names_its_key_and_where_it_came_from() {
        let err = Settings::from_sources(None, &no_env, &Overrides::default().set("bind", "nowhere"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`bind`") && err.contains("--bind"), "{err}");
        let err = with_env(&[("CAIRN_BIND", "nowhere")]).unwrap_err().to_string();
        assert!(err.contains("`bind`") && err.contains("CAIRN_BIND"), "{err}");
        let err = with_env(&[("CAIRN_BASE_URL", "ftp://x")]).unwrap_err().to_string();
        assert!(err.contains("`base_url`"), "{err}");
        for unreachable in ["http://0.0.0.0:8080", "http://[::]:8080/", "http://0:8080"] {
            let err = with_env(&[("CAIRN_BASE_URL", unreachable)]).unwrap_err().to_string();
            assert!(err.contains("`base_url`") && err.contains("unspecified address"), "{unreachable}: {err}");
        }
        let err = Settings::from_sources(Some(&file("[harvest]\nper_host = 0")), &no_env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("harvest.per_host") && err.contains("cairn.toml"), "{err}");
    }

    #[test]
    fn flags_win_over_the_environment_over_the_file_and_unknown_file_keys_are_refused() {
        let f = file("bind = \"127.0.0.1:9000\"\nbase_url = \"https://c.example.edu/\"\n[harvest]\nper_host = 3");
        let env = |k: &str| (k == "CAIRN_BIND").then(|| "127.0.0.1:9001".to_string());
        let s = Settings::from_sources(Some(&f), &env, &Overrides::default()).unwrap();
        assert_eq!((s.bind.port(), s.harvest.per_host), (9001, 3));
        assert_eq!(s.public_base_url(s.bind), "https://c.example.edu");
        assert_eq!(s.mail.from, "Cairn <cairn@c.example.edu>");
        let s = Settings::from_sources(Some(&f), &env, &Overrides::default().set("bind", "127.0.0.1:9002")).unwrap();
        assert_eq!(s.bind.port(), 9002);
        for bad in ["bnd = \"x\"", "[harvest]\nper_hots = 2", "[nope]\nx = 1", "config = \"other.toml\""] {
            let err = Settings::from_sources(Some(&file(bad)), &no_env, &Overrides::default()).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn environment_sets_harvest_mail_and_allowed_origins() {
        let s = with_env(&[
            ("CAIRN_ALLOW_ORIGINS", "http://127.0.0.1:9001, http://localhost:9002"),
            ("CAIRN_HARVEST_PER_HOST", "4"),
            ("CAIRN_SMTP_HOST", "127.0.0.1"),
            ("CAIRN_SMTP_TLS", "none"),
        ])
        .unwrap();
        assert_eq!(s.allow_origins.len(), 2);
        assert_eq!(s.harvest.per_host, 4);
        assert_eq!(s.mail.smtp_tls, SmtpTls::None);
        assert_eq!(s.mail.smtp_port, 25);
        let err = with_env(&[("CAIRN_HARVEST_PER_HOST", "many")]).unwrap_err().to_string();
        assert!(err.contains("harvest.per_host"), "{err}");
        let err = with_env(&[("CAIRN_ALLOW_ORIGINS", "http://x.org/path")]).unwrap_err().to_string();
        assert!(err.contains("allow_origins"), "{err}");
    }

    #[test]
    fn booleans_are_strict_everywhere_and_finality_depth_is_bounded() {
        let err = with_env(&[("CAIRN_CHAIN_MINING", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("chain.mining") && err.contains("'maybe'"), "{err}");
        let s = with_env(&[("CAIRN_CHAIN_MINING", "off"), ("CAIRN_HARVEST_ENABLED", "No")]).unwrap();
        assert!(!s.chain.mining && !s.harvest.enabled);
        let err = Settings::from_sources(Some(&file("[chain]\nmining = \"maybe\"")), &no_env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chain.mining"), "{err}");
        let err = Settings::from_sources(Some(&file("[chain]\nmining = 1")), &no_env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chain.mining"), "{err}");
        let err = with_env(&[("CAIRN_CHAIN_FINALITY_DEPTH", "0")]).unwrap_err().to_string();
        assert!(err.contains("chain.finality_depth"), "{err}");
    }

    #[test]
    fn limits_and_peers_come_from_the_environment_and_the_file() {
        let s = with_env(&[
            ("CAIRN_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1"),
            ("CAIRN_SESSION_IDLE_SECS", "60"),
            ("CAIRN_JOIN_PER_CLIENT_PER_HOUR", "5"),
        ])
        .unwrap();
        assert!(s.trusted_proxies.contains(&"10.1.2.3".parse().unwrap()));
        assert!(s.trusted_proxies.contains(&"192.168.1.7".parse().unwrap()));
        assert!(s.trusted_proxies.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        assert!(!s.trusted_proxies.contains(&"192.168.1.8".parse().unwrap()));
        assert_eq!((s.sessions.idle_secs, s.join.per_client_per_hour), (60, 5));
        let err = with_env(&[("CAIRN_TRUSTED_PROXIES", "not-an-ip")]).unwrap_err().to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
        let f = file("[join]\nmails_per_address_per_day = 0");
        let err = Settings::from_sources(Some(&f), &no_env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("join.mails_per_address_per_day"), "{err}");
        let key = "ab".repeat(32);
        let f = file(&format!("[[peers]]\nurl = \"https://p.example\"\npublic_key = \"{key}\"\nname = \"P\""));
        let s = Settings::from_sources(Some(&f), &no_env, &Overrides::default()).unwrap();
        assert_eq!((s.peers.len(), s.peers[0].name.as_str()), (1, "P"));
        let f = file("[[peers]]\nurl = \"https://p.example\"\npublic_key = \"short\"");
        let err = Settings::from_sources(Some(&f), &no_env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("peers"), "{err}");
    }

    #[test]
    fn oidc_settings_come_from_the_environment_and_the_secret_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let s = with_env(&[
            ("CAIRN_OIDC_ISSUER", "https://login.example.edu/realms/staff"),
            ("CAIRN_OIDC_CLIENT_ID", "cairn"),
            ("CAIRN_OIDC_CLIENT_SECRET_FILE", file.to_str().unwrap()),
            ("CAIRN_OIDC_ADMIN_GROUPS", "cairn-admins, it"),
            ("CAIRN_OIDC_ALLOW_PROVISIONING", "yes"),
            ("CAIRN_AUTH_PASSWORDS", "false"),
        ])
        .unwrap();
        assert!(s.oidc.is_set() && s.oidc.allow_provisioning && !s.auth.passwords);
        assert_eq!(s.oidc.admin_groups, ["cairn-admins", "it"]);
        assert_eq!((s.oidc.email_claim.as_str(), s.oidc.groups_claim.as_str()), ("email", "groups"));
        assert_eq!(s.oidc.scopes, ["openid", "email"]);
        assert_eq!(s.oidc.secret().unwrap(), "from-the-file");
        let s = with_env(&[("CAIRN_OIDC_CLIENT_SECRET", "hunter2-secret")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2-secret"));
        assert_eq!(s.oidc.secret().unwrap(), "hunter2-secret");
        let s = Settings::defaults();
        assert!(!s.oidc.is_set() && s.auth.passwords && !s.oidc.allow_provisioning);
        for (var, bad) in [
            ("CAIRN_OIDC_ISSUER", "ftp://x.org"),
            ("CAIRN_OIDC_ISSUER", "https://x.org/?a=b"),
            ("CAIRN_OIDC_EMAIL_CLAIM", "e mail"),
            ("CAIRN_OIDC_ALLOW_PROVISIONING", "maybe"),
            ("CAIRN_AUTH_PASSWORDS", "sometimes"),
        ] {
            let err = with_env(&[(var, bad)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={bad}: {err}");
        }
    }

    #[test]
    fn the_metrics_listener_is_off_unless_given_an_address() {
        assert_eq!(Settings::defaults().metrics.bind, None);
        let s = with_env(&[("CAIRN_METRICS_BIND", "127.0.0.1:9464")]).unwrap();
        assert_eq!(s.metrics.bind, Some("127.0.0.1:9464".parse().unwrap()));
        let err = with_env(&[("CAIRN_METRICS_BIND", "localhost")]).unwrap_err().to_string();
        assert!(err.contains("CAIRN_METRICS_BIND") && err.contains("metrics.bind"), "{err}");
    }

    #[test]
    fn the_readme_settings_table_is_the_declared_one() {
        let readme = include_str!("../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's settings table differs from src/config.rs's KEYS; replace it with:\n\n{table}"
        );
    }

    #[test]
    fn help_lists_every_setting() {
        let help = settings_help();
        for k in KEYS {
            assert!(help.contains(k.env), "{} missing from --help", k.env);
        }
        let flags: Vec<String> = flag_args().iter().map(|a| a.get_long().unwrap_or_default().to_string()).collect();
        assert_eq!(flags, ["config", "bind", "data-dir", "base-url", "institution-name"]);
    }
}
