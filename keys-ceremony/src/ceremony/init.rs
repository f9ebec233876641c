//! `init`: a new ceremony directory with unsigned root, targets and bins version 1.

use std::path::Path;

use jiff::Timestamp as Time;
use tufa_tuf::build::{self, RoleKeySet, RootKeys};
use tufa_tuf::{BinLayout, Signed, format_expires};

use super::keys::{check_distinct, check_threshold};
use super::{CEREMONY_FORMAT, Ceremony, CeremonyConfig, Holders, PENDING_DIR, PUBLISHED_DIR, Report};
use crate::error::{CeremonyError, Result};
use crate::fsutil;
use crate::keyfile::PublicKeyFile;
use crate::source::{short, short8};
use crate::types::{ExpiryDays, Threshold};

/// Options of `init`. Key lists are in the order given: that is the holder order of every
/// listing.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub root_keys: Vec<PublicKeyFile>,
    pub root_threshold: Threshold,
    pub targets_keys: Vec<PublicKeyFile>,
    pub targets_threshold: Threshold,
    pub bins_keys: Vec<PublicKeyFile>,
    pub bins_threshold: Threshold,
    pub online_key: PublicKeyFile,
    pub bins_layout: BinLayout,
    pub expires_days: ExpiryDays,
}

impl Ceremony {
    /// Sets up a new ceremony directory with `pending/1.root.json`, `1.targets.json` and
    /// `1.bins.json`, unsigned.
    ///
    /// A threshold above the number of keys given is a usage error; a key given twice for a
    /// role, or the online key among the offline keys, a failure naming the key.
    pub fn init(dir: &Path, opts: &InitOptions, now: Time) -> Result<(Self, Report)> {
        for (role, flag, keys, t) in [
            ("root", "root", &opts.root_keys, opts.root_threshold),
            ("targets", "targets", &opts.targets_keys, opts.targets_threshold),
            ("bins", "bins", &opts.bins_keys, opts.bins_threshold),
        ] {
            check_threshold(
                role,
                t.get(),
                keys.len(),
                &format!("give more --{flag}-key files or a lower --{flag}-threshold"),
                CeremonyError::Usage,
            )?;
        }
        let online = &opts.online_key;
        for (role, keys) in [
            ("root", &opts.root_keys),
            ("targets", &opts.targets_keys),
            ("bins", &opts.bins_keys),
        ] {
            if let Some(k) = keys.iter().find(|k| k.key.identity() == online.key.identity()) {
                return Err(CeremonyError::Keys(format!(
                    "the online key `{}` ({}) is also given as a {role} key ({}); the online key lives on the mirror and must be separate from the offline keys",
                    short8(&online.keyid),
                    online.describe(),
                    k.describe()
                )));
            }
            check_distinct(role, keys)?;
        }
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(CeremonyError::io(dir))?;
            if entries.next().is_some() {
                return Err(CeremonyError::Ceremony {
                    dir: dir.to_owned(),
                    reason: "exists and is not empty; a ceremony needs a new (or empty) directory".into(),
                });
            }
        }
        let expires = opts.expires_days.expires_from(now)?;
        let set = |keys: &[PublicKeyFile], t: Threshold| {
            RoleKeySet::new(keys.iter().map(|k| k.key.clone()).collect(), t.get())
        };
        let online_set = RoleKeySet::single(online.key.clone());
        let root_keys = RootKeys {
            root: set(&opts.root_keys, opts.root_threshold),
            targets: set(&opts.targets_keys, opts.targets_threshold),
            snapshot: online_set.clone(),
            timestamp: online_set.clone(),
        };
        let root = build::new_root(&root_keys, 1, expires)?;
        let targets =
            build::new_targets_delegating_to_bins(&set(&opts.bins_keys, opts.bins_threshold), 1, expires)?;
        let bins = build::new_bins_delegator(&opts.bins_layout, &online_set, 1, expires)?;

        let mut holders = Holders::default();
        for k in opts
            .root_keys
            .iter()
            .chain(&opts.targets_keys)
            .chain(&opts.bins_keys)
            .chain([online])
        {
            holders.insert(k.keyid, &k.holder);
        }
        let config = CeremonyConfig {
            format: CEREMONY_FORMAT.to_owned(),
            bins_bit_length: opts.bins_layout.bit_length(),
            expires_days: opts.expires_days,
            holders,
        };
        std::fs::create_dir_all(dir.join(PENDING_DIR)).map_err(CeremonyError::io(dir))?;
        std::fs::create_dir_all(dir.join(PUBLISHED_DIR)).map_err(CeremonyError::io(dir))?;
        let ceremony = Self {
            dir: dir.to_owned(),
            config,
        };
        ceremony.save_config()?;
        let pending = dir.join(PENDING_DIR);
        let unsigned_root = Signed {
            signatures: Vec::new(),
            signed: root,
        };
        fsutil::write_new(&pending.join("1.root.json"), &unsigned_root.to_bytes()?, false)?;
        for (name, t) in [("1.targets.json", targets), ("1.bins.json", bins)] {
            let unsigned = Signed {
                signatures: Vec::new(),
                signed: t,
            };
            fsutil::write_new(&pending.join(name), &unsigned.to_bytes()?, false)?;
        }

        let mut report = Report::default();
        report.line(format!("created ceremony {}", dir.display()));
        report.line(format!(
            "pending/1.root.json: root keys {} (threshold {}), targets keys {} (threshold {}), online key {} for snapshot and timestamp",
            opts.root_keys.len(),
            opts.root_threshold,
            opts.targets_keys.len(),
            opts.targets_threshold,
            short(&online.keyid)
        ));
        report.line(format!(
            "pending/1.targets.json: delegates every target to `bins` (keys {}, threshold {})",
            opts.bins_keys.len(),
            opts.bins_threshold
        ));
        report.line(format!(
            "pending/1.bins.json: delegates {} hashed bins (bit length {}) to the online key",
            opts.bins_layout.bin_count(),
            opts.bins_layout.bit_length()
        ));
        report.line(format!("everything expires {}", format_expires(expires)));
        if opts.root_threshold.get() < 2 {
            report.warn(
                "root threshold is 1: production roots need at least 2 signatures from separate people",
            );
        }
        Ok((ceremony, report))
    }
}
