//! The TUF 1.0 metadata model: field names, shapes and validation rules as the specification
//! (v1.0.31) and python-tuf's `tuf.api.metadata` define them.
//!
//! Parsing ([`Signed::from_bytes`]) refuses what python-tuf refuses when it loads metadata
//! (wrong `_type`, spec major version other than 1, version 0, duplicate key ids in a role,
//! threshold 0, a delegation with both or neither of `paths`/`path_hash_prefixes`, …), and also
//! a key listed under an id that is not the sha256 of its canonical JSON (the specification's
//! definition of a key id, which python-tuf does not check). Two signatures by one key id,
//! which python-tuf also refuses, parse here but every signature check refuses them
//! ([`crate::verify_payload`]). A consistent-snapshot file's name must carry its signed version
//! ([`Signed::from_file`]). Unknown fields are ignored
//! here, but signatures are always checked over the canonical bytes of the `signed` object
//! *as received* ([`ParsedMetadata::payload`]), so metadata carrying extension fields still
//! verifies.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp as Time;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::Digest as _;
use tufa_pypi::Sha256Digest;

use crate::expires::serde_expires;
use crate::keys::{Key, Signer};
use crate::{BinLayout, KeyId, RoleName, TargetPath, TufError, canonical};

/// The TUF specification version this crate writes.
pub const SPEC_VERSION: &str = "1.0.31";

macro_rules! type_tag {
    ($name:ident, $value:literal) => {
        #[doc = concat!("The `_type` tag `\"", $value, "\"`.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                if s == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format_args!(
                        "_type is `{s}`, expected `{}`",
                        $value
                    )))
                }
            }
        }
    };
}

/// `_type` tags, one per role type. They carry no data; they make a `Root` impossible to
/// deserialise from snapshot metadata.
pub mod tags {
    use super::*;
    type_tag!(RootType, "root");
    type_tag!(TargetsType, "targets");
    type_tag!(SnapshotType, "snapshot");
    type_tag!(TimestampType, "timestamp");
}

/// What the four metadata types share.
pub trait Role: Serialize + DeserializeOwned {
    /// The `_type` value.
    const TYPE: &'static str;
    fn version(&self) -> u64;
    fn expires(&self) -> Time;
    fn spec_version(&self) -> &str;
    /// Rules python-tuf enforces when it loads this metadata, beyond its JSON shape.
    fn validate(&self) -> Result<(), String>;
}

/// Keys and threshold of one role (in root: `roles.<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
}

impl RoleKeys {
    /// python-tuf's `Role` rules: unique key ids, threshold at least 1.
    pub fn validate(&self) -> Result<(), String> {
        validate_keys_threshold(&self.keyids, self.threshold)
    }
}

fn validate_keys_threshold(keyids: &[KeyId], threshold: u32) -> Result<(), String> {
    let unique: BTreeSet<&KeyId> = keyids.iter().collect();
    if unique.len() != keyids.len() {
        return Err("key ids are not unique".into());
    }
    if threshold < 1 {
        return Err("threshold must be at least 1".into());
    }
    Ok(())
}

/// Each key id in a `keys` map must be its key's id (the sha256 of the key's canonical JSON,
/// as the TUF specification defines key ids): a key listed under an id of someone's choosing
/// could otherwise count twice towards a threshold.
fn validate_key_ids(keys: &BTreeMap<KeyId, Key>) -> Result<(), String> {
    for (keyid, key) in keys {
        key.check_key_id(keyid).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn validate_common(spec_version: &str, version: u64) -> Result<(), String> {
    let parts: Vec<&str> = spec_version.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(2..=3).contains(&parts.len()) || !numeric || parts[0] != "1" {
        return Err(format!("unsupported spec_version `{spec_version}`"));
    }
    if version == 0 {
        return Err("version must be at least 1".into());
    }
    Ok(())
}

/// Root metadata: the trust anchor listing every top-level role's keys and threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub type_: tags::RootType,
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "serde_expires")]
    pub expires: Time,
    #[serde(default)]
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<KeyId, Key>,
    pub roles: BTreeMap<RoleName, RoleKeys>,
}

