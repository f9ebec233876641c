//! ECDSA and RSA keys as securesystemslib writes them and signs with them, and root metadata
//! signed with an ECDSA key. The fixtures (`fixtures/key_types*.json`) were made once by
//! `fixtures/gen_key_fixtures.py`; see `fixtures/README.md`.

use base64::Engine as _;
use serde::Deserialize;
use tufa_tuf::{Key, KeyId, TufError, verify_trusted_root};

use crate::python;

#[derive(Deserialize)]
struct Fixtures {
    message_hex: String,
    valid: Vec<Valid>,
    invalid_keys: Vec<Invalid>,
}

/// A key, its id as securesystemslib computes it, and signatures of the fixture message.
#[derive(Deserialize)]
struct Valid {
    name: String,
    keyid: KeyId,
    key: Key,
    sig: String,
    sig_by_other_key: String,
    bad_sigs: Vec<BadSig>,
}

#[derive(Deserialize)]
struct BadSig {
    why: String,
    sig: String,
}

#[derive(Deserialize)]
struct Invalid {
    name: String,
    keyid: KeyId,
    key: Key,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(include_str!("fixtures/key_types.json")).unwrap()
}

fn message(f: &Fixtures) -> Vec<u8> {
    hex::decode(&f.message_hex).unwrap()
}

fn valid<'a>(f: &'a Fixtures, name: &str) -> &'a Valid {
    f.valid.iter().find(|v| v.name == name).unwrap()
}

/// Every scheme securesystemslib signs with that tufa verifies is in the fixtures.
#[test]
fn fixtures_cover_every_supported_scheme() {
    let f = fixtures();
    for (keytype, scheme) in Key::SUPPORTED {
        assert!(
            f.valid
                .iter()
                .any(|v| v.key.keytype == *keytype && v.key.scheme == *scheme),
            "no fixture for {keytype}/{scheme}"
        );
    }
}

#[test]
fn securesystemslib_signatures_verify_and_key_ids_match() {
    let f = fixtures();
    let msg = message(&f);
    for v in &f.valid {
        assert_eq!(v.key.key_id(), v.keyid, "{}: key id", v.name);
        v.key.check_key_id(&v.keyid).unwrap();
        let sig = hex::decode(&v.sig).unwrap();
        assert!(v.key.verify(&v.keyid, &msg, &sig).unwrap(), "{}", v.name);
        // The key serialises back to what securesystemslib wrote.
        let back: Key = serde_json::from_value(serde_json::to_value(&v.key).unwrap()).unwrap();
        assert_eq!(back.key_id(), v.keyid, "{}", v.name);
    }
}

/// Fresh keys from the test venv's securesystemslib, the way tuf-conformance makes them
/// (`CryptoSigner.generate_ecdsa()` and friends), not only the committed fixtures.
const FRESH_KEYS_SCRIPT: &str = r#"
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import CryptoSigner
msg = sys.argv[1].encode()
signers = [
    CryptoSigner.generate_ecdsa(),
    CryptoSigner(ec.generate_private_key(ec.SECP384R1())),
    CryptoSigner.generate_rsa(),
    CryptoSigner.generate_rsa(scheme="rsa-pkcs1v15-sha256", size=2048),
    CryptoSigner.generate_ed25519(),
]
out = []
for s in signers:
    sig = s.sign(msg)
    s.public_key.verify_signature(sig, msg)
    out.append({"keyid": s.public_key.keyid, "key": s.public_key.to_dict(), "sig": sig.signature})
print(json.dumps(out))
"#;

#[derive(Deserialize)]
struct Fresh {
    keyid: KeyId,
    key: Key,
    sig: String,
}

