//! Attacks a hostile tester made on the release binary, each reproduced against the
//! real `gk-regler` (CLI or `serve` over HTTP with a temporary database) and shown to
//! fail safely. RELIABILITY.md ("Defects found by hostile testing") lists each defect
//! with the test here that covers it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, TestApp, arg, base_profile, check_json, copy_dir, default_rules, run, set,
    spawn_app_with,
};

/// Stands in for the pseudonym key: content no answer may ever show.
const SECRET: &str = "5ec7e75ec7e75ec7e7a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef";

/// Whether `text` holds any 8-character run of [`SECRET`].
fn shows_secret(text: &str) -> bool {
    SECRET
        .as_bytes()
        .windows(8)
        .any(|w| text.contains(std::str::from_utf8(w).unwrap_or("")))
}

/// A service on a copy of `rules/` with a secret file beside (outside) that copy.
fn app_with_secret() -> (TestApp, std::path::PathBuf) {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let secret = app.dir.path().join("secret.key");
    std::fs::write(&secret, SECRET).expect("write the secret");
    (app, secret)
}

/// Adds rule `id` with `script` to the manifest in `rules`.
fn add_rule(rules: &Path, id: &str, script: &str) {
    let manifest = rules.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        format!(
            "{text}\n  - id: {id}\n    script: {script}\n    title: Länk\n    severity: info\n    grounds: policy\n    rationale: En regel.\n    sources:\n      - Test\n"
        ),
    )
    .expect("extend the manifest");
}

/// Adds rule `id` with `script` to the service's rules as a new version and loads it.
fn load_live_rule(app: &TestApp, id: &str, script: &str) {
    std::fs::write(app.rules_dir.join(format!("{id}.rhai")), script).expect("write");
    add_rule(&app.rules_dir, id, &format!("{id}.rhai"));
    let manifest = app.rules_dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replacen(
            "version: \"2026.2\"",
            &format!("version: \"2026.2-{id}\""),
            1,
        ),
    )
    .expect("a new version");
    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reply.status, 200, "{reply}");
}

fn problems(reply: &crate::helpers::Reply) -> Vec<Value> {
    reply.problem(422)["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems: {reply}"))
        .clone()
}

#[test]
fn symlinked_rule_script_is_refused_without_showing_its_target() {
    let (app, secret) = app_with_secret();
    std::os::unix::fs::symlink(&secret, app.rules_dir.join("lank.rhai")).expect("symlink");
    add_rule(&app.rules_dir, "lank", "lank.rhai");

    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert!(!shows_secret(&reply.text), "{reply}");
    let problems = problems(&reply);
    let problem = problems
        .iter()
        .find(|p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("lank.rhai"))
        })
        .unwrap_or_else(|| panic!("lank.rhai is named: {reply}"));
    assert!(problem["line"].is_u64(), "{problem:#}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("symbolisk länk")),
        "{problem:#}"
    );
    // `lint` on the same directory says the same and shows nothing of the target either.
    let out = run(&["lint", arg(&app.rules_dir)], None);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("lank.rhai") || out.stderr.contains("lank.rhai"),
        "{out}"
    );
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
}

#[test]
fn symlinked_rule_test_file_is_never_shown() {
    let (app, secret) = app_with_secret();
    std::os::unix::fs::symlink(&secret, app.rules_dir.join("tests").join("zz.yaml"))
        .expect("symlink");

    for who in [&app.handlaggare, &app.policy, &app.analytiker, &app.admin] {
        let page = app.get("/regler", who);
        assert!(
            !shows_secret(&page.text),
            "{} sees the secret:\n{page}",
            who.name
        );
    }
    let page = app.get("/regler", &app.policy);
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text.contains("zz.yaml"),
        "the refused file is named: {page}"
    );

    let out = run(&["test", arg(&app.rules_dir)], None);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
    assert!(
        out.stdout.contains("zz.yaml") || out.stderr.contains("zz.yaml"),
        "{out}"
    );
}

