//! Key files: the passphrase-encrypted private key of one key holder, and the public key file
//! that travels to the ceremony.
//!
//! Private key file (`FILE`, mode 0600), JSON:
//!
//! ```json
//! {
//!   "format": "tufa-ceremony-key/1",
//!   "holder": "alice",
//!   "keyid": "<sha256 of the canonical public key, 64 hex>",
//!   "key": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "<64 hex>"}},
//!   "kdf": {"algorithm": "argon2id", "version": 19, "memory_kib": 65536, "iterations": 3,
//!           "parallelism": 4, "salt": "<32 hex>"},
//!   "cipher": {"algorithm": "xchacha20-poly1305", "nonce": "<48 hex>"},
//!   "ciphertext": "<96 hex: the 32-byte ed25519 seed, encrypted, plus the 16-byte tag>"
//! }
//! ```
//!
//! The AEAD key is argon2id(passphrase, salt) with the parameters listed; the associated data
//! is the canonical JSON of every other field (with `ciphertext` empty), so changing the
//! holder, the public key or a KDF parameter makes decryption fail just like a wrong
//! passphrase. After decryption the seed's public key must equal `key`.
//!
//! Public key file (`FILE.pub.json`):
//! `{"format": "tufa-ceremony-public-key/1", "holder", "keyid", "key"}`. Also accepted wherever
//! a public key file is: `{"keyid", "key"}` as `tufa online-key show --public-out` writes it,
//! and a bare TUF key object (`{"keytype", "scheme", "keyval": {"public"}}`).

use std::fmt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tufa_tuf::{Ed25519Signer, Key, KeyId, Signer as _, canonical};
use zeroize::Zeroizing;

use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::passphrase::Passphrase;
use crate::types::HolderName;

pub const KEY_FILE_FORMAT: &str = "tufa-ceremony-key/1";
pub const PUBLIC_KEY_FORMAT: &str = "tufa-ceremony-public-key/1";
const KDF_ALGORITHM: &str = "argon2id";
const CIPHER_ALGORITHM: &str = "xchacha20-poly1305";
/// Key files are a few hundred bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;
/// Refuse KDF parameters that would exhaust the machine (a corrupted or hostile file).
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 64;

/// argon2id cost parameters, stored in the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cipher {
    algorithm: String,
    nonce: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFileJson {
    format: String,
    holder: String,
    keyid: KeyId,
    key: Key,
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

impl KeyFileJson {
    /// Associated data: the canonical JSON of every field but the ciphertext.
    fn aad(&self) -> Result<Vec<u8>> {
        let mut header = self.clone();
        header.ciphertext = String::new();
        Ok(canonical::to_canonical(&header)?)
    }
}

fn os_random<const N: usize>(path: &Path) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| CeremonyError::KeyFile {
            path: path.to_owned(),
            reason: format!("the operating system's random source failed: {e}"),
        })?;
    Ok(out)
}

fn derive_key(
    path: &Path,
    passphrase: &Passphrase,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>> {
    let bad = |e: argon2::Error| CeremonyError::KeyFile {
        path: path.to_owned(),
        reason: format!("argon2id parameters: {e}"),
    };
    let p = Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32)).map_err(bad)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut_slice())
        .map_err(bad)?;
    Ok(out)
}

/// The public key file written next to a private key file: `FILE.pub.json`.
pub fn public_key_path(key_path: &Path) -> PathBuf {
    let mut s = key_path.as_os_str().to_owned();
    s.push(".pub.json");
    PathBuf::from(s)
}

/// What `keygen` produced.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub key_path: PathBuf,
    pub public_path: PathBuf,
    pub public: PublicKeyFile,
}

impl fmt::Display for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wrote encrypted key {} (mode 0600)", self.key_path.display())?;
        writeln!(f, "wrote public key    {}", self.public_path.display())?;
        writeln!(f, "holder: {}", self.public.holder)?;
        writeln!(f, "keyid:  {}", self.public.keyid)?;
        write!(f, "public: ed25519 {}", self.public.key.keyval.public)
    }
}

