//! Reading core metadata (`METADATA` / `PKG-INFO`, an RFC 822-style header block).

use std::collections::BTreeSet;
use std::str::FromStr as _;

use pep508_rs::{ExtraName, MarkerTree, MarkerTreeKind};

use crate::ProjectName;

/// The values of header `field` (case-insensitive), with continuation lines joined, up to the
/// blank line that starts the body.
pub fn header_values(metadata: &str, field: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in metadata.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A folded value: RFC 822 joins the lines with a space, but a value that starts on
            // the continuation line (`Requires-Dist:` then `  foo`) must not start with one.
            if let Some(c) = current.as_mut() {
                if !c.is_empty() {
                    c.push(' ');
                }
                c.push_str(line.trim());
            }
            continue;
        }
        out.extend(current.take());
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case(field)
        {
            current = Some(value.trim().to_owned());
        }
    }
    out.extend(current);
    out
}

/// One `Requires-Dist` entry, parsed with `pep508_rs`.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub name: ProjectName,
    /// The extras it asks of `name` (`foo[bar]`), normalized.
    pub extras: Vec<String>,
    /// When it applies (`; python_version < "3.9"`, `; extra == "socks"`); `true` if none.
    pub marker: MarkerTree,
    /// The entry as the metadata spells it, for reports.
    pub text: String,
}

/// The longest `Requires-Dist` value parsed (real ones are well under 200 bytes); a longer one
/// is followed by its name alone.
const MAX_REQUIREMENT_LEN: usize = 4096;

impl Dependency {
    /// Parses one `Requires-Dist` value. An entry `pep508_rs` cannot read (old metadata has
    /// some) keeps its name and is taken as unconditional: a mirror errs on the side of
    /// mirroring. `None` when not even a project name can be read.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(req) = parse_requirement(text) {
            return Some(Self {
                name: ProjectName::new(req.name.as_ref()).ok()?,
                extras: req.extras.iter().map(ToString::to_string).collect(),
                marker: req.marker,
                text: text.to_owned(),
            });
        }
        Some(Self {
            name: ProjectName::new(name_prefix(text)).ok()?,
            extras: Vec::new(),
            marker: MarkerTree::TRUE,
            text: text.chars().take(200).collect(),
        })
    }

    /// Whether it is needed by a project installed with `extras`, in at least one of
    /// `environments` (PEP 508 markers describing where the organisation installs, as in uv's
    /// `environments` setting). No environments: in any environment, which follows every
    /// conditional dependency. A marker too complex to decide is taken as applying.
    pub fn applies(&self, extras: &BTreeSet<String>, environments: &[MarkerTree]) -> bool {
        // Environments narrow what the extras alone allow, never widen it.
        let asked: Vec<ExtraName> = extras
            .iter()
            .filter_map(|e| ExtraName::from_str(e).ok())
            .collect();
        let anywhere = self.marker.evaluate_extras(&asked);
        if environments.is_empty() || !anywhere {
            return anywhere;
        }
        let fixed = with_extras(&self.marker, extras);
        environments.iter().any(|env| !fixed.is_disjoint(env))
    }
}

/// Parses a PEP 508 requirement with `pep508_rs`, guarded: the text is bounded, and names and
/// extras are checked first against PEP 508's identifier rule, because pep508_rs 0.9 panics on
/// some that its parser accepts but its name types refuse (`Foo.Bar_>=1`, `x[a_]`). A panic
/// that still happens is caught and reported as an error.
pub fn parse_requirement(text: &str) -> Result<pep508_rs::Requirement<pep508_rs::VerbatimUrl>, String> {
    let text = text.trim();
    if text.len() > MAX_REQUIREMENT_LEN {
        return Err(format!("longer than {MAX_REQUIREMENT_LEN} bytes"));
    }
    check_text(text)?;
    check_identifiers(text)?;
    let parsed = std::panic::catch_unwind(|| {
        pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(text).map_err(|e| e.to_string())
    });
    parsed.unwrap_or_else(|_| Err("the PEP 508 parser failed on it".to_owned()))
}

/// Parses a PEP 508 marker (`sys_platform == 'linux'`) with `pep508_rs`, guarded as
/// [`parse_requirement`] is.
pub fn parse_marker(text: &str) -> Result<MarkerTree, String> {
    let text = text.trim();
    if text.len() > MAX_REQUIREMENT_LEN {
        return Err(format!("longer than {MAX_REQUIREMENT_LEN} bytes"));
    }
    check_text(text)?;
    std::panic::catch_unwind(|| MarkerTree::from_str(text).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err("the PEP 508 parser failed on it".to_owned()))
}

/// Printable ASCII (and tabs) only: PEP 508 text is ASCII in practice, and pep508_rs 0.9
/// slices some non-ASCII input inside a character and panics.
fn check_text(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| !(c == '\t' || (' '..='~').contains(&c))) {
        Some(c) => Err(format!("contains {c:?}: only printable ASCII is read")),
        None => Ok(()),
    }
}

