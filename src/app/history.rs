//! Use cases over the stored history: importing a cohort (profiles evaluated and stored
//! like the service does), the flag-versus-outcome audit, and replaying a candidate rule
//! set against the stored profiles.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{AppError, access, require};
use crate::audit::replay::ReplayReport;
use crate::audit::report::AuditReport;
use crate::audit::{self, Options};
use crate::auth::{Principal, Role};
use crate::contract::EvaluationReport;
use crate::long_work::Deadline;
use crate::outcome::Outcome;
use crate::profile::Profile;
use crate::pseudonym::PseudonymKey;
use crate::ruleset::RuleSet;
use crate::store::{Access, NewEvaluation, NewOutcome, Store, Streamed, profile_for_storage};

/// Roles that may import a cohort, audit and replay.
pub const ROLES: &[Role] = &[Role::Analytiker];

/// Why a test token reads neither the audit, nor the rule sets' history, nor a replay:
/// each counts real people's stored checks, and a test token is handed to systems and
/// people in training.
pub const TEST_TOKENS_READ_NO_HISTORY: &str = "En testtoken kan inte läsa det som räknar verkliga personers sparade kontroller: uppföljningen, regelversionernas antal kontroller och ett prov av regler mot historiken. Använd en vanlig token.";

/// What an import stores: its validated profiles file, and outcomes if given.
pub struct Cohort {
    pub profiles: ValidatedFile,
    pub outcomes: Option<Vec<Outcome>>,
}

impl Cohort {
    /// The profiles of `file` alone.
    pub fn profiles(file: ValidatedFile) -> Self {
        Self {
            profiles: file,
            outcomes: None,
        }
    }
}

/// What an import stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Profiles read and evaluated.
    pub read: usize,
    /// Checks stored (a check stored before is skipped).
    pub stored: usize,
    pub flags: usize,
    pub rule_errors: usize,
}

/// One profile line that could not be used, as `line: error` for the person importing.
pub type LineProblem = (usize, String);

/// How far an import has come, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportProgress {
    /// So many more lines were validated (the first pass).
    Validated(usize),
    /// Every line is valid; this many will be evaluated and stored.
    Total(usize),
    /// So many more lines were evaluated and handed to the store (the second pass).
    Evaluated(usize),
}

/// Lines read, parsed and evaluated at a time: bounds memory and feeds the cores. A
/// batch of evaluations is about 2 KB a line, and up to four are alive at once (one
/// evaluated, two queued, one being written); 1024 keeps them near 8 MB, which leaves
/// room for the writer's larger page cache within the import's memory budget.
const IMPORT_BATCH: usize = 1024;

/// The longest line of a profiles file read (a profile is a few kilobytes): a file with no
/// line break is refused at this length instead of being read whole into memory.
pub const MAX_PROFILE_LINE_BYTES: u64 = 1 << 20;

/// A profile file with bad lines: every one of them, and how many lines it has.
#[derive(Debug)]
pub struct RefusedFile {
    pub lines: usize,
    /// Ordered by line.
    pub problems: Vec<LineProblem>,
}

/// A profile file whose every line was found valid, ready for [`import_cohort`].
pub struct ValidatedFile {
    path: PathBuf,
    lines: usize,
    digest: [u8; 32],
}

impl ValidatedFile {
    /// Its non-blank lines.
    pub fn lines(&self) -> usize {
        self.lines
    }
}

/// The first pass of an import: reads the JSONL file at `path` and validates every
/// profile line, in parallel batches, without holding the file in memory. Every bad line
/// when there is one. Runs on the blocking pool ([`super::off_workers`]).
pub async fn validate_cohort(
    principal: &Principal,
    path: PathBuf,
    progress: Arc<dyn Fn(ImportProgress) + Send + Sync>,
) -> Result<Result<ValidatedFile, RefusedFile>, AppError> {
    require(principal, ROLES)?;
    super::off_workers(move || validate_file(&path, &*progress)).await?
}

