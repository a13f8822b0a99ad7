//! Rule sets going live: the test gate on every load (reload, `serve`, `import`),
//! versions that name one text, the rule-set history with its diffs, and dated
//! parameters read for each check's day.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::*;

const MANIFEST: &str = "manifest.yaml";
const VERSION: &str = "version: \"2026.2\"";
/// The 21 days of `forsta_mote_efter_tre_veckor`, as the manifest dates them.
const MAX_DAGAR: &str = "- { from: 2000-01-01, value: 21 }";

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read rule file");
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write rule file");
}

fn active_hash(app: &TestApp) -> String {
    let rules = app.get("/api/v1/rules", &app.policy);
    assert_eq!(rules.status, 200, "{rules}");
    rules.json()["ruleset"]["content_hash"]
        .as_str()
        .expect("content_hash")
        .to_owned()
}

fn reload(app: &TestApp) -> Reply {
    app.post("/api/v1/rules/reload", &app.policy, &json!({}))
}

/// A profile the default rules leave alone, for `case_id`.
fn clean(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    profile
}

#[test]
fn a_reload_whose_tests_fail_is_refused_naming_each_failing_test_and_the_old_set_keeps_running() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let before = active_hash(&app);

    // 21 days become 14 under a new version, but the tests still expect 21.
    edit(
        &app.rules_dir,
        MANIFEST,
        MAX_DAGAR,
        "- { from: 2000-01-01, value: 14 }",
    );
    edit(&app.rules_dir, MANIFEST, VERSION, "version: \"2026.2-b\"");
    let refused = reload(&app);
    let body = refused.problem(422);
    let problems = body["problems"].as_array().expect("problems");
    assert!(!problems.is_empty(), "{refused}");
    for problem in problems {
        assert!(
            problem["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("tests/forsta_mote_efter_tre_veckor.yaml")),
            "{problem:#}"
        );
        assert!(
            problem["line"].as_u64().is_some_and(|l| l > 1),
            "{problem:#}"
        );
        let test = &problem["test"];
        assert_eq!(test["rule"], "forsta_mote_efter_tre_veckor", "{problem:#}");
        assert!(test["name"].is_string(), "{problem:#}");
        assert!(
            test["expected"].is_string() && test["actual"].is_string(),
            "{problem:#}"
        );
        assert!(
            problem["message"]
                .as_str()
                .is_some_and(|m| m.contains("misslyckades") && m.contains("förväntat")),
            "{problem:#}"
        );
    }
    // The exact boundary of the old threshold now flags: that case is among them.
    assert!(
        problems.iter().any(|p| p["test"]["name"]
            == "Inget möte bokat och kontroll exakt 21 dagar efter begäran ger ingen flagga"),
        "{refused}"
    );
    assert_eq!(active_hash(&app), before, "the old set keeps running");
    let check = app.check(&app.handlaggare, &clean("GATE-1"));
    assert_eq!(check.status, 201, "{check}");
    assert_eq!(check.json()["ruleset"]["content_hash"], before.as_str());

    // Back to 21 days, with a new title under the same new version: every test
    // passes, and it goes live.
    edit(
        &app.rules_dir,
        MANIFEST,
        "- { from: 2000-01-01, value: 14 }",
        MAX_DAGAR,
    );
    edit(
        &app.rules_dir,
        MANIFEST,
        "title: Tolk behövs men ingen bokning är registrerad",
        "title: Tolk behövs men ingen bokning till GK är registrerad",
    );
    let test_run = app.cli(&["test", arg(&app.rules_dir)]);
    assert_eq!(test_run.code, 0, "{test_run}");
    let reloaded = reload(&app);
    assert_eq!(reloaded.status, 200, "{reloaded}\n{test_run}");
    let reloaded = reloaded.json();
    assert_eq!(reloaded["active"]["version"], "2026.2-b");
    assert!(
        reloaded["tests_passed"].as_u64().is_some_and(|n| n > 100),
        "{reloaded:#}"
    );
    assert_ne!(active_hash(&app), before);

    // Who changed the rules that flag people, and who tried, is in the access log.
    let logged: Vec<(String, String, String)> = {
        let db = app.db();
        let mut statement = db
            .prepare(
                "SELECT actor, action, detail FROM access_log
                 WHERE action LIKE 'rules_reload%' ORDER BY id",
            )
            .expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(
        (logged[0].0.as_str(), logged[0].1.as_str()),
        ("pia.policy", "rules_reload_refused")
    );
    assert_eq!(
        (logged[1].0.as_str(), logged[1].1.as_str()),
        ("pia.policy", "rules_reload")
    );
    assert!(
        logged[1].2.contains("2026.2-b") && logged[1].2.contains(&active_hash(&app)[..12]),
        "{logged:?}"
    );
}

#[test]
fn a_changed_set_needs_a_new_version_and_a_version_names_one_text() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    const TITLE: &str = "title: Tolk behövs men ingen bokning är registrerad";
    edit(
        &app.rules_dir,
        MANIFEST,
        TITLE,
        "title: Tolk behövs men ingen bokning till GK är registrerad",
    );
    let refused = reload(&app);
    let body = refused.problem(422);
    let problem = &body["problems"][0];
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("ändra version") && m.contains("2026.2")),
        "{refused}"
    );
    assert!(
        problem["file"]
            .as_str()
            .is_some_and(|f| f.ends_with(MANIFEST)),
        "{refused}"
    );
    assert_eq!(problem["line"], 5, "the version line: {refused}");

    edit(&app.rules_dir, MANIFEST, VERSION, "version: \"2026.3\"");
    let reloaded = reload(&app);
    assert_eq!(reloaded.status, 200, "{reloaded}");

    // Back to version 2026.2 with yet another text: that version is taken.
    edit(&app.rules_dir, MANIFEST, "version: \"2026.3\"", VERSION);
    edit(
        &app.rules_dir,
        MANIFEST,
        "till GK är registrerad",
        "till GK-mötet är registrerad",
    );
    let refused = reload(&app);
    let body = refused.problem(422);
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("har redan använts")),
        "{refused}"
    );

    // A change that fails tests too, under the running version: one refusal lists both,
    // so that the policy officer does not need a second round to learn of the version.
    edit(
        &app.rules_dir,
        MANIFEST,
        "till GK-mötet är registrerad",
        "till GK är registrerad",
    );
    edit(&app.rules_dir, MANIFEST, VERSION, "version: \"2026.3\"");
    edit(
        &app.rules_dir,
        MANIFEST,
        "{ from: 2000-01-01, value: 21 }",
        "{ from: 2000-01-01, value: 20 }",
    );
    let refused = reload(&app);
    let body = refused.problem(422);
    let messages: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    assert!(messages[0].contains("ändra version"), "{refused}");
    assert!(
        messages[1..].iter().any(|m| m.contains("misslyckades")),
        "{refused}"
    );
}

