//! Licence rules: `licenses.allow` / `licenses.deny` over a distribution's licence, read from
//! its core metadata: the SPDX `License-Expression` of PEP 639, or, when that is absent, the
//! `License ::` trove classifiers (each mapped to an SPDX id; several are alternatives).
//!
//! Expression logic is SPDX's (the `spdx` crate's parser and evaluator): `MIT OR GPL-3.0-only`
//! passes an allow list holding MIT; `MIT AND GPL-3.0-only` needs both. A deny list blocks an
//! expression that cannot be satisfied without a denied licence. A distribution whose licence
//! is unknown (no metadata, no expression, no classifier tufa can map) is blocked when an allow
//! list is set, and admitted when only a deny list is.

use serde::{Deserialize, Serialize};

use crate::{PolicyError, bad};

/// `[policy.licenses]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicensesConfig {
    /// SPDX ids a distribution may be used under (at least one way to satisfy its expression
    /// must use only these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// SPDX ids never accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Checked licence rules.
#[derive(Debug, Clone)]
pub(crate) struct Licenses {
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

/// One spelling per licence: the expression parser reads `GPL-3.0-only` as the deprecated id
/// `GPL-3.0` and `GPL-3.0-or-later` as `GPL-3.0` with "or later", so both sides are compared
/// as `GPL-3.0` and `GPL-3.0+`.
fn canonical(name: &str, or_later: bool) -> String {
    let base = name
        .strip_suffix("-only")
        .or_else(|| name.strip_suffix("-or-later"))
        .unwrap_or(name);
    if or_later || name.ends_with("-or-later") || name.ends_with('+') {
        format!("{}+", base.trim_end_matches('+'))
    } else {
        base.to_owned()
    }
}

fn ids(key: &'static str, list: &[String]) -> Result<Vec<String>, PolicyError> {
    list.iter()
        .map(|raw| {
            let name = raw.trim();
            spdx::license_id(name).ok_or_else(|| {
                bad(
                    key,
                    raw,
                    "is not an SPDX licence id (https://spdx.org/licenses/; e.g. MIT, Apache-2.0, BSD-3-Clause)",
                )
            })?;
            Ok(canonical(name, false))
        })
        .collect()
}

/// Trove classifiers → SPDX ids, for distributions without a `License-Expression`. Only
/// classifiers that name one licence unambiguously are mapped.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("License :: OSI Approved :: MIT License", "MIT"),
    (
        "License :: OSI Approved :: MIT No Attribution License (MIT-0)",
        "MIT-0",
    ),
    ("License :: OSI Approved :: Apache Software License", "Apache-2.0"),
    ("License :: OSI Approved :: BSD License", "BSD-3-Clause"),
    ("License :: OSI Approved :: ISC License (ISCL)", "ISC"),
    (
        "License :: OSI Approved :: Python Software Foundation License",
        "PSF-2.0",
    ),
    (
        "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "MPL-2.0",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v2 (GPLv2)",
        "GPL-2.0-only",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
        "GPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "License :: OSI Approved :: GNU Affero General Public License v3",
        "AGPL-3.0-only",
    ),
    (
        "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    (
        "License :: OSI Approved :: The Unlicense (Unlicense)",
        "Unlicense",
    ),
    ("License :: OSI Approved :: Zope Public License", "ZPL-2.1"),
    ("License :: OSI Approved :: zlib/libpng License", "Zlib"),
    (
        "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)",
        "BSL-1.0",
    ),
    (
        "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)",
        "EPL-2.0",
    ),
    (
        "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
];

/// The licence a core-metadata text states, as an SPDX expression, and where it came from.
pub(crate) fn stated(metadata: &str) -> Option<(String, &'static str)> {
    if let Some(expr) = header(metadata, "License-Expression").into_iter().next() {
        return Some((expr, "License-Expression"));
    }
    let mapped: Vec<&str> = header(metadata, "Classifier")
        .iter()
        .filter_map(|c| CLASSIFIERS.iter().find(|(k, _)| k == c).map(|(_, v)| *v))
        .collect();
    if mapped.is_empty() {
        return None;
    }
    Some((mapped.join(" OR "), "licence classifiers"))
}

/// Values of a header in the RFC 822 head of core metadata (before the first empty line).
fn header(metadata: &str, name: &str) -> Vec<String> {
    metadata
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}

impl Licenses {
    pub(crate) fn from_config(c: &LicensesConfig) -> Result<Self, PolicyError> {
        Ok(Self {
            allow: c.allow.as_deref().map(|l| ids("licenses.allow", l)).transpose()?,
            deny: ids("licenses.deny", &c.deny)?,
        })
    }

