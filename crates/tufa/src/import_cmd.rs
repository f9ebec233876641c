//! `tufa import-metadata DIR`: takes what a key ceremony published (`tufa-ceremony publish
//! --out DIR`: the root chain, the newest targets and bins), checks it against the mirror's
//! trust chain and online key, publishes it, and re-signs every bin, the snapshot and the
//! timestamp with the online key.
//!
//! Besides the checks, it
//! - prints the first root's sha256 and key ids on a mirror's first import, for the ceremony
//!   log;
//! - promotes the next online key when the imported root names it (see [`crate::online_key`]);
//! - says "nothing to import" and changes nothing when the export holds nothing new;
//! - refuses an export that starts another trust chain, and with `--replace-dev-metadata`
//!   replaces the metadata INSECURE dev keys made (`tufa init --dev-keys`) by a ceremony's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tufa_publish::tuf::{ROLE_BINS, ROLE_ROOT, ROLE_TARGETS};
use tufa_pypi::Sha256Digest;
use tufa_tuf::{KeyId, Root, Signed, Targets, verify_payload};

use crate::config::Loaded;
use crate::online_key::{OnlineKey, Slot};
use crate::tuf_cmd::{DevRootMarker, dev_root_marker, keyids, publish_and_report, publishing, tuf_roles};

/// The `N.<role>.json` files in `dir`, by version.
fn versions(dir: &Path, role: &str) -> anyhow::Result<BTreeMap<u64, PathBuf>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(v) = name
            .strip_suffix(&format!(".{role}.json"))
            .and_then(|v| v.parse::<u64>().ok())
        {
            found.insert(v, path);
        }
    }
    Ok(found)
}

/// The newest `N.<role>.json` in `dir`, with its version.
fn newest(dir: &Path, role: &str) -> anyhow::Result<Option<(u64, Vec<u8>)>> {
    versions(dir, role)?
        .pop_last()
        .map(|(v, p)| {
            Ok((
                v,
                std::fs::read(&p).with_context(|| format!("cannot read `{}`", p.display()))?,
            ))
        })
        .transpose()
}

/// The key ids a role lists and its threshold, as "K1 K2 (threshold 2)".
fn role_line(root: &Root, role: &str) -> String {
    let threshold = root.roles.get(role).map_or(0, |k| k.threshold);
    format!("{} (threshold {threshold})", keyids(root, role))
}

/// What the operator checks against the ceremony log before trusting a first root.
fn first_root_line(bytes: &[u8], root: &Root) -> String {
    let sha = Sha256Digest::of(bytes).to_hex();
    let snapshot = root.roles.get("snapshot");
    let online = if snapshot.is_some() && snapshot == root.roles.get("timestamp") {
        format!("snapshot/timestamp (online) key {}", role_line(root, "snapshot"))
    } else {
        format!(
            "snapshot keys {}; timestamp keys {}",
            role_line(root, "snapshot"),
            role_line(root, "timestamp")
        )
    };
    format!(
        "first root: 1.root.json sha256 {sha}; root keys {}; targets keys {}; {online}: check these against the ceremony log",
        role_line(root, "root"),
        role_line(root, "targets"),
    )
}

/// Why the mirror's metadata counts as made by dev keys, if it does: the marker a dev-key
/// publish wrote, or a dev root key (configured `insecure_dev_keys`, or `keys/` beside the
/// config, where `tufa init --dev-keys` puts them) that the mirror's `1.root.json` lists.
fn dev_evidence(loaded: &Loaded, mirror_root1: &[u8]) -> Option<String> {
    let marker = dev_root_marker(loaded);
    let sha = Sha256Digest::of(mirror_root1).to_hex();
    if let Some(m) = std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<DevRootMarker>(&b).ok())
        && m.sha256 == sha
    {
        return Some(format!("`{}` records it", marker.display()));
    }
    let root = Signed::<Root>::from_file("1.root.json", mirror_root1)
        .ok()?
        .metadata
        .signed;
    let listed = root.roles.get("root")?;
    let mut dirs: Vec<PathBuf> = loaded
        .config
        .tuf
        .insecure_dev_keys
        .iter()
        .map(|d| loaded.base_dir.join(d))
        .collect();
    dirs.push(loaded.base_dir.join("keys"));
    dirs.into_iter().find_map(|dir| {
        let path = dir.join("root.json");
        let key = tufa_tuf::Ed25519Signer::read_insecure_plaintext(&path).ok()?;
        listed
            .keyids
            .contains(&tufa_tuf::Signer::keyid(&key))
            .then(|| format!("its root key is the dev key `{}`", path.display()))
    })
}

