//! Records: what the chain remembers of an award or revocation, signed by the recording
//! institution. Nothing private: the recipient appears only as the salted hash already
//! published in the assertion.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::Digest as _;

use crate::encoding::{Enc, Reader, Sink};
use crate::{ChainError, Hash};

const DOMAIN: &[u8] = b"cairn-record-v1";
/// Longest string field accepted when decoding.
const MAX_STR: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Award = 1,
    Revocation = 2,
}

/// The signed fields of a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordFields {
    pub kind: RecordKind,
    pub assertion_url: String,
    pub badge_class_url: String,
    pub issuer_id: String,
    /// `sha256$…` as in the assertion's recipient identity.
    pub recipient_hash: String,
    /// A hash of the evidence (zero when there is none); Cairn's is salted with the award's salt.
    pub evidence_hash: Hash,
    pub issued_at: i64,
}

/// A signed record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub fields: RecordFields,
    /// The recording institution's Ed25519 public key (its id on the chain).
    pub institution: [u8; 32],
    pub signature: [u8; 64],
}

impl Record {
    /// Signs `fields` as the institution holding `key`.
    pub fn sign(fields: RecordFields, key: &SigningKey) -> Record {
        let institution = key.verifying_key().to_bytes();
        let mut r = Record { fields, institution, signature: [0; 64] };
        r.signature = key.sign(&r.signed_bytes()).to_bytes();
        r
    }

    fn write_signed<S: Sink>(&self, sink: &mut S) {
        let f = &self.fields;
        Enc(sink)
            .bytes(DOMAIN)
            .u8(f.kind as u8)
            .str(&f.assertion_url)
            .str(&f.badge_class_url)
            .str(&f.issuer_id)
            .str(&f.recipient_hash)
            .bytes(&f.evidence_hash.0)
            .i64(f.issued_at)
            .bytes(&self.institution);
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(256);
        self.write_signed(&mut v);
        v
    }

    /// The canonical encoding: signed bytes then the signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signed_bytes();
        b.extend_from_slice(&self.signature);
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, ChainError> {
        let mut r = Reader::new(bytes);
        if r.take(DOMAIN.len())? != DOMAIN {
            return Err(ChainError::Malformed("not a Cairn record".into()));
        }
        let kind = match r.u8()? {
            1 => RecordKind::Award,
            2 => RecordKind::Revocation,
            k => return Err(ChainError::Malformed(format!("unknown record kind {k}"))),
        };
        let fields = RecordFields {
            kind,
            assertion_url: r.str(MAX_STR)?,
            badge_class_url: r.str(MAX_STR)?,
            issuer_id: r.str(MAX_STR)?,
            recipient_hash: r.str(MAX_STR)?,
            evidence_hash: Hash(r.array()?),
            issued_at: r.i64()?,
        };
        let institution = r.array()?;
        let signature = r.array()?;
        r.done()?;
        Ok(Record { fields, institution, signature })
    }

    /// The record's id: its Merkle leaf hash, `SHA-256(0x00 ‖ encoding)`, computed without
    /// building the encoding.
    pub fn id(&self) -> Hash {
        let mut h = sha2::Sha256::new();
        sha2::Digest::update(&mut h, [0u8]);
        self.write_signed(&mut h);
        sha2::Digest::update(&mut h, self.signature);
        Hash(sha2::Digest::finalize(h).into())
    }

    /// Checks the signature alone.
    pub fn verify_signature(&self) -> Result<(), ChainError> {
        let key = VerifyingKey::from_bytes(&self.institution).map_err(|_| ChainError::BadSignature)?;
        key.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&self.signature))
            .map_err(|_| ChainError::BadSignature)
    }
}

/// Verifies many record signatures at once (Ed25519 batch verification).
pub(crate) fn verify_batch(records: &[&Record]) -> Result<(), ChainError> {
    crate::sig::verify_records(records, &mut crate::sig::KeyCache::default())
}
