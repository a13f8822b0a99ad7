//! `gk-regler serve` as clients meet it: each test starts the real binary on a free
//! port with its own temporary database, key and tokens ([`spawn_app`]), talks HTTP to
//! it, and looks at the SQLite file read-only to see what was stored.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, Credentials, NoToken, TestApp, base_profile, set, spawn_app, spawn_app_with,
};

/// A case id that must never reach the database or the logs.
const CASE: &str = "ARENDE-2024-RAW-4711";

/// The rules [`flagged_profile`] raises under the default rules, sorted.
const FLAGGED_RULES: [&str; 2] = ["aktivitetsniva_saknas", "tolk_ej_bokad"];

/// The base profile with `case_id`, no documented activity level and an interpreter
/// needed but not booked: raises exactly [`FLAGGED_RULES`].
fn flagged_profile(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    set(&mut profile, "activity_level.documented", json!(false));
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    set(&mut profile, "known_needs.interpreter_needed", json!(true));
    profile
}

/// The base profile (no flags) with `case_id`.
fn clean_profile(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    profile
}

/// A valid outcome record of `case_id`.
fn outcome(case_id: &str, outcome: &str) -> Value {
    json!({
        "case_id": case_id,
        "ended_on": "2024-06-30",
        "outcome": outcome,
        "reasons": ["work_supported"],
    })
}

