//! The reason codes an officer picks when answering a flag "not relevant", declared in
//! the manifest: `common_reasons` (every rule) and each rule's own `reasons`, each a
//! `{code, label}` with a Swedish label. No free text: it would collect personal data.
//!
//! Answers are checked against the rule set that made the check, not the active one, so
//! a later rule set that renames or drops a code never breaks answering an older check.
//! The stored manifest text of every rule set is kept (`rule_sets.sources_json`), and
//! [`ReasonCatalog::from_manifest`] reads the reasons back from it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::ruleset::RuleSet;

/// The longest label accepted.
const MAX_LABEL_CHARS: usize = 120;

/// One reason code and the words people read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Lowercase letters a–z, digits and `_`, starting with a letter.
    pub code: String,
    /// Swedish, as the officer reads it.
    pub label: String,
}

/// Whether `code` is a valid reason code (the same alphabet as rule ids).
pub fn is_valid_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && code.len() <= 64
}

/// The problems of `own` (a rule's reasons, checked against `common`; or
/// `common_reasons` itself, with `common` `None`), in Swedish, naming the code but never
/// a label: bad codes, empty or long labels, and a code declared twice (also once in the
/// rule and once in `common_reasons`).
pub fn problems(own: &[Reason], common: Option<&[Reason]>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let common_codes: HashSet<&str> = common
        .unwrap_or_default()
        .iter()
        .map(|r| r.code.as_str())
        .collect();
    for reason in own {
        if !is_valid_code(&reason.code) {
            problems.push(
                "en orsakskod är ogiltig: använd små bokstäver a–z, siffror och _ (högst 64 tecken), börja med en bokstav"
                    .to_owned(),
            );
            continue;
        }
        if reason.label.trim().is_empty() {
            problems.push(format!("orsaken {} saknar label", reason.code));
        } else if let Some(why) =
            crate::visible::unreadable_text(&reason.label, crate::visible::Lines::One)
        {
            problems.push(format!("orsaken {}: label {why}", reason.code));
        } else if reason.label.chars().count() > MAX_LABEL_CHARS {
            problems.push(format!(
                "orsaken {} har en label längre än {MAX_LABEL_CHARS} tecken",
                reason.code
            ));
        }
        if !seen.insert(&reason.code) {
            problems.push(format!("orsakskoden {} står mer än en gång", reason.code));
        } else if common_codes.contains(reason.code.as_str()) {
            problems.push(format!(
                "orsakskoden {} finns redan bland common_reasons",
                reason.code
            ));
        }
    }
    problems
}

/// The reasons each rule of one rule set accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonCatalog {
    common: Vec<Reason>,
    per_rule: HashMap<String, Vec<Reason>>,
}

/// The part of a manifest the catalog reads; every other key is ignored, so manifests
/// of every version read back.
#[derive(Deserialize)]
struct ManifestReasons {
    #[serde(default)]
    common_reasons: Vec<Reason>,
    #[serde(default)]
    rules: Vec<RuleReasons>,
}

#[derive(Deserialize)]
struct RuleReasons {
    id: String,
    #[serde(default)]
    reasons: Vec<Reason>,
}

impl ReasonCatalog {
    /// The catalog of a loaded rule set.
    pub fn of(rules: &RuleSet) -> Self {
        Self {
            common: rules.common_reasons.clone(),
            per_rule: rules
                .rules
                .iter()
                .map(|r| (r.meta.id.to_string(), r.meta.reasons.clone()))
                .collect(),
        }
    }

    /// The catalog of a stored manifest's text; `None` when it cannot be read.
    pub fn from_manifest(text: &str) -> Option<Self> {
        if crate::engine::ruleset::yaml_too_deep(text).is_some()
            || crate::engine::ruleset::count_yaml_values(text).is_err()
        {
            return None;
        }
        let manifest: ManifestReasons = serde_yaml::from_str(text).ok()?;
        Some(Self {
            common: manifest.common_reasons,
            per_rule: manifest
                .rules
                .into_iter()
                .map(|r| (r.id, r.reasons))
                .collect(),
        })
    }

    /// Whether the rule set declares any reason at all (rule sets written before reasons
    /// existed declare none).
    pub fn declares_any(&self) -> bool {
        !self.common.is_empty() || self.per_rule.values().any(|r| !r.is_empty())
    }

    /// Whether the rule set has a rule with this id.
    pub fn has_rule(&self, rule_id: &str) -> bool {
        self.per_rule.contains_key(rule_id)
    }

    /// The reasons `rule_id` accepts: its own first, then the common ones.
    pub fn for_rule<'a>(&'a self, rule_id: &str) -> impl Iterator<Item = &'a Reason> + 'a {
        self.per_rule
            .get(rule_id)
            .into_iter()
            .flatten()
            .chain(&self.common)
    }

    /// The label of `code` in any rule of the set (or the common ones).
    pub fn any_label(&self, code: &str) -> Option<&str> {
        self.per_rule
            .values()
            .flatten()
            .chain(&self.common)
            .find(|r| r.code == code)
            .map(|r| r.label.as_str())
    }

    /// The label of `code` for `rule_id`, if the rule accepts it.
    pub fn label(&self, rule_id: &str, code: &str) -> Option<&str> {
        self.for_rule(rule_id)
            .find(|r| r.code == code)
            .map(|r| r.label.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, label: &str) -> Reason {
        Reason {
            code: code.into(),
            label: label.into(),
        }
    }

    #[test]
    fn codes_labels_and_repeats_are_checked() {
        let common = vec![reason("annat", "annat")];
        assert!(problems(&common, None).is_empty());
        let own = vec![
            reason("avbojer", "personen avböjer"),
            reason("Avböjer", "x"),
            reason("tom", " "),
            reason("avbojer", "igen"),
            reason("annat", "annat"),
        ];
        let found = problems(&own, Some(&common));
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("ogiltig"));
        assert!(found[1].contains("tom saknar label"));
        assert!(found[2].contains("avbojer står mer än en gång"));
        assert!(found[3].contains("annat finns redan"));
    }

    #[test]
    fn a_stored_manifest_reads_back_with_own_reasons_first() {
        let text = "name: t\nversion: '1'\nfuture_key: 1\ncommon_reasons:\n  - {code: annat, label: annat}\nrules:\n  - id: a\n    script: a.rhai\n    reasons:\n      - {code: avbojer, label: personen avböjer}\n  - id: b\n    script: b.rhai\n";
        let catalog = ReasonCatalog::from_manifest(text).expect("reads");
        assert!(catalog.declares_any());
        let codes: Vec<&str> = catalog.for_rule("a").map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["avbojer", "annat"]);
        assert_eq!(catalog.label("b", "annat"), Some("annat"));
        assert_eq!(catalog.label("b", "avbojer"), None);
        assert!(catalog.has_rule("b") && !catalog.has_rule("c"));
        let old = ReasonCatalog::from_manifest("name: t\nversion: '0'\nrules:\n  - id: a\n")
            .expect("reads");
        assert!(!old.declares_any());
        assert!(ReasonCatalog::from_manifest("[").is_none());
    }
}
