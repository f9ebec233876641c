//! `deploy/`: the systemd units and the Containerfile say what they claim (sandboxing, the
//! real CLI's commands, timers that name existing services) and `systemd-analyze verify`
//! accepts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::*;

/// Where ExecStart= finds the binary in the shipped units.
const INSTALLED_BIN: &str = "/usr/local/bin/tufa";
const CONFIG: &str = "/etc/tufa/tufa.toml";
const SERVICES: &[&str] = &["tufa-serve", "tufa-sync", "tufa-refresh"];
const TIMERS: &[&str] = &["tufa-sync", "tufa-refresh"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn systemd_dir() -> PathBuf {
    deploy_dir().join("systemd")
}

/// A unit file as `section -> key -> values` (a key may repeat; an empty assignment resets it,
/// as systemd does).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(path: &Path) -> Unit {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{}:{}: continuation lines are not used here",
            path.display(),
            n + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            unit.entry(name.to_owned()).or_default();
            continue;
        }
        let section = section
            .as_ref()
            .unwrap_or_else(|| panic!("{}:{}: key before any section", path.display(), n + 1));
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not `Key=value`: {line}", path.display(), n + 1));
        let values = unit
            .get_mut(section)
            .unwrap()
            .entry(key.trim().to_owned())
            .or_default();
        values.push(value.trim().to_owned());
    }
    unit
}

fn get<'a>(unit: &'a Unit, section: &str, key: &str) -> Option<&'a [String]> {
    unit.get(section)?.get(key).map(Vec::as_slice)
}

fn one<'a>(unit: &'a Unit, name: &str, section: &str, key: &str) -> &'a str {
    let values = get(unit, section, key).unwrap_or_else(|| panic!("{name}: no [{section}] {key}="));
    assert_eq!(values.len(), 1, "{name}: [{section}] {key}= set {values:?}");
    &values[0]
}

/// Every service: these directives, with exactly these values.
const SANDBOX: &[(&str, &str)] = &[
    ("User", "tufa"),
    ("Group", "tufa"),
    ("UMask", "0077"),
    ("ProtectSystem", "strict"),
    ("NoNewPrivileges", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectHome", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", ""),
];

#[test]
fn deploy_services_are_sandboxed_and_run_real_commands() {
    for name in SERVICES {
        let unit = parse_unit(&systemd_dir().join(format!("{name}.service")));
        for (key, want) in SANDBOX {
            assert_eq!(one(&unit, name, "Service", key), *want, "{name}: {key}=");
        }
        for key in ["DynamicUser", "AmbientCapabilities", "SuccessExitStatus"] {
            assert!(get(&unit, "Service", key).is_none(), "{name}: {key}= is set");
        }

        // Writers write only the data directory; the reader writes nothing and cannot see keys.
        let rw = get(&unit, "Service", "ReadWritePaths").unwrap_or_default();
        if *name == "tufa-serve" {
            assert!(rw.is_empty(), "{name}: ReadWritePaths={rw:?}");
            assert!(
                get(&unit, "Service", "StateDirectory").is_none(),
                "{name}: StateDirectory makes /var/lib/tufa writable"
            );
            assert_eq!(one(&unit, name, "Service", "ReadOnlyPaths"), "/var/lib/tufa");
            assert_eq!(one(&unit, name, "Service", "KillSignal"), "SIGTERM");
            // Longer than the server's own grace period, so it exits by itself.
            let stop = one(&unit, name, "Service", "TimeoutStopSec");
            let secs: u64 = stop.strip_suffix('s').unwrap().parse().unwrap();
            assert!(
                secs > tufa_server::SHUTDOWN_GRACE.as_secs(),
                "{name}: TimeoutStopSec={stop}"
            );
        } else {
            assert_eq!(rw, ["/var/lib/tufa"], "{name}: ReadWritePaths=");
            assert_eq!(one(&unit, name, "Service", "StateDirectory"), "tufa");
            assert_eq!(one(&unit, name, "Service", "Type"), "oneshot");
        }

        // ExecStart= is `tufa --config /etc/tufa/tufa.toml <command>`, and the real CLI has it.
        let exec = one(&unit, name, "Service", "ExecStart");
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(
            words[..3],
            [INSTALLED_BIN, "--config", CONFIG],
            "{name}: ExecStart={exec}"
        );
        let command = words
            .get(3)
            .unwrap_or_else(|| panic!("{name}: no command: {exec}"));
        assert_eq!(format!("tufa-{command}"), *name, "{name} runs `{command}`");
        tufa().args(&words[1..]).arg("--help").assert().success();
    }
}

