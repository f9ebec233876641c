//! Keys, key ids, signers and signature checks.
//!
//! Keys are in securesystemslib's form, `{"keytype","scheme","keyval":{"public"}}` plus any
//! extension fields. A key id is the sha256 of the whole object's canonical JSON, as
//! securesystemslib's `compute_default_keyid`; metadata listing a key under any other id is
//! refused.
//!
//! Verification ([`Key::verify`]) covers the key types and schemes of the TUF specification as
//! securesystemslib signs them ([`Key::SUPPORTED`]):
//!
//! - `ed25519` / `ed25519`: `public` is the 32-byte key in hex;
//! - `ecdsa` / `ecdsa-sha2-nistp256` and `ecdsa-sha2-nistp384` (also under the legacy keytypes
//!   of the same names): `public` is a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) on that curve,
//!   signatures are DER-encoded, over sha256 / sha384;
//! - `rsa` / `rsassa-pss-sha{256,384,512}` and `rsa-pkcs1v15-sha{256,384,512}`: `public` is a PEM
//!   `PUBLIC KEY` of 2048 to 8192 bits; PSS uses MGF1 with the same hash and a salt as long as
//!   the digest, which is what securesystemslib signs with (it also verifies other salt lengths;
//!   those do not verify here).
//!
//! Not supported, for want of an implementation in `ring`: `ecdsa-sha2-nistp521` and the
//! `-sha224` RSA schemes.
//!
//! Only ed25519 keys sign here ([`Ed25519Signer`]); the others are verified only. A PEM key must
//! be exactly what its keytype and scheme say (algorithm and curve in the SubjectPublicKeyInfo),
//! otherwise it is an invalid key rather than a signature that does not verify.

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

    /// The keytype / scheme pairs [`Key::verify`] supports. `ecdsa-sha2-nistp256` and
    /// `ecdsa-sha2-nistp384` as keytypes are securesystemslib's legacy names for `ecdsa`.
    pub const SUPPORTED: &'static [(&'static str, &'static str)] = &[
        ("ed25519", "ed25519"),
        ("ecdsa", "ecdsa-sha2-nistp256"),
        ("ecdsa", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
        ("rsa", "rsassa-pss-sha256"),
        ("rsa", "rsassa-pss-sha384"),
        ("rsa", "rsassa-pss-sha512"),
        ("rsa", "rsa-pkcs1v15-sha256"),
        ("rsa", "rsa-pkcs1v15-sha384"),
        ("rsa", "rsa-pkcs1v15-sha512"),
    ];

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

    /// What makes two keys the same key whatever their key ids and extension fields. Thresholds
    /// count these, not key ids.
    ///
    /// - ed25519: key type, scheme and public key (hex case folded);
    /// - ECDSA: `ecdsa`, the curve and the public point, so the PEM's line wrapping and the legacy
    ///   keytype names (`ecdsa-sha2-nistp256`) do not make one key two;
    /// - RSA: `rsa`, no scheme, and the key (PKCS#1 DER): one RSA key listed once for PSS and
    ///   once for PKCS#1 v1.5 is one key holder.
    ///
    /// A key this crate cannot use keeps its key type, scheme and `public` as written.
    pub fn identity(&self) -> (String, String, String) {
        match self.public_key() {
            Ok(PublicKey::Ecdsa(curve, point)) => {
                ("ecdsa".to_owned(), curve.name.to_owned(), hex::encode(point))
            }
            Ok(PublicKey::Rsa(_, der)) => ("rsa".to_owned(), String::new(), hex::encode(der)),
            Ok(PublicKey::Ed25519(_)) | Err(_) => (
                self.keytype.clone(),
                self.scheme.clone(),
                self.keyval.public.to_ascii_lowercase(),
            ),
        }
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
    /// verify (a malformed signature included); `Err` for a key this crate cannot use: a
    /// keytype / scheme pair not in [`Key::SUPPORTED`], or a public key that is malformed or
    /// not what its keytype and scheme say.
    ///
    /// An ECDSA public point is checked for its form (uncompressed, of the curve's length) but
    /// not for lying on the curve: a point off the curve verifies nothing (`Ok(false)`).
    pub fn verify(&self, keyid: &KeyId, msg: &[u8], sig: &[u8]) -> Result<bool, TufError> {
        let public = self.public_key().map_err(|reason| TufError::InvalidKey {
            keyid: keyid.to_string(),
            reason,
        })?;
        Ok(match public {
            PublicKey::Ed25519(key) => {
                let Ok(sig) = <[u8; 64]>::try_from(sig) else {
                    return Ok(false);
                };
                let sig = ed25519_dalek::Signature::from_bytes(&sig);
                key.verify_strict(msg, &sig).is_ok()
            }
            PublicKey::Ecdsa(curve, point) => ring::signature::UnparsedPublicKey::new(curve.verify, point)
                .verify(msg, sig)
                .is_ok(),
            PublicKey::Rsa(params, der) => ring::signature::UnparsedPublicKey::new(params, der)
                .verify(msg, sig)
                .is_ok(),
        })
    }

    /// The public key, checked against the keytype and scheme; `Err` is the reason it is unusable.
    fn public_key(&self) -> Result<PublicKey, String> {
        let Some(algorithm) = Algorithm::of(&self.keytype, &self.scheme) else {
            let supported: Vec<String> = Self::SUPPORTED.iter().map(|(k, s)| format!("{k}/{s}")).collect();
            return Err(format!(
                "unsupported key type `{}` / scheme `{}` (supported keytype/scheme: {})",
                self.keytype,
                self.scheme,
                supported.join(", ")
            ));
        };
        match algorithm {
            Algorithm::Ed25519 => {
                let mut public = [0u8; 32];
                hex::decode_to_slice(&self.keyval.public, &mut public)
                    .map_err(|_| "public key is not 64 hex characters".to_owned())?;
                let key = VerifyingKey::from_bytes(&public)
                    .map_err(|_| "public key is not a valid ed25519 point".to_owned())?;
                Ok(PublicKey::Ed25519(key))
            }
            Algorithm::Ecdsa(curve) => {
                let der = pem_public_key(&self.keyval.public)?;
                let spki = der::Spki::parse(&der).map_err(malformed_spki)?;
                if spki.algorithm != der::OID_EC_PUBLIC_KEY {
                    return Err(format!(
                        "keytype `{}` needs an elliptic curve key; the PEM public key's algorithm is {}",
                        self.keytype,
                        der::oid_name(spki.algorithm)
                    ));
                }
                match spki.parameters {
                    Some((der::OID, oid)) if oid == curve.oid => {}
                    Some((der::OID, oid)) => {
                        return Err(format!(
                            "the EC public key is on curve {}, scheme `{}` needs {}",
                            der::oid_name(oid),
                            self.scheme,
                            curve.name
                        ));
                    }
                    _ => return Err("the EC public key does not name its curve".to_owned()),
                }
                if spki.public_key.len() != curve.point_len || spki.public_key.first() != Some(&4) {
                    return Err(format!(
                        "the EC public key is not an uncompressed {} point ({} bytes)",
                        curve.name,
                        spki.public_key.len()
                    ));
                }
                Ok(PublicKey::Ecdsa(curve, spki.public_key.to_vec()))
            }
            Algorithm::Rsa(params) => {
                let der = pem_public_key(&self.keyval.public)?;
                let spki = der::Spki::parse(&der).map_err(malformed_spki)?;
                if spki.algorithm != der::OID_RSA_ENCRYPTION {
                    return Err(format!(
                        "keytype `{}` needs an RSA key; the PEM public key's algorithm is {}",
                        self.keytype,
                        der::oid_name(spki.algorithm)
                    ));
                }
                // RFC 3279: NULL; absent is tolerated as OpenSSL does.
                if !matches!(spki.parameters, None | Some((der::NULL, []))) {
                    return Err("the RSA public key has algorithm parameters other than NULL".to_owned());
                }
                check_rsa_public_key(spki.public_key)?;
                Ok(PublicKey::Rsa(params, spki.public_key.to_vec()))
            }
        }
    }
}

