//! Keys, key ids, signers and signature checks.
//!
//! Keys are ed25519 in securesystemslib's form:
//! `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<64 hex>"}}`, plus any extension
//! fields. A key id is the sha256 of the whole object's canonical JSON, as securesystemslib's
//! `compute_default_keyid`; metadata listing a key under any other id is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tufa_pypi::Sha256Digest;
use zeroize::{Zeroize as _, Zeroizing};

use crate::metadata::{Signature, Signed};
use crate::{KeyId, TufError, canonical};

/// The `keyval` of a public key. Fields other than `public` are kept: they are part of the key
/// object a key id is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    #[serde(flatten)]
    unrecognized: BTreeMap<String, Value>,
}

impl KeyVal {
    /// A `keyval` holding only `public`.
    pub fn new(public: String) -> Self {
        Self {
            public,
            unrecognized: BTreeMap::new(),
        }
    }
}

/// A public key as TUF metadata lists it.
///
/// Fields this crate does not know (`keyid_hash_algorithms`, `x-…` extensions) are kept, as
/// securesystemslib keeps them: the key id is the sha256 of the canonical JSON of the whole key
/// object ([`Key::key_id`]), and they are written back when the key is serialised. Parsing
/// refuses extension values canonical JSON cannot hold (floats), so every key has a key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawKey")]
pub struct Key {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    #[serde(flatten)]
    unrecognized: BTreeMap<String, Value>,
}

/// A key as it comes off the wire, before [`Key`]'s checks.
#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    scheme: String,
    keyval: KeyVal,
    #[serde(flatten)]
    unrecognized: BTreeMap<String, Value>,
}

impl TryFrom<RawKey> for Key {
    type Error = String;

    fn try_from(raw: RawKey) -> Result<Self, String> {
        let extensions = raw.unrecognized.iter().map(|(k, v)| (k.clone(), v)).chain(
            raw.keyval
                .unrecognized
                .iter()
                .map(|(k, v)| (format!("keyval.{k}"), v)),
        );
        for (name, value) in extensions {
            canonical::to_canonical_bytes(value)
                .map_err(|e| format!("key field `{name}` cannot be written as canonical JSON: {e}"))?;
        }
        Ok(Self {
            keytype: raw.keytype,
            scheme: raw.scheme,
            keyval: raw.keyval,
            unrecognized: raw.unrecognized,
        })
    }
}

impl Key {
    pub const ED25519: &'static str = "ed25519";

    /// An ed25519 public key.
    pub fn ed25519(public: &[u8; 32]) -> Self {
        Self {
            keytype: Self::ED25519.to_owned(),
            scheme: Self::ED25519.to_owned(),
            keyval: KeyVal::new(hex::encode(public)),
            unrecognized: BTreeMap::new(),
        }
    }

    /// Fields of the key object other than `keytype`, `scheme` and `keyval`.
    pub fn unrecognized(&self) -> &BTreeMap<String, Value> {
        &self.unrecognized
    }

    /// The key with an extra field (an extension such as `x-tuf-on-ci-keyowner`), which changes
    /// its key id. Refuses a value canonical JSON cannot hold (a float).
    pub fn with_field(mut self, name: &str, value: Value) -> Result<Self, TufError> {
        canonical::to_canonical_bytes(&value)?;
        self.unrecognized.insert(name.to_owned(), value);
        Ok(self)
    }

    /// The key id: sha256 of the canonical JSON of the whole key object, unrecognised fields
    /// included, exactly as securesystemslib computes it (`compute_default_keyid` over
    /// `Key.to_dict()`).
    pub fn key_id(&self) -> KeyId {
        if self.unrecognized.is_empty() && self.keyval.unrecognized.is_empty() {
            return self.plain_key_id();
        }
        match canonical::to_canonical(self) {
            Ok(bytes) => KeyId::from(Sha256Digest::of(&bytes)),
            // Unreachable: construction and parsing refuse values canonical JSON cannot hold.
            Err(_) => self.plain_key_id(),
        }
    }

