//! `tufa-ceremony`: the offline key ceremony tool for tufa's root, targets and bins keys. A
//! thin command line over the `tufa_ceremony` library: clap parses every argument into the
//! library's typed values (a bad value is a usage error, exit 2), then one library call per
//! command. See docs/KEY-CEREMONY.md.
//!
//! Output: results on stdout; warnings and the one-line error on stderr; questions and
//! passphrase prompts on the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tufa_ceremony::ceremony::CEREMONY_FILE;
use tufa_ceremony::types::parse_bin_layout;
use tufa_ceremony::{
    Ceremony, CeremonyError, Confirmation, ExpiryDays, HolderName, InitOptions, KdfParams, KeySelector,
    KeySource, OfflineRole, PassphraseSource, PendingSelector, PinSource, PublicKeyFile, Report,
    ResignTargetsOptions, RotateRootOptions, Threshold, TokenKey,
};
use tufa_tuf::BinLayout;

const AFTER_HELP: &str = "\
Passphrases: typed at the terminal prompt in a real ceremony. For drills and tests only, \
--passphrase-file FILE (the passphrase is the whole file minus one trailing line break; spaces \
count) or the TUFA_CEREMONY_PASSPHRASE variable; every use of either prints a warning, and \
keygen refuses both without --drill. A PKCS#11 PIN is prompted for, or read from \
TUFA_PKCS11_PIN (with a warning).

Exit codes: 0 ok, 1 failure, 2 usage, 3 (status only) signatures still missing.
  1  failure: something found while working (files, keys, ceremony state, nothing pending, a
     wrong passphrase, thresholds unmet at publish, a declined confirmation)
  2  usage: the command line is wrong (unknown or conflicting options, missing options, values
     that do not parse such as a threshold of 0 or an unknown role), or a prompt is needed and
     there is no terminal
  3  `status` only: a pending file still lacks signatures

Runbook: docs/KEY-CEREMONY.md.";

const SIGN_AFTER_HELP: &str = "\
Exit codes: 0 signed; 1 failure (not authorised, already signed, wrong passphrase, \
confirmation declined: nothing written); 2 usage (including no terminal to confirm on and no \
--yes).";

const STATUS_AFTER_HELP: &str = "\
Exit codes: 0 every pending file meets its thresholds (or nothing is pending); 1 failure (not a \
ceremony directory, unreadable files); 2 usage; 3 signatures still missing.";

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
    /// DRILLS AND TESTS ONLY: read the passphrase from FILE (its whole content minus one
    /// trailing line break; spaces count) instead of the terminal prompt. Warns on every use.
    /// Without it, TUFA_CEREMONY_PASSPHRASE is used when set (also with a warning).
    #[arg(long, value_name = "FILE", conflicts_with = "pkcs11_module")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    fn source(&self) -> PassphraseSource {
        PassphraseSource::from_cli(self.passphrase_file.clone())
    }
}