/// What a supported keytype / scheme pair verifies with.
#[derive(Clone, Copy)]
enum Algorithm {
    Ed25519,
    Ecdsa(&'static Curve),
    Rsa(&'static ring::signature::RsaParameters),
}

impl Algorithm {
    /// `None` for a pair this crate cannot verify. Keep in step with [`Key::SUPPORTED`].
    fn of(keytype: &str, scheme: &str) -> Option<Self> {
        use ring::signature as sig;
        Some(match (keytype, scheme) {
            ("ed25519", "ed25519") => Self::Ed25519,
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Self::Ecdsa(&P256),
            ("ecdsa" | "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384") => Self::Ecdsa(&P384),
            ("rsa", "rsassa-pss-sha256") => Self::Rsa(&sig::RSA_PSS_2048_8192_SHA256),
            ("rsa", "rsassa-pss-sha384") => Self::Rsa(&sig::RSA_PSS_2048_8192_SHA384),
            ("rsa", "rsassa-pss-sha512") => Self::Rsa(&sig::RSA_PSS_2048_8192_SHA512),
            ("rsa", "rsa-pkcs1v15-sha256") => Self::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
            ("rsa", "rsa-pkcs1v15-sha384") => Self::Rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
            ("rsa", "rsa-pkcs1v15-sha512") => Self::Rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
            _ => return None,
        })
    }
}

/// An ECDSA curve with its hash (the scheme names both).
struct Curve {
    name: &'static str,
    /// The named-curve OID's contents in the SubjectPublicKeyInfo's algorithm parameters.
    oid: &'static [u8],
    /// Length of the uncompressed point, `04 || x || y`.
    point_len: usize,
    verify: &'static ring::signature::EcdsaVerificationAlgorithm,
}

static P256: Curve = Curve {
    name: "P-256",
    oid: der::OID_P256,
    point_len: 65,
    verify: &ring::signature::ECDSA_P256_SHA256_ASN1,
};

static P384: Curve = Curve {
    name: "P-384",
    oid: der::OID_P384,
    point_len: 97,
    verify: &ring::signature::ECDSA_P384_SHA384_ASN1,
};

/// A usable public key.
enum PublicKey {
    Ed25519(VerifyingKey),
    /// The uncompressed point.
    Ecdsa(&'static Curve, Vec<u8>),
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(&'static ring::signature::RsaParameters, Vec<u8>),
}

/// Longest PEM accepted: an 8192-bit RSA key's is about 1.5 KB.
const MAX_PEM_LEN: usize = 16 * 1024;
const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// The DER of a PEM `PUBLIC KEY` block (one block, whitespace around and inside it ignored).
fn pem_public_key(pem: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    if pem.len() > MAX_PEM_LEN {
        return Err(format!(
            "the public key PEM is {} bytes, more than {MAX_PEM_LEN}",
            pem.len()
        ));
    }
    let body = pem
        .trim_ascii()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .ok_or_else(|| format!("the public key is not one PEM block `{PEM_BEGIN}` … `{PEM_END}`"))?;
    let base64: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&base64)
        .map_err(|e| format!("the public key PEM is not valid base64: {e}"))?;
    if der.is_empty() {
        return Err("the public key PEM is empty".to_owned());
    }
    Ok(der)
}

fn malformed_spki(e: der::Error) -> String {
    format!("the PEM public key is not a DER SubjectPublicKeyInfo: {}", e.0)
}

/// Checks a PKCS#1 `RSAPublicKey` (SEQUENCE { INTEGER n, INTEGER e }) against what ring
/// verifies with: a 2048- to 8192-bit odd modulus, an odd exponent from 3 to 2^33 - 1.
fn check_rsa_public_key(key: &[u8]) -> Result<(), String> {
    let malformed = |e: der::Error| format!("the RSA public key is not a DER RSAPublicKey: {}", e.0);
    let (seq, rest) = der::expect(key, der::SEQUENCE, "expected a SEQUENCE").map_err(malformed)?;
    der::end(rest).map_err(malformed)?;
    let (n, rest) = der::expect(seq, der::INTEGER, "expected the modulus").map_err(malformed)?;
    let (e, rest) = der::expect(rest, der::INTEGER, "expected the exponent").map_err(malformed)?;
    der::end(rest).map_err(malformed)?;
    let n = der::positive_integer(n).map_err(malformed)?;
    let e = der::positive_integer(e).map_err(malformed)?;
    if !(256..=1024).contains(&n.len()) {
        let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
        return Err(format!(
            "the RSA modulus is {bits} bits; 2048 to 8192 bits are supported"
        ));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err("the RSA modulus is even".to_owned());
    }
    const E_MAX: u64 = (1 << 33) - 1;
    let exponent = match e.len() {
        ..=5 => e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        _ => u64::MAX,
    };
    if !(3..=E_MAX).contains(&exponent) || exponent % 2 == 0 {
        return Err(format!(
            "the RSA public exponent is not supported (it must be odd, from 3 to 2^33 - 1): {}",
            hex::encode(e)
        ));
    }
    Ok(())
}

/// A strict, bounded DER reader for the little ASN.1 a public key needs: low tag numbers,
/// definite minimal lengths of at most 65535 bytes, everything checked, nothing indexed.
mod der {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;

    /// id-ecPublicKey, 1.2.840.10045.2.1.
    pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 (P-256), 1.2.840.10045.3.1.7.
    pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1 (P-384), 1.3.132.0.34.
    pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// rsaEncryption, 1.2.840.113549.1.1.1.
    pub const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

    /// Names for error messages.
    const KNOWN: &[(&[u8], &str)] = &[
        (OID_EC_PUBLIC_KEY, "id-ecPublicKey"),
        (OID_RSA_ENCRYPTION, "rsaEncryption"),
        (&[0x2b, 0x65, 0x70], "Ed25519"),
        (&[0x2b, 0x65, 0x71], "Ed448"),
        (OID_P256, "P-256"),
        (OID_P384, "P-384"),
        (&[0x2b, 0x81, 0x04, 0x00, 0x23], "P-521"),
        (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "secp256k1"),
    ];

    /// What is wrong, for the key error's reason.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Error(pub &'static str);

    const TRUNCATED: Error = Error("truncated");

    /// Splits the first element off `input`: its tag, its contents and what follows it.
    pub fn any(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
        let [tag, first, rest @ ..] = input else {
            return Err(TRUNCATED);
        };
        if tag & 0x1f == 0x1f {
            return Err(Error("high tag numbers are not supported"));
        }
        let (len, rest) = match (*first, rest) {
            (len @ 0..=0x7f, rest) => (usize::from(len), rest),
            (0x81, [len @ 0x80..=0xff, rest @ ..]) => (usize::from(*len), rest),
            (0x82, [hi @ 1..=0xff, lo, rest @ ..]) => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            (0x81, [_, ..]) | (0x82, [0, _, ..]) => return Err(Error("non-minimal length")),
            (0x81 | 0x82, _) => return Err(TRUNCATED),
            (0x80, _) => return Err(Error("indefinite length")),
            _ => return Err(Error("length over 65535 bytes")),
        };
        let (contents, rest) = rest.split_at_checked(len).ok_or(TRUNCATED)?;
        Ok((*tag, contents, rest))
    }

    /// Splits the first element off `input`, which must have `tag` (`what` is the error).
    pub fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), Error> {
        match any(input)? {
            (found, contents, rest) if found == tag => Ok((contents, rest)),
            _ => Err(Error(what)),
        }
    }

    /// Nothing may follow the last element.
    pub fn end(rest: &[u8]) -> Result<(), Error> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error("trailing bytes"))
        }
    }

    /// The magnitude of an INTEGER that must be positive: big-endian, no leading zero byte.
    pub fn positive_integer(contents: &[u8]) -> Result<&[u8], Error> {
        match contents {
            [] => Err(Error("empty INTEGER")),
            [0] => Err(Error("an INTEGER is zero")),
            [0, next, ..] if next & 0x80 == 0 => Err(Error("non-minimal INTEGER")),
            [0, magnitude @ ..] => Ok(magnitude),
            [first, ..] if first & 0x80 != 0 => Err(Error("a negative INTEGER")),
            _ => Ok(contents),
        }
    }

    /// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT
    /// STRING }`, `AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`.
    #[derive(Debug)]
    pub struct Spki<'a> {
        /// The algorithm OID's contents.
        pub algorithm: &'a [u8],
        /// Tag and contents of the parameters, if any.
        pub parameters: Option<(u8, &'a [u8])>,
        /// The BIT STRING's bits (whole bytes).
        pub public_key: &'a [u8],
    }

    impl<'a> Spki<'a> {
        /// Parses exactly one SubjectPublicKeyInfo, nothing after it.
        pub fn parse(input: &'a [u8]) -> Result<Self, Error> {
            let (spki, rest) = expect(input, SEQUENCE, "expected a SEQUENCE")?;
            end(rest)?;
            let (algorithm_id, rest) = expect(spki, SEQUENCE, "expected an AlgorithmIdentifier")?;
            let (bits, rest) = expect(rest, BIT_STRING, "expected a BIT STRING")?;
            end(rest)?;
            let (algorithm, rest) = expect(algorithm_id, OID, "expected an algorithm OID")?;
            if algorithm.is_empty() {
                return Err(Error("empty OID"));
            }
            let parameters = if rest.is_empty() {
                None
            } else {
                let (tag, contents, rest) = any(rest)?;
                end(rest)?;
                Some((tag, contents))
            };
            let Some((&0, public_key)) = bits.split_first() else {
                return Err(Error("the BIT STRING is empty or not whole bytes"));
            };
            if public_key.is_empty() {
                return Err(Error("the BIT STRING is empty"));
            }
            Ok(Self {
                algorithm,
                parameters,
                public_key,
            })
        }
    }

    /// An OID for an error message: its name if known, and its dotted form.
    pub fn oid_name(oid: &[u8]) -> String {
        let dotted = dotted(oid).unwrap_or_else(|| format!("malformed OID {}", hex::encode(oid)));
        match KNOWN.iter().find(|(known, _)| *known == oid) {
            Some((_, name)) => format!("{name} ({dotted})"),
            None => format!("OID {dotted}"),
        }
    }

    /// `1.2.840…` of an OID's contents; `None` if malformed or absurdly long.
    fn dotted(oid: &[u8]) -> Option<String> {
        if oid.len() > 64 {
            return None;
        }
        let mut arcs: Vec<u64> = Vec::new();
        let mut arc: u64 = 0;
        let mut started = false;
        for &byte in oid {
            if !started && byte == 0x80 {
                return None; // non-minimal
            }
            arc = arc.checked_mul(128)? | u64::from(byte & 0x7f);
            started = byte & 0x80 != 0;
            if !started {
                arcs.push(arc);
                arc = 0;
            }
        }
        if started {
            return None; // ends inside an arc
        }
        let (&first, rest) = arcs.split_first()?;
        let (a, b) = match first {
            0..40 => (0, first),
            40..80 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut out = format!("{a}.{b}");
        for arc in rest {
            out.push('.');
            out.push_str(&arc.to_string());
        }
        Some(out)
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
    fn supported_pairs_all_have_an_algorithm() {
        for (keytype, scheme) in Key::SUPPORTED {
            assert!(Algorithm::of(keytype, scheme).is_some(), "{keytype}/{scheme}");
        }
        assert!(Algorithm::of("ecdsa", "ecdsa-sha2-nistp521").is_none());
        assert!(Algorithm::of("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384").is_none());
        assert!(Algorithm::of("rsa", "rsassa-pss-sha224").is_none());
    }

    #[test]
    fn der_lengths_are_strict_and_bounded() {
        use der::{Error, any};
        assert_eq!(any(&[0x04, 0x02, 1, 2, 9]), Ok((0x04, &[1u8, 2][..], &[9u8][..])));
        assert_eq!(any(&[0x04, 0x00]), Ok((0x04, &[][..], &[][..])));
        let long = [&[0x04u8, 0x81, 0x80][..], &[7; 0x80]].concat();
        assert_eq!(any(&long).map(|(_, c, r)| (c.len(), r.len())), Ok((0x80, 0)));
        let longer = [&[0x04u8, 0x82, 0x01, 0x00][..], &[7; 0x100]].concat();
        assert_eq!(any(&longer).map(|(_, c, _)| c.len()), Ok(0x100));
        for (input, error) in [
            (&[][..], "truncated"),
            (&[0x04], "truncated"),
            (&[0x04, 0x03, 1, 2], "truncated"),
            (&[0x04, 0x81], "truncated"),
            (&[0x04, 0x82, 0x01], "truncated"),
            (&[0x04, 0x82, 0xff, 0xff, 0], "truncated"),
            (&[0x04, 0x81, 0x7f], "non-minimal length"),
            (&[0x04, 0x82, 0x00, 0xff], "non-minimal length"),
            (&[0x04, 0x80, 0, 0], "indefinite length"),
            (&[0x04, 0x83, 0x01, 0x00, 0x00], "length over 65535 bytes"),
            (
                &[0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "length over 65535 bytes",
            ),
            (&[0x1f, 0x01, 0x00], "high tag numbers are not supported"),
        ] {
            assert_eq!(any(input), Err(Error(error)), "{input:02x?}");
        }
    }

    #[test]
    fn der_positive_integers() {
        use der::positive_integer as p;
        assert_eq!(p(&[0x01]), Ok(&[0x01u8][..]));
        assert_eq!(p(&[0x00, 0x80]), Ok(&[0x80u8][..]));
        assert_eq!(p(&[0x7f, 0x00]), Ok(&[0x7fu8, 0x00][..]));
        for bad in [&[][..], &[0x00], &[0x00, 0x7f], &[0x80], &[0xff, 0x01]] {
            assert!(p(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn oid_names() {
        assert_eq!(der::oid_name(der::OID_P256), "P-256 (1.2.840.10045.3.1.7)");
        assert_eq!(
            der::oid_name(der::OID_RSA_ENCRYPTION),
            "rsaEncryption (1.2.840.113549.1.1.1)"
        );
        assert_eq!(der::oid_name(&[0x2b, 0x65, 0x6e]), "OID 1.3.101.110");
        assert_eq!(der::oid_name(&[0x88, 0x37, 0x03]), "OID 2.999.3");
        for bad in [
            &[][..],
            &[0x2b, 0x81],
            &[0x2b, 0x80, 0x01],
            &[0xff; 12],
            &[0x01; 65],
        ] {
            assert!(der::oid_name(bad).starts_with("OID malformed"), "{bad:02x?}");
        }
    }

    #[test]
    fn spki_structure_is_checked() {
        // SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID P-256 }, BIT STRING 00 04 .. }
        let point = [&[0x04u8][..], &[0x11; 64]].concat();
        let spki = |alg: &[u8], bits: &[u8], trailer: &[u8]| -> Vec<u8> {
            let inner = [tlv(der::SEQUENCE, alg), tlv(der::BIT_STRING, bits)].concat();
            [tlv(der::SEQUENCE, &inner), trailer.to_vec()].concat()
        };
        let alg = [
            &[0x06, 0x07][..],
            der::OID_EC_PUBLIC_KEY,
            &[0x06, 0x08],
            der::OID_P256,
        ]
        .concat();
        let bits = [&[0x00u8][..], &point].concat();
        let good = spki(&alg, &bits, &[]);
        let parsed = der::Spki::parse(&good).unwrap();
        assert_eq!(parsed.algorithm, der::OID_EC_PUBLIC_KEY);
        assert_eq!(parsed.parameters, Some((der::OID, der::OID_P256)));
        assert_eq!(parsed.public_key, &point[..]);

        assert!(der::Spki::parse(&spki(&alg, &bits, &[0x00])).is_err());
        let unused_bits = [&[0x01u8][..], &point].concat();
        assert!(der::Spki::parse(&spki(&alg, &unused_bits, &[])).is_err());
        assert!(der::Spki::parse(&spki(&alg, &[0x00], &[])).is_err());
        assert!(der::Spki::parse(&spki(&alg, &[], &[])).is_err());
        let two_params = [&alg[..], &[0x05, 0x00]].concat();
        assert!(der::Spki::parse(&spki(&two_params, &bits, &[])).is_err());
        let no_oid = [&[0x05u8, 0x00][..], &[0x06, 0x08], der::OID_P256].concat();
        assert!(der::Spki::parse(&spki(&no_oid, &bits, &[])).is_err());
        for len in 0..good.len() {
            assert!(der::Spki::parse(&good[..len]).is_err(), "{len}");
        }
    }

    /// A DER element with a minimal length.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match u8::try_from(contents.len()) {
            Ok(len @ 0..=0x7f) => out.push(len),
            Ok(len) => out.extend_from_slice(&[0x81, len]),
            Err(_) => {
                out.push(0x82);
                out.extend_from_slice(&u16::try_from(contents.len()).unwrap().to_be_bytes());
            }
        }
        out.extend_from_slice(contents);
        out
    }

    #[test]
    fn rsa_public_key_limits() {
        let key = |n: &[u8], e: &[u8]| {
            tlv(
                der::SEQUENCE,
                &[tlv(der::INTEGER, n), tlv(der::INTEGER, e)].concat(),
            )
        };
        let n = |bytes: usize| {
            let mut n = vec![0x55u8; bytes];
            n[0] = 0x40;
            n
        };
        let e3 = [0x03u8];
        assert_eq!(check_rsa_public_key(&key(&n(256), &e3)), Ok(()));
        assert_eq!(check_rsa_public_key(&key(&n(1024), &[0x01, 0x00, 0x01])), Ok(()));
        assert!(
            check_rsa_public_key(&key(&n(1025), &e3))
                .unwrap_err()
                .contains("8199 bits")
        );
        let mut even = n(256);
        even[255] = 0x54;
        assert!(
            check_rsa_public_key(&key(&even, &e3))
                .unwrap_err()
                .contains("even")
        );
        for e in [
            &[0x01u8][..],
            &[0x04],
            &[0x02, 0x00, 0x00, 0x00, 0x01],
            &[0x01, 0, 0, 0, 0, 1],
        ] {
            assert!(
                check_rsa_public_key(&key(&n(256), e))
                    .unwrap_err()
                    .contains("exponent"),
                "{e:02x?}"
            );
        }
        assert_eq!(
            check_rsa_public_key(&key(&n(256), &[0x01, 0xff, 0xff, 0xff, 0xff])),
            Ok(())
        );
        let mut trailing = key(&n(256), &e3);
        trailing.push(0);
        assert!(check_rsa_public_key(&trailing).is_err());
    }

    #[test]
    fn pem_armour() {
        let der = [0x30u8, 0x00];
        assert_eq!(
            pem_public_key("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"),
            Ok(der.to_vec())
        );
        assert_eq!(
            pem_public_key("  -----BEGIN PUBLIC KEY-----\r\nM A\tA=\r\n-----END PUBLIC KEY-----"),
            Ok(der.to_vec())
        );
        for bad in [
            "",
            "MAA=",
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMAA\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----x",
            "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----",
        ] {
            assert!(pem_public_key(bad).is_err(), "{bad:?}");
        }
        let huge = format!("{PEM_BEGIN}{}{PEM_END}", "A".repeat(MAX_PEM_LEN));
        assert!(pem_public_key(&huge).unwrap_err().contains("more than"));
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