impl Root {
    /// Keys and threshold of a top-level role.
    pub fn role_keys(&self, role: &str) -> Result<&RoleKeys, TufError> {
        self.roles.get(role).ok_or_else(|| TufError::MissingRole {
            role: role.to_owned(),
            listed_in: format!("root v{}", self.version),
        })
    }
}

impl Role for Root {
    const TYPE: &'static str = "root";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> Time {
        self.expires
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn validate(&self) -> Result<(), String> {
        validate_common(&self.spec_version, self.version)?;
        let names: BTreeSet<&str> = self.roles.keys().map(RoleName::as_str).collect();
        let top: BTreeSet<&str> = RoleName::TOP_LEVEL.into_iter().collect();
        if names != top {
            return Err("roles must be exactly root, targets, snapshot and timestamp".into());
        }
        validate_key_ids(&self.keys)?;
        for (name, role) in &self.roles {
            role.validate().map_err(|e| format!("role `{name}`: {e}"))?;
        }
        Ok(())
    }
}

/// One target: its length and hashes.
///
/// Files are written with sorted keys and python-tuf's ngclient downloads
/// `dir/<first listed hash>.<basename>`, so `sha256` must be the first algorithm in byte order:
/// `sha384`/`sha512` may follow, `blake2b…` or `sha224` may not ([`crate::build::new_bin`]
/// enforces this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl TargetFile {
    /// A target of `length` bytes with the given sha256.
    pub fn new(length: u64, sha256: &Sha256Digest) -> Self {
        Self {
            length,
            hashes: BTreeMap::from([("sha256".to_owned(), sha256.to_hex())]),
            custom: None,
        }
    }

    /// Describes `data`.
    pub fn from_data(data: &[u8]) -> Self {
        Self::new(data.len() as u64, &Sha256Digest::of(data))
    }

    /// The sha256, when listed and well-formed.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.hashes.get("sha256").and_then(|h| h.parse().ok())
    }

    /// Checks `data` against the length and every listed hash (as python-tuf's
    /// `TargetFile.verify_length_and_hashes`).
    pub fn verify(&self, what: &str, data: &[u8]) -> Result<(), TufError> {
        verify_length_and_hashes(what, data, Some(self.length), Some(&self.hashes))
    }

    /// The same checks over bytes that arrive in pieces ([`LengthAndHashes`]).
    pub fn verifier(&self, what: &str) -> Result<LengthAndHashes, TufError> {
        LengthAndHashes::new(what, Some(self.length), Some(&self.hashes))
    }
}

/// A delegation to one named role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub name: RoleName,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    pub terminating: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
}

impl DelegatedRole {
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        }
    }

    /// Whether this role is trusted for `target` (python-tuf's `is_delegated_path`).
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(prefixes) = &self.path_hash_prefixes {
            let hash = Sha256Digest::of(target.as_bytes()).to_hex();
            prefixes.iter().any(|p| hash.starts_with(p.as_str()))
        } else if let Some(paths) = &self.paths {
            paths.iter().any(|p| crate::pattern::path_matches(target, p))
        } else {
            false
        }
    }

    fn validate(&self) -> Result<(), String> {
        validate_keys_threshold(&self.keyids, self.threshold)?;
        if self.paths.is_some() == self.path_hash_prefixes.is_some() {
            return Err("exactly one of paths and path_hash_prefixes must be set".into());
        }
        if self.name.is_top_level() {
            return Err("a delegated role cannot have a top-level role's name".into());
        }
        Ok(())
    }
}

/// Succinct hashed-bin delegation (TAP 15): `2^bit_length` roles named
/// `<name_prefix>-<hex>`, all with the same keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    pub bit_length: u32,
    pub name_prefix: String,
}

