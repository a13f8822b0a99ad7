//! Recording outcomes (how each case's GK ended), from the API or from a file: the case
//! ids are pseudonymised and every outcome is stored in one commit, or none is.

use std::path::Path;

use super::{AppError, access, require};
use crate::auth::{Principal, Role};
use crate::outcome::Outcome;
use crate::pseudonym::PseudonymKey;
use crate::store::{NewOutcome, OutcomeChange, Store};

/// Roles that may record outcomes.
pub const ROLES: &[Role] = &[Role::Analytiker];

/// What recording a list of outcomes did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// One change per outcome, in the order given.
    pub changes: Vec<OutcomeChange>,
}

impl Recorded {
    pub fn count(&self, kind: OutcomeChange) -> usize {
        self.changes.iter().filter(|c| **c == kind).count()
    }
}

/// The access-log action of recording an outcome.
pub(super) const ACTION: &str = "record_outcome";

/// `outcomes` with their case ids pseudonymised, as stored.
pub(super) fn pseudonymised(key: &PseudonymKey, outcomes: Vec<Outcome>) -> Vec<NewOutcome> {
    outcomes
        .into_iter()
        .map(|outcome| NewOutcome {
            case: key.pseudonymise(&outcome.case_id),
            outcome,
        })
        .collect()
}

/// Pseudonymises and stores `outcomes` in one commit; idempotent per case.
pub async fn record(
    store: &Store,
    key: &PseudonymKey,
    principal: &Principal,
    outcomes: Vec<Outcome>,
) -> Result<Recorded, AppError> {
    require(principal, ROLES)?;
    super::refuse_for_tests(principal, TEST_TOKENS_RECORD_NO_OUTCOMES)?;
    let changes = store
        .upsert_outcomes(
            pseudonymised(key, outcomes),
            access(principal, ACTION, None, None),
        )
        .await?;
    Ok(Recorded { changes })
}

/// Why a token made for testing records no outcome: an outcome belongs to a real case
/// (there are no test outcomes), replaces the case's earlier one and is what the audit
/// reads.
pub const TEST_TOKENS_RECORD_NO_OUTCOMES: &str = "En testtoken kan inte registrera utfall: ett utfall gäller ett verkligt ärende, ersätter det som fanns och ingår i uppföljningen.";

/// The largest outcomes file read (it is read whole; 250,000 outcomes are about 30 MB).
pub const MAX_OUTCOMES_FILE_BYTES: u64 = 512 << 20;

/// Reads outcomes from JSONL (one object per line) or CSV (`case_id,ended_on,outcome,reasons`).
pub fn read_file(path: &Path) -> Result<Vec<Outcome>, AppError> {
    let refused = |why: String| AppError::Input(format!("{}: {why}", path.display()));
    // Opened without waiting: opening a pipe with no writer would wait for ever, before
    // the check below could refuse it.
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| refused(super::io_error_text(&e)))?
    };
    let meta = file
        .metadata()
        .map_err(|e| refused(super::io_error_text(&e)))?;
    // The file is read whole: a device or a pipe could go on for ever.
    if !meta.is_file() {
        return Err(refused("är ingen vanlig fil".to_owned()));
    }
    if meta.len() > MAX_OUTCOMES_FILE_BYTES {
        return Err(refused(format!(
            "filen är större än {} MB; dela den i flera",
            MAX_OUTCOMES_FILE_BYTES >> 20
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_OUTCOMES_FILE_BYTES + 1),
        &mut text,
    )
    .map_err(|e| refused(super::io_error_text(&e)))?;
    if text.len() as u64 > MAX_OUTCOMES_FILE_BYTES {
        return Err(refused("filen växte medan den lästes".to_owned()));
    }
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    crate::outcome::read_outcomes_text(&text, is_csv)
        .map_err(|e| AppError::Input(format!("{}:{}: {}", path.display(), e.line, e.message)))
}
