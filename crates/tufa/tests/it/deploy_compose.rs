//! `deploy/compose.yaml` and its files under `deploy/compose/`: the tufa services run the
//! image built from deploy/Containerfile, locked down; the readers serve on the port the
//! config and nginx name; the writer runs real `tufa` subcommands on the plan's schedule; the
//! secrets are wired where the config looks for them. The scripts the compose file mounts
//! (secrets-env.sh, init-secrets.sh) and the readers' healthcheck command run for real.
//! (No container engine here: the file itself is not brought up by the tests.)

use std::collections::BTreeSet;
use std::path::Path;

use tufa_fake_upstream::demo_projects;
use yaml_rust2::Yaml;

use crate::deploy_yaml::*;
use crate::*;

const CONFIG_IN_CONTAINER: &str = "/etc/tufa/tufa.toml";
const TUFA_SERVICES: &[&str] = &["writer", "reader-1", "reader-2"];
const READERS: &[&str] = &["reader-1", "reader-2"];

fn compose() -> Yaml {
    load_one(&deploy_dir().join("compose.yaml"))
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_badvalue(), "compose.yaml: no service `{name}`");
    s
}

fn compose_config() -> (String, toml::Table) {
    let text = std::fs::read_to_string(deploy_dir().join("compose/tufa.toml")).unwrap();
    let table = toml_config(&text, "deploy/compose/tufa.toml");
    (text, table)
}

/// `(source, target)` of a service's secrets (short syntax: target = source).
fn secrets_of(svc: &Yaml, name: &str) -> Vec<(String, String)> {
    seq_at(svc, "secrets", name)
        .iter()
        .map(|s| match s {
            Yaml::String(short) => (short.clone(), short.clone()),
            long => (
                str_at(long, "source", name).to_owned(),
                str_at(long, "target", name).to_owned(),
            ),
        })
        .collect()
}

/// `host:container[:mode]` bind mounts and volumes, as (host, container, mode).
fn volumes_of(svc: &Yaml, name: &str) -> Vec<(String, String, String)> {
    strings_at(svc, "volumes", name)
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            assert!((2..=3).contains(&parts.len()), "{name}: volume `{v}`");
            (
                parts[0].to_owned(),
                parts[1].to_owned(),
                parts.get(2).unwrap_or(&"rw").to_string(),
            )
        })
        .collect()
}

/// The healthcheck's `test` as one string (after `CMD`).
fn healthcheck(svc: &Yaml, name: &str) -> String {
    let test = strings_at(svc, "healthcheck.test", name);
    assert_eq!(
        test.first().map(String::as_str),
        Some("CMD"),
        "{name}: healthcheck {test:?}"
    );
    test[1..].join(" ")
}

