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

    /// CVSS v3 qualitative rating of a base score (0.0 is "none", counted as low).
    fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::High
        } else if score >= 4.0 {
            Self::Medium
        } else {
            Self::Low
        }
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
    // The label GitHub's records carry; else the highest CVSS v3 base score of the record.
    let severity = record["database_specific"]["severity"]
        .as_str()
        .and_then(Severity::from_label)
        .or_else(|| {
            record["severity"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["score"].as_str())
                .filter_map(cvss3_base_score)
                .map(Severity::from_score)
                .max()
        });
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

/// The base score of a CVSS v3.0/v3.1 vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`),
/// by the specification's formula; `None` for anything else (CVSS v2 and v4 vectors included).
pub(crate) fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !matches!(parts.next()?, "CVSS:3.0" | "CVSS:3.1") {
        return None;
    }
    let metrics: std::collections::HashMap<&str, &str> = parts.filter_map(|p| p.split_once(':')).collect();
    let get = |k: &str| metrics.get(k).copied();
    let changed = match get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| match get(k) {
        Some("H") => Some(0.56),
        Some("L") => Some(0.22),
        Some("N") => Some(0.0),
        _ => None,
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss: f64 = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * av * ac * pr * ui;
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(round_up(raw))
}

/// CVSS v3.1 `Roundup`: the smallest one-decimal number at or above `x`.
fn round_up(x: f64) -> f64 {
    let int = (x * 100_000.0).round() as i64;
    if int % 10_000 == 0 {
        int as f64 / 100_000.0
    } else {
        ((int / 10_000) as f64 + 1.0) / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_base_scores_match_the_specification_examples() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(cvss3_base_score(vector), Some(score), "{vector}");
        }
        for bad in [
            "AV:N/AC:L",
            "CVSS:2.0/AV:N",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N",
        ] {
            assert_eq!(cvss3_base_score(bad), None, "{bad}");
        }
        assert_eq!(Severity::from_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_score(6.1), Severity::Medium);
    }
}
