//! clap's own words in Swedish: the help's headings and flags, and what is said about a
//! command line it cannot read. The commands' and options' descriptions are Swedish
//! already (their doc comments); these are the words clap adds around them.

use std::fmt::Write as _;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

/// The help of every command: what it does, how it is used, then its arguments.
const HELP_TEMPLATE: &str = "{about-with-newline}\nAnvändning: {usage}\n\n{all-args}{after-help}";

/// `command` and all its subcommands with Swedish headings, a Swedish `--help` (and
/// `--version` on `command` itself), and no `help` subcommand.
pub fn command(command: Command) -> Command {
    let command = command.disable_version_flag(true).arg(
        Arg::new("version")
            .short('V')
            .long("version")
            .action(ArgAction::Version)
            .help("Visa versionen"),
    );
    with_swedish_help(command.disable_help_subcommand(true))
}

fn with_swedish_help(command: Command) -> Command {
    command
        .help_template(HELP_TEMPLATE)
        .subcommand_help_heading("Kommandon")
        .subcommand_value_name("KOMMANDO")
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("Visa den här hjälpen"),
        )
        .mut_args(|arg| {
            let arg = with_swedish_value_name(with_swedish_values(arg));
            match arg.get_help_heading() {
                Some(_) => arg,
                None if arg.is_positional() => arg.help_heading("Argument"),
                None => arg.help_heading("Val"),
            }
        })
        .mut_subcommands(with_swedish_help)
}

/// `arg` with the placeholder of its value (`<FROM>`, from its field's name) in Swedish.
fn with_swedish_value_name(arg: Arg) -> Arg {
    let name = match arg.get_id().as_str() {
        "from" | "to" | "compare_from" | "compare_to" => "DATUM",
        "config" | "file" | "out" | "outcomes" | "profiles" => "FIL",
        "dir" | "rules" => "MAPP",
        "profile" => "PROFIL",
        "expires" | "older_than" => "TID",
        "min_cell" => "ANTAL",
        "name" => "NAMN",
        "role" => "ROLL",
        "purpose" => "SYFTE",
        "id" => "NR",
        "format" => "FORMAT",
        _ => return arg,
    };
    if arg.get_action().takes_values() {
        arg.value_name(name)
    } else {
        arg
    }
}

