//! `deploy/kubernetes/`: every manifest parses and is listed in the kustomization; the reader
//! Deployment probes /healthz and /readyz on the port `[serve] listen` names, runs as non-root
//! with a read-only root file system, no privilege escalation, no capabilities and the
//! RuntimeDefault seccomp profile, with resources set; the writer CronJobs run real `tufa`
//! subcommands once at a time with the index and the online key where the config expects them;
//! secrets are only referenced. `kubectl kustomize` renders the directory when kubectl is
//! installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use yaml_rust2::Yaml;

use crate::deploy_yaml::*;

const CONFIG_IN_CONTAINER: &str = "/etc/tufa/tufa.toml";

fn kube_dir() -> PathBuf {
    deploy_dir().join("kubernetes")
}

/// Every object of every manifest, with the file it is in.
fn objects() -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(kube_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "kustomization.yaml" || path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in load_all(&path) {
            out.push((name.clone(), doc));
        }
    }
    out
}

fn only<'a>(objects: &'a [(String, Yaml)], kind: &str) -> Vec<&'a Yaml> {
    objects
        .iter()
        .filter(|(_, o)| scalar(&o["kind"]) == Some(kind))
        .map(|(_, o)| o)
        .collect()
}

fn one<'a>(objects: &'a [(String, Yaml)], kind: &str) -> &'a Yaml {
    let found = only(objects, kind);
    assert_eq!(found.len(), 1, "one {kind} expected, found {}", found.len());
    found[0]
}

fn name_of(o: &Yaml) -> &str {
    str_at(o, "metadata.name", "object")
}

/// The ConfigMap's tufa.toml.
fn config(objects: &[(String, Yaml)]) -> toml::Table {
    let cm = one(objects, "ConfigMap");
    let text = scalar(&cm["data"]["tufa.toml"]).expect("ConfigMap data `tufa.toml`");
    toml_config(text, "ConfigMap tufa.toml")
}

fn labels(node: &Yaml, what: &str) -> BTreeMap<String, String> {
    match node {
        Yaml::BadValue => BTreeMap::new(),
        n => entries(n, what)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), scalar_string(v).unwrap()))
            .collect(),
    }
}

