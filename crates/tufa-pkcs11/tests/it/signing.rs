//! Generate, open, sign, verify.

use std::sync::Arc;

use ed25519_dalek::Verifier as _;
use jiff::{SignedDuration, Timestamp};
use tufa_pkcs11::Pkcs11Signer;
use tufa_tuf::build::{RoleKeySet, RootKeys};
use tufa_tuf::{RoleName, Signer, build, sign_metadata, verify_signed};

softhsm_test! {
    fn generate_sign_verify(token) {
        let signer = Pkcs11Signer::generate(&token.config("root-1")).unwrap();
        let key = signer.key().clone();
        assert_eq!(key.keytype, "ed25519");
        assert_eq!(signer.keyid(), key.key_id());

        let msg = b"{\"_type\":\"root\"}";
        let sig = signer.sign(msg).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(key.verify(&signer.keyid(), msg, &sig).unwrap());
        assert!(!key.verify(&signer.keyid(), b"something else", &sig).unwrap());
        // Pure Ed25519 is deterministic.
        assert_eq!(signer.sign(msg).unwrap(), sig);

        // And independently of tufa-tuf, with ed25519-dalek.
        let public: [u8; 32] = hex::decode(&key.keyval.public).unwrap().try_into().unwrap();
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let dalek_sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        dalek.verify_strict(msg, &dalek_sig).unwrap();
        assert!(dalek.verify(b"tampered", &dalek_sig).is_err());

        // Debug names the key, never the PIN.
        let debug = format!("{signer:?}");
        assert!(debug.contains("root-1") && debug.contains(&signer.keyid().to_string()), "{debug}");
        assert!(!debug.contains(crate::softhsm::PIN), "{debug}");
    }
}

softhsm_test! {
    fn keyid_is_stable_across_open(token) {
        let generated = Pkcs11Signer::generate(&token.config("timestamp")).unwrap();
        let keyid = generated.keyid();
        drop(generated);

        let opened = Pkcs11Signer::open(&token.config("timestamp")).unwrap();
        assert_eq!(opened.keyid(), keyid);
        // Two signers on one token: the second login finds the user already logged in.
        let again = Pkcs11Signer::open(&token.config("timestamp")).unwrap();
        assert_eq!(again.keyid(), keyid);
        let sig = again.sign(b"x").unwrap();
        assert!(opened.key().verify(&keyid, b"x", &sig).unwrap());
        // Dropping one signer leaves the other logged in and working.
        drop(opened);
        assert_eq!(again.sign(b"x").unwrap(), sig);
    }
}

softhsm_test! {
    fn signs_from_many_threads(token) {
        let signer = Arc::new(Pkcs11Signer::generate(&token.config("snapshot")).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let signer = Arc::clone(&signer);
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let msg = format!("message {i}/{j}");
                        let sig = signer.sign(msg.as_bytes()).unwrap();
                        assert!(signer.key().verify(&signer.keyid(), msg.as_bytes(), &sig).unwrap());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}

softhsm_test! {
    fn several_keys_on_one_token(token) {
        let a = Pkcs11Signer::generate(&token.config("targets")).unwrap();
        let b = Pkcs11Signer::generate(&token.config("bins")).unwrap();
        assert_ne!(a.keyid(), b.keyid());
        let sig = b.sign(b"m").unwrap();
        assert!(b.key().verify(&b.keyid(), b"m", &sig).unwrap());
        assert!(!a.key().verify(&a.keyid(), b"m", &sig).unwrap());
        assert_eq!(Pkcs11Signer::open(&token.config("targets")).unwrap().keyid(), a.keyid());
        assert_eq!(Pkcs11Signer::open(&token.config("bins")).unwrap().keyid(), b.keyid());
    }
}

softhsm_test! {
    fn tuf_root_signed_by_the_token_verifies(token) {
        let signer = Pkcs11Signer::generate(&token.config("root")).unwrap();
        let key = signer.key().clone();
        let keys = RootKeys {
            root: RoleKeySet::single(key.clone()),
            targets: RoleKeySet::single(key.clone()),
            snapshot: RoleKeySet::single(key.clone()),
            timestamp: RoleKeySet::single(key),
        };
        let expires = Timestamp::now() + SignedDuration::from_hours(24);
        let root = build::new_root(&keys, 1, expires).unwrap();
        let signed = sign_metadata(root, &[&signer]).unwrap();
        assert_eq!(signed.signatures.len(), 1);
        assert_eq!(signed.signatures[0].keyid, signer.keyid());

        let root_role = &signed.signed.roles[&RoleName::root()];
        verify_signed(RoleName::ROOT, &signed, &signed.signed.keys, root_role).unwrap();

        // The signature covers the metadata: change it and verification fails.
        let mut tampered = signed.clone();
        tampered.signed.version = 2;
        let err = verify_signed(RoleName::ROOT, &tampered, &tampered.signed.keys, root_role).unwrap_err();
        assert!(err.to_string().contains("threshold"), "{err}");
    }
}

softhsm_test! {
    /// A key made by another tool (as `pkcs11-tool --keypairgen --key-type EC:edwards25519`
    /// would): no CKA_ID, curve given by name rather than OID. `open` finds it all the same.
    fn opens_a_key_made_elsewhere(token) {
        use cryptoki::mechanism::Mechanism;
        use cryptoki::object::Attribute;
        let (_ctx, session) = token.raw_session();
        let label = Attribute::Label(b"made-elsewhere".to_vec());
        let curve_name = b"\x13\x0cedwards25519".to_vec();
        session
            .generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &[Attribute::Token(true), Attribute::EcParams(curve_name), label.clone()],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                    label,
                ],
            )
            .unwrap();
        let signer = Pkcs11Signer::open(&token.config("made-elsewhere")).unwrap();
        let sig = signer.sign(b"hello").unwrap();
        assert!(signer.key().verify(&signer.keyid(), b"hello", &sig).unwrap());
    }
}
