//! The private key stays in the token.

use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
use tufa_pkcs11::Pkcs11Signer;
use tufa_tuf::Signer as _;

softhsm_test! {
    fn private_key_is_not_extractable(token) {
        let signer = Pkcs11Signer::generate(&token.config("online")).unwrap();
        let protection = signer.protection();
        assert!(protection.cannot_be_exported(), "{protection:?}");
        assert!(protection.never_exported(), "{protection:?}");

        // Look at the key as any other application in this process could.
        let (_ctx, session) = token.raw_session();
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Label(b"online".to_vec()),
            ])
            .unwrap();
        let [private] = found.as_slice() else { panic!("expected one private key, found {found:?}") };

        // CKA_VALUE (the secret scalar) is refused with CKR_ATTRIBUTE_SENSITIVE...
        let info = session.get_attribute_info(*private, &[AttributeType::Value]).unwrap();
        assert!(matches!(info.as_slice(), [AttributeInfo::Sensitive]), "{info:?}");
        // ...and reading it returns nothing.
        let values = session.get_attributes(*private, &[AttributeType::Value]).unwrap();
        assert!(values.is_empty(), "CKA_VALUE was readable: {values:?}");

        let attrs = session
            .get_attributes(
                *private,
                &[
                    AttributeType::Extractable,
                    AttributeType::Sensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Id,
                ],
            )
            .unwrap();
        assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::NeverExtractable(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::AlwaysSensitive(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Private(true)), "{attrs:?}");
        // CKA_ID is the TUF key id.
        assert!(attrs.contains(&Attribute::Id(signer.keyid().as_bytes().to_vec())), "{attrs:?}");

        // The token will not be talked into making it extractable again.
        assert!(session.update_attributes(*private, &[Attribute::Extractable(true)]).is_err());
        assert!(session.update_attributes(*private, &[Attribute::Sensitive(false)]).is_err());
    }
}

softhsm_test! {
    fn a_key_the_token_could_export_is_reported(token) {
        use cryptoki::mechanism::Mechanism;
        let (_ctx, session) = token.raw_session();
        let label = Attribute::Label(b"exportable".to_vec());
        session
            .generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
                    label.clone(),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Sign(true),
                    label,
                ],
            )
            .unwrap();
        let signer = Pkcs11Signer::open(&token.config("exportable")).unwrap();
        let protection = signer.protection();
        assert!(!protection.cannot_be_exported(), "{protection:?}");
        assert_eq!(protection.extractable, Some(true));
        assert_eq!(protection.sensitive, Some(false));
    }
}