#[test]
fn yaml_errors_in_rule_tests_do_not_quote_values() {
    let (app, _) = app_with_secret();
    // A regular file in the tests folder whose whole content is one value.
    std::fs::write(app.rules_dir.join("tests").join("zz.yaml"), SECRET).expect("write");
    let out = run(&["test", arg(&app.rules_dir)], None);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
    assert!(
        out.stdout.contains("zz.yaml:1:1") || out.stderr.contains("zz.yaml:1:1"),
        "{out}"
    );
}

#[test]
fn configuration_errors_do_not_quote_values() {
    // A secret pasted into the wrong field of the configuration, or of the tokens file,
    // must not reach the service's log.
    let dir = tempfile::tempdir().expect("temporary directory");
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!("- name: anna\n  role: {}\n  sha256: ab\n", &SECRET[..20]),
    )
    .expect("write the tokens file");
    for (text, field) in [
        (format!("max_body_bytes: {SECRET}\n"), "max_body_bytes"),
        (
            format!(
                "tokens:\n  - name: anna\n    role: {}\n    sha256: ab\n",
                &SECRET[..20]
            ),
            "tokens[0].role",
        ),
        (
            format!(
                "database: {}\ntokens_file: {}\n",
                arg(&dir.path().join("gk.sqlite3")),
                arg(&tokens)
            ),
            "[0].role",
        ),
    ] {
        let config = dir.path().join("gk.yaml");
        std::fs::write(&config, &text).expect("write the configuration");
        let out = run(&["serve", "--config", arg(&config)], None);
        assert_eq!(out.code, 2, "{out}");
        assert!(
            !shows_secret(&out.stderr) && !shows_secret(&out.stdout),
            "{out}"
        );
        assert!(out.stderr.contains(field), "{out}");
    }
}

#[test]
fn fifo_as_rule_script_neither_hangs_reload_nor_shutdown() {
    let (mut app, _) = app_with_secret();
    let fifo = app.rules_dir.join("ror.rhai");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo: {made}");
    add_rule(&app.rules_dir, "ror", "ror.rhai");

    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let problems = problems(&reply);
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("ror.rhai"))),
        "{reply}"
    );
    // The old rules still answer.
    let check = app.check(&app.handlaggare, &base_profile());
    assert_eq!(check.status, 201, "{check}");
    let stopped = app.terminate(Duration::from_secs(20));
    assert_eq!(stopped.code, Some(0), "{stopped}");
}

#[test]
fn a_rule_comparing_values_nested_as_deep_as_the_limits_allow_does_not_end_the_service() {
    // Lists nested 999 deep, then lists and maps in turn: 1,099 levels, within the size
    // limits (1,000 list items and 100 map entries, nested ones counted). Rhai compares
    // them recursively, which overflowed a 2 MiB thread stack and aborted the service on
    // the first check.
    let (app, _) = app_with_secret();
    load_live_rule(
        &app,
        "djup",
        "if profile.person.age == 101 {\n\
         let a = []; for i in 0..900 { a = [a]; } for i in 0..99 { a = #{x: [a]}; }\n\
         let b = []; for i in 0..900 { b = [b]; } for i in 0..99 { b = #{x: [b]}; }\n\
         a == b && `${a}`.len() > 0\n\
         } else { false }\n",
    );
    let mut profile = base_profile();
    profile["person"]["age"] = json!(101);
    let checked = app.post("/api/v1/checks/dry-run", &app.handlaggare, &profile);
    assert_eq!(checked.status, 200, "{checked}");
    // Flagged, or in an unoptimised build stopped at the check's time limit: either way
    // the rule ran and the service answers.
    let body = checked.json();
    let named = |list: &str| {
        body[list]
            .as_array()
            .is_some_and(|items| items.iter().any(|f| f["rule_id"] == "djup"))
    };
    assert!(named("flags") || named("errors"), "{body:#}");
    assert_eq!(app.get("/health/live", &app.policy).status, 200);
}