    /// `Ok(reason)` when admitted, `Err(reason)` when blocked, for a distribution whose core
    /// metadata is `metadata` (`None`: none is known, as for an sdist).
    pub(crate) fn judge(&self, metadata: Option<&str>) -> Result<String, String> {
        let Some((expr_text, source)) = metadata.and_then(stated) else {
            return if self.allow.is_some() {
                Err("its licence is unknown (no License-Expression or known licence classifier), and licenses.allow is set".into())
            } else {
                Ok("licence unknown; only licenses.deny is set".into())
            };
        };
        let mode = spdx::ParseMode {
            allow_lower_case_operators: true,
            ..spdx::ParseMode::STRICT
        };
        let expr = match spdx::Expression::parse_mode(&expr_text, mode) {
            Ok(e) => e,
            Err(e) => {
                let reason = format!(
                    "its {source} `{expr_text}` is not a valid SPDX expression ({})",
                    e.reason
                );
                return if self.allow.is_some() {
                    Err(reason)
                } else {
                    Ok(reason)
                };
            }
        };
        let acceptable = |req: &spdx::LicenseReq| {
            let spdx::LicenseItem::Spdx { id, or_later } = &req.license else {
                return false;
            };
            let key = canonical(id.name, *or_later);
            self.allow.as_ref().is_none_or(|a| a.contains(&key)) && !self.deny.contains(&key)
        };
        if expr.evaluate(acceptable) {
            Ok(format!(
                "{source} `{expr_text}` is satisfied by the licence rules"
            ))
        } else {
            Err(format!(
                "{source} `{expr_text}` cannot be satisfied with {}",
                match (&self.allow, self.deny.is_empty()) {
                    (Some(_), true) => "licenses.allow".to_owned(),
                    (None, false) => "licenses.deny in force".to_owned(),
                    _ => "licenses.allow and licenses.deny".to_owned(),
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: Option<&[&str]>, deny: &[&str]) -> Licenses {
        Licenses::from_config(&LicensesConfig {
            allow: allow.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
        })
        .unwrap()
    }

    fn meta(license: &str) -> String {
        format!(
            "Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nLicense-Expression: {license}\n\nbody: License-Expression: GPL-3.0-only\n"
        )
    }

    #[test]
    fn expression_logic() {
        let allow_mit = rules(Some(&["MIT", "Apache-2.0"]), &[]);
        assert!(allow_mit.judge(Some(&meta("MIT OR GPL-3.0-only"))).is_ok());
        assert!(allow_mit.judge(Some(&meta("MIT AND GPL-3.0-only"))).is_err());
        assert!(
            allow_mit
                .judge(Some(&meta("(MIT OR GPL-3.0-only) AND Apache-2.0")))
                .is_ok()
        );
        assert!(allow_mit.judge(Some(&meta("GPL-3.0-only"))).is_err());
        let deny_gpl = rules(None, &["GPL-3.0-only"]);
        assert!(deny_gpl.judge(Some(&meta("MIT OR GPL-3.0-only"))).is_ok());
        assert!(deny_gpl.judge(Some(&meta("MIT AND GPL-3.0-only"))).is_err());
        assert!(deny_gpl.judge(Some(&meta("BSD-3-Clause"))).is_ok());
        // `-only` and the plain deprecated id are one licence; `-or-later` is another.
        assert!(deny_gpl.judge(Some(&meta("GPL-3.0"))).is_err());
        assert!(deny_gpl.judge(Some(&meta("GPL-3.0-or-later"))).is_ok());
        assert!(
            rules(Some(&["GPL-3.0-or-later"]), &[])
                .judge(Some(&meta("GPL-3.0-or-later")))
                .is_ok()
        );
        let e = allow_mit.judge(Some(&meta("MIT AND GPL-3.0-only"))).unwrap_err();
        assert_eq!(
            e,
            "License-Expression `MIT AND GPL-3.0-only` cannot be satisfied with licenses.allow"
        );
    }

    #[test]
    fn classifiers_unknown_and_invalid() {
        let allow_mit = rules(Some(&["MIT"]), &[]);
        let classified = "Name: demo\nClassifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language :: Python\n";
        assert!(allow_mit.judge(Some(classified)).is_ok());
        // Unknown: blocked under an allow list, admitted under a deny list only.
        assert!(allow_mit.judge(None).is_err());
        assert!(
            allow_mit
                .judge(Some("Name: demo\nLicense: Proprietary\n"))
                .is_err()
        );
        assert!(rules(None, &["GPL-3.0-only"]).judge(None).is_ok());
        let e = allow_mit.judge(Some(&meta("MIT OR Nonsense-1.0"))).unwrap_err();
        assert!(e.contains("not a valid SPDX expression"), "{e}");
        // Headers only: a License-Expression in the description does not count.
        assert_eq!(stated("Name: x\n\nLicense-Expression: MIT\n"), None);
    }

    #[test]
    fn bad_ids_are_named() {
        let e = Licenses::from_config(&LicensesConfig {
            allow: Some(vec!["MIT".into(), "Apache 2".into()]),
            deny: vec![],
        })
        .unwrap_err();
        assert_eq!(e.key, "licenses.allow");
        assert!(
            e.to_string().contains("`Apache 2` is not an SPDX licence id"),
            "{e}"
        );
    }
}
