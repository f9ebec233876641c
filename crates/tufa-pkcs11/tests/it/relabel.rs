//! Moving a key pair to another label: the online key rotation's retire and promote steps.

use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::Session;
use tufa_pkcs11::{Pkcs11Error, Pkcs11Signer};
use tufa_tuf::Signer as _;

/// The classes of the objects labelled `label`, sorted (`PUBLIC_KEY`, `PRIVATE_KEY`).
fn classes_labelled(session: &Session, label: &str) -> Vec<String> {
    let mut classes: Vec<String> = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
        .into_iter()
        .map(|o| {
            let attrs = session
                .get_attributes(o, &[cryptoki::object::AttributeType::Class])
                .unwrap();
            match attrs.as_slice() {
                [Attribute::Class(c)] if *c == ObjectClass::PUBLIC_KEY => "public".to_owned(),
                [Attribute::Class(c)] if *c == ObjectClass::PRIVATE_KEY => "private".to_owned(),
                other => format!("{other:?}"),
            }
        })
        .collect();
    classes.sort();
    classes
}

softhsm_test! {
    fn relabel_retires_the_current_key_and_promotes_the_next(token) {
        let current = Pkcs11Signer::generate(&token.config("online")).unwrap().keyid();
        let next = Pkcs11Signer::generate(&token.config("online.next")).unwrap().keyid();
        assert_ne!(current, next);

        let retired = format!("online.retired-{}", &current.to_hex()[..8]);
        assert_eq!(Pkcs11Signer::relabel(&token.config("online"), &retired).unwrap(), current);
        assert_eq!(Pkcs11Signer::relabel(&token.config("online.next"), "online").unwrap(), next);

        // Both halves moved, and the keys sign under their new labels.
        let (_ctx, session) = token.raw_session();
        assert_eq!(classes_labelled(&session, "online"), ["private", "public"]);
        assert_eq!(classes_labelled(&session, &retired), ["private", "public"]);
        assert!(classes_labelled(&session, "online.next").is_empty());
        let promoted = Pkcs11Signer::open(&token.config("online")).unwrap();
        assert_eq!(promoted.keyid(), next);
        let sig = promoted.sign(b"timestamp").unwrap();
        assert!(promoted.key().verify(&next, b"timestamp", &sig).unwrap());
        assert_eq!(Pkcs11Signer::open(&token.config(&retired)).unwrap().keyid(), current);
        assert!(matches!(
            Pkcs11Signer::open(&token.config("online.next")),
            Err(Pkcs11Error::KeyNotFound { .. })
        ));
    }
}

softhsm_test! {
    fn relabel_refuses_a_label_another_key_holds(token) {
        let a = Pkcs11Signer::generate(&token.config("a")).unwrap().keyid();
        let b = Pkcs11Signer::generate(&token.config("b")).unwrap().keyid();
        let err = Pkcs11Signer::relabel(&token.config("a"), "b").unwrap_err();
        assert!(matches!(&err, Pkcs11Error::KeyExists { label, .. } if label == "b"), "{err:?}");
        assert!(err.to_string().contains("`b`"), "{err}");
        // Nothing moved.
        assert_eq!(Pkcs11Signer::open(&token.config("a")).unwrap().keyid(), a);
        assert_eq!(Pkcs11Signer::open(&token.config("b")).unwrap().keyid(), b);
        // A label nothing has is the key-not-found error, naming it.
        let err = Pkcs11Signer::relabel(&token.config("nothing"), "c").unwrap_err();
        assert!(matches!(err, Pkcs11Error::KeyNotFound { ref label, .. } if label == "nothing"), "{err:?}");
    }
}

softhsm_test! {
    fn relabel_interrupted_between_the_halves_is_finished_by_running_it_again(token) {
        let keyid = Pkcs11Signer::generate(&token.config("online")).unwrap().keyid();
        // The state a kill leaves between the two C_SetAttributeValue calls: the public half
        // already moved, the private key not yet.
        let (_ctx, session) = token.raw_session();
        let public = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(b"online".to_vec()),
            ])
            .unwrap();
        let [public] = public.as_slice() else { panic!("{public:?}") };
        session
            .update_attributes(*public, &[Attribute::Label(b"online.retired".to_vec())])
            .unwrap();
        assert_eq!(classes_labelled(&session, "online"), ["private"]);

        // The key is still the one under its old label (found by CKA_ID) and still signs...
        let signer = Pkcs11Signer::open(&token.config("online")).unwrap();
        assert_eq!(signer.keyid(), keyid);
        signer.sign(b"x").unwrap();
        // ...and the same relabel again finishes the move.
        assert_eq!(Pkcs11Signer::relabel(&token.config("online"), "online.retired").unwrap(), keyid);
        assert!(classes_labelled(&session, "online").is_empty());
        assert_eq!(classes_labelled(&session, "online.retired"), ["private", "public"]);
        assert_eq!(Pkcs11Signer::open(&token.config("online.retired")).unwrap().keyid(), keyid);
    }
}