#[test]
fn deploy_compose_tufa_services_run_the_containerfile_image_locked_down() {
    let c = compose();
    let image = str_at(service(&c, "writer"), "image", "writer").to_owned();
    let containerfile = deploy_dir().join("Containerfile").canonicalize().unwrap();
    let user = containerfile_user();
    for name in TUFA_SERVICES {
        let svc = service(&c, name);
        assert_eq!(
            str_at(svc, "image", name),
            image,
            "{name}: one image for every tufa service"
        );
        // compose resolves build.context against the compose file's directory.
        let context = deploy_dir().join(str_at(svc, "build.context", name));
        let dockerfile = context.join(str_at(svc, "build.dockerfile", name));
        assert_eq!(
            dockerfile.canonicalize().ok(),
            Some(containerfile.clone()),
            "{name}: build"
        );
        assert!(
            context.join("Cargo.toml").is_file(),
            "{name}: the build context is the repository root"
        );
        assert_eq!(
            str_at(svc, "user", name),
            user,
            "{name}: the Containerfile's USER"
        );
        assert_eq!(svc["read_only"].as_bool(), Some(true), "{name}: read_only");
        assert_eq!(strings_at(svc, "cap_drop", name), ["ALL"], "{name}: cap_drop");
        assert!(
            strings_at(svc, "security_opt", name).contains(&"no-new-privileges:true".to_owned()),
            "{name}: no-new-privileges"
        );
        assert!(svc["privileged"].is_badvalue(), "{name}: privileged");
        // The entrypoint script is mounted from deploy/compose/.
        let entrypoint = strings_at(svc, "entrypoint", name);
        assert_eq!(entrypoint.first().map(String::as_str), Some("/bin/sh"), "{name}");
        let script_in_container = &entrypoint[1];
        let volumes = volumes_of(svc, name);
        for (host, container) in [
            ("./compose/secrets-env.sh", script_in_container.as_str()),
            ("./compose/tufa.toml", CONFIG_IN_CONTAINER),
        ] {
            assert!(
                volumes
                    .iter()
                    .any(|(h, c, m)| h == host && c == container && m == "ro"),
                "{name}: {host} is not mounted read-only at {container}: {volumes:?}"
            );
            assert!(deploy_dir().join(host).is_file(), "{host} does not exist");
        }
    }
    // Every image is pinned; the caching proxy is locked down like tufa.
    for (name, svc) in entries(&c["services"], "services") {
        let image = str_at(svc, "image", name);
        let tag = image.rsplit_once(':').map(|(_, t)| t);
        assert!(
            tag.is_some_and(|t| t != "latest" && !t.contains('/')),
            "{name}: image `{image}` is not pinned"
        );
    }
    let cache = service(&c, "cache");
    assert_eq!(cache["read_only"].as_bool(), Some(true));
    assert_eq!(strings_at(cache, "cap_drop", "cache"), ["ALL"]);
    let cache_user = str_at(cache, "user", "cache");
    assert!(
        !cache_user.starts_with("0") && !cache_user.starts_with("root"),
        "cache runs as {cache_user}"
    );
}

#[test]
fn deploy_compose_readers_serve_the_configured_port_behind_nginx() {
    let c = compose();
    let (_, config) = compose_config();
    let port = port_of(toml_str(&config, "serve.listen", "compose/tufa.toml"));
    assert_eq!(
        port,
        containerfile_exposed_port(),
        "[serve] listen and the Containerfile's EXPOSE"
    );
    let nginx_conf = std::fs::read_to_string(deploy_dir().join("nginx/tufa-cache.conf")).unwrap();
    let upstreams: BTreeSet<String> = nginx_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter(|rest| !rest.starts_with('{'))
        .map(|rest| rest.split([' ', ';']).next().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = READERS.iter().map(|r| format!("{r}:{port}")).collect();
    assert_eq!(
        upstreams, want,
        "nginx's upstream servers are the readers on [serve] listen's port"
    );

    for name in READERS {
        let svc = service(&c, name);
        let command = strings_at(svc, "command", name);
        assert_eq!(
            command,
            ["tufa", "--config", CONFIG_IN_CONTAINER, "serve"],
            "{name}"
        );
        assert_real_tufa_command(&command[1..], name);
        assert!(
            strings_at(svc, "expose", name).contains(&port.to_string()),
            "{name}: does not expose {port}"
        );
        let check = healthcheck(svc, name);
        assert!(
            check.contains(&format!("/dev/tcp/127.0.0.1/{port} ")) && check.contains("GET /readyz "),
            "{name}: the healthcheck does not ask /readyz on {port}: {check}"
        );
        // A reader holds no keys and no index.
        let secrets = secrets_of(svc, name);
        assert!(
            secrets
                .iter()
                .all(|(source, _)| !source.contains("online") && !source.contains("writer")),
            "{name}: {secrets:?}"
        );
        assert!(
            volumes_of(svc, name)
                .iter()
                .all(|(_, container, _)| container != "/var/lib/tufa"),
            "{name} mounts the writer's data directory"
        );
        assert_eq!(
            str_at(svc, "depends_on.s3-init.condition", name),
            "service_completed_successfully"
        );
    }

    // nginx: the example config, on the port it listens on, health-checked through /healthz,
    // started once both readers are healthy.
    let cache = service(&c, "cache");
    let listen = nginx_conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("listen "))
        .and_then(|l| l.trim_end_matches(';').parse::<u16>().ok())
        .expect("tufa-cache.conf: `listen PORT;`");
    assert!(
        volumes_of(cache, "cache")
            .iter()
            .any(|(h, c, m)| h == "./nginx/tufa-cache.conf"
                && c == "/etc/nginx/conf.d/default.conf"
                && m == "ro"),
        "cache does not mount deploy/nginx/tufa-cache.conf"
    );
    assert!(
        strings_at(cache, "ports", "cache")
            .iter()
            .any(|p| p.ends_with(&format!(":{listen}"))),
        "cache does not publish nginx's port {listen}"
    );
    let check = healthcheck(cache, "cache");
    assert!(
        check.contains(&format!("127.0.0.1:{listen}/healthz")),
        "cache healthcheck: {check}"
    );
    for reader in READERS {
        assert_eq!(
            str_at(cache, &format!("depends_on.{reader}.condition"), "cache"),
            "service_healthy"
        );
    }
}