/// The sorted `rule_id`s of a JSON list of flags.
fn rule_ids(flags: &Value) -> Vec<String> {
    let mut ids: Vec<String> = flags
        .as_array()
        .unwrap_or_else(|| panic!("flags is not an array: {flags}"))
        .iter()
        .map(|flag| flag["rule_id"].as_str().expect("rule_id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// A flag as `(rule_id, severity, message)`.
type FlagRow = (String, String, String);

/// The flags of a JSON list of flags, sorted by rule id.
fn flag_rows(flags: &Value) -> Vec<FlagRow> {
    let mut rows: Vec<FlagRow> = flags
        .as_array()
        .unwrap_or_else(|| panic!("flags is not an array: {flags}"))
        .iter()
        .map(|f| {
            let text = |key: &str| f[key].as_str().expect("a string").to_owned();
            (text("rule_id"), text("severity"), text("message"))
        })
        .collect();
    rows.sort();
    rows
}

/// Stores a check of `profile` as `who`, requiring 201; returns the body.
fn stored_check(app: &TestApp, who: &(impl Credentials + ?Sized), profile: &Value) -> Value {
    let reply = app.check(who, profile);
    assert_eq!(reply.status, 201, "{reply}");
    reply.json()
}

fn evaluation_id(body: &Value) -> i64 {
    body["evaluation_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no evaluation_id: {body:#}"))
}

fn content_hash(body: &Value) -> String {
    body["ruleset"]["content_hash"]
        .as_str()
        .unwrap_or_else(|| panic!("no ruleset.content_hash: {body:#}"))
        .to_owned()
}

fn is_hex_64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `needle` occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The stored flags of evaluation `id`: `(rule_id, severity, message)` by rule id.
fn stored_flags(db: &rusqlite::Connection, id: i64) -> Vec<FlagRow> {
    let mut statement = db
        .prepare("SELECT rule_id, severity, message FROM flags WHERE evaluation_id = ?1 ORDER BY rule_id")
        .expect("prepare");
    statement
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query flags")
        .collect::<Result<_, _>>()
        .expect("read flags")
}

// ---------------------------------------------------------------------------------------
// Checks: stored, pseudonymised, read back by whom may read them.
// ---------------------------------------------------------------------------------------

#[test]
fn check_is_stored_with_flags_and_access_log_under_a_pseudonym() {
    let app = spawn_app();
    let reply = app.check(&app.handlaggare, &flagged_profile(CASE));
    assert_eq!(reply.status, 201, "{reply}");
    let body = reply.json();
    let id = evaluation_id(&body);
    assert_eq!(body["stored"], true, "{body:#}");
    assert_eq!(reply.header("location"), format!("/api/v1/checks/{id}"));
    assert_eq!(rule_ids(&body["flags"]), FLAGGED_RULES, "{body:#}");

    let db = app.db();
    let (case, requested_by, hash, profile_json): (String, String, String, String) = db
        .query_row(
            "SELECT case_pseudonym, requested_by, rule_set_hash, profile_json FROM evaluations WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .expect("the evaluation row");
    assert_eq!(app.count("evaluations"), 1);
    assert!(is_hex_64(&case), "pseudonym {case:?}");
    assert_eq!(requested_by, app.handlaggare.name);
    assert_eq!(hash, content_hash(&body));
    let stored_profile: Value = serde_json::from_str(&profile_json).expect("profile_json");
    assert_eq!(stored_profile["case_id"], case.as_str());
    assert_eq!(stored_flags(&db, id), flag_rows(&body["flags"]));

    let access: Vec<(String, String, String, Option<String>)> = db
        .prepare(
            "SELECT actor, role, action, case_pseudonym FROM access_log WHERE evaluation_id = ?1",
        )
        .expect("prepare")
        .query_map([id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("access log");
    assert_eq!(
        access,
        [(
            app.handlaggare.name.to_owned(),
            "handlaggare".to_owned(),
            "check".to_owned(),
            Some(case.clone())
        )]
    );
    drop(db);

    assert!(
        !contains_bytes(&app.database_bytes(), CASE.as_bytes()),
        "the raw case id is in the database file or its WAL"
    );
}

#[test]
fn stored_check_is_readable_by_its_officer_and_admin_only() {
    let app = spawn_app();
    let reply = app.check(&app.handlaggare, &flagged_profile(CASE));
    assert_eq!(reply.status, 201, "{reply}");
    let created = reply.json();
    let location = reply.header("location").to_owned();

    let own = app.get(&location, &app.handlaggare);
    assert_eq!(own.status, 200, "{own}");
    let own = own.json();
    assert_eq!(own["evaluation_id"], created["evaluation_id"]);
    assert_eq!(own["requested_by"], app.handlaggare.name);
    assert_eq!(
        own["ruleset"]["content_hash"],
        created["ruleset"]["content_hash"]
    );
    assert!(
        is_hex_64(own["case_pseudonym"].as_str().expect("case_pseudonym")),
        "{own:#}"
    );
    assert_eq!(flag_rows(&own["flags"]), flag_rows(&created["flags"]));
    assert!(!own.to_string().contains(CASE), "{own:#}");

    let other = app.get(&location, &app.handlaggare2);
    other.problem(404);
    assert!(!other.text.contains("flags"), "{other}");

    let admin = app.get(&location, &app.admin);
    assert_eq!(admin.status, 200, "{admin}");
    assert_eq!(
        flag_rows(&admin.json()["flags"]),
        flag_rows(&created["flags"])
    );

    // A check that does not exist looks the same as one that is not yours.
    app.get("/api/v1/checks/999999", &app.admin).problem(404);

    // Every successful read is attributed to its reader.
    let readers: Vec<(String, String)> = app
        .db()
        .prepare("SELECT actor, role FROM access_log WHERE action = 'read_check' ORDER BY id")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("access log");
    assert_eq!(
        readers,
        [
            (app.handlaggare.name.to_owned(), "handlaggare".to_owned()),
            (app.admin.name.to_owned(), "admin".to_owned()),
        ]
    );
}

#[test]
fn case_checks_lists_the_checks_of_one_case_oldest_first() {
    let app = spawn_app();
    let first = evaluation_id(&stored_check(
        &app,
        &app.handlaggare,
        &flagged_profile(CASE),
    ));
    let mut later = clean_profile(CASE);
    set(&mut later, "checked_on", json!("2024-03-20"));
    let second = evaluation_id(&stored_check(&app, &app.handlaggare, &later));
    // Another case of the same officer, and the same case checked by another officer.
    stored_check(&app, &app.handlaggare, &flagged_profile("ANNAT-ARENDE-1"));
    let mut theirs = clean_profile(CASE);
    set(&mut theirs, "checked_on", json!("2024-03-25"));
    let by_other = evaluation_id(&stored_check(&app, &app.handlaggare2, &theirs));

    let listed = |who| {
        let reply = app.post("/api/v1/cases/checks", who, &json!({ "case_id": CASE }));
        assert_eq!(reply.status, 200, "{reply}");
        let body = reply.json();
        let ids: Vec<i64> = body["evaluations"]
            .as_array()
            .unwrap_or_else(|| panic!("no evaluations: {body:#}"))
            .iter()
            .map(evaluation_id)
            .collect();
        (body, ids)
    };
    // Every officer who gives the case id sees every check of the case, by anyone.
    let (body, ids) = listed(&app.handlaggare);
    assert_eq!(ids, [first, second, by_other], "{body:#}");
    assert_eq!(rule_ids(&body["evaluations"][0]["flags"]), FLAGGED_RULES);
    assert_eq!(body["evaluations"][1]["flags"], json!([]));
    let pseudonym = body["case_pseudonym"].as_str().expect("case_pseudonym");
    assert!(is_hex_64(pseudonym), "{body:#}");
    for evaluation in body["evaluations"].as_array().expect("array") {
        assert_eq!(evaluation["case_pseudonym"], pseudonym);
    }
    assert!(!body.to_string().contains(CASE), "{body:#}");

    assert_eq!(
        body["evaluations"][2]["requested_by"], app.handlaggare2.name,
        "{body:#}"
    );
    assert_eq!(listed(&app.handlaggare2).1, [first, second, by_other]);
    assert_eq!(listed(&app.admin).1, [first, second, by_other]);
    // Each read of the case is in the access log, by who read it.
    let db = app.db();
    let readers: Vec<String> = db
        .prepare("SELECT actor FROM access_log WHERE action = 'list_case' ORDER BY id")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("access log");
    assert_eq!(
        readers,
        [
            app.handlaggare.name.to_owned(),
            app.handlaggare2.name.to_owned(),
            app.admin.name.to_owned()
        ]
    );
    // An officer still reads only their own checks by number.
    let reply = app.get(&format!("/api/v1/checks/{first}"), &app.handlaggare2);
    assert_eq!(reply.status, 404, "{reply}");
}

#[test]
fn dry_run_answers_without_storing() {
    let app = spawn_app();
    let reply = app.post(
        "/api/v1/checks/dry-run",
        &app.handlaggare,
        &flagged_profile(CASE),
    );
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("location"), "", "{reply}");
    let body = reply.json();
    assert_eq!(body["stored"], false, "{body:#}");
    assert!(body.get("evaluation_id").is_none(), "{body:#}");
    assert_eq!(rule_ids(&body["flags"]), FLAGGED_RULES, "{body:#}");
    assert!(is_hex_64(&content_hash(&body)), "{body:#}");
    assert_eq!(app.count("evaluations"), 0);
    assert_eq!(app.count("flags"), 0);
}

// ---------------------------------------------------------------------------------------
// Bad requests: the right status, a problem document naming the field, nothing stored.
// ---------------------------------------------------------------------------------------

#[test]
fn malformed_json_is_a_400_problem() {
    let app = spawn_app();
    let text = flagged_profile(CASE).to_string();
    let truncated = &text[..text.len() / 2];
    for bad in [
        truncated,
        "{",
        "",
        "not json",
        "{\"case_id\": \"A\",}",
        "{\"case_id\": \"A\"} extra",
    ] {
        let reply = app.api.post_raw(
            "/api/v1/checks",
            &app.handlaggare,
            "application/json",
            bad.to_owned(),
        );
        let body = reply.problem(400);
        assert!(!reply.text.contains(CASE), "input {bad:?}: {body:#}");
    }
    assert_eq!(app.count("evaluations"), 0);
}

#[test]
fn invalid_profiles_are_422_naming_the_field() {
    let app = spawn_app();
    let mut wrong_type = flagged_profile(CASE);
    set(&mut wrong_type, "person.age", json!("forty"));
    let mut unknown = flagged_profile(CASE);
    crate::helpers::remove(&mut unknown, "activity_level.documented");
    set(&mut unknown, "activity_level.documentd", json!(true));
    let mut bad_date = flagged_profile(CASE);
    set(&mut bad_date, "gk.requested_on", json!("2024-02-30"));

    for (profile, field) in [
        (wrong_type, "person.age"),
        (unknown, "activity_level.documentd"),
        (bad_date, "gk.requested_on"),
    ] {
        for path in ["/api/v1/checks", "/api/v1/checks/dry-run"] {
            let reply = app.post(path, &app.handlaggare, &profile);
            assert_eq!(reply.first_error_field(), field, "{path}: {reply}");
            assert!(!reply.text.contains("forty"), "value echoed: {reply}");
            assert!(!reply.text.contains(CASE), "case id echoed: {reply}");
        }
    }
    // A missing case id is refused too, naming it at least in the detail.
    let mut missing = flagged_profile(CASE);
    crate::helpers::remove(&mut missing, "case_id");
    let reply = app.check(&app.handlaggare, &missing);
    let body = reply.problem(422);
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("case_id")),
        "{reply}"
    );
    assert_eq!(app.count("evaluations"), 0);
}

/// A missing field is reported by its own path, so a client knows what to fill in.
#[test]
fn missing_case_id_is_422_naming_case_id_as_the_field() {
    let app = spawn_app();
    let mut missing = flagged_profile(CASE);
    crate::helpers::remove(&mut missing, "case_id");
    for path in ["/api/v1/checks", "/api/v1/checks/dry-run"] {
        let reply = app.post(path, &app.handlaggare, &missing);
        assert_eq!(reply.first_error_field(), "case_id", "{path}: {reply}");
    }
    let reply = app.post("/api/v1/cases/checks", &app.handlaggare, &json!({}));
    assert_eq!(reply.first_error_field(), "case_id", "{reply}");
    assert_eq!(app.count("evaluations"), 0);
}

/// serde's derived `Deserialize` would accept a struct written as a JSON array of its
/// field values (`["A"]` as a profile with case id "A"); the service refuses it.
#[test]
fn arrays_are_refused_where_an_object_is_required() {
    let app = spawn_app();
    for path in [
        "/api/v1/checks",
        "/api/v1/checks/dry-run",
        "/api/v1/cases/checks",
    ] {
        let reply = app.post(path, &app.admin, &json!(["SEKVENS-1"]));
        assert!(
            reply.status == 400 || reply.status == 422,
            "{path}: an array is not an object: {reply}"
        );
    }
    let reply = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &json!([["SEKVENS-1", "2024-01-01", "left_insurance", []]]),
    );
    assert!(reply.status == 400 || reply.status == 422, "{reply}");
    assert_eq!(app.count("evaluations"), 0);
    assert_eq!(app.count("outcomes"), 0);
}

#[test]
fn oversized_and_non_json_bodies_are_refused() {
    const LIMIT: usize = 5000;
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_MAX_BODY_BYTES", LIMIT.to_string())],
        ..AppOptions::default()
    });
    let profile = flagged_profile(CASE).to_string();
    assert!(profile.len() < LIMIT, "the profile itself fits");

    // Valid JSON, only too long: trailing white space.
    let padded = format!("{profile}{}", " ".repeat(LIMIT));
    for path in [
        "/api/v1/checks",
        "/api/v1/checks/dry-run",
        "/api/v1/outcomes",
    ] {
        app.api
            .post_raw(path, &app.admin, "application/json", padded.clone())
            .problem(413);
    }

    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        app.api
            .post_raw(
                "/api/v1/checks",
                &app.handlaggare,
                content_type,
                profile.clone(),
            )
            .problem(415);
    }
    // No content type at all.
    app.api
        .request(
            reqwest::Method::POST,
            "/api/v1/checks",
            &app.handlaggare,
            crate::helpers::Body::Raw("", profile.clone()),
        )
        .problem(415);

    // A body under the limit still goes through (on a dry run, which stores nothing),
    // also with a charset parameter.
    let ok = app.api.post_raw(
        "/api/v1/checks/dry-run",
        &app.handlaggare,
        "application/json; charset=utf-8",
        profile,
    );
    assert_eq!(ok.status, 200, "{ok}");
    assert_eq!(app.count("evaluations"), 0);
}

