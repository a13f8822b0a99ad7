//! Lint without running (`gk-regler lint`, and every load of a rule set): misspelt
//! functions and fields with suggestions, Swedish syntax errors with the line of code
//! and a caret, declared inputs; and the plausibility of the dates in a profile.

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, arg, base_profile, copy_dir, default_rules, manifest, manifest_entry, rule_set,
    rules_dir, run, set, spawn_app, spawn_app_with,
};

/// A copy of the default rules in a temporary directory, with `edit` applied to the
/// script `file`.
fn default_rules_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&default_rules(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read script");
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes {file}");
    std::fs::write(&path, edited).expect("write script");
    dir
}

/// The lines of `output` from the one starting with `prefix`: the problem, its line
/// of code and the caret line.
fn problem_with_code<'a>(output: &'a str, prefix: &str) -> [&'a str; 3] {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{output}"));
    assert!(at + 2 < lines.len(), "{output}");
    [lines[at], lines[at + 1], lines[at + 2]]
}

/// The column of the caret in a caret line, measured like the column of the code line
/// above it (both after their `| `).
fn caret_column(code: &str, caret: &str) -> (String, usize) {
    let (_, code) = code.split_once("| ").expect("a code line");
    let (_, caret) = caret.split_once("| ").expect("a caret line");
    assert!(caret.trim_start().starts_with('^'), "{caret}");
    (code.to_owned(), caret.chars().count())
}

#[test]
fn lint_finds_a_misspelt_function_with_a_suggestion_and_shows_the_code() {
    let dir = default_rules_with("forsta_mote_efter_tre_veckor.rhai", |t| {
        t.replacen(
            "days_between(begard, forsta)",
            "days_betwen(begard, forsta)",
            1,
        )
    });
    let script = std::fs::read_to_string(dir.path().join("forsta_mote_efter_tre_veckor.rhai"))
        .expect("script");
    let line = script
        .lines()
        .position(|l| l.contains("days_betwen"))
        .expect("the misspelling")
        + 1;
    let column = script
        .lines()
        .nth(line - 1)
        .expect("line")
        .find("days_betwen")
        .expect("col")
        + 1;

    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let prefix = format!(
        "{}:{line}:{column}: ",
        dir.path()
            .join("forsta_mote_efter_tre_veckor.rhai")
            .display()
    );
    let [problem, code, caret] = problem_with_code(&out.stderr, &prefix);
    assert!(
        problem.contains("okänd funktion `days_betwen`; menade du `days_between`?"),
        "{problem}"
    );
    assert!(
        code.trim_start().starts_with(&format!("{line} | ")),
        "{code}"
    );
    let (code, caret_at) = caret_column(code, caret);
    assert_eq!(
        caret_at, column,
        "the caret under the column:\n{code}\n{caret}"
    );
    assert!(
        code.contains("let dagar = days_betwen(begard, forsta);"),
        "{code}"
    );

    // The same problem refuses `check` (the rule set is not loaded).
    let out = crate::helpers::check_json(&base_profile(), dir.path());
    assert_eq!(out.code, 4, "{out}");

    // And `--json` lists it with its position.
    let out = run(&["lint", arg(dir.path()), "--json"], None);
    assert_eq!(out.code, 1, "{out}");
    let problems = out.json();
    assert_eq!(problems[0]["line"], line, "{problems:#}");
    assert_eq!(problems[0]["column"], column, "{problems:#}");
}

#[test]
fn lint_finds_a_misspelt_field_also_through_a_variable() {
    let dir = default_rules_with("aktivitetsniva_saknas.rhai", |t| {
        t.replacen("is_true(niva.documented)", "is_true(niva.documentd)", 1)
    });
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "`profile.activity_level` har inget fält `documentd`; menade du `documented`?"
        ),
        "{out}"
    );
}