/// Generates an ed25519 key from the operating system's random source and writes it to
/// `out` encrypted under `passphrase` (mode 0600), plus `out.pub.json`. Refuses to overwrite.
pub fn generate_key_file(
    out: &Path,
    holder: &HolderName,
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<GeneratedKey> {
    let holder = holder.as_str();
    let public_path = public_key_path(out);
    for p in [out, public_path.as_path()] {
        if p.exists() {
            return Err(CeremonyError::AlreadyExists { path: p.to_owned() });
        }
    }
    let seed = Zeroizing::new(os_random::<32>(out)?);
    let signer = Ed25519Signer::from_seed(&seed);
    let salt = os_random::<16>(out)?;
    let nonce = os_random::<24>(out)?;
    let mut file = KeyFileJson {
        format: KEY_FILE_FORMAT.to_owned(),
        holder: holder.to_owned(),
        keyid: signer.keyid(),
        key: signer.key().clone(),
        kdf: Kdf {
            algorithm: KDF_ALGORITHM.to_owned(),
            version: 0x13,
            params,
            salt: hex::encode(salt),
        },
        cipher: Cipher {
            algorithm: CIPHER_ALGORITHM.to_owned(),
            nonce: hex::encode(nonce),
        },
        ciphertext: String::new(),
    };
    let aad = file.aad()?;
    let aead_key = derive_key(out, passphrase, &salt, params)?;
    let crypto = |reason: &str| CeremonyError::KeyFile {
        path: out.to_owned(),
        reason: reason.to_owned(),
    };
    let cipher =
        XChaCha20Poly1305::new_from_slice(aead_key.as_slice()).map_err(|_| crypto("AEAD key length"))?;
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_slice(),
                aad: &aad,
            },
        )
        .map_err(|_| crypto("encryption failed"))?;
    file.ciphertext = hex::encode(ciphertext);
    let mut json = serde_json::to_vec_pretty(&file).map_err(|e| CeremonyError::KeyFile {
        path: out.to_owned(),
        reason: e.to_string(),
    })?;
    json.push(b'\n');
    fsutil::write_new(out, &json, true)?;

    let public = PublicKeyFile {
        holder: holder.to_owned(),
        keyid: signer.keyid(),
        key: signer.key().clone(),
        origin: Some(public_path.clone()),
    };
    if let Err(e) = public.write_new(&public_path) {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(GeneratedKey {
        key_path: out.to_owned(),
        public_path,
        public,
    })
}

/// An encrypted private key file, read but not yet decrypted: its public part is usable
/// without the passphrase (to check that the key may sign before asking for it).
#[derive(Debug, Clone)]
pub struct EncryptedKey {
    path: PathBuf,
    file: KeyFileJson,
}

impl EncryptedKey {
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |reason: String| CeremonyError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = fsutil::read_limited(path, MAX_KEY_FILE)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a tufa-ceremony key file: {e}")))?;
        match value.get("format").and_then(Value::as_str) {
            Some(KEY_FILE_FORMAT) => {}
            Some(PUBLIC_KEY_FORMAT) => {
                return Err(bad(
                    "this is a public key file; signing needs the encrypted private key file".into(),
                ));
            }
            Some(other) => return Err(bad(format!("unsupported format `{other}`"))),
            None if value.get("private").is_some() => {
                return Err(bad(
                    "this is an unencrypted (insecure) key file, not a ceremony key; offline keys must come from `tufa-ceremony keygen`"
                        .into(),
                ));
            }
            None => return Err(bad("not a tufa-ceremony key file (no `format`)".into())),
        }
        let file: KeyFileJson =
            serde_json::from_value(value).map_err(|e| bad(format!("malformed key file: {e}")))?;
        if file.kdf.algorithm != KDF_ALGORITHM || file.kdf.version != 0x13 {
            return Err(bad(format!(
                "unsupported KDF `{}` version {}",
                file.kdf.algorithm, file.kdf.version
            )));
        }
        if file.cipher.algorithm != CIPHER_ALGORITHM {
            return Err(bad(format!("unsupported cipher `{}`", file.cipher.algorithm)));
        }
        let p = file.kdf.params;
        if p.memory_kib > MAX_MEMORY_KIB || p.iterations > MAX_ITERATIONS || p.parallelism > MAX_PARALLELISM {
            return Err(bad(format!(
                "KDF parameters out of range (memory {} KiB, {} iterations, {} lanes)",
                p.memory_kib, p.iterations, p.parallelism
            )));
        }
        check_public_key(&file.key).map_err(bad)?;
        if file.key.key_id() != file.keyid {
            return Err(bad("`keyid` does not match `key`".into()));
        }
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn keyid(&self) -> KeyId {
        self.file.keyid
    }

