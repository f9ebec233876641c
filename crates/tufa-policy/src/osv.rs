//! OSV advisories for PyPI (<https://ossf.github.io/osv-schema/>), read from a data dump: a
//! directory of OSV JSON files, or the ecosystem's `all.zip`.
//!
//! Parsing is tolerant: real dumps hold records with odd or missing fields. A record that is
//! not JSON, or has no `id`, is reported and skipped; an `affected` entry for another
//! ecosystem, or with ranges this reader does not understand (`SEMVER`, `GIT`), is skipped; a
//! version that is not PEP 440 is ignored. What could not be read is returned with the data so
//! the caller can say so.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use serde_json::Value;
use tufa_pypi::{ProjectName, Version};

/// Severity labels, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn from_label(label: &str) -> Option<Self> {
        Some(match label.to_ascii_uppercase().as_str() {
            "LOW" => Self::Low,
            "MODERATE" | "MEDIUM" => Self::Medium,
            "HIGH" => Self::High,
            "CRITICAL" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One advisory as it applies to one project.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    /// `MAL-…`: a malicious package (the OSV malicious-packages database).
    pub malicious: bool,
    /// The record's label (`database_specific.severity`), when it has one.
    pub severity: Option<Severity>,
    versions: Vec<Version>,
    /// `(introduced, fixed or None, last_affected or None)`.
    ranges: Vec<(Option<Version>, Option<Version>, Option<Version>)>,
}

impl Advisory {
    /// Whether `version` is affected.
    pub fn affects(&self, version: &Version) -> bool {
        if self.versions.iter().any(|v| v == version) {
            return true;
        }
        self.ranges.iter().any(|(introduced, fixed, last)| {
            introduced.as_ref().is_none_or(|i| version >= i)
                && fixed.as_ref().is_none_or(|f| version < f)
                && last.as_ref().is_none_or(|l| version <= l)
        })
    }
}

/// Every advisory of a dump, by normalised project name.
#[derive(Debug, Clone, Default)]
pub struct Advisories {
    by_project: HashMap<ProjectName, Vec<Advisory>>,
    records: usize,
}

impl Advisories {
    /// Reads a dump: `path` is a directory (every `*.json` below it) or a zip archive. Returns
    /// the advisories and a line for each record that could not be read.
    pub fn load(path: &Path) -> Result<(Self, Vec<String>), String> {
        let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
        if path.is_dir() {
            collect_dir(path, &mut docs).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        } else {
            let file =
                std::fs::File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
            let mut archive = zip::ZipArchive::new(file)
                .map_err(|e| format!("`{}` is not a zip archive: {e}", path.display()))?;
            for i in 0..archive.len() {
                let mut entry = archive
                    .by_index(i)
                    .map_err(|e| format!("`{}`: entry {i}: {e}", path.display()))?;
                if !entry.name().ends_with(".json") {
                    continue;
                }
                let name = entry.name().to_owned();
                let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 20));
                entry
                    .by_ref()
                    .take(16 << 20)
                    .read_to_end(&mut data)
                    .map_err(|e| format!("`{}`: {name}: {e}", path.display()))?;
                docs.push((name, data));
            }
        }
        let mut out = Self::default();
        let mut unreadable = Vec::new();
        for (name, data) in docs {
            match parse_record(&data) {
                Ok(records) => {
                    out.records += 1;
                    for (project, advisory) in records {
                        out.by_project.entry(project).or_default().push(advisory);
                    }
                }
                Err(e) => unreadable.push(format!("{name}: {e}")),
            }
        }
        Ok((out, unreadable))
    }

    /// Records read.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The advisories that affect `project` at `version`.
    pub fn affecting<'a>(
        &'a self,
        project: &ProjectName,
        version: &'a Version,
    ) -> impl Iterator<Item = &'a Advisory> {
        self.by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter(move |a| a.affects(version))
    }
}

fn collect_dir(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push((path.display().to_string(), std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// The PyPI entries of one OSV record.
fn parse_record(data: &[u8]) -> Result<Vec<(ProjectName, Advisory)>, String> {
    let record: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let id = record["id"].as_str().ok_or("no `id`")?.to_owned();
    if record.get("withdrawn").and_then(Value::as_str).is_some() {
        return Ok(Vec::new());
    }
    let malicious = id.starts_with("MAL-");
    let severity = record["database_specific"]["severity"]
        .as_str()
        .and_then(Severity::from_label);
    let mut out = Vec::new();
    for affected in record["affected"].as_array().into_iter().flatten() {
        let package = &affected["package"];
        if package["ecosystem"].as_str() != Some("PyPI") {
            continue;
        }
        let Some(project) = package["name"].as_str().and_then(|n| ProjectName::new(n).ok()) else {
            continue;
        };
        let versions = affected["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str()?.parse::<Version>().ok())
            .collect();
        let mut ranges = Vec::new();
        for range in affected["ranges"].as_array().into_iter().flatten() {
            if range["type"].as_str() != Some("ECOSYSTEM") {
                continue;
            }
            let mut current: Option<(Option<Version>, Option<Version>, Option<Version>)> = None;
            for event in range["events"].as_array().into_iter().flatten() {
                let parse = |key: &str| {
                    event[key]
                        .as_str()
                        .map(|v| if v == "0" { None } else { v.parse::<Version>().ok() })
                };
                if let Some(introduced) = parse("introduced") {
                    if let Some(open) = current.take() {
                        ranges.push(open);
                    }
                    current = Some((introduced, None, None));
                } else if let Some(fixed) = parse("fixed") {
                    if let Some((i, _, _)) = current.take() {
                        ranges.push((i, fixed, None));
                    }
                } else if let Some(last) = parse("last_affected")
                    && let Some((i, _, _)) = current.take()
                {
                    ranges.push((i, None, last));
                }
            }
            if let Some(open) = current {
                ranges.push(open);
            }
        }
        out.push((
            project,
            Advisory {
                id: id.clone(),
                malicious,
                severity,
                versions,
                ranges,
            },
        ));
    }
    Ok(out)
}
