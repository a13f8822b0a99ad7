//! The active rule set: reading it, reloading it from its directory, and the history of
//! every rule set used. A reload is all or nothing: a refused set leaves the old one
//! active and lists every problem. Only a set whose own tests all pass goes live, and a
//! changed set must carry a new version.

use std::path::Path;
use std::sync::Arc;

use super::{App, AppError, access, require};
use crate::auth::{Principal, Role};
use crate::contract::RuleSetRef;
use crate::rule_tests;
use crate::ruleset::{LoadError, MANIFEST_FILE, Problem, RuleSet, SourceFile};
use crate::store::rule_sets::RuleSetUse;

/// Roles that may reload the rules.
pub const RELOAD_ROLES: &[Role] = &[Role::Policy];

/// Roles that may read the rule-set history and its diffs: policy staff, who change the
/// rules, and analysts, who read audits across rule-set versions. The history holds rule
/// text and counts of checks, never a case; officers do not need it.
pub const HISTORY_ROLES: &[Role] = &[Role::Policy, Role::Analytiker];

/// The active rule set. Every signed-in principal may read it.
pub fn active(app: &App, _principal: &Principal) -> Arc<RuleSet> {
    app.active_rules()
}

/// What a successful reload did.
#[derive(Clone, Debug)]
pub struct Reloaded {
    /// Whether the content changed.
    pub changed: bool,
    pub previous: RuleSetRef,
    pub active: RuleSetRef,
    /// How many rule tests ran and passed before the set went live.
    pub tests_passed: usize,
    /// The shadow rule set now in use, when one is configured.
    pub shadow: Option<RuleSetRef>,
}

/// Loads a rules directory through the test gate, off the async workers, and checks its
/// version against the set it replaces (`running`) and the versions recorded.
async fn load_checked(
    app: &App,
    dir: &Path,
    running: Option<&RuleSet>,
) -> Result<Result<rule_tests::Tested, LoadError>, AppError> {
    let owned = dir.to_path_buf();
    let loaded = super::evaluating_rules(move || rule_tests::load_and_test(&owned)).await?;
    let checked = match loaded {
        Ok(checked) => checked,
        Err(err) => return Ok(Err(err)),
    };
    // One refusal lists every problem: the version's first, then the tests'.
    let mut problems = Vec::new();
    if let Some(running) = running {
        let other = version_used_for_other_text(&app.store, &checked.rules).await?;
        problems.extend(version_conflict(
            dir,
            running,
            &checked.rules,
            other.as_deref(),
        ));
    }
    problems.extend(checked.problems);
    Ok(if problems.is_empty() {
        Ok(rule_tests::Tested {
            rules: checked.rules,
            cases: checked.cases,
        })
    } else {
        Err(LoadError { problems })
    })
}

/// Loads the rules directory (and the shadow rules directory, when configured) again,
/// runs each set's own tests and swaps the new sets in: all or nothing. A refused set
/// ([`AppError::Rules`]: problems in the files, failing tests, or changed content under
/// an unchanged version, of either set) leaves the old ones active.
pub async fn reload(app: &App, principal: &Principal) -> Result<Reloaded, AppError> {
    require(principal, RELOAD_ROLES)?;
    super::refuse_for_tests(
        principal,
        "En testtoken kan inte ladda om reglerna: de gäller alla verkliga kontroller. Pröva ändringen med gk-regler test i stället.",
    )?;
    let _one_reload_at_a_time = app.reload_lock.lock().await;
    let running = app.rules.load_full();
    let live = load_checked(app, &app.rules_dir, Some(&running)).await?;
    let shadow = match &app.shadow_rules_dir {
        Some(dir) => {
            let running_shadow = app.shadow_rules();
            Some(load_checked(app, dir, running_shadow.as_deref()).await?)
        }
        None => None,
    };
    let (tested, shadow) = match (live, shadow.transpose()) {
        (Ok(tested), Ok(shadow)) => (tested, shadow),
        (live, shadow) => {
            let mut problems = Vec::new();
            for err in [live.err(), shadow.err()].into_iter().flatten() {
                problems.extend(err.problems);
            }
            app.metrics.record_reload(false);
            tracing::warn!(problems = problems.len(), "rule reload refused");
            app.store
                .log_access(crate::store::Access {
                    detail: Some(format!("{} problem", problems.len())),
                    ..access(principal, "rules_reload_refused", None, None)
                })
                .await?;
            return Err(AppError::Rules(LoadError { problems }));
        }
    };
    let rules = tested.rules;
    app.store.record_rule_set(&rules).await?;
    if let Some(shadow) = &shadow {
        app.store.record_rule_set(&shadow.rules).await?;
    }
    let previous = RuleSetRef::of(&running);
    let active = RuleSetRef::of(&rules);
    let shadow_ref = shadow.as_ref().map(|s| RuleSetRef::of(&s.rules));
    // Logged before the swap: a reload nobody can account for does not go live.
    let described = |set: &RuleSetRef| format!("{} {} ({})", set.name, set.version, set.short_hash);
    let mut detail = format!(
        "{} i stället för {}",
        described(&active),
        described(&previous)
    );
    if let Some(shadow) = &shadow_ref {
        detail += &format!("; skuggregler {}", described(shadow));
    }
    app.store
        .log_access(crate::store::Access {
            detail: Some(detail),
            ..access(principal, "rules_reload", None, None)
        })
        .await?;
    app.rules.store(Arc::new(rules));
    if let Some(shadow) = shadow {
        app.shadow.store(Some(Arc::new(shadow.rules)));
    }
    app.metrics.record_reload(true);
    tracing::info!(version = ?active.version, hash = %active.content_hash, "rules reloaded");
    Ok(Reloaded {
        changed: previous.content_hash != active.content_hash,
        previous,
        active,
        tests_passed: tested.cases,
        shadow: shadow_ref,
    })
}