#[test]
fn the_history_lists_every_version_with_its_checks_and_diffs_any_two() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let first = active_hash(&app);
    assert_eq!(app.check(&app.handlaggare, &clean("HIST-1")).status, 201);
    assert_eq!(app.check(&app.handlaggare, &clean("HIST-2")).status, 201);

    edit(
        &app.rules_dir,
        MANIFEST,
        MAX_DAGAR,
        "- { from: 2000-01-01, value: 21 }\n          - { from: 2030-01-01, value: 14 }",
    );
    edit(&app.rules_dir, MANIFEST, VERSION, "version: \"2026.3\"");
    assert_eq!(reload(&app).status, 200);
    let second = active_hash(&app);
    assert_eq!(app.check(&app.handlaggare, &clean("HIST-3")).status, 201);

    // Officers do not read it; policy staff and analysts do.
    app.get("/api/v1/rules/history", &app.handlaggare)
        .problem(403);
    let history = app.get("/api/v1/rules/history", &app.analytiker);
    assert_eq!(history.status, 200, "{history}");
    let history = history.json();
    assert_eq!(history["active"]["content_hash"], second.as_str());
    let sets = history["rule_sets"].as_array().expect("rule_sets");
    assert_eq!(sets.len(), 2, "{history:#}");
    assert_eq!(sets[0]["content_hash"], first.as_str());
    assert_eq!(sets[0]["version"], "2026.2");
    assert_eq!(sets[0]["short_hash"], &first[..12]);
    assert_eq!(sets[0]["checks"], 2);
    assert_eq!(sets[0]["active"], false);
    assert!(sets[0]["first_used_at"].is_string() && sets[0]["last_used_at"].is_string());
    assert!(
        sets[0]["first_used_at"].as_str() <= sets[0]["last_used_at"].as_str(),
        "{history:#}"
    );
    assert_eq!(sets[1]["version"], "2026.3");
    assert_eq!(sets[1]["checks"], 1);
    assert_eq!(sets[1]["active"], true);
    assert!(history["diff"].is_null());

    // The diff names the changed manifest lines, by short hash.
    let path = format!(
        "/api/v1/rules/history?from={}&to={}",
        &first[..12],
        &second[..12]
    );
    let diffed = app.get(&path, &app.policy);
    assert_eq!(diffed.status, 200, "{diffed}");
    let diff = &diffed.json()["diff"];
    assert_eq!(diff["from"]["version"], "2026.2");
    assert_eq!(diff["to"]["version"], "2026.3");
    let files = diff["files"].as_array().expect("files");
    let manifest = files
        .iter()
        .find(|f| f["name"] == MANIFEST)
        .expect("the manifest");
    assert_eq!(manifest["change"], "changed");
    let unified = manifest["unified"].as_str().expect("unified");
    assert!(unified.contains("-version: \"2026.2\""), "{unified}");
    assert!(unified.contains("+version: \"2026.3\""), "{unified}");
    assert!(
        unified.contains("+          - { from: 2030-01-01, value: 14 }"),
        "{unified}"
    );
    let script = files
        .iter()
        .find(|f| f["name"] == "tolk_ej_bokad.rhai")
        .expect("a script");
    assert_eq!(script["change"], "unchanged");

    // Bad and unknown hashes.
    app.get("/api/v1/rules/history?from=abc&to=def", &app.policy)
        .problem(400);
    app.get(
        &format!("/api/v1/rules/history?from={}", &first[..12]),
        &app.policy,
    )
    .problem(400);
    app.get(
        &format!(
            "/api/v1/rules/history?from={}&to={}",
            "0".repeat(64),
            &second[..12]
        ),
        &app.policy,
    )
    .problem(404);
}

