//! Where the online key lives, and how it is rotated.
//!
//! The online key (bin-n, snapshot, timestamp) is either a key file (`[tuf] online_key`) or a
//! key pair in a PKCS#11 token (`[tuf.online_pkcs11]`). Beside the configured ("current") key
//! there is room for the **next** key, made ahead of a rotation and promoted by `tufa
//! import-metadata` once the ceremony's root names it:
//!
//! | | current | next | retired |
//! |---|---|---|---|
//! | file | `keys/online.json` | `keys/online.next.json` | `keys/online.retired-<keyid8>.json` |
//! | PKCS#11 | label `<key>` | label `<key>.next` | label `<key>.retired-<keyid8>` |
//!
//! Promotion is two moves, current → retired, then next → current (renames with a directory
//! fsync, or relabels). A kill between them leaves no current key and a next key: the next
//! `tufa import-metadata` sees exactly that and does the second move only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tufa_tuf::{Ed25519Signer, KeyId, Signer};

use crate::config::Loaded;
use crate::tuf_cmd::Pkcs11Settings;

/// Which of the two keys a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The key the mirror signs with.
    Current,
    /// The key made for the next rotation, waiting for a root that names it.
    Next,
}

/// The configured online key's home: a key file's path or a token and label.
#[derive(Debug, Clone)]
pub enum OnlineKey {
    File {
        /// `[tuf] online_key`, resolved against the config file's directory.
        current: PathBuf,
    },
    Pkcs11(Pkcs11Settings),
}

/// The first 8 hex digits of a key id: enough to tell retired keys apart in a name.
fn short(keyid: &KeyId) -> String {
    keyid.to_hex().chars().take(8).collect()
}

impl OnlineKey {
    /// The online key the config names; `None` when it names none (unsigned mirror).
    pub fn from_config(loaded: &Loaded) -> Option<Self> {
        let t = &loaded.config.tuf;
        if let Some(path) = &t.online_key {
            return Some(Self::File {
                current: loaded.base_dir.join(path),
            });
        }
        t.online_pkcs11.clone().map(Self::Pkcs11)
    }

    /// `keys/online.json` → `keys/online<suffix>.json`.
    fn sibling(current: &Path, suffix: &str) -> PathBuf {
        let stem = current
            .file_stem()
            .map_or_else(|| "online".into(), |s| s.to_string_lossy().into_owned());
        current.with_file_name(format!("{stem}{suffix}.json"))
    }

    fn path(current: &Path, slot: Slot) -> PathBuf {
        match slot {
            Slot::Current => current.to_path_buf(),
            Slot::Next => Self::sibling(current, ".next"),
        }
    }

    fn label(p: &Pkcs11Settings, slot: Slot) -> String {
        match slot {
            Slot::Current => p.key.clone(),
            Slot::Next => format!("{}.next", p.key),
        }
    }

    /// Where the key of `slot` is, for messages: "`keys/online.json`" or "PKCS#11 key
    /// `online` on token `mirror`".
    pub fn describe(&self, slot: Slot) -> String {
        match self {
            Self::File { current } => format!("`{}`", Self::path(current, slot).display()),
            Self::Pkcs11(p) => format!("PKCS#11 key `{}` on token `{}`", Self::label(p, slot), p.token),
        }
    }

    /// The key of `slot`; `None` when it does not exist (no such file, no such label).
    pub fn load(&self, slot: Slot) -> anyhow::Result<Option<Arc<dyn Signer>>> {
        match self {
            Self::File { current } => {
                let path = Self::path(current, slot);
                let exists = path
                    .try_exists()
                    .with_context(|| format!("cannot look for the online key `{}`", path.display()))?;
                if !exists {
                    return Ok(None);
                }
                let key = Ed25519Signer::read_insecure_plaintext(&path)
                    .map_err(|e| anyhow::anyhow!("online key `{}`: {e}", path.display()))?;
                Ok(Some(Arc::new(key)))
            }
            Self::Pkcs11(p) => {
                let cfg = p.config_for(&Self::label(p, slot))?;
                match tufa_pkcs11::Pkcs11Signer::open(&cfg) {
                    Ok(signer) => Ok(Some(Arc::new(signer))),
                    Err(tufa_pkcs11::Pkcs11Error::KeyNotFound { .. }) => Ok(None),
                    Err(e) => Err(anyhow::anyhow!("tuf.online_pkcs11: {e}")),
                }
            }
        }
    }