/// Why `new` may not replace `running` although it loads and passes its tests: its
/// content changed but its version did not, or its name and version were already used
/// for other content (`other`: [`version_used_for_other_text`]). A version then names
/// exactly one text.
fn version_conflict(
    dir: &Path,
    running: &RuleSet,
    new: &RuleSet,
    other: Option<&str>,
) -> Option<Problem> {
    if new.content_hash == running.content_hash {
        return None;
    }
    let at_version = |problem: Problem| {
        let line = new
            .sources
            .first()
            .and_then(|manifest| {
                manifest
                    .text
                    .lines()
                    .position(|l| l.trim_start().starts_with("version:"))
            })
            .map(|index| index + 1);
        problem.at(line, None)
    };
    let manifest = dir.join(MANIFEST_FILE);
    if new.version == running.version {
        return Some(at_version(Problem::new(
            &manifest,
            format!(
                "innehållet har ändrats men version är fortfarande \u{201d}{}\u{201d}: ändra version i manifestet, så att varje version betyder en enda regeltext",
                new.version
            ),
        )));
    }
    other.map(|hash| {
            at_version(Problem::new(
                &manifest,
                format!(
                    "version \u{201d}{}\u{201d} av {} har redan använts för ett annat innehåll ({}): ge den ändrade regeluppsättningen en ny version",
                    new.version,
                    new.name,
                    short(hash)
                ),
            ))
        })
}

/// The hash of another text recorded under `rules`' name and version, when there is one:
/// that version would then name two texts.
pub async fn version_used_for_other_text(
    store: &crate::store::Store,
    rules: &RuleSet,
) -> Result<Option<String>, AppError> {
    Ok(store
        .rule_set_hashes_of(rules.name.clone(), rules.version.clone())
        .await?
        .into_iter()
        .find(|hash| *hash != rules.content_hash))
}

/// What [`version_used_for_other_text`] found, said to a person.
pub fn version_taken_message(rules: &RuleSet, other: &str) -> String {
    format!(
        "{} version {} har tidigare använts för ett annat innehåll ({}); ge en ändrad \
         regeluppsättning en ny version, så att varje version betyder en enda regeltext",
        rules.name,
        rules.version,
        short(other)
    )
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Every rule set the service has used, first loaded first.
pub async fn history(app: &App, principal: &Principal) -> Result<Vec<RuleSetUse>, AppError> {
    require(principal, HISTORY_ROLES)?;
    // Its counts and times are real officers' checks, as they happen.
    super::refuse_for_tests(principal, super::history::TEST_TOKENS_READ_NO_HISTORY)?;
    Ok(app.store.rule_set_history().await?)
}

/// How one file differs between two rule sets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FileDiff {
    /// The file's name in the rules directory (`manifest.yaml`, `tolk_ej_bokad.rhai`).
    pub name: String,
    /// `added`, `removed`, `changed` or `unchanged`.
    pub change: &'static str,
    /// A unified line diff (`-` old, `+` new, three lines of context); empty when the
    /// file is unchanged.
    pub unified: String,
}

/// The line diff of the manifest and scripts between two recorded rule sets.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RuleSetDiff {
    pub from: RuleSetRef,
    pub to: RuleSetRef,
    /// The manifest first, then scripts in the newer set's order, then removed scripts.
    pub files: Vec<FileDiff>,
}

