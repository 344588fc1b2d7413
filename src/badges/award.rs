//! An award's badge: the Task's artwork, a new Assertion baked into it (PNG and SVG), and
//! the Assertion as served later. The rules of awarding and revoking are `app::award`'s.

use diesel::SqliteConnection;
use rand::RngCore;

use super::art::{self, ArtKind};
use super::bake::{self, RasterCache};
use super::ob;
use crate::db::StoreError;
use crate::db::StoreResult;
use crate::db::awards::Award;
use crate::db::courses::{self, Task};

/// What issuing needs besides the database.
pub struct Issuer<'a> {
    /// Public base URL, no trailing slash.
    pub base: &'a str,
    pub raster: &'a RasterCache,
    /// The institution's key: every award and revocation is signed into the chain's pool.
    pub signer: &'a cairn_chain::SigningKey,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The Task's artwork as (SVG text if it is an SVG design, PNG bytes).
pub fn artwork(conn: &mut SqliteConnection, issuer: &Issuer, task: &Task) -> StoreResult<(Option<String>, Vec<u8>)> {
    let uploaded = courses::task_artwork(conn, task.id)?;
    let svg = match &uploaded {
        Some((bytes, mime)) if ArtKind::from_mime(mime) == Some(ArtKind::Png) => return Ok((None, bytes.clone())),
        Some((bytes, _)) => String::from_utf8_lossy(bytes).into_owned(),
        None => {
            let course =
                courses::places_of_task(conn, task.id)?.into_iter().next().map(|(c, _)| c.title).unwrap_or_default();
            art::default_svg(&task.title, &course, &task.hashtag)
        }
    };
    let png = issuer.raster.get_or_render((task.id, task.updated_at), svg.as_bytes()).map_err(|e| {
        StoreError::Internal(anyhow::anyhow!("the badge image of {} cannot be drawn: {e}", task.hashtag))
    })?;
    Ok((Some(svg), png.as_ref().clone()))
}

/// A baking failure is ours, never the client's.
fn baking(e: String) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("baking the badge image failed: {e}"))
}

/// An award's documents, made before it is stored.
pub struct Baked {
    pub public_id: String,
    pub salt: String,
    /// The recipient's hashed identity.
    pub identity: String,
    pub badge_class: String,
    /// The Assertion's URL.
    pub url: String,
    /// The Assertion as JSON-LD.
    pub json: String,
    /// The design its images are baked from, when asked for.
    pub art: std::sync::Arc<Art>,
}

/// The Task's design as awards store it: its artwork, named by its hash.
pub fn design(conn: &mut SqliteConnection, issuer: &Issuer, task: &Task) -> StoreResult<std::sync::Arc<Art>> {
    let (svg, png) = artwork(conn, issuer, task)?;
    let art = match svg {
        Some(s) => Art::new(s, png),
        // A PNG design: wrap it in an SVG so both baked forms exist.
        None => Art::new(png_in_svg(&png), png),
    };
    Ok(std::sync::Arc::new(art))
}

/// A badge design in both forms, named by the SHA-256 of the two: stored once, however many
/// awards are made with it.
pub struct Art {
    pub sha256: String,
    pub svg: String,
    pub png: Vec<u8>,
}

impl Art {
    fn new(svg: String, png: Vec<u8>) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update((svg.len() as u64).to_be_bytes());
        h.update(svg.as_bytes());
        h.update(&png);
        Art { sha256: hex::encode(h.finalize()), svg, png }
    }
}

/// An award's baked SVG, from its stored images.
pub fn baked_svg_of(stored: &crate::db::awards::StoredImages) -> StoreResult<Vec<u8>> {
    let Some((svg, _)) = &stored.art else { return Ok(stored.baked_svg.clone()) };
    let url = serde_json::from_str::<serde_json::Value>(&stored.assertion_json)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .ok_or_else(|| baking("the stored Assertion has no id".into()))?;
    let svg = String::from_utf8_lossy(svg);
    Ok(bake::bake_svg(&svg, &url, &stored.assertion_json).map_err(baking)?.into_bytes())
}

/// An award's baked PNG, from its stored images.
pub fn baked_png_of(stored: &crate::db::awards::StoredImages) -> StoreResult<Vec<u8>> {
    let Some((_, png)) = &stored.art else { return Ok(stored.baked_png.clone()) };
    bake::bake_png(png, &stored.assertion_json).map_err(baking)
}

/// What an Assertion says beyond its Task and recipient.
pub struct Claim<'a> {
    pub issued_on: i64,
    pub expires: Option<i64>,
    pub evidence_url: Option<&'a str>,
    pub narrative: Option<&'a str>,
}

