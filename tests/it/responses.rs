//! Answering flags over HTTP (`POST /api/v1/checks/{id}/responses`): what is stored, what
//! is refused with a 422 naming the field, who may answer, and that reason codes are
//! those of the rule set that made the check.

use serde_json::{Value, json};

use crate::helpers::{AppOptions, TestApp, base_profile, set, spawn_app, spawn_app_with};

/// The base profile with no documented activity level and an interpreter needed but not
/// booked: raises `aktivitetsniva_saknas` and `tolk_ej_bokad`.
fn flagged_profile(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    set(&mut profile, "activity_level.documented", json!(false));
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    set(&mut profile, "known_needs.interpreter_needed", json!(true));
    profile
}

/// Stores a check of the flagged profile as the first officer; returns its id.
fn flagged_check(app: &TestApp, case_id: &str) -> i64 {
    let reply = app.check(&app.handlaggare, &flagged_profile(case_id));
    assert_eq!(reply.status, 201, "{reply}");
    reply.json()["evaluation_id"].as_i64().expect("id")
}

fn responses_path(id: i64) -> String {
    format!("/api/v1/checks/{id}/responses")
}

#[test]
fn answers_are_stored_with_who_and_when_and_the_newest_is_current() {
    let app = spawn_app();
    let id = flagged_check(&app, "SVAR-1");
    let path = responses_path(id);

    let reply = app.post(
        &path,
        &app.handlaggare,
        &json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant", "reason": "personen_avbojer"}),
    );
    assert_eq!(reply.status, 201, "{reply}");
    let body = reply.json();
    assert_eq!(body["rule_id"], "tolk_ej_bokad");
    assert_eq!(body["response"], "not_relevant");
    assert_eq!(body["reason"], "personen_avbojer");
    assert_eq!(body["answered_by"], app.handlaggare.name);
    assert!(
        body["answered_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    let handled = json!({"rule_id": "aktivitetsniva_saknas", "response": "handled"});
    let reply = app.post(&path, &app.handlaggare, &handled);
    assert_eq!(reply.status, 201, "{reply}");
    assert_eq!(reply.json()["reason"], Value::Null);

    // A new answer replaces the current one; the old one stays in the history.
    let reply = app.post(
        &path,
        &app.handlaggare,
        &json!({"rule_id": "tolk_ej_bokad", "response": "handled"}),
    );
    assert_eq!(reply.status, 201, "{reply}");

    let check = app.get(&format!("/api/v1/checks/{id}"), &app.handlaggare);
    assert_eq!(check.status, 200, "{check}");
    let responses = check.json()["responses"].clone();
    let current: Vec<(String, String)> = responses
        .as_array()
        .expect("responses is a list")
        .iter()
        .map(|r| {
            (
                r["rule_id"].as_str().expect("rule_id").to_owned(),
                r["response"].as_str().expect("response").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        current,
        [
            ("aktivitetsniva_saknas".to_owned(), "handled".to_owned()),
            ("tolk_ej_bokad".to_owned(), "handled".to_owned()),
        ]
    );
    assert_eq!(app.count("flag_responses"), 3, "history kept");
    // The case's checks carry the same current answers.
    let case = app.post(
        "/api/v1/cases/checks",
        &app.handlaggare,
        &json!({"case_id": "SVAR-1"}),
    );
    assert_eq!(case.status, 200, "{case}");
    assert_eq!(case.json()["evaluations"][0]["responses"], responses);
    let logged: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM access_log WHERE action = 'respond' AND evaluation_id = ?1 AND actor = ?2 AND case_pseudonym IS NOT NULL",
            rusqlite::params![id, app.handlaggare.name],
            |row| row.get(0),
        )
        .expect("access log");
    assert_eq!(logged, 3, "every answer is access-logged");
}

#[test]
fn a_bad_answer_is_a_422_naming_the_field_and_stores_nothing() {
    let app = spawn_app();
    let id = flagged_check(&app, "SVAR-2");
    let path = responses_path(id);
    for (body, field) in [
        (
            json!({"rule_id": "finns_inte", "response": "handled"}),
            "rule_id",
        ),
        // A rule of the rule set that did not flag in this check.
        (
            json!({"rule_id": "samtycke_saknas", "response": "handled"}),
            "rule_id",
        ),
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant"}),
            "reason",
        ),
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant", "reason": "finns_inte"}),
            "reason",
        ),
        // Another rule's reason code.
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant", "reason": "bedoms_vid_gk"}),
            "reason",
        ),
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "handled", "reason": "annat"}),
            "reason",
        ),
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "klart"}),
            "response",
        ),
        // No free text.
        (
            json!({"rule_id": "tolk_ej_bokad", "response": "handled", "note": "ringde Anna"}),
            "note",
        ),
    ] {
        let reply = app.post(&path, &app.handlaggare, &body);
        assert_eq!(reply.first_error_field(), field, "{body}: {reply}");
        assert!(!reply.text.contains("Anna"), "{reply}");
    }
    assert_eq!(app.count("flag_responses"), 0);
}