#[test]
fn deploy_compose_writer_syncs_every_15_minutes_and_refreshes_hourly() {
    let c = compose();
    let writer = service(&c, "writer");
    let command = strings_at(writer, "command", "writer");
    assert_eq!(command[..2], ["/bin/sh", "-c"], "writer: {command:?}");
    let script = &command[2];
    let prefix = format!("tufa --config {CONFIG_IN_CONTAINER} ");
    let mut subcommands = BTreeSet::new();
    for line in script.lines().filter(|l| l.contains("tufa ")) {
        let at = line
            .find(&prefix)
            .unwrap_or_else(|| panic!("writer: `{line}` runs tufa without --config"));
        let args: Vec<String> = line[at..]
            .split_whitespace()
            .skip(1)
            .take_while(|w| !w.starts_with('|') && !w.starts_with('&') && !w.starts_with(';'))
            .map(str::to_owned)
            .collect();
        assert_real_tufa_command(&args, "writer");
        subcommands.insert(args[2].clone());
    }
    assert_eq!(
        subcommands,
        BTreeSet::from(["sync".to_owned(), "refresh".to_owned()])
    );
    // 900 s between rounds, refresh every 4th: sync every 15 minutes, refresh hourly.
    assert!(script.contains("sleep 900\n"), "{script}");
    assert!(script.contains("round % 4"), "{script}");
    // Compose interpolates `$x`: the script's own shell variables must be written `$$`.
    assert!(
        !script.replace("$$", "").contains('$'),
        "unescaped `$` in the writer script: {script}"
    );

    // The index lives in a named volume at [storage] index's directory; the online key is the
    // secret the config names.
    let (_, config) = compose_config();
    let index_dir = parent_of(toml_str(&config, "storage.index", "compose/tufa.toml"));
    let volumes = volumes_of(writer, "writer");
    let (volume, _, _) = volumes
        .iter()
        .find(|(_, container, mode)| container == index_dir && mode == "rw")
        .unwrap_or_else(|| panic!("writer: nothing writable mounted at {index_dir}: {volumes:?}"));
    assert!(
        !c["volumes"][volume.as_str()].is_badvalue(),
        "volume `{volume}` is not declared"
    );
    let online_key = toml_str(&config, "tuf.online_key", "compose/tufa.toml");
    let secrets = secrets_of(writer, "writer");
    assert!(
        secrets
            .iter()
            .any(|(_, target)| format!("/run/secrets/{target}") == online_key),
        "writer: no secret at [tuf] online_key = {online_key}: {secrets:?}"
    );
    assert_eq!(
        str_at(writer, "depends_on.s3-init.condition", "writer"),
        "service_completed_successfully"
    );
}

