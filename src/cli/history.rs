//! Commands over the stored history, for policy staff and analysts at a terminal:
//! `import` (a cohort of profiles, evaluated and stored, with its outcomes), `audit`
//! (flags against outcomes, [`crate::audit`]) and `replay` (a candidate rule set
//! against the stored profiles). Output for people is Swedish; reports go to a file or
//! standard output in the format asked for.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use gk_regler::app::history::ImportProgress;
use gk_regler::app::{self, AppError, admin};
use gk_regler::audit::{self, Options, Period, html};
use gk_regler::auth::{Principal, Role};
use gk_regler::config::Config;
use gk_regler::present::count_noun;
use gk_regler::profile::Date;
use gk_regler::ruleset::RuleSet;

use super::commands::{open_key, print_recorded};

/// Who the access log names for what `gk-regler import`, `audit` and `replay` do.
const IMPORT_ACTOR: &str = "cli:import";
const AUDIT_ACTOR: &str = "cli:audit";
const REPLAY_ACTOR: &str = "cli:replay";

/// The acting principal of a history command.
fn analyst(name: &str) -> Principal {
    Principal {
        name: name.to_owned(),
        role: Role::Analytiker,
        purpose: gk_regler::auth::Purpose::Normal,
    }
}

/// How many refused lines an import lists before summing up the rest.
const MAX_LISTED_PROBLEMS: usize = 20;

/// The formats a report can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A self-contained web page with charts.
    Html,
    Json,
    /// Long form for programs (English codes, dot decimals).
    Csv,
    /// An Excel workbook, a sheet per section (audit only).
    Xlsx,
    /// A short table for the terminal (replay only).
    Text,
}

impl ReportFormat {
    /// The extension of a file in this format.
    fn extension(self) -> &'static str {
        match self {
            Self::Text => "txt",
            other => other.name(),
        }
    }

    /// Its name on the command line.
    fn name(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Text => "text",
        }
    }
}

/// The period and threshold given on the command line.
#[derive(Clone, Debug, clap::Args)]
pub struct PeriodArgs {
    /// Första dag i perioden (ÅÅÅÅ-MM-DD), efter utfallsdatum.
    #[arg(long)]
    pub from: Option<Date>,
    /// Sista dag i perioden (ÅÅÅÅ-MM-DD).
    #[arg(long)]
    pub to: Option<Date>,
    /// Visa inga antal under detta, och inga andelar eller skattningar som vilar på
    /// färre fall (standard 5; aldrig lägre än audit_min_cell_floor).
    #[arg(long)]
    pub min_cell: Option<usize>,
}

impl PeriodArgs {
    fn options(&self, floor: usize) -> Result<Options, AppError> {
        let min_cell = audit::min_cell_within(self.min_cell, floor).map_err(|floor| {
            AppError::Input(format!(
                "--min-cell får inte vara lägre än {floor}: färre fall än så kan peka ut enskilda personer (den lägsta tillåtna gränsen är inställd med audit_min_cell_floor)"
            ))
        })?;
        Ok(Options {
            period: Period::new(self.from, self.to).map_err(AppError::Input)?,
            min_cell,
            compare: None,
        })
    }
}

/// What only the audit takes: a period to compare with, and test checks.
#[derive(Clone, Debug, clap::Args)]
pub struct AuditArgs {
    /// Första dag i en period att jämföra med (ÅÅÅÅ-MM-DD), efter utfallsdatum.
    #[arg(long)]
    pub compare_from: Option<Date>,
    /// Sista dag i perioden att jämföra med (ÅÅÅÅ-MM-DD).
    #[arg(long)]
    pub compare_to: Option<Date>,
    /// Ta med kontroller gjorda med en token för test (utelämnas annars och räknas).
    #[arg(long)]
    pub include_test: bool,
}

impl AuditArgs {
    fn apply(&self, options: &mut Options) -> Result<(), AppError> {
        options.period.include_test = self.include_test;
        if self.compare_from.is_some() || self.compare_to.is_some() {
            options.compare = Some(Period::new(self.compare_from, self.compare_to).map_err(
                |_| {
                    AppError::Input(
                        "jämförelseperioden slutar före den börjar (--compare-to är tidigare än --compare-from)"
                            .to_owned(),
                    )
                },
            )?);
        }
        Ok(())
    }
}