#[test]
fn deploy_timers_name_existing_services() {
    let mut units: Vec<String> = std::fs::read_dir(systemd_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    units.sort();
    let mut want: Vec<String> = SERVICES.iter().map(|s| format!("{s}.service")).collect();
    want.extend(TIMERS.iter().map(|t| format!("{t}.timer")));
    want.sort();
    assert_eq!(units, want, "deploy/systemd/ holds exactly these units");

    for name in TIMERS {
        let unit = parse_unit(&systemd_dir().join(format!("{name}.timer")));
        let target = one(&unit, name, "Timer", "Unit");
        assert!(
            systemd_dir().join(target).is_file(),
            "{name}.timer starts {target}, which deploy/systemd/ does not have"
        );
        assert_eq!(one(&unit, name, "Timer", "Persistent"), "true", "{name}");
        assert!(
            get(&unit, "Timer", "OnCalendar").is_some(),
            "{name}: no OnCalendar="
        );
        assert!(get(&unit, "Timer", "RandomizedDelaySec").is_some(), "{name}");
        assert_eq!(one(&unit, name, "Install", "WantedBy"), "timers.target", "{name}");
    }
}

/// `systemd-analyze verify` on a copy whose ExecStart= names the built binary (verify checks
/// that it exists). It exits 0 even for unknown keys, so any diagnostic at all fails the test.
#[test]
fn deploy_units_pass_systemd_analyze_verify() {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("note: systemd-analyze not found; skipping `systemd-analyze verify`");
        return;
    };
    let copy = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(systemd_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(INSTALLED_BIN) || path.extension().unwrap() == "timer");
        let dest = copy.path().join(path.file_name().unwrap());
        std::fs::write(&dest, text.replace(INSTALLED_BIN, env!("CARGO_BIN_EXE_tufa"))).unwrap();
        files.push(dest);
    }
    let out = std::process::Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&files)
        .output()
        .unwrap();
    let diagnostics = stderr(&out);
    assert!(
        out.status.success() && diagnostics.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{diagnostics}{}",
        out.status,
        stdout(&out)
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[test]
fn deploy_containerfile_is_multi_stage_non_root_and_pinned() {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('&'))
        .filter_map(|l| {
            let (op, rest) = l.split_once(' ')?;
            Some((op.to_ascii_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, rest)| rest.as_str())
        .collect();
    assert!(froms.len() >= 2, "not multi-stage: FROM {froms:?}");
    for from in &froms {
        let image = from.split_whitespace().next().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t);
        assert!(
            tag.is_some_and(|t| t != "latest" && !t.contains('/')),
            "FROM {from}: pin a tag, never `latest` or none"
        );
    }
    assert!(
        instructions
            .iter()
            .any(|(op, rest)| op == "COPY" && rest.starts_with("--from=")),
        "the runtime stage copies the binary from the builder"
    );
    assert!(!text.contains(":latest"), "a `latest` tag");
    // The last USER is the one the container runs as: not root.
    let user = instructions
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, u)| u.as_str())
        .expect("no USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid.parse::<u32>() != Ok(0),
        "USER {user} is root"
    );
    assert_eq!(uid, "10001");
    for (op, want) in [
        ("EXPOSE", "8080"),
        ("ENTRYPOINT", r#"["tufa"]"#),
        ("VOLUME", r#"["/var/lib/tufa"]"#),
    ] {
        assert!(
            instructions.iter().any(|(o, r)| o == op && r == want),
            "no `{op} {want}`"
        );
    }
}
