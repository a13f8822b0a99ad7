//! The command line as users and programs meet it: `check`, `lint`, `test` and `schema`,
//! their exit codes (0 ok, 1 test failures or lint problems, 2 bad profile or arguments,
//! 3 a rule failed at run time, 4 rule set refused) and what they print.

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{
    arg, base_profile, check_default, check_json, default_rules, flag, flag_message, manifest,
    manifest_entry, remove, rule_set, rules_dir, run, run_command, set,
};

// ---------------------------------------------------------------------------------------
// Bad profiles: exit 2, the offending field named on stderr, nothing on stdout.
// ---------------------------------------------------------------------------------------

/// Runs `check -` on `profile_text` with the default rules and requires a refusal that
/// names `path` on stderr. Returns stderr.
fn assert_profile_refused(profile_text: &str, path: &str) -> String {
    let out = run(
        &["check", "-", "--rules", arg(&default_rules())],
        Some(profile_text),
    );
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        out.stdout, "",
        "a refused profile must print no result: {out}"
    );
    assert!(
        out.stderr.contains(path),
        "stderr should name the field {path}: {out}"
    );
    out.stderr
}

/// With standard output and error closed (`2>&1 | head -c 10`), the first message
/// written panicked, the panic hook's own message panicked again, and the command
/// aborted (134) whatever it had done.
#[test]
fn a_closed_output_does_not_end_a_command_half_way() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_gk-regler"))
        .args(["test", arg(&default_rules())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// clap's own words were English: `error: unexpected argument`, `Usage:`, `Print help`,
/// `[default: rules]`, `Possible values` with the code's descriptions of the formats.
#[test]
fn the_command_lines_own_words_are_swedish() {
    let help = run(&["audit", "--help"], None);
    assert_eq!(help.code, 0, "{help}");
    assert!(
        help.stdout.contains("Användning: gk-regler audit [VAL]"),
        "{help}"
    );
    let test_help = run(&["test", "--help"], None);
    assert!(
        test_help.stdout.contains("Regelmapp (standard: rules)"),
        "{test_help}"
    );
    let wrong = run(&["audit", "--fromm", "2024-01-01"], None);
    assert_eq!(wrong.code, 2, "{wrong}");
    assert!(
        wrong
            .stderr
            .starts_with("fel: okänt argument `--fromm`; menade du `--from`?"),
        "{wrong}"
    );
    let missing = run(&["token", "create"], None);
    assert_eq!(missing.code, 2, "{missing}");
    assert!(missing.stderr.contains("fel: saknas: --role"), "{missing}");
    for out in [&help, &test_help, &wrong, &missing] {
        for english in [
            "error:",
            "Usage:",
            "Print help",
            "[default",
            "Possible values",
            "Options:",
        ] {
            assert!(
                !out.stdout.contains(english) && !out.stderr.contains(english),
                "{english}: {out}"
            );
        }
    }
}

#[test]
fn unknown_field_is_refused_with_its_path() {
    let mut profile = base_profile();
    remove(&mut profile, "activity_level.documented");
    set(&mut profile, "activity_level.documentd", json!(true));
    assert_profile_refused(&profile.to_string(), "activity_level.documentd");
}

#[test]
fn wrong_type_is_refused_with_its_path() {
    let mut profile = base_profile();
    set(&mut profile, "person.age", json!("forty"));
    let stderr = assert_profile_refused(&profile.to_string(), "person.age");
    assert!(
        !stderr.contains("forty"),
        "the value is not echoed: {stderr}"
    );
}

#[test]
fn missing_case_id_is_refused() {
    let mut profile = base_profile();
    remove(&mut profile, "case_id");
    assert_profile_refused(&profile.to_string(), "case_id");
}

#[test]
fn invalid_dates_are_refused_with_their_path() {
    for (path, date) in [
        ("checked_on", "2024-02-30"),
        ("preparation.sassam_on", "2024-13-01"),
        ("gk.requested_on", "1 mars 2024"),
    ] {
        let mut profile = base_profile();
        set(&mut profile, path, json!(date));
        assert_profile_refused(&profile.to_string(), path);
    }
}

#[test]
fn malformed_json_is_refused() {
    let text = base_profile().to_string();
    let truncated = &text[..text.len() / 2];
    for bad in [truncated, "", "{\"case_id\": \"A\"} extra", "[1, 2]"] {
        let out = run(&["check", "-", "--rules", arg(&default_rules())], Some(bad));
        assert_eq!(out.code, 2, "input {bad:?}: {out}");
        assert_eq!(out.stdout, "", "input {bad:?}: {out}");
        assert!(!out.stderr.trim().is_empty(), "input {bad:?}: {out}");
    }
}

#[test]
fn invalid_case_id_and_diagnosis_are_not_echoed() {
    const SECRET: &str = "SECRET-XYZ";
    let cases = [
        ("main_diagnosis", json!(SECRET)),
        // A control character makes the case id invalid.
        ("case_id", json!(format!("{SECRET}\u{1}"))),
        // Longer than the 128 bytes a case id may have.
        ("case_id", json!(SECRET.repeat(20))),
    ];
    for (path, value) in cases {
        let mut profile = base_profile();
        set(&mut profile, path, value);
        let stderr = assert_profile_refused(&profile.to_string(), path);
        assert!(!stderr.contains(SECRET), "{path}: value echoed: {stderr}");
    }
}

/// Values that reach serde's own messages in backticks, and strings holding an escaped
/// quote, are not echoed on stderr either.
#[test]
fn invalid_values_are_never_echoed() {
    let cases = [
        // A personal identity number sent as a JSON number.
        ("case_id", json!(191_212_121_234_u64)),
        ("main_diagnosis", json!(191_212_121_234_u64)),
        ("stage", json!("SECRET-XYZ")),
        ("specialists", json!(["SECRET-XYZ"])),
        ("checked_on", json!("x\"SECRET-XYZ")),
    ];
    for (path, value) in cases {
        let mut profile = base_profile();
        set(&mut profile, path, value);
        let stderr = assert_profile_refused(&profile.to_string(), path);
        assert!(
            !stderr.contains("SECRET") && !stderr.contains("191212121234"),
            "{path}: value echoed: {stderr}"
        );
    }
}

#[test]
fn bad_arguments_and_unreadable_profile_exit_2() {
    let missing = tempfile::tempdir().expect("temporary directory");
    let missing_file = missing.path().join("finns-inte.json");
    for args in [
        vec!["check"],
        vec!["check", "-", "--no-such-option"],
        vec!["no-such-command"],
        vec![
            "check",
            arg(&missing_file),
            "--rules",
            arg(&default_rules()),
        ],
    ] {
        let out = run(&args, None);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert_eq!(out.stdout, "", "{args:?}: {out}");
    }
}

// ---------------------------------------------------------------------------------------
// `check`: input from a file or stdin, and the JSON contract.
// ---------------------------------------------------------------------------------------

#[test]
fn base_profile_raises_no_flag_under_the_default_rules() {
    let report = check_default(&base_profile());
    assert_eq!(report["flags"], json!([]), "{report:#}");
}

#[test]
fn check_reads_stdin_like_a_file() {
    let mut profile = base_profile();
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("profil.json");
    std::fs::write(&file, profile.to_string()).expect("write profile");
    let rules = default_rules();

    let from_file = run(
        &["check", arg(&file), "--rules", arg(&rules), "--json"],
        None,
    );
    let from_stdin = check_json(&profile, &rules);
    assert_eq!(from_stdin.code, 0, "{from_stdin}");
    assert_eq!(from_file.code, 0, "{from_file}");
    assert!(
        flag(&from_stdin.json(), "aktivitetsniva_saknas").is_some(),
        "{from_stdin}"
    );
    assert_eq!(from_stdin.json(), from_file.json());
}

#[test]
fn check_json_has_the_contract_fields() {
    // A profile that trips several rules, so every flag field is seen more than once.
    let mut profile = base_profile();
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    set(
        &mut profile,
        "known_needs.social_or_family_problems",
        json!(true),
    );
    let out = check_json(&profile, &default_rules());
    assert_eq!(out.code, 0, "{out}");
    let report = out.json();

    let hash = report["ruleset"]["content_hash"]
        .as_str()
        .expect("ruleset.content_hash is a string");
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "content_hash is lowercase hex: {hash}"
    );

    let flags = report["flags"].as_array().expect("flags is an array");
    assert!(flags.len() >= 2, "{report:#}");
    for flag in flags {
        for field in ["rule_id", "title", "message", "rationale"] {
            let text = flag[field].as_str();
            assert!(
                text.is_some_and(|t| !t.trim().is_empty()),
                "{field}: {flag:#}"
            );
        }
        assert!(
            ["info", "warning", "critical"].contains(&flag["severity"].as_str().unwrap_or("")),
            "{flag:#}"
        );
        let grounds = flag["grounds"].as_array().expect("grounds is an array");
        assert!(!grounds.is_empty(), "{flag:#}");
        for ground in grounds {
            assert!(
                ["empirical", "policy", "legal"].contains(&ground.as_str().unwrap_or("")),
                "{flag:#}"
            );
        }
        let sources = flag["sources"].as_array().expect("sources is an array");
        assert!(sources.iter().all(Value::is_string), "{flag:#}");
    }
    assert_eq!(report["errors"], json!([]), "{report:#}");
}

#[test]
fn content_hash_names_the_rule_text() {
    let profile = base_profile();
    let hash = |rules: &TempDir| {
        let out = check_json(&profile, rules.path());
        assert_eq!(out.code, 0, "{out}");
        out.json()["ruleset"]["content_hash"].clone()
    };
    let one = rule_set(&[("regel", "false")]);
    let same = rule_set(&[("regel", "false")]);
    let changed = rule_set(&[("regel", "false // ändrad")]);
    assert_eq!(hash(&one), hash(&same), "same text, same hash");
    assert_ne!(
        hash(&one),
        hash(&changed),
        "a script change changes the hash"
    );
}

// ---------------------------------------------------------------------------------------
// The three core rules of docs/rules.md, and the specialist rule's message, with the
// default rules.
// ---------------------------------------------------------------------------------------

const ACTIVITY: &str = "aktivitetsniva_saknas";
const MEETING: &str = "personligt_mote_saknas";
const SOCIAL: &str = "socialkonsulent_saknas";
const SPECIALIST: &str = "specialist_vid_horsel_eller_syn";

#[test]
fn activity_level_documented_with_hours_raises_no_flag() {
    for hours in [json!(10), json!(0), json!(12.5)] {
        let mut profile = base_profile();
        set(&mut profile, "activity_level.hours_per_week", hours.clone());
        let report = check_default(&profile);
        assert!(
            flag(&report, ACTIVITY).is_none(),
            "hours {hours}: {report:#}"
        );
    }
}

#[test]
fn activity_level_documented_without_hours_is_flagged() {
    let mut null_hours = base_profile();
    set(
        &mut null_hours,
        "activity_level.hours_per_week",
        json!(null),
    );
    let mut absent_hours = base_profile();
    remove(&mut absent_hours, "activity_level.hours_per_week");
    let mut not_documented = base_profile();
    set(
        &mut not_documented,
        "activity_level.documented",
        json!(false),
    );
    for profile in [null_hours, absent_hours, not_documented] {
        let report = check_default(&profile);
        let flag = flag(&report, ACTIVITY)
            .unwrap_or_else(|| panic!("expected {ACTIVITY}: {profile:#} gave {report:#}"));
        assert_eq!(flag["severity"], "warning", "before GK: {flag:#}");
    }
}

#[test]
fn activity_level_missing_at_gk_closing_is_critical() {
    let mut profile = base_profile();
    set(&mut profile, "stage", json!("gk_closing"));
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    let report = check_default(&profile);
    let flag = flag(&report, ACTIVITY).unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(flag["severity"], "critical", "{flag:#}");
    // Most severe first.
    assert_eq!(report["flags"][0]["rule_id"], ACTIVITY, "{report:#}");
}

#[test]
fn personal_meeting_one_dated_meeting_is_enough() {
    let fields = [
        "preparation.sassam_on",
        "preparation.reconciliation_meeting_on",
        "preparation.other_personal_meeting_on",
    ];
    for dated in fields {
        let mut profile = base_profile();
        for field in fields {
            set(&mut profile, field, json!(null));
        }
        set(&mut profile, dated, json!("2024-02-15"));
        let report = check_default(&profile);
        assert!(
            flag(&report, MEETING).is_none(),
            "{dated} dated: {report:#}"
        );
    }
}

/// The flag message of `personligt_mote_saknas` when the three meeting fields are all
/// set to null (`Some(null)`) or all removed (`None`).
fn meeting_message(value: Option<Value>) -> String {
    let mut profile = base_profile();
    for field in [
        "preparation.sassam_on",
        "preparation.reconciliation_meeting_on",
        "preparation.other_personal_meeting_on",
    ] {
        match &value {
            Some(value) => set(&mut profile, field, value.clone()),
            None => remove(&mut profile, field),
        }
    }
    let report = check_default(&profile);
    flag_message(&report, MEETING).to_owned()
}

#[test]
fn personal_meeting_all_null_is_flagged_as_not_held() {
    let message = meeting_message(Some(json!(null)));
    assert!(
        !message.to_lowercase().contains("uppgift saknas"),
        "null means no meeting was held, not that it is unknown: {message}"
    );
}

#[test]
fn personal_meeting_all_absent_says_the_information_is_missing() {
    let absent = meeting_message(None);
    assert!(absent.contains("Uppgift saknas"), "{absent}");
    assert_ne!(absent, meeting_message(Some(json!(null))));
}

#[test]
fn personal_meeting_partly_unknown_says_what_is_known_and_what_is_missing() {
    let mut profile = base_profile();
    set(&mut profile, "preparation.sassam_on", json!(null));
    remove(&mut profile, "preparation.reconciliation_meeting_on");
    remove(&mut profile, "preparation.other_personal_meeting_on");
    let report = check_default(&profile);
    let message = flag_message(&report, MEETING);
    assert!(
        message.starts_with(
            "Inget personligt möte före GK är registrerat: SASSAM-kartläggning har inte skett, \
             och uppgift saknas om avstämningsmöte och annat personligt möte."
        ),
        "{message}"
    );
    assert!(!message.contains("har hållits före GK"), "{message}");
    let title = flag(&report, MEETING).expect("flag")["title"].clone();
    assert_eq!(title, "Personligt möte före GK är inte registrerat");
}

#[test]
fn interpreter_booking_unknown_is_not_reported_as_not_booked() {
    let mut profile = base_profile();
    set(&mut profile, "known_needs.interpreter_needed", json!(true));
    remove(&mut profile, "gk.interpreter_booked");
    let message = flag_message(&check_default(&profile), "tolk_ej_bokad").to_owned();
    assert_eq!(
        message,
        "Personen behöver tolk, men uppgift saknas om tolk är bokad till GK. \
         Se till att tolk bokas till GK-mötet."
    );
    set(&mut profile, "gk.interpreter_booked", json!(false));
    let not_booked = flag_message(&check_default(&profile), "tolk_ej_bokad").to_owned();
    assert!(not_booked.contains("ingen tolk är bokad"), "{not_booked}");
}

#[test]
fn first_meeting_unknown_is_not_reported_as_not_booked() {
    let mut profile = base_profile();
    set(&mut profile, "checked_on", json!("2024-03-23"));
    set(&mut profile, "gk.requested_on", json!("2024-03-01"));
    remove(&mut profile, "gk.first_meeting_on");
    let message = flag_message(&check_default(&profile), "forsta_mote_efter_tre_veckor").to_owned();
    assert!(
        message.starts_with(
            "Begäran om GK skickades den 2024-03-01, 22 dagar före kontrollen, och uppgift \
             saknas om ett första GK-möte är bokat."
        ),
        "{message}"
    );
    assert!(!message.contains("Inget GK-möte är bokat"), "{message}");
    set(&mut profile, "gk.first_meeting_on", json!(null));
    let none = flag_message(&check_default(&profile), "forsta_mote_efter_tre_veckor").to_owned();
    assert!(none.contains("inget första GK-möte är bokat"), "{none}");
}

#[test]
fn specialist_message_does_not_say_no_specialist_when_another_is_engaged() {
    let mut profile = base_profile();
    set(&mut profile, "known_needs.hearing_impairment", json!(true));
    set(
        &mut profile,
        "specialists",
        json!(["vision_specialist", "psychologist"]),
    );
    let message = flag_message(&check_default(&profile), SPECIALIST).to_owned();
    assert!(!message.contains("Ingen specialist"), "{message}");
    assert!(
        message.starts_with(
            "Personen har en känd hörselnedsättning, men ingen dövkonsulent eller audionom \
             från Arbetsförmedlingen deltar eller är planerad."
        ),
        "{message}"
    );
}

#[test]
fn social_problems_without_social_worker_are_flagged() {
    let mut other_specialist = base_profile();
    set(
        &mut other_specialist,
        "known_needs.social_or_family_problems",
        json!(true),
    );
    set(
        &mut other_specialist,
        "specialists",
        json!(["psychologist", "occupational_therapist"]),
    );
    // A missing list is an empty list.
    let mut no_list = other_specialist.clone();
    remove(&mut no_list, "specialists");
    for profile in [other_specialist, no_list] {
        let report = check_default(&profile);
        let flag = flag(&report, SOCIAL).unwrap_or_else(|| panic!("{profile:#} gave {report:#}"));
        assert_eq!(flag["severity"], "warning", "{flag:#}");
    }
}

#[test]
fn social_problems_with_social_worker_raise_no_flag() {
    let mut profile = base_profile();
    set(
        &mut profile,
        "known_needs.social_or_family_problems",
        json!(true),
    );
    set(
        &mut profile,
        "specialists",
        json!(["occupational_therapist", "social_worker"]),
    );
    let report = check_default(&profile);
    assert!(flag(&report, SOCIAL).is_none(), "{report:#}");
}

#[test]
fn unknown_social_need_raises_no_flag() {
    let mut profile = base_profile();
    remove(&mut profile, "known_needs.social_or_family_problems");
    set(&mut profile, "specialists", json!([]));
    let report = check_default(&profile);
    assert!(flag(&report, SOCIAL).is_none(), "{report:#}");
}

#[test]
fn specialist_message_names_the_missing_specialist() {
    // (hearing, vision, specialists, named in the message, not named)
    let cases = [
        (true, false, json!([]), "dövkonsulent", "synspecialist"),
        (
            false,
            true,
            json!(["deaf_counsellor"]),
            "synspecialist",
            "dövkonsulent",
        ),
        (
            true,
            true,
            json!(["audiologist"]),
            "synspecialist",
            "dövkonsulent",
        ),
        (
            true,
            true,
            json!(["vision_specialist"]),
            "dövkonsulent",
            "synspecialist",
        ),
    ];
    for (hearing, vision, specialists, named, not_named) in cases {
        let mut profile = base_profile();
        set(
            &mut profile,
            "known_needs.hearing_impairment",
            json!(hearing),
        );
        set(&mut profile, "known_needs.vision_impairment", json!(vision));
        set(&mut profile, "specialists", specialists.clone());
        let report = check_default(&profile);
        let message = flag_message(&report, SPECIALIST);
        assert!(
            message.contains(named) && !message.contains(not_named),
            "hearing {hearing}, vision {vision}, {specialists}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The default `checked_on`: today in Sweden, whatever the machine's time zone.
// ---------------------------------------------------------------------------------------

/// Today in Europe/Stockholm by jiff's bundled database, independent of the binary.
fn stockholm_today() -> String {
    let zone = jiff::tz::TimeZoneDatabase::bundled()
        .get("Europe/Stockholm")
        .expect("the bundled database has Europe/Stockholm");
    jiff::Timestamp::now().to_zoned(zone).date().to_string()
}

/// Run under machine zones west and east of Sweden (at most times of day one of them is
/// on another date than Stockholm), and once with an empty time-zone database (TZDIR),
/// as on a machine without /usr/share/zoneinfo.
#[test]
fn default_checked_on_is_today_in_stockholm_whatever_the_machine_zone() {
    let empty_tzdb = TempDir::new().expect("temp dir");
    let mut profile = base_profile();
    remove(&mut profile, "checked_on");
    let rules = default_rules();
    for (tz, tzdir) in [
        ("America/Los_Angeles", None),
        ("Pacific/Kiritimati", None),
        ("Pacific/Kiritimati", Some(empty_tzdb.path())),
    ] {
        let before = stockholm_today();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gk-regler"));
        command
            .args(["check", "--json", "-", "--rules", arg(&rules)])
            .env("TZ", tz);
        if let Some(dir) = tzdir {
            command.env("TZDIR", dir);
        }
        let out = run_command(command, "check --json", Some(&profile.to_string()));
        let after = stockholm_today();
        assert_eq!(out.code, 0, "{out}");
        let checked_on = out.json()["checked_on"].as_str().map(str::to_owned);
        // A check that straddles midnight may take either date.
        assert!(
            checked_on.as_deref() == Some(before.as_str())
                || checked_on.as_deref() == Some(after.as_str()),
            "TZ={tz} TZDIR={tzdir:?}: checked_on {checked_on:?}, Stockholm {before}/{after}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Human output: Swedish, with the reason and the source of every flag.
// ---------------------------------------------------------------------------------------

#[test]
fn human_output_explains_a_flag_in_swedish() {
    let mut profile = base_profile();
    set(&mut profile, "activity_level.hours_per_week", json!(null));
    let rules = default_rules();
    let json_run = check_json(&profile, &rules);
    let flag = flag(&json_run.json(), ACTIVITY)
        .unwrap_or_else(|| panic!("{json_run}"))
        .clone();

    let out = run(
        &["check", "-", "--rules", arg(&rules)],
        Some(&profile.to_string()),
    );
    assert_eq!(out.code, 0, "{out}");
    for text in [&flag["title"], &flag["message"]] {
        let text = text.as_str().expect("string");
        assert!(out.stdout.contains(text), "missing {text:?}: {out}");
    }
    assert!(out.stdout.contains("Varför:"), "{out}");
    let first_source = flag["sources"][0].as_str().expect("the rule has a source");
    assert!(
        out.stdout
            .lines()
            .any(|line| line.contains("Källa:") && line.contains(first_source)),
        "{out}"
    );
}

#[test]
fn human_output_for_a_clean_profile_says_no_flags() {
    let out = run(
        &["check", "-", "--rules", arg(&default_rules())],
        Some(&base_profile().to_string()),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Inga flaggor"), "{out}");
    assert!(!out.stdout.contains("Varför:"), "{out}");
    // It says what was checked, not that the case has nothing to act on.
    assert!(
        out.stdout.contains(
            "Inga flaggor: inget att uppmärksamma bland de 8 punkter som reglerna kontrollerar."
        ),
        "{out}"
    );
    assert!(!out.stdout.contains("åtgärda"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Broken rule sets: `lint` lists every problem with its position; `check` refuses the
// whole set and prints no result.
// ---------------------------------------------------------------------------------------

/// A script whose third line, [`BAD_LINE`], has a `let` without an expression: the
/// parser stops at its `;`.
const SYNTAX_ERROR_SCRIPT: &str = "// Trasig regel.\nlet a = 1;\nlet b = ;\na == b\n";
const BAD_LINE: &str = "let b = ;";
const SYNTAX_ERROR_LINE: usize = 3;

/// The 1-based column of the `;` the parser stops at.
fn syntax_error_column() -> usize {
    assert_eq!(
        SYNTAX_ERROR_SCRIPT.lines().nth(SYNTAX_ERROR_LINE - 1),
        Some(BAD_LINE)
    );
    BAD_LINE.find(';').expect("a ;") + 1
}

/// A rule set with a good rule that always flags (a half-loaded set would show it), a
/// script with a syntax error, a rule whose script file is missing and, when
/// `bad_severity`, a rule with a severity that does not exist.
fn broken_rule_set(bad_severity: bool) -> (TempDir, String) {
    let severity = if bad_severity { "severe" } else { "warning" };
    let manifest_text = format!(
        "name: trasig\nversion: \"1\"\nrules:\n{}{}  - id: saknad_fil\n    script: finns_inte.rhai\n    title: Saknad fil\n    severity: warning\n    grounds: policy\n    rationale: r\n  - id: fel_niva\n    script: fel_niva.rhai\n    title: Fel nivå\n    severity: {severity}\n    grounds: policy\n    rationale: r\n",
        manifest_entry("flaggar"),
        manifest_entry("syntaxfel"),
    );
    let dir = rules_dir(
        &manifest_text,
        &[
            ("flaggar.rhai", "true"),
            ("syntaxfel.rhai", SYNTAX_ERROR_SCRIPT),
            ("fel_niva.rhai", "true"),
        ],
    );
    (dir, manifest_text)
}

/// The 1-based line of the only line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle))
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} in {text}");
    lines[0]
}

/// The 1-based column where `needle` starts on its line of `text`.
fn column_of(text: &str, needle: &str) -> usize {
    let line = text
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} in {text}"));
    line.find(needle).expect("found above") + 1
}

/// The problem line of `output` that starts with `prefix`.
fn problem<'a>(output: &'a str, prefix: &str) -> Option<&'a str> {
    output.lines().find(|line| line.starts_with(prefix))
}

/// Where each expected problem of [`broken_rule_set`] is: `(file:line:col:, file:line:)`
/// prefixes for the syntax error and the missing script.
fn script_problem_prefixes(dir: &TempDir, manifest_text: &str) -> (String, String) {
    let syntax = format!(
        "{}:{SYNTAX_ERROR_LINE}:{}:",
        dir.path().join("syntaxfel.rhai").display(),
        syntax_error_column(),
    );
    let missing = format!(
        "{}:{}:",
        dir.path().join("manifest.yaml").display(),
        line_of(manifest_text, "script: finns_inte.rhai"),
    );
    (syntax, missing)
}

#[test]
fn lint_lists_script_and_manifest_problems_with_positions() {
    let (dir, manifest_text) = broken_rule_set(false);
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let (syntax, missing) = script_problem_prefixes(&dir, &manifest_text);
    assert!(
        problem(&out.stderr, &syntax).is_some(),
        "expected {syntax}: {out}"
    );
    let missing_line =
        problem(&out.stderr, &missing).unwrap_or_else(|| panic!("expected {missing}: {out}"));
    assert!(missing_line.contains("finns_inte.rhai"), "{missing_line}");
}

#[test]
fn lint_places_an_invalid_severity() {
    let manifest_text = manifest(&[manifest_entry("regel")]).replace("warning", "severe");
    let dir = rules_dir(&manifest_text, &[("regel.rhai", "true")]);
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let prefix = format!(
        "{}:{}:{}:",
        dir.path().join("manifest.yaml").display(),
        line_of(&manifest_text, "severity: severe"),
        column_of(&manifest_text, "severe"),
    );
    let line = problem(&out.stderr, &prefix).unwrap_or_else(|| panic!("expected {prefix}: {out}"));
    assert!(line.contains("severe"), "{line}");
}

/// Regression: a wrong value in one manifest entry used to hide every other problem.
#[test]
fn lint_lists_every_problem_of_a_broken_rule_set() {
    let (dir, manifest_text) = broken_rule_set(true);
    let out = run(&["lint", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let (syntax, missing) = script_problem_prefixes(&dir, &manifest_text);
    let severity = format!(
        "{}:{}:",
        dir.path().join("manifest.yaml").display(),
        line_of(&manifest_text, "severity: severe"),
    );
    for prefix in [syntax, missing, severity] {
        assert!(
            problem(&out.stderr, &prefix).is_some(),
            "expected {prefix}: {out}"
        );
    }
}

#[test]
fn lint_json_lists_problems_with_file_line_column_message() {
    let (dir, manifest_text) = broken_rule_set(false);
    let out = run(&["lint", arg(dir.path()), "--json"], None);
    assert_eq!(out.code, 1, "{out}");
    let problems = out.json();
    let problems = problems.as_array().expect("a JSON array");
    assert_eq!(problems.len(), 2, "{out}");
    for problem in problems {
        assert!(problem["file"].is_string(), "{problem:#}");
        assert!(problem["line"].is_u64(), "{problem:#}");
        assert!(
            problem["column"].is_u64() || problem["column"].is_null(),
            "{problem:#}"
        );
        assert!(problem["message"].is_string(), "{problem:#}");
    }
    let find = |file: &str| {
        let path = dir.path().join(file).display().to_string();
        problems
            .iter()
            .find(|p| p["file"] == path.as_str())
            .unwrap_or_else(|| panic!("no problem in {path}: {out}"))
    };
    let syntax = find("syntaxfel.rhai");
    assert_eq!(syntax["line"], SYNTAX_ERROR_LINE, "{syntax:#}");
    assert_eq!(syntax["column"], syntax_error_column(), "{syntax:#}");
    let missing = find("manifest.yaml");
    assert_eq!(
        missing["line"],
        line_of(&manifest_text, "script: finns_inte.rhai"),
        "{missing:#}"
    );
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("finns_inte.rhai")),
        "{missing:#}"
    );
}

#[test]
fn check_refuses_a_broken_rule_set_and_prints_no_result() {
    for bad_severity in [false, true] {
        let (dir, _) = broken_rule_set(bad_severity);
        for extra in [None, Some("--json")] {
            let mut args = vec!["check", "-", "--rules", arg(dir.path())];
            args.extend(extra);
            let out = run(&args, Some(&base_profile().to_string()));
            assert_eq!(out.code, 4, "{out}");
            assert_eq!(out.stdout, "", "never half-loaded: {out}");
            assert!(!out.stderr.trim().is_empty(), "{out}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile scripts: each fails alone, as a reported error, never as "no flag".
// ---------------------------------------------------------------------------------------

/// Checks the base profile against a rule set of `script` (as rule `fientlig`) followed
/// by a rule that always flags; requires exit 3, the other rule's flag, and `fientlig`
/// as the only error, of `kind`. Returns that error.
fn assert_fails_alone(script: &str, profile: &Value, kind: &str) -> Value {
    let rules = rule_set(&[("fientlig", script), ("flaggar", "true")]);
    let out = check_json(profile, rules.path());
    assert_eq!(out.code, 3, "{script}: {out}");
    let report = out.json();
    assert!(flag(&report, "flaggar").is_some(), "{script}: {out}");
    assert!(flag(&report, "fientlig").is_none(), "{script}: {out}");
    let errors = report["errors"].as_array().expect("errors is an array");
    assert_eq!(errors.len(), 1, "{script}: {out}");
    assert_eq!(errors[0]["rule_id"], "fientlig", "{script}: {out}");
    assert_eq!(errors[0]["kind"], kind, "{script}: {out}");
    assert_eq!(errors[0]["script"], "fientlig.rhai", "{script}: {out}");
    errors[0].clone()
}

#[test]
fn a_rule_comparing_values_nested_as_deep_as_the_limits_allow_does_not_end_the_command() {
    // Lists nested 999 deep, then lists and maps in turn: 1,099 levels, within the size
    // limits (1,000 list items and 100 map entries, nested ones counted). Rhai compares
    // them recursively; an unoptimised build needs more stack for it than a process's
    // main thread usually has.
    let script = "let a = []; for i in 0..900 { a = [a]; } for i in 0..99 { a = #{x: [a]}; }\n\
                  let b = []; for i in 0..900 { b = [b]; } for i in 0..99 { b = #{x: [b]}; }\n\
                  a == b && `${a}`.len() > 0\n";
    let rules = rule_set(&[("djup", script), ("flaggar", "true")]);
    let out = check_json(&base_profile(), rules.path());
    // Flagged, or in an unoptimised build stopped at the check's time limit: either way
    // the rule ran and the command answered.
    assert!(out.code == 0 || out.code == 3, "{out}");
    let report = out.json();
    assert!(flag(&report, "flaggar").is_some(), "{out}");
    let named = |list: &str| {
        report[list]
            .as_array()
            .is_some_and(|items| items.iter().any(|f| f["rule_id"] == "djup"))
    };
    assert!(named("flags") || named("errors"), "{out}");
}

#[test]
fn endless_loop_fails_alone_and_fast() {
    let rules = rule_set(&[("loop", "loop {}"), ("flaggar", "true")]);
    let out = check_json(&base_profile(), rules.path());
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    assert_eq!(out.code, 3, "{out}");
    let report = out.json();
    assert!(flag(&report, "flaggar").is_some(), "{out}");
    let errors = report["errors"].as_array().expect("errors is an array");
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["rule_id"], "loop", "{out}");
    assert_eq!(errors[0]["kind"], "too_many_operations", "{out}");
}

#[test]
fn endless_loop_is_reported_in_human_output() {
    let rules = rule_set(&[("loop", "loop {}"), ("flaggar", "true")]);
    let out = run(
        &["check", "-", "--rules", arg(rules.path())],
        Some(&base_profile().to_string()),
    );
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout.contains("Regel flaggar"),
        "the flag is shown: {out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|line| line.contains("loop") && line.contains("loop.rhai:1")),
        "the failing rule and where it failed are shown: {out}"
    );
}

#[test]
fn runaway_string_growth_fails_alone() {
    assert_fails_alone(
        "let s = \"x\";\nloop { s += s; }",
        &base_profile(),
        "limit_exceeded",
    );
}

#[test]
fn unbounded_recursion_fails_alone() {
    assert_fails_alone(
        "fn f(n) { f(n + 1) }\nf(0)",
        &base_profile(),
        "limit_exceeded",
    );
}

#[test]
fn division_by_zero_fails_alone() {
    let error = assert_fails_alone(
        "let noll = profile.person.age - 45;\n100 / noll > 1",
        &base_profile(),
        "runtime",
    );
    assert_eq!(error["line"], 2, "{error:#}");
}

#[test]
fn comparing_an_absent_field_is_an_error_not_no_flag() {
    const SCRIPT: &str = "profile.gk.first_meeting_on > date(\"2024-01-01\")";
    // With the field present the comparison works (2024-03-12 is later): a flag.
    let present = rule_set(&[("jamfor", SCRIPT)]);
    let out = check_json(&base_profile(), present.path());
    assert_eq!(out.code, 0, "{out}");
    assert!(flag(&out.json(), "jamfor").is_some(), "{out}");

    let mut profile = base_profile();
    remove(&mut profile, "gk.first_meeting_on");
    let error = assert_fails_alone(SCRIPT, &profile, "runtime");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("gk.first_meeting_on")),
        "the error names the absent field: {error:#}"
    );
}

#[test]
fn import_is_refused_when_the_rule_set_loads() {
    let rules = rule_set(&[("importerar", "import \"x\";\ntrue"), ("flaggar", "true")]);
    let out = run(&["lint", arg(rules.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let prefix = format!("{}:1:", rules.path().join("importerar.rhai").display());
    assert!(
        problem(&out.stderr, &prefix).is_some(),
        "expected {prefix}: {out}"
    );

    let out = check_json(&base_profile(), rules.path());
    assert_eq!(out.code, 4, "{out}");
    assert_eq!(out.stdout, "", "{out}");
}

// ---------------------------------------------------------------------------------------
// `test` and `lint` on rule sets with their YAML rule tests.
// ---------------------------------------------------------------------------------------

#[test]
fn shipped_rule_tests_pass() {
    let out = run(&["test", arg(&default_rules())], None);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn lint_accepts_the_default_rules() {
    let out = run(&["lint", arg(&default_rules())], None);
    assert_eq!(out.code, 0, "{out}");
    let out = run(&["lint", arg(&default_rules()), "--json"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), json!([]), "{out}");
}

/// A one-rule set (`tolk`: flags when an interpreter is needed) with rule tests over
/// the base profile: one case that holds and one whose `flagged` is `wrong_case_expects`.
fn rule_set_with_tests(wrong_case_expects: bool) -> TempDir {
    let base = serde_json::to_string_pretty(&base_profile()).expect("JSON");
    let tests = format!(
        "rule: tolk\ncases:\n  - name: tolk behövs ger flagga\n    profile:\n      known_needs:\n        interpreter_needed: true\n    expect:\n      flagged: true\n  - name: avsiktligt fel förväntan\n    profile:\n      known_needs:\n        interpreter_needed: true\n    expect:\n      flagged: {wrong_case_expects}\n"
    );
    rules_dir(
        &manifest(&[manifest_entry("tolk")]),
        &[
            (
                "tolk.rhai",
                "is_true(profile.known_needs.interpreter_needed)",
            ),
            // JSON is YAML.
            ("tests/base-profile.yaml", &base),
            ("tests/tolk.yaml", &tests),
        ],
    )
}

#[test]
fn rule_test_with_a_wrong_expectation_fails_and_says_why() {
    // Control: with the right expectation the same suite passes.
    let right = rule_set_with_tests(true);
    let out = run(&["test", arg(right.path())], None);
    assert_eq!(out.code, 0, "{out}");

    let wrong = rule_set_with_tests(false);
    let out = run(&["test", arg(wrong.path())], None);
    assert_eq!(out.code, 1, "{out}");
    let (failed, rest) = out
        .stdout
        .split_once("avsiktligt fel förväntan")
        .unwrap_or_else(|| panic!("the failing case is named: {out}"));
    let failed_line = failed.lines().last().unwrap_or("");
    assert!(!failed_line.starts_with("ok"), "{out}");
    assert!(rest.contains("förväntat"), "{out}");
    assert!(rest.contains("fick"), "{out}");
    let passing = out
        .stdout
        .lines()
        .find(|line| line.contains("tolk behövs ger flagga"))
        .unwrap_or_else(|| panic!("the passing case is listed: {out}"));
    assert!(passing.starts_with("ok"), "{out}");
}

/// A rule that failed at run time said Rhai's English words and not where: the
/// policy officer had to find the line alone.
#[test]
fn a_rule_failing_in_a_test_says_where_in_its_script_and_why_in_swedish() {
    let dir = rule_set_with_tests(true);
    std::fs::write(
        dir.path().join("tolk.rhai"),
        "let behov = [profile.known_needs.interpreter_needed];\nis_true(behov[2])\n",
    )
    .expect("script");
    let out = run(&["test", arg(dir.path())], None);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(
            "fick:      fel i tolk.rhai:2:15: listan har 1 element, så index 2 finns inte"
        ),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// `schema`
// ---------------------------------------------------------------------------------------

#[test]
fn schema_describes_a_closed_profile() {
    let out = run(&["schema"], None);
    assert_eq!(out.code, 0, "{out}");
    let schema = out.json();
    let properties = schema["properties"].as_object().expect("properties");
    assert!(properties.contains_key("case_id"), "{out}");
    assert!(properties.contains_key("activity_level"), "{out}");
    assert!(
        schema["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("case_id"))),
        "{out}"
    );
    assert_eq!(schema["additionalProperties"], json!(false), "{out}");
    // Nested sections are closed too: follow activity_level's reference.
    let reference = properties["activity_level"]["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/"))
        .expect("activity_level is a local reference");
    let section = schema
        .pointer(&format!("/{reference}"))
        .unwrap_or_else(|| panic!("{reference} resolves: {out}"));
    assert_eq!(section["additionalProperties"], json!(false), "{section:#}");
    assert!(
        section["properties"].get("hours_per_week").is_some(),
        "{section:#}"
    );
}