impl SuccinctRoles {
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        }
    }

    /// The bin layout, when tufa supports this bit length (1..=16).
    pub fn layout(&self) -> Result<BinLayout, TufError> {
        let bits = u8::try_from(self.bit_length).map_err(|_| TufError::InvalidBitLength(self.bit_length))?;
        BinLayout::with_prefix(bits, &self.name_prefix)
    }

    fn validate(&self) -> Result<(), String> {
        validate_keys_threshold(&self.keyids, self.threshold)?;
        if !(1..=32).contains(&self.bit_length) {
            return Err(format!("bit_length {} is not in 1..=32", self.bit_length));
        }
        Ok(())
    }
}

/// The delegations of a targets role: keys, and either a list of roles or succinct roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<KeyId, Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
}

impl Delegations {
    fn validate(&self) -> Result<(), String> {
        if self.roles.is_some() == self.succinct_roles.is_some() {
            return Err("exactly one of roles and succinct_roles must be set".into());
        }
        validate_key_ids(&self.keys)?;
        if let Some(roles) = &self.roles {
            let mut seen = BTreeSet::new();
            for role in roles {
                if !seen.insert(&role.name) {
                    return Err(format!("role `{}` is delegated twice", role.name));
                }
                role.validate()
                    .map_err(|e| format!("delegated role `{}`: {e}", role.name))?;
            }
        }
        if let Some(succinct) = &self.succinct_roles {
            succinct.validate().map_err(|e| format!("succinct_roles: {e}"))?;
        }
        Ok(())
    }

    /// The delegated roles to search for `target`, in order, each with whether it is
    /// terminating (python-tuf's `get_roles_for_target`): listed roles whose paths or hash
    /// prefixes cover it, or the one succinct bin it hashes to.
    pub fn roles_for_target(&self, target: &str) -> Vec<(RoleName, bool)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .filter(|r| r.is_delegated_path(target))
                .map(|r| (r.name.clone(), r.terminating))
                .collect();
        }
        let Some(layout) = self.succinct_roles.as_ref().and_then(|s| s.layout().ok()) else {
            return Vec::new();
        };
        vec![(layout.role_name(layout.bin_for_str(target)), true)]
    }

    /// Keys and threshold for a delegated role name (listed, or one of the succinct bins).
    pub fn role_keys(&self, name: &RoleName) -> Option<RoleKeys> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .find(|r| &r.name == name)
                .map(DelegatedRole::role_keys);
        }
        let succinct = self.succinct_roles.as_ref()?;
        let layout = succinct.layout().ok()?;
        layout.bin_index(name).map(|_| succinct.role_keys())
    }
}

/// Targets metadata: top-level `targets`, the `bins` delegator, and every `bin-XXXX`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub type_: tags::TargetsType,
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "serde_expires")]
    pub expires: Time,
    pub targets: BTreeMap<TargetPath, TargetFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
}

impl Role for Targets {
    const TYPE: &'static str = "targets";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> Time {
        self.expires
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn validate(&self) -> Result<(), String> {
        validate_common(&self.spec_version, self.version)?;
        for (path, file) in &self.targets {
            if file.hashes.is_empty() {
                return Err(format!("target `{path}` lists no hashes"));
            }
        }
        if let Some(d) = &self.delegations {
            d.validate()?;
        }
        Ok(())
    }
}

/// Version (and optionally length and hashes) of a metadata file, as snapshot and timestamp
/// list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

impl MetaFile {
    /// Version only (how snapshot lists targets roles in tufa).
    pub fn new(version: u64) -> Self {
        Self {
            version,
            length: None,
            hashes: None,
        }
    }

    /// Version, length and sha256 of `data` (how timestamp lists snapshot).
    pub fn from_data(version: u64, data: &[u8]) -> Self {
        Self {
            version,
            length: Some(data.len() as u64),
            hashes: Some(BTreeMap::from([(
                "sha256".to_owned(),
                Sha256Digest::of(data).to_hex(),
            )])),
        }
    }

