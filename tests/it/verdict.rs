//! The analyst's verdict: test checks left out of the audit, the summary that opens it,
//! two periods compared and the Excel workbook, each checked against the detailed
//! tables of the same report, with the real binary and the real service.

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use serde_json::{Value, json};

use crate::audit::{audit_json, rule};
use crate::helpers::{AppOptions, TestApp, User, base_profile, set, spawn_app, spawn_app_with};

fn all_cases(rule: &Value) -> &Value {
    rule["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["sex"] == "all")
        .expect("the group of all cases")
}

fn left_insurance(comparison: &Value) -> &Value {
    comparison["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .find(|o| o["outcome"] == "left_insurance")
        .expect("left_insurance")
}

/// Whether two JSON numbers (or two nulls) are equal up to rounding.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs())),
        _ => a.is_null() && b.is_null(),
    }
}

fn times_100(v: &Value) -> Value {
    v.as_f64().map_or(Value::Null, |v| json!(v * 100.0))
}

/// Stores `n` checks with outcomes through the API, as the officer `who`, of cases
/// `PREFIX-000`…; half of them flagged by `aktivitetsniva_saknas`.
fn store_cases(app: &TestApp, who: &User, prefix: &str, n: usize) {
    store_cases_in(app, who, prefix, n, "2024-03");
}

/// [`store_cases`], checked on the 5th of `month` (`2024-03`), with the first GK meeting
/// on the 20th and the outcome at the end of the third month after.
fn store_cases_in(app: &TestApp, who: &User, prefix: &str, n: usize, month: &str) {
    let ended_on = if month <= "2024-03" {
        "2024-06-30"
    } else {
        "2024-12-31"
    };
    let mut outcomes = Vec::new();
    for i in 0..n {
        let case_id = format!("{prefix}-{i:03}");
        let mut profile = base_profile();
        set(&mut profile, "case_id", json!(case_id));
        set(&mut profile, "checked_on", json!(format!("{month}-05")));
        set(
            &mut profile,
            "gk.first_meeting_on",
            json!(format!("{month}-20")),
        );
        set(
            &mut profile,
            "person.sex",
            json!(if i % 2 == 0 { "female" } else { "male" }),
        );
        if i % 2 == 0 {
            set(&mut profile, "activity_level.documented", json!(false));
        }
        let reply = app.check(who, &profile);
        assert_eq!(reply.status, 201, "{reply}");
        let left = i % 3 != 0;
        outcomes.push(json!({
            "case_id": case_id,
            "ended_on": ended_on,
            "outcome": if left { "left_insurance" } else { "returned_to_fk" },
            "reasons": [if left { "work_supported" } else { "goal_reached" }],
        }));
    }
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &Value::Array(outcomes));
    assert_eq!(reply.status, 200, "{reply}");
}

/// Adds the rule `ny_regel`, which flags every check, to the app's rules under a new
/// version and reloads them; returns the manifest's path and its text before.
fn add_a_rule_that_flags_every_check(app: &TestApp) -> (std::path::PathBuf, String) {
    let manifest = app.rules_dir.join("manifest.yaml");
    let original = std::fs::read_to_string(&manifest).expect("read manifest");
    let text = original.replacen("version: \"", "version: \"ny+", 1)
        + "\n  - id: ny_regel\n    script: ny_regel.rhai\n    title: Ny regel\n    severity: warning\n    grounds: policy\n    rationale: Flaggar alla.\n    sources:\n      - test\n";
    std::fs::write(&manifest, text).expect("write manifest");
    std::fs::write(app.rules_dir.join("ny_regel.rhai"), "true").expect("write script");
    let reload = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reload.status, 200, "{reload}");
    (manifest, original)
}

/// A case officer's token made for tests (`token create --purpose test`), named `name`.
fn test_token(app: &TestApp, name: &'static str) -> User {
    test_token_of(app, name, "handlaggare")
}

/// A token of `role` made for tests, named `name`.
fn test_token_of(app: &TestApp, name: &'static str, role: &str) -> User {
    let out = app.cli(&[
        "token",
        "create",
        "--role",
        role,
        "--name",
        name,
        "--purpose",
        "test",
    ]);
    assert_eq!(out.code, 0, "{out}");
    User {
        name,
        token: out.stdout.trim().to_owned(),
    }
}