#[test]
fn only_the_officer_who_made_the_check_answers_it() {
    let mut app = spawn_app();
    let id = flagged_check(&app, "SVAR-3");
    let path = responses_path(id);
    let body = json!({"rule_id": "tolk_ej_bokad", "response": "handled"});
    // Another officer cannot see the check at all; an admin sees it but answers for no one.
    app.post(&path, &app.handlaggare2, &body).problem(404);
    app.post(&path, &app.admin, &body).problem(403);
    app.post(&path, &app.analytiker, &body).problem(403);
    app.post(&path, &app.policy, &body).problem(403);
    app.post(&responses_path(id + 1000), &app.handlaggare, &body)
        .problem(404);
    app.post("/api/v1/checks/x/responses", &app.handlaggare, &body)
        .problem(404);
    // Nor its own checks: an admin may check a case, but answering flags is the case
    // officers' judgement, counted per officer in the audit.
    let own = app.check(&app.admin, &flagged_profile("SVAR-3"));
    assert_eq!(own.status, 201, "{own}");
    let own = own.json()["evaluation_id"].as_i64().expect("id");
    app.post(&responses_path(own), &app.admin, &body)
        .problem(403);
    assert_eq!(app.count("flag_responses"), 0);
    // Another officer's check is answered as if it did not exist, and logged as what it
    // is: paging through check numbers leaves a trace.
    app.get(&format!("/api/v1/checks/{id}"), &app.handlaggare2)
        .problem(404);
    let stopped = app.terminate(std::time::Duration::from_secs(5));
    let refusals = stopped
        .stderr
        .lines()
        .filter(|l| l.contains("refused: another officer's check") && l.contains("bo.handlaggare"))
        .count();
    assert_eq!(refusals, 2, "{}", stopped.stderr);
}

#[test]
fn rules_list_their_reasons_own_first_then_common() {
    let app = spawn_app();
    let reply = app.get("/api/v1/rules", &app.handlaggare);
    assert_eq!(reply.status, 200, "{reply}");
    let rules = reply.json()["rules"].clone();
    let tolk = rules
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["id"] == "tolk_ej_bokad")
        .expect("tolk_ej_bokad")
        .clone();
    let codes: Vec<&str> = tolk["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        codes,
        [
            "tolk_bokad_ej_registrerad",
            "personen_avbojer",
            "uppgiften_stammer_inte",
            "behovet_saknas",
            "annat"
        ]
    );
    assert!(
        tolk["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .all(|r| r["label"].as_str().is_some_and(|l| !l.is_empty()))
    );
}

#[test]
fn an_older_check_is_answered_with_the_reasons_of_the_rule_set_that_made_it() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let old = flagged_check(&app, "SVAR-4");
    // A new rule set drops the code `personen_avbojer` from tolk_ej_bokad.
    let manifest_path = app.rules_dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest_path).expect("manifest");
    let changed = text
        .replace("version: \"2026.2\"", "version: \"2026.2-svar\"")
        .replace(
            "      - code: personen_avbojer\n        label: personen avböjer tolk\n",
            "",
        );
    assert_ne!(changed, text);
    std::fs::write(&manifest_path, changed).expect("write manifest");
    let reloaded = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reloaded.status, 200, "{reloaded}");
    let new = flagged_check(&app, "SVAR-4");

    let body = json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant", "reason": "personen_avbojer"});
    let reply = app.post(&responses_path(old), &app.handlaggare, &body);
    assert_eq!(reply.status, 201, "the old check keeps its codes: {reply}");
    let reply = app.post(&responses_path(new), &app.handlaggare, &body);
    assert_eq!(reply.first_error_field(), "reason", "{reply}");
}

