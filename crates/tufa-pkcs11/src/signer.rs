//! [`Pkcs11Signer`]: open or generate an ed25519 key on a token, and sign with it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tracing::{info, warn};
use tufa_tuf::{Key, KeyId, Signer, TufError};
use zeroize::Zeroize as _;

use crate::Pkcs11Error;

/// `CKA_EC_PARAMS` for Ed25519: the DER of OID 1.3.101.112 (id-Ed25519, RFC 8410). This is
/// what [`Pkcs11Signer::generate`] asks for; SoftHSM2, YubiKey and most HSMs accept it.
const ED25519_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// `CKA_EC_PARAMS` for Ed25519 as PKCS#11 3.0 also allows: the curve name as a DER
/// PrintableString. Accepted on keys made elsewhere.
const ED25519_CURVE_NAME_DER: &[u8] = b"\x13\x0cedwards25519";

/// Where the key is and how to log in.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so` or
    /// `/usr/lib/x86_64-linux-gnu/libykcs11.so`.
    pub module: PathBuf,
    /// `CKA_LABEL` of the token (`TokenInfo.label`, without the blank padding).
    pub token_label: String,
    /// The user PIN. Never logged or shown by `Debug`; zeroed when the config is dropped. An
    /// empty PIN logs in through the token's protected authentication path (a PIN pad) when
    /// the token has one.
    pub pin: String,
    /// `CKA_LABEL` of the key pair.
    pub key_label: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

impl Drop for Pkcs11Config {
    fn drop(&mut self) {
        self.pin.zeroize();
    }
}