#[test]
fn syntax_errors_are_in_swedish_at_the_line_of_the_mistake() {
    // An extra `{` on line 8: Rhai notices only at the end of the script.
    let dir = default_rules_with("aktivitetsniva_saknas.rhai", |t| {
        t.replacen(
            "if dokumenterad && har_timmar {",
            "if dokumenterad && har_timmar { {",
            1,
        )
    });
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let file = dir.path().join("aktivitetsniva_saknas.rhai");
    let [problem, code, caret] = problem_with_code(&out.stderr, &format!("{}:8:", file.display()));
    assert!(problem.contains("på rad 8 stängs aldrig"), "{problem}");
    assert!(code.contains("if dokumenterad && har_timmar { {"), "{code}");
    assert!(caret.trim_end().ends_with('^'), "{caret}");

    // `och` for `&&`, and a name with `ö`.
    let rules = rule_set(&[
        (
            "och_regel",
            "let a = is_true(profile.gk.interpreter_booked);\nif a och is_true(profile.known_needs.interpreter_needed) { true } else { false }",
        ),
        ("ao_regel", "let första = 1;\nförsta > 0"),
    ]);
    let out = run(&["lint", arg(rules.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let och = format!("{}:2:6: ", rules.path().join("och_regel.rhai").display());
    let [problem, _, _] = problem_with_code(&out.stderr, &och);
    assert!(
        problem.contains("`och` är inget ord i Rhai: skriv `&&`"),
        "{problem}"
    );
    let ao = format!("{}:1:6: ", rules.path().join("ao_regel.rhai").display());
    let [problem, code, caret] = problem_with_code(&out.stderr, &ao);
    assert!(
        problem.contains("namnet `första` innehåller `ö`"),
        "{problem}"
    );
    assert!(problem.contains("`forsta`"), "{problem}");
    let (_, caret_at) = caret_column(code, caret);
    assert_eq!(caret_at, 6);
    assert!(!out.stderr.contains("Unexpected"), "no English: {out}");
}

#[test]
fn declared_inputs_must_exist_and_match_what_the_script_reads() {
    let entry = |id: &str, inputs: &str| {
        manifest_entry(id).replace(
            &format!("    script: {id}.rhai\n"),
            &format!("    script: {id}.rhai\n    inputs: {inputs}\n"),
        )
    };
    let text = manifest(&[
        entry("tolk", "[known_needs.interpreter_needed]"),
        entry("stavfel", "[gk.requestd_on, checked_on]"),
    ]);
    let dir = rules_dir(
        &text,
        &[
            (
                "tolk.rhai",
                "is_true(profile.known_needs.interpreter_needed) && !is_true(profile.gk.interpreter_booked)",
            ),
            ("stavfel.rhai", "profile.checked_on > date(\"2024-01-01\")"),
        ],
    );
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let tolk = format!("{}:1:", dir.path().join("tolk.rhai").display());
    let [problem, _, _] = problem_with_code(&out.stderr, &tolk);
    assert!(
        problem.contains("skriptet läser `gk.interpreter_booked`, som inte står under inputs"),
        "{problem}"
    );
    assert!(
        out.stderr.contains(
            "stavfel: inputs: `gk.requestd_on` är inget fält i profilen; menade du `gk.requested_on`?"
        ),
        "{out}"
    );
    // Every default rule declares its inputs: no note about them.
    let out = run(&["lint", arg(&default_rules())], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains("anger inte inputs"), "{out}");
}

#[test]
fn a_reload_with_a_lint_problem_is_refused_and_the_old_rules_keep_running() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let before = app.get("/api/v1/rules", &app.policy).json();
    let script = app.rules_dir.join("tolk_ej_bokad.rhai");
    let text = std::fs::read_to_string(&script).expect("script");
    std::fs::write(
        &script,
        text.replacen("is_false(bokad)", "is_fals(bokad)", 1),
    )
    .expect("misspell");
    let line = text
        .lines()
        .position(|l| l.contains("is_false(bokad)"))
        .expect("line")
        + 1;

    let refused = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let body = refused.problem(422);
    let problem = body["problems"]
        .as_array()
        .and_then(|p| {
            p.iter().find(|p| {
                p["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("tolk_ej_bokad.rhai"))
            })
        })
        .unwrap_or_else(|| panic!("no problem in the script: {refused}"));
    assert_eq!(problem["line"], line, "{problem:#}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("menade du `is_false`?")),
        "{problem:#}"
    );
    let after = app.get("/api/v1/rules", &app.policy).json();
    assert_eq!(after["ruleset"], before["ruleset"], "the old set runs");

    // The Regler page shows the problem with its line of code and a caret.
    let web = crate::web::WebClient::new(&app);
    let page = web.post("/regler/ladda-om", Some(&app.policy.token), &[]);
    assert_eq!(page.status, 422, "{page}");
    assert!(page.text.contains("menade du `is_false`?"), "{page}");
    assert!(
        page.text.contains(&format!(
            "<pre class=\"code-line\">{line} | if is_fals(bokad) {{"
        )),
        "{page}"
    );
    assert!(page.text.contains("^</pre>"), "{page}");

    // Each rule on the page lists the fields it reads and how its flag clears.
    let page = web.get("/regler", Some(&app.policy.token));
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text.contains("<h3>Uppgifter som regeln läser</h3>"),
        "{page}"
    );
    assert!(
        page.text
            .contains("<li>Tolk bokad till GK <code>gk.interpreter_booked</code></li>"),
        "{page}"
    );
    assert!(
        page.text.contains("<h3>Så försvinner flaggan</h3>"),
        "{page}"
    );
    assert!(
        page.text
            .contains("Flaggan kan inte försvinna av sig själv."),
        "{page}"
    );
}

#[test]
fn the_rules_api_lists_inputs_and_how_to_clear() {
    let app = spawn_app();
    let rules = app.get("/api/v1/rules", &app.handlaggare).json();
    let rule = |id: &str| -> Value {
        rules["rules"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no rule {id}: {rules:#}"))
    };
    let tolk = rule("tolk_ej_bokad");
    assert_eq!(
        tolk["inputs"],
        json!(["known_needs.interpreter_needed", "gk.interpreter_booked"])
    );
    assert!(
        tolk["how_to_clear"]
            .as_str()
            .is_some_and(|t| t.starts_with("Flaggan försvinner")),
        "{tolk:#}"
    );
    assert_eq!(tolk["clearable"], true);
    let consent = rule("samtycke_saknas");
    assert_eq!(consent["clearable"], false);
    assert!(
        consent["how_to_clear"]
            .as_str()
            .is_some_and(|t| t.contains("Se till att samtycke")),
        "{consent:#}"
    );
    for rule in rules["rules"].as_array().expect("rules") {
        assert!(
            rule["inputs"].as_array().is_some_and(|i| !i.is_empty()),
            "{rule:#}"
        );
    }
}

#[test]
fn implausible_dates_are_422_naming_the_field_and_saying_why() {
    let app = spawn_app();
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Stockholm").expect("tz"))
        .date();
    let in_days = |days: i64| {
        today
            .checked_add(jiff::Span::new().days(days))
            .expect("date")
            .to_string()
    };
    let mut cases: Vec<(Value, &str, &str)> = Vec::new();
    for field in [
        "preparation.assessed_for_fs_on",
        "preparation.consent_received_on",
        "preparation.sassam_on",
        "preparation.reconciliation_meeting_on",
        "preparation.other_personal_meeting_on",
        "gk.requested_on",
    ] {
        let mut profile = base_profile();
        set(&mut profile, field, json!("2024-03-16"));
        cases.push((profile, field, "efter kontrolldagen"));
    }
    let mut before_request = base_profile();
    set(
        &mut before_request,
        "gk.first_meeting_on",
        json!("2024-02-29"),
    );
    cases.push((before_request, "gk.first_meeting_on", "före begäran om GK"));
    let mut future = base_profile();
    set(&mut future, "checked_on", json!(in_days(2)));
    cases.push((future, "checked_on", "högst en dag efter i dag"));

    for (profile, field, why) in &cases {
        for path in ["/api/v1/checks", "/api/v1/checks/dry-run"] {
            let reply = app.post(path, &app.handlaggare, profile);
            assert_eq!(reply.first_error_field(), *field, "{path}: {reply}");
            assert!(reply.text.contains(why), "{path} {field}: {reply}");
            assert!(
                !reply.text.contains("2024-03-16"),
                "no value echoed: {reply}"
            );
        }
    }
    assert_eq!(app.count("evaluations"), 0, "nothing stored");

    // Allowed: a first meeting booked ahead, a check tomorrow, hours without a
    // documented assessment (the rule flags it).
    let mut booked = base_profile();
    set(&mut booked, "checked_on", json!(in_days(1)));
    set(&mut booked, "gk.requested_on", json!(in_days(-3)));
    set(&mut booked, "gk.first_meeting_on", json!(in_days(60)));
    set(&mut booked, "activity_level.documented", json!(false));
    set(&mut booked, "activity_level.hours_per_week", json!(12));
    let reply = app.check(&app.handlaggare, &booked);
    assert_eq!(reply.status, 201, "{reply}");
    let report = reply.json();
    let flagged: Vec<&str> = report["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(flagged.contains(&"aktivitetsniva_saknas"), "{flagged:?}");
}

#[test]
fn the_development_cohort_still_imports_whole() {
    let app = spawn_app();
    let cohort = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cohort-2018");
    let profiles = cohort.join("profiles.jsonl");
    let lines = std::fs::read_to_string(&profiles)
        .expect("profiles")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let out = app.run_cli(&["import", profiles.to_str().expect("utf-8")], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        app.count("evaluations"),
        i64::try_from(lines).expect("count")
    );
}

#[test]
fn the_check_form_explains_a_contradicting_date_beside_its_field() {
    let app = spawn_app();
    let web = crate::web::WebClient::new(&app);
    let (cookie, csrf) = web.session(&app.handlaggare.token);
    let page = web.raw(reqwest::Method::GET, "/kontroll", Some(&cookie), &[], None);
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text.contains(
            "Timmar utan att aktivitetsnivån är markerad som dokumenterad ger ändå flaggan"
        ),
        "the hours field says why hours alone still flag: {page}"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("case_id", "WEB-1"),
        ("checked_on", "2024-03-15"),
        ("preparation.sassam_on", "2024-03-20"),
    ];
    let refused = web.raw(
        reqwest::Method::POST,
        "/kontroll",
        Some(&cookie),
        &[],
        Some(&form),
    );
    assert_eq!(refused.status, 422, "{refused}");
    // The explanation stands in the SASSAM field's own error paragraph.
    assert!(
        refused.text.contains(
            "id=\"f-preparation-sassam-on-fel\"><span class=\"vh\">Fel: </span>Datumet ligger efter kontrolldagen"
        ),
        "{refused}"
    );
    assert_eq!(app.count("evaluations"), 0);
}
