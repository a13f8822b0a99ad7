//! The `gk-regler` command line: parses arguments and hands each subcommand to the
//! library. Exit codes are documented in README.md.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use gk_regler::contract::{EvaluationReport, ProblemJson};
use gk_regler::profile::Profile;
use gk_regler::rule_tests::TestSuite;
use gk_regler::ruleset::RuleSet;
use gk_regler::present;

/// Exit codes, one meaning each (README.md "Kommandon").
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check {
            profile,
            rules,
            json,
        } => check(&profile, &rules, json),
        Command::Test { rules } => test(&rules),
        Command::Lint { rules, json } => lint(&rules, json),
        Command::Schema => print_json(&Profile::json_schema()),
    };
    ExitCode::from(code)
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
        eprint!("{}", present::problems(&err.problems));
        exit::RULES_REFUSED
    })
}

fn check(source: &str, rules_dir: &Path, json: bool) -> u8 {
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|err| format!("kan inte läsa standard in: {err}"))
    } else {
        std::fs::read_to_string(source).map_err(|err| format!("kan inte läsa {source}: {err}"))
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
            eprintln!("Ogiltig profil: fältet {}: {}", err.path, err.message);
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
        print!("{}", present::evaluation(&report));
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
    let suite = match TestSuite::load(rules_dir, &rules) {
        Ok(suite) => suite,
        Err(err) => {
            eprint!("{}", present::problems(&err.problems));
            return exit::FAILED;
        }
    };
    let results = suite.run(&rules);
    print!("{}", present::test_results(&results, &suite.untested_rules));
    if results.iter().any(|r| r.failure.is_some()) || results.is_empty() {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn lint(rules_dir: &Path, json: bool) -> u8 {
    let outcome = RuleSet::load(rules_dir).and_then(|rules| {
        TestSuite::load(rules_dir, &rules).map(|suite| (rules, suite))
    });
    match (outcome, json) {
        (Ok((rules, suite)), false) => {
            println!(
                "{}: {} regler kompilerade, {} testfall lästa. Inga fel.",
                rules.label(),
                rules.rules.len(),
                suite.cases.len()
            );
            for rule in &suite.untested_rules {
                println!("obs: regeln {rule} har inga tester");
            }
            exit::OK
        }
        (Ok(_), true) => print_json(&Vec::<ProblemJson>::new()),
        (Err(err), false) => {
            eprint!("{}", present::problems(&err.problems));
            exit::FAILED
        }
        (Err(err), true) => {
            let problems: Vec<ProblemJson> = err.problems.iter().map(ProblemJson::from).collect();
            print_json(&problems);
            exit::FAILED
        }
    }
}
