//! The key holder's confirmation before a signature: a question on the terminal, answered by
//! typing `yes`.
//!
//! The answer is read from the controlling terminal (`/dev/tty`) when it can be opened, else
//! from standard input when that is a terminal. Without a terminal, a confirmation can only be
//! given up front with `--yes` (scripted drills and tests); asking for one is then a usage
//! error. Tests that need a real answer run the binary on a pseudo-terminal (`script`).

use std::fs::File;
use std::io::{BufRead as _, BufReader, IsTerminal as _, Write as _};

use crate::error::{CeremonyError, Result};

/// How `sign` gets the holder's confirmation.
#[derive(Debug)]
pub enum Confirmation {
    /// Ask on the controlling terminal.
    Tty(File),
    /// Ask on standard input (a terminal), the question on standard error.
    Stdin,
    /// `--yes`: confirmed in advance (drills and tests).
    Assumed,
}

impl Confirmation {
    /// `--yes` → [`Confirmation::Assumed`]; otherwise a terminal, or a usage error (exit 2)
    /// saying to run on a terminal or pass `--yes`.
    pub fn new(yes: bool) -> Result<Self> {
        if yes {
            return Ok(Self::Assumed);
        }
        if let Ok(tty) = File::options().read(true).write(true).open("/dev/tty") {
            return Ok(Self::Tty(tty));
        }
        if std::io::stdin().is_terminal() {
            return Ok(Self::Stdin);
        }
        Err(CeremonyError::NoTerminal(
            "sign needs a confirmation: run it on a terminal, or pass --yes in drills".into(),
        ))
    }

    /// Asks `question`; true only when the answer is `yes` (surrounding whitespace ignored).
    /// [`Confirmation::Assumed`] answers yes without asking.
    pub fn confirm(&mut self, question: &str) -> Result<bool> {
        let io = |e: std::io::Error| {
            CeremonyError::NoTerminal(format!("cannot read the confirmation from the terminal: {e}"))
        };
        let mut answer = String::new();
        match self {
            Self::Assumed => return Ok(true),
            Self::Tty(tty) => {
                tty.write_all(question.as_bytes())
                    .and_then(|()| tty.flush())
                    .map_err(io)?;
                BufReader::new(&*tty).read_line(&mut answer).map_err(io)?;
            }
            Self::Stdin => {
                let mut err = std::io::stderr();
                err.write_all(question.as_bytes())
                    .and_then(|()| err.flush())
                    .map_err(io)?;
                std::io::stdin().lock().read_line(&mut answer).map_err(io)?;
            }
        }
        Ok(answer.trim() == "yes")
    }
}