#[test]
fn deploy_compose_secrets_are_declared_and_wired_to_the_environment() {
    let c = compose();
    let init_script = std::fs::read_to_string(deploy_dir().join("compose/init-secrets.sh")).unwrap();
    let declared: BTreeSet<&str> = entries(&c["secrets"], "secrets")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (name, svc) in entries(&c["services"], "services") {
        for (source, _) in secrets_of(svc, name) {
            assert!(
                declared.contains(source.as_str()),
                "{name}: secret `{source}` is not declared"
            );
        }
    }
    for (name, secret) in entries(&c["secrets"], "secrets") {
        let file = str_at(secret, "file", name);
        let file_name = file
            .strip_prefix("./compose/secrets/")
            .unwrap_or_else(|| panic!("secret {name}: {file} is not under ./compose/secrets/"));
        assert!(
            init_script.contains(file_name),
            "secret {name}: init-secrets.sh does not create {file_name}"
        );
    }
    // Readers and writer have different S3 users, each with its secret key as
    // AWS_SECRET_ACCESS_KEY (which secrets-env.sh exports).
    let key_id = |name: &str| str_at(service(&c, name), "environment.AWS_ACCESS_KEY_ID", name).to_owned();
    let secret_source = |name: &str| {
        secrets_of(service(&c, name), name)
            .into_iter()
            .find(|(_, target)| target == "AWS_SECRET_ACCESS_KEY")
            .unwrap_or_else(|| panic!("{name}: no secret as AWS_SECRET_ACCESS_KEY"))
            .0
    };
    assert_ne!(key_id("writer"), key_id("reader-1"));
    assert_eq!(key_id("reader-1"), key_id("reader-2"));
    assert_ne!(secret_source("writer"), secret_source("reader-1"));
    // The init container creates exactly these users, with these secrets.
    let init = strings_at(service(&c, "s3-init"), "command", "s3-init").join("\n");
    for name in ["writer", "reader-1"] {
        let line = format!(
            "mc admin user add trial {} \"$$(cat /run/secrets/{})\"",
            key_id(name),
            secret_source(name)
        );
        assert!(init.contains(&line), "s3-init does not run `{line}`:\n{init}");
    }
    // The bucket the config names, versioned.
    let (_, config) = compose_config();
    let url = toml_str(&config, "storage.url", "compose/tufa.toml");
    let bucket = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("[storage] url = {url}: not s3://"));
    for line in [
        format!("mc mb --ignore-existing trial/{bucket}"),
        format!("mc version enable trial/{bucket}"),
    ] {
        assert!(init.contains(&line), "s3-init does not run `{line}`");
    }
    let endpoint = toml_str(&config, "storage.endpoint", "compose/tufa.toml");
    assert_eq!(endpoint, "http://s3:9000");
    assert!(!service(&c, "s3").is_badvalue());
}

#[test]
fn deploy_compose_secrets_env_exports_aws_secrets_and_runs_the_command() {
    let script = deploy_dir().join("compose/secrets-env.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("AWS_SECRET_ACCESS_KEY"), "s3cr3t with space\n").unwrap();
    std::fs::write(dir.path().join("AWS_bad-name"), "x").unwrap();
    std::fs::write(dir.path().join("tufa-online-key.json"), "{}").unwrap();
    let out = std::process::Command::new("sh")
        .arg(&script)
        .args([
            "sh",
            "-c",
            "printf '%s|%s' \"$AWS_SECRET_ACCESS_KEY\" \"${AWS_ACCESS_KEY_ID:-unset}\"",
        ])
        .env("TUFA_SECRETS_DIR", dir.path())
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "s3cr3t with space|unset");
    assert!(stderr(&out).contains("AWS_bad-name"), "{}", stderr(&out));
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("TUFA_SECRETS_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no command is a usage error");
}

