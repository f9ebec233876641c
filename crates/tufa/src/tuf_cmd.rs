//! TUF keys and signing for the CLI: `init --dev-keys`, the `[tuf]` config, `tufa refresh`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use tufa_publish::PublishOptions;
use tufa_publish::tuf::{DevOfflineKeys, TufSigning};
use tufa_tuf::build::Expiries;
use tufa_tuf::{BinLayout, Ed25519Signer};

use crate::config::Loaded;

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

fn default_pin_env() -> String {
    "TUFA_PKCS11_PIN".to_owned()
}

impl Pkcs11Settings {
    fn config(&self) -> anyhow::Result<tufa_pkcs11::Pkcs11Config> {
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
            key_label: self.key.clone(),
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

/// Writes four fresh INSECURE plaintext keys into `dir` (mode 0600) and returns the paths of the
/// online key and the key directory, relative to `config_dir`'s config file.
pub fn write_dev_keys(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
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

/// The configured online signer: a key file or a PKCS#11 token; `None` when neither is set.
fn online_signer(loaded: &Loaded) -> anyhow::Result<Option<Arc<dyn tufa_tuf::Signer>>> {
    let t = &loaded.config.tuf;
    if let Some(path) = &t.online_key {
        return Ok(Some(Arc::new(read_key(&loaded.base_dir.join(path))?)));
    }
    if let Some(p) = &t.online_pkcs11 {
        let signer = tufa_pkcs11::Pkcs11Signer::open(&p.config()?)
            .map_err(|e| anyhow::anyhow!("tuf.online_pkcs11: {e}"))?;
        return Ok(Some(Arc::new(signer)));
    }
    Ok(None)
}

/// `tufa online-key generate`: creates the online key where the config says (a new key file
/// at `online_key`, or a key pair inside the `[tuf.online_pkcs11]` token) and prints its
/// public key for the key ceremony.
pub fn online_key_generate(loaded: &Loaded, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let t = &loaded.config.tuf;
    let signer: Arc<dyn tufa_tuf::Signer> = if let Some(p) = &t.online_pkcs11 {
        Arc::new(
            tufa_pkcs11::Pkcs11Signer::generate(&p.config()?)
                .map_err(|e| anyhow::anyhow!("tuf.online_pkcs11: {e}"))?,
        )
    } else if let Some(path) = &t.online_key {
        let path = loaded.base_dir.join(path);
        let key = Ed25519Signer::generate();
        key.write_insecure_plaintext(&path)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
        Arc::new(key)
    } else {
        anyhow::bail!(
            "set [tuf] online_key or [tuf.online_pkcs11] in {} first",
            loaded.path.display()
        );
    };
    print_public(signer.as_ref(), out)
}

/// `tufa online-key show`: the configured online key's public part, for the ceremony.
pub fn online_key_show(loaded: &Loaded, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let signer = online_signer(loaded)?
        .with_context(|| format!("no online key configured in {}", loaded.path.display()))?;
    print_public(signer.as_ref(), out)
}

fn print_public(signer: &dyn tufa_tuf::Signer, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let public = serde_json::json!({ "keyid": signer.keyid().to_hex(), "key": signer.key() });
    let text = serde_json::to_string_pretty(&public)?;
    if let Some(out) = out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("cannot write `{}`", out.display()))?;
        println!("wrote the online public key to {}", out.display());
    }
    println!("online key {}", signer.keyid());
    if out.is_none() {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The publish options the config asks for, with keys loaded.
pub fn publish_options(loaded: &Loaded) -> anyhow::Result<PublishOptions> {
    let t = &loaded.config.tuf;
    let layout = t.layout()?;
    let Some(online) = online_signer(loaded)? else {
        return Ok(PublishOptions {
            layout,
            tuf: None,
            force_timestamp: false,
        });
    };
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
    Ok(PublishOptions {
        layout,
        tuf: Some(TufSigning {
            online,
            insecure_dev_offline,
            expiries,
        }),
        force_timestamp: false,
    })
}

/// Prints what TUF signing did (or why it did not run).
pub fn report(options: &PublishOptions, report: &tufa_publish::PublishReport) {
    match (&options.tuf, &report.tuf) {
        (None, _) => {
            eprintln!("warning: no TUF keys configured: pages are published unsigned");
        }
        (Some(_), None) => {
            eprintln!(
                "warning: no TUF root metadata yet and no dev keys to create it: import the ceremony's metadata; pages are published unsigned"
            );
        }
        (Some(_), Some(t)) if t.files_written == 0 => {
            println!(
                "TUF metadata unchanged (snapshot v{}, timestamp v{})",
                t.snapshot_version, t.timestamp_version
            )
        }
        (Some(_), Some(t)) if t.bins_signed == 0 && t.files_written == 1 => {
            println!(
                "signed timestamp v{} (snapshot v{} unchanged)",
                t.timestamp_version, t.snapshot_version
            )
        }
        (Some(_), Some(t)) => println!(
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

/// `tufa refresh`: re-sign timestamp and snapshot, and bins near expiry, without syncing.
pub async fn refresh(loaded: &Loaded) -> anyhow::Result<ExitCode> {
    let mut options = publish_options(loaded)?;
    options.force_timestamp = true;
    if options.tuf.is_none() {
        anyhow::bail!(
            "nothing to refresh: no TUF keys configured ([tuf] online_key in {})",
            loaded.path.display()
        );
    }
    let store = loaded.open_store()?;
    let index = loaded.open_index().await?;
    let published = tufa_publish::publish(&store, &index, &options).await?;
    report(&options, &published);
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

/// The newest `N.<role>.json` in `dir`, with its version.
fn newest(dir: &Path, role: &str) -> anyhow::Result<Option<(u64, Vec<u8>)>> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(v) = name
            .strip_suffix(&format!(".{role}.json"))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, path));
        }
    }
    best.map(|(v, p)| {
        Ok((
            v,
            std::fs::read(&p).with_context(|| format!("cannot read `{}`", p.display()))?,
        ))
    })
    .transpose()
}

/// `tufa import-metadata DIR`: takes the root chain, targets and bins the key ceremony
/// published (`tufa-ceremony publish --out DIR`), checks them against the mirror's trust chain
/// and online key, publishes them, and re-signs every bin, the snapshot and the timestamp with
/// the online key.
pub async fn import_metadata(loaded: &Loaded, dir: &Path) -> anyhow::Result<ExitCode> {
    use tufa_tuf::{Root, Signed, Targets, verify_payload};
    // The checks below run on the signed content; file names only say where to look.
    let mut options = publish_options(loaded)?;
    let Some(signing) = options.tuf.clone() else {
        anyhow::bail!(
            "configure the online key first: [tuf] online_key in {}",
            loaded.path.display()
        );
    };
    let store = loaded.open_store()?;
    let index = loaded.open_index().await?;
    let known = {
        let idx = index.clone();
        tokio::task::spawn_blocking(move || idx.tuf_roles()).await??
    };
    let now = jiff::Timestamp::now();

    // The root chain: continue from the mirror's newest root, or start at 1.root.json. Every
    // version comes from the signed content: a file whose name says another version is refused.
    let mut current: Option<Signed<Root>> = match known.get(tufa_publish::tuf::ROLE_ROOT) {
        Some((v, _)) => {
            let name = format!("{v}.root.json");
            let bytes = store
                .get_named(&tufa_tree::tuf_key(&name))
                .await?
                .with_context(|| format!("the mirror's `{name}` is missing from the published tree"))?;
            Some(
                Signed::<Root>::from_file(&name, &bytes)
                    .map_err(|e| anyhow::anyhow!("the mirror's {e}"))?
                    .metadata,
            )
        }
        None => None,
    };
    let mut new_roots = Vec::new();
    let mut version = current.as_ref().map_or(1, |r| r.signed.version + 1);
    loop {
        let name = format!("{version}.root.json");
        let path = dir.join(&name);
        if !path.exists() {
            break;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        // Signed by the previous root's threshold (trust chain) and by its own; the first root
        // of a mirror by its own.
        let root = match &current {
            Some(prev) => tufa_tuf::verify_next_root(&prev.signed, &name, &bytes)
                .map_err(|e| anyhow::anyhow!("`{name}` does not continue the mirror's root chain: {e}"))?,
            None => {
                tufa_tuf::verify_trusted_root(&name, &bytes).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?
            }
        }
        .metadata;
        new_roots.push((name, bytes, root.signed.version, root.signed.expires));
        current = Some(root);
        version += 1;
    }
    let root = current.context(
        "no root metadata: expected 1.root.json (or the mirror's next root version) in the import directory",
    )?;
    tufa_tuf::check_expiry("root", root.signed.version, root.signed.expires, now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The online key must be the root's snapshot and timestamp key.
    let online = signing.online.keyid();
    tufa_publish::tuf::online_key_signs_for_root(&root.signed, &online).map_err(anyhow::Error::msg)?;

    // Targets (signed by the root's targets keys) and bins (signed by targets' delegation).
    let (tv, tbytes) = newest(dir, "targets")?.context("no N.targets.json in the import directory")?;
    let (bv, bbytes) = newest(dir, "bins")?.context("no N.bins.json in the import directory")?;
    // The versions below are the signed ones: `from_file` refuses a file whose name says
    // another version (`1.targets.json` copied as `2.targets.json`).
    let tname = format!("{tv}.targets.json");
    let bname = format!("{bv}.bins.json");
    let parsed_targets = Signed::<Targets>::from_file(&tname, &tbytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parsed_bins = Signed::<Targets>::from_file(&bname, &bbytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (targets, bins) = (&parsed_targets.metadata, &parsed_bins.metadata);
    // Never roll the mirror back: an export older than what the mirror publishes would make
    // clients that saw the newer version refuse the repository.
    for (role, version, bytes) in [
        ("targets", targets.signed.version, &tbytes),
        ("bins", bins.signed.version, &bbytes),
    ] {
        let Some((current, _)) = known.get(role) else {
            continue;
        };
        if version < *current {
            anyhow::bail!(
                "{version}.{role}.json is older than the mirror's {role} v{current}: import the newest ceremony export"
            );
        }
        if version == *current {
            let name = format!("{version}.{role}.json");
            let published = store.get_named(&tufa_tree::tuf_key(&name)).await?;
            if published.as_deref() != Some(bytes.as_slice()) {
                anyhow::bail!(
                    "{name} differs from the mirror's published {name}: a version number cannot be reused"
                );
            }
        }
    }
    // Signatures are checked over the signed content as received (extension fields included).
    verify_payload(
        "targets",
        targets.signed.version,
        &parsed_targets.payload,
        &targets.signatures,
        &root.signed.keys,
        root.signed
            .role_keys("targets")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow::anyhow!("`{tname}`: {e}"))?;
    let delegations = targets
        .signed
        .delegations
        .as_ref()
        .context("targets delegates nothing (expected a delegation to `bins`)")?;
    let bins_keys = delegations
        .role_keys(&tufa_tuf::RoleName::bins())
        .context("targets does not delegate to `bins`")?;
    verify_payload(
        "bins",
        bins.signed.version,
        &parsed_bins.payload,
        &bins.signatures,
        &delegations.keys,
        &bins_keys,
    )
    .map_err(|e| anyhow::anyhow!("`{bname}`: {e}"))?;
    let succinct = bins
        .signed
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.as_ref())
        .context("bins does not delegate to hashed bins (succinct_roles)")?;
    tufa_publish::tuf::online_key_signs_for_bins(&bins.signed, &online).map_err(anyhow::Error::msg)?;
    let layout = succinct.layout().map_err(|e| anyhow::anyhow!("{e}"))?;
    if layout != options.layout {
        anyhow::bail!(
            "bins v{bv} delegates {} bins but the mirror is configured for {} (tuf.bins_bit_length)",
            layout.bin_count(),
            options.layout.bin_count()
        );
    }
    for (what, v, exp) in [
        ("targets", tv, targets.signed.expires),
        ("bins", bv, bins.signed.expires),
    ] {
        tufa_tuf::check_expiry(what, v, exp, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    // Publish the offline metadata, record it, and have every bin re-signed.
    let mut rows = Vec::new();
    for (name, bytes, v, exp) in &new_roots {
        store
            .put_named(&tufa_tree::tuf_key(name), bytes.clone().into())
            .await?;
        rows.push(("root".to_owned(), *v, exp.as_second()));
    }
    store
        .put_named(&tufa_tree::tuf_key(&format!("{tv}.targets.json")), tbytes.into())
        .await?;
    store
        .put_named(&tufa_tree::tuf_key(&format!("{bv}.bins.json")), bbytes.into())
        .await?;
    rows.push(("targets".to_owned(), tv, targets.signed.expires.as_second()));
    rows.push(("bins".to_owned(), bv, bins.signed.expires.as_second()));
    let idx = index.clone();
    let all_bins: Vec<u32> = (0..layout.bin_count()).collect();
    tokio::task::spawn_blocking(move || -> Result<(), tufa_index::IndexError> {
        idx.record_tuf_roles(&rows, &[])?;
        idx.mark_bins_dirty(all_bins)
    })
    .await??;
    println!(
        "imported root v{} ({} new), targets v{tv}, bins v{bv}",
        root.signed.version,
        new_roots.len()
    );
    options.force_timestamp = true;
    let published = tufa_publish::publish(&store, &index, &options).await?;
    report(&options, &published);
    Ok(ExitCode::SUCCESS)
}
