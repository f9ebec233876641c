//! Reading `deploy/`'s YAML (the compose file, the Kubernetes manifests) for the deploy tests:
//! yaml-rust2 (YAML 1.2, aliases expanded) plus the `<<` merge keys compose files use, and
//! lookups that name the file and the path in every panic.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every document of a YAML file, merge keys resolved.
pub fn load_all(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!docs.is_empty(), "{}: no YAML document", path.display());
    docs.into_iter().map(resolve_merges).collect()
}

/// A file that holds exactly one YAML document.
pub fn load_one(path: &Path) -> Yaml {
    let mut docs = load_all(path);
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

/// Applies `<<: *anchor` (and `<<: [*a, *b]`): the merged mappings' keys are added where the
/// mapping does not set them itself, innermost merges first.
fn resolve_merges(node: Yaml) -> Yaml {
    match node {
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(resolve_merges).collect()),
        Yaml::Hash(hash) => {
            let merge_key = Yaml::String("<<".to_owned());
            let mut own = yaml_rust2::yaml::Hash::new();
            let mut merged = Vec::new();
            for (k, v) in hash {
                let v = resolve_merges(v);
                if k == merge_key {
                    match v {
                        Yaml::Hash(h) => merged.push(h),
                        Yaml::Array(list) => merged.extend(list.into_iter().map(|m| match m {
                            Yaml::Hash(h) => h,
                            other => panic!("`<<` merges a mapping, not {other:?}"),
                        })),
                        other => panic!("`<<` merges a mapping, not {other:?}"),
                    }
                } else {
                    own.insert(k, v);
                }
            }
            for m in merged {
                for (k, v) in m {
                    if !own.contains_key(&k) {
                        own.insert(k, v);
                    }
                }
            }
            Yaml::Hash(own)
        }
        other => other,
    }
}

/// `node` at a `.`-separated path of mapping keys (`spec.template.spec`); `BadValue` when
/// absent. Keys holding dots are looked up with `node["a.b"]` instead.
pub fn at<'a>(node: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.').fold(node, |n, key| &n[key])
}

/// The string at `path`, or a panic naming `what` and the path.
pub fn str_at<'a>(node: &'a Yaml, path: &str, what: &str) -> &'a str {
    scalar(at(node, path)).unwrap_or_else(|| panic!("{what}: no string at `{path}`: {:?}", at(node, path)))
}

/// A scalar as text (YAML 1.2 reads `8080` as an integer and `"8080"` as a string; both are
/// the same to the tools that read these files).
pub fn scalar(node: &Yaml) -> Option<&str> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s),
        _ => None,
    }
}

/// A scalar (string, integer, real or boolean) as an owned string.
pub fn scalar_string(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The sequence at `path` as strings (absent: empty).
pub fn strings_at(node: &Yaml, path: &str, what: &str) -> Vec<String> {
    match at(node, path) {
        Yaml::BadValue => Vec::new(),
        Yaml::Array(items) => items
            .iter()
            .map(|i| scalar_string(i).unwrap_or_else(|| panic!("{what}: `{path}` holds {i:?}")))
            .collect(),
        other => panic!("{what}: `{path}` is not a sequence: {other:?}"),
    }
}

/// The sequence at `path` (absent: empty).
pub fn seq_at<'a>(node: &'a Yaml, path: &str, what: &str) -> &'a [Yaml] {
    match at(node, path) {
        Yaml::BadValue => &[],
        Yaml::Array(items) => items,
        other => panic!("{what}: `{path}` is not a sequence: {other:?}"),
    }
}

/// A mapping's entries as (string key, value).
pub fn entries<'a>(node: &'a Yaml, what: &str) -> Vec<(&'a str, &'a Yaml)> {
    match node {
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| {
                let k = scalar(k).unwrap_or_else(|| panic!("{what}: key {k:?} is not a string"));
                (k, v)
            })
            .collect(),
        other => panic!("{what}: not a mapping: {other:?}"),
    }
}

/// `tufa ARGS --help` with the built binary succeeds: ARGS names a real subcommand with real
/// options (clap refuses unknown ones even before --help).
pub fn assert_real_tufa_command(args: &[String], what: &str) {
    let out = crate::tufa().args(args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "{what}: `tufa {}` is not a command the real CLI has: {}",
        args.join(" "),
        crate::stderr(&out)
    );
}

/// The port of a `host:port` listen address.
pub fn port_of(listen: &str) -> u16 {
    listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{listen}` has no port"))
}

/// A deploy config file (`tufa.toml`) as TOML.
pub fn toml_config(text: &str, what: &str) -> toml::Table {
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{what}: not TOML: {e}"))
}

/// A string at a `.`-separated path of a TOML table.
pub fn toml_str<'a>(table: &'a toml::Table, path: &str, what: &str) -> &'a str {
    let mut parts = path.split('.').peekable();
    let mut t = table;
    while let Some(key) = parts.next() {
        let value = t.get(key).unwrap_or_else(|| panic!("{what}: no `{path}`"));
        if parts.peek().is_none() {
            return value
                .as_str()
                .unwrap_or_else(|| panic!("{what}: `{path}` is not a string"));
        }
        t = value
            .as_table()
            .unwrap_or_else(|| panic!("{what}: `{key}` in `{path}` is not a table"));
    }
    panic!("{what}: empty path")
}

/// The directory part of an absolute path in a config.
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(dir, _)| dir)
        .unwrap_or_else(|| panic!("`{path}` is not an absolute path"))
}

/// The user the image runs as (`USER` in deploy/Containerfile): `uid:gid`.
pub fn containerfile_user() -> String {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("deploy/Containerfile has a USER")
        .trim()
        .to_owned()
}

/// The image the Containerfile's final stage exposes (`EXPOSE 8080`).
pub fn containerfile_exposed_port() -> u16 {
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("EXPOSE "))
        .expect("deploy/Containerfile has an EXPOSE")
        .trim()
        .parse()
        .unwrap()
}

/// Every `deploy/…` and `docs/…` path the deployment docs name exists.
#[test]
fn deploy_docs_name_files_that_exist() {
    let root = deploy_dir().join("..");
    for doc in ["docs/DEPLOYMENT.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for word in text.split(|c: char| c.is_whitespace() || "`()*,;".contains(c)) {
            let word = word.trim_end_matches(['.', ':']);
            if !(word.starts_with("deploy/") || word.starts_with("docs/")) || word.contains('…') {
                continue;
            }
            // Made by deploy/compose/init-secrets.sh, never committed.
            if word.starts_with("deploy/compose/secrets/") {
                continue;
            }
            assert!(
                root.join(word).exists(),
                "{doc} names `{word}`, which does not exist"
            );
        }
    }
}