#[test]
fn checks_with_a_slow_live_rule_leave_the_service_answering() {
    // For one age, each step copies a list of 999 texts: the rule runs until the check's
    // time limit (or its operation limit), half a second or more per check.
    let (app, _) = app_with_secret();
    load_live_rule(
        &app,
        "seg",
        "if profile.person.age == 101 {\n\
         let a = []; a.pad(999, \"abcdefghij\"); loop { let b = a + []; }\n\
         } else { false }\n",
    );
    // Four checks at once, more than the service has async workers; they were evaluated
    // on those workers, and a liveness probe waited for one of them to finish.
    let checks: Vec<_> = (0..4)
        .map(|_| {
            let api = app.api.clone();
            let officer = crate::helpers::User {
                name: app.handlaggare.name,
                token: app.handlaggare.token.clone(),
            };
            let mut profile = base_profile();
            profile["person"]["age"] = json!(101);
            std::thread::spawn(move || {
                api.post("/api/v1/checks/dry-run", &officer, &profile)
                    .json()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(app.get("/health/live", &app.policy).status, 200);
    let waited = started.elapsed();
    for check in checks {
        let body = check.join().expect("joined");
        assert!(
            body["errors"]
                .as_array()
                .is_some_and(|errors| errors.iter().any(|e| e["rule_id"] == "seg")),
            "{body:#}"
        );
    }
    assert!(
        waited < Duration::from_millis(400),
        "the liveness probe waited {waited:?} behind the checks"
    );
}

#[test]
fn rule_script_outside_the_rules_folder_is_refused() {
    let (app, _) = app_with_secret();
    std::fs::write(app.dir.path().join("ute.rhai"), "true").expect("write");
    add_rule(&app.rules_dir, "ute", "../ute.rhai");
    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let problems = problems(&reply);
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("../ute.rhai"))),
        "{reply}"
    );
    let rules = app.get("/api/v1/rules", &app.policy).json();
    assert!(
        !rules.to_string().contains("\"ute\""),
        "the rule is not loaded: {rules:#}"
    );
}

// ---------------------------------------------------------------------------------------
// Plausible dates: a check in year 0 or 9999 stretched every audit period.
// ---------------------------------------------------------------------------------------

/// Today in Sweden, `days` days on, as `YYYY-MM-DD`.
fn swedish_day(days: i64) -> String {
    let zone = jiff::tz::TimeZone::get("Europe/Stockholm").expect("time zone");
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    today
        .checked_add(jiff::Span::new().days(days))
        .expect("date")
        .to_string()
}

fn outcome(case: &str, ended_on: &str) -> Value {
    json!({"case_id": case, "ended_on": ended_on, "outcome": "left_insurance", "reasons": ["work_supported"]})
}

#[test]
fn implausible_dates_are_refused_naming_the_field() {
    let app = spawn_app_with(AppOptions::default());
    for (field, date) in [
        ("checked_on", "0000-01-01"),
        ("checked_on", "9999-12-31"),
        ("checked_on", "1999-12-31"),
        ("checked_on", &swedish_day(3)),
        ("gk.requested_on", "9999-12-31"),
        ("preparation.sassam_on", "0001-01-01"),
        ("sick_leave_started_on", &swedish_day(400)),
    ] {
        let mut profile = base_profile();
        set(&mut profile, field, json!(date));
        let reply = app.check(&app.handlaggare, &profile);
        assert_eq!(reply.first_error_field(), field, "{date}: {reply}");
        assert!(
            !reply.text.contains(date),
            "the date is not echoed: {reply}"
        );

        let out = check_json(&profile, &default_rules());
        assert_eq!(out.code, 2, "{field} {date}: {out}");
        assert!(
            out.stderr.contains(field) && out.stderr.contains("datumet"),
            "{out}"
        );
    }
    assert_eq!(app.count("evaluations"), 0, "nothing was stored");

    // Today and tomorrow are fine, and so is a meeting booked months ahead.
    for day in [swedish_day(0), swedish_day(1)] {
        let mut profile = base_profile();
        set(&mut profile, "checked_on", json!(day));
        set(&mut profile, "gk.first_meeting_on", json!(swedish_day(200)));
        let reply = app.check(&app.handlaggare, &profile);
        assert_eq!(reply.status, 201, "{reply}");
    }

    let reply = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &outcome("A-1", "9999-12-31"),
    );
    assert_eq!(reply.first_error_field(), "ended_on", "{reply}");
    let reply = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &json!([outcome("A-1", "2024-01-01"), outcome("A-2", "1970-01-01")]),
    );
    assert_eq!(reply.first_error_field(), "[1].ended_on", "{reply}");
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");
}

