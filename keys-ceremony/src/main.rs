//! `tufa-ceremony`: the offline key-signing ceremony tool for tufa's root, targets and bins
//! keys. A thin command line over the `tufa_ceremony` library; see docs/KEY-CEREMONY.md.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage error. Errors are one line on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tufa_ceremony::{
    Ceremony, CeremonyError, InitOptions, KdfParams, KeySource, PKCS11_PIN_ENV, PassphraseSource,
    Pkcs11Config, PublicKeyFile, Report, ResignTargetsOptions, RotateRootOptions,
};

const AFTER_HELP: &str = "Passphrases: the interactive prompt is the production path. For scripted drills and \
tests, --passphrase-file FILE or the TUFA_CEREMONY_PASSPHRASE environment variable are read instead.\n\
Runbook: docs/KEY-CEREMONY.md.";

/// Offline TUF key ceremony for a tufa mirror: create keys, collect root/targets/bins
/// signatures in a ceremony directory, publish the signed metadata, rotate keys.
///
/// Runs on an air-gapped machine; it has no network code. Files move between machines on
/// removable media: the ceremony directory, public key files (*.pub.json) and the published
/// output that the mirror imports with `tufa import-metadata`.
#[derive(Debug, Parser)]
#[command(name = "tufa-ceremony", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct PassphraseArgs {
    /// Read the passphrase from the first line of FILE instead of prompting (drills and
    /// tests; the prompt is the production path). Without it, TUFA_CEREMONY_PASSPHRASE is used
    /// when set.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// A key inside a PKCS#11 token (YubiKey, HSM) instead of a key file. The PIN comes from
/// TUFA_PKCS11_PIN when set, else from a prompt.
#[derive(Debug, Args)]
struct Pkcs11Args {
    /// The token's PKCS#11 module (shared library), e.g. /usr/lib/x86_64-linux-gnu/libykcs11.so.
    #[arg(long, value_name = "PATH", requires_all = ["pkcs11_token", "pkcs11_key"])]
    pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// The key pair's label on the token.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pkcs11_key: Option<String>,
}