/// `arg` with its default and possible values told in its help in Swedish, instead of
/// clap's `[default: …]` and "Possible values" (whose descriptions are the code's).
fn with_swedish_values(arg: Arg) -> Arg {
    // A flag (`--json`) has the values true and false, never shown.
    if !arg.get_action().takes_values() {
        return arg;
    }
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let mut added = String::new();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !values.is_empty() && !values.iter().all(|v| help.contains(v.as_str())) {
        let _ = write!(added, " (går att ange: {})", values.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !arg.is_hide_default_value_set() {
        let _ = write!(added, " (standard: {})", defaults.join(", "));
    }
    if added.is_empty() && values.is_empty() {
        return arg;
    }
    arg.help(format!("{help}{added}"))
        .hide_possible_values(true)
        .hide_default_value(true)
}

/// What clap would print for `err`, in Swedish where clap's words are its own.
pub fn render(err: &clap::Error) -> String {
    let text = match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::DisplayVersion => return usage_words(&err.render().to_string()),
        _ => match message(err) {
            Some(message) => message,
            None => return usage_words(&err.render().to_string()),
        },
    };
    let mut out = format!("fel: {text}\n");
    if let Some(ContextValue::StyledStr(usage)) = err.get(ContextKind::Usage) {
        let _ = write!(out, "\n{}\n", usage_words(&usage.to_string()));
    }
    out.push_str("\nSkriv --help för att se vad som går att ange.\n");
    out
}

/// The error's message in Swedish, for the kinds a person meets; `None` for the rest.
fn message(err: &clap::Error) -> Option<String> {
    let text = |kind| -> Option<String> { context_text(err, kind).filter(|text| !text.is_empty()) };
    let suggestion = |kind| {
        text(kind)
            .map(|s| format!("; menade du `{s}`?"))
            .unwrap_or_default()
    };
    let arg = text(ContextKind::InvalidArg).unwrap_or_default();
    Some(match err.kind() {
        ErrorKind::UnknownArgument => format!(
            "okänt argument `{arg}`{}",
            suggestion(ContextKind::SuggestedArg)
        ),
        ErrorKind::InvalidSubcommand => format!(
            "okänt kommando `{}`{}",
            text(ContextKind::InvalidSubcommand).unwrap_or_default(),
            suggestion(ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::InvalidValue => {
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let valid = text(ContextKind::ValidValue)
                .map(|v| format!("; möjliga värden: {v}"))
                .unwrap_or_default();
            if value.is_empty() {
                format!("{arg} behöver ett värde{valid}")
            } else {
                format!("`{value}` går inte att ange för {arg}{valid}")
            }
        }
        // A value parser of the program's own says why, in Swedish; the standard
        // library's number parser in English, so it is said here.
        ErrorKind::ValueValidation => {
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(err)
                .map(
                    |source| match source.downcast_ref::<std::num::ParseIntError>() {
                        Some(_) => ": ange ett heltal som inte är för stort".to_owned(),
                        None => format!(": {source}"),
                    },
                )
                .unwrap_or_default();
            format!("`{value}` går inte att ange för {arg}{why}")
        }
        ErrorKind::MissingRequiredArgument => format!("saknas: {arg}"),
        ErrorKind::MissingSubcommand => format!(
            "ange ett kommando{}",
            text(ContextKind::ValidSubcommand)
                .map(|v| format!(": {v}"))
                .unwrap_or_default()
        ),
        ErrorKind::ArgumentConflict => match text(ContextKind::PriorArg) {
            Some(prior) if prior != arg => {
                format!("{arg} kan inte anges tillsammans med {prior}")
            }
            _ => format!("{arg} kan bara anges en gång"),
        },
        ErrorKind::NoEquals => format!("{arg} behöver sitt värde efter ett likhetstecken"),
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("fel antal värden för {arg}")
        }
        _ => return None,
    })
}

/// A context value of `err` as text.
fn context_text(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(text) => Some(text.clone()),
        ContextValue::Strings(texts) => Some(texts.join(", ")),
        ContextValue::StyledStr(text) => Some(text.to_string()),
        ContextValue::StyledStrs(texts) => Some(
            texts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ContextValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// clap's placeholders in a usage line, in Swedish.
fn usage_words(text: &str) -> String {
    text.replace("Usage:", "Användning:")
        .replace("[OPTIONS]", "[VAL]")
        .replace("<COMMAND>", "<KOMMANDO>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        command(
            Command::new("gk-regler")
                .version("1.0")
                .about("Om programmet.")
                .subcommand(
                    Command::new("audit")
                        .about("Uppföljning.")
                        .arg(Arg::new("from").long("from").help("Från och med."))
                        .arg(
                            Arg::new("rules")
                                .long("rules")
                                .help("Regelmapp")
                                .default_value("rules"),
                        )
                        .arg(
                            Arg::new("format")
                                .long("format")
                                .value_parser(["html", "json"]),
                        ),
                ),
        )
    }

    fn refusal(args: &[&str]) -> String {
        let err = cli().try_get_matches_from(args).expect_err("refused");
        render(&err)
    }

    #[test]
    fn help_and_refusals_are_in_swedish() {
        let help = refusal(&["gk-regler", "audit", "--help"]);
        for words in [
            "Användning: gk-regler audit [VAL]",
            "Val:",
            "Visa den här hjälpen",
            "Regelmapp (standard: rules)",
            "(går att ange: html, json)",
        ] {
            assert!(help.contains(words), "{help}");
        }
        let top = refusal(&["gk-regler", "--help"]);
        for words in ["Kommandon:", "Visa versionen", "KOMMANDO"] {
            assert!(top.contains(words), "{top}");
        }
        assert!(!top.contains("Print"), "{top}");
        for english in ["[default", "Possible values"] {
            assert!(!help.contains(english), "{help}");
        }

        let unknown = refusal(&["gk-regler", "audit", "--fromm"]);
        assert!(
            unknown.starts_with("fel: okänt argument `--fromm`"),
            "{unknown}"
        );
        assert!(unknown.contains("menade du `--from`?"), "{unknown}");
        assert!(unknown.contains("Användning: gk-regler audit"), "{unknown}");
        let value = refusal(&["gk-regler", "audit", "--format", "pdf"]);
        assert!(
            value.contains(
                "`pdf` går inte att ange för --format <FORMAT>; möjliga värden: html, json"
            ),
            "{value}"
        );
        let command = refusal(&["gk-regler", "audti"]);
        assert!(
            command.contains("okänt kommando `audti`; menade du `audit`?"),
            "{command}"
        );
        for english in ["error:", "unexpected", "Usage:", "For more information"] {
            for text in [&unknown, &value, &command] {
                assert!(!text.contains(english), "{text}");
            }
        }
    }
}