#[test]
fn test_checks_are_stored_marked_and_left_out_of_the_audit_unless_asked_for() {
    let app = spawn_app();
    let tester = test_token(&app, "testsystem");
    store_cases(&app, &app.handlaggare, "VANLIG", 30);
    store_cases(&app, &tester, "TEST", 3);

    // Stored, and marked by the purpose of the token that made them.
    let marked: Vec<(String, i64)> = {
        let db = app.db();
        let mut statement = db
            .prepare(
                "SELECT requested_by, test FROM evaluations GROUP BY requested_by, test ORDER BY 1",
            )
            .expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        marked,
        [
            ("anna.handlaggare".to_owned(), 0),
            ("testsystem".to_owned(), 1)
        ]
    );

    // Left out by default, and counted.
    let report = app.get("/api/v1/audit", &app.analytiker);
    assert_eq!(report.status, 200, "{report}");
    let report = report.json();
    assert_eq!(report["excluded_test_checks"], 3, "{report:#}");
    assert_eq!(report["include_test"], false);
    assert_eq!(report["units"]["all"], 30);
    assert_eq!(report["checks_in_period"]["all"], 30);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("3 testkontroller ingår inte i uppföljningen"),
        "{notes}"
    );

    // Included when asked for, over HTTP and on the command line.
    let with_tests = app
        .get("/api/v1/audit?include_test=true", &app.analytiker)
        .json();
    assert_eq!(with_tests["excluded_test_checks"], 0);
    assert_eq!(with_tests["include_test"], true);
    // The test checks count among the checks, never as cases with an outcome: an outcome
    // is a real case's, whatever case id a test check carries.
    assert_eq!(with_tests["units"]["all"], 30);
    assert_eq!(with_tests["checks_in_period"]["all"], 33);
    let cli = audit_json(&app, &["--include-test"]);
    assert_eq!(cli["units"]["all"], 30);
    assert_eq!(cli["checks_in_period"]["all"], 33);
    assert_eq!(audit_json(&app, &[])["excluded_test_checks"], 3);

    let out = app.run_cli(
        &[
            "audit",
            "--compare-from",
            "2024-07-01",
            "--compare-to",
            "2024-01-01",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("--compare-to"), "{out}");
    let bad = app.get("/api/v1/audit?include_test=ja", &app.analytiker);
    assert_eq!(bad.status, 422, "{bad}");
    assert_eq!(bad.first_error_field(), "include_test");
    let bad = app.get(
        "/api/v1/audit?compare_from=2024-07-01&compare_to=2024-01-01",
        &app.analytiker,
    );
    assert_eq!(bad.status, 422, "{bad}");
    assert_eq!(bad.first_error_field(), "compare_to");
}

/// Every cell of a sheet, by row.
fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("an xlsx workbook");
    let range = workbook
        .worksheet_range(name)
        .unwrap_or_else(|e| panic!("sheet {name}: {e}"));
    range.rows().map(<[Data]>::to_vec).collect()
}

/// A cell as a JSON number, or null when empty.
fn cell(row: &[Data], col: usize) -> Value {
    match row.get(col) {
        Some(Data::Float(v)) => json!(v),
        Some(Data::Int(v)) => json!(v),
        Some(Data::Empty) | None => Value::Null,
        Some(other) => panic!("column {col}: not a number: {other:?}"),
    }
}

fn text(row: &[Data], col: usize) -> String {
    match row.get(col) {
        Some(Data::String(s)) => s.clone(),
        other => panic!("column {col}: not text: {other:?}"),
    }
}

