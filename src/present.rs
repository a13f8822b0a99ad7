//! Plain-Swedish text for people at a terminal: check results, rule-test reports and
//! rule-set problems. Programs get [`crate::contract`] JSON instead.

use std::fmt::Write as _;

use crate::contract::EvaluationReport;
use crate::rule_tests::CaseResult;
use crate::ruleset::Problem;

/// How many rules of a set of `rules_in_set` gave an answer (flag or no flag) in
/// `report`: those not switched off, not out of force and not failed.
pub fn rules_answered(report: &EvaluationReport, rules_in_set: usize) -> usize {
    rules_in_set.saturating_sub(report.not_applicable.len() + report.errors.len())
}

/// What a check without flags and without rule errors says: that nothing was found
/// among the few points the rules check, never that the case has nothing to act on.
pub fn clean_summary(rules_answered: usize) -> String {
    match rules_answered {
        0 => "Inga flaggor, men ingen regel gällde för kontrollen, så ingenting kontrollerades."
            .to_owned(),
        1 => "Inga flaggor: inget att uppmärksamma på den enda punkt som reglerna kontrollerar."
            .to_owned(),
        n => format!(
            "Inga flaggor: inget att uppmärksamma bland de {n} punkter som reglerna kontrollerar."
        ),
    }
}

/// The result of a check, as a case officer reads it; `rules_in_set` is the number of
/// rules in the set that made `report`.
pub fn evaluation(report: &EvaluationReport, rules_in_set: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Kontroll {} den {} med {} {} (innehåll {})",
        report.stage.label_sv(),
        report.checked_on,
        report.ruleset.name,
        report.ruleset.version,
        report.ruleset.content_hash.get(..12).unwrap_or_default(),
    );
    out.push('\n');
    match report.flags.len() {
        0 if report.errors.is_empty() => {
            out.push_str(&clean_summary(rules_answered(report, rules_in_set)));
            out.push('\n');
        }
        0 => out.push_str(
            "Inga flaggor, men minst en regel kunde inte köras (se nedan). Resultatet är därför inte komplett.\n",
        ),
        1 => out.push_str("1 flagga:\n"),
        n => {
            let _ = writeln!(out, "{n} flaggor:");
        }
    }
    for flag in &report.flags {
        let grounds: Vec<&str> = flag.grounds.iter().map(|g| g.label_sv()).collect();
        let _ = writeln!(
            out,
            "\n[{}] {}",
            flag.severity.label_sv().to_uppercase(),
            flag.title
        );
        let _ = writeln!(out, "  {}", flag.message);
        let _ = writeln!(out, "  Varför: {}", flag.rationale.trim());
        let _ = writeln!(out, "  Grund: {}", grounds.join(", "));
        if !flag.sources.is_empty() {
            let _ = writeln!(out, "  Källa: {}", flag.sources.join("; "));
        }
        let _ = writeln!(out, "  (regel {})", flag.rule_id);
    }
    if !report.errors.is_empty() {
        let _ = match report.errors.len() {
            1 => writeln!(
                out,
                "\nFEL: 1 regel kunde inte köras. Dess resultat är okänt, inte \"ingen flagga\":"
            ),
            n => writeln!(
                out,
                "\nFEL: {n} regler kunde inte köras. Deras resultat är okänt, inte \"ingen flagga\":"
            ),
        };
        for error in &report.errors {
            let position = match (error.line, error.column) {
                (Some(line), Some(column)) => format!(":{line}:{column}"),
                (Some(line), None) => format!(":{line}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {} ({}{}): {}",
                error.rule_id, error.script, position, error.message
            );
        }
    }
    out
}

/// Problems, one per line as `file:line:col: message` (a problem in a script followed
/// by its line of code, indented, with a caret under the column), then a count and
/// `consequence` (what did not happen because of them).
pub fn problems(problems: &[Problem], consequence: &str) -> String {
    let mut out = String::new();
    for problem in problems {
        let _ = writeln!(out, "{problem}");
        if let (Some(code), Some(line)) = (&problem.code, problem.line) {
            let number = line.to_string();
            let _ = writeln!(out, "  {number} | {}", code.text);
            let _ = writeln!(
                out,
                "  {} | {}",
                " ".repeat(number.len()),
                code.caret_line()
            );
        }
    }
    let _ = writeln!(out, "{} fel. {consequence}", problems.len());
    out
}