/// What every tufa pod shares: non-root, locked down, resources, config mounted, secrets by
/// reference, a real `tufa --config … <command>` (the image's entrypoint is `tufa`). Returns
/// the command's subcommand.
fn check_pod(what: &str, pod: &Yaml) -> String {
    let uid: i64 = containerfile_user().split(':').next().unwrap().parse().unwrap();
    assert_eq!(
        pod["automountServiceAccountToken"].as_bool(),
        Some(false),
        "{what}: service account token"
    );
    let psc = &pod["securityContext"];
    assert_eq!(
        psc["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}: pod runAsNonRoot"
    );
    assert_eq!(
        psc["runAsUser"].as_i64(),
        Some(uid),
        "{what}: the Containerfile's user"
    );
    assert_eq!(str_at(psc, "seccompProfile.type", what), "RuntimeDefault");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod[key].as_bool() != Some(true), "{what}: {key}");
    }
    let containers = seq_at(pod, "containers", what);
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(
        sc["readOnlyRootFilesystem"].as_bool(),
        Some(true),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"].as_bool(),
        Some(false),
        "{what}: allowPrivilegeEscalation"
    );
    assert!(sc["privileged"].as_bool() != Some(true), "{what}: privileged");
    assert_eq!(
        sc["runAsNonRoot"].as_bool(),
        Some(true),
        "{what}: container runAsNonRoot"
    );
    assert_eq!(
        strings_at(sc, "capabilities.drop", what),
        ["ALL"],
        "{what}: capabilities"
    );
    assert!(
        sc["capabilities"]["add"].is_badvalue(),
        "{what}: capabilities added"
    );
    assert_eq!(str_at(sc, "seccompProfile.type", what), "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                scalar_string(&c["resources"][kind][resource]).is_some(),
                "{what}: no resources.{kind}.{resource}"
            );
        }
    }
    // The image kustomization.yaml rewrites.
    assert_eq!(str_at(c, "image", what), "tufa", "{what}: image");
    assert!(
        c["command"].is_badvalue(),
        "{what}: command overrides the image's `tufa` entrypoint"
    );
    let args = strings_at(c, "args", what);
    assert_eq!(
        args[..2],
        ["--config", CONFIG_IN_CONTAINER],
        "{what}: args {args:?}"
    );
    assert_eq!(args.len(), 3, "{what}: args {args:?}");
    assert_real_tufa_command(&args, what);

    // Secrets only by reference.
    for env in seq_at(c, "env", what) {
        let name = str_at(env, "name", what);
        if name.starts_with("AWS_") {
            assert!(env["value"].is_badvalue(), "{what}: {name} has a literal value");
            assert!(
                !env["valueFrom"]["secretKeyRef"]["name"].is_badvalue(),
                "{what}: {name} is not from a Secret"
            );
        }
    }
    let env_names: BTreeSet<&str> = seq_at(c, "env", what)
        .iter()
        .map(|e| str_at(e, "name", what))
        .collect();
    for needed in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(env_names.contains(needed), "{what}: no {needed}");
    }

    // The config from the ConfigMap at /etc/tufa, and a writable /tmp (the root is read-only).
    let mounts = mounts(pod, what);
    assert_eq!(
        mounts.get("/etc/tufa").map(|v| v.0.as_str()),
        Some("configMap:tufa-config"),
        "{what}"
    );
    assert_eq!(
        mounts.get("/tmp").map(|v| v.0.as_str()),
        Some("emptyDir"),
        "{what}"
    );
    args[2].clone()
}

/// A pod's mounts: mount path → (volume source as `kind:name`, read-only).
fn mounts(pod: &Yaml, what: &str) -> BTreeMap<String, (String, bool)> {
    let volumes: BTreeMap<&str, String> = seq_at(pod, "volumes", what)
        .iter()
        .map(|v| {
            let source = if let Some(cm) = scalar(&v["configMap"]["name"]) {
                format!("configMap:{cm}")
            } else if let Some(secret) = scalar(&v["secret"]["secretName"]) {
                format!("secret:{secret}")
            } else if let Some(claim) = scalar(&v["persistentVolumeClaim"]["claimName"]) {
                format!("pvc:{claim}")
            } else if !v["emptyDir"].is_badvalue() {
                "emptyDir".to_owned()
            } else {
                panic!("{what}: volume {v:?}")
            };
            (str_at(v, "name", what), source)
        })
        .collect();
    seq_at(&seq_at(pod, "containers", what)[0], "volumeMounts", what)
        .iter()
        .map(|m| {
            let volume = str_at(m, "name", what);
            let source = volumes
                .get(volume)
                .unwrap_or_else(|| panic!("{what}: mount of an undeclared volume `{volume}`"));
            (
                str_at(m, "mountPath", what).to_owned(),
                (source.clone(), m["readOnly"].as_bool() == Some(true)),
            )
        })
        .collect()
}

#[test]
fn deploy_kubernetes_kustomization_lists_every_manifest() {
    let kustomization = load_one(&kube_dir().join("kustomization.yaml"));
    let listed: BTreeSet<String> = strings_at(&kustomization, "resources", "kustomization")
        .into_iter()
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(kube_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files, "kustomization.yaml resources");
    let images = seq_at(&kustomization, "images", "kustomization");
    assert!(
        images.iter().any(|i| scalar(&i["name"]) == Some("tufa")),
        "kustomization.yaml sets the image `tufa` the manifests use"
    );
    let objects = objects();
    let kinds: BTreeSet<&str> = objects.iter().map(|(_, o)| str_at(o, "kind", "object")).collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "CronJob",
        "PersistentVolumeClaim",
    ] {
        assert!(kinds.contains(kind), "no {kind}");
    }
    // References, never values: no Secret objects in the repository.
    assert!(!kinds.contains("Secret"), "a Secret with values is committed");
    for (file, o) in &objects {
        assert!(scalar(&o["apiVersion"]).is_some(), "{file}: no apiVersion");
        assert!(
            scalar(&o["metadata"]["name"]).is_some(),
            "{file}: no metadata.name"
        );
    }
}