#[test]
fn the_summary_the_comparison_and_the_workbook_agree_with_the_detailed_tables() {
    let app = spawn_app();
    app.import_development_cohort();
    let first = ["--from", "2024-01-01", "--to", "2024-06-30"];
    let second = ["--from", "2024-07-01", "--to", "2024-12-31"];
    let compare = ["--compare-from", "2024-07-01", "--compare-to", "2024-12-31"];
    let report = audit_json(&app, &[&first[..], &compare[..]].concat());
    let other = audit_json(&app, &second);

    // The summary: one row per rule and for any flag, each equal to its tables.
    let summary = report["summary"].as_array().expect("summary");
    assert_eq!(
        summary.len(),
        report["rules"].as_array().expect("rules").len()
    );
    for row in summary {
        let id = row["rule_id"].as_str().expect("rule id");
        let rule = rule(&report, id);
        let all = all_cases(rule);
        let flagged = left_insurance(&all["flagged_vs_not_flagged"]);
        let resolved = left_insurance(&all["resolved_vs_still_flagged"]);
        for (field, table) in [
            ("diff_pp", "diff_pp"),
            ("ci_low_pp", "ci_low_pp"),
            ("ci_high_pp", "ci_high_pp"),
            ("p_value", "p_value"),
        ] {
            assert!(
                same(&row["flagged_vs_not_flagged"][field], &flagged[table]),
                "{id} {field}"
            );
            assert!(
                same(&row["resolved_vs_still_flagged"][field], &resolved[table]),
                "{id} {field}"
            );
        }
        for (field, table) in [
            ("diff_pp", "coefficient"),
            ("ci_low_pp", "ci_low"),
            ("ci_high_pp", "ci_high"),
        ] {
            assert!(
                same(&row["adjusted"][field], &times_100(&all["adjusted"][table])),
                "{id} adjusted {field}"
            );
        }
        let share = rule["flagged_checks"]["all"].as_f64().expect("shown")
            / report["checks_in_period"]["all"].as_f64().expect("shown")
            * 100.0;
        assert!(same(&row["flagged_checks_pct"], &json!(share)), "{id}");
        let sentence = row["sentence"].as_str().expect("sentence");
        assert!(
            sentence.ends_with("Det är ett samband, inte en effekt av regeln."),
            "{sentence}"
        );
    }
    assert!(summary.iter().any(|r| r["rule_id"] == "nagon_flagga"));
    // Strongest evidence first: clear, then uncertain, then not assessable; by score within.
    let rank = |r: &Value| match r["evidence"]["strength"].as_str() {
        Some("clear") => 0,
        Some("uncertain") => 1,
        _ => 2,
    };
    for pair in summary.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(rank(a) <= rank(b), "{a:#} before {b:#}");
        if rank(a) == rank(b) {
            let score = |r: &Value| r["evidence"]["score"].as_f64().unwrap_or(0.0);
            assert!(score(a) >= score(b), "{a:#} before {b:#}");
        }
    }
    assert_eq!(
        summary[0]["evidence"]["strength"], "clear",
        "the cohort has clear associations"
    );
    // The evidence of a clear row: its interval excludes zero.
    for row in summary.iter().filter(|r| rank(r) == 0) {
        let basis = if row["evidence"]["basis"] == "adjusted" {
            "adjusted"
        } else {
            "flagged_vs_not_flagged"
        };
        let (low, high) = (
            row[basis]["ci_low_pp"].as_f64().expect("low"),
            row[basis]["ci_high_pp"].as_f64().expect("high"),
        );
        assert!(low > 0.0 || high < 0.0, "{row:#}");
    }

    // The comparison: each side is the summary of its own period.
    let comparison = &report["comparison"];
    assert_eq!(comparison["compared_period"]["from"], "2024-07-01");
    assert_eq!(comparison["compared_units"], other["units"]["all"]);
    let changes = comparison["rules"].as_array().expect("comparison rules");
    assert_eq!(changes.len(), summary.len());
    let row_of = |report: &Value, id: &str| -> Value {
        report["summary"]
            .as_array()
            .expect("summary")
            .iter()
            .find(|r| r["rule_id"] == id)
            .cloned()
            .expect("summary row")
    };
    for change in changes {
        let id = change["rule_id"].as_str().expect("id");
        let (a, b) = (row_of(&report, id), row_of(&other, id));
        assert!(
            same(&change["flagged_checks_pct"], &a["flagged_checks_pct"]),
            "{id}"
        );
        assert!(
            same(
                &change["compared_flagged_checks_pct"],
                &b["flagged_checks_pct"]
            ),
            "{id}"
        );
        assert!(
            same(
                &change["flagged_vs_not_flagged_pp"],
                &a["flagged_vs_not_flagged"]["diff_pp"]
            ),
            "{id}"
        );
        assert!(
            same(
                &change["compared_flagged_vs_not_flagged_pp"],
                &b["flagged_vs_not_flagged"]["diff_pp"]
            ),
            "{id}"
        );
        let (da, db) = (
            a["flagged_vs_not_flagged"]["diff_pp"].as_f64(),
            b["flagged_vs_not_flagged"]["diff_pp"].as_f64(),
        );
        if let (Some(da), Some(db)) = (da, db) {
            let d = change["difference_change"]["diff_pp"]
                .as_f64()
                .expect("change shown");
            assert!((d - (da - db)).abs() < 1e-9, "{id}");
            let (low, high) = (
                change["difference_change"]["ci_low_pp"]
                    .as_f64()
                    .expect("low"),
                change["difference_change"]["ci_high_pp"]
                    .as_f64()
                    .expect("high"),
            );
            assert!(low < d && d < high, "{id}");
        }
        let (ra, rb) = (
            a["flagged_checks_pct"].as_f64(),
            b["flagged_checks_pct"].as_f64(),
        );
        if let (Some(ra), Some(rb)) = (ra, rb) {
            let d = change["flag_rate_change"]["diff_pp"]
                .as_f64()
                .expect("change shown");
            assert!((d - (ra - rb)).abs() < 1e-9, "{id}");
        }
    }

    // The workbook: the same numbers, as numbers; suppressed ones empty.
    let path = app.dir.path().join("uppfoljning.xlsx");
    let out = app.run_cli(
        &[
            &["audit", "--out", path.to_str().expect("utf-8")][..],
            &first[..],
            &compare[..],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let bytes = std::fs::read(&path).expect("the workbook");
    let rows = sheet(&bytes, "Sammanfattning");
    assert_eq!(text(&rows[0], 0), "Regel");
    assert_eq!(rows.len(), summary.len() + 1);
    for (row, json) in rows[1..].iter().zip(summary) {
        assert_eq!(text(row, 1), json["rule_id"].as_str().expect("id"));
        assert!(same(&times_100(&cell(row, 2)), &json["flagged_checks_pct"]));
        assert!(same(
            &cell(row, 3),
            &json["flagged_vs_not_flagged"]["diff_pp"]
        ));
        assert!(same(
            &cell(row, 4),
            &json["flagged_vs_not_flagged"]["ci_low_pp"]
        ));
        assert!(same(&cell(row, 7), &json["adjusted"]["diff_pp"]));
        assert_eq!(text(row, 16), json["sentence"].as_str().expect("sentence"));
    }
    let rows = sheet(&bytes, "Flaggade mot ej flaggade");
    let mut compared = 0;
    let mut empty = 0;
    for row in &rows[1..] {
        let id = text(row, 1);
        let sex = match text(row, 2).as_str() {
            "Kvinnor" => "female",
            "Män" => "male",
            _ => "all",
        };
        let group = rule(&report, &id)["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["sex"] == sex)
            .expect("group")
            .clone();
        let table = &group["flagged_vs_not_flagged"];
        let outcome = table["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .find(|o| {
                let label = text(row, 3);
                matches!(
                    (o["outcome"].as_str(), label.as_str()),
                    (Some("left_insurance"), "Lämnat sjukförsäkringen")
                        | (Some("work_or_studies"), "Arbete eller studier")
                        | (Some("worsened_health"), "Försämrad hälsa")
                )
            })
            .expect("outcome")
            .clone();
        assert!(same(&cell(row, 4), &table["n_a"]), "{id} {sex}");
        assert!(same(&cell(row, 5), &table["n_b"]), "{id} {sex}");
        assert!(
            same(&times_100(&cell(row, 6)), &outcome["share_a_pct"]),
            "{id} {sex}"
        );
        assert!(
            same(&times_100(&cell(row, 7)), &outcome["share_b_pct"]),
            "{id} {sex}"
        );
        assert!(same(&cell(row, 8), &outcome["diff_pp"]), "{id} {sex}");
        assert!(same(&cell(row, 11), &outcome["p_value"]), "{id} {sex}");
        compared += 1;
        empty += usize::from(outcome["share_a_pct"].is_null());
    }
    assert_eq!(compared, summary.len() * 3 * 3);
    assert!(
        empty > 0,
        "some shares of a half-year are suppressed, and left empty"
    );
    let rows = sheet(&bytes, "Jämförelse");
    assert_eq!(
        text(&rows[1], 1),
        changes[0]["rule_id"].as_str().expect("id")
    );
    assert!(same(
        &cell(&rows[1], 4),
        &changes[0]["flag_rate_change"]["diff_pp"]
    ));

    // Over HTTP too (a month, to keep the test short).
    let reply = app.get(
        "/api/v1/audit?format=xlsx&from=2024-06-01&to=2024-06-30",
        &app.analytiker,
    );
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        reply.header("content-type"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let reply = app.get(
        "/api/v1/audit?from=2024-06-01&to=2024-06-30&compare_from=2024-05-01&compare_to=2024-05-31",
        &app.analytiker,
    );
    let body = reply.json();
    assert_eq!(
        body["comparison"]["compared_period"]["to"], "2024-05-31",
        "{reply}"
    );
    assert_eq!(
        body["comparison"]["rules"].as_array().map(Vec::len),
        Some(summary.len())
    );

    // The page opens with the summary.
    let page = app.get(
        "/api/v1/audit?format=html&from=2024-06-01&to=2024-06-30",
        &app.analytiker,
    );
    let at = |what: &str| {
        page.text
            .find(what)
            .unwrap_or_else(|| panic!("{what} not on the page"))
    };
    assert!(at("id=\"sammanfattning\"") < at("id=\"om\""));
    assert!(at("id=\"om\"") < at("<details"));
}

/// A test token's check of a real case id showed in the officers' story of that case,
/// unmarked, as its latest check: it "resolved" their flags and filled the form with test
/// data. Test checks and real checks are now two stories: each kind of token sees its own.
#[test]
fn test_checks_and_real_checks_of_one_case_are_kept_apart() {
    let app = spawn_app();
    let tester = test_token(&app, "testsystem");
    store_cases(&app, &app.handlaggare, "DELAD", 1);
    store_cases(&app, &app.handlaggare2, "DELAD", 1);
    store_cases(&app, &tester, "DELAD", 1);
    let story = |who: &User| {
        let reply = app.post(
            "/api/v1/cases/checks",
            who,
            &json!({"case_id": "DELAD-000"}),
        );
        assert_eq!(reply.status, 200, "{reply}");
        let checks = reply.json()["evaluations"]
            .as_array()
            .expect("evaluations")
            .clone();
        checks
            .iter()
            .map(|c| c["requested_by"].as_str().expect("by").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        story(&app.handlaggare),
        ["anna.handlaggare", "bo.handlaggare"]
    );
    assert_eq!(story(&tester), ["testsystem"]);

    // A test token given a former officer's name reads none of that officer's real
    // checks, by number or story, and answers none.
    let real = app.check(&app.handlaggare, &base_profile());
    assert_eq!(real.status, 201, "{real}");
    let real = real.json()["evaluation_id"].as_i64().expect("id");
    let out = app.cli(&["token", "list"]);
    let anna = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("anna.handlaggare"))
        .and_then(|l| l.split_whitespace().next())
        .expect("anna listed")
        .to_owned();
    assert_eq!(app.cli(&["token", "revoke", &anna]).code, 0);
    let renamed = test_token(&app, "anna.handlaggare");
    app.get(&format!("/api/v1/checks/{real}"), &renamed)
        .problem(404);
    let answer = json!({"rule_id": "aktivitetsniva_saknas", "response": "handled"});
    app.post(
        &format!("/api/v1/checks/{real}/responses"),
        &renamed,
        &answer,
    )
    .problem(404);
    assert_eq!(story(&renamed), ["testsystem"], "the test story only");
}

/// A test check may carry a real person's case id. Counted by that case's outcome date,
/// the report's count of test checks left out told, day by day, when the person's case
/// ended; and taken in with `--include-test`, the test check made the real case a unit
/// with its real outcome, so two reports told that outcome.
#[test]
fn a_test_check_of_a_real_case_id_tells_nothing_of_the_real_case() {
    let app = spawn_app();
    store_cases_in(&app, &app.handlaggare, "VERKLIG", 20, "2024-03");
    let tester = test_token(&app, "testsystem");
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!("ENSAM-1"));
    set(&mut profile, "checked_on", json!("2024-03-05"));
    set(&mut profile, "gk.first_meeting_on", json!("2024-03-20"));
    let reply = app.check(&tester, &profile);
    assert_eq!(reply.status, 201, "{reply}");
    let real = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &json!([{"case_id": "ENSAM-1", "ended_on": "2024-06-15", "outcome": "left_insurance", "reasons": ["work_supported"]}]),
    );
    assert_eq!(real.status, 200, "{real}");

    // Counted by its own date only.
    let day = |from: &str, to: &str| {
        audit_json(&app, &["--from", from, "--to", to])["excluded_test_checks"].clone()
    };
    assert_eq!(
        day("2024-06-15", "2024-06-15"),
        0,
        "the real case's outcome date"
    );
    assert_eq!(
        day("2024-03-05", "2024-03-05"),
        1,
        "the test check's own date"
    );

    // Taken in or not, the real case's outcome is never the test check's.
    let period = ["--from", "2024-01-01", "--to", "2024-12-31"];
    let without = audit_json(&app, &period);
    let mut with_test = period.to_vec();
    with_test.push("--include-test");
    let with = audit_json(&app, &with_test);
    assert_eq!(without["units"]["all"], 20, "{without:#}");
    assert_eq!(with["units"]["all"], without["units"]["all"], "{with:#}");
    assert_eq!(with["units"], without["units"]);
}