    /// Key id of `{"keytype", "keyval": {"public"}, "scheme"}`.
    fn plain_key_id(&self) -> KeyId {
        // Written by hand (keys are ordered: keytype < keyval < scheme) so it cannot fail.
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"{\"keytype\":");
        canonical::write_canonical_string(&self.keytype, &mut out);
        out.extend_from_slice(b",\"keyval\":{\"public\":");
        canonical::write_canonical_string(&self.keyval.public, &mut out);
        out.extend_from_slice(b"},\"scheme\":");
        canonical::write_canonical_string(&self.scheme, &mut out);
        out.push(b'}');
        KeyId::from(Sha256Digest::of(&out))
    }

    /// What makes two keys the same key whatever their key ids and extension fields: key type,
    /// scheme and public key (hex case folded). Thresholds count these, not key ids.
    pub fn identity(&self) -> (String, String, String) {
        (
            self.keytype.clone(),
            self.scheme.clone(),
            self.keyval.public.to_ascii_lowercase(),
        )
    }

    /// Checks that `keyid` is this key's id: TUF key ids are the hash of the key, so one key
    /// cannot be listed under several ids.
    pub fn check_key_id(&self, keyid: &KeyId) -> Result<(), TufError> {
        let actual = self.key_id();
        if &actual != keyid {
            return Err(TufError::InvalidKey {
                keyid: keyid.to_string(),
                reason: format!(
                    "the key id is not the sha256 of the key's canonical JSON (that is `{actual}`)"
                ),
            });
        }
        Ok(())
    }

    /// Verifies `sig` over `msg`. `Ok(false)` for a well-formed key whose signature does not
    /// verify; `Err` for a key this crate cannot use (wrong type or malformed).
    pub fn verify(&self, keyid: &KeyId, msg: &[u8], sig: &[u8]) -> Result<bool, TufError> {
        let invalid = |reason: String| TufError::InvalidKey {
            keyid: keyid.to_string(),
            reason,
        };
        if self.keytype != Self::ED25519 || self.scheme != Self::ED25519 {
            return Err(invalid(format!(
                "unsupported key type `{}` / scheme `{}` (only ed25519 is supported)",
                self.keytype, self.scheme
            )));
        }
        let mut public = [0u8; 32];
        hex::decode_to_slice(&self.keyval.public, &mut public)
            .map_err(|_| invalid("public key is not 64 hex characters".into()))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| invalid("public key is not a valid ed25519 point".into()))?;
        let Ok(sig) = <[u8; 64]>::try_from(sig) else {
            return Ok(false);
        };
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        Ok(key.verify_strict(msg, &sig).is_ok())
    }
}

/// Something that signs metadata: a key file today, a hardware token later.
pub trait Signer: Send + Sync {
    /// The public key.
    fn key(&self) -> &Key;
    /// The key id of [`Signer::key`].
    fn keyid(&self) -> KeyId {
        self.key().key_id()
    }
    /// Signs `msg` (the canonical JSON of a `signed` object).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TufError>;
}

/// Signs the canonical JSON of `signed` with every signer. Signers sharing a key id sign once.
pub fn sign_metadata<T: Serialize>(signed: T, signers: &[&dyn Signer]) -> Result<Signed<T>, TufError> {
    let payload = canonical::to_canonical(&signed)?;
    let mut signatures: Vec<Signature> = Vec::with_capacity(signers.len());
    for signer in signers {
        let keyid = signer.keyid();
        if signatures.iter().any(|s| s.keyid == keyid) {
            continue;
        }
        let sig = hex::encode(signer.sign(&payload)?);
        signatures.push(Signature { keyid, sig });
    }
    Ok(Signed { signatures, signed })
}

/// An ed25519 key held in memory.
pub struct Ed25519Signer {
    signing: SigningKey,
    key: Key,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Ed25519Signer")
            .field("keyid", &self.keyid())
            .finish()
    }
}

/// The insecure plaintext key file: `{"keytype","scheme","private":"<hex seed>","public"}`.
#[derive(Serialize, Deserialize)]
struct PlaintextKeyFile {
    keytype: String,
    scheme: String,
    private: Zeroizing<String>,
    public: String,
}