/// The second pass: evaluates every profile line of `file` with `rules` (each rule in
/// force as of the profile's `checked_on`) and stores the checks like the service does,
/// in one commit. It reads the file again, evaluates each batch on all cores and hands it
/// to the writer, which holds one transaction open; it commits only if the file read the
/// same as when it was validated (SHA-256), so the import stays all or nothing without
/// holding the file in memory. With `shadow`, every profile is evaluated with the shadow
/// rules too and their results stored apart. With `outcomes`, they are recorded in the
/// same commit (as [`super::outcomes::record`] would), so the checks are never stored
/// without them. The evaluation runs on the blocking pool.
pub async fn import_cohort(
    store: &Store,
    key: &PseudonymKey,
    principal: &Principal,
    rules: Arc<RuleSet>,
    shadow: Option<Arc<RuleSet>>,
    cohort: Cohort,
    progress: Arc<dyn Fn(ImportProgress) + Send + Sync>,
) -> Result<(ImportCounts, Option<super::outcomes::Recorded>), AppError> {
    require(principal, ROLES)?;
    let Cohort {
        profiles: file,
        outcomes,
    } = cohort;
    let outcomes = match outcomes {
        Some(outcomes) => {
            require(principal, super::outcomes::ROLES)?;
            let access = access(principal, super::outcomes::ACTION, None, None);
            Some((super::outcomes::pseudonymised(key, outcomes), access))
        }
        None => None,
    };
    progress(ImportProgress::Total(file.lines));
    // Recorded in the import's own transaction: a failed import leaves no rule set behind.
    let rule_sets: Vec<Arc<RuleSet>> = std::iter::once(rules.clone())
        .chain(shadow.clone())
        .collect();

    let (batches, received) = std::sync::mpsc::sync_channel(2);
    let evaluated = {
        let key = key.clone();
        let actor = principal.name.clone();
        let shadow = shadow.clone();
        super::off_workers(move || {
            let evaluate = |batch: &[(usize, String)]| {
                evaluate_lines(&rules, shadow.as_deref(), &key, &actor, batch)
            };
            stream_file(&file, evaluate, &batches, outcomes, &*progress)
        })
    };
    let rule_sets: Vec<&RuleSet> = rule_sets.iter().map(|r| &**r).collect();
    let stored = store.insert_evaluation_stream(
        received,
        access(principal, "import", None, None),
        &rule_sets,
    );
    let (evaluated, stored) = tokio::join!(evaluated, stored);
    // The reader's error says why a stream ended early, and the store's only that it
    // did, unless the writer stopped first (the disk full): then the store's says why.
    let evaluated = evaluated?;
    if matches!(
        evaluated,
        Err(AppError::Store(crate::store::StoreError::StreamAborted))
    ) && let Err(err) = stored
    {
        return Err(err.into());
    }
    let (mut counts, recorded) = evaluated?;
    let (stored, changes) = stored?;
    counts.stored = stored;
    let recorded = recorded.then_some(super::outcomes::Recorded { changes });
    Ok((counts, recorded))
}

/// Reads the non-blank lines of a JSONL file in batches, with their line numbers,
/// hashing every byte read. A UTF-8 byte order mark at the start is accepted (some
/// editors write one).
struct JsonlBatches {
    path: PathBuf,
    reader: std::io::BufReader<std::fs::File>,
    line: usize,
    digest: Sha256,
}

impl JsonlBatches {
    fn open(path: &Path) -> Result<Self, AppError> {
        let file = std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
        Ok(Self {
            path: path.to_owned(),
            reader: std::io::BufReader::with_capacity(1 << 16, file),
            line: 0,
            digest: Sha256::new(),
        })
    }

    /// The next batch of up to [`IMPORT_BATCH`] lines; empty at the end of the file.
    fn next_batch(&mut self) -> Result<Vec<(usize, String)>, AppError> {
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        while batch.len() < IMPORT_BATCH {
            let mut text = String::new();
            let read = std::io::Read::take(&mut self.reader, MAX_PROFILE_LINE_BYTES + 1)
                .read_line(&mut text)
                .map_err(|e| file_error(&self.path, &e))?;
            if read == 0 {
                break;
            }
            if read as u64 > MAX_PROFILE_LINE_BYTES {
                return Err(AppError::Input(format!(
                    "{}:{}: raden är längre än {} byte; en profil står på en rad",
                    self.path.display(),
                    self.line + 1,
                    MAX_PROFILE_LINE_BYTES
                )));
            }
            self.digest.update(text.as_bytes());
            self.line += 1;
            let mut line = text.as_str();
            if self.line == 1 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if !line.trim().is_empty() {
                batch.push((self.line, line.to_owned()));
            }
        }
        Ok(batch)
    }

    fn digest(self) -> [u8; 32] {
        self.digest.finalize().into()
    }
}