/// Whoever makes test checks knows how many they made, when, and what flagged them. Taken
/// in beside 4 real checks of a month, 10 test checks showed 14, and 14 less 10 told the
/// hidden 4: the report hides by the real checks alone.
#[test]
fn test_checks_taken_in_cannot_be_taken_off_again_to_read_a_hidden_count() {
    let app = spawn_app();
    store_cases_in(&app, &app.handlaggare, "VERKLIG", 20, "2024-03");
    store_cases_in(&app, &app.handlaggare, "FA", 4, "2024-05");
    let tester = test_token(&app, "testsystem");
    for (i, month) in (0..10)
        .map(|i| (i, "2024-05"))
        .chain((10..16).map(|i| (i, "2024-08")))
    {
        let mut profile = base_profile();
        set(&mut profile, "case_id", json!(format!("PROV-{i:03}")));
        set(&mut profile, "checked_on", json!(format!("{month}-07")));
        set(&mut profile, "activity_level.documented", json!(false));
        let reply = app.check(&tester, &profile);
        assert_eq!(reply.status, 201, "{reply}");
    }
    let month = |report: &Value, month: &str| -> Value {
        report["checks_per_month"]
            .as_array()
            .expect("months")
            .iter()
            .find(|m| m["month"] == month)
            .map(|m| m["count"].clone())
            .unwrap_or_else(|| panic!("{month} not in {report:#}"))
    };
    let period = ["--from", "2024-01-01", "--to", "2024-12-31"];
    let without = audit_json(&app, &period);
    let with = audit_json(&app, &[&period[..], &["--include-test"]].concat());
    assert_eq!(
        month(&without, "2024-05")["all"],
        Value::Null,
        "{without:#}"
    );
    assert_eq!(month(&with, "2024-05")["all"], Value::Null, "{with:#}");
    // A month of test checks alone is no one's: shown, with the test checks.
    assert_eq!(month(&with, "2024-08")["all"], 6, "{with:#}");
    // The answers to flags, which suppress counts by a grid of their own, are left out
    // with test checks taken in, and the report says so.
    for (name, rule) in with["rules"].as_array().expect("rules").iter().enumerate() {
        assert_eq!(rule["responses"]["versions"], json!([]), "{rule:#}");
        assert_ne!(
            without["rules"][name]["responses"]["versions"],
            json!([]),
            "{without:#}"
        );
    }
    assert_eq!(with["shadow"], Value::Null);
    let notes = with["notes"].to_string();
    assert!(
        notes.contains("avgörs av de riktiga kontrollerna"),
        "{notes}"
    );
    assert!(
        notes.contains("Handläggarnas svar på flaggorna och skuggreglerna visas inte"),
        "{notes}"
    );
}

