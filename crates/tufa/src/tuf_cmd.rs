//! TUF keys and signing for the CLI: the `[tuf]` config, `init --dev-keys`, `tufa online-key`,
//! what sync and refresh sign with (and what they say when they cannot), `tufa refresh`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use tufa_index::Index;
use tufa_publish::PublishOptions;
use tufa_publish::tuf::{DevOfflineKeys, ROLE_ROOT, TufSigning};
use tufa_store::BlobStore;
use tufa_tuf::build::Expiries;
use tufa_tuf::{BinLayout, Ed25519Signer, Signer as _};

use crate::config::Loaded;
use crate::online_key::{OnlineKey, Slot};

/// `[tuf]` in tufa.toml. Without `online_key`, tufa publishes unsigned pages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TufConfig {
    /// The online key (bin-n, snapshot, timestamp), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_key: Option<PathBuf>,
    /// The online key inside a PKCS#11 token (HSM, YubiKey) instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_pkcs11: Option<Pkcs11Settings>,
    /// INSECURE: a directory with root/targets/bins keys on the mirror host, so tufa can create
    /// the first offline metadata itself. For trials only (`tufa init --dev-keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_dev_keys: Option<PathBuf>,
    /// log2 of the number of hashed bins (14 → 16,384 bins, PEP 458's layout). Fixed once the
    /// first metadata is published.
    #[serde(default = "default_bits")]
    pub bins_bit_length: u8,
    /// Lifetime of the online roles, in hours.
    #[serde(default = "default_online_hours")]
    pub bin_n_expiry_hours: u32,
    #[serde(default = "default_online_hours")]
    pub snapshot_expiry_hours: u32,
    #[serde(default = "default_online_hours")]
    pub timestamp_expiry_hours: u32,
}

/// `[tuf.online_pkcs11]`: where the online key lives in a token. The PIN is read from the
/// environment variable `pin_env`, never from the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Settings {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so` or a vendor's library.
    pub module: PathBuf,
    /// Token label.
    pub token: String,
    /// Key label (`CKA_LABEL`).
    pub key: String,
    /// Environment variable holding the user PIN.
    #[serde(default = "default_pin_env")]
    pub pin_env: String,
}

/// The PIN variable when `pin_env` is not set.
pub const DEFAULT_PIN_ENV: &str = "TUFA_PKCS11_PIN";

fn default_pin_env() -> String {
    DEFAULT_PIN_ENV.to_owned()
}

impl Pkcs11Settings {
    /// The token login for the key pair labelled `key_label` (the configured key, or the
    /// next or a retired one beside it).
    pub(crate) fn config_for(&self, key_label: &str) -> anyhow::Result<tufa_pkcs11::Pkcs11Config> {
        let pin = std::env::var(&self.pin_env).map_err(|_| {
            anyhow::anyhow!(
                "tuf.online_pkcs11: set the token PIN in the environment variable {}",
                self.pin_env
            )
        })?;
        Ok(tufa_pkcs11::Pkcs11Config {
            module: self.module.clone(),
            token_label: self.token.clone(),
            pin,
            key_label: key_label.to_owned(),
        })
    }
}

fn default_bits() -> u8 {
    14
}
fn default_online_hours() -> u32 {
    24
}

impl Default for TufConfig {
    fn default() -> Self {
        Self {
            online_key: None,
            online_pkcs11: None,
            insecure_dev_keys: None,
            bins_bit_length: default_bits(),
            bin_n_expiry_hours: default_online_hours(),
            snapshot_expiry_hours: default_online_hours(),
            timestamp_expiry_hours: default_online_hours(),
        }
    }
}

