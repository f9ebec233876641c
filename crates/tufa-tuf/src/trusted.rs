//! A TUF client's trusted metadata: the client workflow of the specification (§5.3 to §5.6)
//! as a state machine over bytes, with no I/O. The updater (`tufa-client`) fetches and stores;
//! this decides what may be trusted, in the order python-tuf's `TrustedMetadataSet` does, so
//! the two behave alike under the tuf-conformance suite:
//!
//! 1. [`TrustedMetadata::new`]: the trust anchor, signed by a threshold of its own root keys.
//! 2. [`TrustedMetadata::update_root`] for each next root (N+1, both thresholds: one rule,
//!    [`crate::verify_next_root`]).
//! 3. [`TrustedMetadata::update_timestamp`]: the final root must be unexpired; the new
//!    timestamp must not be older than the trusted one, nor list an older snapshot.
//! 4. [`TrustedMetadata::update_snapshot`]: length and hashes as timestamp lists them (unless
//!    read back from the client's own cache), no targets role older than in the trusted
//!    snapshot, none dropped, version exactly what timestamp lists, unexpired.
//! 5. [`TrustedMetadata::update_delegated_targets`]: listed in snapshot (version, length,
//!    hashes), signed by the threshold of the *delegator's* keys, unexpired.
//!
//! A role met again through another delegator is verified again against that delegator's
//! keys ([`TrustedMetadata::check_delegator`]): trust is not inherited from an earlier search
//! path (python-tuf 5.x does inherit it; tuf-conformance marks that as its one failure).

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp as Time;

use crate::metadata::{ParsedMetadata, RoleKeys, Signature};
use crate::verify::{check_expiry, verify_next_root, verify_payload, verify_trusted_root};
use crate::{Key, KeyId, RoleName, Root, Signed, Snapshot, Targets, Timestamp, TufError};

/// Verified metadata with what its signatures cover, kept to re-check it against another
/// delegator.
#[derive(Debug, Clone)]
struct Held<T> {
    signed: T,
    payload: Vec<u8>,
    signatures: Vec<Signature>,
}

impl<T> From<ParsedMetadata<T>> for Held<T> {
    fn from(p: ParsedMetadata<T>) -> Self {
        Self {
            signed: p.metadata.signed,
            payload: p.payload,
            signatures: p.metadata.signatures,
        }
    }
}

#[derive(Debug, Clone)]
struct HeldTargets {
    held: Held<Targets>,
    /// The role whose keys it was verified with (`root` for top-level `targets`).
    delegator: RoleName,
}

/// What [`TrustedMetadata::update_timestamp`] did with a valid timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted.
    Updated,
    /// Same version as the trusted one: nothing changed (the client keeps its snapshot).
    Unchanged,
}

/// The metadata a client trusts, and the rules for trusting more. See the module docs.
#[derive(Debug, Clone)]
pub struct TrustedMetadata {
    now: Time,
    root: Held<Root>,
    timestamp: Option<Held<Timestamp>>,
    snapshot: Option<Held<Snapshot>>,
    targets: HashMap<RoleName, HeldTargets>,
}

impl TrustedMetadata {
    /// Starts from a root the caller trusts as it is (shipped with the client, or the client's
    /// cached root). `now` is the reference time for every expiry check of this session.
    pub fn new(root: &[u8], now: Time) -> Result<Self, TufError> {
        let parsed = verify_trusted_root("trusted root.json", root)?;
        Ok(Self {
            now,
            root: parsed.into(),
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
        })
    }