// ---------------------------------------------------------------------------------------
// Authentication and roles.
// ---------------------------------------------------------------------------------------

/// Every authenticated route with a body it would accept.
fn api_routes() -> Vec<(reqwest::Method, &'static str, Option<Value>)> {
    use reqwest::Method;
    vec![
        (Method::POST, "/api/v1/checks", Some(flagged_profile(CASE))),
        (
            Method::POST,
            "/api/v1/checks/dry-run",
            Some(flagged_profile(CASE)),
        ),
        (Method::GET, "/api/v1/checks/1", None),
        (
            Method::POST,
            "/api/v1/cases/checks",
            Some(json!({ "case_id": CASE })),
        ),
        (
            Method::POST,
            "/api/v1/outcomes",
            Some(outcome(CASE, "left_insurance")),
        ),
        (Method::GET, "/api/v1/rules", None),
        (Method::POST, "/api/v1/rules/reload", None),
        (Method::GET, "/api/v1/admin/tokens", None),
        (
            Method::POST,
            "/api/v1/admin/tokens",
            Some(json!({ "name": "x", "role": "admin" })),
        ),
        (Method::POST, "/api/v1/admin/tokens/1/revoke", None),
    ]
}

#[test]
fn api_routes_refuse_missing_and_wrong_tokens() {
    let app = spawn_app();
    // A real token with its last character changed, and one the service never issued.
    let mut altered = app.admin.token.clone();
    let last = altered.pop().expect("non-empty token");
    altered.push(if last == '0' { '1' } else { '0' });
    let unknown = format!("gkr_{}", "0".repeat(64));
    for (method, path, body) in api_routes() {
        for who in [None, Some(altered.as_str()), Some(unknown.as_str())] {
            let reply = app
                .api
                .request(method.clone(), path, &who, body_of(body.as_ref()));
            reply.problem(401);
            assert_eq!(
                reply.header("www-authenticate"),
                "Bearer",
                "{method} {path} with {who:?}: {reply}"
            );
        }
    }
    assert_eq!(app.count("evaluations"), 0);
    assert_eq!(app.count("outcomes"), 0);
    assert_eq!(app.count("rule_sets"), 1);
    assert_eq!(app.count("accounts"), 5, "no account was made or revoked");
}

