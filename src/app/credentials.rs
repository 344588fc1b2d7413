//! Rotating the key Open Badges 3.0 credentials are signed with.

use std::path::Path;

use diesel::SqliteConnection;
use rand::RngCore;

use crate::badges::did;
use crate::db::{StoreError, StoreResult, credentials};

/// Makes a new credential key at `now`: its secret in a new file of the data dir (readable
/// by the owner only), its public key the signing one from the commit on. Every earlier key
/// stays in the DID document, so credentials signed before keep verifying. The chain key is
/// not changed. Returns the new key's multibase.
pub fn rotate(
    conn: &mut SqliteConnection,
    data_dir: &Path,
    chain_key: &cairn_chain::SigningKey,
    now: i64,
) -> StoreResult<String> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = cairn_chain::SigningKey::from_bytes(&seed);
    let public = did::multibase(&key.verifying_key());
    let name = format!("credential-{now}-{}.key", &public[public.len() - 8..]);
    let path = data_dir.join(&name);
    write_secret(&path, &seed)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    let old = did::multibase(&crate::badges::award::credential_signer(conn, chain_key)?.verifying_key());
    if let Err(e) = credentials::rotate_to(conn, &old, &public, &name, now) {
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