#[test]
fn serve_and_import_refuse_a_rule_set_whose_tests_fail() {
    let mut app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    app.kill();
    edit(
        &app.rules_dir,
        "tests/tolk_ej_bokad.yaml",
        "flagged: true",
        "flagged: false",
    );
    let serve = app.cli(&["serve"]);
    assert_eq!(serve.code, 4, "{serve}");
    assert!(
        serve.stderr.contains("tests/tolk_ej_bokad.yaml:") && serve.stderr.contains("misslyckades"),
        "{serve}"
    );
    assert!(!serve.stdout.contains("lyssnar"), "{serve}");

    let profiles = app.dir.path().join("profiles.jsonl");
    std::fs::write(&profiles, format!("{}\n", clean("IMP-1"))).expect("profiles");
    let import = app.cli(&["import", arg(&profiles)]);
    assert_eq!(import.code, 4, "{import}");
    assert!(import.stderr.contains("tolk_ej_bokad.yaml"), "{import}");
}

#[test]
fn a_parameter_takes_its_value_on_the_checks_day_in_scripts_titles_and_the_rule_list() {
    let rules = tempfile::tempdir().expect("temp dir");
    copy_dir(&default_rules(), rules.path());
    edit(
        rules.path(),
        MANIFEST,
        MAX_DAGAR,
        "- { from: 2000-01-01, value: 21 }\n          - { from: 2025-01-01, value: 14 }",
    );
    // Requested 15 days before the check, no meeting booked: late only under 14 days.
    let profile = |checked_on: &str, requested_on: &str| {
        let mut profile = clean("PARAM-1");
        set(&mut profile, "checked_on", json!(checked_on));
        set(&mut profile, "gk.requested_on", json!(requested_on));
        set(&mut profile, "gk.first_meeting_on", Value::Null);
        profile
    };
    let before = check_json(&profile("2024-12-31", "2024-12-16"), rules.path());
    assert_eq!(before.code, 0, "{before}");
    let before: Value = serde_json::from_str(&before.stdout).expect("json");
    assert!(
        flag(&before, "forsta_mote_efter_tre_veckor").is_none(),
        "{before:#}"
    );

    let after = check_json(&profile("2025-01-02", "2024-12-18"), rules.path());
    assert_eq!(after.code, 0, "{after}");
    let after: Value = serde_json::from_str(&after.stdout).expect("json");
    let late = flag(&after, "forsta_mote_efter_tre_veckor").expect("flagged under 14 days");
    assert_eq!(
        late["title"],
        "Inget GK-möte registrerat inom 14 dagar efter begäran"
    );
    assert!(
        late["message"]
            .as_str()
            .is_some_and(|m| m.contains("inom 14 dagar") && m.contains("15 dagar före kontrollen")),
        "{late:#}"
    );

    // Under the default rules the title of an old check says 21 days, and the rule
    // list shows the parameter with its dated values.
    let old = check_json(&profile("2024-06-30", "2024-06-01"), &default_rules());
    let old: Value = serde_json::from_str(&old.stdout).expect("json");
    assert_eq!(
        flag(&old, "forsta_mote_efter_tre_veckor").expect("flagged")["title"],
        "Inget GK-möte registrerat inom 21 dagar efter begäran"
    );
    let app = spawn_app();
    let listed = app.get("/api/v1/rules", &app.handlaggare).json();
    let rule = listed["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "forsta_mote_efter_tre_veckor"))
        .expect("the rule");
    assert_eq!(
        rule["parameters"]["max_dagar"]["values"],
        json!([{ "from": "2000-01-01", "value": 21 }]),
        "{rule:#}"
    );
    assert!(rule["parameters"]["max_dagar"]["description"].is_string());
    assert_eq!(
        rule["title"],
        "Inget GK-möte registrerat inom 21 dagar efter begäran"
    );
}

/// How many reloads `/metrics` counts with `result` (`ok` or `refused`).
fn reloads(app: &TestApp, result: &str) -> u64 {
    let metrics = app.get("/metrics", &NoToken);
    assert_eq!(metrics.status, 200, "{metrics}");
    let name = format!("gk_regler_rule_reloads_total{{result=\"{result}\"}}");
    metrics
        .text
        .lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().expect("a number"))
        })
        .unwrap_or(0)
}