/// A test admin made a normal token (whose checks are real) and revoked others, and a
/// test policy token reloaded the live rules: a test token changed real work.
#[test]
fn a_test_token_changes_no_real_work() {
    let app = spawn_app();
    let admin = test_token_of(&app, "testadmin", "admin");
    // A real check is not there for a test admin, by number or as a web page; a real
    // admin reads it.
    let real = app.check(&app.handlaggare, &base_profile());
    assert_eq!(real.status, 201, "{real}");
    let id = real.json()["evaluation_id"]
        .as_i64()
        .expect("the check's number");
    let read = app.get(&format!("/api/v1/checks/{id}"), &admin);
    assert_eq!(read.status, 404, "{read}");
    assert_eq!(
        app.get(&format!("/api/v1/checks/{id}"), &app.admin).status,
        200
    );
    let made = |purpose: &str, name: &str| {
        app.post(
            "/api/v1/admin/tokens",
            &admin,
            &json!({"name": name, "role": "handlaggare", "purpose": purpose}),
        )
    };
    let normal = made("normal", "vanlig.via.test");
    assert_eq!(normal.status, 403, "{normal}");
    assert!(
        normal.to_string().contains("bara skapa testtokens"),
        "{normal}"
    );
    assert_eq!(made("test", "prov.via.test").status, 201);
    // It lists the test tokens only: the real ones' names and roles are not its to know.
    let listed = app.get("/api/v1/admin/tokens", &admin);
    assert_eq!(listed.status, 200, "{listed}");
    let names = listed.to_string();
    assert!(
        names.contains("prov.via.test") && names.contains("testadmin"),
        "{names}"
    );
    assert!(!names.contains(app.handlaggare.name), "{names}");
    // Nor who made a test token, when a real admin did.
    let by_real = app.post(
        "/api/v1/admin/tokens",
        &app.admin,
        &json!({"name": "prov.av.vanlig", "role": "handlaggare", "purpose": "test"}),
    );
    assert_eq!(by_real.status, 201, "{by_real}");
    let listed = app.get("/api/v1/admin/tokens", &admin).to_string();
    assert!(listed.contains("prov.av.vanlig"), "{listed}");
    assert!(!listed.contains(app.admin.name), "{listed}");
    // A real person's name, revoked, is not a test admin's to take: the person's renewal
    // would be refused, and the test token would read and answer that name's checks.
    let real = app.post(
        "/api/v1/admin/tokens",
        &app.admin,
        &json!({"name": "bo.slutat", "role": "handlaggare"}),
    );
    let real_id = real.json()["id"].as_i64().expect("the real token's number");
    let revoked = app.post(
        &format!("/api/v1/admin/tokens/{real_id}/revoke"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(revoked.status, 204, "{revoked}");
    let taken = made("test", "bo.slutat");
    assert_eq!(taken.status, 400, "{taken}");
    assert!(taken.to_string().contains("kan inte användas"), "{taken}");
    // Nor does a refused name give a real one away.
    let look_alike = app.handlaggare.name.replacen('l', "I", 1);
    for name in [app.handlaggare.name.to_owned(), look_alike] {
        let refused = made("test", &name);
        assert_eq!(refused.status, 400, "{refused}");
        let said = refused.to_string();
        assert!(said.contains("kan inte användas"), "{said}");
        assert!(
            !said.contains("aktiv") && !said.contains("ser ut som"),
            "{said}"
        );
    }
    assert!(
        app.get("/api/v1/admin/tokens", &app.admin)
            .to_string()
            .contains(app.handlaggare.name)
    );
    let revoke = app.post("/api/v1/admin/tokens/1/revoke", &admin, &json!({}));
    assert_eq!(revoke.status, 403, "{revoke}");
    // Its Användare page offers neither: no choice of a normal purpose, no revoke
    // buttons, and it says why.
    let web = crate::web::WebClient::new(&app);
    let users = web.get("/anvandare", Some(&admin.token));
    assert_eq!(users.status, 200, "{users}");
    assert!(!users.text.contains(r#"value="normal""#), "{users}");
    assert!(!users.text.contains("/anvandare/aterkalla"), "{users}");
    let page = web.get(&format!("/kontroll/{id}"), Some(&admin.token));
    assert_eq!(page.status, 404, "{page}");
    assert!(users.text.contains("kan inte återkalla tokens"), "{users}");
    let users = web.get("/anvandare", Some(&app.admin.token));
    assert!(users.text.contains(r#"value="normal""#), "{users}");
    assert!(users.text.contains("/anvandare/aterkalla"), "{users}");
    let policy = test_token_of(&app, "testpolicy", "policy");
    let reload = app.post("/api/v1/rules/reload", &policy, &json!({}));
    assert_eq!(reload.status, 403, "{reload}");
    assert!(reload.to_string().contains("ladda om reglerna"), "{reload}");
    // The Regler page's button says the same, not that the service failed.
    let page = web.post("/regler/ladda-om", Some(&policy.token), &[]);
    assert_eq!(page.status, 403, "{page}");
    assert!(page.text.contains("ladda om reglerna"), "{page}");
    assert_eq!(
        app.post("/api/v1/rules/reload", &app.policy, &json!({}))
            .status,
        200
    );
}

/// A test analyst token read the real audit, and a test policy token replayed a candidate
/// over the real history: counts of real people's checks, read with a token handed to a
/// test system or to someone in training.
#[test]
fn a_test_token_reads_no_real_history_even_counted() {
    let app = spawn_app();
    store_cases(&app, &app.handlaggare, "VANLIG", 3);
    let said = "En testtoken kan inte läsa det som räknar verkliga personers sparade kontroller";
    let analyst = test_token_of(&app, "testanalys", "analytiker");
    let audit = app.get("/api/v1/audit", &analyst);
    assert_eq!(audit.status, 403, "{audit}");
    assert!(audit.to_string().contains(said), "{audit}");
    assert_eq!(app.get("/api/v1/audit", &app.analytiker).status, 200);

    // On the web: the audit page and its downloads say why, and the menu leaves it out.
    let web = crate::web::WebClient::new(&app);
    for path in ["/uppfoljning", "/uppfoljning/rapport.csv"] {
        let page = web.get(path, Some(&analyst.token));
        assert_eq!(page.status, 403, "{path}: {page}");
        assert!(page.text.contains(said), "{path}: {page}");
    }
    // Every page says the sign-in is for test checks.
    assert!(
        web.get("/uppfoljning", Some(&analyst.token))
            .text
            .contains("(analytiker, för testkontroller)")
    );
    let rules = web.get("/regler", Some(&analyst.token));
    assert_eq!(rules.status, 200, "{rules}");
    // Nor the rule sets' history: its counts and times are real officers' checks.
    assert!(
        !rules.text.contains("Regeluppsättningar som har använts"),
        "{rules}"
    );
    let history = app.get("/api/v1/rules/history", &analyst);
    assert_eq!(history.status, 403, "{history}");
    assert_eq!(
        app.get("/api/v1/rules/history", &app.analytiker).status,
        200
    );
    let in_menu = ">Uppföljning</a>";
    assert!(!rules.text.contains(in_menu), "{rules}");
    let real = web.get("/regler", Some(&app.analytiker.token));
    assert!(real.text.contains(in_menu), "{real}");

    // A test policy token's Regler page explains instead of offering the candidate
    // upload, and the upload itself is refused without a replay.
    let policy = test_token_of(&app, "testpolicy", "policy");
    let page = web.get("/regler", Some(&policy.token));
    let form_of = |action: &str| format!(r#"action="{action}""#);
    assert!(!page.text.contains(&form_of("/regler/kandidat")), "{page}");
    assert!(!page.text.contains(&form_of("/regler/ladda-om")), "{page}");
    assert!(
        page.text.contains("kan inte pröva regler mot historiken"),
        "{page}"
    );
    let real = web.get("/regler", Some(&app.policy.token));
    assert!(real.text.contains(&form_of("/regler/kandidat")), "{real}");
    assert!(real.text.contains(&form_of("/regler/ladda-om")), "{real}");
    let candidate = crate::candidate::zip_dir(&app.rules_dir);
    let tried = crate::candidate::upload(&app, &web, &policy.token, "regler.zip", &candidate);
    assert_eq!(tried.status, 403, "{tried}");
    assert!(tried.text.contains(said), "{tried}");
    let trials: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM access_log WHERE action LIKE '%candidate%'",
            [],
            |r| r.get(0),
        )
        .expect("count trials");
    assert_eq!(trials, 0, "a refused trial leaves no trace of having run");
}

/// A test token recorded outcomes for real cases: it replaced an analyst's outcome, and
/// the audit read the test system's.
#[test]
fn a_test_token_records_no_outcome() {
    let app = spawn_app();
    let tester = test_token_of(&app, "testanalys", "analytiker");
    let outcome = |ended_on: &str, outcome: &str| json!([{"case_id": "FK-2024-000311", "ended_on": ended_on, "outcome": outcome}]);
    let real = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &outcome("2024-10-01", "returned_to_fk"),
    );
    assert_eq!(real.status, 200, "{real}");
    let reply = app.post(
        "/api/v1/outcomes",
        &tester,
        &outcome("2024-10-02", "left_insurance"),
    );
    assert_eq!(reply.status, 403, "{reply}");
    assert!(
        reply.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("En testtoken kan inte registrera utfall")),
        "{reply}"
    );
    let stored: (String, String) = app
        .db()
        .query_row("SELECT outcome, recorded_by FROM outcomes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one outcome");
    assert_eq!(
        stored,
        ("returned_to_fk".to_owned(), app.analytiker.name.to_owned())
    );
}

/// A rule added to the rule set counted every case last checked before it existed as
/// not flagged, beside the cases it had flagged since (and a removed rule's flags as
/// resolved). A check under a rule set without the rule tells nothing of it: for that
/// rule the case is not known, like a case whose rule failed.
#[test]
fn a_rule_is_audited_only_on_checks_whose_rule_set_had_it() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    store_cases(&app, &app.handlaggare, "FORE", 12);
    let (manifest, original) = add_a_rule_that_flags_every_check(&app);
    store_cases(&app, &app.handlaggare, "EFTER", 12);

    let report = audit_json(&app, &[]);
    let all = all_cases(rule(&report, "ny_regel"));
    assert_eq!(all["unknown_at_last_check"], 12, "{all:#}");
    assert_eq!(all["flagged_vs_not_flagged"]["n_a"], 12, "{all:#}");
    assert_ne!(all["flagged_vs_not_flagged"]["n_b"], 12, "{all:#}");
    // The notes say why those cases are unknown, and that the share of flagged checks
    // is over every check; no rule errors are claimed.
    let notes = rule(&report, "ny_regel")["notes"].to_string();
    assert!(
        notes.contains("inget känt resultat för regeln")
            && notes.contains("fanns inte i regeluppsättningen då")
            && notes.contains("fanns inte i regeluppsättningen vid en del"),
        "{notes}"
    );
    // Its share of flagged checks is over the checks whose set had it: 12 of 12.
    let ny = rule(&report, "ny_regel");
    assert_eq!(ny["checks_with_rule"], 12, "{ny:#}");
    assert_eq!(report["checks_in_period"]["all"], 24);
    let summary = report["summary"]
        .as_array()
        .expect("summary rows")
        .iter()
        .find(|r| r["rule_id"] == "ny_regel")
        .expect("ny_regel summarised")
        .clone();
    assert_eq!(summary["flagged_checks_pct"], 100.0, "{summary:#}");
    // Its flags per 100 checks are not shown for a month some of whose checks were made
    // without it (they were given over every check of the month: 50 where it flagged all).
    assert_eq!(ny["months_without_rule"], json!(["2024-03"]), "{ny:#}");
    let html = app.run_cli(&["audit", "--format", "html"], None);
    assert_eq!(html.code, 0, "{html}");
    let section = html
        .stdout
        .split("<section aria-labelledby=\"ny_regel\">")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("ny_regel's section");
    assert!(
        !section.contains("flaggor per 100 kontroller") && !section.contains("50,0"),
        "the rate over every check of the month is gone: {section}"
    );
    // A rule both sets had is audited on every case.
    let old = all_cases(rule(&report, "aktivitetsniva_saknas"));
    assert_eq!(old["unknown_at_last_check"], 0, "{old:#}");
    let notes = rule(&report, "aktivitetsniva_saknas")["notes"].to_string();
    assert!(!notes.contains("regeluppsättning"), "{notes}");

    // Removed again, and the cases it flagged checked once more: its flags did not go
    // away because anything was done, so they are not resolved, in the audit or among
    // the answers.
    std::fs::write(
        &manifest,
        original.replacen("version: \"", "version: \"utan+", 1),
    )
    .expect("write manifest");
    let reload = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reload.status, 200, "{reload}");
    store_cases(&app, &app.handlaggare, "EFTER", 12);
    let report = audit_json(&app, &[]);
    let removed = rule(&report, "ny_regel");
    let all = all_cases(removed);
    assert_eq!(all["unknown_at_last_check"], 24, "{all:#}");
    assert_ne!(all["resolved_vs_still_flagged"]["n_a"], 12, "{all:#}");
    let answers = &removed["responses"]["versions"][0];
    assert_ne!(answers["resolved"], 12, "{answers:#}");
}

/// A rule added after every check of the period was reported as if it had run: "Regeln
/// flaggade inte vid någon kontroll före GK" and "12 ärenden hade regelfel, eller …".
#[test]
fn a_rule_no_check_of_the_period_had_is_said_to_be_untried() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    store_cases(&app, &app.handlaggare, "FORE", 12);
    add_a_rule_that_flags_every_check(&app);
    let report = audit_json(&app, &[]);
    let notes = rule(&report, "ny_regel")["notes"]
        .as_array()
        .expect("notes")
        .clone();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].as_str().is_some_and(
            |n| n.contains("fanns inte i regeluppsättningen vid någon av periodens kontroller")
        ),
        "{notes:#?}"
    );
}

