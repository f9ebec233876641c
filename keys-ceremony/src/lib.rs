//! `tufa-ceremony`: the offline key-signing ceremony for tufa's TUF roles (PEP 458).
//!
//! Owns: generating offline ed25519 keys and storing them encrypted under a passphrase
//! (argon2id + XChaCha20-Poly1305, [`keyfile`]); the ceremony directory in which root, targets
//! and bins metadata collect signatures one key holder at a time ([`Ceremony`], one module per
//! step under [`ceremony`]); the holder's confirmation before each signature ([`confirm`]);
//! threshold checks before anything is published; root, online-key and delegation rotations;
//! offline verification of the published chain.
//!
//! Arguments arrive as typed values ([`types`]: [`OfflineRole`], [`Threshold`],
//! [`ExpiryDays`], [`KeySelector`], …), parsed once by the binary.
//!
//! Shares the TUF model, builders, signing and verification with `tufa-tuf` (no copies).
//!
//! Must not know about: the network (no network or async crates; `deny.toml` enforces it), the
//! mirror's storage, or the online key's private half — only its public key enters a ceremony.
//! The binary is a thin layer over this library; the integration tests drive both.

#![forbid(unsafe_code)]

pub mod ceremony;
pub mod confirm;
mod error;
mod fsutil;
pub mod keyfile;
pub mod passphrase;
pub mod source;
pub mod types;

pub use ceremony::{
    Ceremony, CeremonyConfig, Evaluation, Holder, Holders, InitOptions, PendingStatus, PublishReport, Report,
    ResignTargetsOptions, RotateRootOptions, SignPlan, StatusReport, VerifyReport, verify_metadata_dir,
};
pub use confirm::Confirmation;
pub use error::{CeremonyError, Result};
pub use keyfile::{EncryptedKey, GeneratedKey, KdfParams, PublicKeyFile, export_public, generate_key_file};
pub use passphrase::{PASSPHRASE_ENV, Passphrase, PassphraseSource};
pub use source::{KeySource, PKCS11_PIN_ENV, PinSource, TokenKey, generate_pkcs11_key};
pub use types::{ExpiryDays, HolderName, KeySelector, OfflineRole, PendingSelector, Threshold};