fn file_error(path: &Path, err: &std::io::Error) -> AppError {
    AppError::Input(format!("{}: {}", path.display(), super::io_error_text(err)))
}

/// The first pass: every line parsed and validated, in parallel batches. The number of
/// lines and the file's digest when all are valid, otherwise every bad line.
fn validate_file(
    path: &Path,
    progress: &(dyn Fn(ImportProgress) + Sync),
) -> Result<Result<ValidatedFile, RefusedFile>, AppError> {
    // A pipe or a device reads once: the second pass would wait for ever.
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        return Err(AppError::Input(format!(
            "{} är ingen vanlig fil; importen läser filen två gånger (först kontrolleras varje rad, sedan sparas de), så ange en fil, inte en mapp, ett rör eller en enhet",
            path.display()
        )));
    }
    let mut reader = JsonlBatches::open(path)?;
    let (mut lines, mut problems) = (0, Vec::new());
    loop {
        let batch = reader.next_batch()?;
        if batch.is_empty() {
            break;
        }
        lines += batch.len();
        problems.par_extend(batch.par_iter().filter_map(|(line, text)| {
            Profile::from_json(text)
                .err()
                .map(|e| (*line, e.to_string()))
        }));
        progress(ImportProgress::Validated(batch.len()));
    }
    if !problems.is_empty() {
        problems.sort_unstable_by_key(|(line, _)| *line);
        return Ok(Err(RefusedFile { lines, problems }));
    }
    Ok(Ok(ValidatedFile {
        path: path.to_owned(),
        lines,
        digest: reader.digest(),
    }))
}

/// The second pass: each batch evaluated and sent to the writer; `End` only when the file
/// read exactly as in the first pass. Any other ending drops `batches` without `End`, so
/// the writer stores nothing.
fn stream_file(
    file: &ValidatedFile,
    evaluate: impl Fn(&[(usize, String)]) -> Result<Vec<NewEvaluation>, LineProblem>,
    batches: &std::sync::mpsc::SyncSender<Streamed>,
    outcomes: Option<(Vec<NewOutcome>, Access)>,
    progress: &(dyn Fn(ImportProgress) + Sync),
) -> Result<(ImportCounts, bool), AppError> {
    let changed = || {
        AppError::Input(format!(
            "{} ändrades under importen; inget sparades",
            file.path.display()
        ))
    };
    // The writer stopped (its own error is the store's answer).
    let writer_gone = || AppError::Store(crate::store::StoreError::StreamAborted);
    let mut reader = JsonlBatches::open(&file.path)?;
    let mut counts = ImportCounts::default();
    loop {
        let batch = reader.next_batch()?;
        if batch.is_empty() {
            break;
        }
        let evaluations = evaluate(&batch).map_err(|_| changed())?;
        counts.read += evaluations.len();
        counts.flags += evaluations.iter().map(|e| e.flags.len()).sum::<usize>();
        counts.rule_errors += evaluations.iter().map(|e| e.errors.len()).sum::<usize>();
        batches
            .send(Streamed::Batch(evaluations))
            .map_err(|_| writer_gone())?;
        progress(ImportProgress::Evaluated(batch.len()));
    }
    if reader.digest() != file.digest {
        return Err(changed());
    }
    let with_outcomes = outcomes.is_some();
    batches
        .send(Streamed::End(outcomes))
        .map_err(|_| writer_gone())?;
    Ok((counts, with_outcomes))
}

/// One batch of lines parsed and evaluated in parallel; the first bad line if any.
fn evaluate_lines(
    rules: &RuleSet,
    shadow: Option<&RuleSet>,
    key: &PseudonymKey,
    actor: &str,
    lines: &[(usize, String)],
) -> Result<Vec<NewEvaluation>, LineProblem> {
    lines
        .par_iter()
        .map(|(line, text)| {
            let at = |e: &dyn std::fmt::Display| (*line, e.to_string());
            let profile = Profile::from_json(text).map_err(|e| at(&e))?;
            let case = key.pseudonymise(&profile.case_id);
            let stored_form = profile_for_storage(&profile, &case).map_err(|e| at(&e))?;
            let profile = Arc::new(profile);
            let (evaluation, shadow) = super::check::evaluate_both(rules, shadow, &profile);
            let report = EvaluationReport::new(rules, &profile, &evaluation);
            Ok(
                NewEvaluation::of(rules, &profile, &report, case, stored_form, (actor, false))
                    .with_shadow(shadow),
            )
        })
        .collect()
}