// ---------------------------------------------------------------------------------------
// Strict input: duplicate keys, repeated list entries, wrong types, invisible case ids,
// CSV columns, byte order marks.
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_json_keys_are_refused_on_every_route() {
    let app = spawn_app_with(AppOptions::default());
    let valid = r#"{"case_id":"A-1","ended_on":"2024-01-01","outcome":"left_insurance"}"#;
    let twice = r#"{"case_id":"A-1","ended_on":"2024-01-01","outcome":"left_insurance","outcome":"returned_to_fk"}"#;
    let reply = app.api.post_raw(
        "/api/v1/outcomes",
        &app.analytiker,
        "application/json",
        twice.to_owned(),
    );
    assert_eq!(reply.first_error_field(), "outcome", "{reply}");
    let reply = app.api.post_raw(
        "/api/v1/outcomes",
        &app.analytiker,
        "application/json",
        format!("[{valid},{twice}]"),
    );
    assert_eq!(reply.first_error_field(), "[1].outcome", "{reply}");
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");

    let profile = base_profile().to_string();
    let nested = profile.replacen(
        "\"known_needs\":{",
        "\"known_needs\":{\"hearing_impairment\":true,\"hearing_impairment\":false,",
        1,
    );
    assert_ne!(nested, profile, "the profile has known_needs");
    let reply = app.api.post_raw(
        "/api/v1/checks",
        &app.handlaggare,
        "application/json",
        nested,
    );
    assert_eq!(
        reply.first_error_field(),
        "known_needs.hearing_impairment",
        "{reply}"
    );
    let top = profile.replacen('{', "{\"case_id\":\"B-2\",", 1);
    let reply = app
        .api
        .post_raw("/api/v1/checks", &app.handlaggare, "application/json", top);
    assert_eq!(reply.first_error_field(), "case_id", "{reply}");
    assert_eq!(app.count("evaluations"), 0, "nothing was stored");
}

#[test]
fn repeated_outcome_reasons_are_refused() {
    // A body large enough for 20,000 repeats: the list, not the body size, refuses it.
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_MAX_BODY_BYTES", "1000000".to_owned())],
        ..AppOptions::default()
    });
    let mut body = outcome("A-1", "2024-01-01");
    body["reasons"] = json!(vec!["work_supported"; 20_000]);
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &body);
    assert_eq!(reply.first_error_field(), "reasons", "{reply}");
    let mut profile = base_profile();
    set(
        &mut profile,
        "specialists",
        json!(["psychologist", "psychologist"]),
    );
    let reply = app.check(&app.handlaggare, &profile);
    assert_eq!(reply.first_error_field(), "specialists", "{reply}");

    let csv = app.dir.path().join("utfall.csv");
    std::fs::write(
        &csv,
        "case_id,ended_on,outcome,reasons\nA-1,2024-01-01,left_insurance,work_supported;work_supported\n",
    )
    .expect("write");
    let out = app.run_cli(&["import-outcomes", arg(&csv)], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("reasons"), "{out}");
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");
}

#[test]
fn one_case_twice_in_one_batch_of_outcomes_is_refused() {
    // Two contradictory outcomes of one case in one request or file: the last one won,
    // reported as "1 created, 1 replaced".
    let app = crate::helpers::spawn_app();
    let first = outcome("DUP-1", "2024-01-01");
    let mut second = outcome("DUP-1", "2024-02-01");
    second["outcome"] = json!("returned_to_fk");
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &json!([first, second]));
    assert_eq!(reply.status, 422, "{reply}");
    assert_eq!(reply.first_error_field(), "[1].case_id", "{reply}");
    assert!(
        !reply.text.contains("DUP-1"),
        "the case id is not repeated: {reply}"
    );

    for (name, text, line, earlier) in [
        (
            "utfall.jsonl",
            format!("{first}\n\n{second}\n"),
            "utfall.jsonl:3:",
            "rad 1",
        ),
        (
            "utfall.csv",
            "case_id,ended_on,outcome\nDUP-1,2024-01-01,left_insurance\n\
             DUP-1,2024-02-01,returned_to_fk\n"
                .to_owned(),
            "utfall.csv:3:",
            "rad 2",
        ),
    ] {
        let path = app.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let out = app.run_cli(&["import-outcomes", arg(&path)], None);
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr.contains(line) && out.stderr.contains(earlier),
            "{out}"
        );
        assert!(!out.stderr.contains("DUP-1"), "{out}");
    }
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");
}