fn body_of(body: Option<&Value>) -> crate::helpers::Body<'_> {
    body.map_or(crate::helpers::Body::None, crate::helpers::Body::Json)
}

#[test]
fn roles_allow_only_their_routes() {
    let app = spawn_app();
    let profile = flagged_profile(CASE);
    let dry_run = "/api/v1/checks/dry-run";
    let reload = "/api/v1/rules/reload";
    let outcomes = "/api/v1/outcomes";

    // handlaggare: checks and dry runs, not rules or outcomes.
    let own = stored_check(&app, &app.handlaggare, &profile);
    assert_eq!(app.post(dry_run, &app.handlaggare, &profile).status, 200);
    app.post(reload, &app.handlaggare, &json!({})).problem(403);
    app.post(outcomes, &app.handlaggare, &outcome(CASE, "left_insurance"))
        .problem(403);

    // policy: dry runs and reloads, never a stored check or a read of one.
    app.check(&app.policy, &profile).problem(403);
    assert_eq!(app.post(dry_run, &app.policy, &profile).status, 200);
    let reloaded = app.post(reload, &app.policy, &json!({}));
    assert_eq!(reloaded.status, 200, "{reloaded}");
    app.post(outcomes, &app.policy, &outcome(CASE, "left_insurance"))
        .problem(403);
    let location = format!("/api/v1/checks/{}", evaluation_id(&own));
    app.get(&location, &app.policy).problem(403);

    // analytiker: outcomes, no checks.
    app.check(&app.analytiker, &profile).problem(403);
    app.post(dry_run, &app.analytiker, &profile).problem(403);
    app.get(&location, &app.analytiker).problem(403);
    app.post(
        "/api/v1/cases/checks",
        &app.analytiker,
        &json!({ "case_id": CASE }),
    )
    .problem(403);
    app.post(reload, &app.analytiker, &json!({})).problem(403);
    let recorded = app.post(outcomes, &app.analytiker, &outcome(CASE, "left_insurance"));
    assert_eq!(recorded.status, 200, "{recorded}");

    // admin: everything.
    stored_check(&app, &app.admin, &profile);
    assert_eq!(app.post(reload, &app.admin, &json!({})).status, 200);
    assert_eq!(
        app.post(outcomes, &app.admin, &outcome("ANNAT", "returned_to_fk"))
            .status,
        200
    );

    // Every role may list the rules.
    for user in [&app.handlaggare, &app.policy, &app.analytiker, &app.admin] {
        assert_eq!(app.get("/api/v1/rules", user).status, 200, "{}", user.name);
    }
    // Only the handlaggare's and the admin's checks were stored.
    let requesters: Vec<String> = app
        .db()
        .prepare("SELECT requested_by FROM evaluations ORDER BY id")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(requesters, [app.handlaggare.name, app.admin.name]);
    assert_eq!(app.count("outcomes"), 2);
}

