//! Reading core metadata (`METADATA` / `PKG-INFO`, an RFC 822-style header block).

use crate::ProjectName;

/// One `Requires-Dist` entry, reduced to what a mirror needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: ProjectName,
    /// Only needed with an extra (`; extra == "..."` in its marker).
    pub extra_only: bool,
}

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

/// The `Requires-Dist` dependencies. Entries whose name is not a valid project name are
/// skipped (core metadata is upstream data, not trusted).
pub fn requires_dist(metadata: &str) -> Vec<Dependency> {
    header_values(metadata, "Requires-Dist")
        .into_iter()
        .filter_map(|req| {
            let end = req
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                .unwrap_or(req.len());
            let name = ProjectName::new(&req[..end]).ok()?;
            let marker = req.split_once(';').map(|(_, m)| m).unwrap_or("");
            Some(Dependency {
                name,
                extra_only: marker.contains("extra"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!deps[0].extra_only);
        assert!(deps[1].extra_only);
    }

    #[test]
    fn reads_requires_dist() {
        let m = "Metadata-Version: 2.1\nName: httpx\nRequires-Dist: certifi\nRequires-Dist: httpcore==1.*\n\
                 requires-dist: anyio>=3.0 ; python_version >= \"3.8\"\nRequires-Dist: h2<5,>=3; extra == 'http2'\n\
                 Requires-Dist: Foo.Bar_baz[x] (>=1.0)\nRequires-Dist: zope.interface\n  ; extra == \"test\"\n\
                 Summary: x\n\nRequires-Dist: not-a-header-this-is-the-body\n";
        let deps: Vec<(String, bool)> = requires_dist(m)
            .into_iter()
            .map(|d| (d.name.to_string(), d.extra_only))
            .collect();
        assert_eq!(
            deps,
            [
                ("certifi".to_owned(), false),
                ("httpcore".to_owned(), false),
                ("anyio".to_owned(), false),
                ("h2".to_owned(), true),
                ("foo-bar-baz".to_owned(), false),
                ("zope-interface".to_owned(), true),
            ]
        );
    }
}
