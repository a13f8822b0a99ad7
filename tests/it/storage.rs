//! Storage a deployment can trust, against the real binary: owner-only database files, a
//! database deleted or replaced under the running service, database commands that refuse
//! a mistyped path.
//! RELIABILITY.md ("Defects found by hostile testing") names each test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, NoToken, Output, TestApp, base_profile, run_command, set, spawn_app, spawn_app_with,
};

/// The permission bits of `path` (without following a final symbolic link).
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `path` with `suffix` appended to its file name (`x.sqlite3` → `x.sqlite3-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn profile(case_id: &str) -> Value {
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!(case_id));
    profile
}

/// Stores a check of `case_id` and returns its id.
fn stored(app: &TestApp, case_id: &str) -> i64 {
    let reply = app.check(&app.handlaggare, &profile(case_id));
    assert_eq!(reply.status, 201, "{reply}");
    reply.json()["evaluation_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no evaluation_id: {reply}"))
}

#[test]
fn database_files_and_their_folder_are_owner_only() {
    let place = tempfile::tempdir().expect("temporary directory");
    let folder = place.path().join("db");
    let database = folder.join("gk-regler.sqlite3");
    let mut app = spawn_app_with(AppOptions {
        database: Some(database.clone()),
        ..AppOptions::default()
    });
    stored(&app, "AGARE-1");
    for path in [
        database.clone(),
        with_suffix(&database, "-wal"),
        with_suffix(&database, "-shm"),
        app.dir.path().join("pseudonym.key"),
        app.dir.path().join("tokens.yaml"),
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&folder), 0o700, "the folder the service made");

    // A database made readable by others earlier is made owner-only at the next start.
    app.terminate(Duration::from_secs(20));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    app.restart();
    stored(&app, "AGARE-2");
    for suffix in ["", "-wal", "-shm"] {
        let path = with_suffix(&database, suffix);
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// Checks that the service refuses writes and says it is not ready, and that nothing
/// more was acknowledged.
fn assert_refuses_writes(app: &TestApp, what: &str) {
    let ready = app.get("/health/ready", &NoToken);
    assert_eq!(ready.status, 503, "{what}: {ready}");
    let body = ready.json();
    assert_eq!(body["status"], "unavailable", "{what}: {body:#}");
    assert_ne!(body["database"], "ok", "{what}: {body:#}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Databasfilen"), "{what}: {body:#}");

    for case in ["EFTER-1", "EFTER-2"] {
        let reply = app.check(&app.handlaggare, &profile(case));
        assert_eq!(
            reply.status, 503,
            "{what}: a check was acknowledged: {reply}"
        );
        reply.problem(503);
    }
    let reply = app.post(
        "/api/v1/outcomes",
        &app.analytiker,
        &json!({"case_id": "EFTER-1", "ended_on": "2024-05-01", "outcome": "left_insurance", "reasons": ["work_supported"]}),
    );
    assert_eq!(
        reply.status, 503,
        "{what}: an outcome was acknowledged: {reply}"
    );
    // Reading the database back answers 503 too: the path no longer leads to the
    // database the service writes.
    let reply = app.post(
        "/api/v1/cases/checks",
        &app.handlaggare,
        &json!({"case_id": "FORE-1"}),
    );
    assert_eq!(reply.status, 503, "{what}: {reply}");
}

#[test]
fn a_deleted_database_is_noticed_and_nothing_more_is_acknowledged() {
    let mut app = spawn_app();
    stored(&app, "FORE-1");
    std::fs::remove_file(&app.database).expect("delete the database");

    assert_refuses_writes(&app, "after deleting the database");
    assert!(
        !app.database.exists(),
        "the service must not recreate a database behind its own back"
    );
    let stopped = app.terminate(Duration::from_secs(20));
    assert!(
        stopped.stderr.contains("ERROR") && stopped.stderr.contains("database file"),
        "an error in the log: {stopped}"
    );
    for secret in ["FORE-1", "EFTER-1", "EFTER-2"] {
        assert!(
            !stopped.stderr.contains(secret),
            "{secret} in the log: {stopped}"
        );
    }
}

#[test]
fn a_replaced_database_is_noticed_and_nothing_more_is_acknowledged() {
    let app = spawn_app();
    stored(&app, "FORE-1");
    // Another file under the same name: a copy (same content, another file), moved
    // into place as a restore by hand would.
    let copy = app.dir.path().join("copy.sqlite3");
    std::fs::copy(&app.database, &copy).expect("copy the database");
    std::fs::rename(&copy, &app.database).expect("replace the database");

    assert_refuses_writes(&app, "after replacing the database");
}

/// `gk-regler ARGS` with its files in `dir` and the database at `database`.
fn cli_on(dir: &Path, database: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gk-regler"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GK_REGLER_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .current_dir(dir)
        .env("GK_REGLER_DATABASE", database)
        .env("GK_REGLER_RULES", crate::helpers::default_rules())
        .env("GK_REGLER_TOKENS_FILE", dir.join("tokens.yaml"))
        .env("GK_REGLER_PSEUDONYM_KEY_FILE", dir.join("pseudonym.key"));
    run_command(command, &args.join(" "), None)
}

#[test]
fn database_commands_refuse_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("felstavad").join("gk-regler.sqlite3");
    let outcomes = dir.path().join("utfall.jsonl");
    std::fs::write(
        &outcomes,
        r#"{"case_id": "X-1", "ended_on": "2024-05-01", "outcome": "left_insurance", "reasons": ["work_supported"]}"#,
    )
    .expect("write outcomes");
    let rules = crate::helpers::default_rules();
    let commands: Vec<Vec<&str>> = vec![
        vec!["audit", "--format", "json"],
        vec!["replay", "--rules", crate::helpers::arg(&rules)],
        vec!["purge", "--older-than", "2y"],
        vec!["import-outcomes", crate::helpers::arg(&outcomes)],
    ];
    for args in commands {
        let out = cli_on(dir.path(), &missing, &args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains("finns inte") && out.stderr.contains(&*missing.to_string_lossy()),
            "{args:?}: the message names the path: {out}"
        );
        assert!(!missing.exists(), "{args:?} created the database");
        assert!(
            !missing.parent().expect("parent").exists(),
            "{args:?} made its folder"
        );
    }
}