/// The published `name`, if any.
async fn published_bytes(store: &tufa_store::BlobStore, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(store
        .get_named(&tufa_tree::tuf_key(name))
        .await?
        .map(|b| b.to_vec()))
}

/// `tufa import-metadata DIR [--replace-dev-metadata]`.
pub async fn import_metadata(loaded: &Loaded, dir: &Path, replace_dev: bool) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    crate::lease_cmd::as_writer(loaded, &store, |store| {
        import_leased(loaded, store, dir, replace_dev)
    })
    .await
}

/// `tufa import-metadata` while holding the writer lease.
async fn import_leased(
    loaded: &Loaded,
    store: tufa_store::BlobStore,
    dir: &Path,
    replace_dev: bool,
) -> anyhow::Result<ExitCode> {
    let config = loaded.path.display().to_string();
    let key = OnlineKey::from_config(loaded).with_context(|| {
        format!(
            "no online key configured: set `online_key = \"keys/online.json\"` in [tuf] (or a [tuf.online_pkcs11] section) in {config}, create the key with `{}`, and have the key ceremony name it",
            loaded.command("online-key generate --public-out online.pub.json")
        )
    })?;
    if !dir.is_dir() {
        anyhow::bail!(
            "`{}` is not a directory: give the directory `tufa-ceremony publish --out` wrote",
            dir.display()
        );
    }
    let dir_shown = dir.display().to_string();
    let index = loaded.open_index().await?;
    // A lost index would take the export for a first import and restart every version.
    crate::tuf_cmd::refuse_empty_index_over_published_store(loaded, &store, &index).await?;
    let known = tuf_roles(&index).await?;
    let now = jiff::Timestamp::now();
    let export_roots = versions(dir, "root")?;
    let mirror_root_version = known.get(ROLE_ROOT).map(|(v, _)| *v);
    let mirror_root1 = match mirror_root_version {
        Some(_) => Some(
            published_bytes(&store, "1.root.json")
                .await?
                .context("the mirror's `1.root.json` is missing from the published tree")?,
        ),
        None => None,
    };
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read `{}`", p.display()));

    // --replace-dev-metadata: only for a mirror whose metadata dev keys made, once the config
    // no longer has them, with an export that starts another chain.
    let replacing = replace_dev;
    if replacing {
        let again = loaded.command(&format!("import-metadata {dir_shown} --replace-dev-metadata"));
        let Some(root1) = &mirror_root1 else {
            anyhow::bail!(
                "--replace-dev-metadata: this mirror publishes no TUF metadata yet, so there is nothing to replace: run `{}` without it",
                loaded.command(&format!("import-metadata {dir_shown}"))
            );
        };
        if loaded.config.tuf.insecure_dev_keys.is_some() {
            anyhow::bail!(
                "--replace-dev-metadata: `insecure_dev_keys` is still set in {config}: remove that line first (the dev keys must not sign anything again), then run `{again}`"
            );
        }
        let Some(evidence) = dev_evidence(loaded, root1) else {
            anyhow::bail!(
                "--replace-dev-metadata: this mirror's TUF metadata was not made with dev keys as far as tufa can tell (its 1.root.json has sha256 {}, `{}` does not record it, and no dev root key it lists is in `{}`): replacing it would break the trust chain its clients pinned. Import without --replace-dev-metadata, or restore the dev keys' root.json there if this really is a dev mirror",
                Sha256Digest::of(root1).to_hex(),
                dev_root_marker(loaded).display(),
                loaded.base_dir.join("keys/root.json").display(),
            );
        };
        let Some(first) = export_roots.get(&1) else {
            anyhow::bail!(
                "--replace-dev-metadata: `{dir_shown}` has no 1.root.json: replacing the dev metadata needs the ceremony's whole root chain from 1.root.json (`tufa-ceremony publish --out` writes it)"
            );
        };
        if read(first)? == *root1 {
            anyhow::bail!(
                "--replace-dev-metadata: `{dir_shown}/1.root.json` is the mirror's own 1.root.json: there is no new trust chain; run `{}` without it",
                loaded.command(&format!("import-metadata {dir_shown}"))
            );
        }
        tracing::warn!(evidence = %evidence, "replacing metadata made with INSECURE dev keys");
    } else if let (Some(mirror_version), Some(root1)) = (mirror_root_version, &mirror_root1) {
        // Roots the mirror already has must be its own, byte for byte: anything else is
        // another trust chain (a dev mirror meeting its first ceremony, or a mixed-up stick).
        for (v, path) in export_roots.range(..=mirror_version) {
            let ours = if *v == 1 {
                Some(root1.clone())
            } else {
                published_bytes(&store, &format!("{v}.root.json")).await?
            };
            if ours.as_deref() == Some(read(path)?.as_slice()) {
                continue;
            }
            let dev_config = loaded.config.tuf.insecure_dev_keys.is_some();
            if *v == 1 && (dev_config || dev_evidence(loaded, root1).is_some()) {
                let remove = if dev_config {
                    format!("remove `insecure_dev_keys` from {config}, then ")
                } else {
                    String::new()
                };
                anyhow::bail!(
                    "this mirror's TUF metadata was made with INSECURE dev keys; the ceremony's 1.root.json starts a new trust chain. To switch: {remove}run `{}`; clients must then pin the ceremony's 1.root.json",
                    loaded.command(&format!("import-metadata {dir_shown} --replace-dev-metadata"))
                );
            }
            anyhow::bail!(
                "`{}` differs from the {v}.root.json this mirror publishes: the export belongs to another trust chain (another ceremony, or the wrong transfer stick); import only exports of this mirror's own ceremony",
                path.display()
            );
        }
    }

    // The root chain: continue from the mirror's newest root, or start at 1.root.json. Every
    // version comes from the signed content: a file whose name says another version is refused.
    let mut current: Option<Signed<Root>> = match mirror_root_version {
        Some(v) if !replacing => Some(crate::tuf_cmd::published(&store, &format!("{v}.root.json")).await?),
        _ => None,
    };
    let mut new_roots = Vec::new();
    let mut version = current.as_ref().map_or(1, |r| r.signed.version + 1);
    while let Some(path) = export_roots.get(&version) {
        let name = format!("{version}.root.json");
        let bytes = read(path)?;
        // Signed by the previous root's threshold (trust chain) and by its own; the first root
        // of a chain by its own.
        let root = match &current {
            Some(prev) => tufa_tuf::verify_next_root(&prev.signed, &name, &bytes)
                .map_err(|e| anyhow::anyhow!("`{name}` does not continue the mirror's root chain: {e}"))?,
            None => {
                tufa_tuf::verify_trusted_root(&name, &bytes).map_err(|e| anyhow::anyhow!("`{name}`: {e}"))?
            }
        }
        .metadata;
        new_roots.push((
            name,
            bytes,
            root.signed.version,
            root.signed.expires,
            root.signed.clone(),
        ));
        current = Some(root);
        version += 1;
    }
    let root = current.with_context(|| {
        format!("no root metadata: expected 1.root.json (or the mirror's next root version) in `{dir_shown}`")
    })?;
    tufa_tuf::check_expiry("root", root.signed.version, root.signed.expires, now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The online key must be the root's snapshot and timestamp key: the current key, or the
    // next one (then promoted below, once everything else checked out).
    let current_key = key.load(Slot::Current)?;
    let next_key = key.load(Slot::Next)?;
    let names = |id: &KeyId| {
        ["snapshot", "timestamp"]
            .iter()
            .all(|r| root.signed.roles.get(*r).is_some_and(|k| k.keyids.contains(id)))
    };
    let (online, promote) = match (&current_key, &next_key) {
        (Some(c), _) if names(&c.keyid()) => (c.keyid(), false),
        (_, Some(n)) if names(&n.keyid()) => (n.keyid(), true),
        (None, None) => anyhow::bail!(
            "this mirror has no online key yet ({} does not exist): create it with `{}`; the ceremony's root must name it (root v{} names {} for timestamp)",
            key.describe(Slot::Current),
            loaded.command("online-key generate --public-out online.pub.json"),
            root.signed.version,
            keyids(&root.signed, "timestamp"),
        ),
        _ => {
            let shown = |k: &Option<std::sync::Arc<dyn tufa_tuf::Signer>>| {
                k.as_ref()
                    .map_or_else(|| "none".to_owned(), |k| k.keyid().to_hex())
            };
            anyhow::bail!(
                "root v{} names online key {} (snapshot) / {} (timestamp), but this mirror's online key is {} ({}) and its next key is {} ({}). Import the export made for this mirror, or have the ceremony name this mirror's key (`tufa-ceremony rotate-root --online-key` with the public key from `{}`; for a new key, `{}`)",
                root.signed.version,
                keyids(&root.signed, "snapshot"),
                keyids(&root.signed, "timestamp"),
                shown(&current_key),
                key.describe(Slot::Current),
                shown(&next_key),
                key.describe(Slot::Next),
                loaded.command("online-key show --public-out online.pub.json"),
                loaded.command("online-key generate --next --public-out online-next.pub.json"),
            );
        }
    };

    // Targets (signed by the root's targets keys) and bins (signed by targets' delegation).
    let (tv, tbytes) =
        newest(dir, "targets")?.with_context(|| format!("no N.targets.json in `{dir_shown}`"))?;
    let (bv, bbytes) = newest(dir, "bins")?.with_context(|| format!("no N.bins.json in `{dir_shown}`"))?;
    // The versions below are the signed ones: `from_file` refuses a file whose name says
    // another version (`1.targets.json` copied as `2.targets.json`).
    let tname = format!("{tv}.targets.json");
    let bname = format!("{bv}.bins.json");
    let parsed_targets = Signed::<Targets>::from_file(&tname, &tbytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parsed_bins = Signed::<Targets>::from_file(&bname, &bbytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (targets, bins) = (&parsed_targets.metadata, &parsed_bins.metadata);
    // Never roll the mirror back: an export older than what the mirror publishes would make
    // clients that saw the newer version refuse the repository. (A replaced dev chain is not
    // continued: its versions do not count.)
    let mut unchanged = Vec::new();
    for (role, version, bytes) in [
        (ROLE_TARGETS, targets.signed.version, &tbytes),
        (ROLE_BINS, bins.signed.version, &bbytes),
    ] {
        let Some((current, _)) = known.get(role).filter(|_| !replacing) else {
            continue;
        };
        if version < *current {
            anyhow::bail!(
                "`{dir_shown}` holds {role} v{version}, older than the {role} v{current} this mirror publishes: importing it would roll clients back; import the newest ceremony export"
            );
        }
        if version == *current {
            let name = format!("{version}.{role}.json");
            if published_bytes(&store, &name).await?.as_deref() != Some(bytes.as_slice()) {
                anyhow::bail!(
                    "`{dir_shown}/{name}` differs from the {name} this mirror publishes: a version number cannot be reused (a re-signed {role} must have a higher version)"
                );
            }
            unchanged.push(role);
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
    tufa_publish::tuf::online_key_signs_for_bins(&bins.signed, &online).map_err(|problem| {
        anyhow::anyhow!(
            "{problem}: root v{} names it for snapshot and timestamp, so the export needs a bins version delegating the hashed bins to it too (`tufa-ceremony rotate-root --online-key` makes both)",
            root.signed.version
        )
    })?;
    let layout = succinct.layout().map_err(|e| anyhow::anyhow!("{e}"))?;
    let configured = loaded.config.tuf.layout()?;
    if layout != configured {
        anyhow::bail!(
            "bins v{bv} delegates {} bins but the mirror is configured for {} (tuf.bins_bit_length in {config})",
            layout.bin_count(),
            configured.bin_count()
        );
    }
    for (what, v, exp) in [
        ("targets", tv, targets.signed.expires),
        ("bins", bv, bins.signed.expires),
    ] {
        tufa_tuf::check_expiry(what, v, exp, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    // Nothing new: the same root, targets and bins, signed for by the current key.
    if !replacing && new_roots.is_empty() && !promote && unchanged.len() == 2 {
        let ends = export_roots
            .last_key_value()
            .map(|(v, _)| *v)
            .filter(|v| *v < root.signed.version)
            .map(|v| format!(" (this export ends at root v{v})"))
            .unwrap_or_default();
        println!(
            "nothing to import: the mirror already publishes root v{}, targets v{tv}, bins v{bv}{ends}",
            root.signed.version
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Every check passed. Switch to the next online key if the root names it: current →
    // retired, then next → current (a kill in between is finished by running this again).
    let mut rotated = None;
    if promote {
        let retired = match &current_key {
            Some(c) => Some(key.retire_current(&c.keyid())?),
            None => None,
        };
        key.promote_next()?;
        rotated = Some(retired);
    }

    // Publish the offline metadata, record it, and have every bin re-signed. A replaced dev
    // chain's newer roots go: a client trusting the new 1.root.json would try them next.
    if replacing && let Some(old) = mirror_root_version {
        for v in (root.signed.version + 1)..=old {
            store
                .delete_named(&tufa_tree::tuf_key(&format!("{v}.root.json")))
                .await?;
        }
    }
    let mut rows = Vec::new();
    for (name, bytes, v, exp, _) in &new_roots {
        store
            .put_named(&tufa_tree::tuf_key(name), bytes.clone().into())
            .await?;
        rows.push((ROLE_ROOT.to_owned(), *v, exp.as_second()));
    }
    store
        .put_named(&tufa_tree::tuf_key(&tname), tbytes.into())
        .await?;
    store
        .put_named(&tufa_tree::tuf_key(&bname), bbytes.into())
        .await?;
    rows.push((ROLE_TARGETS.to_owned(), tv, targets.signed.expires.as_second()));
    rows.push((ROLE_BINS.to_owned(), bv, bins.signed.expires.as_second()));
    let idx = index.clone();
    let all_bins: Vec<u32> = (0..layout.bin_count()).collect();
    tokio::task::spawn_blocking(move || -> Result<(), tufa_index::IndexError> {
        idx.record_tuf_roles(&rows, &[])?;
        idx.mark_bins_dirty(all_bins)
    })
    .await??;
    if new_roots.is_empty() {
        println!(
            "imported targets v{tv}, bins v{bv} (root v{} unchanged)",
            root.signed.version
        );
    } else {
        println!(
            "imported root v{} ({} new), targets v{tv}, bins v{bv}",
            root.signed.version,
            new_roots.len()
        );
    }
    let first_root = new_roots.first().filter(|(_, _, v, _, _)| *v == 1);
    if let Some((_, bytes, _, _, first)) = first_root {
        println!("{}", first_root_line(bytes, first));
    }

    let mut publishing = publishing(loaded, &store, &index).await?;
    publishing.options.force_timestamp = true;
    publish_and_report(loaded, &store, &index, &publishing).await?;
    if let Some(retired) = rotated {
        let kept = retired.map_or_else(
            || " (finished an interrupted rotation; the previous key was retired then)".to_owned(),
            |r| format!(" (previous key kept as {r}; delete it once no client needs the old timestamp)"),
        );
        println!("online key rotated: now signing with {online}{kept}");
    }
    if replacing {
        let _ = std::fs::remove_file(dev_root_marker(loaded));
        let sha = first_root.map(|(_, b, _, _, _)| Sha256Digest::of(b).to_hex());
        println!(
            "replaced the INSECURE dev metadata with the ceremony's trust chain: clients must re-pin 1.root.json (sha256 {}); the dev chain's snapshot and bin-n files stay in the tree, unreferenced (their versions are not reused)",
            sha.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