impl Pkcs11Args {
    /// The token configuration, with the PIN from the environment or a prompt.
    fn config(&self) -> Result<Option<Pkcs11Config>, CeremonyError> {
        let (Some(module), Some(token), Some(key)) =
            (&self.pkcs11_module, &self.pkcs11_token, &self.pkcs11_key)
        else {
            return Ok(None);
        };
        let pin = match std::env::var(PKCS11_PIN_ENV) {
            Ok(pin) => pin,
            Err(_) => rpassword::prompt_password(format!("PIN for PKCS#11 token `{token}`: ")).map_err(|e| {
                CeremonyError::Passphrase(format!(
                    "cannot read the PIN from the terminal ({e}); run on a terminal or set {PKCS11_PIN_ENV}"
                ))
            })?,
        };
        Ok(Some(Pkcs11Config {
            module: module.clone(),
            token_label: token.clone(),
            pin,
            key_label: key.clone(),
        }))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an ed25519 key from the OS random source, encrypted with a passphrase.
    ///
    /// Writes FILE (mode 0600: argon2id-derived key, XChaCha20-Poly1305) and FILE.pub.json
    /// (public key, key id, holder), and prints the key id and public key for the ceremony
    /// record. Never overwrites a file. Each key holder runs this for their own key, with a
    /// passphrase only they know, and keeps FILE on their own medium.
    ///
    /// With --pkcs11-module/--pkcs11-token/--pkcs11-key the key pair is generated inside the
    /// token instead (not extractable) and --out names the public key file to write.
    Keygen {
        /// The encrypted key file to create (with PKCS#11: the public key file).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Who holds the key (shown by `status`); defaults to the file name.
        #[arg(long, value_name = "NAME")]
        holder: Option<String>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
    },
    /// Write the public key file of a key: a ceremony key file (no passphrase needed) or the
    /// mirror's online key file (run this on the mirror; only the public half is written).
    ExportPublic {
        /// An encrypted ceremony key, or tufa's online key file (`[tuf] online_key`).
        key: PathBuf,
        /// The public key file to create.
        #[arg(long, value_name = "PUB.json")]
        out: PathBuf,
        /// Holder name to record (default: the key file's holder, or `online`).
        #[arg(long, value_name = "NAME")]
        holder: Option<String>,
    },
    /// Create a ceremony directory with unsigned root, targets and bins version 1.
    ///
    /// Writes DIR/ceremony.json and DIR/pending/{1.root.json,1.targets.json,1.bins.json}. Root
    /// lists the root keys (threshold T), the targets keys, and the online key for snapshot
    /// and timestamp; targets delegates every target to `bins`; bins delegates the hashed bins
    /// (2^bit-length of them) to the online key. Key files are public key files (*.pub.json).
    Init {
        /// The ceremony directory to create (must not exist, or be empty).
        dir: PathBuf,
        /// Root key holders' public keys (repeat the flag or list several).
        #[arg(long = "root-key", value_name = "PUB.json", num_args = 1.., required = true)]
        root_keys: Vec<PathBuf>,
        /// Root signatures required (2 or more in production).
        #[arg(long, value_name = "T")]
        root_threshold: u32,
        /// Targets key holders' public keys.
        #[arg(long = "targets-key", value_name = "PUB.json", num_args = 1.., required = true)]
        targets_keys: Vec<PathBuf>,
        #[arg(long, value_name = "T", default_value_t = 1)]
        targets_threshold: u32,
        /// Bins key holders' public keys.
        #[arg(long = "bins-key", value_name = "PUB.json", num_args = 1.., required = true)]
        bins_keys: Vec<PathBuf>,
        #[arg(long, value_name = "T", default_value_t = 1)]
        bins_threshold: u32,
        /// The mirror's online key (public part only: `export-public` on the mirror).
        #[arg(long, value_name = "PUB.json")]
        online_key: PathBuf,
        /// log2 of the number of hashed bins; must match the mirror's `[tuf] bins_bit_length`.
        #[arg(long, value_name = "BITS", default_value_t = 14)]
        bins_bit_length: u8,
        /// Lifetime of root, targets and bins (and the default for later versions).
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        expires_days: u32,
    },
    /// Add one signature to a pending file, with one key holder's key.
    ///
    /// ROLE is root, targets, bins, or a pending file name such as 2.root.json. Refuses a key
    /// that is not authorised for the file (for root v(N+1): the keys of root vN or of root
    /// v(N+1)) and a key that already signed it. The key's authorisation is checked before the
    /// passphrase is asked for. The key is a key file (--key) or a PKCS#11 token key
    /// (--pkcs11-module, --pkcs11-token, --pkcs11-key).
    #[command(group(clap::ArgGroup::new("signing_key").required(true).args(["key", "pkcs11_module"])))]
    Sign {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets, bins, or a file name in pending/.
        role: String,
        /// The signer's encrypted key file.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
    },
    /// Show each pending file's signatures (by holder and key id) and whether its thresholds
    /// are met (for a new root: the old root's threshold and its own).
    Status {
        /// The ceremony directory.
        dir: PathBuf,
    },
    /// Check every threshold and write the signed metadata for the mirror.
    ///
    /// Writes OUT/N.root.json for the whole root chain from 1, plus the newest N.targets.json
    /// and N.bins.json, then moves the pending files to DIR/published/. Refuses, writing
    /// nothing, when a threshold is unmet (naming the role and the count) or the roles do not
    /// fit together (for instance an online key in root that bins does not delegate to).
    Publish {
        /// The ceremony directory.
        dir: PathBuf,
        /// Output directory for `tufa import-metadata` (created if missing).
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
    },
    /// Create the next root version from the newest published root.
    ///
    /// Without options: the same keys with a fresh expiry (the yearly re-signing). Add or remove
    /// root keys and targets keys, change thresholds, or rotate the online key; a new online
    /// key also creates the next bins (delegating the hashed bins to it), and new targets keys
    /// also create the next targets. KEY references are a key id, a unique key id prefix of
    /// at least 8 hex digits, a holder name, or a public key file.
    RotateRoot {
        /// The ceremony directory.
        dir: PathBuf,
        #[arg(long = "add-root-key", value_name = "PUB.json")]
        add_root_keys: Vec<PathBuf>,
        #[arg(long = "remove-root-key", value_name = "KEY")]
        remove_root_keys: Vec<String>,
        #[arg(long, value_name = "T")]
        root_threshold: Option<u32>,
        #[arg(long = "add-targets-key", value_name = "PUB.json")]
        add_targets_keys: Vec<PathBuf>,
        #[arg(long = "remove-targets-key", value_name = "KEY")]
        remove_targets_keys: Vec<String>,
        #[arg(long, value_name = "T")]
        targets_threshold: Option<u32>,
        /// The mirror's new online key (public part).
        #[arg(long, value_name = "PUB.json")]
        online_key: Option<PathBuf>,
        /// Lifetime of the new versions (default: the ceremony's).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
    },
    /// Create the next version of root, targets or bins with a fresh expiry (re-signing before
    /// expiry).
    ///
    /// `resign targets` can also change the keys `bins` is delegated to (--add-bins-key,
    /// --remove-bins-key, --bins-threshold), which creates the next bins too. `resign root` is
    /// `rotate-root` without changes.
    Resign {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets or bins.
        #[arg(value_parser = ["root", "targets", "bins"])]
        role: String,
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
        #[arg(long = "add-bins-key", value_name = "PUB.json")]
        add_bins_keys: Vec<PathBuf>,
        #[arg(long = "remove-bins-key", value_name = "KEY")]
        remove_bins_keys: Vec<String>,
        #[arg(long, value_name = "T")]
        bins_threshold: Option<u32>,
    },
    /// Delete a pending file (an abandoned rotation or re-signing).
    Discard {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets, bins, or a file name in pending/.
        role: String,
    },
    /// Verify the published chain offline and print a summary.
    ///
    /// Checks the root chain (v1 by its own threshold; every later root by the old root's
    /// threshold and its own), targets and bins signatures, the online key shared by root and
    /// bins, and expiry. DIR is a ceremony directory or a `publish --out` directory. Exits 1
    /// when anything is wrong.
    Verify {
        /// A ceremony directory, or a `publish --out` directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn read_public(paths: &[PathBuf]) -> Result<Vec<PublicKeyFile>, CeremonyError> {
    paths.iter().map(|p| PublicKeyFile::read(p)).collect()
}

fn print(report: &Report) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!("{report}");
}

fn default_holder(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into())
}

