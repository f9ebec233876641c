//! `tufa-pkcs11`: signs TUF metadata with ed25519 keys that live inside a PKCS#11 token (a
//! YubiKey, a network HSM, or SoftHSM2 in tests), through the [`cryptoki`] crate.
//!
//! Owns:
//! - finding a token by label, logging in as the user, and finding an ed25519 key pair on it
//!   by `CKA_LABEL` ([`Pkcs11Signer::open`]);
//! - generating an ed25519 key pair *inside* the token, sensitive and not extractable
//!   ([`Pkcs11Signer::generate`]);
//! - moving a key pair to another label ([`Pkcs11Signer::relabel`]), which is how the mirror
//!   retires its online key and promotes the next one (`<key>` → `<key>.retired-<keyid>`,
//!   `<key>.next` → `<key>`);
//! - the [`tufa_tuf::Signer`] implementation (`CKM_EDDSA`, pure Ed25519). Every signature the
//!   token returns is checked against the public key before it is handed out.
//!
//! The private key never leaves the token: this crate only ever asks the token to sign. It
//! reads the public key (`CKA_EC_POINT`) and the protection flags of the private key
//! ([`KeyProtection`]), and writes nothing but `CKA_ID` (when generating) and `CKA_LABEL`
//! (when relabelling).
//!
//! Must not know about: the network, metadata layout or roles (that is `tufa-tuf`), where the
//! PIN comes from (the caller's config or prompt).
//!
//! # One module, one process
//!
//! A PKCS#11 module is initialised once per process (`C_Initialize`) and login state is shared
//! by every session an application has on a token. This crate therefore keeps one context per
//! module path for the life of the process, never calls `C_Finalize`, never calls `C_Logout`
//! (which would log out the other signers on the same token), and treats
//! `CKR_CRYPTOKI_ALREADY_INITIALIZED` and `CKR_USER_ALREADY_LOGGED_IN` as success. Each
//! [`Pkcs11Signer`] has its own session, behind a mutex.
//!
//! # Not supported
//!
//! Keys with `CKA_ALWAYS_AUTHENTICATE` (a PIN before every signature, as a YubiKey's PIV slot
//! 9c): [`Pkcs11Signer::open`] refuses them with [`Pkcs11Error::Unsupported`].

#![forbid(unsafe_code)]

mod error;
mod signer;

pub use error::Pkcs11Error;
pub use signer::{KeyProtection, Pkcs11Config, Pkcs11Signer};
