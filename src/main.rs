//! The `gk-regler` command line: parses arguments and hands each subcommand to the
//! library. Exit codes are documented in README.md.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use gk_regler::app::AppError;
use gk_regler::auth::Role;
use gk_regler::config::{Config, LogFormat};
use gk_regler::contract::{EvaluationReport, ProblemJson};
use gk_regler::long_work;
use gk_regler::present;
use gk_regler::profile::Profile;
use gk_regler::rule_tests::TestSuite;
use gk_regler::ruleset::RuleSet;

/// `eprintln!`, `eprint!`, `println!` and `print!` that never panic: with standard
/// error or output closed (a reader such as `head` that stopped), a message nobody can
/// read is dropped instead of ending the command half-way (an import after its commit,
/// with its marker file left behind).
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;

use cli::{commands, history};

/// The allocator: mimalloc, not the system's (ARCHITECTURE.md, "Dependencies and why").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, one meaning each (README.md "Commands").
mod exit {
    pub const OK: u8 = 0;
    /// Test failures, lint problems, or an I/O error.
    pub const FAILED: u8 = 1;
    /// Bad input: an invalid profile (clap also uses 2 for bad arguments).
    pub const BAD_INPUT: u8 = 2;
    /// At least one rule failed at run time.
    pub const RULE_FAILED: u8 = 3;
    /// The rule set could not be loaded.
    pub const RULES_REFUSED: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "gk-regler",
    version,
    about = "Beslutsstöd inför gemensam kartläggning (GK): kontrollerar ärenden mot regler i Rhai."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Kontrollera en deltagarprofil (JSON) mot reglerna och visa flaggorna.
    Check {
        /// Profilfil i JSON, eller - för standard in.
        profile: String,
        /// Regelmapp.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Skriv resultatet som JSON för program.
        #[arg(long)]
        json: bool,
    },
    /// Kör regeltesterna (YAML) och visa vilka som gick igenom.
    Test {
        /// Regelmapp.
        #[arg(default_value = "rules")]
        rules: PathBuf,
    },
    /// Ladda och kompilera alla regler och tester utan att köra något; visa alla fel.
    Lint {
        /// Regelmapp.
        #[arg(default_value = "rules")]
        rules: PathBuf,
        /// Skriv felen som JSON.
        #[arg(long)]
        json: bool,
    },
    /// Skriv ut profilens JSON Schema.
    Schema,
    /// Starta tjänsten (HTTP-API) med reglerna och databasen.
    Serve {
        /// Konfigurationsfil (YAML). Utan den gäller standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Läs in utfall (JSONL eller CSV) i databasen; allt eller inget.
    ImportOutcomes {
        /// Fil med utfall: .jsonl (ett JSON-objekt per rad) eller .csv.
        file: PathBuf,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Läs in en kohort: kontrollera varje profil (JSONL) med reglerna, spara
    /// kontrollerna och, med --outcomes, utfallen. Allt eller inget.
    Import {
        /// Profiler, ett JSON-objekt per rad.
        profiles: PathBuf,
        /// Utfall (.jsonl eller .csv) att läsa in efter kontrollerna.
        #[arg(long)]
        outcomes: Option<PathBuf>,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Uppföljning: jämför flaggor med utfall för en period (kvinnor, män, alla).
    Audit {
        #[command(flatten)]
        period: history::PeriodArgs,
        #[command(flatten)]
        audit: history::AuditArgs,
        #[command(flatten)]
        output: history::OutputArgs,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Pröva en ny regeluppsättning på sparade kontroller, utan att spara något.
    Replay {
        /// Mappen med de regler som ska prövas.
        #[arg(long)]
        rules: PathBuf,
        #[command(flatten)]
        period: history::PeriodArgs,
        #[command(flatten)]
        output: history::OutputArgs,
        /// Visa också hur lång tid prövningen tog och hur många kontroller per sekund.
        #[arg(long)]
        verbose: bool,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Radera sparade kontroller som är äldre än en viss tid, med deras flaggor.
    Purge {
        /// Hur gamla, t.ex. 90d, 6mo eller 2y.
        #[arg(long)]
        older_than: String,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Säkerhetskopiera databasen och pseudonymnyckeln till en ny mapp, medan tjänsten
    /// kör; med manifest.json (storlek och SHA-256 för varje fil).
    Backup {
        /// Mappen att skriva till: får inte finnas, eller vara tom.
        dir: PathBuf,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Återställ en säkerhetskopia till databasens och nyckelns sökvägar. Kontrollerar
    /// kontrollsummorna först och skriver aldrig över en befintlig databas.
    Restore {
        /// Mappen med säkerhetskopian (den som `backup` skrev).
        dir: PathBuf,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Hantera API-tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Skriv ut tjänstens OpenAPI-dokument.
    Openapi,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Skapa en token med en roll; token skrivs ut en gång, hashen sparas.
    Create {
        /// handlaggare, policy, analytiker eller admin.
        #[arg(long)]
        role: String,
        /// Namn på den som får token (syns i åtkomstloggen).
        #[arg(long)]
        name: String,
        /// Sista giltighetsdag (ÅÅÅÅ-MM-DD) eller tid, t.ex. 90d; utan: inget slutdatum.
        #[arg(long)]
        expires: Option<String>,
        /// normal, eller test för en token som bara gör testkontroller.
        #[arg(long, default_value = "normal")]
        purpose: String,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Lista alla tokens (namn, roll, giltighet, status; aldrig själva token).
    List {
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Återkalla en token (numret från `token list`); gäller direkt.
    Revoke {
        /// Numret från `gk-regler token list`.
        id: i64,
        /// Konfigurationsfil (YAML); annars standardvärdena och GK_REGLER_*.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    keep_panic_messages_out_of_the_log();
    let cli = match cli::swedish::command(Cli::command())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        // Help and the version on standard out; a command line it cannot read on
        // standard error, with exit code 2.
        Err(err) => {
            let text = cli::swedish::render(&err);
            if err.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(if err.exit_code() == 0 {
                exit::OK
            } else {
                exit::BAD_INPUT
            });
        }
    };
    // Rules run on this thread in `check`, `test` and `lint`: it gets the stack rule
    // evaluation needs (`engine::STACK_BYTES`), which a process's main thread may lack.
    let command = std::thread::Builder::new()
        .name("gk-regler".into())
        .stack_size(gk_regler::engine::STACK_BYTES)
        .spawn(move || run(cli.command));
    match command.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => ExitCode::from(code),
        // A panic has said where it happened already.
        Ok(Err(_)) => ExitCode::from(exit::FAILED),
        Err(err) => {
            eprintln!("fel: kan inte starta: {err}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Runs one subcommand; returns its exit code.
fn run(command: Command) -> u8 {
    match command {
        Command::Check {
            profile,
            rules,
            json,
        } => check(&profile, &rules, json),
        Command::Test { rules } => test(&rules),
        Command::Lint { rules, json } => lint(&rules, json),
        Command::Schema => print_json(&Profile::json_schema()),
        Command::Openapi => {
            print!("{}", gk_regler::service::openapi::document_text());
            exit::OK
        }
        Command::Serve { config } => with_config_for(
            config.as_deref(),
            long_work::Settings::for_service(),
            |config| {
                init_tracing(config.log_format);
                runtime(commands::serve(config))
            },
        ),
        Command::ImportOutcomes { file, config } => with_config(config.as_deref(), |config| {
            runtime(commands::import_outcomes(config, &file))
        }),
        Command::Import {
            profiles,
            outcomes,
            config,
        } => with_config(config.as_deref(), |config| {
            runtime(history::import(config, &profiles, outcomes.as_deref()))
        }),
        Command::Audit {
            period,
            audit,
            output,
            config,
        } => with_config(config.as_deref(), |config| {
            runtime(history::audit(config, &period, &audit, &output))
        }),
        Command::Replay {
            rules,
            period,
            output,
            verbose,
            config,
        } => with_config(config.as_deref(), |config| {
            runtime(history::replay(config, &rules, &period, &output, verbose))
        }),
        Command::Purge { older_than, config } => with_config(config.as_deref(), |config| {
            runtime(commands::purge(config, &older_than))
        }),
        Command::Backup { dir, config } => with_config(config.as_deref(), |config| {
            runtime(commands::backup(config, &dir))
        }),
        Command::Restore { dir, config } => with_config(config.as_deref(), |config| {
            runtime(commands::restore(config, &dir))
        }),
        Command::Token(TokenCommand::Create {
            role,
            name,
            expires,
            purpose,
            config,
        }) => with_config(config.as_deref(), |config| {
            let Some(role) = gk_regler::names::parse_name::<Role>(&role) else {
                eprintln!(
                    "fel: okänd roll {role:?}; använd handlaggare, policy, analytiker eller admin"
                );
                return exit::BAD_INPUT;
            };
            let Some(purpose) = gk_regler::auth::Purpose::from_name(&purpose) else {
                eprintln!("fel: --purpose {purpose:?} är okänt; använd normal eller test");
                return exit::BAD_INPUT;
            };
            let expires = match expires
                .as_deref()
                .map(gk_regler::app::accounts::Expiry::parse)
                .transpose()
            {
                Ok(expires) => expires,
                Err(err) => return report(Err(err)),
            };
            let new = gk_regler::app::accounts::NewToken {
                name,
                role,
                purpose,
                expires,
            };
            runtime(commands::token_create(config, new))
        }),
        Command::Token(TokenCommand::List { config }) => with_config(config.as_deref(), |config| {
            runtime(commands::token_list(config))
        }),
        Command::Token(TokenCommand::Revoke { id, config }) => {
            with_config(config.as_deref(), |config| {
                runtime(commands::token_revoke(config, id))
            })
        }
    }
}

fn with_config(path: Option<&Path>, run: impl FnOnce(Config) -> u8) -> u8 {
    with_config_for(path, long_work::Settings::for_command_line(), run)
}

/// Loads the configuration and sets the pool of long work up from it, with `defaults`
/// for what it leaves out, before `run`.
fn with_config_for(
    path: Option<&Path>,
    defaults: long_work::Settings,
    run: impl FnOnce(Config) -> u8,
) -> u8 {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("fel i konfigurationen: {message}");
            return exit::BAD_INPUT;
        }
    };
    if let Err(err) = long_work::configure(config.long_work(defaults)) {
        eprintln!("fel: kan inte starta trådarna för långa arbeten: {err}");
        return exit::FAILED;
    }
    run(config)
}

/// A panic's message may quote what the code was working on, such as a value from a
/// profile: the log and the terminal get where it happened, never the message.
fn keep_panic_messages_out_of_the_log() {
    std::panic::set_hook(Box::new(|info| {
        // The script engine's, inside a rule: that rule's failure says so.
        if gk_regler::engine::panicking_inside_a_rule() {
            return;
        }
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if tracing::dispatcher::has_been_set() {
            tracing::error!(at, "a thread panicked; its message is not logged");
        } else {
            eprintln!(
                "internt fel i {at} (meddelandet skrivs inte ut: det kan innehålla personuppgifter)"
            );
        }
    }));
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file keeps no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line that cannot be written (standard error closed) is lost, not
        // reported with `eprintln!`, which would panic and abort the service.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime(work: impl std::future::Future<Output = Result<(), AppError>>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(gk_regler::engine::STACK_BYTES)
        .build()
    {
        Ok(runtime) => {
            let result = runtime.block_on(work);
            // Work left on the blocking pool (a report a closed connection asked for)
            // never holds the exit; no write runs there (the writer is its own thread).
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            report(result)
        }
        Err(err) => {
            eprintln!("fel: kan inte starta: {err}");
            exit::FAILED
        }
    }
}

/// Prints a command's error for a person and maps it to its exit code.
fn report(result: Result<(), AppError>) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(AppError::Rules(err)) => {
            eprint!(
                "{}",
                present::problems(&err.problems, present::RULES_NOT_LOADED)
            );
            exit::RULES_REFUSED
        }
        Err(AppError::Input(message) | AppError::Config(message) | AppError::Conflict(message)) => {
            eprintln!("fel: {message}");
            exit::BAD_INPUT
        }
        Err(err) => {
            eprintln!("fel: {}", gk_regler::app::error_chain(&err));
            exit::FAILED
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> u8 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            exit::OK
        }
        Err(err) => {
            eprintln!("fel: {err}");
            exit::FAILED
        }
    }
}

fn load_rules(dir: &Path) -> Result<RuleSet, u8> {
    RuleSet::load(dir).map_err(|err| {
        eprint!(
            "{}",
            present::problems(&err.problems, present::RULES_NOT_LOADED)
        );
        exit::RULES_REFUSED
    })
}

fn check(source: &str, rules_dir: &Path, json: bool) -> u8 {
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|err| {
                format!(
                    "kan inte läsa standard in: {}",
                    gk_regler::app::io_error_text(&err)
                )
            })
    } else {
        std::fs::read_to_string(source).map_err(|err| {
            format!(
                "kan inte läsa {source}: {}",
                gk_regler::app::io_error_text(&err)
            )
        })
    };
    let text = match text {
        Ok(text) => text,
        Err(message) => {
            eprintln!("fel: {message}");
            return exit::BAD_INPUT;
        }
    };
    let profile = match Profile::from_json(&text) {
        Ok(profile) => Arc::new(profile),
        Err(err) => {
            if err.path == "." {
                eprintln!("Ogiltig profil: {}", err.message);
            } else {
                eprintln!("Ogiltig profil: fältet {}: {}", err.path, err.message);
            }
            return exit::BAD_INPUT;
        }
    };
    let rules = match load_rules(rules_dir) {
        Ok(rules) => rules,
        Err(code) => return code,
    };
    let evaluation = rules.evaluate(&profile);
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    if json {
        if print_json(&report) != exit::OK {
            return exit::FAILED;
        }
    } else {
        print!("{}", present::evaluation(&report, rules.rules.len()));
    }
    if evaluation.has_failures() {
        exit::RULE_FAILED
    } else {
        exit::OK
    }
}

fn test(rules_dir: &Path) -> u8 {
    let rules = match load_rules(rules_dir) {
        Ok(rules) => rules,
        Err(code) => return code,
    };
    let suite = match TestSuite::load(rules_dir, Some(&rules)) {
        Ok(suite) => suite,
        Err(err) => {
            eprint!(
                "{}",
                present::problems(&err.problems, present::TESTS_NOT_READ)
            );
            return exit::FAILED;
        }
    };
    let results = suite.run(&rules);
    print!("{}", present::test_results(&results, &suite.untested_rules));
    if results.iter().any(|r| r.failure.is_some()) {
        // The same cases refuse the set at `serve` and at every reload.
        println!(
            "{} går inte i drift: tjänsten startar inte och en omladdning vägras så länge ett test misslyckas.",
            rules.label()
        );
        exit::FAILED
    } else if results.is_empty() {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn lint(rules_dir: &Path, json: bool) -> u8 {
    // Both halves are checked even when the first fails, so every problem shows at once.
    let rules = RuleSet::load(rules_dir);
    let suite = TestSuite::load(rules_dir, rules.as_ref().ok());
    let mut problems = Vec::new();
    if let Err(err) = &rules {
        problems.extend(err.problems.iter().cloned());
    }
    if let Err(err) = &suite {
        problems.extend(err.problems.iter().cloned());
    }
    if json {
        let problems: Vec<ProblemJson> = problems.iter().map(ProblemJson::from).collect();
        let code = print_json(&problems);
        return if problems.is_empty() {
            code
        } else {
            exit::FAILED
        };
    }
    match (rules, suite) {
        (Ok(rules), Ok(suite)) => {
            println!(
                "{}: {} kompilerade, {} lästa. Inga fel.",
                rules.label(),
                gk_regler::present::count_noun(rules.rules.len(), "regel", "regler"),
                gk_regler::present::count_noun(suite.cases.len(), "testfall", "testfall")
            );
            for rule in &suite.untested_rules {
                println!("obs: regeln {rule} har inga tester");
            }
            for rule in rules.rules.iter().filter(|r| r.meta.inputs.is_none()) {
                println!(
                    "obs: regeln {} anger inte inputs (de uppgifter i profilen den läser)",
                    rule.meta.id
                );
            }
            exit::OK
        }
        _ => {
            eprint!(
                "{}",
                present::problems(&problems, "Reglerna har inte godkänts.")
            );
            exit::FAILED
        }
    }
}
