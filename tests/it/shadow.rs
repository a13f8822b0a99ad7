//! Shadow rules (`shadow_rules_dir`, `GK_REGLER_SHADOW_RULES`): a second rule set
//! evaluated on every stored check, its results stored apart and compared in the audit's
//! `shadow` section, never returned to an officer.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::audit::{CASES, cohort_leaving, import_files};
use crate::helpers::{
    AppOptions, TestApp, base_profile, copy_dir, run_command, set, spawn_app_with,
};
use crate::web::WebClient;

/// A copy of the shipped rules in which `aktivitetsniva_saknas` is switched off (its
/// tests removed with it, so the set's own tests pass), under version `version`.
fn shadow_rules(rules: &Path, version: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().expect("temp dir");
    let shadow = dir.path().join("skuggregler");
    copy_dir(rules, &shadow);
    write_shadow_manifest(&shadow, version, false);
    std::fs::remove_file(shadow.join("tests/aktivitetsniva_saknas.yaml")).expect("remove tests");
    (dir, shadow)
}

/// Rewrites the shadow manifest: `version`, and `aktivitetsniva_saknas` on or off.
fn write_shadow_manifest(shadow: &Path, version: &str, enabled: bool) {
    let manifest = shadow.join("manifest.yaml");
    let original = std::fs::read_to_string("rules/manifest.yaml").expect("manifest");
    let mut text = original.replacen("version: \"2026.2\"", &format!("version: \"{version}\""), 1);
    if !enabled {
        text = text.replacen(
            "script: aktivitetsniva_saknas.rhai",
            "script: aktivitetsniva_saknas.rhai\n    enabled: false",
            1,
        );
    }
    assert_ne!(text, original, "the manifest reads as expected");
    std::fs::write(&manifest, text).expect("write manifest");
}

fn spawn_with_shadow(shadow: &Path) -> TestApp {
    spawn_app_with(AppOptions {
        env: vec![(
            "GK_REGLER_SHADOW_RULES",
            shadow.to_str().expect("utf-8").to_owned(),
        )],
        ..AppOptions::default()
    })
}

fn flagged_profile(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    set(&mut profile, "activity_level.documented", json!(false));
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    profile
}