#[test]
fn fresh_securesystemslib_keys_verify() {
    let python = python::require();
    let msg = "{\"signed\":{\"n\":\"\u{e9}\\n\"}}";
    let out = python::run_ok(&python, FRESH_KEYS_SCRIPT, &[msg]);
    let fresh: Vec<Fresh> = serde_json::from_str(&out).unwrap();
    let schemes: Vec<&str> = fresh.iter().map(|f| f.key.scheme.as_str()).collect();
    assert_eq!(
        schemes,
        [
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "rsassa-pss-sha256",
            "rsa-pkcs1v15-sha256",
            "ed25519"
        ]
    );
    for f in &fresh {
        assert_eq!(f.key.key_id(), f.keyid, "{}", f.key.scheme);
        let sig = hex::decode(&f.sig).unwrap();
        assert!(
            f.key.verify(&f.keyid, msg.as_bytes(), &sig).unwrap(),
            "{}",
            f.key.scheme
        );
        assert!(
            !f.key.verify(&f.keyid, b"other", &sig).unwrap(),
            "{}",
            f.key.scheme
        );
    }
}

#[test]
fn tampered_message_does_not_verify() {
    let f = fixtures();
    let msg = message(&f);
    for v in &f.valid {
        let sig = hex::decode(&v.sig).unwrap();
        let mut flipped = msg.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut longer = msg.clone();
        longer.push(b' ');
        for tampered in [&flipped[..], &longer[..], &msg[1..], b""] {
            assert!(!v.key.verify(&v.keyid, tampered, &sig).unwrap(), "{}", v.name);
        }
    }
}

#[test]
fn signature_by_another_key_does_not_verify() {
    let f = fixtures();
    let msg = message(&f);
    for v in &f.valid {
        let sig = hex::decode(&v.sig_by_other_key).unwrap();
        assert!(!v.key.verify(&v.keyid, &msg, &sig).unwrap(), "{}", v.name);
    }
}

#[test]
fn malformed_signatures_do_not_verify() {
    let f = fixtures();
    let msg = message(&f);
    for v in &f.valid {
        let sig = hex::decode(&v.sig).unwrap();
        let mut flipped = sig.clone();
        flipped[sig.len() / 2] ^= 0x10;
        let mut garbage: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0],
            vec![0x30, 0x00],
            vec![0xff; sig.len()],
            vec![0; sig.len()],
            vec![0x30; 4096],
            flipped,
        ];
        garbage.extend(v.bad_sigs.iter().map(|b| hex::decode(&b.sig).unwrap()));
        for (i, bad) in garbage.iter().enumerate() {
            assert!(
                !v.key.verify(&v.keyid, &msg, bad).unwrap(),
                "{}: garbage signature #{i} verified",
                v.name
            );
        }
        for b in &v.bad_sigs {
            let bad = hex::decode(&b.sig).unwrap();
            assert!(
                !v.key.verify(&v.keyid, &msg, &bad).unwrap(),
                "{}: {}",
                v.name,
                b.why
            );
        }
    }
}

/// What each unusable fixture key's error must say.
const INVALID_REASONS: &[(&str, &str)] = &[
    ("pem-not-base64", "not valid base64"),
    ("pem-without-armour", "not one PEM block"),
    ("pem-wrong-label", "not one PEM block"),
    ("pem-two-blocks", "not valid base64"),
    ("der-truncated", "not a DER SubjectPublicKeyInfo: truncated"),
    (
        "der-trailing-bytes",
        "not a DER SubjectPublicKeyInfo: trailing bytes",
    ),
    ("rsa-der-truncated", "not a DER SubjectPublicKeyInfo: truncated"),
    (
        "wrong-curve-p384-as-nistp256",
        "on curve P-384 (1.3.132.0.34), scheme `ecdsa-sha2-nistp256` needs P-256",
    ),
    (
        "wrong-curve-p256-as-nistp384",
        "on curve P-256 (1.2.840.10045.3.1.7), scheme `ecdsa-sha2-nistp384` needs P-384",
    ),
    ("wrong-curve-secp256k1", "on curve secp256k1 (1.3.132.0.10)"),
    (
        "rsa-pem-as-ecdsa",
        "keytype `ecdsa` needs an elliptic curve key; the PEM public key's algorithm is rsaEncryption (1.2.840.113549.1.1.1)",
    ),
    (
        "ecdsa-pem-as-rsa",
        "keytype `rsa` needs an RSA key; the PEM public key's algorithm is id-ecPublicKey (1.2.840.10045.2.1)",
    ),
    ("ed25519-pem-as-ecdsa", "algorithm is Ed25519 (1.3.101.112)"),
    (
        "rsa-1024-bits",
        "the RSA modulus is 1024 bits; 2048 to 8192 bits are supported",
    ),
    (
        "unsupported-scheme-rsassa-pss-sha224",
        "unsupported key type `rsa` / scheme `rsassa-pss-sha224`",
    ),
    (
        "unsupported-scheme-nistp521",
        "unsupported key type `ecdsa` / scheme `ecdsa-sha2-nistp521`",
    ),
    (
        "mismatched-legacy-keytype",
        "unsupported key type `ecdsa-sha2-nistp256` / scheme `ecdsa-sha2-nistp384`",
    ),
    ("ed25519-with-pem", "not 64 hex characters"),
];

