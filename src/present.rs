//! Plain-Swedish text for people at a terminal: check results, rule-test reports and
//! rule-set problems. Programs get [`crate::contract`] JSON instead.

use std::fmt::Write as _;

use crate::contract::EvaluationReport;
use crate::rule_tests::CaseResult;
use crate::ruleset::Problem;

/// The result of a check, as a case officer reads it.
pub fn evaluation(report: &EvaluationReport) -> String {
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
            out.push_str("Inga flaggor: reglerna hittade inget att åtgärda i ärendet.\n");
        }
        0 => out.push_str("Inga flaggor, men alla regler kunde inte köras (se nedan).\n"),
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
        let _ = writeln!(
            out,
            "\nFEL: {} regel/regler kunde inte köras. Deras resultat är okänt, inte \"ingen flagga\":",
            report.errors.len()
        );
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

/// Problems, one per line as `file:line:col: message`, then a count and `consequence`
/// (what did not happen because of them).
pub fn problems(problems: &[Problem], consequence: &str) -> String {
    let mut out = String::new();
    for problem in problems {
        let _ = writeln!(out, "{problem}");
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
        "\n{} godkända, {} misslyckade",
        results.len() - failed,
        failed
    );
    out
}