/// Makes a new Assertion for `email`, with the Task's design (from [`design`]) to bake it
/// into when its images are asked for; a fresh public id and salt each time.
pub fn bake_new(
    issuer: &Issuer,
    task: &Task,
    art: std::sync::Arc<Art>,
    email: &str,
    claim: &Claim,
) -> StoreResult<Baked> {
    let public_id = random_hex(16);
    let salt = random_hex(16);
    let identity = ob::identity_hash(email, &salt);
    let badge_class = ob::badge_class_url(issuer.base, task);
    let doc = ob::assertion(&ob::AssertionParts {
        base: issuer.base,
        public_id: &public_id,
        badge_class: &badge_class,
        salt: &salt,
        identity: &identity,
        issued_on: claim.issued_on,
        expires: claim.expires,
        evidence_url: claim.evidence_url,
        narrative: claim.narrative,
        revoked: None,
    });
    let json = doc.to_string();
    let url = ob::assertion_url(issuer.base, &public_id);
    Ok(Baked { public_id, salt, identity, badge_class, url, json, art })
}

/// An SVG that shows a PNG design (so a PNG badge can also be baked as SVG).
fn png_in_svg(png: &[u8]) -> String {
    use base64::Engine as _;
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png)
        .into_dimensions()
        .unwrap_or((400, 400));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><image width=\"{w}\" height=\"{h}\" href=\"data:image/png;base64,{}\"/></svg>",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// The Assertion document as served now (revocation included).
pub fn assertion_document(base: &str, a: &Award, task: &Task) -> serde_json::Value {
    let badge_class = ob::badge_class_url(base, task);
    ob::assertion(&ob::AssertionParts {
        base,
        public_id: &a.public_id,
        badge_class: &badge_class,
        salt: &a.salt,
        identity: &a.identity,
        issued_on: a.issued_on,
        expires: a.expires,
        evidence_url: a.evidence_url.as_deref(),
        narrative: a.narrative.as_deref(),
        revoked: a.revocation_reason.as_deref().filter(|_| a.is_revoked()),
    })
}

/// The public id from an assertion URL (or the id itself).
pub fn public_id_of(url_or_id: &str) -> String {
    let t = url_or_id.trim().trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// The institution's DID, or an internal error when the base URL cannot name one.
pub fn issuer_did(base: &str) -> StoreResult<String> {
    super::did::did_web(base)
        .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("the base URL {base} cannot be turned into a did:web")))
}

/// A new award's Open Badges 3.0 credential, signed before the award is stored.
pub struct SignedCredential {
    pub status_index: i64,
    pub json: String,
    /// The institution's own key when it signed (to be listed among the credential keys).
    pub institution_key: Option<String>,
}

/// What a new award's credential states about it.
pub struct CredentialClaim<'a> {
    pub public_id: &'a str,
    pub salt: &'a str,
    pub identity: &'a str,
    pub claim: &'a Claim<'a>,
}

/// What signing credentials needs from the store, read once for any number of them: the
/// institution, its DID and the current credential key.
pub struct CredentialKey {
    did: String,
    institution: crate::db::institution::Institution,
    signer: cairn_chain::SigningKey,
    method: String,
    /// The institution's own key when it signs (to be listed among the credential keys).
    institution_key: Option<String>,
}

impl CredentialKey {
    pub fn read(conn: &mut SqliteConnection, issuer: &Issuer) -> StoreResult<Self> {
        let did = issuer_did(issuer.base)?;
        let institution = crate::db::institution::get(conn)?;
        let signer = credential_signer(conn, issuer.signer)?;
        let key = signer.verifying_key();
        let institution_key = (signer == *issuer.signer).then(|| super::did::multibase(&key));
        let method = super::did::method_id(&did, &key);
        Ok(CredentialKey { did, institution, signer, method, institution_key })
    }
}

/// Signs a new award's Open Badges 3.0 credential, with a status list index reserved for it
/// (`crate::db::credentials::reserve_indexes`). `record_id` is the award's chain record.
pub fn sign_credential(
    issuer: &Issuer,
    key: &CredentialKey,
    task: &Task,
    subject: &CredentialClaim,
    record_id: &cairn_chain::Hash,
    index: i64,
    now: i64,
) -> StoreResult<SignedCredential> {
    let record_hex = record_id.to_hex();
    let doc = super::vc::credential(&super::vc::CredentialParts {
        base: issuer.base,
        did: &key.did,
        institution: &key.institution,
        task,
        public_id: subject.public_id,
        salt: subject.salt,
        identity: subject.identity,
        issued_on: subject.claim.issued_on,
        expires: subject.claim.expires,
        evidence_url: subject.claim.evidence_url,
        narrative: subject.claim.narrative,
        record_id: &record_hex,
        status_index: index,
    });
    let signed = super::vc::sign(doc, &key.signer, &key.method, now)
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("signing the credential failed: {e}")))?;
    Ok(SignedCredential { status_index: index, json: signed.to_string(), institution_key: key.institution_key.clone() })
}

