//! `discard`: deletes a pending file (an abandoned rotation or re-signing).

use super::{Ceremony, Report};
use crate::error::{CeremonyError, Result};
use crate::types::PendingSelector;

impl Ceremony {
    /// `discard`: deletes the pending file `which` names.
    pub fn discard(&self, which: PendingSelector) -> Result<Report> {
        let state = self.load()?;
        let doc = self.find_pending(&state, which)?;
        std::fs::remove_file(&doc.path).map_err(CeremonyError::io(&doc.path))?;
        let mut report = Report::default();
        report.line(format!("discarded {}", doc.label));
        Ok(report)
    }
}