fn invalid_key_reason(result: Result<bool, TufError>, keyid: &KeyId) -> String {
    match result {
        Err(TufError::InvalidKey { keyid: id, reason }) => {
            assert_eq!(id, keyid.to_string());
            reason
        }
        other => panic!("expected an InvalidKey error, got {other:?}"),
    }
}

#[test]
fn unusable_keys_are_invalid_key_errors() {
    let f = fixtures();
    let msg = message(&f);
    let sig = hex::decode(&valid(&f, "ecdsa-sha2-nistp256").sig).unwrap();
    for k in &f.invalid_keys {
        let (_, expected) = INVALID_REASONS
            .iter()
            .find(|(name, _)| *name == k.name)
            .unwrap_or_else(|| panic!("no expected reason for fixture `{}`", k.name));
        assert_eq!(k.key.key_id(), k.keyid, "{}: key id", k.name);
        for s in [&sig[..], b""] {
            let reason = invalid_key_reason(k.key.verify(&k.keyid, &msg, s), &k.keyid);
            assert!(
                reason.contains(expected),
                "{}: `{reason}` lacks `{expected}`",
                k.name
            );
        }
    }
    assert_eq!(f.invalid_keys.len(), INVALID_REASONS.len());
}

#[test]
fn unsupported_key_type_error_lists_the_supported_ones() {
    let f = fixtures();
    let mut key = valid(&f, "ecdsa-sha2-nistp256").key.clone();
    key.keytype = "ml-dsa".into();
    let reason = invalid_key_reason(key.verify(&key.key_id(), b"m", b"s"), &key.key_id());
    for pair in [
        "ed25519/ed25519",
        "ecdsa/ecdsa-sha2-nistp256",
        "ecdsa/ecdsa-sha2-nistp384",
        "rsa/rsassa-pss-sha256",
        "rsa/rsa-pkcs1v15-sha256",
    ] {
        assert!(reason.contains(pair), "`{reason}` lacks {pair}");
    }
}

/// The PEM of `key` re-encoded from `der` with lines of `width` and `eol` line ends.
fn pem(der: &[u8], width: usize, eol: &str) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----{eol}{}{eol}-----END PUBLIC KEY-----",
        lines.join(eol)
    )
}