#[test]
fn wrong_json_type_in_an_enumeration_names_the_field() {
    let app = spawn_app_with(AppOptions::default());
    let mut profile = base_profile();
    set(&mut profile, "stage", json!(1));
    let reply = app.check(&app.handlaggare, &profile);
    assert_eq!(reply.first_error_field(), "stage", "{reply}");
    let mut profile = base_profile();
    set(&mut profile, "person.sex", json!(true));
    let reply = app.check(&app.handlaggare, &profile);
    assert_eq!(reply.first_error_field(), "person.sex", "{reply}");
    let mut body = outcome("A-1", "2024-01-01");
    body["outcome"] = json!(1);
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &body);
    assert_eq!(reply.first_error_field(), "outcome", "{reply}");
}

#[test]
fn case_ids_with_invisible_characters_are_refused() {
    let app = spawn_app_with(AppOptions::default());
    for case in [
        "\u{200b}",
        "A\u{200b}1",
        "\u{feff}A-1",
        "A-1\u{202e}2",
        "A\u{2066}-1",
        "A\u{0007}1",
        // Drawn as nothing, or like an ASCII space.
        "FK-8\u{3164}",
        "\u{2800}\u{2800}",
        "FK\u{a0}8",
        // Marks that draw nothing: the combining grapheme joiner, a variation selector.
        "FK-8\u{34f}",
        "FK\u{fe0f}-8",
        // Å as A and a ring: the same id as FK-Å1 to the eye, another pseudonym.
        "FK-A\u{30a}1",
        // Characters taken for ASCII ones: full-width, a Cyrillic К, a non-breaking
        // hyphen (as pasted from a word processor), a minus sign, a bold F.
        "\u{ff26}\u{ff2b}-8",
        "F\u{41a}-8",
        "FK\u{2011}8",
        "FK\u{2212}8",
        "\u{1d405}K-8",
        // A Cyrillic Ӧ for the Latin Ö, a Greek ό, a modifier letter for `_`, an em dash.
        "\u{4e6}STERSUND-1",
        "FK-\u{3cc}8",
        "FK\u{2cd}8",
        "FK\u{2014}8",
        // IPA and small-capital letters, and marks that draw one letter as another.
        "FK-\u{251}",
        "FK-\u{1d04}",
        "FK-o\u{338}",
        "FK-\u{131}\u{307}",
        "FK-1\u{301}",
    ] {
        let mut profile = base_profile();
        set(&mut profile, "case_id", json!(case));
        let reply = app.check(&app.handlaggare, &profile);
        assert_eq!(reply.first_error_field(), "case_id", "{case:?}: {reply}");
        let reply = app.post(
            "/api/v1/outcomes",
            &app.analytiker,
            &outcome(case, "2024-01-01"),
        );
        assert_eq!(reply.first_error_field(), "case_id", "{case:?}: {reply}");
    }
    let csv = app.dir.path().join("utfall.csv");
    std::fs::write(
        &csv,
        "case_id,ended_on,outcome\nA\u{200b}1,2024-01-01,left_insurance\n",
    )
    .expect("write");
    let out = app.run_cli(&["import-outcomes", arg(&csv)], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("case_id"), "{out}");
    assert_eq!(app.count("evaluations") + app.count("outcomes"), 0);
}