    /// Creates the key of `slot`: a new key file (its directory made, mode 0700, when
    /// missing; never overwriting a file) or a key pair inside the token.
    pub fn generate(&self, slot: Slot) -> anyhow::Result<Arc<dyn Signer>> {
        match self {
            Self::File { current } => {
                let path = Self::path(current, slot);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir)?;
                }
                let key = Ed25519Signer::generate();
                key.write_insecure_plaintext(&path)
                    .map_err(|e| anyhow::anyhow!("cannot write the online key `{}`: {e}", path.display()))?;
                tracing::info!(path = %path.display(), keyid = %key.keyid(), "created an online key");
                Ok(Arc::new(key))
            }
            Self::Pkcs11(p) => {
                let cfg = p.config_for(&Self::label(p, slot))?;
                let signer = tufa_pkcs11::Pkcs11Signer::generate(&cfg)
                    .map_err(|e| anyhow::anyhow!("tuf.online_pkcs11: {e}"))?;
                Ok(Arc::new(signer))
            }
        }
    }

    /// First move of a promotion: the current key (`keyid`) becomes a retired key. Returns
    /// where it went, for the operator.
    pub fn retire_current(&self, keyid: &KeyId) -> anyhow::Result<String> {
        match self {
            Self::File { current } => {
                let retired = Self::sibling(current, &format!(".retired-{}", short(keyid)));
                if retired.exists() {
                    anyhow::bail!(
                        "cannot retire the online key `{}`: `{}` exists already; move it away and run the import again",
                        current.display(),
                        retired.display()
                    );
                }
                rename_durably(current, &retired)?;
                Ok(format!("`{}`", retired.display()))
            }
            Self::Pkcs11(p) => {
                let label = format!("{}.retired-{}", p.key, short(keyid));
                tufa_pkcs11::Pkcs11Signer::relabel(&p.config_for(&p.key)?, &label)
                    .map_err(|e| anyhow::anyhow!("tuf.online_pkcs11: retiring the online key: {e}"))?;
                Ok(format!("PKCS#11 key `{label}` on token `{}`", p.token))
            }
        }
    }

    /// Second move of a promotion: the next key becomes the current one. Refuses while a
    /// current key exists (retire it first).
    pub fn promote_next(&self) -> anyhow::Result<()> {
        match self {
            Self::File { current } => {
                if current.exists() {
                    anyhow::bail!(
                        "cannot promote the next online key: `{}` still exists",
                        current.display()
                    );
                }
                rename_durably(&Self::path(current, Slot::Next), current)
            }
            Self::Pkcs11(p) => {
                tufa_pkcs11::Pkcs11Signer::relabel(&p.config_for(&Self::label(p, Slot::Next))?, &p.key)
                    .map_err(|e| anyhow::anyhow!("tuf.online_pkcs11: promoting the next online key: {e}"))?;
                Ok(())
            }
        }
    }
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the key directory `{}`", dir.display()))
}

/// `rename(from, to)`, then fsync of the directory, so the new name survives a power loss.
fn rename_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot rename `{}` to `{}`", from.display(), to.display()))?;
    let dir = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory `{}`", dir.display()))?;
    tracing::info!(from = %from.display(), to = %to.display(), "renamed online key file");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn next_and_retired_files_sit_beside_the_configured_one() {
        let key = Path::new("/m/keys/online.json");
        assert_eq!(
            OnlineKey::path(key, Slot::Next),
            Path::new("/m/keys/online.next.json")
        );
        assert_eq!(
            OnlineKey::sibling(key, ".retired-0123abcd"),
            Path::new("/m/keys/online.retired-0123abcd.json")
        );
        // A key file named without `.json` still gets `.json` siblings.
        assert_eq!(
            OnlineKey::path(Path::new("k/online.key"), Slot::Next),
            Path::new("k/online.next.json")
        );
    }

    #[test]
    fn file_promotion_and_recovery_after_a_kill_between_the_renames() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("keys/online.json");
        let key = OnlineKey::File {
            current: current.clone(),
        };
        assert!(key.load(Slot::Current).unwrap().is_none());
        let old = key.generate(Slot::Current).unwrap().keyid();
        let new = key.generate(Slot::Next).unwrap().keyid();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        // The first move only (a kill before the second): no current key, the next waits.
        let retired = key.retire_current(&old).unwrap();
        assert!(
            retired.contains(&format!("online.retired-{}.json", short(&old))),
            "{retired}"
        );
        assert!(key.load(Slot::Current).unwrap().is_none());
        assert_eq!(key.load(Slot::Next).unwrap().unwrap().keyid(), new);
        // Promoting is refused while a current key exists, and works once it is retired.
        key.promote_next().unwrap();
        assert_eq!(key.load(Slot::Current).unwrap().unwrap().keyid(), new);
        assert!(key.load(Slot::Next).unwrap().is_none());
        let kept = OnlineKey::sibling(&current, &format!(".retired-{}", short(&old)));
        assert_eq!(
            Ed25519Signer::read_insecure_plaintext(&kept).unwrap().keyid(),
            old
        );
        key.generate(Slot::Next).unwrap();
        let err = key.promote_next().unwrap_err().to_string();
        assert!(err.contains("still exists"), "{err}");
    }
}