    /// Checks `data` against the listed length and hashes, where listed.
    pub fn verify(&self, what: &str, data: &[u8]) -> Result<(), TufError> {
        verify_length_and_hashes(what, data, self.length, self.hashes.as_ref())
    }

    fn validate(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("version must be at least 1".into());
        }
        if self.hashes.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err("hashes must not be empty".into());
        }
        Ok(())
    }
}

/// Snapshot metadata: the version of every targets role (`targets.json`, `bins.json`,
/// `bin-XXXX.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub type_: tags::SnapshotType,
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "serde_expires")]
    pub expires: Time,
    pub meta: BTreeMap<String, MetaFile>,
}

impl Role for Snapshot {
    const TYPE: &'static str = "snapshot";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> Time {
        self.expires
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn validate(&self) -> Result<(), String> {
        validate_common(&self.spec_version, self.version)?;
        for (name, meta) in &self.meta {
            meta.validate().map_err(|e| format!("meta `{name}`: {e}"))?;
        }
        Ok(())
    }
}

/// Timestamp metadata: version, length and hashes of the current snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub type_: tags::TimestampType,
    pub spec_version: String,
    pub version: u64,
    #[serde(with = "serde_expires")]
    pub expires: Time,
    pub meta: BTreeMap<String, MetaFile>,
}

impl Timestamp {
    pub const SNAPSHOT_META_KEY: &'static str = "snapshot.json";

    /// The `snapshot.json` entry.
    pub fn snapshot_meta(&self) -> Result<&MetaFile, TufError> {
        self.meta
            .get(Self::SNAPSHOT_META_KEY)
            .ok_or_else(|| TufError::MissingRole {
                role: RoleName::SNAPSHOT.to_owned(),
                listed_in: format!("timestamp v{}", self.version),
            })
    }
}

impl Role for Timestamp {
    const TYPE: &'static str = "timestamp";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> Time {
        self.expires
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn validate(&self) -> Result<(), String> {
        validate_common(&self.spec_version, self.version)?;
        let meta = self
            .meta
            .get(Self::SNAPSHOT_META_KEY)
            .ok_or("meta must list `snapshot.json`")?;
        meta.validate().map_err(|e| format!("meta `snapshot.json`: {e}"))
    }
}

/// One signature: the signing key's id and the signature bytes in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: KeyId,
    pub sig: String,
}

/// The metadata envelope: `{"signatures": [...], "signed": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub signatures: Vec<Signature>,
    pub signed: T,
}

/// Metadata parsed from bytes, with the canonical JSON of its `signed` object as received:
/// the exact bytes its signatures cover.
#[derive(Debug, Clone)]
pub struct ParsedMetadata<T> {
    pub metadata: Signed<T>,
    pub payload: Vec<u8>,
}

impl<T: Serialize> Signed<T> {
    /// Canonical JSON of `signed`: the bytes signatures are made over.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, TufError> {
        canonical::to_canonical(&self.signed)
    }

    /// The bytes of the metadata file (see [`canonical::to_json_file_bytes`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TufError> {
        canonical::to_json_file_bytes(&canonical::to_value(self)?)
    }

    /// Adds (or replaces) the signature of `signer`: how offline roles collect signatures one
    /// key holder at a time.
    pub fn add_signature(&mut self, signer: &dyn Signer) -> Result<(), TufError> {
        let payload = self.signed_bytes()?;
        let keyid = signer.keyid();
        let sig = hex::encode(signer.sign(&payload)?);
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature { keyid, sig });
        Ok(())
    }
}