#[test]
fn csv_outcomes_with_unknown_or_duplicate_columns_are_refused() {
    let app = spawn_app_with(AppOptions::default());
    let csv = app.dir.path().join("utfall.csv");
    for (header, column) in [
        ("case_id,ended_on,outcome,reason", "reason"),
        ("case_id,ended_on,outcome,reasons,reasons", "reasons"),
        ("case_id,case_id,ended_on,outcome", "case_id"),
        ("case_id,outcome", "ended_on"),
    ] {
        let fields = header.split(',').count();
        let row = [
            "A-1",
            "2024-01-01",
            "left_insurance",
            "work_supported",
            "other",
        ][..fields]
            .join(",");
        std::fs::write(&csv, format!("{header}\n{row}\n")).expect("write");
        let out = app.run_cli(&["import-outcomes", arg(&csv)], None);
        assert_eq!(out.code, 2, "{header}: {out}");
        assert!(
            out.stderr.contains(&format!("\"{column}\"")),
            "{header}: names {column}: {out}"
        );
    }
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");
}

#[test]
fn byte_order_mark_at_the_start_of_jsonl_and_csv_is_accepted() {
    let app = spawn_app_with(AppOptions::default());
    let csv = app.dir.path().join("utfall.csv");
    std::fs::write(
        &csv,
        "\u{feff}case_id,ended_on,outcome,reasons\nA-1,2024-01-01,left_insurance,work_supported\n",
    )
    .expect("write");
    let out = app.run_cli(&["import-outcomes", arg(&csv)], None);
    assert_eq!(out.code, 0, "{out}");
    let jsonl = app.dir.path().join("utfall.jsonl");
    std::fs::write(
        &jsonl,
        format!("\u{feff}{}\n", outcome("A-2", "2024-01-02")),
    )
    .expect("write");
    let out = app.run_cli(&["import-outcomes", arg(&jsonl)], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(app.count("outcomes"), 2);

    let profiles = app.dir.path().join("profiler.jsonl");
    let mut profile = base_profile();
    set(&mut profile, "checked_on", json!("2024-04-01"));
    std::fs::write(&profiles, format!("\u{feff}{profile}\n")).expect("write");
    let out = app.run_cli(&["import", arg(&profiles)], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(app.count("evaluations"), 1);
}

#[test]
fn check_form_with_a_field_posted_twice_is_refused() {
    let app = spawn_app_with(AppOptions::default());
    let form = |extra: &str| format!("case_id=A-1{extra}&checked_on=2024-03-15&stage=before_gk");
    // Control: the same form with the field once is stored.
    let reply = app.api.post_raw(
        "/kontroll",
        &app.handlaggare,
        "application/x-www-form-urlencoded",
        form(""),
    );
    // Stored, and the client follows the redirect to the check's page.
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(app.count("evaluations"), 1, "{reply}");
    let reply = app.api.post_raw(
        "/kontroll",
        &app.handlaggare,
        "application/x-www-form-urlencoded",
        form("&case_id=B-2"),
    );
    assert_eq!(reply.status, 422, "{reply}");
    assert!(reply.text.contains("mer än en gång"), "{reply}");
    // A field's helpers too: its calendar and its state were taken last-wins.
    for extra in [
        "&kalender:checked_on=2024-03-14&kalender:checked_on=2024-03-13",
        "&state:preparation.sassam_on=none&state:preparation.sassam_on=unknown",
    ] {
        let reply = app.api.post_raw(
            "/kontroll",
            &app.handlaggare,
            "application/x-www-form-urlencoded",
            form(extra),
        );
        assert_eq!(reply.status, 422, "{extra}: {reply}");
        assert!(reply.text.contains("mer än en gång"), "{reply}");
    }
    assert_eq!(app.count("evaluations"), 1, "nothing more was stored");

    // The answer form too, refused in Swedish (axum's own refusal was English and named
    // what it could not read).
    let reply = app.api.post_raw(
        "/kontroll/1/svar",
        &app.handlaggare,
        "application/x-www-form-urlencoded",
        "rule_id=tolk_ej_bokad&rule_id=samtycke_saknas&response=handled".to_owned(),
    );
    assert!(reply.status == 400 || reply.status == 422, "{reply}");
    assert!(
        reply.text.starts_with("Formuläret kunde inte läsas"),
        "{reply}"
    );
    assert!(!reply.text.contains("rule_id"), "{reply}");
    assert_eq!(app.count("flag_responses"), 0);
}

#[test]
fn duplicate_keys_in_rule_test_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    copy_dir(&default_rules(), &rules);
    std::fs::write(
        rules.join("tests").join("dubbel.yaml"),
        "rule: tolk_ej_bokad\ncases:\n  - name: dubbel nyckel\n    profile:\n      stage: before_gk\n      stage: gk_closing\n    expect:\n      flagged: false\n",
    )
    .expect("write");
    let out = run(&["test", arg(&rules)], None);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("dubbel.yaml:5") || out.stderr.contains("dubbel.yaml:5"),
        "{out}"
    );
    assert!(
        out.stdout.contains("\"stage\"") || out.stderr.contains("\"stage\""),
        "{out}"
    );
}