#[test]
fn health_metrics_and_openapi_need_no_token() {
    let app = spawn_app();
    for path in [
        "/health/live",
        "/health/ready",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let reply = app.get(path, &NoToken);
        assert_eq!(reply.status, 200, "{path}: {reply}");
    }
    let ready = app.get("/health/ready", &NoToken).json();
    assert_eq!(ready["status"], "ok", "{ready:#}");
    assert_eq!(ready["database"], "ok", "{ready:#}");
    assert!(is_hex_64(&content_hash(&ready)), "{ready:#}");
}

// ---------------------------------------------------------------------------------------
// Outcomes: idempotent per case, corrections keep the history, arrays all or nothing.
// ---------------------------------------------------------------------------------------

fn record(app: &TestApp, body: &Value) -> Value {
    let reply = app.post("/api/v1/outcomes", &app.analytiker, body);
    assert_eq!(reply.status, 200, "{reply}");
    reply.json()
}

fn counts(summary: &Value) -> (u64, u64, u64) {
    let n = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key}: {summary:#}"))
    };
    (n("created"), n("replaced"), n("unchanged"))
}

#[test]
fn outcomes_are_created_unchanged_then_replaced_with_history() {
    let app = spawn_app();
    let first = outcome(CASE, "left_insurance");
    assert_eq!(counts(&record(&app, &first)), (1, 0, 0));
    assert_eq!(counts(&record(&app, &first)), (0, 0, 1));
    assert_eq!(app.count("outcome_history"), 0);

    let corrected = outcome(CASE, "returned_to_fk");
    let summary = record(&app, &corrected);
    assert_eq!(counts(&summary), (0, 1, 0));
    assert_eq!(summary["results"], json!(["replaced"]));

    let db = app.db();
    let current: (String, String) = db
        .query_row("SELECT outcome, recorded_by FROM outcomes", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("one outcome");
    assert_eq!(
        current,
        ("returned_to_fk".to_owned(), app.analytiker.name.to_owned())
    );
    let history: Vec<String> = db
        .prepare("SELECT outcome FROM outcome_history")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(history, ["left_insurance"]);
    let pseudonym: String = db
        .query_row("SELECT case_pseudonym FROM outcomes", [], |row| row.get(0))
        .expect("pseudonym");
    assert!(is_hex_64(&pseudonym), "{pseudonym}");
    drop(db);
    assert!(!contains_bytes(&app.database_bytes(), CASE.as_bytes()));

    // The same correction again changes nothing.
    assert_eq!(counts(&record(&app, &corrected)), (0, 0, 1));
    assert_eq!(app.count("outcome_history"), 1);
}

#[test]
fn outcome_pseudonym_joins_the_checks_of_the_same_case() {
    let app = spawn_app();
    stored_check(&app, &app.handlaggare, &flagged_profile(CASE));
    record(&app, &outcome(CASE, "left_insurance"));
    let joined: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM evaluations e JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym",
            [],
            |row| row.get(0),
        )
        .expect("join");
    assert_eq!(joined, 1);
}

#[test]
fn an_array_of_outcomes_is_stored_all_or_nothing() {
    let app = spawn_app();
    let three = json!([
        outcome("UTFALL-1", "left_insurance"),
        outcome("UTFALL-2", "returned_to_fk"),
        outcome("UTFALL-3", "left_insurance"),
    ]);
    let summary = record(&app, &three);
    assert_eq!(counts(&summary), (3, 0, 0));
    assert_eq!(summary["results"], json!(["created", "created", "created"]));
    assert_eq!(app.count("outcomes"), 3);

    let mut invalid = outcome("UTFALL-5", "left_insurance");
    invalid["outcome"] = json!("left");
    let mixed = json!([
        outcome("UTFALL-4", "left_insurance"),
        invalid,
        outcome("UTFALL-6", "returned_to_fk")
    ]);
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &mixed);
    assert_eq!(reply.first_error_field(), "[1].outcome", "{reply}");
    assert_eq!(
        app.count("outcomes"),
        3,
        "nothing of the refused array is stored"
    );

    // A later valid item after an invalid one, and a missing field.
    let mut missing = outcome("UTFALL-7", "left_insurance");
    missing.as_object_mut().expect("object").remove("ended_on");
    let reply = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &json!([
            outcome("UTFALL-8", "left_insurance"),
            outcome("UTFALL-9", "left_insurance"),
            missing
        ]),
    );
    assert!(reply.first_error_field().starts_with("[2]"), "{reply}");
    assert_eq!(app.count("outcomes"), 3);

    app.post("/api/v1/outcomes", &app.analytiker, &json!([]))
        .problem(422);
    assert_eq!(app.count("outcomes"), 3);
}