    pub fn key(&self) -> &Key {
        &self.file.key
    }

    pub fn holder(&self) -> &str {
        &self.file.holder
    }

    pub fn public(&self) -> PublicKeyFile {
        PublicKeyFile {
            holder: self.file.holder.clone(),
            keyid: self.file.keyid,
            key: self.file.key.clone(),
            origin: None,
        }
    }

    /// Decrypts the key. A wrong passphrase and a tampered file give the same error.
    pub fn decrypt(&self, passphrase: &Passphrase) -> Result<Ed25519Signer> {
        let wrong = || CeremonyError::WrongPassphrase {
            path: self.path.clone(),
            hint: None,
        };
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        hex::decode_to_slice(&self.file.kdf.salt, &mut salt).map_err(|_| wrong())?;
        hex::decode_to_slice(&self.file.cipher.nonce, &mut nonce).map_err(|_| wrong())?;
        let ciphertext = hex::decode(&self.file.ciphertext).map_err(|_| wrong())?;
        let aad = self.file.aad()?;
        let aead_key = derive_key(&self.path, passphrase, &salt, self.file.kdf.params)?;
        let cipher = XChaCha20Poly1305::new_from_slice(aead_key.as_slice()).map_err(|_| wrong())?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| wrong())?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(plain.as_slice().try_into().map_err(|_| wrong())?);
        let signer = Ed25519Signer::from_seed(&seed);
        if signer.key() != &self.file.key {
            return Err(wrong());
        }
        Ok(signer)
    }
}

/// A public key with its key id and the name of whoever holds the private half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyFile {
    pub holder: String,
    pub keyid: KeyId,
    pub key: Key,
    /// The file it was read from, for messages (`None` when built in memory).
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

#[derive(Serialize)]
struct PublicKeyJson<'a> {
    format: &'a str,
    holder: &'a str,
    keyid: &'a KeyId,
    key: &'a Key,
}

fn check_public_key(key: &Key) -> Result<(), String> {
    if key.keytype != Key::ED25519 || key.scheme != Key::ED25519 {
        return Err(format!(
            "key type `{}` / scheme `{}`: only ed25519 is supported",
            key.keytype, key.scheme
        ));
    }
    let public = &key.keyval.public;
    if public.len() != 64 || !public.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the public key is not 64 lowercase hex characters".into());
    }
    Ok(())
}

/// The error for a private key passed where a public key file belongs, saying which file to
/// bring instead; `None` when `value` holds no private key.
fn private_key_given(path: &Path, value: &Value) -> Option<CeremonyError> {
    let shown = path.display();
    let ceremony_key = value.get("format").and_then(Value::as_str) == Some(KEY_FILE_FORMAT)
        || value.get("ciphertext").is_some();
    if ceremony_key {
        let public = public_key_path(path);
        let fix = if public.is_file() {
            format!("pass its public key file `{}` instead", public.display())
        } else {
            format!(
                "write its public key file with `tufa-ceremony export-public {shown} --out {}` and pass that instead",
                public.display()
            )
        };
        return Some(CeremonyError::NotPublic(format!(
            "`{shown}` is an encrypted tufa-ceremony key file (a private key); {fix}"
        )));
    }
    if value.get("private").is_some() {
        return Some(CeremonyError::NotPublic(format!(
            "`{shown}` is the mirror's private online key (tufa's plaintext key file); the ceremony needs only its public part: on the mirror host run `tufa --config /path/tufa.toml online-key show --public-out online.pub.json` and bring that file"
        )));
    }
    None
}