impl TufConfig {
    pub fn layout(&self) -> anyhow::Result<BinLayout> {
        BinLayout::new(self.bins_bit_length)
            .map_err(|e| anyhow::anyhow!("tuf.bins_bit_length = {}: {e}", self.bins_bit_length))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.layout()?;
        if self.online_key.is_some() && self.online_pkcs11.is_some() {
            anyhow::bail!("tuf: set either online_key or [tuf.online_pkcs11], not both");
        }
        for (key, h) in [
            ("bin_n_expiry_hours", self.bin_n_expiry_hours),
            ("snapshot_expiry_hours", self.snapshot_expiry_hours),
            ("timestamp_expiry_hours", self.timestamp_expiry_hours),
        ] {
            if h == 0 {
                anyhow::bail!("tuf.{key} must be at least 1");
            }
        }
        Ok(())
    }
}

const DEV_KEY_FILES: [&str; 4] = ["root.json", "targets.json", "bins.json", "online.json"];

/// Writes four fresh INSECURE plaintext keys into `dir` (created with mode 0700; each key
/// file 0600).
pub fn write_dev_keys(dir: &Path) -> anyhow::Result<()> {
    crate::online_key::create_private_dir(dir)?;
    for name in DEV_KEY_FILES {
        let path = dir.join(name);
        Ed25519Signer::generate()
            .write_insecure_plaintext(&path)
            .map_err(|e| anyhow::anyhow!("cannot write key `{}`: {e}", path.display()))?;
    }
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<Ed25519Signer> {
    Ed25519Signer::read_insecure_plaintext(path).map_err(|e| anyhow::anyhow!("key `{}`: {e}", path.display()))
}

/// The TUF role versions the index recorded, read off the reactor.
pub(crate) async fn tuf_roles(
    index: &Index,
) -> anyhow::Result<std::collections::BTreeMap<String, (u64, i64)>> {
    let idx = index.clone();
    Ok(tokio::task::spawn_blocking(move || idx.tuf_roles()).await??)
}

/// The published `N.<role>.json`, parsed (its signed version checked against its name).
pub(crate) async fn published<T: tufa_tuf::Role + serde::de::DeserializeOwned + serde::Serialize>(
    store: &BlobStore,
    name: &str,
) -> anyhow::Result<tufa_tuf::Signed<T>> {
    let bytes = store
        .get_named(&tufa_tree::tuf_key(name))
        .await?
        .with_context(|| format!("the mirror's `{name}` is missing from the published tree"))?;
    Ok(tufa_tuf::Signed::<T>::from_file(name, &bytes)
        .map_err(|e| anyhow::anyhow!("the mirror's {e}"))?
        .metadata)
}

/// The key ids `root` gives a role, space-separated.
pub(crate) fn keyids(root: &tufa_tuf::Root, role: &str) -> String {
    root.roles.get(role).map_or_else(
        || "none".to_owned(),
        |k| {
            k.keyids
                .iter()
                .map(tufa_tuf::KeyId::to_hex)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// Whether the online key is there to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// No online key in the config: the operator chose an unsigned mirror.
    NotConfigured,
    /// The config names an online key that does not exist yet, and no TUF metadata is
    /// published: a new mirror syncing before its key ceremony. The value says where the key
    /// should be.
    NotCreated(String),
    /// The key is loaded ([`PublishOptions::tuf`] is set).
    Loaded,
}

/// What a publish signs with, and why it does not when it does not.
#[derive(Debug)]
pub struct Publishing {
    pub options: PublishOptions,
    pub status: KeyStatus,
}

/// The publish options the config asks for, with keys loaded, checked against what the mirror
/// publishes:
/// - no online key configured, or configured but not created while no TUF metadata is
///   published: unsigned publishing ([`KeyStatus`] says which, [`report`] warns);
/// - the key is missing but TUF metadata is published: an error naming the key (publishing
///   unsigned pages would drop the mirror's signatures);
/// - the key is not the one the published root and bins name: an error saying how to rotate.
pub async fn publishing(loaded: &Loaded, store: &BlobStore, index: &Index) -> anyhow::Result<Publishing> {
    refuse_empty_index_over_published_store(loaded, store, index).await?;
    let t = &loaded.config.tuf;
    let layout = t.layout()?;
    let policy = std::sync::Arc::new(loaded.load_policy()?);
    let unsigned = |status| Publishing {
        options: PublishOptions {
            layout: layout.clone(),
            tuf: None,
            force_timestamp: false,
            concurrency: loaded.config.sync.concurrency.publish,
            policy: Some(std::sync::Arc::clone(&policy)),
        },
        status,
    };
    let Some(key) = OnlineKey::from_config(loaded) else {
        return Ok(unsigned(KeyStatus::NotConfigured));
    };
    let roles = tuf_roles(index).await?;
    let root_version = roles.get(ROLE_ROOT).map(|(v, _)| *v);
    let Some(online) = key.load(Slot::Current)? else {
        let Some(v) = root_version else {
            return Ok(unsigned(KeyStatus::NotCreated(key.describe(Slot::Current))));
        };
        return Err(missing_key(loaded, &key, store, v).await);
    };
    if let Some(problem) = tufa_publish::tuf::online_key_problem(store, &roles, &online.keyid()).await? {
        anyhow::bail!(
            "{problem} ({}): every client would reject what it signs. To sign with this key, import the key ceremony's root and bins that name it with `{}`; to prepare a rotation while the mirror keeps signing, keep the current key and create the new one with `{}`",
            key.describe(Slot::Current),
            loaded.command("import-metadata DIR"),
            loaded.command("online-key generate --next --public-out online-next.pub.json"),
        );
    }
    let insecure_dev_offline = match &t.insecure_dev_keys {
        Some(dir) => {
            let dir = loaded.base_dir.join(dir);
            Some(DevOfflineKeys {
                root: Arc::new(read_key(&dir.join("root.json"))?),
                targets: Arc::new(read_key(&dir.join("targets.json"))?),
                bins: Arc::new(read_key(&dir.join("bins.json"))?),
            })
        }
        None => None,
    };
    let hours = |h: u32| SignedDuration::from_hours(i64::from(h));
    let expiries = Expiries {
        bin_n: hours(t.bin_n_expiry_hours),
        snapshot: hours(t.snapshot_expiry_hours),
        timestamp: hours(t.timestamp_expiry_hours),
        ..Expiries::default()
    };
    Ok(Publishing {
        options: PublishOptions {
            layout,
            tuf: Some(TufSigning {
                online,
                insecure_dev_offline,
                expiries,
            }),
            force_timestamp: false,
            concurrency: loaded.config.sync.concurrency.publish,
            policy: Some(std::sync::Arc::clone(&policy)),
        },
        status: KeyStatus::Loaded,
    })
}

/// Refuses to publish from an index that knows nothing (no project, no TUF role, nothing to
/// unpublish) into a store that already holds a published mirror: this writer's index is new
/// or was lost. Publishing from it would restart every TUF version (clients reject that as a
/// rollback; with dev keys it would even replace `1.root.json`), so the index must be restored
/// first.
pub async fn refuse_empty_index_over_published_store(
    loaded: &Loaded,
    store: &BlobStore,
    index: &Index,
) -> anyhow::Result<()> {
    let idx = index.clone();
    let knows_nothing = tokio::task::spawn_blocking(move || -> Result<bool, tufa_index::IndexError> {
        // Dirty projects without records are removals still to unpublish: not a lost index.
        Ok(idx.has_no_projects()? && idx.tuf_roles()?.is_empty() && idx.dirty_projects()?.is_empty())
    })
    .await??;
    if !knows_nothing {
        return Ok(());
    }
    let mut found = Vec::new();
    if store
        .get_named(&tufa_tree::tuf_key("1.root.json"))
        .await?
        .is_some()
    {
        found.push(format!("`{}`", tufa_tree::tuf_key("1.root.json")));
    }
    if let Some(project) = futures::StreamExt::next(&mut tufa_tree::published_projects(store)).await {
        found.push(format!("project manifests (`{}`, …)", project?));
    }
    if found.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the index `{}` is empty, but the store {} already holds a published mirror ({}): this host's index is new or was lost. Restore it from the store with `{}` first (stop any other writer before); publishing from an empty index would start every TUF version again, which clients reject as a rollback",
        loaded.index_path.display(),
        store.describe(),
        found.join(", "),
        loaded.command("rebuild-index"),
    )
}

/// The error for a configured online key that is gone while TUF metadata is published.
async fn missing_key(
    loaded: &Loaded,
    key: &OnlineKey,
    store: &BlobStore,
    root_version: u64,
) -> anyhow::Error {
    let name = format!("{root_version}.root.json");
    let expected = match published::<tufa_tuf::Root>(store, &name).await {
        Ok(root) => format!(", whose timestamp key is {}", keyids(&root.signed, "timestamp")),
        Err(_) => String::new(),
    };
    let next = match key.load(Slot::Next) {
        Ok(Some(next)) => format!(
            ". {} holds the next key {}: if a rotation was interrupted, finish it by importing the ceremony's export that names it again (`{}`)",
            key.describe(Slot::Next),
            next.keyid(),
            loaded.command("import-metadata DIR")
        ),
        _ => String::new(),
    };
    anyhow::anyhow!(
        "the online key {} is missing, but this mirror publishes TUF metadata (root v{root_version}{expected}): restore the key from its backup; without it the mirror cannot sign{next}",
        key.describe(Slot::Current)
    )
}

/// Prints what TUF signing did, or the one warning that says why it did not and what to do.
pub fn report(loaded: &Loaded, publishing: &Publishing, report: &tufa_publish::PublishReport) {
    let import = loaded.command("import-metadata DIR");
    match (&publishing.status, &report.tuf) {
        (KeyStatus::NotConfigured, _) => eprintln!(
            "warning: no TUF online key configured ([tuf] online_key or [tuf.online_pkcs11] in {}): pages are published unsigned",
            loaded.path.display()
        ),
        (KeyStatus::NotCreated(what), _) => eprintln!(
            "warning: the online key {what} does not exist yet: pages are published unsigned. Create it with `{}`, take the public key to the key ceremony (docs/KEY-CEREMONY.md), then import the ceremony's metadata with `{import}`",
            loaded.command("online-key generate --public-out online.pub.json"),
        ),
        (KeyStatus::Loaded, None) => eprintln!(
            "warning: no TUF root metadata yet: pages are published unsigned until the key ceremony's metadata is imported with `{import}` (the ceremony needs the online public key: `{}`)",
            loaded.command("online-key show --public-out online.pub.json"),
        ),
        (KeyStatus::Loaded, Some(t)) if t.files_written == 0 => {
            println!(
                "TUF metadata unchanged (snapshot v{}, timestamp v{})",
                t.snapshot_version, t.timestamp_version
            )
        }
        (KeyStatus::Loaded, Some(t)) if t.bins_signed == 0 && t.files_written == 1 => {
            println!(
                "signed timestamp v{} (snapshot v{} unchanged)",
                t.timestamp_version, t.snapshot_version
            )
        }
        (KeyStatus::Loaded, Some(t)) => println!(
            "signed {} bins, snapshot v{} ({} bytes), timestamp v{}{}",
            t.bins_signed,
            t.snapshot_version,
            t.snapshot_bytes,
            t.timestamp_version,
            if t.bootstrapped {
                " (created root/targets/bins v1 with INSECURE dev keys)"
            } else {
                ""
            }
        ),
    }
}

/// Publishes (`tufa_publish::publish`), prints the report, and, on a dev-key mirror, records
/// which `1.root.json` the dev keys made (see [`dev_root_marker`]).
pub async fn publish_and_report(
    loaded: &Loaded,
    store: &BlobStore,
    index: &Index,
    publishing: &Publishing,
) -> anyhow::Result<tufa_publish::PublishReport> {
    let published = tufa_publish::publish(store, index, &publishing.options).await?;
    mark_published(store, &published).await?;
    report(loaded, publishing, &published);
    after_publish(loaded, store, publishing).await;
    Ok(published)
}

/// Writes the publish pointer (`published/current.json`), last: readers that poll it switch
/// to the new state only now that all of it is stored.
pub async fn mark_published(
    store: &BlobStore,
    published: &tufa_publish::PublishReport,
) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let pointer = tufa_tree::PublishPointer {
        version: 1,
        publish_id: format!("{}-{}", now.as_nanosecond(), std::process::id()),
        published_at: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
        timestamp_version: published.tuf.as_ref().map(|t| t.timestamp_version),
    };
    tufa_tree::write_pointer(store, &pointer)
        .await
        .context("published, but cannot write the publish pointer, so readers that poll it will not see this publish until the next one")
}

/// Bookkeeping after a publish: on a dev-key mirror, records which `1.root.json` the dev keys
/// made (see [`dev_root_marker`]). Never fails the publish.
pub async fn after_publish(loaded: &Loaded, store: &BlobStore, publishing: &Publishing) {
    if let Some(dev) = publishing
        .options
        .tuf
        .as_ref()
        .and_then(|t| t.insecure_dev_offline.as_ref())
        && let Err(e) = remember_dev_root(loaded, store, &dev.root.keyid()).await
    {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot record which root the dev keys made"
        );
    }
}