fn run(cli: Cli) -> Result<(), CeremonyError> {
    let now = jiff::Timestamp::now();
    match cli.command {
        Command::Keygen {
            out,
            holder,
            passphrase,
            pkcs11,
        } => {
            let holder = holder.unwrap_or_else(|| default_holder(&out));
            tufa_ceremony::keyfile::check_holder(&holder)?;
            if let Some(cfg) = pkcs11.config()? {
                let public = tufa_ceremony::generate_pkcs11_key(&cfg, &out, &holder)?;
                println!(
                    "generated key `{}` inside PKCS#11 token `{}` (not extractable)",
                    cfg.key_label, cfg.token_label
                );
                println!("wrote public key    {}", out.display());
                println!("holder: {}", public.holder);
                println!("keyid:  {}", public.keyid);
                println!("public: ed25519 {}", public.key.keyval.public);
                return Ok(());
            }
            let source = PassphraseSource::from_cli(passphrase.passphrase_file);
            let pass = source.new_key(&format!("the new key `{}`", out.display()))?;
            let generated = tufa_ceremony::generate_key_file(&out, &holder, &pass, KdfParams::default())?;
            println!("{generated}");
        }
        Command::ExportPublic { key, out, holder } => {
            let public = tufa_ceremony::export_public(&key, &out, holder.as_deref())?;
            println!("wrote public key {}", out.display());
            println!("holder: {}", public.holder);
            println!("keyid:  {}", public.keyid);
            println!("public: ed25519 {}", public.key.keyval.public);
        }
        Command::Init {
            dir,
            root_keys,
            root_threshold,
            targets_keys,
            targets_threshold,
            bins_keys,
            bins_threshold,
            online_key,
            bins_bit_length,
            expires_days,
        } => {
            let opts = InitOptions {
                root_keys: read_public(&root_keys)?,
                root_threshold,
                targets_keys: read_public(&targets_keys)?,
                targets_threshold,
                bins_keys: read_public(&bins_keys)?,
                bins_threshold,
                online_key: PublicKeyFile::read(&online_key)?,
                bins_bit_length,
                expires_days,
            };
            let (_, report) = Ceremony::init(&dir, &opts, now)?;
            print(&report);
        }
        Command::Sign {
            dir,
            role,
            key,
            passphrase,
            pkcs11,
        } => {
            let ceremony = Ceremony::open(&dir)?;
            let source = match (key, pkcs11.config()?) {
                (Some(path), None) => KeySource::File {
                    path,
                    passphrase: PassphraseSource::from_cli(passphrase.passphrase_file),
                },
                (None, Some(cfg)) => KeySource::Pkcs11(cfg),
                _ => {
                    return Err(CeremonyError::Usage(
                        "give either --key FILE or --pkcs11-module/--pkcs11-token/--pkcs11-key".into(),
                    ));
                }
            };
            print(&ceremony.sign(&role, &source)?);
        }
        Command::Status { dir } => {
            let status = Ceremony::open(&dir)?.status(now)?;
            for w in &status.warnings {
                eprintln!("warning: {w}");
            }
            println!("{status}");
        }
        Command::Publish { dir, out } => {
            let report = Ceremony::open(&dir)?.publish(&out, now)?;
            println!("{report}");
        }
        Command::RotateRoot {
            dir,
            add_root_keys,
            remove_root_keys,
            root_threshold,
            add_targets_keys,
            remove_targets_keys,
            targets_threshold,
            online_key,
            expires_days,
        } => {
            let mut ceremony = Ceremony::open(&dir)?;
            let opts = RotateRootOptions {
                add_root_keys: read_public(&add_root_keys)?,
                remove_root_keys,
                root_threshold,
                add_targets_keys: read_public(&add_targets_keys)?,
                remove_targets_keys,
                targets_threshold,
                online_key: online_key.as_deref().map(PublicKeyFile::read).transpose()?,
                expires_days,
            };
            print(&ceremony.rotate_root(&opts, now)?);
        }
        Command::Resign {
            dir,
            role,
            expires_days,
            add_bins_keys,
            remove_bins_keys,
            bins_threshold,
        } => {
            let mut ceremony = Ceremony::open(&dir)?;
            let bins_options =
                !add_bins_keys.is_empty() || !remove_bins_keys.is_empty() || bins_threshold.is_some();
            if role != "targets" && bins_options {
                return Err(CeremonyError::Usage(
                    "--add-bins-key, --remove-bins-key and --bins-threshold only apply to `resign targets`"
                        .into(),
                ));
            }
            let report = match role.as_str() {
                "root" => ceremony.resign_root(expires_days, now)?,
                "targets" => ceremony.resign_targets(
                    &ResignTargetsOptions {
                        add_bins_keys: read_public(&add_bins_keys)?,
                        remove_bins_keys,
                        bins_threshold,
                        expires_days,
                    },
                    now,
                )?,
                _ => ceremony.resign_bins(expires_days, now)?,
            };
            print(&report);
        }
        Command::Discard { dir, role } => {
            print(&Ceremony::open(&dir)?.discard(&role)?);
        }
        Command::Verify { dir } => {
            let report = if dir.join(tufa_ceremony::ceremony::CEREMONY_FILE).is_file() {
                Ceremony::open(&dir)?.verify(now)?
            } else {
                tufa_ceremony::verify_metadata_dir(&dir, &Default::default(), now)?
            };
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!("{report}");
        }
    }
    Ok(())
}