fn der_of(key: &Key) -> Vec<u8> {
    let body: String = key
        .keyval
        .public
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

fn with_public(key: &Key, public: String) -> Key {
    let mut key = key.clone();
    key.keyval.public = public;
    key
}

#[test]
fn identity_ignores_pem_layout_legacy_keytype_and_rsa_scheme() {
    let f = fixtures();
    let msg = message(&f);
    let p256 = valid(&f, "ecdsa-sha2-nistp256");
    let p256_legacy = valid(&f, "ecdsa-sha2-nistp256 (legacy keytype)");
    let p384 = valid(&f, "ecdsa-sha2-nistp384");
    let pss = valid(&f, "rsassa-pss-sha256");
    let pkcs1 = valid(&f, "rsa-pkcs1v15-sha512");
    let ed = valid(&f, "ed25519");

    let rewrapped = with_public(&p256.key, pem(&der_of(&p256.key), 76, "\r\n"));
    assert_ne!(rewrapped.key_id(), p256.keyid);
    assert!(
        rewrapped
            .verify(&rewrapped.key_id(), &msg, &hex::decode(&p256.sig).unwrap())
            .unwrap()
    );
    assert_eq!(rewrapped.identity(), p256.key.identity());
    assert_eq!(p256_legacy.key.identity(), p256.key.identity());
    assert_ne!(p384.key.identity(), p256.key.identity());
    assert_eq!(p256.key.identity().0, "ecdsa");

    // One RSA key under two schemes is one key.
    assert_eq!(pss.key.identity(), pkcs1.key.identity());
    let rsa_other = with_public(
        &pss.key,
        pem(&der_of(&valid(&f, "rsassa-pss-sha384").key), 64, "\n"),
    );
    assert_eq!(rsa_other.identity(), pss.key.identity());
    assert_ne!(pss.key.identity(), p256.key.identity());

    // ed25519 keeps keytype, scheme and lowercase hex.
    let upper = with_public(&ed.key, ed.key.keyval.public.to_ascii_uppercase());
    assert_eq!(upper.identity(), ed.key.identity());
    assert_eq!(
        ed.key.identity(),
        (
            "ed25519".into(),
            "ed25519".into(),
            ed.key.keyval.public.to_ascii_lowercase()
        )
    );
}

/// Every truncation of each PEM key's DER, and bit flips of each of its bytes, give an error or a
/// signature that does not verify: never a panic, never a verified signature.
#[test]
fn mutated_keys_never_verify() {
    let f = fixtures();
    let msg = message(&f);
    for v in f.valid.iter().filter(|v| v.key.keytype != Key::ED25519) {
        let der = der_of(&v.key);
        let sig = hex::decode(&v.sig).unwrap();
        let check = |mutated: &[u8], what: &str| {
            let key = with_public(&v.key, pem(mutated, 64, "\n"));
            if let Ok(true) = key.verify(&key.key_id(), &msg, &sig) {
                panic!("{}: {what} still verifies", v.name);
            }
        };
        for len in 0..der.len() {
            check(&der[..len], &format!("DER truncated to {len} bytes"));
        }
        for i in 0..der.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut mutated = der.clone();
                mutated[i] ^= mask;
                check(&mutated, &format!("DER byte {i} ^ {mask:#04x}"));
            }
        }
    }
}

#[test]
fn root_signed_with_an_ecdsa_key_verifies() {
    let bytes = include_bytes!("fixtures/key_types_root.json");
    let parsed = verify_trusted_root("key_types_root.json", bytes).unwrap();
    let root = &parsed.metadata.signed;
    let root_keys = root.role_keys("root").unwrap();
    assert_eq!(root_keys.threshold, 1);
    let key = &root.keys[&root_keys.keyids[0]];
    assert_eq!(
        (key.keytype.as_str(), key.scheme.as_str()),
        ("ecdsa", "ecdsa-sha2-nistp256")
    );
    let mut types: Vec<(&str, &str)> = root
        .keys
        .values()
        .map(|k| (k.keytype.as_str(), k.scheme.as_str()))
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            ("ecdsa", "ecdsa-sha2-nistp256"),
            ("ecdsa", "ecdsa-sha2-nistp384"),
            ("rsa", "rsa-pkcs1v15-sha256"),
            ("rsa", "rsassa-pss-sha256"),
        ]
    );

    // The same file with its signed content changed is refused.
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.contains("2040-01-01T00:00:00Z"));
    let tampered = text.replace("2040-01-01T00:00:00Z", "2041-01-01T00:00:00Z");
    match verify_trusted_root("key_types_root.json", tampered.as_bytes()) {
        Err(TufError::Threshold { valid: 0, .. }) => {}
        other => panic!("expected a threshold error, got {other:?}"),
    }
}

/// python-tuf counts key ids and accepts this root (threshold 2, one ECDSA key listed and
/// signing under two ids); tufa counts keys.
#[test]
fn one_ecdsa_key_under_two_ids_counts_once() {
    let bytes = include_bytes!("fixtures/key_types_root_duplicate.json");
    match verify_trusted_root("key_types_root_duplicate.json", bytes) {
        Err(
            e @ TufError::Threshold {
                valid: 1,
                threshold: 2,
                ..
            },
        ) => {
            assert!(e.to_string().contains("same public key"), "{e}");
        }
        other => panic!("expected a threshold error, got {other:?}"),
    }
}