/// Where the mirror records the sha256 of the `1.root.json` that INSECURE dev keys created
/// (next to the index: it describes the published state). `tufa import-metadata
/// --replace-dev-metadata` relies on it once `insecure_dev_keys` and the dev keys are gone.
pub fn dev_root_marker(loaded: &Loaded) -> PathBuf {
    let mut p = loaded.index_path.as_os_str().to_owned();
    p.push(".insecure-dev-root.json");
    PathBuf::from(p)
}

/// The marker's content.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DevRootMarker {
    /// sha256 of the published `1.root.json` the dev keys made.
    pub sha256: String,
    /// The dev root key.
    pub root_keyid: String,
}

/// Writes [`dev_root_marker`] when the published `1.root.json` lists the dev root key and the
/// marker does not say so yet.
async fn remember_dev_root(
    loaded: &Loaded,
    store: &BlobStore,
    dev_root: &tufa_tuf::KeyId,
) -> anyhow::Result<()> {
    let Some(bytes) = store.get_named(&tufa_tree::tuf_key("1.root.json")).await? else {
        return Ok(());
    };
    let root = tufa_tuf::Signed::<tufa_tuf::Root>::from_file("1.root.json", &bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .metadata;
    if !root
        .signed
        .roles
        .get("root")
        .is_some_and(|r| r.keyids.contains(dev_root))
    {
        return Ok(());
    }
    let marker = DevRootMarker {
        sha256: tufa_pypi::Sha256Digest::of(&bytes).to_hex(),
        root_keyid: dev_root.to_hex(),
    };
    let path = dev_root_marker(loaded);
    let recorded = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<DevRootMarker>(&b).ok());
    if recorded.is_some_and(|r| r.sha256 == marker.sha256) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// `tufa online-key generate [--next]`: creates the online key where the config says (a key
/// file, its directory made when missing, or a key pair inside the `[tuf.online_pkcs11]`
/// token), or with `--next` the next key beside it, and prints the public key for the key
/// ceremony. Never replaces an existing key.
pub fn online_key_generate(loaded: &Loaded, next: bool, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = configured_key(loaded)?;
    let current = key.load(Slot::Current)?;
    let show_next = loaded.command("online-key show --next");
    let slot = if next {
        if let Some(existing) = key.load(Slot::Next)? {
            anyhow::bail!(
                "{} already holds the next online key {} (`{show_next}` shows it): import the root that names it with `{}`, or delete it first to make another",
                key.describe(Slot::Next),
                existing.keyid(),
                loaded.command("import-metadata DIR"),
            );
        }
        if current.is_none() {
            anyhow::bail!(
                "there is no current online key at {} to rotate from: create it with `{}` (without --next)",
                key.describe(Slot::Current),
                loaded.command("online-key generate --public-out online.pub.json"),
            );
        }
        Slot::Next
    } else {
        if let Some(existing) = current {
            anyhow::bail!(
                "{} already holds online key {}; to rotate, create the next key with `{}`, then import the root that names it",
                key.describe(Slot::Current),
                existing.keyid(),
                loaded.command("online-key generate --next --public-out online-next.pub.json"),
            );
        }
        Slot::Current
    };
    let signer = key.generate(slot)?;
    if slot == Slot::Next {
        println!(
            "created the next online key in {}: the mirror keeps signing with {} until `{}` imports a root that names the new key",
            key.describe(Slot::Next),
            key.describe(Slot::Current),
            loaded.command("import-metadata DIR"),
        );
    }
    print_public(signer.as_ref(), out)
}

/// `tufa online-key show [--next]`: the online key's (or the next key's) public part, for the
/// ceremony.
pub fn online_key_show(loaded: &Loaded, next: bool, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = configured_key(loaded)?;
    let slot = if next { Slot::Next } else { Slot::Current };
    let Some(signer) = key.load(slot)? else {
        if next {
            anyhow::bail!(
                "there is no next online key ({} does not exist): create it with `{}`",
                key.describe(Slot::Next),
                loaded.command("online-key generate --next --public-out online-next.pub.json"),
            );
        }
        anyhow::bail!(
            "there is no online key yet ({} does not exist): create it with `{}`",
            key.describe(Slot::Current),
            loaded.command("online-key generate --public-out online.pub.json"),
        );
    };
    print_public(signer.as_ref(), out)
}

fn configured_key(loaded: &Loaded) -> anyhow::Result<OnlineKey> {
    OnlineKey::from_config(loaded).with_context(|| {
        format!(
            "no online key configured: set `online_key = \"keys/online.json\"` in [tuf] (or a [tuf.online_pkcs11] section) in {}",
            loaded.path.display()
        )
    })
}

fn print_public(signer: &dyn tufa_tuf::Signer, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let public = serde_json::json!({ "keyid": signer.keyid().to_hex(), "key": signer.key() });
    let text = serde_json::to_string_pretty(&public)?;
    println!("online key {}", signer.keyid());
    if let Some(out) = out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("cannot write the public key to `{}`", out.display()))?;
        println!("wrote the online public key to {}", out.display());
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `tufa refresh`: re-sign timestamp and snapshot, and bins near expiry, without syncing.
pub async fn refresh(loaded: &Loaded) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    crate::lease_cmd::as_writer(loaded, &store, |store| refresh_leased(loaded, store)).await
}