pub const RULES_NOT_LOADED: &str = "Regeluppsättningen har inte laddats.";
pub const TESTS_NOT_READ: &str = "Testerna har inte körts.";

/// The outcome of `gk-regler test`.
pub fn test_results(results: &[CaseResult], untested_rules: &[String]) -> String {
    let mut out = String::new();
    for result in results {
        let place = match result.line {
            Some(line) => format!("{}:{line}", result.file.display()),
            None => result.file.display().to_string(),
        };
        match &result.failure {
            None => {
                let _ = writeln!(out, "ok      {}: {}", result.rule, result.name);
            }
            Some(mismatch) => {
                let _ = writeln!(out, "MISSLYCKADES {}: {}", result.rule, result.name);
                let _ = writeln!(out, "        {place}");
                let _ = writeln!(out, "        förväntat: {}", mismatch.expected);
                let _ = writeln!(out, "        fick:      {}", mismatch.actual);
            }
        }
    }
    for rule in untested_rules {
        let _ = writeln!(out, "obs: regeln {rule} har inga tester");
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let _ = writeln!(
        out,
        "\n{}, {}",
        count_noun(results.len() - failed, "godkänt", "godkända"),
        count_noun(failed, "misslyckat", "misslyckade")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_summary_names_how_many_points_were_checked() {
        assert_eq!(
            clean_summary(8),
            "Inga flaggor: inget att uppmärksamma bland de 8 punkter som reglerna kontrollerar."
        );
        assert_eq!(
            clean_summary(1),
            "Inga flaggor: inget att uppmärksamma på den enda punkt som reglerna kontrollerar."
        );
        assert!(clean_summary(0).contains("ingenting kontrollerades"));
        for n in 0..10 {
            assert!(!clean_summary(n).contains("åtgärda"), "{n}");
        }
    }
}

/// The noun for a count in Swedish: the singular for exactly one, the plural for any
/// other count and for a count that is not shown (`None`): `noun(Some(1), "kontroll",
/// "kontroller")` is "kontroll". Adjectives agree when they are part of the nouns given
/// ("flaggad kontroll", "flaggade kontroller").
pub fn noun<'a>(n: Option<usize>, one: &'a str, many: &'a str) -> &'a str {
    if n == Some(1) { one } else { many }
}

/// A count followed by its noun: "1 kontroll", "0 kontroller", "2 kontroller".
pub fn count_noun(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", noun(Some(n), one, many))
}

/// A stored moment (RFC 3339, UTC) as people in Sweden read it: `2026-11-26 14:57`, in
/// Swedish time, as every page and command shows times; the text as given if it is no
/// such moment.
pub fn swedish_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(crate::profile::stockholm().clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// `text` as a terminal may show it: control and invisible characters written as
/// `\u{…}`, so a stored name (from a restored backup, say) can neither move the cursor nor
/// erase a line, nor hide a character.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if crate::profile::CaseId::is_invisible(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A wait of `seconds` in words: seconds up to a minute, else whole minutes rounded up
/// ("45 sekunder", "2 minuter").
pub fn wait_text(seconds: u64) -> String {
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    if seconds <= 60 {
        count_noun(count(seconds), "sekund", "sekunder")
    } else {
        count_noun(count(seconds.div_ceil(60)), "minut", "minuter")
    }
}

#[cfg(test)]
mod plural_tests {
    use super::*;

    #[test]
    fn one_takes_the_singular_and_every_other_count_the_plural() {
        assert_eq!(count_noun(1, "kontroll", "kontroller"), "1 kontroll");
        assert_eq!(count_noun(0, "kontroll", "kontroller"), "0 kontroller");
        assert_eq!(count_noun(2, "kontroll", "kontroller"), "2 kontroller");
        assert_eq!(printable("Åsa\r\u{1b}[2K"), "Åsa\\u{d}\\u{1b}[2K");
        assert_eq!(wait_text(1), "1 sekund");
        assert_eq!(wait_text(60), "60 sekunder");
        assert_eq!(wait_text(61), "2 minuter");
        assert_eq!(wait_text(120), "2 minuter");
        assert_eq!(count_noun(21, "ärende", "ärenden"), "21 ärenden");
        assert_eq!(count_noun(1, "flagga", "flaggor"), "1 flagga");
        assert_eq!(noun(None, "kontroll", "kontroller"), "kontroller");
    }
}
