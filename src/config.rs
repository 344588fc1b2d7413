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

        Ok(Settings { bind, data_dir, base_url, institution_name })
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
}