/// `tufa refresh` while holding the writer lease.
async fn refresh_leased(loaded: &Loaded, store: BlobStore) -> anyhow::Result<ExitCode> {
    let index = loaded.open_index().await?;
    let mut publishing = publishing(loaded, &store, &index).await?;
    match &publishing.status {
        KeyStatus::NotConfigured => anyhow::bail!(
            "nothing to refresh: no TUF online key configured ([tuf] online_key or [tuf.online_pkcs11] in {})",
            loaded.path.display()
        ),
        KeyStatus::NotCreated(what) => anyhow::bail!(
            "nothing to refresh: the online key {what} does not exist yet and no TUF metadata is published. Create it with `{}`, hold the key ceremony (docs/KEY-CEREMONY.md), then import its metadata with `{}`",
            loaded.command("online-key generate --public-out online.pub.json"),
            loaded.command("import-metadata DIR"),
        ),
        KeyStatus::Loaded => {}
    }
    publishing.options.force_timestamp = true;
    let published = publish_and_report(loaded, &store, &index, &publishing).await?;
    for (role, exp) in
        tufa_publish::tuf::offline_roles_expiring(&index, SignedDuration::from_hours(24 * 30)).await?
    {
        let when = jiff::Timestamp::from_second(exp)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| exp.to_string());
        eprintln!("warning: offline role `{role}` expires at {when}: re-sign it in a key ceremony");
    }
    Ok(if published.tuf.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