// ---------------------------------------------------------------------------------------
// Rule reload: all or nothing, the old rules keep running, every rule set is kept.
// ---------------------------------------------------------------------------------------

/// A script whose syntax error is on line [`BROKEN_LINE`].
const BROKEN_SCRIPT: &str = "// Trasig regel.\nlet a = 1;\nlet b = ;\na == b\n";
const BROKEN_LINE: u64 = 3;
/// The new rule's script, broken on line [`NEW_BROKEN_LINE`].
const NEW_BROKEN_SCRIPT: &str = "// Ny regel.\n// Rad två.\n// Rad tre.\nlet c = ;\n";
const NEW_BROKEN_LINE: u64 = 4;

#[test]
fn reload_refuses_a_broken_rule_set_and_swaps_in_a_fixed_one() {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let rules = app.get("/api/v1/rules", &app.policy);
    assert_eq!(rules.status, 200, "{rules}");
    let rules = rules.json();
    assert_eq!(
        rules["rules"].as_array().map(Vec::len),
        Some(8),
        "{rules:#}"
    );
    let old_hash = content_hash(&rules);
    assert!(is_hex_64(&old_hash), "{rules:#}");
    let check_hash = || {
        content_hash(&stored_check(
            &app,
            &app.handlaggare,
            &flagged_profile(CASE),
        ))
    };
    assert_eq!(check_hash(), old_hash);

    // Break one script and add a new rule whose script is broken too.
    let dir = &app.rules_dir;
    let manifest_path = dir.join("manifest.yaml");
    let original_manifest = std::fs::read_to_string(&manifest_path).expect("manifest");
    let tolk_path = dir.join("tolk_ej_bokad.rhai");
    let original_tolk = std::fs::read_to_string(&tolk_path).expect("script");
    std::fs::write(&tolk_path, BROKEN_SCRIPT).expect("break the script");
    std::fs::write(dir.join("ny_regel.rhai"), NEW_BROKEN_SCRIPT).expect("new script");
    std::fs::write(
        &manifest_path,
        format!(
            "{original_manifest}\n  - id: ny_regel\n    script: ny_regel.rhai\n    title: Ny regel\n    severity: info\n    grounds: policy\n    rationale: En ny regel.\n    sources:\n      - Test\n"
        ),
    )
    .expect("extend the manifest");

    let refused = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let body = refused.problem(422);
    let problems = body["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems: {refused}"));
    for (file, line) in [
        ("tolk_ej_bokad.rhai", BROKEN_LINE),
        ("ny_regel.rhai", NEW_BROKEN_LINE),
    ] {
        let problem = problems
            .iter()
            .find(|p| p["file"].as_str().is_some_and(|f| f.ends_with(file)))
            .unwrap_or_else(|| panic!("no problem in {file}: {refused}"));
        assert_eq!(problem["line"], line, "{problem:#}");
        assert!(problem["message"].is_string(), "{problem:#}");
    }

    // The old rules keep running.
    assert_eq!(check_hash(), old_hash);
    let still = app.get("/api/v1/rules", &app.policy).json();
    assert_eq!(content_hash(&still), old_hash);
    assert_eq!(still["rules"].as_array().map(Vec::len), Some(8));

    // Fix it, with one real change: a new title.
    std::fs::write(&tolk_path, &original_tolk).expect("restore the script");
    std::fs::remove_file(dir.join("ny_regel.rhai")).expect("remove the new script");
    const OLD_TITLE: &str = "title: Tolk behövs men ingen bokning är registrerad";
    const NEW_TITLE: &str = "Tolk behövs men ingen bokning till GK är registrerad";
    assert!(original_manifest.contains(OLD_TITLE));
    std::fs::write(
        &manifest_path,
        original_manifest
            .replace(OLD_TITLE, &format!("title: {NEW_TITLE}"))
            .replacen("version: \"2026.2\"", "version: \"2026.3\"", 1),
    )
    .expect("change a title under a new version");

    let reloaded = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert_eq!(reloaded.status, 200, "{reloaded}");
    let reloaded = reloaded.json();
    assert_eq!(reloaded["changed"], true, "{reloaded:#}");
    assert_eq!(reloaded["previous"]["content_hash"], old_hash.as_str());
    let new_hash = reloaded["active"]["content_hash"]
        .as_str()
        .expect("active.content_hash")
        .to_owned();
    assert!(is_hex_64(&new_hash) && new_hash != old_hash, "{reloaded:#}");

    let after = stored_check(&app, &app.handlaggare, &flagged_profile(CASE));
    assert_eq!(content_hash(&after), new_hash);
    let tolk = after["flags"]
        .as_array()
        .and_then(|flags| flags.iter().find(|f| f["rule_id"] == "tolk_ej_bokad"))
        .unwrap_or_else(|| panic!("no tolk_ej_bokad flag: {after:#}"));
    assert_eq!(tolk["title"], NEW_TITLE);
    let listed = app.get("/api/v1/rules", &app.handlaggare).json();
    assert_eq!(content_hash(&listed), new_hash);

    // Reloading the same text again changes nothing.
    let again = app
        .post("/api/v1/rules/reload", &app.policy, &json!({}))
        .json();
    assert_eq!(again["changed"], false, "{again:#}");

    let db = app.db();
    let hashes: BTreeSet<String> = db
        .prepare("SELECT content_hash FROM rule_sets")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(hashes, BTreeSet::from([old_hash.clone(), new_hash.clone()]));
    let used: Vec<String> = db
        .prepare("SELECT rule_set_hash FROM evaluations ORDER BY id")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(used, [old_hash.clone(), old_hash, new_hash]);
}