/// The flag-versus-outcome audit of what `store` holds for `options.period`, reported
/// against the rules of `active`; the read is written to the access log.
pub async fn audit(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
) -> Result<AuditReport, AppError> {
    require(principal, ROLES)?;
    super::refuse_for_tests(principal, TEST_TOKENS_READ_NO_HISTORY)?;
    let started = std::time::Instant::now();
    let asked = options.describe();
    let report = audit::of_store(store, active, options).await?;
    store
        .log_access(Access {
            detail: Some(asked),
            ..access(principal, "audit", None, None)
        })
        .await?;
    tracing::info!(
        units = report.units.all,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "audit computed"
    );
    Ok(report)
}

/// The formats an audit report is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    Json,
    Csv,
    /// The self-contained page of `audit::html`.
    Html,
}

/// An audit and its text in one format.
pub struct RenderedAudit {
    pub report: AuditReport,
    pub text: String,
}

/// [`audit`], written out as `format`; the writing runs off the async workers too
/// (a report's page can be large).
pub async fn audit_rendered(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
    format: AuditFormat,
) -> Result<RenderedAudit, AppError> {
    let report = audit(store, principal, active, options).await?;
    super::off_workers(move || {
        let text = match format {
            AuditFormat::Json => report.to_json().map_err(|e| AppError::Report(e.into())),
            AuditFormat::Csv => report.to_csv().map_err(|e| AppError::Report(e.into())),
            AuditFormat::Html => {
                audit::html::render_audit(&report).map_err(|e| AppError::Report(e.into()))
            }
        }?;
        Ok(RenderedAudit { report, text })
    })
    .await?
}

/// [`audit`] as an Excel workbook ([`audit::xlsx`]), written off the async workers.
pub async fn audit_xlsx(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
) -> Result<(AuditReport, Vec<u8>), AppError> {
    let report = audit(store, principal, active, options).await?;
    super::off_workers(move || {
        let bytes = audit::xlsx::write(&report).map_err(|e| AppError::Report(e.into()))?;
        Ok((report, bytes))
    })
    .await?
}

/// How many stored checks fall in `options.period` (for a progress bar before a replay).
pub async fn checks_in_period(store: &Store, options: &Options) -> Result<u64, AppError> {
    let period = options.period;
    Ok(store
        .read_history(move |history| audit::data::count_checks(history, &period))
        .await?)
}

