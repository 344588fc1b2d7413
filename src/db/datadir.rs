//! The data dir's files beside the database: private directories and files, made with the
//! right mode from the start (never created readable, then tightened).

use std::path::Path;

/// Creates a directory (and its parents) readable only by its owner.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates a new file (it must not exist) readable and writable by its owner only.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// True for a name `cairn identity rotate` gives a credential key's file:
/// `credential-` + digits and letters (and dashes) + `.key`, nothing that leaves the dir.
pub fn is_credential_key_name(name: &str) -> bool {
    name.len() <= 100
        && name
            .strip_prefix("credential-")
            .and_then(|n| n.strip_suffix(".key"))
            .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::is_credential_key_name;

    #[test]
    fn credential_key_names_never_leave_the_data_dir() {
        assert!(is_credential_key_name("credential-1700000000-AbCd1234.key"));
        for bad in [
            "credential-.key",
            "credential-../institution.key",
            "credential-1/x.key",
            "credential-1.key.bak",
            "institution.key",
            "credential-1 2.key",
        ] {
            assert!(!is_credential_key_name(bad), "{bad}");
        }
    }
}