// ---------------------------------------------------------------------------------------
// Durability and shutdown.
// ---------------------------------------------------------------------------------------

/// A check answered with 201: evaluation id, case id and the flags as answered.
type Acknowledged = (i64, String, Vec<FlagRow>);

#[test]
fn acknowledged_checks_survive_sigkill() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    const KILL_AFTER: usize = 100;
    let mut app = spawn_app();
    let acknowledged = AtomicUsize::new(0);
    let stored: Mutex<Vec<Acknowledged>> = Mutex::new(Vec::new());
    let unexpected: Mutex<Vec<String>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let api = app.api.clone();
            let token = app.handlaggare.token.clone();
            let (acknowledged, stored, unexpected) = (&acknowledged, &stored, &unexpected);
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let case = format!("KRASCH-{thread}-{i}");
                    let profile = if i % 2 == 0 {
                        flagged_profile(&case)
                    } else {
                        clean_profile(&case)
                    };
                    let body = crate::helpers::Body::Json(&profile);
                    match api.try_request(
                        reqwest::Method::POST,
                        "/api/v1/checks",
                        token.as_str(),
                        body,
                    ) {
                        Ok(reply) if reply.status == 201 => {
                            let body = reply.json();
                            let flags = flag_rows(&body["flags"]);
                            stored
                                .lock()
                                .expect("lock")
                                .push((evaluation_id(&body), case, flags));
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(reply) => unexpected.lock().expect("lock").push(reply.to_string()),
                        // The service is gone.
                        Err(_) => break,
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
            assert!(
                Instant::now() < deadline,
                "too slow: {acknowledged:?} checks acknowledged"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed = app.kill();
        assert_eq!(killed.code, None, "SIGKILL ends the process: {killed}");
    });

    let unexpected = unexpected.into_inner().expect("lock");
    assert!(
        unexpected.is_empty(),
        "answers other than 201: {unexpected:#?}"
    );
    let stored = stored.into_inner().expect("lock");
    assert!(stored.len() >= KILL_AFTER, "{} acknowledged", stored.len());
    assert!(
        stored.len() < THREADS * PER_THREAD,
        "the kill came after every check; nothing was tested in flight"
    );

    app.restart();
    let db = app.db();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    for (id, _, flags) in &stored {
        let found: i64 = db
            .query_row(
                "SELECT count(*) FROM evaluations WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .expect("query");
        assert_eq!(
            found, 1,
            "acknowledged evaluation {id} is missing after SIGKILL"
        );
        assert_eq!(&stored_flags(&db, *id), flags, "flags of evaluation {id}");
    }
    assert!(app.count("evaluations") >= i64::try_from(stored.len()).expect("small"));

    // The restarted service uses the same tokens and key: a new check of an
    // acknowledged case gets a new id and the same pseudonym.
    let (old_id, case, _) = &stored[0];
    let again = evaluation_id(&stored_check(
        &app,
        &app.handlaggare,
        &flagged_profile(case),
    ));
    let max_acknowledged = stored.iter().map(|(id, _, _)| *id).max().expect("some");
    assert!(
        again > max_acknowledged,
        "id {again} reused (max acknowledged {max_acknowledged})"
    );
    let pseudonym = |id: i64| -> String {
        db.query_row(
            "SELECT case_pseudonym FROM evaluations WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .expect("pseudonym")
    };
    assert_eq!(pseudonym(again), pseudonym(*old_id));
}

#[test]
fn sigterm_shuts_down_cleanly_after_committing() {
    let mut app = spawn_app();
    let id = evaluation_id(&stored_check(
        &app,
        &app.handlaggare,
        &flagged_profile(CASE),
    ));
    let stopped = app.terminate(Duration::from_secs(5));
    assert_eq!(stopped.code, Some(0), "{stopped}");
    assert!(
        stopped.stdout.contains("gk-regler har stängts"),
        "{stopped}"
    );

    // Committed and folded back into the database file.
    let mut wal = app.database.clone().into_os_string();
    wal.push("-wal");
    let wal_len = std::fs::metadata(std::path::PathBuf::from(wal)).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "the WAL was not checkpointed");
    let db = app.db();
    assert_eq!(stored_flags(&db, id).len(), FLAGGED_RULES.len());
}

// ---------------------------------------------------------------------------------------
// Metrics, OpenAPI, logs.
// ---------------------------------------------------------------------------------------

/// The value of the sample `name` (with its labels, exactly as exposed), if present.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().expect("a number"))
    })
}