/// The leading run of name characters (ASCII letters, digits, `.`, `_`, `-`): where a
/// requirement's project name is.
fn name_prefix(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(text.len());
    &text[..end]
}

/// PEP 508 `identifier`: ASCII letters and digits, with `.`, `-`, `_` inside only.
fn is_identifier(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    s.starts_with(ok)
        && s.ends_with(ok)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The requirement's name, and its extras if it has any, are PEP 508 identifiers.
fn check_identifiers(text: &str) -> Result<(), String> {
    let name = name_prefix(text);
    if !is_identifier(name) {
        return Err(format!("`{name}` is not a valid project name"));
    }
    let rest = text[name.len()..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let Some((extras, _)) = extras.split_once(']') else {
            return Err("`[` without `]`".to_owned());
        };
        for extra in extras.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !is_identifier(extra) {
                return Err(format!("`{extra}` is not a valid extra name"));
            }
        }
    }
    Ok(())
}

/// `marker` with every extra it mentions decided: `true` if in `extras`, else `false`.
fn with_extras(marker: &MarkerTree, extras: &BTreeSet<String>) -> MarkerTree {
    let mut mentioned = BTreeSet::new();
    let mut budget = 10_000usize;
    collect_extras(marker, &mut mentioned, &mut budget);
    let mut fixed = marker.clone();
    for extra in mentioned {
        let op = if extras.contains(&extra) { "==" } else { "!=" };
        if let Ok(decided) = parse_marker(&format!("extra {op} '{extra}'")) {
            fixed.and(decided);
        }
    }
    fixed
}

/// The extras a marker mentions (visiting at most `budget` nodes).
fn collect_extras(marker: &MarkerTree, out: &mut BTreeSet<String>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let children: Vec<MarkerTree> = match marker.kind() {
        MarkerTreeKind::True | MarkerTreeKind::False => return,
        MarkerTreeKind::Version(m) => m.edges().map(|(_, t)| t).collect(),
        MarkerTreeKind::String(m) => m.children().map(|(_, t)| t).collect(),
        MarkerTreeKind::In(m) => m.children().map(|(_, t)| t).collect(),
        MarkerTreeKind::Contains(m) => m.children().map(|(_, t)| t).collect(),
        MarkerTreeKind::Extra(m) => {
            out.insert(m.name().to_string());
            m.children().map(|(_, t)| t).collect()
        }
    };
    for child in &children {
        collect_extras(child, out, budget);
    }
}

/// The `Requires-Dist` dependencies. Entries whose name is not a valid project name are
/// skipped (core metadata is upstream data, not trusted).
pub fn requires_dist(metadata: &str) -> Vec<Dependency> {
    header_values(metadata, "Requires-Dist")
        .iter()
        .filter_map(|req| Dependency::parse(req))
        .collect()
}