/// Waits (up to a minute) until `done` holds; fails the test otherwise.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_through_the_same_test_gate() {
    let mut app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let hangup = |app: &TestApp| {
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &app.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    };
    // A failing test under a new version: refused, the old set keeps running.
    edit(
        &app.rules_dir,
        MANIFEST,
        MAX_DAGAR,
        "- { from: 2000-01-01, value: 14 }",
    );
    edit(&app.rules_dir, MANIFEST, VERSION, "version: \"2026.3\"");
    hangup(&app);
    wait_until("a refused reload", || reloads(&app, "refused") == 1);
    let listed = app.get("/api/v1/rules", &app.policy).json();
    assert_eq!(listed["ruleset"]["version"], "2026.2");

    // Fixed: the next signal swaps it in.
    edit(
        &app.rules_dir,
        MANIFEST,
        "- { from: 2000-01-01, value: 14 }",
        MAX_DAGAR,
    );
    hangup(&app);
    wait_until("a reload", || reloads(&app, "ok") == 1);
    let listed = app.get("/api/v1/rules", &app.policy).json();
    assert_eq!(listed["ruleset"]["version"], "2026.3");
    // In the access log under a name no token may take.
    let actors: Vec<String> = {
        let db = app.db();
        let mut statement = db
            .prepare("SELECT DISTINCT actor FROM access_log WHERE action LIKE 'rules_reload%'")
            .expect("query");
        statement
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(actors, ["system:sighup"]);

    let stopped = app.kill();
    // On standard output: standard error is the log, which may be JSON.
    assert!(
        stopped
            .stdout
            .contains("Reglerna laddades inte om (SIGHUP)")
            && stopped
                .stdout
                .contains("tests/forsta_mote_efter_tre_veckor.yaml:"),
        "{stopped}"
    );
    assert!(
        stopped.stdout.contains("Reglerna är omladdade (SIGHUP)")
            && stopped.stdout.contains("version 2026.3"),
        "{stopped}"
    );
}

#[test]
fn serve_warns_when_a_version_was_used_for_another_text() {
    let mut app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    app.kill();
    edit(
        &app.rules_dir,
        MANIFEST,
        "title: Tolk behövs men ingen bokning är registrerad",
        "title: Tolk behövs men ingen bokning till GK är registrerad",
    );
    app.restart();
    let stopped = app.kill();
    assert!(
        stopped.stderr.contains(
            "obs: GK standardregler version 2026.2 har tidigare använts för ett annat innehåll"
        ),
        "{stopped}"
    );
    // An import stores checks under the set's version: there it is refused, and nothing
    // is stored.
    let profiles = app.dir.path().join("profiler.jsonl");
    std::fs::write(&profiles, format!("{}\n", clean("IMPORT-1"))).expect("write");
    let checks = app.count("evaluations");
    let out = app.run_cli(&["import", arg(&profiles)], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("har tidigare använts för ett annat innehåll")
            && out.stderr.contains("Inget sparades"),
        "{out}"
    );
    assert_eq!(app.count("evaluations"), checks);
}