impl PublicKeyFile {
    pub fn new(holder: &str, key: Key) -> Self {
        Self {
            holder: holder.to_owned(),
            keyid: key.key_id(),
            key,
            origin: None,
        }
    }

    /// `holder `alice`, from `keys/alice.pub.json`` (the file only when known).
    pub fn describe(&self) -> String {
        match &self.origin {
            Some(p) => format!("holder `{}`, from `{}`", self.holder, p.display()),
            None => format!("holder `{}`", self.holder),
        }
    }

    /// Reads a public key file, or a bare TUF key object (whose holder is then the file stem).
    /// Refuses files holding a private key.
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |reason: String| CeremonyError::PublicKeyFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = fsutil::read_limited(path, MAX_KEY_FILE)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(e) = private_key_given(path, &value) {
            return Err(e);
        }
        let file = match value.get("format").and_then(Value::as_str) {
            Some(PUBLIC_KEY_FORMAT) => {
                #[derive(Deserialize)]
                struct Json {
                    holder: String,
                    keyid: KeyId,
                    key: Key,
                }
                let j: Json = serde_json::from_value(value).map_err(|e| bad(format!("malformed: {e}")))?;
                if j.key.key_id() != j.keyid {
                    return Err(bad("`keyid` does not match `key`".into()));
                }
                Self {
                    holder: j.holder,
                    keyid: j.keyid,
                    key: j.key,
                    origin: None,
                }
            }
            Some(other) => return Err(bad(format!("unsupported format `{other}`"))),
            None => {
                let stem = path
                    .file_name()
                    .map(|n| {
                        n.to_string_lossy()
                            .trim_end_matches(".json")
                            .trim_end_matches(".pub")
                            .to_owned()
                    })
                    .unwrap_or_default();
                let holder = value
                    .get("holder")
                    .and_then(Value::as_str)
                    .map_or(stem, str::to_owned);
                if let Some(key) = value.get("key") {
                    // `tufa online-key show --public-out`: {"keyid", "key"}.
                    let key: Key = serde_json::from_value(key.clone())
                        .map_err(|e| bad(format!("malformed `key`: {e}")))?;
                    let file = Self::new(&holder, key);
                    if let Some(listed) = value.get("keyid")
                        && listed.as_str() != Some(file.keyid.to_hex().as_str())
                    {
                        return Err(bad("`keyid` does not match `key`".into()));
                    }
                    file
                } else {
                    let key: Key = serde_json::from_value(value).map_err(|_| {
                        bad("neither a tufa-ceremony public key file nor a TUF key object".into())
                    })?;
                    Self::new(&holder, key)
                }
            }
        };
        check_public_key(&file.key).map_err(bad)?;
        file.holder.parse::<HolderName>().map_err(bad)?;
        Ok(Self {
            origin: Some(path.to_owned()),
            ..file
        })
    }

    /// Writes the file; refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(&PublicKeyJson {
            format: PUBLIC_KEY_FORMAT,
            holder: &self.holder,
            keyid: &self.keyid,
            key: &self.key,
        })
        .map_err(|e| CeremonyError::PublicKeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        fsutil::write_new(path, &json, false)
    }
}