/// Stores a signed credential (inside the award's transaction).
pub fn store_credential(
    conn: &mut SqliteConnection,
    public_id: &str,
    credential: &SignedCredential,
    now: i64,
) -> StoreResult<()> {
    if let Some(key) = &credential.institution_key {
        crate::db::credentials::ensure_key(conn, key, now)?;
    }
    crate::db::credentials::insert(conn, credential.status_index, public_id, &credential.json, now)
}

/// The key credentials are signed with: the institution's own (`chain_key`) until
/// `cairn identity rotate` made another, whose secret is then read from its file in the data
/// dir (so every process signs with the current key as soon as the rotation is committed).
pub fn credential_signer(
    conn: &mut SqliteConnection,
    chain_key: &cairn_chain::SigningKey,
) -> StoreResult<cairn_chain::SigningKey> {
    let Some((public, file)) = crate::db::credentials::current_key_file(conn)? else {
        return Ok(chain_key.clone());
    };
    let path = crate::db::credentials::database_dir(conn)?.join(&file);
    let broken = |why: String| StoreError::Internal(anyhow::anyhow!("the credential key {}: {why}", path.display()));
    let bytes = std::fs::read(&path).map_err(|e| broken(e.to_string()))?;
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| broken("it must hold 32 bytes".into()))?;
    let key = cairn_chain::SigningKey::from_bytes(&seed);
    if super::did::multibase(&key.verifying_key()) != public {
        return Err(broken(format!("it does not hold the key {public}")));
    }
    Ok(key)
}

/// An award's credential baked into its Task's artwork: PNG (`openbadgecredential` iTXt)
/// or SVG (`<openbadges:credential>`).
pub fn bake_credential(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    task: &Task,
    credential_json: &str,
    svg: bool,
) -> StoreResult<Vec<u8>> {
    let (art_svg, png) = artwork(conn, issuer, task)?;
    if svg {
        let base = art_svg.unwrap_or_else(|| png_in_svg(&png));
        Ok(bake::bake_svg_credential(&base, credential_json).map_err(baking)?.into_bytes())
    } else {
        bake::bake_png_as(&png, bake::OB3_KEYWORD, credential_json).map_err(baking)
    }
}

/// Status list number `list`, signed at `now` with the current credential key; not found
/// beyond the lists in use.
pub fn status_list_credential(
    conn: &mut SqliteConnection,
    base: &str,
    chain_key: &cairn_chain::SigningKey,
    list: i64,
    now: i64,
) -> StoreResult<String> {
    let last = super::vc::status_position(crate::db::credentials::max_index(conn)?).0;
    if list < 1 || list > last {
        return Err(StoreError::NotFound("status list"));
    }
    let from = (list - 1) * super::vc::LIST_BITS;
    let revoked: Vec<i64> = crate::db::credentials::revoked_between(conn, from, from + super::vc::LIST_BITS)?
        .into_iter()
        .map(|i| i - from)
        .collect();
    let did = issuer_did(base)?;
    let key = credential_signer(conn, chain_key)?;
    let signing =
        |e: super::vc::ProofError| StoreError::Internal(anyhow::anyhow!("signing the status list failed: {e}"));
    let doc = super::vc::status_list(base, &did, list, &revoked, now).map_err(signing)?;
    let signed =
        super::vc::sign(doc, &key, &super::did::method_id(&did, &key.verifying_key()), now).map_err(signing)?;
    Ok(signed.to_string())
}

/// The DID document: the current signing key first, then every key credentials were
/// signed with before.
pub fn did_document(
    conn: &mut SqliteConnection,
    base: &str,
    chain_key: &cairn_chain::SigningKey,
) -> StoreResult<serde_json::Value> {
    let did = issuer_did(base)?;
    let current = &credential_signer(conn, chain_key)?.verifying_key();
    let mut keys = vec![*current];
    for (mb, _) in crate::db::credentials::keys(conn)? {
        if let Some(k) = super::did::key_from_multibase(&mb).filter(|k| k != current) {
            keys.push(k);
        }
    }
    Ok(super::did::document(&did, &keys))
}