/// The stored shadow results: (evaluation id, rule-set hash, flagged, failed).
fn shadow_rows(app: &TestApp) -> Vec<(i64, String, String, String)> {
    let db = app.db();
    let mut statement = db
        .prepare(
            "SELECT evaluation_id, rule_set_hash, flagged, failed FROM shadow_results ORDER BY 1",
        )
        .expect("prepare");
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn shadow_flags_are_stored_apart_and_never_returned_by_the_check_api() {
    let (_keep, shadow) = shadow_rules(Path::new("rules"), "2026.2-skugga");
    let app = spawn_with_shadow(&shadow);
    let reply = app.check(&app.handlaggare, &flagged_profile("SKUGGA-1"));
    assert_eq!(reply.status, 201, "{reply}");
    let body = reply.json();
    let live_hash = body["ruleset"]["content_hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    let flagged: Vec<&str> = body["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(flagged.contains(&"aktivitetsniva_saknas"), "{body:#}");

    let rows = shadow_rows(&app);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (id, shadow_hash, shadow_flagged, failed) = &rows[0];
    assert_eq!(Some(*id), body["evaluation_id"].as_i64());
    assert_ne!(shadow_hash, &live_hash);
    assert!(
        !shadow_flagged
            .split(' ')
            .any(|r| r == "aktivitetsniva_saknas"),
        "{rows:?}"
    );
    assert!(failed.is_empty(), "{rows:?}");
    // The shadow rule set is recorded like every rule set that produced results.
    let recorded: String = app
        .db()
        .query_row(
            "SELECT version FROM rule_sets WHERE content_hash = ?1",
            [shadow_hash],
            |r| r.get(0),
        )
        .expect("the shadow rule set is recorded");
    assert_eq!(recorded, "2026.2-skugga");

    // Nothing of the shadow set in any answer an officer or the check API gives.
    let read = app.get(&format!("/api/v1/checks/{id}"), &app.handlaggare);
    assert_eq!(read.status, 200, "{read}");
    let listed = app.post(
        "/api/v1/cases/checks",
        &app.handlaggare,
        &json!({ "case_id": "SKUGGA-1" }),
    );
    assert_eq!(listed.status, 200, "{listed}");
    for text in [&reply.text, &read.text, &listed.text] {
        assert!(!text.contains(shadow_hash.as_str()), "{text}");
        assert!(
            !text.contains("skugg") && !text.contains("shadow"),
            "{text}"
        );
    }
    let flags_of = |value: &Value| value.to_string().matches("aktivitetsniva_saknas").count();
    assert!(
        flags_of(&read.json()) > 0,
        "the live flag is read back: {read}"
    );

    // The officer's web page shows the live flag and nothing of the shadow set; policy
    // staff see the shadow set and its version on the Regler page.
    let web = WebClient::new(&app);
    let officer = web.get("/regler", Some(&app.handlaggare.token));
    assert_eq!(officer.status, 200, "{officer}");
    assert!(!officer.text.contains("Skuggregler"), "{officer}");
    let policy = web.get("/regler", Some(&app.policy.token));
    assert_eq!(policy.status, 200, "{policy}");
    assert!(policy.text.contains("Skuggregler"), "{policy}");
    assert!(policy.text.contains("version 2026.2-skugga"), "{policy}");
    assert!(policy.text.contains(&shadow_hash[..12]), "{policy}");
}

#[test]
fn the_shadow_set_is_reloaded_with_the_live_set_all_or_nothing() {
    let (_keep, shadow) = shadow_rules(Path::new("rules"), "2026.2-skugga");
    let app = spawn_with_shadow(&shadow);
    assert_eq!(
        app.check(&app.handlaggare, &flagged_profile("SKUGGA-2"))
            .status,
        201
    );
    let first = shadow_rows(&app)[0].1.clone();

    // A broken shadow set: the reload is refused, naming the shadow file, and both
    // running sets stay.
    let script = shadow.join("tolk_ej_bokad.rhai");
    let good = std::fs::read_to_string(&script).expect("script");
    std::fs::write(&script, format!("{good}\n}}")).expect("break the script");
    let refused = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(refused.status, 422, "{refused}");
    assert!(refused.text.contains("tolk_ej_bokad.rhai"), "{refused}");
    assert_eq!(
        app.check(&app.handlaggare, &flagged_profile("SKUGGA-2"))
            .status,
        201
    );
    assert_eq!(
        shadow_rows(&app)[1].1,
        first,
        "the old shadow set keeps running"
    );

    // Fixed and changed (the rule switched on again, a new version): the next check is
    // evaluated with the new shadow set, which now flags like the live set.
    std::fs::write(&script, good).expect("restore the script");
    write_shadow_manifest(&shadow, "2026.2-skugga2", true);
    std::fs::write(
        shadow.join("tests/aktivitetsniva_saknas.yaml"),
        std::fs::read_to_string("rules/tests/aktivitetsniva_saknas.yaml").expect("tests"),
    )
    .expect("restore the tests");
    let reloaded = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reloaded.status, 200, "{reloaded}");
    assert_eq!(
        app.check(&app.handlaggare, &flagged_profile("SKUGGA-2"))
            .status,
        201
    );
    let rows = shadow_rows(&app);
    assert_ne!(rows[2].1, first, "{rows:?}");
    assert!(
        rows[2].2.split(' ').any(|r| r == "aktivitetsniva_saknas"),
        "{rows:?}"
    );
}

#[test]
fn the_audit_compares_live_and_shadow_flags_rule_by_rule() {
    let (_keep, shadow) = shadow_rules(Path::new("rules"), "2026.2-skugga");
    let app = spawn_with_shadow(&shadow);
    // 8 of the 14 flagged cases left the insurance, 13 of the 26 others.
    let leaving = cohort_leaving(&["female"], |i, flagged| {
        i % 2 == 0 || (flagged && i % 5 == 0)
    });
    let imported = import_files(&app, leaving);
    assert_eq!(imported.code, 0, "{imported}");
    assert_eq!(app.count("shadow_results"), CASES as i64);

    let reply = app.get("/api/v1/audit?format=json", &app.analytiker);
    assert_eq!(reply.status, 200, "{reply}");
    let report = reply.json();
    let section = &report["shadow"];
    assert_eq!(section["checks_in_period"], CASES, "{section:#}");
    assert_eq!(section["units"], CASES, "{section:#}");
    assert_eq!(
        section["rule_sets"][0]["version"], "2026.2-skugga",
        "{section:#}"
    );
    let rule = section["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule_id"] == "aktivitetsniva_saknas")
        .expect("the rule")
        .clone();
    let flagged = (0..CASES).filter(|i| i % 3 == 0).count();
    assert_eq!(rule["flagged_live"], flagged, "{rule:#}");
    assert_eq!(rule["flagged_shadow"], 0, "{rule:#}");
    assert_eq!(rule["lost"], flagged, "{rule:#}");
    assert_eq!(rule["gained"], 0, "{rule:#}");
    let left = |comparison: &Value| {
        comparison["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .find(|o| o["outcome"] == "left_insurance")
            .expect("left_insurance")
            .clone()
    };
    let live = &rule["outcomes_live"];
    assert_eq!(live["n_a"], flagged, "{live}");
    let share = left(live)["share_a_pct"].as_f64().expect("a share");
    assert!((share - 100.0 * 8.0 / 14.0).abs() < 1e-9, "{live}");
    let shadowed = &rule["outcomes_shadow"];
    assert_eq!(shadowed["n_a"], 0, "{shadowed}");
    assert_eq!(shadowed["n_b"], CASES, "{shadowed}");
    // A rule both sets flag alike gains and loses nothing.
    let same = section["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule_id"] == "arbetsterapeut_vid_oklar_aktivitetsniva")
        .expect("the rule");
    assert_eq!(same["flagged_live"], same["flagged_shadow"], "{same:#}");
    assert_eq!(same["gained"], 0);
    assert_eq!(same["lost"], 0);

    let html = app.get("/api/v1/audit?format=html", &app.analytiker);
    assert!(
        html.text
            .contains("Skuggreglerna bredvid de gällande reglerna"),
        "{html}"
    );
    assert!(html.text.contains("2026.2-skugga"), "{html}");
    let csv = app.get("/api/v1/audit?format=csv", &app.analytiker);
    assert!(
        csv.text
            .lines()
            .any(|l| l.starts_with("shadow,aktivitetsniva_saknas,")
                && l.ends_with(&format!(",{flagged},0,0,{flagged}"))),
        "{csv}"
    );
}