    /// The reference time.
    pub fn now(&self) -> Time {
        self.now
    }

    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref().map(|h| &h.signed)
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(|h| &h.signed)
    }

    /// A trusted targets role (`targets` or a delegated role) loaded in this session.
    pub fn targets(&self, role: &RoleName) -> Option<&Targets> {
        self.targets.get(role).map(|h| &h.held.signed)
    }

    /// Trusts `bytes` (read from `file`, `N+1.root.json`) as the next root.
    pub fn update_root(&mut self, file: &str, bytes: &[u8]) -> Result<&Root, TufError> {
        if self.timestamp.is_some() {
            return Err(TufError::Workflow(
                "root cannot change once a timestamp is trusted",
            ));
        }
        let parsed = verify_next_root(&self.root.signed, file, bytes)?;
        self.root = parsed.into();
        Ok(&self.root.signed)
    }

    /// Trusts `bytes` as the timestamp, unless it is older than the trusted one. A valid but
    /// expired timestamp stays trusted (for the rollback checks of a later download) while
    /// the call fails with [`TufError::Expired`], as in python-tuf.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate, TufError> {
        if self.snapshot.is_some() {
            return Err(TufError::Workflow(
                "timestamp cannot change once a snapshot is trusted",
            ));
        }
        let root = &self.root.signed;
        // The final root must be fresh before anything it signs is used (spec 5.3.10).
        check_expiry(RoleName::ROOT, root.version, root.expires, self.now)?;
        let parsed = Signed::<Timestamp>::from_bytes("timestamp.json", bytes)?;
        check_signed(
            RoleName::TIMESTAMP,
            &parsed,
            &root.keys,
            root.role_keys(RoleName::TIMESTAMP)?,
        )?;
        let new = &parsed.metadata.signed;
        if let Some(old) = &self.timestamp {
            let old = &old.signed;
            if new.version < old.version {
                return Err(TufError::Rollback {
                    what: "timestamp".into(),
                    trusted: old.version,
                    new: new.version,
                });
            }
            if new.version == old.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            let (old_snap, new_snap) = (old.snapshot_meta()?.version, new.snapshot_meta()?.version);
            if new_snap < old_snap {
                return Err(TufError::Rollback {
                    what: format!("timestamp v{}'s snapshot.json", new.version),
                    trusted: old_snap,
                    new: new_snap,
                });
            }
        }
        self.timestamp = Some(parsed.into());
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    fn trusted_timestamp(&self) -> Result<&Timestamp, TufError> {
        self.timestamp
            .as_ref()
            .map(|h| &h.signed)
            .ok_or(TufError::Workflow("no trusted timestamp yet"))
    }

    fn check_final_timestamp(&self) -> Result<(), TufError> {
        let ts = self.trusted_timestamp()?;
        check_expiry(RoleName::TIMESTAMP, ts.version, ts.expires, self.now)
    }

    /// Trusts `bytes` (read from `file`) as the snapshot timestamp lists. `from_cache` is
    /// true for the client's own copy, which skips the length and hash check (timestamp may
    /// already list a newer snapshot; the copy is then kept only for its rollback checks and
    /// the call fails on the version).
    pub fn update_snapshot(
        &mut self,
        file: &str,
        bytes: &[u8],
        from_cache: bool,
    ) -> Result<&Snapshot, TufError> {
        if self.targets.contains_key(&RoleName::targets()) {
            return Err(TufError::Workflow(
                "snapshot cannot change once targets is trusted",
            ));
        }
        self.check_final_timestamp()?;
        let meta = self.trusted_timestamp()?.snapshot_meta()?;
        if !from_cache {
            meta.verify(file, bytes)?;
        }
        let parsed = Signed::<Snapshot>::from_bytes(file, bytes)?;
        let root = &self.root.signed;
        check_signed(
            RoleName::SNAPSHOT,
            &parsed,
            &root.keys,
            root.role_keys(RoleName::SNAPSHOT)?,
        )?;
        let new = &parsed.metadata.signed;
        if let Some(old) = &self.snapshot {
            for (name, info) in &old.signed.meta {
                let Some(now) = new.meta.get(name) else {
                    return Err(TufError::SnapshotDropsRole {
                        version: new.version,
                        meta: name.clone(),
                    });
                };
                if now.version < info.version {
                    return Err(TufError::Rollback {
                        what: format!("snapshot v{}'s {name}", new.version),
                        trusted: info.version,
                        new: now.version,
                    });
                }
            }
        }
        self.snapshot = Some(parsed.into());
        self.check_final_snapshot()?;
        Ok(&self
            .snapshot
            .as_ref()
            .ok_or(TufError::Workflow("snapshot vanished"))?
            .signed)
    }

    fn trusted_snapshot(&self) -> Result<&Snapshot, TufError> {
        self.snapshot
            .as_ref()
            .map(|h| &h.signed)
            .ok_or(TufError::Workflow("no trusted snapshot yet"))
    }

    /// What the trusted snapshot lists for targets role `role` (version, maybe length and
    /// hashes); a role it does not list is [`TufError::MissingRole`].
    pub fn snapshot_meta(&self, role: &RoleName) -> Result<&crate::MetaFile, TufError> {
        let snapshot = self.trusted_snapshot()?;
        snapshot
            .meta
            .get(&role.snapshot_meta_key())
            .ok_or_else(|| TufError::MissingRole {
                role: role.to_string(),
                listed_in: format!("snapshot v{}", snapshot.version),
            })
    }

    fn check_final_snapshot(&self) -> Result<(), TufError> {
        let snap = self.trusted_snapshot()?;
        check_expiry(RoleName::SNAPSHOT, snap.version, snap.expires, self.now)?;
        let expected = self.trusted_timestamp()?.snapshot_meta()?.version;
        if snap.version != expected {
            return Err(TufError::VersionMismatch {
                role: RoleName::SNAPSHOT.into(),
                expected,
                found: snap.version,
            });
        }
        Ok(())
    }

    /// The keys and threshold `delegator` trusts `role` with: root's `targets` role for
    /// `targets`, else the delegator's delegation.
    fn delegation_keys(
        &self,
        role: &RoleName,
        delegator: &RoleName,
    ) -> Result<(&BTreeMap<KeyId, Key>, RoleKeys), TufError> {
        if delegator.as_str() == RoleName::ROOT {
            let root = &self.root.signed;
            if role.as_str() != RoleName::TARGETS {
                return Err(TufError::Workflow("root delegates only the targets role"));
            }
            return Ok((&root.keys, root.role_keys(RoleName::TARGETS)?.clone()));
        }
        let parent = self
            .targets(delegator)
            .ok_or(TufError::Workflow("the delegator is not trusted yet"))?;
        let missing = || TufError::MissingRole {
            role: role.to_string(),
            listed_in: format!("{delegator} v{}", parent.version),
        };
        let delegations = parent.delegations.as_ref().ok_or_else(missing)?;
        let keys = delegations.role_keys(role).ok_or_else(missing)?;
        Ok((&delegations.keys, keys))
    }

    /// Trusts `bytes` (read from `file`) as targets role `role`, delegated by `delegator`
    /// (`root` for the top-level `targets`).
    pub fn update_delegated_targets(
        &mut self,
        file: &str,
        bytes: &[u8],
        role: &RoleName,
        delegator: &RoleName,
    ) -> Result<&Targets, TufError> {
        self.check_final_snapshot()?;
        let meta = self.snapshot_meta(role)?;
        meta.verify(file, bytes)?;
        let expected = meta.version;
        let parsed = Signed::<Targets>::from_bytes(file, bytes)?;
        let (keys, authorised) = self.delegation_keys(role, delegator)?;
        check_signed(role.as_str(), &parsed, keys, &authorised)?;
        let new = &parsed.metadata.signed;
        if new.version != expected {
            return Err(TufError::VersionMismatch {
                role: role.to_string(),
                expected,
                found: new.version,
            });
        }
        check_expiry(role.as_str(), new.version, new.expires, self.now)?;
        let held = HeldTargets {
            held: parsed.into(),
            delegator: delegator.clone(),
        };
        self.targets.insert(role.clone(), held);
        self.targets(role)
            .ok_or(TufError::Workflow("targets role vanished"))
    }

    /// Checks that trusted role `role` is signed by the threshold `delegator` requires. A role
    /// reached again through another delegator must satisfy that delegator too.
    pub fn check_delegator(&self, role: &RoleName, delegator: &RoleName) -> Result<(), TufError> {
        let held = self
            .targets
            .get(role)
            .ok_or(TufError::Workflow("the role is not trusted yet"))?;
        if &held.delegator == delegator {
            return Ok(());
        }
        let (keys, authorised) = self.delegation_keys(role, delegator)?;
        verify_payload(
            role.as_str(),
            held.held.signed.version,
            &held.held.payload,
            &held.held.signatures,
            keys,
            &authorised,
        )
    }
}

fn check_signed<T: crate::Role>(
    role: &str,
    parsed: &ParsedMetadata<T>,
    keys: &BTreeMap<KeyId, Key>,
    authorised: &RoleKeys,
) -> Result<(), TufError> {
    verify_payload(
        role,
        parsed.metadata.signed.version(),
        &parsed.payload,
        &parsed.metadata.signatures,
        keys,
        authorised,
    )
}