/// The comparison of two periods showed a rule's share of flagged checks in each (over
/// the checks whose rule set had the rule) and, beside them, a change taken over every
/// check of the period: 50 and 25 per cent with a change of 8.3 points.
#[test]
fn a_change_between_two_periods_is_taken_over_the_shares_it_stands_beside() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    store_cases_in(&app, &app.handlaggare, "FORE", 12, "2024-03");
    add_a_rule_that_flags_every_check(&app);
    store_cases_in(&app, &app.handlaggare, "EFTER", 12, "2024-03");
    store_cases_in(&app, &app.handlaggare, "SENARE", 12, "2024-09");

    let report = audit_json(
        &app,
        &[
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
            "--compare-from",
            "2024-07-01",
            "--compare-to",
            "2024-12-31",
        ],
    );
    let change = report["comparison"]["rules"]
        .as_array()
        .expect("compared rules")
        .iter()
        .find(|r| r["rule_id"] == "ny_regel")
        .expect("ny_regel compared")
        .clone();
    assert_eq!(change["flagged_checks_pct"], 100.0, "{change:#}");
    assert_eq!(change["compared_flagged_checks_pct"], 100.0, "{change:#}");
    assert_eq!(change["flag_rate_change"]["diff_pp"], 0.0, "{change:#}");
}
