//! Clear errors for the ways opening a key goes wrong.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use tufa_pkcs11::{Pkcs11Config, Pkcs11Error, Pkcs11Signer};
use tufa_tuf::Signer as _;

use crate::softhsm::{self, DECOY_TOKEN, TOKEN};

softhsm_test! {
    fn wrong_pin_names_the_token_not_the_pin(token) {
        Pkcs11Signer::generate(&token.config("k")).unwrap();
        // `generate` logged this process in to TOKEN, and login state is per application
        // (see `login_is_shared_within_the_process`), so try the wrong PIN on the other token.
        let wrong = "99999999";
        let cfg = Pkcs11Config {
            module: token.module.clone(),
            token_label: DECOY_TOKEN.to_owned(),
            pin: wrong.to_owned(),
            key_label: "k".to_owned(),
        };
        let err = Pkcs11Signer::open(&cfg).unwrap_err();
        let Pkcs11Error::Login { token: ref named, ref reason } = err else { panic!("{err:?}") };
        assert_eq!(named, DECOY_TOKEN);
        assert_eq!(reason, "incorrect PIN");
        let msg = err.to_string();
        assert!(msg.contains(DECOY_TOKEN), "{msg}");
        assert!(!msg.contains(wrong), "{msg}");
        assert!(!format!("{err:?}").contains(wrong), "{err:?}");
    }
}

softhsm_test! {
    fn wrong_pin_before_any_login(token) {
        let wrong = "13579135";
        let err = Pkcs11Signer::open(&token.config_with_pin("k", wrong)).unwrap_err();
        assert!(matches!(&err, Pkcs11Error::Login { token, .. } if token == TOKEN), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(TOKEN) && msg.contains("incorrect PIN"), "{msg}");
        assert!(!msg.contains(wrong), "{msg}");
        // The right PIN still works afterwards.
        Pkcs11Signer::generate(&token.config("k")).unwrap();
    }
}

softhsm_test! {
    fn unknown_token_lists_the_tokens_present(token) {
        let cfg = Pkcs11Config {
            module: token.module.clone(),
            token_label: "no-such-token".to_owned(),
            pin: softhsm::PIN.to_owned(),
            key_label: "k".to_owned(),
        };
        let err = Pkcs11Signer::open(&cfg).unwrap_err();
        assert!(matches!(err, Pkcs11Error::TokenNotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("`no-such-token`"), "{msg}");
        assert!(msg.contains(TOKEN) && msg.contains(DECOY_TOKEN), "{msg}");
        assert!(matches!(Pkcs11Signer::generate(&cfg), Err(Pkcs11Error::TokenNotFound { .. })));
    }
}

softhsm_test! {
    fn unknown_key_label(token) {
        Pkcs11Signer::generate(&token.config("present")).unwrap();
        let err = Pkcs11Signer::open(&token.config("absent")).unwrap_err();
        let Pkcs11Error::KeyNotFound { token: ref t, ref label } = err else { panic!("{err:?}") };
        assert_eq!((t.as_str(), label.as_str()), (TOKEN, "absent"));
        let msg = err.to_string();
        assert!(msg.contains("`absent`") && msg.contains(TOKEN), "{msg}");
    }
}

softhsm_test! {
    fn generate_refuses_an_existing_label(token) {
        let first = Pkcs11Signer::generate(&token.config("root")).unwrap();
        let err = Pkcs11Signer::generate(&token.config("root")).unwrap_err();
        assert!(matches!(&err, Pkcs11Error::KeyExists { token, label } if token == TOKEN && label == "root"), "{err:?}");
        // The first key is untouched.
        assert_eq!(Pkcs11Signer::open(&token.config("root")).unwrap().keyid(), first.keyid());
    }
}

softhsm_test! {
    fn a_key_of_another_type_under_the_label(token) {
        // A P-256 key labelled like the ed25519 key we want.
        let (_ctx, session) = token.raw_session();
        let label = Attribute::Label(b"p256".to_vec());
        let prime256v1 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::Token(true), Attribute::EcParams(prime256v1), label.clone()],
                &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), label],
            )
            .unwrap();
        let err = Pkcs11Signer::open(&token.config("p256")).unwrap_err();
        assert!(matches!(err, Pkcs11Error::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("not an ed25519"), "{err}");
        // And generate will not put an ed25519 key beside it under the same label.
        assert!(matches!(Pkcs11Signer::generate(&token.config("p256")), Err(Pkcs11Error::KeyExists { .. })));
    }
}

#[test]
fn a_missing_module_is_a_module_error() {
    let cfg = Pkcs11Config {
        module: "/nonexistent/libsofthsm2.so".into(),
        token_label: TOKEN.to_owned(),
        pin: softhsm::PIN.to_owned(),
        key_label: "k".to_owned(),
    };
    let err = Pkcs11Signer::open(&cfg).unwrap_err();
    assert!(matches!(err, Pkcs11Error::Module { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/libsofthsm2.so"), "{err}");
}

softhsm_test! {
    /// PKCS#11 login state belongs to the application, not the session: once a signer in this
    /// process is logged in to a token, C_Login answers CKR_USER_ALREADY_LOGGED_IN without
    /// looking at the PIN, so another `open` on that token succeeds whatever PIN it has. No
    /// privilege is gained (the process could sign already); the crate documents this.
    fn login_is_shared_within_the_process(token) {
        let first = Pkcs11Signer::generate(&token.config("k")).unwrap();
        let second = Pkcs11Signer::open(&token.config_with_pin("k", "00000000")).unwrap();
        assert_eq!(second.keyid(), first.keyid());
    }
}