/// The stored profiles of `options.period` under the `current` and the `candidate` rules,
/// storing nothing. `progress` is called with the number of checks of each evaluated
/// batch. The read is written to the access log.
pub async fn replay(
    store: &Store,
    principal: &Principal,
    current: RuleSet,
    candidate: RuleSet,
    options: Options,
    progress: Box<dyn Fn(u64) + Send + Sync>,
) -> Result<ReplayReport, AppError> {
    require(principal, ROLES)?;
    super::refuse_for_tests(principal, TEST_TOKENS_READ_NO_HISTORY)?;
    let asked = options.describe();
    let report = store
        .read_history(move |history| {
            Ok(audit::replay::replay(
                history,
                &current,
                &candidate,
                &options,
                Deadline::NONE,
                &*progress,
            ))
        })
        .await??;
    store
        .log_access(Access {
            detail: Some(asked),
            ..access(principal, "replay", None, None)
        })
        .await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::store::history::Range;

    fn analyst() -> Principal {
        Principal {
            name: "test:import".to_owned(),
            role: Role::Analytiker,
            purpose: crate::auth::Purpose::Normal,
        }
    }

    /// The first `n` profiles of the development cohort, one per line.
    fn cohort_lines(n: usize) -> Vec<String> {
        let text = std::fs::read_to_string("examples/cohort-2018/profiles.jsonl").expect("cohort");
        text.lines().take(n).map(str::to_owned).collect()
    }

    fn quiet() -> Arc<dyn Fn(ImportProgress) + Send + Sync> {
        Arc::new(|_| {})
    }

    /// The manifest recorded for `rules`, if it was recorded.
    async fn recorded_rule_set(store: &Store, rules: &RuleSet) -> Option<String> {
        let hash = rules.content_hash.clone();
        store
            .read_history(move |history| history.rule_set_manifest(&hash))
            .await
            .expect("read")
    }

    async fn stored_checks(store: &Store) -> u64 {
        store
            .read_history(|history| history.count_checks(Range::default()))
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn validation_names_each_bad_line_by_its_number_in_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("profiler.jsonl");
        let lines = cohort_lines(3);
        let bad = lines[1].replace("\"stage\":\"before_gk\"", "\"stage\":\"efter\"");
        assert_ne!(bad, lines[1]);
        // A byte order mark, CRLF line ends and blank lines are accepted.
        let text = format!("\u{feff}{}\r\n\r\n{bad}\n  \n{}\n", lines[0], lines[2]);
        std::fs::write(&path, text).expect("write");
        let refused = validate_cohort(&analyst(), path, quiet())
            .await
            .expect("readable")
            .err()
            .expect("a bad line");
        assert_eq!(refused.lines, 3);
        assert_eq!(refused.problems.len(), 1, "{refused:?}");
        assert_eq!(refused.problems[0].0, 3);
        assert!(refused.problems[0].1.starts_with("stage"), "{refused:?}");
    }

    #[tokio::test]
    async fn an_import_stores_every_line_and_a_file_changed_after_validation_stores_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writer) = Store::open(&dir.path().join("db.sqlite3"), 64).expect("store");
        let rules = Arc::new(RuleSet::load(Path::new("rules")).expect("rules"));
        let key = PseudonymKey::from_secret(&[7; 32]).expect("key");
        // More lines than one batch, so the writer receives several before the end.
        let lines = cohort_lines(IMPORT_BATCH + 10);

        for change in ["a line added", "a line made invalid"] {
            let path = dir.path().join("changed.jsonl");
            std::fs::write(&path, lines.join("\n") + "\n").expect("write");
            let file = validate_cohort(&analyst(), path.clone(), quiet())
                .await
                .expect("readable")
                .expect("valid");
            if change == "a line added" {
                let mut appended = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                writeln!(appended, "{}", lines[0].replace("FK-", "NY-")).expect("append");
            } else {
                let text = std::fs::read_to_string(&path).expect("read");
                std::fs::write(&path, text.replacen("\"age\":", "\"age\":\"x\",\"y\":", 1))
                    .expect("write");
            }
            let err = import_cohort(
                &store,
                &key,
                &analyst(),
                Arc::clone(&rules),
                None,
                Cohort::profiles(file),
                quiet(),
            )
            .await
            .expect_err(change);
            assert!(
                err.to_string()
                    .contains("ändrades under importen; inget sparades"),
                "{change}: {err}"
            );
            assert_eq!(stored_checks(&store).await, 0, "{change}");
            assert_eq!(
                recorded_rule_set(&store, &rules).await,
                None,
                "{change}: a failed import leaves its rule set unrecorded"
            );
        }

        let path = dir.path().join("profiler.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write");
        let file = validate_cohort(&analyst(), path, quiet())
            .await
            .expect("readable")
            .expect("valid");
        assert_eq!(file.lines(), lines.len());
        let (counts, recorded) = import_cohort(
            &store,
            &key,
            &analyst(),
            Arc::clone(&rules),
            None,
            Cohort::profiles(file),
            quiet(),
        )
        .await
        .expect("imported");
        assert_eq!(recorded, None, "no outcomes given");
        assert_eq!((counts.read, counts.stored), (lines.len(), lines.len()));
        assert!(counts.flags > 0);
        assert_eq!(stored_checks(&store).await, lines.len() as u64);
        assert!(recorded_rule_set(&store, &rules).await.is_some());
        drop(store);
        writer.join();
    }

    /// A store holding the first `n` profiles of the development cohort, checked with
    /// the default rules, which it returns too.
    async fn history_of(dir: &Path, n: usize) -> (Store, crate::store::WriterHandle, Arc<RuleSet>) {
        let (store, writer) = Store::open(&dir.join("db.sqlite3"), 64).expect("store");
        let rules = Arc::new(RuleSet::load(Path::new("rules")).expect("rules"));
        let key = PseudonymKey::from_secret(&[7; 32]).expect("key");
        let path = dir.join("profiler.jsonl");
        std::fs::write(&path, cohort_lines(n).join("\n")).expect("write");
        let file = validate_cohort(&analyst(), path, quiet())
            .await
            .expect("readable")
            .expect("valid");
        import_cohort(
            &store,
            &key,
            &analyst(),
            Arc::clone(&rules),
            None,
            Cohort::profiles(file),
            quiet(),
        )
        .await
        .expect("imported");
        (store, writer, rules)
    }

    /// The default rules with `tolk_ej_bokad` running `work` after reading its inputs.
    fn candidate_with(dir: &Path, work: &str) -> Arc<RuleSet> {
        let candidate_dir = dir.join("kandidat");
        std::fs::create_dir_all(&candidate_dir).expect("dir");
        for entry in std::fs::read_dir("rules").expect("rules") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                std::fs::copy(&path, candidate_dir.join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
        std::fs::write(
            candidate_dir.join("tolk_ej_bokad.rhai"),
            format!(
                "let needed = profile.known_needs.interpreter_needed;\n\
                 let booked = profile.gk.interpreter_booked;\n{work}\n"
            ),
        )
        .expect("write");
        Arc::new(RuleSet::load(&candidate_dir).expect("candidate"))
    }

    async fn replay_within(
        store: &Store,
        current: &Arc<RuleSet>,
        candidate: &Arc<RuleSet>,
        deadline: Deadline,
    ) -> Result<ReplayReport, audit::replay::ReplayError> {
        let (current, candidate) = (Arc::clone(current), Arc::clone(candidate));
        store
            .read_history(move |history| {
                Ok(audit::replay::replay(
                    history,
                    &current,
                    &candidate,
                    &Options::default(),
                    deadline,
                    &|_| {},
                ))
            })
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn a_replay_past_its_deadline_stops_after_a_first_check_naming_the_failing_rules() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writer, rules) = history_of(dir.path(), 300).await;
        let candidate = candidate_with(dir.path(), "loop { }");

        let finished = replay_within(&store, &rules, &candidate, Deadline::NONE)
            .await
            .expect("finished");
        assert_eq!(finished.checks_evaluated, 300);
        let looping = finished
            .rules
            .iter()
            .find(|rule| rule.rule_id == "tolk_ej_bokad")
            .expect("the rule");
        assert_eq!(looping.errors_candidate, 300);

        match replay_within(
            &store,
            &rules,
            &candidate,
            Deadline::after(std::time::Duration::ZERO),
        )
        .await
        {
            Err(audit::replay::ReplayError::OutOfTime(stopped)) => {
                // A check evaluated after the deadline is not counted: its scripts may
                // have been stopped mid-way. It still tells which rules failed.
                assert!(stopped.checks_evaluated < 300, "{stopped:?}");
                assert_eq!(stopped.failing_rules, ["tolk_ej_bokad"]);
                assert!(stopped.failing_unchanged.is_empty(), "{stopped:?}");
            }
            other => panic!("expected out of time: {other:?}"),
        }
        // The same failing rule in the current set: it fails there too, and is named as
        // unchanged, apart from the candidate's own.
        match replay_within(
            &store,
            &candidate,
            &candidate,
            Deadline::after(std::time::Duration::ZERO),
        )
        .await
        {
            Err(audit::replay::ReplayError::OutOfTime(stopped)) => {
                assert!(stopped.failing_rules.is_empty(), "{stopped:?}");
                assert_eq!(stopped.failing_unchanged, ["tolk_ej_bokad"]);
            }
            other => panic!("expected out of time: {other:?}"),
        }
        drop(store);
        writer.join();
    }

    #[tokio::test]
    async fn a_check_that_ran_into_the_deadline_gives_no_report() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writer, rules) = history_of(dir.path(), 1).await;
        // Ends by itself, within the operation limit, after far longer than the deadline:
        // each comparison of two lists of 1,000 numbers is one costly operation.
        let candidate = candidate_with(
            dir.path(),
            "let a = []; a.pad(1000, 1); let c = a; let n = 0; \
             while n < 20000 { if a == c { n += 1; } } false",
        );
        match replay_within(
            &store,
            &rules,
            &candidate,
            Deadline::after(std::time::Duration::from_millis(50)),
        )
        .await
        {
            Err(audit::replay::ReplayError::OutOfTime(stopped)) => {
                assert_eq!(stopped.checks_evaluated, 0, "{stopped:?}");
                assert_eq!(stopped.failing_rules, ["tolk_ej_bokad"]);
            }
            other => panic!("a report of a check stopped mid-way: {other:?}"),
        }
        drop(store);
        writer.join();
    }
}
