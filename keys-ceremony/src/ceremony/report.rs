//! What a step created or changed, for the operator's record.

use std::fmt;

/// Lines for stdout and warnings for stderr.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl Report {
    pub(super) fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }

    pub(super) fn warn(&mut self, s: impl Into<String>) {
        self.warnings.push(s.into());
    }
}