impl<T: Role> Signed<T> {
    /// Parses metadata bytes of role type `T`. `what` names the file in errors.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<ParsedMetadata<T>, TufError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| TufError::Malformed {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
        let signed = value.get("signed").ok_or_else(|| TufError::Malformed {
            what: what.to_owned(),
            reason: "no `signed` object".into(),
        })?;
        match signed.get("_type").and_then(Value::as_str) {
            Some(t) if t == T::TYPE => {}
            other => {
                return Err(TufError::WrongType {
                    what: what.to_owned(),
                    expected: T::TYPE,
                    found: other.unwrap_or("(none)").to_owned(),
                });
            }
        }
        let payload = canonical::to_canonical_bytes(signed)?;
        let metadata: Signed<T> = serde_json::from_value(value).map_err(|e| TufError::Malformed {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
        metadata.signed.validate().map_err(|reason| TufError::Malformed {
            what: what.to_owned(),
            reason,
        })?;
        Ok(ParsedMetadata { metadata, payload })
    }
}

impl<T: Role> Signed<T> {
    /// Parses the metadata file `file_name` (`N.<role>.json`, `timestamp.json`, optionally
    /// after a directory): [`Signed::from_bytes`], plus, when the name carries a version, the
    /// check that the signed `version` is that version. A consistent-snapshot file name is a
    /// claim about the content; trusting it would let `1.targets.json` copied as
    /// `2.targets.json` pass for version 2.
    pub fn from_file(file_name: &str, bytes: &[u8]) -> Result<ParsedMetadata<T>, TufError> {
        let parsed = Self::from_bytes(file_name, bytes)?;
        check_file_version(file_name, parsed.metadata.signed.version())?;
        Ok(parsed)
    }
}

/// The version a consistent-snapshot file name carries: `7` for `7.snapshot.json` or
/// `tuf/7.bin-0a1f.json`; `None` for `timestamp.json` and other unversioned names.
pub fn file_name_version(file_name: &str) -> Option<u64> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (digits, rest) = base.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// Fails when `file_name` carries a version ([`file_name_version`]) other than
/// `signed_version`, naming the file and both versions.
pub fn check_file_version(file_name: &str, signed_version: u64) -> Result<(), TufError> {
    match file_name_version(file_name) {
        Some(named) if named != signed_version => Err(TufError::FileVersionMismatch {
            file: file_name.to_owned(),
            named,
            signed: signed_version,
        }),
        _ => Ok(()),
    }
}

/// Metadata of any of the four types, for tools that look at a file without knowing its role.
#[derive(Debug, Clone)]
pub enum Metadata {
    Root(ParsedMetadata<Root>),
    Targets(ParsedMetadata<Targets>),
    Snapshot(ParsedMetadata<Snapshot>),
    Timestamp(ParsedMetadata<Timestamp>),
}

impl Metadata {
    /// Parses bytes, dispatching on `signed._type`.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<Self, TufError> {
        #[derive(Deserialize)]
        struct Peek {
            signed: PeekSigned,
        }
        #[derive(Deserialize)]
        struct PeekSigned {
            #[serde(rename = "_type")]
            type_: String,
        }
        let peek: Peek = serde_json::from_slice(bytes).map_err(|e| TufError::Malformed {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(match peek.signed.type_.as_str() {
            Root::TYPE => Self::Root(Signed::from_bytes(what, bytes)?),
            Targets::TYPE => Self::Targets(Signed::from_bytes(what, bytes)?),
            Snapshot::TYPE => Self::Snapshot(Signed::from_bytes(what, bytes)?),
            Timestamp::TYPE => Self::Timestamp(Signed::from_bytes(what, bytes)?),
            other => {
                return Err(TufError::WrongType {
                    what: what.to_owned(),
                    expected: "root, targets, snapshot or timestamp",
                    found: other.to_owned(),
                });
            }
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Root(_) => Root::TYPE,
            Self::Targets(_) => Targets::TYPE,
            Self::Snapshot(_) => Snapshot::TYPE,
            Self::Timestamp(_) => Timestamp::TYPE,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Self::Root(m) => m.metadata.signed.version,
            Self::Targets(m) => m.metadata.signed.version,
            Self::Snapshot(m) => m.metadata.signed.version,
            Self::Timestamp(m) => m.metadata.signed.version,
        }
    }
}

/// Length and hash checks shared by targets and metadata files. Unknown algorithms fail, as in
/// python-tuf.
pub(crate) fn verify_length_and_hashes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), TufError> {
    let mut check = LengthAndHashes::new(what, length, hashes)?;
    check.update(data)?;
    check.finish()
}

/// One running hash of [`LengthAndHashes`].
#[derive(Clone)]
enum Running {
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Running {
    fn new(algorithm: &str) -> Option<Self> {
        Some(match algorithm {
            "sha224" => Self::Sha224(sha2::Sha224::new()),
            "sha256" => Self::Sha256(sha2::Sha256::new()),
            "sha384" => Self::Sha384(sha2::Sha384::new()),
            "sha512" => Self::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha224(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Sha224(h) => hex::encode(h.finalize()),
            Self::Sha256(h) => hex::encode(h.finalize()),
            Self::Sha384(h) => hex::encode(h.finalize()),
            Self::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The length and hash checks of signed metadata over bytes that arrive in pieces (a target
/// streamed to disk): [`LengthAndHashes::update`] fails as soon as more bytes arrive than
/// the signed length, [`LengthAndHashes::finish`] checks the length and every hash.
#[derive(Clone)]
pub struct LengthAndHashes {
    what: String,
    length: Option<u64>,
    seen: u64,
    hashes: Vec<(String, String, Running)>,
}

impl std::fmt::Debug for LengthAndHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LengthAndHashes")
            .field("what", &self.what)
            .field("length", &self.length)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl LengthAndHashes {
    /// Checks for `length` and `hashes` (where given). An algorithm this crate cannot compute
    /// fails here, before any byte is read.
    pub fn new(
        what: &str,
        length: Option<u64>,
        hashes: Option<&BTreeMap<String, String>>,
    ) -> Result<Self, TufError> {
        let mut running = Vec::new();
        for (algorithm, expected) in hashes.into_iter().flatten() {
            let hasher = Running::new(algorithm).ok_or_else(|| TufError::UnsupportedHash {
                what: what.to_owned(),
                algorithm: algorithm.clone(),
            })?;
            running.push((algorithm.clone(), expected.clone(), hasher));
        }
        Ok(Self {
            what: what.to_owned(),
            length,
            seen: 0,
            hashes: running,
        })
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) -> Result<(), TufError> {
        self.seen += data.len() as u64;
        if let Some(expected) = self.length
            && self.seen > expected
        {
            return Err(TufError::LengthMismatch {
                what: self.what.clone(),
                expected,
                found: self.seen,
            });
        }
        for (_, _, h) in &mut self.hashes {
            h.update(data);
        }
        Ok(())
    }

    /// Checks the length and every hash of everything fed.
    pub fn finish(self) -> Result<(), TufError> {
        if let Some(expected) = self.length
            && expected != self.seen
        {
            return Err(TufError::LengthMismatch {
                what: self.what,
                expected,
                found: self.seen,
            });
        }
        for (algorithm, expected, h) in self.hashes {
            let found = h.finish();
            if found != expected {
                return Err(TufError::HashMismatch {
                    what: self.what,
                    algorithm,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_expires;

    fn targets_json(extra: &str) -> String {
        format!(
            r#"{{"signatures":[],"signed":{{"_type":"targets","spec_version":"1.0.31","version":1,
            "expires":"2030-01-01T00:00:00Z","targets":{{"a/b.txt":{{"length":3,"hashes":{{"sha256":"{}"}}}}}}{extra}}}}}"#,
            Sha256Digest::of(b"abc")
        )
    }

    #[test]
    fn parse_keeps_payload_of_unknown_fields() {
        let json = targets_json(r#","x-extension":{"k":[1,2]}"#);
        let parsed = Signed::<Targets>::from_bytes("t.json", json.as_bytes()).unwrap();
        let payload = String::from_utf8(parsed.payload.clone()).unwrap();
        assert!(payload.contains(r#""x-extension":{"k":[1,2]}"#), "{payload}");
        // Re-serialising the typed model drops the extension: signatures must use `payload`.
        let reserialised = parsed.metadata.signed_bytes().unwrap();
        assert_ne!(reserialised, parsed.payload);
        let t = &parsed.metadata.signed;
        assert_eq!(t.expires, parse_expires("2030-01-01T00:00:00Z").unwrap());
        let file = &t.targets[&TargetPath::new("a/b.txt").unwrap()];
        file.verify("a/b.txt", b"abc").unwrap();
        assert!(file.verify("a/b.txt", b"abd").is_err());
        assert!(file.verify("a/b.txt", b"abcd").is_err());
        // In pieces: the same verdicts, and too many bytes fail as they arrive.
        let mut v = file.verifier("a/b.txt").unwrap();
        v.update(b"a").unwrap();
        v.update(b"bc").unwrap();
        v.finish().unwrap();
        let mut v = file.verifier("a/b.txt").unwrap();
        v.update(b"ab").unwrap();
        assert!(v.update(b"cd").is_err());
        let mut v = file.verifier("a/b.txt").unwrap();
        v.update(b"ab").unwrap();
        assert!(matches!(v.finish(), Err(TufError::LengthMismatch { .. })));
        let mut v = file.verifier("a/b.txt").unwrap();
        v.update(b"abd").unwrap();
        assert!(matches!(v.finish(), Err(TufError::HashMismatch { .. })));
    }

    #[test]
    fn parse_refuses_what_python_tuf_refuses() {
        let ok = targets_json("");
        assert!(Signed::<Targets>::from_bytes("t", ok.as_bytes()).is_ok());
        for (from, to) in [
            (r#""_type":"targets""#, r#""_type":"snapshot""#),
            (r#""spec_version":"1.0.31""#, r#""spec_version":"2.0.0""#),
            (r#""spec_version":"1.0.31""#, r#""spec_version":"1.x""#),
            (r#""version":1"#, r#""version":0"#),
            (r#""version":1"#, r#""version":1.0"#),
            (
                r#""expires":"2030-01-01T00:00:00Z""#,
                r#""expires":"2030-01-01T00:00:00.5Z""#,
            ),
            (r#""a/b.txt""#, r#""../b.txt""#),
        ] {
            let bad = ok.replace(from, to);
            assert_ne!(bad, ok);
            assert!(
                Signed::<Targets>::from_bytes("t", bad.as_bytes()).is_err(),
                "{to}"
            );
        }
        assert!(Signed::<Root>::from_bytes("t", ok.as_bytes()).is_err());
    }

    #[test]
    fn delegated_path_by_hash_prefix_and_pattern() {
        let mut role = DelegatedRole {
            name: RoleName::bins(),
            keyids: vec![],
            threshold: 1,
            terminating: true,
            paths: None,
            path_hash_prefixes: Some((0..16).map(|i| format!("{i:x}")).collect()),
        };
        assert!(role.is_delegated_path("any/path/at/all.txt"));
        let hash = Sha256Digest::of(b"x/y").to_hex();
        role.path_hash_prefixes = Some(vec![hash[..3].to_owned()]);
        assert!(role.is_delegated_path("x/y"));
        role.path_hash_prefixes = None;
        role.paths = Some(vec!["*".into()]);
        assert!(role.is_delegated_path("top.txt"));
        assert!(!role.is_delegated_path("dir/file.txt"));
    }

    #[test]
    fn metadata_enum_dispatches() {
        let json = targets_json("");
        let m = Metadata::from_bytes("t", json.as_bytes()).unwrap();
        assert_eq!(m.type_name(), "targets");
        assert_eq!(m.version(), 1);
    }
}