/// The diff between the recorded rule sets `from` and `to`, each named by its content
/// hash or an unambiguous start of it (at least the 12 characters shown as its short
/// hash).
pub async fn diff(
    app: &App,
    principal: &Principal,
    from: &str,
    to: &str,
) -> Result<RuleSetDiff, AppError> {
    require(principal, HISTORY_ROLES)?;
    super::refuse_for_tests(principal, super::history::TEST_TOKENS_READ_NO_HISTORY)?;
    let recorded = app.store.rule_set_history().await?;
    let from = resolve(&recorded, from, "from")?;
    let to = resolve(&recorded, to, "to")?;
    let old = app
        .store
        .rule_set_text(from)
        .await?
        .ok_or(AppError::NotFound)?;
    let new = app
        .store
        .rule_set_text(to)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(RuleSetDiff {
        from: RuleSetRef::new(old.name, old.version, old.content_hash),
        to: RuleSetRef::new(new.name, new.version, new.content_hash),
        // Diffing two 1 MiB scripts takes a while: not on the async workers.
        files: super::briefly(move || diff_sources(&old.sources, &new.sources)).await?,
    })
}

/// The full hash of the one recorded rule set whose hash starts with `given`.
fn resolve(recorded: &[RuleSetUse], given: &str, field: &str) -> Result<String, AppError> {
    let given = given.trim().to_ascii_lowercase();
    if given.len() < 12 || given.len() > 64 || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::Input(format!(
            "{field}: ange en regeluppsättnings innehållskod (minst de 12 första tecknen, 0–9 och a–f)"
        )));
    }
    let mut matching = recorded
        .iter()
        .filter(|used| used.content_hash.starts_with(&given));
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one.content_hash.clone()),
        (Some(_), Some(_)) => Err(AppError::Input(format!(
            "{field}: flera regeluppsättningar börjar med den koden; ange fler tecken"
        ))),
        (None, _) => Err(AppError::NotFound),
    }
}

/// Line diffs of every file of two rule sets' sources.
pub fn diff_sources(old: &[SourceFile], new: &[SourceFile]) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = new
        .iter()
        .map(|file| {
            let before = old.iter().find(|o| o.name == file.name);
            let (change, unified) = match before {
                None => ("added", unified(&file.name, "", &file.text)),
                Some(before) if before.text == file.text => ("unchanged", String::new()),
                Some(before) => ("changed", unified(&file.name, &before.text, &file.text)),
            };
            FileDiff {
                name: file.name.clone(),
                change,
                unified,
            }
        })
        .collect();
    files.extend(
        old.iter()
            .filter(|o| new.iter().all(|n| n.name != o.name))
            .map(|file| FileDiff {
                name: file.name.clone(),
                change: "removed",
                unified: unified(&file.name, &file.text, ""),
            }),
    );
    files
}

fn unified(name: &str, old: &str, new: &str) -> String {
    // Past the deadline the diff is coarser (larger hunks), never wrong.
    similar::TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn diff_names_added_removed_changed_and_unchanged_files() {
        let old = [
            file("manifest.yaml", "version: '1'\nname: a\n"),
            file("a.rhai", "true\n"),
            file("b.rhai", "false\n"),
        ];
        let new = [
            file("manifest.yaml", "version: '2'\nname: a\n"),
            file("a.rhai", "true\n"),
            file("c.rhai", "()\n"),
        ];
        let files = diff_sources(&old, &new);
        let changes: Vec<(&str, &str)> =
            files.iter().map(|f| (f.name.as_str(), f.change)).collect();
        assert_eq!(
            changes,
            [
                ("manifest.yaml", "changed"),
                ("a.rhai", "unchanged"),
                ("c.rhai", "added"),
                ("b.rhai", "removed"),
            ]
        );
        assert!(files[0].unified.contains("-version: '1'\n+version: '2'\n"));
        assert!(files[0].unified.contains("--- a/manifest.yaml"));
        assert!(files[1].unified.is_empty());
        assert!(files[3].unified.contains("-false"));
    }

    fn used(hash: &str) -> RuleSetUse {
        RuleSetUse {
            content_hash: hash.to_owned(),
            name: "n".into(),
            version: "1".into(),
            first_seen_at: String::new(),
            first_used_at: None,
            last_used_at: None,
            checks: 0,
        }
    }

    #[test]
    fn a_hash_is_resolved_from_an_unambiguous_start() {
        let a = format!("{}{}", "ab".repeat(6), "0".repeat(52));
        let b = format!("{}{}", "ab".repeat(6), "1".repeat(52));
        let recorded = [used(&a), used(&b)];
        assert_eq!(resolve(&recorded, &a[..13], "from").ok(), Some(a.clone()));
        assert!(matches!(
            resolve(&recorded, &a[..12], "from"),
            Err(AppError::Input(_))
        ));
        assert!(matches!(
            resolve(&recorded, "abc", "from"),
            Err(AppError::Input(_))
        ));
        assert!(matches!(
            resolve(&recorded, &"c".repeat(12), "to"),
            Err(AppError::NotFound)
        ));
    }
}