/// How well the token protects the private key, as the token reports it (`None`: the token
/// did not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`: the secret value cannot be read in plaintext.
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE`: the key can be wrapped (exported encrypted).
    pub extractable: Option<bool>,
    /// `CKA_ALWAYS_SENSITIVE`: the key has been sensitive since it was made.
    pub always_sensitive: Option<bool>,
    /// `CKA_NEVER_EXTRACTABLE`: the key has never been extractable.
    pub never_extractable: Option<bool>,
}

impl KeyProtection {
    /// The token will not hand the secret out, neither in plaintext nor wrapped.
    pub fn cannot_be_exported(&self) -> bool {
        self.sensitive == Some(true) && self.extractable == Some(false)
    }

    /// [`KeyProtection::cannot_be_exported`], and it never could: the key was made inside the
    /// token (or at least never left it in the clear since it was stored there).
    pub fn never_exported(&self) -> bool {
        self.cannot_be_exported()
            && self.always_sensitive == Some(true)
            && self.never_extractable == Some(true)
    }
}

/// An ed25519 key pair held in a PKCS#11 token. Signing happens in the token; this value holds
/// a logged-in session, the private key's handle and the public key.
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    private: ObjectHandle,
    key: Key,
    keyid: KeyId,
    module: PathBuf,
    token_label: String,
    key_label: String,
    protection: KeyProtection,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// Opens the ed25519 key labelled `cfg.key_label` on the token labelled `cfg.token_label`:
    /// loads the module, logs in as the user, finds the private key (`CKO_PRIVATE_KEY`,
    /// `CKK_EC_EDWARDS`) and reads the public key (`CKA_EC_POINT` of the matching
    /// `CKO_PUBLIC_KEY`, or of the private key if the token has no public key object).
    ///
    /// Login state belongs to the process, not the session (PKCS#11): while another signer in
    /// this process is logged in to the token, the token answers `CKR_USER_ALREADY_LOGGED_IN`
    /// without checking `cfg.pin`.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        check_config(cfg)?;
        let ctx = context(&cfg.module)?;
        let slot = find_token(&ctx, &cfg.token_label)?;
        require_mechanisms(&ctx, slot, &cfg.token_label, &[MechanismType::EDDSA])?;
        let session = ctx
            .open_ro_session(slot)
            .map_err(op(&cfg.token_label, "opening a session"))?;
        login(&ctx, slot, &session, cfg)?;
        let private = find_private_key(&session, &cfg.token_label, &cfg.key_label)?;
        let public = read_public_key(&session, private, &cfg.token_label, &cfg.key_label)?;
        let signer = Self::assemble(session, private, public, cfg)?;
        info!(
            token = %signer.token_label,
            key_label = %signer.key_label,
            keyid = %signer.keyid,
            "opened PKCS#11 ed25519 key"
        );
        Ok(signer)
    }

    /// Generates an ed25519 key pair inside the token (`CKM_EC_EDWARDS_KEY_PAIR_GEN`), stored on
    /// the token, private, sensitive, not extractable, allowed to sign and nothing else, both
    /// halves labelled `cfg.key_label` and with `CKA_ID` set to the TUF key id. Refuses if any
    /// object on the token already has that label.
    pub fn generate(cfg: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        check_config(cfg)?;
        let token = cfg.token_label.as_str();
        let ctx = context(&cfg.module)?;
        let slot = find_token(&ctx, token)?;
        require_mechanisms(
            &ctx,
            slot,
            token,
            &[MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, MechanismType::EDDSA],
        )?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(op(token, "opening a read-write session"))?;
        login(&ctx, slot, &session, cfg)?;

        let label = Attribute::Label(cfg.key_label.as_bytes().to_vec());
        let existing = session
            .find_objects(std::slice::from_ref(&label))
            .map_err(op(token, "looking for objects with the key label"))?;
        if !existing.is_empty() {
            return Err(Pkcs11Error::KeyExists {
                token: token.to_owned(),
                label: cfg.key_label.clone(),
            });
        }

        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(ED25519_OID_DER.to_vec()),
            label.clone(),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            Attribute::Unwrap(false),
            label,
        ];
        let (public_handle, private) = session
            .generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(op(token, "generating an ed25519 key pair"))?;
        let public = ec_point(&session, public_handle, token, &cfg.key_label)?.ok_or_else(|| {
            Pkcs11Error::Pkcs11(format!("token `{token}`: the new public key has no CKA_EC_POINT"))
        })?;

        // CKA_ID = the TUF key id, so token tools (`pkcs11-tool --list-objects`) show which TUF
        // key an object is. Cosmetic: a token that refuses keeps a working key without it.
        let keyid = Key::ed25519(&public).key_id();
        let id = [Attribute::Id(keyid.as_bytes().to_vec())];
        for handle in [public_handle, private] {
            if let Err(e) = session.update_attributes(handle, &id) {
                warn!(token, key_label = %cfg.key_label, error = %e, "could not set CKA_ID on the new key");
            }
        }

        let signer = Self::assemble(session, private, public, cfg)?;
        info!(
            token = %signer.token_label,
            key_label = %signer.key_label,
            keyid = %signer.keyid,
            "generated PKCS#11 ed25519 key"
        );
        Ok(signer)
    }

    /// Moves the key pair labelled `cfg.key_label` to the label `new_label`: sets `CKA_LABEL`
    /// (`C_SetAttributeValue`) on its public key object(s), then on its private key. The key
    /// itself (and its `CKA_ID`) is unchanged; this is how the mirror retires its online key
    /// and promotes the next one in a rotation. Returns the key's TUF key id.
    ///
    /// Interrupted between the two objects, the key is still found under the old label (the
    /// private key, [`Pkcs11Signer::open`], finds its public half by `CKA_ID`), and running
    /// this again finishes the move. Refuses ([`Pkcs11Error::KeyExists`]) if `new_label`
    /// holds any object but this key's own public half.
    pub fn relabel(cfg: &Pkcs11Config, new_label: &str) -> Result<KeyId, Pkcs11Error> {
        check_config(cfg)?;
        if new_label.is_empty() {
            return Err(Pkcs11Error::Config("the new key label is empty".into()));
        }
        let token = cfg.token_label.as_str();
        let ctx = context(&cfg.module)?;
        let slot = find_token(&ctx, token)?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(op(token, "opening a read-write session"))?;
        login(&ctx, slot, &session, cfg)?;
        let private = find_private_key(&session, token, &cfg.key_label)?;
        let public = read_public_key(&session, private, token, &cfg.key_label)?;
        let keyid = Key::ed25519(&public).key_id();

        // Only this key's own public half may be under the new label already (a relabel that
        // was interrupted after moving it).
        let new = Attribute::Label(new_label.as_bytes().to_vec());
        let there = session
            .find_objects(std::slice::from_ref(&new))
            .map_err(op(token, "looking for objects with the new label"))?;
        for object in there {
            if !is_public_half(&session, object, &public, token, new_label)? {
                return Err(Pkcs11Error::KeyExists {
                    token: token.to_owned(),
                    label: new_label.to_owned(),
                });
            }
        }
        let publics = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(cfg.key_label.as_bytes().to_vec()),
            ])
            .map_err(op(token, "looking for the public key"))?;
        for object in publics {
            if is_public_half(&session, object, &public, token, &cfg.key_label)? {
                session
                    .update_attributes(object, std::slice::from_ref(&new))
                    .map_err(op(token, "relabelling the public key"))?;
            }
        }
        session
            .update_attributes(private, std::slice::from_ref(&new))
            .map_err(op(token, "relabelling the private key"))?;
        info!(
            token,
            from = %cfg.key_label,
            to = new_label,
            keyid = %keyid,
            "relabelled PKCS#11 ed25519 key"
        );
        Ok(keyid)
    }

    fn assemble(
        session: Session,
        private: ObjectHandle,
        public: [u8; 32],
        cfg: &Pkcs11Config,
    ) -> Result<Self, Pkcs11Error> {
        let token = cfg.token_label.as_str();
        let label = cfg.key_label.as_str();
        let attrs = session
            .get_attributes(
                private,
                &[
                    AttributeType::EcParams,
                    AttributeType::Sign,
                    AttributeType::AlwaysAuthenticate,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(op(token, "reading the private key's attributes"))?;
        let mut protection = KeyProtection::default();
        for attr in attrs {
            match attr {
                Attribute::EcParams(params)
                    if params != ED25519_OID_DER && params != ED25519_CURVE_NAME_DER =>
                {
                    return Err(Pkcs11Error::Unsupported(format!(
                        "key `{label}` on token `{token}` has curve parameters {} \
                         (expected Ed25519, OID 1.3.101.112)",
                        hex(&params)
                    )));
                }
                Attribute::Sign(false) => {
                    return Err(Pkcs11Error::Unsupported(format!(
                        "key `{label}` on token `{token}` is not allowed to sign (CKA_SIGN is false)"
                    )));
                }
                Attribute::AlwaysAuthenticate(true) => {
                    return Err(Pkcs11Error::Unsupported(format!(
                        "key `{label}` on token `{token}` needs the PIN before every signature \
                         (CKA_ALWAYS_AUTHENTICATE); use a key without that policy"
                    )));
                }
                Attribute::Sensitive(b) => protection.sensitive = Some(b),
                Attribute::Extractable(b) => protection.extractable = Some(b),
                Attribute::AlwaysSensitive(b) => protection.always_sensitive = Some(b),
                Attribute::NeverExtractable(b) => protection.never_extractable = Some(b),
                _ => {}
            }
        }
        if !protection.cannot_be_exported() {
            warn!(
                token,
                key_label = label,
                ?protection,
                "the token does not report this private key as sensitive and non-extractable"
            );
        }
        let key = Key::ed25519(&public);
        let keyid = key.key_id();
        Ok(Self {
            session: Mutex::new(session),
            private,
            key,
            keyid,
            module: cfg.module.clone(),
            token_label: cfg.token_label.clone(),
            key_label: cfg.key_label.clone(),
            protection,
        })
    }

    /// The label of the token the key is on.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The label of the key pair.
    pub fn key_label(&self) -> &str {
        &self.key_label
    }

    /// The private key's protection flags, as read when the signer was opened.
    pub fn protection(&self) -> KeyProtection {
        self.protection
    }
}

impl Signer for Pkcs11Signer {
    fn key(&self) -> &Key {
        &self.key
    }

    fn keyid(&self) -> KeyId {
        self.keyid
    }

    /// Signs with `CKM_EDDSA` and no parameters (pure Ed25519, RFC 8032), then verifies the
    /// signature against the public key before returning it.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TufError> {
        let failed = |reason: String| TufError::Signing {
            keyid: self.keyid.to_string(),
            reason,
        };
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = {
            // A panic while the lock was held cannot leave a half-done operation behind:
            // C_Sign either finishes or ends the operation.
            let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
            session.sign(&mechanism, self.private, msg)
        }
        .map_err(|e| {
            failed(format!(
                "PKCS#11 token `{}`, key `{}`: {e}",
                self.token_label, self.key_label
            ))
        })?;
        if sig.len() != 64 {
            return Err(failed(format!(
                "PKCS#11 token `{}` returned a {}-byte signature, expected 64",
                self.token_label,
                sig.len()
            )));
        }
        if !self.key.verify(&self.keyid, msg, &sig)? {
            return Err(failed(format!(
                "the signature from PKCS#11 token `{}` does not verify with the public key labelled `{}` \
                 (is that public key the private key's pair?)",
                self.token_label, self.key_label
            )));
        }
        Ok(sig)
    }
}

fn check_config(cfg: &Pkcs11Config) -> Result<(), Pkcs11Error> {
    if cfg.token_label.is_empty() {
        return Err(Pkcs11Error::Config("the token label is empty".into()));
    }
    if cfg.key_label.is_empty() {
        return Err(Pkcs11Error::Config("the key label is empty".into()));
    }
    Ok(())
}

/// Maps a cryptoki error to [`Pkcs11Error::Pkcs11`], naming the token and what was being done.
fn op<'a>(token: &'a str, doing: &'a str) -> impl FnOnce(CkError) -> Pkcs11Error + 'a {
    move |e| Pkcs11Error::Pkcs11(format!("token `{token}`, {doing}: {e}"))
}

/// The process-wide context of a module: loaded and `C_Initialize`d once, kept for the life of
/// the process (see the crate docs for why it is never finalised).
fn context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let module_error = |source| Pkcs11Error::Module {
        path: module.to_owned(),
        source,
    };
    // The same library reached through a symlink is the same module.
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_owned());
    let mut contexts = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = contexts.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key).map_err(module_error)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process (another library) initialised it: share it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(module_error(e)),
    }
    contexts.insert(key, ctx.clone());
    Ok(ctx)
}

fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, Pkcs11Error> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| Pkcs11Error::Pkcs11(format!("listing slots: {e}")))?;
    let mut found = Vec::new();
    let mut available = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| Pkcs11Error::Pkcs11(format!("reading the token in slot {slot}: {e}")))?;
        if info.label() == label {
            found.push(slot);
        }
        available.push(info.label().to_owned());
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Pkcs11Error::TokenNotFound {
            label: label.to_owned(),
            available,
        }),
        many => Err(Pkcs11Error::Pkcs11(format!(
            "{} tokens are labelled `{label}`; token labels must be unique",
            many.len()
        ))),
    }
}

fn require_mechanisms(
    ctx: &Pkcs11,
    slot: Slot,
    token: &str,
    needed: &[MechanismType],
) -> Result<(), Pkcs11Error> {
    let offered = ctx
        .get_mechanism_list(slot)
        .map_err(op(token, "listing mechanisms"))?;
    for mechanism in needed {
        if !offered.contains(mechanism) {
            return Err(Pkcs11Error::Unsupported(format!(
                "token `{token}` does not offer {mechanism}"
            )));
        }
    }
    Ok(())
}

fn login(ctx: &Pkcs11, slot: Slot, session: &Session, cfg: &Pkcs11Config) -> Result<(), Pkcs11Error> {
    let token = cfg.token_label.as_str();
    let pin_pad = cfg.pin.is_empty()
        && ctx
            .get_token_info(slot)
            .map(|info| info.protected_authentication_path())
            .unwrap_or(false);
    // `AuthPin` is a secrecy `SecretString`: zeroed on drop.
    let pin = AuthPin::new(cfg.pin.as_str().into());
    let result = session.login(UserType::User, if pin_pad { None } else { Some(&pin) });
    let reason = match result {
        // Login state is per application and token: another signer here already logged in.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => return Ok(()),
        Err(CkError::Pkcs11(rv, _)) => match rv {
            RvError::PinIncorrect => "incorrect PIN".to_owned(),
            RvError::PinLocked => "the user PIN is locked (too many wrong PINs)".to_owned(),
            RvError::PinExpired => "the user PIN has expired and must be changed".to_owned(),
            RvError::PinLenRange | RvError::PinInvalid => {
                "the PIN has the wrong length or characters for this token".to_owned()
            }
            RvError::UserPinNotInitialized => "the token has no user PIN set".to_owned(),
            RvError::UserAnotherAlreadyLoggedIn => {
                "the security officer is logged in to this token in this process".to_owned()
            }
            other => format!("C_Login: {other}"),
        },
        Err(other) => other.to_string(),
    };
    Err(Pkcs11Error::Login {
        token: token.to_owned(),
        reason,
    })
}

fn find_private_key(session: &Session, token: &str, label: &str) -> Result<ObjectHandle, Pkcs11Error> {
    let label_attr = Attribute::Label(label.as_bytes().to_vec());
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            label_attr.clone(),
        ])
        .map_err(op(token, "looking for the private key"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => {
            // Something else under that label deserves a better message than "not found".
            let others = session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), label_attr])
                .map_err(op(token, "looking for the private key"))?;
            if others.is_empty() {
                Err(Pkcs11Error::KeyNotFound {
                    token: token.to_owned(),
                    label: label.to_owned(),
                })
            } else {
                Err(Pkcs11Error::Unsupported(format!(
                    "the private key labelled `{label}` on token `{token}` is not an ed25519 (CKK_EC_EDWARDS) key"
                )))
            }
        }
        many => Err(Pkcs11Error::Pkcs11(format!(
            "token `{token}` has {} ed25519 private keys labelled `{label}`; key labels must be unique",
            many.len()
        ))),
    }
}

/// The public half of `private`: the `CKO_PUBLIC_KEY` with the same label (and `CKA_ID`, when
/// the private key has one), or else `CKA_EC_POINT` of the private key itself.
fn read_public_key(
    session: &Session,
    private: ObjectHandle,
    token: &str,
    label: &str,
) -> Result<[u8; 32], Pkcs11Error> {
    let id = session
        .get_attributes(private, &[AttributeType::Id])
        .map_err(op(token, "reading the private key's CKA_ID"))?
        .into_iter()
        .find_map(|attr| match attr {
            Attribute::Id(id) if !id.is_empty() => Some(id),
            _ => None,
        });
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    template.extend(id.clone().map(Attribute::Id));
    let mut publics = session
        .find_objects(&template)
        .map_err(op(token, "looking for the public key"))?;
    // A relabel interrupted after moving the public half (see `Pkcs11Signer::relabel`): the
    // public key with the private key's CKA_ID, under whatever label.
    if let (true, Some(id)) = (publics.is_empty(), &id) {
        publics = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Id(id.clone()),
            ])
            .map_err(op(token, "looking for the public key"))?;
    }
    let point = match publics.as_slice() {
        [one] => ec_point(session, *one, token, label)?,
        [] => ec_point(session, private, token, label)?,
        many => {
            return Err(Pkcs11Error::Pkcs11(format!(
                "token `{token}` has {} ed25519 public keys labelled `{label}`; key labels must be unique",
                many.len()
            )));
        }
    };
    point.ok_or_else(|| {
        Pkcs11Error::Unsupported(format!(
            "the public half of key `{label}` on token `{token}` cannot be read \
             (no CKO_PUBLIC_KEY with that label, and no CKA_EC_POINT on the private key)"
        ))
    })
}

/// Whether `object` is a public key whose `CKA_EC_POINT` is `public`.
fn is_public_half(
    session: &Session,
    object: ObjectHandle,
    public: &[u8; 32],
    token: &str,
    label: &str,
) -> Result<bool, Pkcs11Error> {
    let class = session
        .get_attributes(object, &[AttributeType::Class])
        .map_err(op(token, "reading an object's class"))?;
    let is_public = class
        .iter()
        .any(|a| matches!(a, Attribute::Class(c) if *c == ObjectClass::PUBLIC_KEY));
    // An object that is not an ed25519 public key (its EC point unreadable) is not our half.
    Ok(is_public && ec_point(session, object, token, label).ok().flatten().as_ref() == Some(public))
}

/// `CKA_EC_POINT` of `object` as 32 raw bytes; `None` if the object has no such attribute.
fn ec_point(
    session: &Session,
    object: ObjectHandle,
    token: &str,
    label: &str,
) -> Result<Option<[u8; 32]>, Pkcs11Error> {
    let attrs = session
        .get_attributes(object, &[AttributeType::EcPoint])
        .map_err(op(token, "reading CKA_EC_POINT"))?;
    let Some(bytes) = attrs.into_iter().find_map(|attr| match attr {
        Attribute::EcPoint(bytes) => Some(bytes),
        _ => None,
    }) else {
        return Ok(None);
    };
    ed25519_point(&bytes).map(Some).ok_or_else(|| {
        Pkcs11Error::Unsupported(format!(
            "key `{label}` on token `{token}`: CKA_EC_POINT {} is not a 32-byte ed25519 public key",
            hex(&bytes)
        ))
    })
}

/// An ed25519 `CKA_EC_POINT`: PKCS#11 says a DER OCTET STRING (`04 20` + 32 bytes, as SoftHSM2
/// returns it); some tokens return the 32 bytes bare.
fn ed25519_point(bytes: &[u8]) -> Option<[u8; 32]> {
    match bytes {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        _ => bytes.try_into().ok(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_der_and_raw() {
        let raw = [7u8; 32];
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&raw);
        assert_eq!(ed25519_point(&der), Some(raw));
        assert_eq!(ed25519_point(&raw), Some(raw));
        // A raw key that happens to start like a DER header is still raw.
        let mut tricky = [9u8; 32];
        tricky[0] = 0x04;
        tricky[1] = 0x20;
        assert_eq!(ed25519_point(&tricky), Some(tricky));
        assert_eq!(ed25519_point(&der[..33]), None);
        assert_eq!(ed25519_point(&[0x04, 0x39, 1, 2]), None);
        assert_eq!(ed25519_point(&[]), None);
    }

    #[test]
    fn ec_params_constants() {
        assert_eq!(hex(&ED25519_OID_DER), "06032b6570");
        assert_eq!(ED25519_CURVE_NAME_DER.len(), 2 + "edwards25519".len());
        assert_eq!(usize::from(ED25519_CURVE_NAME_DER[1]), "edwards25519".len());
    }

    #[test]
    fn config_debug_hides_pin() {
        let cfg = Pkcs11Config {
            module: "/x.so".into(),
            token_label: "t".into(),
            pin: "s3cr3t-pin".into(),
            key_label: "k".into(),
        };
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3t-pin"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn empty_labels_are_config_errors() {
        let cfg = Pkcs11Config {
            module: "/nonexistent.so".into(),
            token_label: String::new(),
            pin: "1234".into(),
            key_label: "k".into(),
        };
        assert!(matches!(Pkcs11Signer::open(&cfg), Err(Pkcs11Error::Config(_))));
        // (No struct update syntax: the config zeroes its PIN on drop.)
        let cfg = Pkcs11Config {
            module: "/nonexistent.so".into(),
            token_label: "t".into(),
            pin: "1234".into(),
            key_label: String::new(),
        };
        assert!(matches!(
            Pkcs11Signer::generate(&cfg),
            Err(Pkcs11Error::Config(_))
        ));
    }

    #[test]
    fn signer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pkcs11Signer>();
    }
}
