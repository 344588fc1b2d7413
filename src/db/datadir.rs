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

/// Opens the database at `db_path` in the data dir `data_dir`, creating the dir (private) and
/// the file (0600, before SQLite opens it; SQLite gives -wal and -shm the same mode) on first
/// use, and migrating it; then checks the data dir's modes.
pub fn open_database(data_dir: &Path, db_path: &Path) -> anyhow::Result<super::DbPool> {
    use anyhow::Context as _;
    create_private_dir(data_dir).with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    match create_private_file(db_path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", db_path.display())),
    }
    let pool = super::open(db_path)?;
    secure(data_dir);
    Ok(pool)
}

/// The data dir holds learners' emails and the keys: it must be 0700 and its files 0600. Any
/// looser mode is reported and tightened.
pub fn secure(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let fix = |path: &Path, want: u32| {
            let Ok(meta) = std::fs::symlink_metadata(path) else { return };
            if meta.file_type().is_symlink() {
                return;
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & !want != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), want = format!("{want:o}"),
                    "the data dir was readable by others; tightening its permissions");
                if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
                    tracing::error!(path = %path.display(), error = %e, "cannot tighten permissions");
                }
            }
        };
        fix(dir, 0o700);
        for name in ["cairn.db", "cairn.db-wal", "cairn.db-shm", "session.key", "institution.key"] {
            fix(&dir.join(name), 0o600);
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(is_credential_key_name) {
                    fix(&e.path(), 0o600);
                }
            }
        }
        let mail = dir.join("mail");
        fix(&mail, 0o700);
        if let Ok(entries) = std::fs::read_dir(&mail) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "eml") {
                    fix(&e.path(), 0o600);
                }
            }
        }
    }
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
