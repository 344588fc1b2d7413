//! Rotating the key Open Badges 3.0 credentials are signed with.

use std::path::Path;

use diesel::SqliteConnection;
use rand::RngCore;

use crate::app::access::Actor;
use crate::badges::did;
use crate::db::{StoreError, StoreResult, credentials};

/// Makes a new credential key at `now`: its secret in a new file of the data dir (readable
/// by the owner only), its public key the signing one from the commit on. Every earlier key
/// stays in the DID document, so credentials signed before keep verifying. The chain key is
/// not changed. Only the earlier key's public half is needed (the database holds it), so a
/// rotation also replaces a key whose file was lost. On any error no new key file is left.
/// Returns the new key's multibase.
pub fn rotate(
    conn: &mut SqliteConnection,
    actor: &Actor,
    data_dir: &Path,
    chain_key: &cairn_chain::SigningKey,
    now: i64,
) -> StoreResult<String> {
    actor.require_admin("rotate the credential key")?;
    // The signing key until now: the newest unretired one, or the institution's own.
    let old = match credentials::keys(conn)?.into_iter().find(|(_, retired)| retired.is_none()) {
        Some((key, _)) => key,
        None => did::multibase(&chain_key.verifying_key()),
    };
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = cairn_chain::SigningKey::from_bytes(&seed);
    let public = did::multibase(&key.verifying_key());
    let name = format!("credential-{now}-{}.key", &public[public.len() - 8..]);
    let path = data_dir.join(&name);
    if let Err(e) = write_secret(&path, &seed) {
        // A file made but not fully written holds no usable key; one that already existed
        // (create_new) is not ours to remove.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&path);
        }
        return Err(StoreError::Internal(anyhow::anyhow!("cannot write {}: {e}", path.display())));
    }
    let done = crate::db::write_tx(conn, |c| {
        credentials::rotate_to(c, &old, &public, &name, now)?;
        crate::app::audit::record(c, actor, "key.rotate", None, &public, &format!("replaces {old}"), now)
    });
    if let Err(e) = done {
        // Not committed: the file names no key.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(public)
}

fn write_secret(path: &Path, seed: &[u8; 32]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path)?;
    file.write_all(seed)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection as _;

    fn key_files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("credential-"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotating_needs_no_earlier_secret_and_leaves_no_key_file_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut conn = pool.get().unwrap();
        let chain_key = crate::ledger::load_key(dir.path()).unwrap();
        let first = super::rotate(
            &mut conn,
            &crate::app::access::Actor::institution(crate::app::access::Surface::Cli),
            dir.path(),
            &chain_key,
            100,
        )
        .unwrap();
        // The first rotated key's secret is lost: the next rotation needs only its public key.
        let lost = key_files(dir.path());
        assert_eq!(lost.len(), 1);
        std::fs::remove_file(dir.path().join(&lost[0])).unwrap();
        let second = super::rotate(
            &mut conn,
            &crate::app::access::Actor::institution(crate::app::access::Surface::Cli),
            dir.path(),
            &chain_key,
            200,
        )
        .unwrap();
        let keys = crate::db::credentials::keys(&mut conn).unwrap();
        assert_eq!(keys[0], (second.clone(), None), "the new key signs");
        assert!(keys.iter().any(|(k, retired)| *k == first && *retired == Some(200)), "{keys:?}");
        let signer = crate::badges::award::credential_signer(&mut conn, &chain_key).unwrap();
        assert_eq!(crate::badges::did::multibase(&signer.verifying_key()), second);

        // The store refuses the rotation: the new key's file is removed again.
        let before = key_files(dir.path());
        conn.batch_execute(
            "CREATE TRIGGER no_keys BEFORE INSERT ON credential_keys BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let err = super::rotate(
            &mut conn,
            &crate::app::access::Actor::institution(crate::app::access::Surface::Cli),
            dir.path(),
            &chain_key,
            300,
        )
        .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(key_files(dir.path()), before, "no stray key file");
        assert_eq!(crate::db::credentials::keys(&mut conn).unwrap()[0].0, second, "nothing changed");
    }
}