/// `export-public`: the public key file of a ceremony key (no passphrase needed) or of the
/// mirror's online key (tufa's plaintext key file, read on the mirror host). Only the public
/// half is written.
pub fn export_public(key_path: &Path, out: &Path, holder: Option<&HolderName>) -> Result<PublicKeyFile> {
    let public = match EncryptedKey::read(key_path) {
        Ok(k) => {
            let mut p = k.public();
            if let Some(h) = holder {
                p.holder = h.as_str().to_owned();
            }
            p
        }
        Err(CeremonyError::KeyFile { .. }) => {
            let signer =
                Ed25519Signer::read_insecure_plaintext(key_path).map_err(|e| CeremonyError::KeyFile {
                    path: key_path.to_owned(),
                    reason: format!("neither a tufa-ceremony key file nor tufa's online key file ({e})"),
                })?;
            PublicKeyFile::new(holder.map_or("online", HolderName::as_str), signer.key().clone())
        }
        Err(e) => return Err(e),
    };
    public.write_new(out)?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the unit tests exercise the format, not the cost.
    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn round_trip_wrong_passphrase_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let pass = Passphrase::new("correct horse battery");
        let alice: HolderName = "alice".parse().unwrap();
        let g = generate_key_file(&path, &alice, &pass, FAST).unwrap();
        assert_eq!(g.public_path, dir.path().join("k.key.pub.json"));
        let key = EncryptedKey::read(&path).unwrap();
        assert_eq!(key.keyid(), g.public.keyid);
        let signer = key.decrypt(&pass).unwrap();
        assert_eq!(signer.keyid(), g.public.keyid);
        assert!(matches!(
            key.decrypt(&Passphrase::new("correct horse battery!")),
            Err(CeremonyError::WrongPassphrase { .. })
        ));
        // Every authenticated field is bound to the ciphertext.
        let text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in [
            ("\"holder\": \"alice\"", "\"holder\": \"mallory\""),
            ("\"iterations\": 1", "\"iterations\": 2"),
        ] {
            let tampered = dir.path().join("t.key");
            let _ = std::fs::remove_file(&tampered);
            std::fs::write(&tampered, text.replace(from, to)).unwrap();
            let k = EncryptedKey::read(&tampered).unwrap();
            assert!(
                matches!(k.decrypt(&pass), Err(CeremonyError::WrongPassphrase { .. })),
                "{to}"
            );
        }
        // Another public key in the header: refused on reading (key id mismatch) or decrypting.
        let other = Ed25519Signer::generate();
        let swapped = text.replace(&g.public.key.keyval.public, &other.key().keyval.public);
        std::fs::write(dir.path().join("s.key"), swapped).unwrap();
        assert!(EncryptedKey::read(&dir.path().join("s.key")).is_err());
        // Never overwrites.
        assert!(matches!(
            generate_key_file(&path, &alice, &pass, FAST),
            Err(CeremonyError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn public_key_formats() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Ed25519Signer::generate();
        let key = signer.key().clone();
        let ours = dir.path().join("a.pub.json");
        PublicKeyFile::new("alice", key.clone()).write_new(&ours).unwrap();
        assert_eq!(PublicKeyFile::read(&ours).unwrap().holder, "alice");

        // As `tufa online-key show --public-out` writes it.
        let tufa = dir.path().join("online.pub.json");
        let json = serde_json::json!({"keyid": signer.keyid().to_hex(), "key": key});
        std::fs::write(&tufa, json.to_string()).unwrap();
        let read = PublicKeyFile::read(&tufa).unwrap();
        assert_eq!((read.holder.as_str(), read.keyid), ("online", signer.keyid()));
        let bad = serde_json::json!({"keyid": Ed25519Signer::generate().keyid().to_hex(), "key": key});
        std::fs::write(&tufa, bad.to_string()).unwrap();
        assert!(PublicKeyFile::read(&tufa).is_err());

        // A bare TUF key.
        let bare = dir.path().join("bob.json");
        std::fs::write(&bare, serde_json::to_string(&key).unwrap()).unwrap();
        assert_eq!(PublicKeyFile::read(&bare).unwrap().holder, "bob");

        // Private keys are refused.
        let private = dir.path().join("online.json");
        signer.write_insecure_plaintext(&private).unwrap();
        let e = PublicKeyFile::read(&private).unwrap_err().to_string();
        assert!(e.contains("is the mirror's private online key"), "{e}");
        assert!(!e.contains("online.json.pub.json"), "{e}");
        // …but their public half can be exported.
        let out = dir.path().join("exported.pub.json");
        let p = export_public(&private, &out, None).unwrap();
        assert_eq!((p.holder.as_str(), p.keyid), ("online", signer.keyid()));
        assert!(!std::fs::read_to_string(&out).unwrap().contains("private"));
    }
}