/// `/metrics` is open to anyone who can reach the port: it counts evaluations and
/// requests, never what a check found (read before and after a check whose time is
/// known, a count of flags per rule would tell that person's flags).
#[test]
fn metrics_count_evaluations_and_requests_and_no_flags() {
    let app = spawn_app();
    stored_check(&app, &app.handlaggare, &flagged_profile(CASE));
    let reply = app.get("/metrics", &NoToken);
    assert_eq!(reply.status, 200, "{reply}");
    let text = &reply.text;
    let evaluations = sample(text, "gk_regler_evaluations_total")
        .unwrap_or_else(|| panic!("no gk_regler_evaluations_total:\n{text}"));
    assert!(evaluations >= 1.0, "{text}");
    for rule in FLAGGED_RULES {
        assert!(!text.contains(rule), "{rule} in the metrics:\n{text}");
    }
    assert!(!text.contains("flags"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("gk_regler_http_requests_total{")
                && l.contains("route=\"/api/v1/checks\"")
                && l.contains("status=\"201\"")),
        "{text}"
    );
    assert!(!text.contains(CASE), "{text}");
}

#[test]
fn openapi_document_describes_checks_and_the_profile() {
    let app = spawn_app();
    let reply = app.get("/api/v1/openapi.json", &NoToken);
    assert_eq!(reply.status, 200, "{reply}");
    assert!(
        reply.header("content-type").starts_with("application/json"),
        "{reply}"
    );
    let doc = reply.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc:#}"
    );
    for path in [
        "/api/v1/checks",
        "/api/v1/checks/dry-run",
        "/api/v1/outcomes",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "no POST {path}");
    }
    let profile = &doc["components"]["schemas"]["Profile"];
    assert!(profile["properties"]["case_id"].is_object(), "{profile:#}");
    assert!(
        profile["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("case_id"))),
        "{profile:#}"
    );
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn logs_carry_no_personal_data() {
    const PERSONAL_CASE: &str = "PERSONNUMMER-19121212-1212";
    const DIAGNOSIS: &str = "F32.1";
    for format in ["text", "json"] {
        let mut app = spawn_app_with(AppOptions {
            env: vec![
                ("RUST_LOG", "debug".to_owned()),
                ("GK_REGLER_LOG_FORMAT", format.to_owned()),
            ],
            ..AppOptions::default()
        });
        let mut profile = flagged_profile(PERSONAL_CASE);
        set(&mut profile, "main_diagnosis", json!(DIAGNOSIS));
        let created = stored_check(&app, &app.handlaggare, &profile);
        let location = format!("/api/v1/checks/{}", evaluation_id(&created));
        assert_eq!(app.get(&location, &app.handlaggare).status, 200);
        assert_eq!(
            app.post("/api/v1/checks/dry-run", &app.handlaggare, &profile)
                .status,
            200
        );
        let case = json!({ "case_id": PERSONAL_CASE });
        assert_eq!(
            app.post("/api/v1/cases/checks", &app.handlaggare, &case)
                .status,
            200
        );
        record(&app, &outcome(PERSONAL_CASE, "left_insurance"));
        // Refusals too: a bad profile, a bad outcome, a forbidden check.
        let mut bad = profile.clone();
        set(&mut bad, "person.age", json!(PERSONAL_CASE));
        app.check(&app.handlaggare, &bad).problem(422);
        let mut bad_outcome = outcome(PERSONAL_CASE, "left_insurance");
        bad_outcome["outcome"] = json!(DIAGNOSIS);
        app.post("/api/v1/outcomes", &app.analytiker, &bad_outcome)
            .problem(422);
        app.check(&app.analytiker, &profile).problem(403);
        // A client's own request id is logged and answered only when it is a UUID: a
        // client that used the case id as its correlation id put it in every log line.
        // A path refused for want of a token is logged by its route, not as sent.
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("HTTP client");
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for (given, answered_as_given) in [(PERSONAL_CASE, false), (uuid, true)] {
            let reply = client
                .post(app.api.url("/api/v1/checks/dry-run"))
                .bearer_auth(&app.handlaggare.token)
                .header("x-request-id", given)
                .json(&profile)
                .send()
                .expect("an answer");
            assert_eq!(reply.status(), 200);
            let answered = reply.headers()["x-request-id"].to_str().expect("text");
            assert_eq!(answered == given, answered_as_given, "{answered}");
            assert_eq!(answered.len(), 36, "{answered}");
        }
        let refused = client
            .get(app.api.url(&format!("/api/v1/checks/{PERSONAL_CASE}")))
            .send()
            .expect("an answer");
        assert_eq!(refused.status(), 401);

        let stopped = app.terminate(Duration::from_secs(5));
        assert_eq!(stopped.code, Some(0), "{stopped}");
        let stderr = strip_ansi(&stopped.stderr);
        assert!(
            stderr.contains("check stored") && stderr.contains("DEBUG"),
            "{format}: expected debug logs of the check:\n{stderr}"
        );
        for output in [&stderr, &stopped.stderr, &stopped.stdout] {
            for secret in [PERSONAL_CASE, "19121212", DIAGNOSIS] {
                assert!(
                    !output.contains(secret),
                    "{format}: {secret} logged:\n{output}"
                );
            }
        }
    }
}