/// A key inside a PKCS#11 token (YubiKey, HSM) instead of a key file. The PIN is prompted for
/// (after the confirmation), or read from TUFA_PKCS11_PIN when set (drills; with a warning).
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
    fn token(&self) -> Option<TokenKey> {
        let (Some(module), Some(token), Some(key)) =
            (&self.pkcs11_module, &self.pkcs11_token, &self.pkcs11_key)
        else {
            return None;
        };
        Some(TokenKey {
            module: module.clone(),
            token_label: token.clone(),
            key_label: key.clone(),
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an ed25519 key from the OS random source, encrypted with a passphrase.
    ///
    /// Writes FILE (mode 0600: argon2id-derived key, XChaCha20-Poly1305) and FILE.pub.json
    /// (public key, key id, holder), and prints the key id and public key for the ceremony
    /// record. Never overwrites a file. Each key holder runs this for their own key, typing a
    /// passphrase only they know at the prompt (twice), and keeps FILE on their own medium.
    ///
    /// --passphrase-file and TUFA_CEREMONY_PASSPHRASE are refused (exit 2) unless --drill is
    /// given: a variable left exported from a drill would give every holder the same
    /// passphrase.
    ///
    /// With --pkcs11-module/--pkcs11-token/--pkcs11-key the key pair is generated inside the
    /// token instead (not extractable) and --out names the public key file to write.
    Keygen {
        /// The encrypted key file to create (with PKCS#11: the public key file).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Who holds the key (shown by `status`); defaults to the file name.
        #[arg(long, value_name = "NAME")]
        holder: Option<HolderName>,
        /// A drill or test key: allow the passphrase from --passphrase-file or
        /// TUFA_CEREMONY_PASSPHRASE (each use still warns). Real keys take the passphrase from
        /// the terminal prompt.
        #[arg(long)]
        drill: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
    },
    /// Write the public key file of a key: a ceremony key file (no passphrase needed), or an
    /// online key file in tufa's plaintext format (run on the mirror; only the public half is
    /// written; `tufa online-key show --public-out FILE` does the same).
    ExportPublic {
        /// An encrypted ceremony key, or tufa's online key file (`[tuf] online_key`).
        key: PathBuf,
        /// The public key file to create.
        #[arg(long, value_name = "PUB.json")]
        out: PathBuf,
        /// Holder name to record (default: the key file's holder, or `online`).
        #[arg(long, value_name = "NAME")]
        holder: Option<HolderName>,
    },
    /// Create a ceremony directory with unsigned root, targets and bins version 1.
    ///
    /// Writes DIR/ceremony.json and DIR/pending/{1.root.json,1.targets.json,1.bins.json}. Root
    /// lists the root keys (threshold T), the targets keys, and the online key for snapshot
    /// and timestamp; targets delegates every target to `bins`; bins delegates the hashed bins
    /// (2^bit-length of them) to the online key. Key files are public key files (*.pub.json);
    /// the order they are given in is the holder order of every listing.
    ///
    /// A threshold above the number of keys given is a usage error (exit 2); a key given twice,
    /// a private key file, or the online key among the offline keys is a failure (exit 1)
    /// naming the key and the file.
    Init {
        /// The ceremony directory to create (must not exist, or be empty).
        dir: PathBuf,
        /// Root key holders' public keys (repeat the flag or list several), in holder order.
        #[arg(long = "root-key", value_name = "PUB.json", num_args = 1.., required = true)]
        root_keys: Vec<PathBuf>,
        /// Root signatures required (2 or more in production).
        #[arg(long, value_name = "T")]
        root_threshold: Threshold,
        /// Targets key holders' public keys.
        #[arg(long = "targets-key", value_name = "PUB.json", num_args = 1.., required = true)]
        targets_keys: Vec<PathBuf>,
        #[arg(long, value_name = "T", default_value = "1")]
        targets_threshold: Threshold,
        /// Bins key holders' public keys.
        #[arg(long = "bins-key", value_name = "PUB.json", num_args = 1.., required = true)]
        bins_keys: Vec<PathBuf>,
        #[arg(long, value_name = "T", default_value = "1")]
        bins_threshold: Threshold,
        /// The mirror's online key, public part only. Make the file on the mirror host with
        /// `tufa --config /path/tufa.toml online-key generate --public-out FILE` (a new key) or
        /// `tufa --config /path/tufa.toml online-key show --public-out FILE` (the existing
        /// key), and bring it on removable media.
        #[arg(long, value_name = "PUB.json")]
        online_key: PathBuf,
        /// log2 of the number of hashed bins (1 to 16); must match the mirror's
        /// `[tuf] bins_bit_length`.
        #[arg(long, value_name = "BITS", default_value = "14", value_parser = parse_bin_layout)]
        bins_bit_length: BinLayout,
        /// Lifetime of root, targets and bins in days (1 to 3650; also the default for later
        /// versions).
        #[arg(long, value_name = "DAYS", default_value = "365")]
        expires_days: ExpiryDays,
    },
    /// Add one signature to a pending file, with one key holder's key, after the holder
    /// confirms what is signed.
    ///
    /// ROLE is root, targets, bins, or a pending file name such as 2.root.json. First refuses a
    /// key that is not authorised for the file (for root v(N+1): the keys of root vN or of root
    /// v(N+1)) or that already signed it. Then prints a summary on stdout: file, role,
    /// version, expiry, the payload sha256 (the value `status` prints, for holders to read
    /// aloud), the signatures so far against each threshold, and the changes since the
    /// previous published version of the role (keys added or removed with their holders,
    /// thresholds, expiry, delegations, the online key). Then asks on the terminal
    /// `Sign ROLE vN with KEY (holder)? Type "yes": `; any other answer writes nothing
    /// (exit 1). Only then is the passphrase (or PIN) asked for and the signature added.
    ///
    /// The key is a key file (--key) or a PKCS#11 token key (--pkcs11-module, --pkcs11-token,
    /// --pkcs11-key; its authorisation is checked after the PIN).
    #[command(
        group(clap::ArgGroup::new("signing_key").required(true).args(["key", "pkcs11_module"])),
        after_help = SIGN_AFTER_HELP
    )]
    Sign {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets, bins, or a file name in pending/ (2.root.json).
        role: PendingSelector,
        /// The signer's encrypted key file.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// DRILLS AND TESTS: print the summary and sign without asking. Without it, sign needs
        /// a terminal to ask on (exit 2 when there is none).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
    },
    /// Show each pending file's signatures (in holder order) and whether its thresholds are
    /// met (for a new root: the old root's threshold and its own).
    ///
    /// Exits 3 while any pending file lacks signatures, 0 once all are met (or nothing is
    /// pending), so scripts can wait on it.
    #[command(after_help = STATUS_AFTER_HELP)]
    Status {
        /// The ceremony directory.
        dir: PathBuf,
    },
    /// Check every threshold and write the signed metadata for the mirror.
    ///
    /// Writes OUT/N.root.json for the whole root chain from 1, plus the newest N.targets.json
    /// and N.bins.json, then moves the pending files to DIR/published/. Refuses (exit 1),
    /// writing nothing, when a threshold is unmet (naming the role, the count and who has not
    /// signed yet) or the roles do not fit together (for instance an online key in root that
    /// bins does not delegate to).
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
    /// also create the next targets. KEY is a holder name, a key id or a unique prefix of at
    /// least 8 hex digits of one, or a public key file. Added keys join the holder order in
    /// the order given.
    RotateRoot {
        /// The ceremony directory.
        dir: PathBuf,
        #[arg(long = "add-root-key", value_name = "PUB.json")]
        add_root_keys: Vec<PathBuf>,
        #[arg(long = "remove-root-key", value_name = "KEY")]
        remove_root_keys: Vec<KeySelector>,
        #[arg(long, value_name = "T")]
        root_threshold: Option<Threshold>,
        #[arg(long = "add-targets-key", value_name = "PUB.json")]
        add_targets_keys: Vec<PathBuf>,
        #[arg(long = "remove-targets-key", value_name = "KEY")]
        remove_targets_keys: Vec<KeySelector>,
        #[arg(long, value_name = "T")]
        targets_threshold: Option<Threshold>,
        /// The mirror's new online key, public part only (on the mirror host: `tufa --config
        /// /path/tufa.toml online-key generate --public-out FILE`).
        #[arg(long, value_name = "PUB.json")]
        online_key: Option<PathBuf>,
        /// Lifetime of the new versions in days (default: the ceremony's).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<ExpiryDays>,
    },
    /// Create the next version of root, targets or bins with a fresh expiry (re-signing before
    /// expiry).
    ///
    /// `resign targets` can also change the keys `bins` is delegated to (--add-bins-key,
    /// --remove-bins-key, --bins-threshold), which creates the next bins too; those options
    /// with another role are a usage error. `resign root` is `rotate-root` without changes.
    Resign {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets or bins.
        role: OfflineRole,
        /// Lifetime of the new version in days (default: the ceremony's).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<ExpiryDays>,
        #[arg(long = "add-bins-key", value_name = "PUB.json")]
        add_bins_keys: Vec<PathBuf>,
        #[arg(long = "remove-bins-key", value_name = "KEY")]
        remove_bins_keys: Vec<KeySelector>,
        #[arg(long, value_name = "T")]
        bins_threshold: Option<Threshold>,
    },
    /// Delete a pending file (an abandoned rotation or re-signing).
    Discard {
        /// The ceremony directory.
        dir: PathBuf,
        /// root, targets, bins, or a file name in pending/.
        role: PendingSelector,
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn warn(message: &str) {
    eprintln!("warning: {message}");
}

fn read_public(paths: &[PathBuf]) -> Result<Vec<PublicKeyFile>, CeremonyError> {
    paths.iter().map(|p| PublicKeyFile::read(p)).collect()
}

fn print(report: &Report) {
    for w in &report.warnings {
        warn(w);
    }
    println!("{report}");
}

fn run(cli: Cli) -> Result<ExitCode, CeremonyError> {
    let now = jiff::Timestamp::now();
    match cli.command {
        Command::Keygen {
            out,
            holder,
            drill,
            passphrase,
            pkcs11,
        } => {
            let holder = match holder {
                Some(h) => h,
                None => HolderName::from_file_name(&out).map_err(CeremonyError::Usage)?,
            };
            keygen(&out, &holder, drill, &passphrase, &pkcs11)?;
        }
        Command::ExportPublic { key, out, holder } => {
            let public = tufa_ceremony::export_public(&key, &out, holder.as_ref())?;
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
                bins_layout: bins_bit_length,
                expires_days,
            };
            let (_, report) = Ceremony::init(&dir, &opts, now)?;
            print(&report);
        }
        Command::Sign {
            dir,
            role,
            key,
            yes,
            passphrase,
            pkcs11,
        } => {
            let source = match (key, pkcs11.token()) {
                (Some(path), None) => KeySource::File {
                    path,
                    passphrase: passphrase.source(),
                },
                (None, Some(token)) => KeySource::Pkcs11 {
                    token,
                    pin: PinSource::from_env(),
                },
                _ => {
                    return Err(CeremonyError::Usage(
                        "give either --key FILE or --pkcs11-module/--pkcs11-token/--pkcs11-key".into(),
                    ));
                }
            };
            let mut confirmation = Confirmation::new(yes)?;
            let ceremony = Ceremony::open(&dir)?;
            let plan = ceremony.prepare_sign(role, &source)?;
            for w in &plan.warnings {
                warn(w);
            }
            println!("{plan}");
            if !confirmation.confirm(&plan.question())? {
                return Err(CeremonyError::Declined);
            }
            if let Some(w) = source.warning() {
                warn(&w);
            }
            print(&plan.sign(&ceremony, &source)?);
        }
        Command::Status { dir } => {
            let status = Ceremony::open(&dir)?.status(now)?;
            for w in &status.warnings {
                warn(w);
            }
            println!("{status}");
            if !status.thresholds_met() {
                return Ok(ExitCode::from(3));
            }
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
            print(&Ceremony::open(&dir)?.rotate_root(&opts, now)?);
        }
        Command::Resign {
            dir,
            role,
            expires_days,
            add_bins_keys,
            remove_bins_keys,
            bins_threshold,
        } => {
            let bins_options =
                !add_bins_keys.is_empty() || !remove_bins_keys.is_empty() || bins_threshold.is_some();
            if role != OfflineRole::Targets && bins_options {
                return Err(CeremonyError::Usage(format!(
                    "--add-bins-key, --remove-bins-key and --bins-threshold only apply to `resign targets`, not `resign {role}`"
                )));
            }
            let mut ceremony = Ceremony::open(&dir)?;
            let report = match role {
                OfflineRole::Root => ceremony.resign_root(expires_days, now)?,
                OfflineRole::Targets => ceremony.resign_targets(
                    &ResignTargetsOptions {
                        add_bins_keys: read_public(&add_bins_keys)?,
                        remove_bins_keys,
                        bins_threshold,
                        expires_days,
                    },
                    now,
                )?,
                OfflineRole::Bins => ceremony.resign_bins(expires_days, now)?,
            };
            print(&report);
        }
        Command::Discard { dir, role } => {
            print(&Ceremony::open(&dir)?.discard(role)?);
        }
        Command::Verify { dir } => {
            let report = if dir.join(CEREMONY_FILE).is_file() {
                Ceremony::open(&dir)?.verify(now)?
            } else {
                tufa_ceremony::verify_metadata_dir(&dir, &Default::default(), now)?
            };
            for w in &report.warnings {
                warn(w);
            }
            println!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `keygen`: a token key, or an encrypted key file whose passphrase comes from the terminal
/// (or, with --drill only, from the file or the variable).
fn keygen(
    out: &std::path::Path,
    holder: &HolderName,
    drill: bool,
    passphrase: &PassphraseArgs,
    pkcs11: &Pkcs11Args,
) -> Result<(), CeremonyError> {
    if let Some(token) = pkcs11.token() {
        let pin = PinSource::from_env();
        if let Some(w) = pin.warning() {
            warn(&w);
        }
        let public = tufa_ceremony::generate_pkcs11_key(&token, &pin, out, holder)?;
        println!(
            "generated key `{}` inside PKCS#11 token `{}` (not extractable)",
            token.key_label, token.token_label
        );
        println!("wrote public key    {}", out.display());
        println!("holder: {}", public.holder);
        println!("keyid:  {}", public.keyid);
        println!("public: ed25519 {}", public.key.keyval.public);
        return Ok(());
    }
    let source = passphrase.source();
    match (&source, drill) {
        (PassphraseSource::File(path), false) => {
            return Err(CeremonyError::Usage(format!(
                "keygen: --passphrase-file `{}` is for drills and tests; a real key's passphrase is typed at the terminal prompt. Drop --passphrase-file, or pass --drill to make a drill key",
                path.display()
            )));
        }
        (PassphraseSource::Env, false) => {
            return Err(CeremonyError::Usage(format!(
                "keygen: {} is set, but a real key's passphrase is typed at the terminal prompt: unset it, or pass --drill to make a drill key with it",
                tufa_ceremony::PASSPHRASE_ENV
            )));
        }
        _ => {}
    }
    if let Some(w) = source.warning() {
        warn(&w);
    }
    let pass = source.new_key(&format!("the new key `{}`", out.display()))?;
    if let Some(hint) = source.whitespace_hint(&pass) {
        warn(&hint);
    }
    let generated = tufa_ceremony::generate_key_file(out, holder, &pass, KdfParams::default())?;
    println!("{generated}");
    Ok(())
}
