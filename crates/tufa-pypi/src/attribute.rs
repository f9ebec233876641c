//! Free-text attributes of a file entry (`requires-python`, yank reasons, versions, …): what
//! an upstream may put in them before tufa stores and renders them.

use std::str::FromStr;

use pep440_rs::VersionSpecifiers;

use crate::name::truncate_for_error;

/// Longest attribute value kept (`requires-python`, a yank reason, a version string).
pub const MAX_ATTRIBUTE_LEN: usize = 1024;

/// Why an attribute value is refused. The value is shown escaped and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAttribute {
    #[error("{field} `{value}` contains control characters")]
    Control { field: &'static str, value: String },
    #[error("{field} `{value}` is longer than {MAX_ATTRIBUTE_LEN} bytes")]
    TooLong { field: &'static str, value: String },
    #[error("requires-python `{value}` is not a PEP 440 specifier set: {reason}")]
    RequiresPython { value: String, reason: String },
}

/// Checks a free-text value: no control characters (CR, LF, NUL, …), at most
/// [`MAX_ATTRIBUTE_LEN`] bytes.
pub fn check_text(field: &'static str, value: &str) -> Result<(), InvalidAttribute> {
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(InvalidAttribute::TooLong {
            field,
            value: truncate_for_error(value),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidAttribute::Control {
            field,
            value: truncate_for_error(value),
        });
    }
    Ok(())
}

/// Checks a `requires-python` value: plain text that parses as a PEP 440 specifier set
/// (`>=3.8`, `>=2.7, !=3.0.*`).
pub fn check_requires_python(value: &str) -> Result<VersionSpecifiers, InvalidAttribute> {
    check_text("requires-python", value)?;
    VersionSpecifiers::from_str(value).map_err(|e| InvalidAttribute::RequiresPython {
        value: truncate_for_error(value),
        reason: truncate_for_error(&e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_12_requires_python_must_be_a_pep440_specifier_set() {
        for ok in [">=3.8", ">=2.7, !=3.0.*, !=3.1.*", "~=3.9", "", "==3.*"] {
            assert!(check_requires_python(ok).is_ok(), "{ok}");
        }
        let crlf = check_requires_python(">=3.8\r\nX-Evil: 1").unwrap_err();
        assert!(matches!(crlf, InvalidAttribute::Control { .. }));
        assert!(crlf.to_string().contains(r">=3.8\r\nX-Evil: 1"), "{crlf}");
        let bad = check_requires_python("python 3 please").unwrap_err();
        assert!(matches!(bad, InvalidAttribute::RequiresPython { .. }), "{bad}");
        assert!(bad.to_string().contains("python 3 please"), "{bad}");
        assert!(check_text("yank reason", &"x".repeat(2000)).is_err());
        assert!(check_text("yank reason", "tab\there").is_err());
        assert!(check_text("yank reason", "broken build, use 1.1").is_ok());
    }
}