impl Ed25519Signer {
    /// From a 32-byte secret seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let key = Key::ed25519(signing.verifying_key().as_bytes());
        Self { signing, key }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signer = Self::from_seed(&seed);
        seed.zeroize();
        signer
    }

    /// The secret seed. Handle with care: whoever has it can sign as this key.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Writes the key, secret included, **unencrypted** to a new file (mode 0600 on Unix). For
    /// development keys only; refuses to overwrite an existing file.
    pub fn write_insecure_plaintext(&self, path: &Path) -> Result<(), TufError> {
        let io = |source| TufError::Io {
            path: path.to_owned(),
            source,
        };
        let file = PlaintextKeyFile {
            keytype: Key::ED25519.to_owned(),
            scheme: Key::ED25519.to_owned(),
            private: Zeroizing::new(hex::encode(self.seed().as_slice())),
            public: self.key.keyval.public.clone(),
        };
        let mut json = Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| TufError::KeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?);
        json.push(b'\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads a key written by [`Ed25519Signer::write_insecure_plaintext`], checking that the
    /// public key matches the secret.
    pub fn read_insecure_plaintext(path: &Path) -> Result<Self, TufError> {
        let bad = |reason: &str| TufError::KeyFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| TufError::Io {
            path: path.to_owned(),
            source,
        })?);
        let file: PlaintextKeyFile = serde_json::from_slice(&bytes).map_err(|_| {
            bad("not an insecure plaintext ed25519 key file (JSON with keytype, scheme, private, public)")
        })?;
        if file.keytype != Key::ED25519 || file.scheme != Key::ED25519 {
            return Err(bad("only ed25519 keys are supported"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(file.private.as_str(), seed.as_mut_slice())
            .map_err(|_| bad("`private` is not 64 hex characters"))?;
        let signer = Self::from_seed(&seed);
        if signer.key.keyval.public != file.public.to_ascii_lowercase() {
            return Err(bad("`public` does not match the private key"));
        }
        Ok(signer)
    }
}

impl Signer for Ed25519Signer {
    fn key(&self) -> &Key {
        &self.key
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TufError> {
        use ed25519_dalek::Signer as _;
        Ok(self.signing.sign(msg).to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let signer = Ed25519Signer::from_seed(&seed);
        assert_eq!(
            signer.key().keyval.public,
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = signer.sign(b"").unwrap();
        assert_eq!(
            hex::encode(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let key = signer.key();
        assert!(key.verify(&signer.keyid(), b"", &sig).unwrap());
        assert!(!key.verify(&signer.keyid(), b"x", &sig).unwrap());
        assert!(!key.verify(&signer.keyid(), b"", &sig[..63]).unwrap());
    }

    #[test]
    fn key_id_is_hash_of_canonical_key() {
        let key = Key::ed25519(&[7u8; 32]);
        let canonical = canonical::to_canonical(&key).unwrap();
        assert_eq!(key.key_id(), KeyId::from(Sha256Digest::of(&canonical)));
        assert!(
            String::from_utf8(canonical)
                .unwrap()
                .starts_with(r#"{"keytype":"ed25519","keyval":{"public":"#)
        );
    }

    #[test]
    fn unsupported_keys_are_errors() {
        let mut key = Key::ed25519(&[7u8; 32]);
        key.keytype = "rsa".into();
        assert!(key.verify(&key.key_id(), b"", &[0; 64]).is_err());
        let mut key = Key::ed25519(&[7u8; 32]);
        key.keyval.public = "zz".into();
        assert!(key.verify(&key.key_id(), b"", &[0; 64]).is_err());
    }

    #[test]
    fn sign_metadata_dedupes_signers() {
        let a = Ed25519Signer::generate();
        let b = Ed25519Signer::generate();
        let signed = sign_metadata(serde_json::json!({"x": 1}), &[&a, &b, &a]).unwrap();
        assert_eq!(signed.signatures.len(), 2);
        let mut signed = signed;
        signed.add_signature(&a).unwrap();
        assert_eq!(signed.signatures.len(), 2);
    }

    #[test]
    fn plaintext_key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let signer = Ed25519Signer::generate();
        signer.write_insecure_plaintext(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""keytype": "ed25519""#), "{text}");
        assert!(text.contains(r#""private""#) && text.contains(r#""public""#));
        let back = Ed25519Signer::read_insecure_plaintext(&path).unwrap();
        assert_eq!(back.keyid(), signer.keyid());
        assert_eq!(*back.seed(), *signer.seed());
        // Never overwrites.
        assert!(signer.write_insecure_plaintext(&path).is_err());
        // Debug does not print the secret.
        let debug = format!("{signer:?}");
        assert!(!debug.contains(&hex::encode(signer.seed().as_slice())));

        let other = Ed25519Signer::generate();
        let tampered = text.replace(&signer.key().keyval.public, &other.key().keyval.public);
        std::fs::write(dir.path().join("t.json"), tampered).unwrap();
        let err = Ed25519Signer::read_insecure_plaintext(&dir.path().join("t.json")).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
