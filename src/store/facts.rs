//! `check_facts`: what the audit reads of a stored check's profile (its first GK
//! meeting and the adjusted model's background variables) and the ids of the rules that
//! flagged or failed, one row per check, so an audit reads neither the stored profiles
//! nor the flags' messages. Written with the check, from the profile already parsed;
//! the migration that made the table fills it in for the checks stored before.

use rayon::prelude::*;
use rusqlite::{Connection, Transaction, params};

use super::StoreError;
use crate::profile::{Covariates, Date, DiagnosisGroup, Education, MaritalStatus, Profile, Sex};

/// What a stored check's profile gives the audit.
#[derive(Clone, Default)]
pub struct CheckFacts {
    pub first_meeting_on: Option<Date>,
    pub covariates: Covariates,
}

impl CheckFacts {
    pub fn of(profile: &Profile) -> Self {
        Self {
            first_meeting_on: profile.gk.first_meeting_on.value().copied(),
            covariates: Covariates::of(profile),
        }
    }
}

/// Rule ids as stored in `check_facts`: sorted (byte order, as SQLite sorts text) and
/// space-separated. Rule ids hold no spaces.
pub(super) fn joined<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.join(" ")
}

/// The statement [`insert`] runs.
pub(super) const INSERT: &str = "INSERT INTO check_facts (evaluation_id, first_meeting_on, sex, age, diagnosis_group, education,
                              marital_status, children_0_17, born_abroad, returner_ever, sgi, flagged, failed)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// Inserts the facts row of check `id` (within the writer's transaction) through
/// `statement`, [`INSERT`] prepared.
pub(super) fn insert(
    statement: &mut rusqlite::Statement<'_>,
    id: i64,
    facts: &CheckFacts,
    flagged: &str,
    failed: &str,
) -> Result<(), StoreError> {
    let c = &facts.covariates;
    statement.execute(params![
        id,
        facts.first_meeting_on.map(|d| d.to_string()),
        c.sex.map(Sex::as_str),
        c.age,
        c.diagnosis.map(DiagnosisGroup::as_str),
        c.education.map(Education::as_str),
        c.marital_status.map(MaritalStatus::as_str),
        c.children_0_17,
        c.born_abroad,
        c.returner_ever,
        c.sgi,
        flagged,
        failed,
    ])?;
    Ok(())
}

/// The columns [`read`] reads, from `first_meeting_on` to `failed`, in its order.
pub(crate) const COLUMNS: &str =
    "first_meeting_on, sex, age, diagnosis_group, education, marital_status,
     children_0_17, born_abroad, returner_ever, sgi, flagged, failed";

/// The value of a closed set stored in column `index` as its name.
fn name_at<T>(
    row: &rusqlite::Row<'_>,
    index: usize,
    column: &'static str,
    from_name: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    match row.get_ref(index)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        rusqlite::types::ValueRef::Text(text) => std::str::from_utf8(text)
            .ok()
            .and_then(from_name)
            .map(Some)
            .ok_or(StoreError::UnknownValue(column)),
        _ => Err(StoreError::UnknownValue(column)),
    }
}

/// The facts in the columns of [`COLUMNS`] from `first`; the rule ids (`flagged`,
/// `failed`) are left to the caller, at `first + 10` and `first + 11`.
pub(crate) fn read(row: &rusqlite::Row<'_>, first: usize) -> Result<CheckFacts, StoreError> {
    let first_meeting_on = match row.get_ref(first)? {
        rusqlite::types::ValueRef::Null => None,
        rusqlite::types::ValueRef::Text(text) => Some(
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| Date::parse(t).ok())
                .ok_or(StoreError::UnknownValue("check_facts.first_meeting_on"))?,
        ),
        _ => return Err(StoreError::UnknownValue("check_facts.first_meeting_on")),
    };
    Ok(CheckFacts {
        first_meeting_on,
        covariates: Covariates {
            sex: name_at(row, first + 1, "check_facts.sex", Sex::from_name)?,
            age: row.get(first + 2)?,
            diagnosis: name_at(
                row,
                first + 3,
                "check_facts.diagnosis_group",
                DiagnosisGroup::from_name,
            )?,
            education: name_at(
                row,
                first + 4,
                "check_facts.education",
                Education::from_name,
            )?,
            marital_status: name_at(
                row,
                first + 5,
                "check_facts.marital_status",
                MaritalStatus::from_name,
            )?,
            children_0_17: row.get(first + 6)?,
            born_abroad: row.get(first + 7)?,
            returner_ever: row.get(first + 8)?,
            sgi: row.get(first + 9)?,
        },
    })
}

/// Rows the migration parses at a time.
const BACKFILL_BATCH: usize = 4096;

/// The migration's hook: a facts row for every stored check whose profile reads back
/// (one that does not gets none, and the audit counts it as unreadable).
pub(super) fn backfill(tx: &Transaction<'_>) -> rusqlite_migration::HookResult {
    backfill_rows(tx).map_err(|err| match err {
        StoreError::Sqlite(err) | StoreError::Unavailable(err) => {
            match std::sync::Arc::try_unwrap(err) {
                Ok(err) => rusqlite_migration::HookError::RusqliteError(err),
                Err(err) => rusqlite_migration::HookError::Hook(err.to_string()),
            }
        }
        other => rusqlite_migration::HookError::Hook(other.to_string()),
    })
}

fn backfill_rows(tx: &Connection) -> Result<(), StoreError> {
    struct Stored {
        id: i64,
        profile_json: String,
        flagged: String,
        failed: String,
    }
    let mut statement = tx.prepare("SELECT id, profile_json FROM evaluations ORDER BY id")?;
    let mut rows = statement.query([])?;
    let mut flags =
        tx.prepare("SELECT evaluation_id, rule_id FROM flags ORDER BY evaluation_id, rule_id")?;
    let mut errors = tx.prepare(
        "SELECT evaluation_id, rule_id FROM rule_errors ORDER BY evaluation_id, rule_id",
    )?;
    let mut flags = super::history::MergedIds::new(true, &mut flags)?;
    let mut errors = super::history::MergedIds::new(true, &mut errors)?;
    let mut batch = Vec::with_capacity(BACKFILL_BATCH);
    let write = |batch: &mut Vec<Stored>| -> Result<(), StoreError> {
        let parsed: Vec<Option<CheckFacts>> = batch
            .par_iter()
            .map(|s| {
                Profile::from_stored_json(&s.profile_json)
                    .ok()
                    .map(|p| CheckFacts::of(&p))
            })
            .collect();
        let mut statement = tx.prepare_cached(INSERT)?;
        for (stored, facts) in batch.drain(..).zip(parsed) {
            if let Some(facts) = facts {
                insert(
                    &mut statement,
                    stored.id,
                    &facts,
                    &stored.flagged,
                    &stored.failed,
                )?;
            }
        }
        Ok(())
    };
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        batch.push(Stored {
            id,
            profile_json: row.get(1)?,
            // Merged in (evaluation_id, rule_id) order: already sorted.
            flagged: flags.of(id)?.join(" "),
            failed: errors.of(id)?.join(" "),
        });
        if batch.len() == BACKFILL_BATCH {
            write(&mut batch)?;
        }
    }
    write(&mut batch)?;
    Ok(())
}