/// Where a report goes and in which format.
#[derive(Clone, Debug, clap::Args)]
pub struct OutputArgs {
    /// html, json, csv, xlsx (för audit) eller text (för replay). Utan --format: efter
    /// filändelsen i --out, annars html för audit och text för replay.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Fil att skriva rapporten till; utan --out skrivs den till standard ut.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl OutputArgs {
    /// The format asked for, else the one `--out`'s extension names, else the first of
    /// `allowed`, the formats `command` writes. An extension that names another format
    /// than `--format`, or none at all without `--format` (`rapport.pdf`), is refused: the
    /// file would hold something else than its name says; so is a format the command does
    /// not write.
    fn format(&self, command: &str, allowed: &[ReportFormat]) -> Result<ReportFormat, AppError> {
        let names = |formats: &[ReportFormat], each: fn(ReportFormat) -> String| {
            let names: Vec<String> = formats.iter().map(|f| each(*f)).collect();
            match names.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} eller {last}", rest.join(", ")),
                None => String::new(),
            }
        };
        let written = |format: ReportFormat| -> Result<ReportFormat, AppError> {
            if allowed.contains(&format) {
                return Ok(format);
            }
            Err(AppError::Input(format!(
                "{command} skrivs som {} (--format), inte som {}",
                names(allowed, |f| f.name().to_owned()),
                format.name()
            )))
        };
        let default = allowed.first().copied().unwrap_or(ReportFormat::Html);
        let Some(path) = self.out.as_deref() else {
            return written(self.format.unwrap_or(default));
        };
        let Some(extension) = extension(path) else {
            return written(self.format.unwrap_or(default));
        };
        let named = match extension.as_str() {
            "html" | "htm" => Some(ReportFormat::Html),
            "json" => Some(ReportFormat::Json),
            "csv" => Some(ReportFormat::Csv),
            "xlsx" => Some(ReportFormat::Xlsx),
            "txt" => Some(ReportFormat::Text),
            _ => None,
        };
        let refuse = |why: String| Err(AppError::Input(format!("--out {}: {why}", path.display())));
        match (self.format, named) {
            (Some(asked), Some(named)) if asked != named => refuse(format!(
                "filändelsen .{extension} är ett annat format än --format {}; ändra den ena",
                asked.name()
            )),
            (Some(asked), _) => written(asked),
            (None, Some(named)) => written(named),
            (None, None) => refuse(format!(
                "filändelsen .{extension} är inget format {command} skrivs i; använd {}, eller \
                 ange --format",
                names(allowed, |f| format!(".{}", f.extension()))
            )),
        }
    }

    /// Refuses an `--out` the report could not or should not be written to, before any
    /// work: a folder that does not exist, or an existing file that is not a report (by
    /// its extension), such as the database or the pseudonym key, which a report would
    /// replace whole.
    fn check_target(&self) -> Result<(), AppError> {
        let Some(path) = &self.out else {
            return Ok(());
        };
        let refuse = |why: &str| Err(AppError::Input(format!("--out {}: {why}", path.display())));
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => refuse("finns redan och är ingen vanlig fil"),
            Ok(_) if !has_report_extension(path) => refuse(
                "filen finns redan och är ingen rapport (.html, .json, .csv, .xlsx eller .txt); \
                 ange en ny fil, eller ta bort den om den ska skrivas över",
            ),
            Ok(_) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    Some(dir) if !dir.is_dir() => refuse("mappen finns inte"),
                    _ => Ok(()),
                }
            }
            Err(err) => refuse(&err.to_string()),
        }
    }

    /// Writes `text` to `--out` (whole or not at all: a temporary file renamed into
    /// place) or to standard output.
    fn write(&self, text: &[u8]) -> Result<(), AppError> {
        match &self.out {
            Some(path) => {
                write_atomically(path, text)?;
                eprintln!("Rapporten skrevs till {}.", path.display());
                Ok(())
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                match stdout.write_all(text).and_then(|()| stdout.flush()) {
                    // A reader such as `head` that stops early is not an error.
                    Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err.into()),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// The candidate's own tests, run as `gk-regler test` runs them, in one line: a replay
/// of a candidate that fails its tests says so, as the web page's trial does.
fn candidate_tests(dir: &Path, candidate: &RuleSet) -> (String, bool) {
    let rerun = format!("kör `gk-regler test {}` för att se vad", dir.display());
    match gk_regler::rule_tests::TestSuite::load(dir, Some(candidate)) {
        Err(err) => (
            format!(
                "Kandidatens tester kunde inte läsas ({} fel), så inget test har körts; {rerun}.",
                err.problems.len()
            ),
            false,
        ),
        Ok(suite) if suite.cases.is_empty() => {
            ("Kandidatens tester: inga tester hittades.".to_owned(), true)
        }
        Ok(suite) => {
            let results = suite.run(candidate);
            let failed = results.iter().filter(|r| r.failure.is_some()).count();
            let passed = format!(
                "Kandidatens tester: {} av {} godkända",
                results.len() - failed,
                results.len()
            );
            if failed == 0 {
                (format!("{passed}."), true)
            } else {
                (format!("{passed}: underkänt; {rerun}."), false)
            }
        }
    }
}

/// A change in a count with its sign, and 0 without one (not "−0").
fn signed(sign: char, n: usize) -> String {
    if n == 0 {
        "0".to_owned()
    } else {
        format!("{sign}{n}")
    }
}

/// Whether `path` ends in the extension of a report format (case aside).
fn has_report_extension(path: &Path) -> bool {
    extension(path).is_some_and(|e| {
        ["html", "htm", "json", "csv", "xlsx", "txt"]
            .iter()
            .any(|known| e == *known)
    })
}

/// The extension of `path`'s file name, in lower case; a name such as `.json` is its
/// extension alone (the standard library sees none there).
fn extension(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    let after_dot = match path.extension() {
        Some(extension) => extension.to_string_lossy().into_owned(),
        None if name.len() > 1 && name.starts_with('.') => name[1..].to_owned(),
        None => return None,
    };
    Some(after_dot.to_ascii_lowercase())
}

/// Writes `text` to a temporary file beside `path` and renames it into place, so `path`
/// holds the whole report or is left as it was. The temporary file's name says what it
/// is, for whoever finds one left by a process that was killed.
fn write_atomically(path: &Path, text: &[u8]) -> Result<(), AppError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Not the person's input: the disk or the folder (exit 1, not 2).
    let at = |err: std::io::Error| {
        AppError::Report(
            format!("{}: {}", path.display(), gk_regler::app::error_chain(&err)).into(),
        )
    };
    let mut file = tempfile::Builder::new()
        .prefix(".gk-regler-rapport-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(at)?;
    file.write_all(text)
        .and_then(|()| file.as_file().sync_all())
        .map_err(at)?;
    file.persist(path).map_err(|e| at(e.error))?;
    Ok(())
}

/// A progress bar on standard error when it is a terminal, hidden otherwise.
fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta} kvar)")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `gk-regler import PROFILES.jsonl [--outcomes FILE]`: evaluates every profile with the
/// active rules (each rule in force as of the profile's `checked_on`), stores the checks
/// like the service does, and records the outcomes in the same commit. Every line is
/// validated before anything is stored; one bad line and nothing is.
pub async fn import(
    config: Config,
    profiles_path: &Path,
    outcomes_path: Option<&Path>,
) -> Result<(), AppError> {
    let started = Instant::now();
    // Checks are stored only with a rule set whose own tests pass, as in `serve`; the
    // shadow set passes the same gate.
    let rules = gk_regler::rule_tests::load_tested(&config.rules_dir)?.rules;
    let shadow = config
        .shadow_rules_dir
        .as_deref()
        .map(gk_regler::rule_tests::load_tested)
        .transpose()?
        .map(|tested| std::sync::Arc::new(tested.rules));
    let outcomes = outcomes_path.map(app::outcomes::read_file).transpose()?;
    let principal = analyst(IMPORT_ACTOR);

    let bar = progress_bar(0, "Läser profiler");
    let progress = {
        let bar = bar.clone();
        std::sync::Arc::new(move |step| match step {
            ImportProgress::Validated(lines) => bar.inc(lines as u64),
            ImportProgress::Total(lines) => {
                bar.set_length(lines as u64);
                bar.set_position(0);
                bar.set_message("Kontrollerar profiler");
            }
            ImportProgress::Evaluated(lines) => bar.inc(lines as u64),
        })
    };
    // Every line is validated before a database is opened or made.
    let validated = app::history::validate_cohort(
        &principal,
        profiles_path.to_owned(),
        std::sync::Arc::clone(&progress) as _,
    )
    .await
    .inspect_err(|_| bar.finish_and_clear())?;
    let file = match validated {
        Ok(file) => file,
        Err(app::history::RefusedFile { lines, problems }) => {
            bar.finish_and_clear();
            for (line, problem) in problems.iter().take(MAX_LISTED_PROBLEMS) {
                eprintln!("{}:{line}: {problem}", profiles_path.display());
            }
            if problems.len() > MAX_LISTED_PROBLEMS {
                eprintln!("… och {} rader till.", problems.len() - MAX_LISTED_PROBLEMS);
            }
            return Err(AppError::Input(format!(
                "{} av {} profiler kunde inte läsas; inget sparades",
                problems.len(),
                lines
            )));
        }
    };
    let (store, writer) = admin::open_store_for_import(&config)?;
    let (store, writer, key) = match open_key(store, writer, &config).await {
        Ok(opened) => opened,
        Err(err) => {
            bar.finish_and_clear();
            return Err(err);
        }
    };
    // Stored checks name their rule set by version: a version already used for another
    // text is refused here, as a reload refuses it.
    for set in std::iter::once(&rules).chain(shadow.as_deref()) {
        let taken = app::rules::version_used_for_other_text(&store, set).await;
        let refusal = match taken {
            Ok(None) => continue,
            Ok(Some(other)) => AppError::Input(format!(
                "{}. Inget sparades.",
                app::rules::version_taken_message(set, &other)
            )),
            Err(err) => err,
        };
        // Closed as after any refused import: the writer gives the database back as it
        // was (write-ahead log and all) before the command ends.
        bar.finish_and_clear();
        admin::close_store(store, writer).await?;
        return Err(refusal);
    }
    let rules = std::sync::Arc::new(rules);
    let total_outcomes = outcomes.as_ref().map(Vec::len);
    let imported = app::history::import_cohort(
        &store,
        &key,
        &principal,
        std::sync::Arc::clone(&rules),
        shadow,
        app::history::Cohort {
            profiles: file,
            outcomes,
        },
        progress,
    )
    .await;
    bar.finish_and_clear();
    let (counts, recorded) = match imported {
        Ok(imported) => imported,
        Err(err) => {
            admin::close_store(store, writer).await?;
            return Err(err);
        }
    };
    // The flags and rule errors are those of every profile read, stored now or before.
    println!(
        "Läste {} ({} och {} regelfel med {}) och sparade {}{}.",
        count_noun(counts.read, "profil", "profiler"),
        count_noun(counts.flags, "flagga", "flaggor"),
        counts.rule_errors,
        rules.label(),
        count_noun(counts.stored, "kontroll", "kontroller"),
        match counts.read - counts.stored {
            0 => String::new(),
            skipped => format!("; {skipped} fanns redan och hoppades över"),
        }
    );
    if let (Some(total), Some(recorded)) = (total_outcomes, recorded) {
        print_recorded(total, &recorded);
    }
    admin::close_store(store, writer).await?;
    eprintln!("Klart på {} s.", figure(started.elapsed().as_secs_f64(), 1));
    Ok(())
}

/// `gk-regler audit`: the flag-versus-outcome audit of the stored history.
pub async fn audit(
    config: Config,
    period: &PeriodArgs,
    audit_args: &AuditArgs,
    output: &OutputArgs,
) -> Result<(), AppError> {
    let started = Instant::now();
    output.check_target()?;
    let mut options = period.options(config.audit_min_cell_floor)?;
    audit_args.apply(&mut options)?;
    use ReportFormat::{Csv, Html, Json, Xlsx};
    let format = output.format("audit", &[Html, Json, Csv, Xlsx])?;
    if format == ReportFormat::Xlsx && output.out.is_none() && std::io::stdout().is_terminal() {
        return Err(AppError::Input(
            "en Excel-fil skrivs inte till terminalen: ange en fil med --out".to_owned(),
        ));
    }
    let rules = RuleSet::load(&config.rules_dir)?;
    let (store, writer) = admin::open_existing_store(&config)?;
    let principal = analyst(AUDIT_ACTOR);
    let written = match format {
        ReportFormat::Json => Some(app::history::AuditFormat::Json),
        ReportFormat::Csv => Some(app::history::AuditFormat::Csv),
        ReportFormat::Html | ReportFormat::Text => Some(app::history::AuditFormat::Html),
        ReportFormat::Xlsx => None,
    };
    let rendered = match written {
        Some(written) => app::history::audit_rendered(&store, &principal, &rules, options, written)
            .await
            .map(|r| (r.report, r.text.into_bytes())),
        None => app::history::audit_xlsx(&store, &principal, &rules, options).await,
    };
    admin::close_store(store, writer).await?;
    let (report, bytes) = rendered?;
    output.write(&bytes)?;
    match report.units.get(audit::report::SexGroup::All) {
        Some(0) => eprintln!("{}", audit::analysis::NO_CASES_NOTE),
        Some(units) => eprintln!(
            "Uppföljningen omfattar {} ärenden med utfall i perioden; klar på {} s.",
            html::count(units),
            figure(started.elapsed().as_secs_f64(), 2)
        ),
        // Too few cases: the report is a note alone.
        None if report.rules.is_empty() => eprintln!(
            "Uppföljningen visar inga resultat: antalet ärenden i perioden är dolt, eftersom det eller en del av det (kvinnor eller män) är färre än {} och annars skulle röja enskilda.",
            report.min_cell
        ),
        None => eprintln!(
            "Uppföljningen är klar på {} s. Antalet ärenden i perioden är dolt, eftersom en del av det (till exempel ärenden utan kön) är färre än {} och annars skulle röja enskilda; rapportens tabeller visar det som går att visa.",
            figure(started.elapsed().as_secs_f64(), 2),
            report.min_cell
        ),
    }
    Ok(())
}

/// `gk-regler replay --rules CANDIDATE`: the stored profiles under the active and the
/// candidate rules, storing nothing.
pub async fn replay(
    config: Config,
    candidate_dir: &Path,
    period: &PeriodArgs,
    output: &OutputArgs,
    verbose: bool,
) -> Result<(), AppError> {
    let started = Instant::now();
    output.check_target()?;
    let options = period.options(config.audit_min_cell_floor)?;
    use ReportFormat::{Csv, Html, Json, Text};
    let format = output.format("replay", &[Text, Html, Json, Csv])?;
    let current = RuleSet::load(&config.rules_dir)?;
    let candidate = RuleSet::load(candidate_dir)?;
    let (tests, tests_pass) = candidate_tests(candidate_dir, &candidate);
    eprintln!("{tests}");
    if (&candidate.name, &candidate.version) == (&current.name, &current.version)
        && candidate.content_hash != current.content_hash
    {
        eprintln!(
            "obs: kandidaten heter {} version {} som reglerna som gäller nu, men innehållet skiljer sig; ge den en ny version (version i manifest.yaml) innan den laddas, annars vägras den.",
            gk_regler::present::printable(&candidate.name),
            gk_regler::present::printable(&candidate.version)
        );
    }
    let (store, writer) = admin::open_existing_store(&config)?;
    let total = app::history::checks_in_period(&store, &options).await?;
    let bar = progress_bar(total, "Prövar reglerna på sparade kontroller");
    // When the last batch was evaluated: the rest is the candidate's audit.
    let evaluated_at = std::sync::Arc::new(std::sync::Mutex::new(started));
    let progress = {
        let bar = bar.clone();
        let evaluated_at = std::sync::Arc::clone(&evaluated_at);
        Box::new(move |n: u64| {
            bar.inc(n);
            if let Ok(mut at) = evaluated_at.lock() {
                *at = Instant::now();
            }
        })
    };
    let report = app::history::replay(
        &store,
        &analyst(REPLAY_ACTOR),
        current,
        candidate,
        options,
        progress,
    )
    .await;
    bar.finish_and_clear();
    let mut report = report?;
    report.candidate_tests = Some(tests);
    let evaluation_seconds = evaluated_at
        .lock()
        .map_or(0.0, |at| at.duration_since(started).as_secs_f64());
    admin::close_store(store, writer).await?;
    let text = match format {
        ReportFormat::Json => report.to_json().map_err(report_error)?,
        ReportFormat::Csv => report.to_csv().map_err(report_error)?,
        ReportFormat::Html => audit::html::render_replay(&report).map_err(report_error)?,
        ReportFormat::Text | ReportFormat::Xlsx => replay_table(&report),
    };
    output.write(text.as_bytes())?;
    eprintln!(
        "Prövade {} med båda regeluppsättningarna.",
        count_noun(
            report.checks_evaluated,
            "sparad kontroll",
            "sparade kontroller"
        )
    );
    if verbose {
        eprintln!(
            "Prövningen tog {} s ({} kontroller per sekund med båda regeluppsättningarna, läsning ur databasen medräknad). Med uppföljningarna tog allt {} s.",
            figure(evaluation_seconds, 2),
            figure(
                report.checks_evaluated as f64 / evaluation_seconds.max(1e-9),
                0
            ),
            figure(started.elapsed().as_secs_f64(), 2)
        );
    }
    if !tests_pass {
        // The report is written; what it shows is of a set that would not be loaded.
        return Err(AppError::TestsFailed(
            "kandidaten klarar inte sina tester (se ovan); den skulle inte laddas".to_owned(),
        ));
    }
    Ok(())
}

fn report_error(err: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Report(Box::new(err))
}

/// The replay as a table for the terminal: each rule's flags under both sets, then each
/// rule's outcome shares for flagged and other cases under both.
fn replay_table(report: &audit::replay::ReplayReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Nuvarande regler: {} version {} ({})\nKandidat:         {} version {} ({})\nKontroller i perioden: {}\n",
        report.current.name,
        report.current.version,
        report.current.short_hash,
        report.candidate.name,
        report.candidate.version,
        report.candidate.short_hash,
        report.checks_in_period
    );
    if let Some(tests) = &report.candidate_tests {
        let _ = writeln!(out, "{tests}\n");
    }
    let width = report
        .rules
        .iter()
        .map(|r| r.rule_id.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>8}  {:>10}  {:>10}  {:>8}",
        "Regel", "Nu", "Kandidat", "Tillkommer", "Försvinner", "Regelfel"
    );
    for rule in &report.rules {
        let presence = match (rule.in_current, rule.in_candidate) {
            (true, false) => " (tas bort)",
            (false, true) => " (ny)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>8}  {:>10}  {:>10}  {:>8}{presence}",
            rule.rule_id,
            rule.flagged_current,
            rule.flagged_candidate,
            signed('+', rule.gained),
            signed('−', rule.lost),
            format!("{}→{}", rule.errors_current, rule.errors_candidate),
        );
    }
    let _ = writeln!(
        out,
        "\nUtfall för ärenden som flaggades och inte flaggades vid den senaste kontrollen före GK\n(andel i procent, flaggade / ej flaggade; – visas inte: för få ärenden):\n"
    );
    let measure_width = audit::report::Measure::ALL
        .iter()
        .map(|m| m.label_sv().chars().count())
        .max()
        .unwrap_or(0);
    let shares = |comparison: Option<&audit::report::Comparison>, measure| {
        let outcome = comparison.and_then(|c| c.outcomes.iter().find(|o| o.outcome == measure));
        let pct = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| audit::html::number(v, 1));
        match outcome {
            Some(o) => format!("{} / {}", pct(o.share_a_pct), pct(o.share_b_pct)),
            None => "–".to_owned(),
        }
    };
    for rule in &report.rules {
        let _ = writeln!(out, "{}", rule.rule_id);
        let _ = writeln!(
            out,
            "  {:<measure_width$}  {:>15}  {:>15}",
            "", "Nu", "Kandidat"
        );
        for measure in audit::report::Measure::ALL {
            let _ = writeln!(
                out,
                "  {:<measure_width$}  {:>15}  {:>15}",
                measure.label_sv(),
                shares(rule.outcomes_current.as_ref(), measure),
                shares(rule.outcomes_candidate.as_ref(), measure),
            );
        }
    }
    out
}

/// A figure for people, the Swedish way: a decimal comma (`0,12`).
fn figure(value: f64, decimals: usize) -> String {
    html::number(value, decimals)
}