#[test]
fn each_officer_may_look_up_only_so_many_cases_a_minute() {
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_CASE_LOOKUPS_PER_MINUTE", "3".to_owned())],
        ..AppOptions::default()
    });
    let lookup =
        |who, case: &str| app.post("/api/v1/cases/checks", who, &json!({ "case_id": case }));
    for n in 0..3 {
        let reply = lookup(&app.handlaggare, &format!("UPPSLAG-{n}"));
        assert_eq!(reply.status, 200, "{reply}");
    }
    // The fourth within the minute is refused, saying when to try again.
    let refused = lookup(&app.handlaggare, "UPPSLAG-3");
    let problem = refused.problem(429);
    assert_eq!(
        problem["type"], "urn:gk-regler:problem:too-many-requests",
        "{problem}"
    );
    let retry_after: u64 = refused.header("retry-after").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The budget is each person's own.
    assert_eq!(lookup(&app.handlaggare2, "UPPSLAG-0").status, 200);
    // The web page's case lookup takes from the same budget.
    let web = crate::web::WebClient::new(&app);
    let page = web.post(
        "/kontroll/arende",
        Some(&app.handlaggare.token),
        &[("case_id", "UPPSLAG-4")],
    );
    assert_eq!(page.status, 429, "{page}");
    assert!(
        page.text
            .contains("Du har hämtat många ärenden på kort tid"),
        "{page}"
    );
    assert!(
        !page.text.contains("UPPSLAG-4"),
        "the refused case id is not shown: {page}"
    );

    // A check made on the web page shows the case's story by every officer: that is a
    // lookup too. Past the budget, a check of a case someone else has checked shows that
    // check only, as a check of a case no one else has checked does (the other checks
    // are not read: neither the page nor its time tells whether there are any).
    let mut checked = base_profile();
    checked["case_id"] = json!("HEMLIG-1");
    assert_eq!(app.check(&app.handlaggare2, &checked).status, 201);
    let web_check = |case_id: &str| {
        let posted = web.post(
            "/kontroll",
            Some(&app.handlaggare.token),
            &[
                ("case_id", case_id),
                ("stage", "before_gk"),
                ("checked_on", "2024-03-15"),
            ],
        );
        assert_eq!(posted.status, 303, "{posted}");
        web.get(posted.header("location"), Some(&app.handlaggare.token))
    };
    for case_id in ["HEMLIG-1", "INGEN-ANNAN-1"] {
        let page = web_check(case_id);
        assert_eq!(page.status, 200, "{page}");
        assert!(
            page.text
                .contains("Ärendets andra kontroller visas inte nu, om det finns några."),
            "{case_id}: {page}"
        );
        assert!(!page.text.contains("bo.handlaggare"), "{case_id}: {page}");
        assert!(
            !page
                .text
                .contains("Ärendet har inte kontrollerats tidigare"),
            "{case_id}: {page}"
        );
    }
    // Within the budget the story is whole, by every officer, and it takes a lookup.
    let page = web.post(
        "/kontroll",
        Some(&app.handlaggare2.token),
        &[
            ("case_id", "HEMLIG-1"),
            ("stage", "before_gk"),
            ("checked_on", "2024-03-16"),
        ],
    );
    let page = web.get(page.header("location"), Some(&app.handlaggare2.token));
    assert!(page.text.contains("av alla handläggare"), "{page}");
    // Of bo's 3: UPPSLAG-0, the page, and one more.
    assert_eq!(lookup(&app.handlaggare2, "UPPSLAG-1").status, 200);
    assert_eq!(lookup(&app.handlaggare2, "UPPSLAG-2").status, 429);
}