#[test]
fn deploy_compose_init_secrets_creates_every_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let run = || {
        std::process::Command::new("sh")
            .arg(deploy_dir().join("compose/init-secrets.sh"))
            .arg(&secrets)
            .env("TUFA", env!("CARGO_BIN_EXE_tufa"))
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let c = compose();
    let mut contents = Vec::new();
    for (name, secret) in entries(&c["secrets"], "secrets") {
        let file_name = str_at(secret, "file", name)
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let path = secrets.join(&file_name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{file_name}: readable by the container's user");
        if file_name.ends_with(".json") {
            continue;
        }
        assert_eq!(text.len(), 32, "{file_name}: {text:?}");
        assert!(
            text.bytes().all(|b| b.is_ascii_hexdigit()),
            "{file_name}: {text:?}"
        );
        contents.push(text);
    }
    assert_eq!(
        contents.iter().collect::<BTreeSet<_>>().len(),
        contents.len(),
        "secrets repeat"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // The online key is a real one: tufa reads it at the path the compose config names.
    let key = secrets.join("tufa-online-key.json");
    let config = dir.path().join("tufa.toml");
    std::fs::write(
        &config,
        format!("[tuf]\nonline_key = {:?}\n", key.display().to_string()),
    )
    .unwrap();
    let show = tufa()
        .arg("--config")
        .arg(&config)
        .args(["online-key", "show"])
        .output()
        .unwrap();
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(secrets.join("online.pub.json").is_file());

    // A second run keeps everything.
    let before: Vec<Vec<u8>> = ["s3-root-password", "tufa-online-key.json"]
        .iter()
        .map(|f| std::fs::read(secrets.join(f)).unwrap())
        .collect();
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("kept"), "{}", stdout(&out));
    let after: Vec<Vec<u8>> = ["s3-root-password", "tufa-online-key.json"]
        .iter()
        .map(|f| std::fs::read(secrets.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);

    // Without a tufa binary: exit 2 and what to do.
    let out = std::process::Command::new("sh")
        .arg(deploy_dir().join("compose/init-secrets.sh"))
        .arg(dir.path().join("other"))
        .env("TUFA", "/nonexistent/tufa")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("TUFA="), "{}", stderr(&out));
}

/// The readers' compose healthcheck, run for real against a reader (its port rewritten):
/// healthy while it serves, unhealthy once it is gone.
#[test]
fn deploy_compose_reader_healthcheck_probes_a_real_reader() {
    let c = compose();
    let (_, config) = compose_config();
    let port = port_of(toml_str(&config, "serve.listen", "compose/tufa.toml"));
    let test = strings_at(service(&c, "reader-1"), "healthcheck.test", "reader-1");
    assert_eq!(test[..3], ["CMD", "bash", "-c"]);
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    m.tufa(&["sync"]).assert().success();
    let mut reader = crate::deploy_nginx::Reader::start(&m.config(), m.dir.path().join("reader.log"));
    let probe = test[3].replace(&format!("/{port} "), &format!("/{} ", reader.port));
    assert_ne!(probe, test[3], "the healthcheck names port {port}");
    let run = |probe: &str| {
        std::process::Command::new("bash")
            .args(["-c", probe])
            .current_dir(Path::new("/"))
            .output()
            .unwrap()
    };
    let out = run(&probe);
    assert!(
        out.status.success(),
        "healthcheck failed on a ready reader: {}\n{}",
        stderr(&out),
        reader.log()
    );
    // Not a check that passes on any answer: /readyz's 503 would fail it.
    let not_found = probe.replace("/readyz", "/nothing-here");
    assert!(!run(&not_found).status.success(), "the healthcheck passes a 404");
    reader.kill();
    assert!(
        !run(&probe).status.success(),
        "the healthcheck passes without a reader"
    );
}