/// The rule entry `rule_id` of an audit report's `rules`.
fn audit_rule<'a>(report: &'a Value, rule_id: &str) -> &'a Value {
    report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule_id"] == rule_id)
        .unwrap_or_else(|| panic!("no rule {rule_id} in {report:#}"))
}

#[test]
fn the_audit_counts_answers_ignored_flags_and_resolution() {
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_AUDIT_MIN_CELL_FLOOR", "1".to_owned())],
        ..AppOptions::default()
    });
    let case = "SVAR-AUDIT";
    let mut first = flagged_profile(case);
    set(&mut first, "checked_on", json!("2024-03-05"));
    set(&mut first, "gk.first_meeting_on", json!("2024-04-02"));
    let reply = app.check(&app.handlaggare, &first);
    assert_eq!(reply.status, 201, "{reply}");
    let id = reply.json()["evaluation_id"].as_i64().expect("id");
    let answer = json!({"rule_id": "tolk_ej_bokad", "response": "not_relevant", "reason": "personen_avbojer"});
    assert_eq!(
        app.post(&responses_path(id), &app.handlaggare, &answer)
            .status,
        201
    );
    // Ten days later the activity level is documented; the interpreter is still not booked.
    let mut second = first.clone();
    set(&mut second, "checked_on", json!("2024-03-15"));
    set(&mut second, "activity_level.documented", json!(true));
    set(&mut second, "activity_level.hours_per_week", json!(10));
    let reply = app.check(&app.handlaggare, &second);
    assert_eq!(reply.status, 201, "{reply}");
    let outcome = json!({"case_id": case, "ended_on": "2024-06-30", "outcome": "left_insurance", "reasons": ["work_supported"]});
    assert_eq!(
        app.post("/api/v1/outcomes", &app.analytiker, &outcome)
            .status,
        200
    );

    let reply = app.get("/api/v1/audit?min_cell=1", &app.analytiker);
    assert_eq!(reply.status, 200, "{reply}");
    let report = reply.json();
    let tolk = &audit_rule(&report, "tolk_ej_bokad")["responses"]["versions"][0];
    assert_eq!(tolk["ruleset"], "GK standardregler", "{tolk:#}");
    assert_eq!(tolk["flags"], 2, "{tolk:#}");
    assert_eq!(tolk["answered"], 1, "{tolk:#}");
    assert_eq!(tolk["not_relevant"], 1, "{tolk:#}");
    assert_eq!(
        tolk["not_relevant_by_reason"][0]["code"],
        "personen_avbojer"
    );
    assert_eq!(
        tolk["not_relevant_by_reason"][0]["label"],
        "personen avböjer tolk"
    );
    assert_eq!(tolk["not_relevant_by_reason"][0]["count"], 1);
    // The second check's flag went unanswered and is there at the last check before GK.
    assert_eq!(tolk["ignored"], 1, "{tolk:#}");
    assert_eq!(tolk["resolved"], 0, "{tolk:#}");
    assert_eq!(tolk["burden"]["median"], 2.0, "{tolk:#}");
    let activity = &audit_rule(&report, "aktivitetsniva_saknas")["responses"]["versions"][0];
    assert_eq!(activity["flags"], 1, "{activity:#}");
    assert_eq!(activity["answered"], 0, "{activity:#}");
    assert_eq!(
        activity["ignored"], 0,
        "cleared at the next check: {activity:#}"
    );
    assert_eq!(activity["cases_flagged_before_gk"], 1, "{activity:#}");
    assert_eq!(activity["resolved"], 1, "{activity:#}");
    assert_eq!(activity["median_days_to_resolution"], 10.0, "{activity:#}");

    let csv = app.get("/api/v1/audit?min_cell=1&format=csv", &app.analytiker);
    assert_eq!(csv.status, 200, "{csv}");
    assert!(
        csv.text
            .lines()
            .any(|l| l.starts_with("responses,tolk_ej_bokad,")
                && l.contains(",not_relevant:personen_avbojer,")),
        "{csv}"
    );
    let html = app.get("/api/v1/audit?min_cell=1&format=html", &app.analytiker);
    assert!(
        html.text.contains("Handläggarnas svar på flaggorna"),
        "{html}"
    );
    assert!(html.text.contains("personen avböjer tolk: 1"), "{html}");
    assert!(
        !html.text.contains(app.handlaggare.name),
        "no officer is named"
    );
}