#[test]
fn deploy_kubernetes_readers_probe_healthz_and_readyz_as_non_root() {
    let objects = objects();
    let config = config(&objects);
    let port = port_of(toml_str(&config, "serve.listen", "ConfigMap tufa.toml"));
    assert_eq!(port, containerfile_exposed_port());
    let url = toml_str(&config, "storage.url", "ConfigMap tufa.toml");
    assert!(url.starts_with("s3://"), "[storage] url = {url}");

    let deployment = one(&objects, "Deployment");
    let what = name_of(deployment);
    assert!(
        deployment["spec"]["replicas"].as_i64().unwrap_or(1) >= 2,
        "{what}: replicas"
    );
    let pod = at(deployment, "spec.template.spec");
    let pod_labels = labels(at(deployment, "spec.template.metadata.labels"), what);
    let selector = labels(at(deployment, "spec.selector.matchLabels"), what);
    assert!(!selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    assert_eq!(check_pod(what, pod), "serve");

    let container = &seq_at(pod, "containers", what)[0];
    let ports: BTreeMap<String, i64> = seq_at(container, "ports", what)
        .iter()
        .map(|p| {
            (
                str_at(p, "name", what).to_owned(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        ports.values().all(|p| *p == i64::from(port)),
        "{what}: ports {ports:?} vs listen {port}"
    );
    let probe_port = |probe: &str| -> i64 {
        let p = &container[probe]["httpGet"]["port"];
        p.as_i64()
            .or_else(|| scalar(p).and_then(|name| ports.get(name).copied()))
            .unwrap_or_else(|| panic!("{what}: {probe} port {p:?}"))
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(
            str_at(container, &format!("{probe}.httpGet.path"), what),
            path,
            "{what}: {probe}"
        );
        assert_eq!(probe_port(probe), i64::from(port), "{what}: {probe} port");
    }
    if !container["startupProbe"].is_badvalue() {
        assert_eq!(str_at(container, "startupProbe.httpGet.path", what), "/healthz");
    }
    // Readers hold no keys and no index: only the config and /tmp.
    let mounts = mounts(pod, what);
    assert_eq!(
        mounts.keys().collect::<Vec<_>>(),
        ["/etc/tufa", "/tmp"],
        "{what}: mounts"
    );
    assert!(mounts["/etc/tufa"].1, "{what}: the config is mounted writable");
    let termination = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    assert!(
        termination > i64::try_from(tufa_server::SHUTDOWN_GRACE.as_secs()).unwrap(),
        "{what}: terminationGracePeriodSeconds {termination} cuts the server's own grace period"
    );

    // The Service and the PodDisruptionBudget select these pods.
    let service = one(&objects, "Service");
    let svc_selector = labels(at(service, "spec.selector"), "Service");
    assert!(!svc_selector.is_empty() && svc_selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    for p in seq_at(service, "spec.ports", "Service") {
        let target = &p["targetPort"];
        let target = target
            .as_i64()
            .or_else(|| scalar(target).and_then(|n| ports.get(n).copied()))
            .unwrap_or_else(|| panic!("Service targetPort {target:?} is not a container port"));
        assert_eq!(target, i64::from(port));
    }
    let pdb = one(&objects, "PodDisruptionBudget");
    let pdb_selector = labels(at(pdb, "spec.selector.matchLabels"), "PodDisruptionBudget");
    assert!(!pdb_selector.is_empty() && pdb_selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    let min = pdb["spec"]["minAvailable"]
        .as_i64()
        .expect("PodDisruptionBudget minAvailable");
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
    assert!(
        min >= 1 && min < replicas,
        "minAvailable {min} with {replicas} replicas"
    );
}

#[test]
fn deploy_kubernetes_writer_cronjobs_run_real_commands_once_at_a_time() {
    let objects = objects();
    let config = config(&objects);
    let index_dir = parent_of(toml_str(&config, "storage.index", "ConfigMap tufa.toml")).to_owned();
    let online_key = toml_str(&config, "tuf.online_key", "ConfigMap tufa.toml");
    let (key_dir, key_file) = online_key.rsplit_once('/').unwrap();
    let pvc = name_of(one(&objects, "PersistentVolumeClaim")).to_owned();
    let kustomization = std::fs::read_to_string(kube_dir().join("kustomization.yaml")).unwrap();

    let mut schedules = BTreeMap::new();
    for cron in only(&objects, "CronJob") {
        let what = name_of(cron);
        assert_eq!(str_at(cron, "spec.concurrencyPolicy", what), "Forbid", "{what}");
        let pod = at(cron, "spec.jobTemplate.spec.template.spec");
        let command = check_pod(what, pod);
        assert!(
            matches!(str_at(pod, "restartPolicy", what), "Never" | "OnFailure"),
            "{what}: restartPolicy"
        );
        assert!(
            at(pod, "securityContext.fsGroup").as_i64().is_some(),
            "{what}: fsGroup (the index volume must be writable by the user)"
        );
        let mounts = mounts(pod, what);
        assert_eq!(
            mounts.get(&index_dir),
            Some(&(format!("pvc:{pvc}"), false)),
            "{what}: the index PVC at [storage] index's directory {index_dir}"
        );
        let (source, read_only) = mounts
            .get(key_dir)
            .unwrap_or_else(|| panic!("{what}: nothing mounted at [tuf] online_key's directory {key_dir}"));
        assert!(
            source.starts_with("secret:") && *read_only,
            "{what}: online key from {source}"
        );
        let secret = source.strip_prefix("secret:").unwrap();
        assert!(
            kustomization.contains(&format!("create secret generic {secret} --from-file={key_file}=")),
            "kustomization.yaml does not say how to create {secret} with the key as {key_file}"
        );
        schedules.insert(command, str_at(cron, "spec.schedule", what).to_owned());
    }
    assert_eq!(schedules.len(), 2, "{schedules:?}");
    assert_eq!(
        schedules.get("sync").map(String::as_str),
        Some("*/15 * * * *"),
        "sync every 15 minutes"
    );
    let refresh = schedules.get("refresh").expect("a refresh CronJob");
    let fields: Vec<&str> = refresh.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[0].parse::<u8>().is_ok_and(|m| m < 60) && fields[1..] == ["*"; 4],
        "refresh hourly: {refresh}"
    );
}

/// `kubectl kustomize` (offline) renders the directory with the image set, when kubectl is
/// installed. It is an extra check: the YAML tests above do not need it.
#[test]
fn deploy_kubernetes_kustomize_renders() {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: kubectl not found; skipping `kubectl kustomize deploy/kubernetes`");
        return;
    }
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(kube_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl kustomize: {}", crate::stderr(&out));
    let rendered = crate::stdout(&out);
    let docs = yaml_rust2::YamlLoader::load_from_str(&rendered).unwrap();
    let images: BTreeSet<String> = docs
        .iter()
        .flat_map(|d| {
            let pod = if scalar(&d["kind"]) == Some("CronJob") {
                at(d, "spec.jobTemplate.spec.template.spec")
            } else {
                at(d, "spec.template.spec")
            };
            seq_at(pod, "containers", "rendered")
                .iter()
                .filter_map(|c| scalar(&c["image"]).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(images.len(), 1, "one image everywhere: {images:?}");
    assert!(
        !images.contains("tufa"),
        "kustomize did not set the image: {images:?}"
    );
}