/// Whether the metadata's `Requires-Dist` can be trusted to be what an installer would find:
/// always for a wheel's METADATA; for an sdist's PKG-INFO only from metadata 2.2 (PEP 643) on,
/// and only if `Requires-Dist` is not `Dynamic` (computed at build time).
pub fn sdist_requirements_are_static(pkg_info: &str) -> bool {
    let version = header_values(pkg_info, "Metadata-Version");
    let Some((major, minor)) = version.first().and_then(|v| {
        let (major, minor) = v.trim().split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    }) else {
        return false;
    };
    (major, minor) >= (2, 2)
        && !header_values(pkg_info, "Dynamic")
            .iter()
            .any(|d| d.trim().eq_ignore_ascii_case("Requires-Dist"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(extras: &[&str]) -> BTreeSet<String> {
        extras.iter().map(|e| (*e).to_owned()).collect()
    }

    fn env(marker: &str) -> MarkerTree {
        MarkerTree::from_str(marker).unwrap()
    }

    #[test]
    fn a_value_that_starts_on_the_continuation_line_is_read() {
        let md = "Metadata-Version: 2.1\nName: x\nRequires-Dist:\n  idna>=2.5\nRequires-Dist: certifi\n  ; extra == 'ssl'\n\nbody\n";
        assert_eq!(
            header_values(md, "Requires-Dist"),
            ["idna>=2.5", "certifi ; extra == 'ssl'"]
        );
        let deps = requires_dist(md);
        assert_eq!(deps.len(), 2);
        assert_eq!(deps[0].name.as_str(), "idna");
        assert!(deps[0].applies(&set(&[]), &[]));
        assert!(!deps[1].applies(&set(&[]), &[]));
        assert!(deps[1].applies(&set(&["ssl"]), &[]));
    }

    #[test]
    fn reads_requires_dist() {
        let m = "Metadata-Version: 2.1\nName: httpx\nRequires-Dist: certifi\nRequires-Dist: httpcore==1.*\n\
                 requires-dist: anyio>=3.0 ; python_version >= \"3.8\"\nRequires-Dist: h2<5,>=3; extra == 'http2'\n\
                 Requires-Dist: Foo.Bar_baz[x] (>=1.0)\nRequires-Dist: zope.interface\n  ; extra == \"test\"\n\
                 Requires-Dist: not a requirement ((\n\
                 Summary: x\n\nRequires-Dist: not-a-header-this-is-the-body\n";
        let deps: Vec<(String, Vec<String>, bool)> = requires_dist(m)
            .into_iter()
            .map(|d| (d.name.to_string(), d.extras.clone(), d.applies(&set(&[]), &[])))
            .collect();
        let none = Vec::<String>::new;
        assert_eq!(
            deps,
            [
                ("certifi".to_owned(), none(), true),
                ("httpcore".to_owned(), none(), true),
                ("anyio".to_owned(), none(), true),
                ("h2".to_owned(), none(), false),
                ("foo-bar-baz".to_owned(), vec!["x".to_owned()], true),
                ("zope-interface".to_owned(), none(), false),
                // Unreadable by pep508_rs: its name, followed unconditionally.
                ("not".to_owned(), none(), true),
            ]
        );
    }

    #[test]
    fn names_and_extras_pep508_rs_would_panic_on_are_refused_not_fatal() {
        // pep508_rs 0.9.2 accepts these in its parser and then panics building the name.
        for text in ["Foo.Bar_>=3.8", "foo-(>=1)", "x[a_]", "x[ok, b-] ; extra == 'y'"] {
            assert!(parse_requirement(text).is_err(), "{text}");
        }
        // Not a valid project name either: skipped.
        assert!(Dependency::parse("Foo.Bar_>=3.8").is_none());
        let d = Dependency::parse("x[a_]").unwrap();
        assert_eq!((d.name.as_str(), d.extras.len()), ("x", 0));
        assert!(parse_requirement("requests[socks, use-chardet] >=2 ; python_version > '3'").is_ok());
        assert!(parse_requirement(&"a".repeat(MAX_REQUIREMENT_LEN + 1)).is_err());
        // Non-ASCII text made pep508_rs slice inside a character.
        let hostile = "h2<5,>=3; extra == ''ht.Bar_baz[xI]A\u{708b} (>=1.0)";
        assert!(parse_requirement(hostile).is_err());
        assert!(parse_marker("extra == '\u{708b}'").is_err());
        assert!(Dependency::parse(hostile).is_some_and(|d| d.name.as_str() == "h2"));
    }

    #[test]
    fn environments_narrow_conditional_dependencies() {
        let d = |text: &str| Dependency::parse(text).unwrap();
        let linux = [env("sys_platform == 'linux' and python_version >= '3.10'")];
        let both = [
            env("sys_platform == 'linux' and python_version >= '3.10'"),
            env("sys_platform == 'win32'"),
        ];
        let old_python = d("tomli>=1 ; python_version < '3.11'");
        let windows = d("colorama ; sys_platform == 'win32'");
        let plain = d("idna");
        // Conservative by default: every conditional dependency applies somewhere.
        for dep in [&old_python, &windows, &plain] {
            assert!(dep.applies(&set(&[]), &[]), "{}", dep.text);
        }
        assert!(old_python.applies(&set(&[]), &linux), "3.10 is older than 3.11");
        assert!(!old_python.applies(&set(&[]), &[env("python_version >= '3.11'")]));
        assert!(!windows.applies(&set(&[]), &linux));
        assert!(windows.applies(&set(&[]), &both));
        assert!(plain.applies(&set(&[]), &linux));
    }

    #[test]
    fn extras_combine_with_environments() {
        let socks = Dependency::parse("PySocks!=1.5.7,>=1.5.6 ; extra == 'socks'").unwrap();
        let win_socks = Dependency::parse(
            "win-inet-pton ; (sys_platform == 'win32' and python_version == '2.7') and extra == 'socks'",
        )
        .unwrap();
        let not_test = Dependency::parse("fast-thing ; extra != 'test'").unwrap();
        let linux = [env("sys_platform == 'linux'")];
        assert!(!socks.applies(&set(&[]), &linux));
        assert!(socks.applies(&set(&["socks"]), &linux));
        assert!(socks.applies(&set(&["socks", "other"]), &[]));
        assert!(!win_socks.applies(&set(&["socks"]), &linux));
        assert!(win_socks.applies(&set(&["socks"]), &[]));
        assert!(not_test.applies(&set(&[]), &linux));
        assert!(!not_test.applies(&set(&["test"]), &linux));
    }

    #[test]
    fn sdist_metadata_is_static_from_2_2_unless_dynamic() {
        assert!(!sdist_requirements_are_static(
            "Metadata-Version: 2.1\nName: x\n\n"
        ));
        assert!(sdist_requirements_are_static(
            "Metadata-Version: 2.2\nName: x\n\n"
        ));
        assert!(sdist_requirements_are_static(
            "Metadata-Version: 2.4\nName: x\nDynamic: Version\n\n"
        ));
        assert!(!sdist_requirements_are_static(
            "Metadata-Version: 2.4\nName: x\nDynamic: requires-dist\n\n"
        ));
        assert!(!sdist_requirements_are_static("Name: x\n\n"));
        assert!(!sdist_requirements_are_static("Metadata-Version: two\n\n"));
    }
}