/// Shadow rules set after part of the history was stored: the shadow section counted only
/// the checks with shadow results, and the audit all of them, so the audit's figures less
/// the section's were the cases without (one: that person's flags, and outcome from the
/// shares). With one shadow check in the period its rule set's count (1) and the zeros
/// beside hidden counts told that check's flags too. The section is now left out, with a
/// note, unless every check the audit reads has shadow results.
#[test]
fn the_shadow_section_is_left_out_unless_every_check_read_has_shadow_results() {
    let (_keep, shadow) = shadow_rules(Path::new("rules"), "2026.2-skugga");
    let app = spawn_with_shadow(&shadow);
    // A history imported before the shadow rules were set: many cases, no shadow results.
    let (profiles, outcomes) = cohort_leaving(&["female", "male"], |i, _| i % 2 == 0);
    let profiles_path = app.dir.path().join("profiles.jsonl");
    let outcomes_path = app.dir.path().join("outcomes.jsonl");
    std::fs::write(&profiles_path, profiles).expect("write profiles");
    std::fs::write(&outcomes_path, outcomes).expect("write outcomes");
    let args = [
        "import",
        profiles_path.to_str().expect("utf-8 path"),
        "--outcomes",
        outcomes_path.to_str().expect("utf-8 path"),
    ];
    let mut import = app.command(&args);
    import.env_remove("GK_REGLER_SHADOW_RULES");
    let out = run_command(import, "import without shadow rules", None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(app.count("shadow_results"), 0);
    let reply = app.check(&app.handlaggare, &flagged_profile("SKUGGA-ENSAM"));
    assert_eq!(reply.status, 201, "{reply}");
    let reply = app.get("/api/v1/audit?format=json", &app.analytiker);
    assert_eq!(reply.status, 200, "{reply}");
    let report = reply.json();
    assert!(report.get("shadow").is_none(), "{:#}", report["shadow"]);
    assert!(
        report["notes"]
            .to_string()
            .contains("Skuggreglerna visas inte"),
        "{:#}",
        report["notes"]
    );
    let csv = app.get("/api/v1/audit?format=csv", &app.analytiker);
    assert!(!csv.text.lines().any(|l| l.starts_with("shadow")), "{csv}");
    let html = app.get("/api/v1/audit?format=html", &app.analytiker);
    assert!(html.text.contains("Skuggreglerna visas inte"), "{html}");
}

#[test]
fn without_shadow_rules_the_audit_has_no_shadow_section() {
    let app = spawn_app_with(AppOptions::default());
    let leaving = cohort_leaving(&["female"], |i, _| i % 2 == 0);
    assert_eq!(import_files(&app, leaving).code, 0);
    assert_eq!(app.count("shadow_results"), 0);
    let report = app.get("/api/v1/audit?format=json", &app.analytiker).json();
    assert!(report.get("shadow").is_none(), "{report:#}");
    assert!(report["units"]["all"].is_number(), "{report:#}");
}

#[test]
fn serve_refuses_to_start_with_a_broken_shadow_set() {
    let (keep, shadow) = shadow_rules(Path::new("rules"), "2026.2-skugga");
    std::fs::write(shadow.join("tolk_ej_bokad.rhai"), "if {").expect("break the script");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gk-regler"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GK_REGLER_") {
            command.env_remove(name);
        }
    }
    command
        .arg("serve")
        .current_dir(keep.path())
        .env("GK_REGLER_LISTEN", "127.0.0.1:0")
        .env(
            "GK_REGLER_RULES",
            std::fs::canonicalize("rules").expect("rules"),
        )
        .env("GK_REGLER_SHADOW_RULES", &shadow)
        .env("GK_REGLER_DATABASE", keep.path().join("db.sqlite3"))
        .env("GK_REGLER_PSEUDONYM_KEY_FILE", keep.path().join("key"));
    let out = crate::helpers::run_command(command, "serve", None);
    assert_eq!(out.code, 4, "{out}");
    assert!(out.stderr.contains("tolk_ej_bokad.rhai:1"), "{out}");
    assert!(
        !keep.path().join("db.sqlite3").exists(),
        "nothing was created"
    );
}
