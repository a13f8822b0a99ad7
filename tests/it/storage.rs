//! Storage a deployment can trust, against the real binary: owner-only database files, a
//! database deleted or replaced under the running service, database commands that refuse
//! a mistyped path, a write-ahead log folded back while checks come, a purge that leaves
//! no copy of a deleted profile in the files, and `gk-regler backup` / `restore` while the
//! service takes checks.
//! RELIABILITY.md ("Defects found by hostile testing") names each test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&folder), 0o700, "the folder the service made");

    // A database and a key made readable by others earlier are made owner-only at the
    // next start.
    app.terminate(Duration::from_secs(20));
    use std::os::unix::fs::PermissionsExt as _;
    let key_file = app.dir.path().join("pseudonym.key");
    for path in [&database, &key_file] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    app.restart();
    stored(&app, "AGARE-2");
    for suffix in ["", "-wal", "-shm"] {
        let path = with_suffix(&database, suffix);
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&key_file), 0o600, "the pseudonym key");
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

/// The checkpoint that folds the write-ahead log back into the database file runs while
/// checks keep coming, so the log starts over instead of growing with every check; after
/// a clean stop it is gone and every acknowledged check is in the database file.
#[test]
fn the_write_ahead_log_stays_small_under_steady_checks_and_is_gone_after_a_stop() {
    let mut app = spawn_app();
    let wal = with_suffix(&app.database, "-wal");
    let mut acknowledged = BTreeSet::new();
    let mut largest = 0;
    // Each check commits on its own and writes ten pages or more to the log: 400 of
    // them are some 16 MiB of log unless it is folded back and started over.
    for i in 0..400 {
        acknowledged.insert(stored(&app, &format!("LOGG-{i}")));
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(
        largest < 8 << 20,
        "the log grew to {largest} bytes: it is not folded back while checks come"
    );
    let stopped = app.terminate(Duration::from_secs(20));
    assert_eq!(stopped.code, Some(0), "{stopped}");
    assert!(
        !wal.exists(),
        "the log is folded in and removed at the stop"
    );
    assert_eq!(stored_ids(&app.database), acknowledged);
}

/// `gk-regler ARGS` with its files in `dir` and the database at `database`.
fn cli_on(dir: &Path, database: &Path, args: &[&str]) -> Output {
    run_command(command_on(dir, database, args), &args.join(" "), None)
}

/// The command [`cli_on`] runs, to start it.
fn command_on(dir: &Path, database: &Path, args: &[&str]) -> Command {
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
    command
}

/// The development cohort's profiles once per number of `copies`, each copy with cases
/// of its own (`-1`, `-2`, … after the case id), written to `path`; the number of lines.
fn cohort_copies(path: &Path, copies: std::ops::RangeInclusive<usize>) -> i64 {
    let lines: String = copies
        .map(|copy| development_cohort_file_for_copy("profiles.jsonl", copy))
        .collect();
    std::fs::write(path, &lines).expect("write profiles");
    lines.lines().count() as i64
}

/// The development cohort's outcomes with the case ids of [`cohort_copies`]'s `copy`,
/// written to `path`; the number of lines.
fn outcome_copy(path: &Path, copy: usize) -> usize {
    let lines = development_cohort_file_for_copy("outcomes.jsonl", copy);
    std::fs::write(path, &lines).expect("write outcomes");
    lines.lines().count()
}

/// The JSON lines of the development cohort's file `name` with `-{copy}` after each case id.
fn development_cohort_file_for_copy(name: &str, copy: usize) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/cohort-2018")
        .join(name);
    let text = std::fs::read_to_string(file).expect("the development cohort");
    let mut lines = String::new();
    for line in text.lines() {
        let mut record: Value = serde_json::from_str(line).expect("a JSON line");
        let case = format!("{}-{copy}", record["case_id"].as_str().expect("case id"));
        record["case_id"] = json!(case);
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    lines
}

/// `gk-regler import PROFILES` with its files in `dir` and the database at `database`.
fn import_on(dir: &Path, database: &Path, profiles: &Path) -> Output {
    cli_on(dir, database, &["import", crate::helpers::arg(profiles)])
}

/// `gk-regler import PROFILES` started, its output discarded, to be killed.
fn start_import(dir: &Path, database: &Path, profiles: &Path) -> std::process::Child {
    command_on(dir, database, &["import", crate::helpers::arg(profiles)])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the import")
}

/// The import started by [`start_import`] still runs, and `deadline`, by which it should
/// have written into the database file uncommitted, has not passed.
fn assert_still_importing(import: &mut std::process::Child, deadline: Instant) {
    assert!(
        import.try_wait().expect("wait").is_none(),
        "the import ended before it wrote into the database file uncommitted"
    );
    assert!(
        Instant::now() < deadline,
        "the import wrote nothing into the file"
    );
}

/// A database in `dir` holding the development cohort once per number of `copies`
/// (imported from `dir/name`); its path and the number of checks.
fn database_with_cohort(
    dir: &Path,
    name: &str,
    copies: std::ops::RangeInclusive<usize>,
) -> (PathBuf, i64) {
    let database = dir.join("gk-regler.sqlite3");
    let profiles = dir.join(name);
    let lines = cohort_copies(&profiles, copies);
    let out = import_on(dir, &database, &profiles);
    assert_eq!(out.code, 0, "{out}");
    (database, lines)
}

fn count_checks(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM evaluations", [], |row| row.get(0))
        .expect("count")
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Whether the database file's header says WAL mode, the mode the service expects.
fn header_says_wal(database: &Path) -> bool {
    use std::io::Read as _;
    let mut header = [0; 20];
    std::fs::File::open(database)
        .and_then(|mut file| file.read_exact(&mut header))
        .expect("database header");
    header[18] == 2 && header[19] == 2
}

/// An import with the database to itself writes straight into the database file through
/// a rollback journal. Killed after it has written pages into the file and before it
/// commits, it leaves its journal, and the next opening rolls the file back: nothing of
/// the import stored, the file as before, the database sound. While it runs, a command
/// that opens the database stops at once and says the database is in use. Run again it stores every
/// check and leaves the database in WAL mode for the service. Beside a connection that
/// holds the database open, an import writes through the WAL.
#[test]
fn an_import_killed_mid_write_stores_nothing_and_the_next_stores_every_check() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("gk-regler.sqlite3");
    let first = dir.path().join("forsta.jsonl");
    let first_lines = cohort_copies(&first, 1..=1);
    let out = import_on(dir.path(), &database, &first);
    assert_eq!(out.code, 0, "{out}");
    assert!(header_says_wal(&database));
    let size_before = file_size(&database);

    // Seven more copies (≈ 45,000 checks) fill more than the writer's 64 MiB page cache,
    // so pages go into the database file before the commit.
    let big = dir.path().join("stor.jsonl");
    let big_lines = cohort_copies(&big, 2..=8);
    let mut import = start_import(dir.path(), &database, &big);
    let journal = with_suffix(&database, "-journal");
    let deadline = Instant::now() + Duration::from_secs(300);
    let still_running = |import: &mut std::process::Child| {
        assert_still_importing(import, deadline);
        std::thread::sleep(Duration::from_millis(5));
    };
    // Its transaction has begun once its journal has stayed (the rule set's own commit
    // before it is over in a moment): no one else opens the database now, and says why.
    let mut journal_since = None;
    loop {
        journal_since = match (journal.exists(), journal_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, Some(since)) if since.elapsed() > Duration::from_millis(100) => break,
            (true, since) => since,
        };
        still_running(&mut import);
    }
    let audit = cli_on(dir.path(), &database, &["audit", "--format", "json"]);
    assert_eq!(audit.code, 1, "{audit}");
    assert!(
        audit.stderr.contains("används just nu av en annan process"),
        "{audit}"
    );
    while file_size(&database) < size_before + (1 << 20) {
        still_running(&mut import);
    }
    import.kill().expect("SIGKILL");
    import.wait().expect("wait");
    assert_eq!(
        mode(&journal),
        0o600,
        "the journal holds checks: owner only"
    );

    let conn = rusqlite::Connection::open(&database).expect("open");
    assert_eq!(
        count_checks(&conn),
        first_lines,
        "nothing of the killed import"
    );
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    drop(conn);
    assert_eq!(
        file_size(&database),
        size_before,
        "the pages written before the kill were rolled back"
    );

    let out = import_on(dir.path(), &database, &big);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains(&format!("sparade {big_lines} kontroller")),
        "{out}"
    );
    assert!(
        header_says_wal(&database),
        "the import left the database in WAL mode"
    );

    let holder = rusqlite::Connection::open(&database).expect("open");
    assert_eq!(count_checks(&holder), first_lines + big_lines);
    let third = dir.path().join("tredje.jsonl");
    let third_lines = cohort_copies(&third, 9..=9);
    let out = import_on(dir.path(), &database, &third);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        with_suffix(&database, "-wal").exists(),
        "beside another connection the import wrote through the WAL"
    );
    assert_eq!(count_checks(&holder), first_lines + big_lines + third_lines);
}

/// Rolling a killed import back restores only the pages that were in use before it:
/// free pages it had taken (left by a purge) kept its profiles, readable in the database
/// file and copied into every backup. The next opening that rolls the import back
/// overwrites the free pages too, and so does the next opening after another program
/// played the journal back (the import's marker says so).
#[test]
fn a_killed_import_leaves_no_readable_profile_in_the_free_pages() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Free pages: a cohort imported, then purged.
    let (database, _) = database_with_cohort(dir.path(), "forsta.jsonl", 1..=8);
    std::thread::sleep(Duration::from_millis(1_100));
    let out = cli_on(dir.path(), &database, &["purge", "--older-than", "0d"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        occurrences(&database, PROFILE_KEY),
        0,
        "the purge left none"
    );

    let big = dir.path().join("stor.jsonl");
    cohort_copies(&big, 9..=24);
    let marker = with_suffix(&database, "-import-underway");
    // Rolled back by gk-regler's next opening, then by another program first (any
    // opening plays a journal back, `sqlite3` too), which knows nothing of free pages.
    for played_back_elsewhere in [false, true] {
        let mut import = start_import(dir.path(), &database, &big);
        let deadline = Instant::now() + Duration::from_secs(300);
        // Past the writer's page cache, the import writes its pages into the file's free
        // pages before it commits.
        while occurrences(&database, PROFILE_KEY) == 0 {
            assert_still_importing(&mut import, deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        import.kill().expect("SIGKILL");
        import.wait().expect("wait");
        assert!(
            marker.exists(),
            "the import marks the database while it writes"
        );
        if played_back_elsewhere {
            let other = rusqlite::Connection::open(&database).expect("open");
            assert_eq!(count_checks(&other), 0, "the journal was played back");
            drop(other);
            assert!(
                occurrences(&database, PROFILE_KEY) > 0,
                "played back elsewhere, the free pages keep the import's profiles"
            );
        }

        // The next command that opens the database zeroes them.
        let backup = dir.path().join(format!("kopia-{played_back_elsewhere}"));
        let out = cli_on(
            dir.path(),
            &database,
            &["backup", crate::helpers::arg(&backup)],
        );
        assert_eq!(out.code, 0, "{out}");
        assert!(out.stdout.contains("(0 kontroller"), "{out}");
        assert_eq!(
            occurrences(&database, PROFILE_KEY),
            0,
            "no profile of the killed import in the database file ({played_back_elsewhere})"
        );
        assert_eq!(
            occurrences(&backup.join("gk-regler.sqlite3"), PROFILE_KEY),
            0,
            "nor in the backup ({played_back_elsewhere})"
        );
        assert!(
            !marker.exists(),
            "the marker goes once the pages are zeroed"
        );
    }
    let conn = rusqlite::Connection::open(&database).expect("open");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
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
    let backup = dir.path().join("kopia");
    let commands: Vec<Vec<&str>> = vec![
        vec!["audit", "--format", "json"],
        vec!["replay", "--rules", crate::helpers::arg(&rules)],
        vec!["purge", "--older-than", "2y"],
        vec!["import-outcomes", crate::helpers::arg(&outcomes)],
        vec!["backup", crate::helpers::arg(&backup)],
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
    assert!(!backup.exists());
}

/// How often `needle` occurs in the bytes of `path` (none for a file that is not there).
fn occurrences(path: &Path, needle: &[u8]) -> usize {
    std::fs::read(path).map_or(0, |bytes| {
        bytes
            .windows(needle.len())
            .filter(|window| *window == needle)
            .count()
    })
}

/// A key of a stored profile as its JSON text has it: only stored profiles hold it (the
/// rule sets' stored sources mention the field, never as a quoted key and a colon).
const PROFILE_KEY: &[u8] = b"\"sick_leave_started_on\":";

/// The stored checks whose profile holds [`PROFILE_KEY`].
fn profiles_with_the_key(database: &Path) -> usize {
    let conn = rusqlite::Connection::open(database).expect("open the database");
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM evaluations WHERE instr(profile_json, '\"sick_leave_started_on\":') > 0",
            [],
            |row| row.get(0),
        )
        .expect("count");
    usize::try_from(count).expect("a count")
}

/// A purge deletes a check's stored profile from the database file itself, not only from
/// its tables: SQLite leaves deleted rows and freed pages in the file as they were unless
/// told to overwrite them, and a backup copies them. After the purge the file holds each
/// remaining check's profile once, and after a purge of every check none. The outcomes of
/// the cases the purge leaves without a check go with them.
#[test]
fn a_purge_leaves_no_readable_copy_of_a_deleted_profile_in_the_database_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("gk-regler.sqlite3");
    let older = dir.path().join("older.jsonl");
    let newer = dir.path().join("newer.jsonl");
    let older_lines = cohort_copies(&older, 1..=1);
    cohort_copies(&newer, 2..=2);
    let older_outcomes = dir.path().join("older-outcomes.jsonl");
    let outcome_lines = outcome_copy(&older_outcomes, 1);
    let out = cli_on(
        dir.path(),
        &database,
        &[
            "import",
            crate::helpers::arg(&older),
            "--outcomes",
            crate::helpers::arg(&older_outcomes),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    // The older import stored two days ago: a purge of what is older than a day takes
    // it and leaves the newer one.
    let conn = rusqlite::Connection::open(&database).expect("open the database");
    for table in ["evaluations", "outcomes"] {
        let column = if table == "outcomes" {
            "recorded_at"
        } else {
            "created_at"
        };
        conn.execute(
            &format!(
                "UPDATE {table} SET {column} = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2 days')"
            ),
            [],
        )
        .expect("back-date");
    }
    drop(conn);
    let out = import_on(dir.path(), &database, &newer);
    assert_eq!(out.code, 0, "{out}");
    let stored = profiles_with_the_key(&database);
    assert!(stored > 0, "the cohort's profiles give the key");
    let files = |suffix| with_suffix(&database, suffix);
    let in_files = || {
        ["", "-wal", "-journal"]
            .iter()
            .map(|suffix| occurrences(&files(*suffix), PROFILE_KEY))
            .sum::<usize>()
    };
    assert_eq!(
        in_files(),
        stored,
        "each stored profile once before the purge"
    );

    let out = cli_on(dir.path(), &database, &["purge", "--older-than", "1d"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains(&format!("Rensade {older_lines} kontroller"))
            && out.stdout.contains(&format!(
                "och {outcome_lines} utfall med 0 tidigare versioner"
            )),
        "the older import's checks and, their cases left without a check, their outcomes: {out}"
    );
    let conn = rusqlite::Connection::open(&database).expect("open the database");
    let outcomes: i64 = conn
        .query_row("SELECT count(*) FROM outcomes", [], |row| row.get(0))
        .expect("count");
    assert_eq!(outcomes, 0);
    drop(conn);
    let kept = profiles_with_the_key(&database);
    assert_eq!(kept, stored / 2, "the newer import's checks are kept");
    assert_eq!(
        in_files(),
        kept,
        "no copy of a purged profile is left in the files"
    );

    // Stored times are whole seconds: a second on, every check is older than now.
    std::thread::sleep(Duration::from_millis(1_100));
    let out = cli_on(dir.path(), &database, &["purge", "--older-than", "0d"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(profiles_with_the_key(&database), 0);
    assert_eq!(in_files(), 0, "no stored profile is left in the files");
    let conn = rusqlite::Connection::open(&database).expect("open the database");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
}

/// A period back in time ("2 years ago", `-P2Y`) would put the purge's cutoff in the
/// future and delete every check, the one stored a second ago included: it is refused,
/// naming the option, and nothing is deleted. `retention_days: 0` is refused likewise
/// (to keep checks for ever the key is left out), before `serve` opens the database.
#[test]
fn a_purge_period_that_points_forward_in_time_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (database, lines) = database_with_cohort(dir.path(), "profiles.jsonl", 1..=1);
    // `1m` is a minute: a retention period is whole days or more.
    for age in ["--older-than=1m", "--older-than=12h", "--older-than=PT30S"] {
        let out = cli_on(dir.path(), &database, &["purge", age]);
        assert_eq!(out.code, 2, "{age}: {out}");
        assert!(out.stderr.contains("en månad skrivs `mo`"), "{age}: {out}");
    }
    for age in [
        "--older-than=2 years ago",
        "--older-than=-P2Y",
        "--older-than=-2y",
    ] {
        let out = cli_on(dir.path(), &database, &["purge", age]);
        assert_eq!(out.code, 2, "{age}: {out}");
        assert!(
            out.stderr.contains("--older-than") && out.stderr.contains("bakåt"),
            "{age}: the message names the option and says why: {out}"
        );
        let conn = rusqlite::Connection::open(&database).expect("open the database");
        assert_eq!(count_checks(&conn), lines, "{age}: nothing deleted");
    }

    let mut serve = command_on(dir.path(), &database, &["serve"]);
    serve
        .env("GK_REGLER_RETENTION_DAYS", "0")
        .env("GK_REGLER_LISTEN", "127.0.0.1:0");
    let out = run_command(serve, "serve with retention_days 0", None);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("retention_days"),
        "the message names the setting: {out}"
    );
    let conn = rusqlite::Connection::open(&database).expect("open the database");
    assert_eq!(
        count_checks(&conn),
        lines,
        "retention_days 0 deleted nothing"
    );
}

/// Deleting checks in bulk is in the access log, like every other command that reads or
/// writes stored data: who (`cli:purge`, or `system:retention` for `retention_days`),
/// when, the cutoff and how many checks and outcomes went. Before, neither wrote anything.
#[test]
fn every_purge_is_in_the_access_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (database, lines) = database_with_cohort(dir.path(), "profiles.jsonl", 1..=1);
    let purges = || -> Vec<(String, String, String)> {
        let conn = rusqlite::Connection::open(&database).expect("open the database");
        let mut statement = conn
            .prepare(
                "SELECT actor, role, detail FROM access_log WHERE action = 'purge' ORDER BY id",
            )
            .expect("prepare");
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let out = cli_on(dir.path(), &database, &["purge", "--older-than", "2y"]);
    assert_eq!(out.code, 0, "{out}");
    let logged = purges();
    assert_eq!(logged.len(), 1, "{logged:?}");
    let (actor, role, detail) = &logged[0];
    assert_eq!((actor.as_str(), role.as_str()), ("cli:purge", "admin"));
    assert!(
        detail.starts_with("before=") && detail.ends_with("checks=0 outcomes=0"),
        "{detail}"
    );

    // Stored times are whole seconds: a second on, every check is older than now.
    std::thread::sleep(Duration::from_millis(1_100));
    let mut serve = command_on(dir.path(), &database, &["serve"]);
    serve
        .env("GK_REGLER_RETENTION_DAYS", "1")
        .env("GK_REGLER_LISTEN", "127.0.0.1:0");
    let mut child = serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start serve");
    let started = std::time::Instant::now();
    while purges().len() < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let logged = purges();
    assert_eq!(logged.len(), 2, "the start's retention purge: {logged:?}");
    let (actor, role, detail) = &logged[1];
    assert_eq!(
        (actor.as_str(), role.as_str()),
        ("system:retention", "admin")
    );
    assert!(detail.ends_with("checks=0 outcomes=0"), "{detail}");
    let out = cli_on(dir.path(), &database, &["purge", "--older-than", "0d"]);
    assert_eq!(out.code, 0, "{out}");
    let logged = purges();
    assert!(
        logged[2].2.ends_with(&format!("checks={lines} outcomes=0")),
        "{logged:?}"
    );
}

/// `import PROFILES --outcomes FILE` stores the checks and the outcomes in one
/// transaction: killed the moment it says what it stored, the checks were there and the
/// outcomes not (they were written in a second transaction after that line), so an audit
/// in between saw the cohort without its outcomes.
#[test]
fn an_import_with_outcomes_stores_both_or_neither() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("gk-regler.sqlite3");
    let profiles = dir.path().join("profiles.jsonl");
    let outcomes = dir.path().join("outcomes.jsonl");
    let lines = cohort_copies(&profiles, 1..=2);
    let outcome_lines = outcome_copy(&outcomes, 1) + {
        let second = dir.path().join("second.jsonl");
        let n = outcome_copy(&second, 2);
        let mut both = std::fs::read_to_string(&outcomes).expect("read");
        both.push_str(&std::fs::read_to_string(&second).expect("read"));
        std::fs::write(&outcomes, both).expect("write");
        n
    };
    let mut child = command_on(
        dir.path(),
        &database,
        &[
            "import",
            crate::helpers::arg(&profiles),
            "--outcomes",
            crate::helpers::arg(&outcomes),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("start the import");
    let stdout = child.stdout.take().expect("stdout");
    let said_stored = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("sparade"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(said_stored, "the import says what it stored");
    let conn = rusqlite::Connection::open(&database).expect("open the database");
    let checks = count_checks(&conn);
    let stored_outcomes: i64 = conn
        .query_row("SELECT count(*) FROM outcomes", [], |row| row.get(0))
        .expect("count");
    assert_eq!(checks, lines, "said stored, so stored");
    assert_eq!(
        stored_outcomes, outcome_lines as i64,
        "the outcomes with the checks, in the same commit"
    );
}

/// The SHA-256 of `path` in hex, computed by `sha256sum` (not by the code under test).
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a checksum")
        .to_owned()
}

/// The ids of the evaluations stored in the database at `path`.
fn stored_ids(path: &Path) -> BTreeSet<i64> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the copy");
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    let half: i64 = db
        .query_row(
            "SELECT count(*) FROM evaluations e
             WHERE NOT EXISTS (SELECT 1 FROM access_log a WHERE a.evaluation_id = e.id)",
            [],
            |r| r.get(0),
        )
        .expect("count half-written");
    assert_eq!(half, 0, "an evaluation without its access-log entry");
    let mut statement = db.prepare("SELECT id FROM evaluations").expect("prepare");
    statement
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("ids")
}

#[test]
fn a_backup_taken_while_serving_restores_every_acknowledged_check() {
    let mut app = spawn_app();
    let known = stored(&app, "KANT-ARENDE-1");

    // Officers keep checking while the backup runs.
    let acknowledged = Arc::new(Mutex::new(vec![known]));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|n| {
            let api = app.api.clone();
            let who = app.handlaggare.token.clone();
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let reply = api.check(who.as_str(), &profile(&format!("UNDER-{n}-{i}")));
                    assert_eq!(reply.status, 201, "{reply}");
                    let id = reply.json()["evaluation_id"].as_i64().expect("id");
                    acknowledged.lock().expect("lock").push(id);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().expect("lock").len() < 20 {
        assert!(Instant::now() < deadline, "the writers got nothing stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before: Vec<i64> = acknowledged.lock().expect("lock").clone();
    let backup = app.dir.path().join("kopior").join("2024-05-01");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer thread");
    }
    assert_eq!(out.code, 0, "{out}");
    let all: BTreeSet<i64> = acknowledged.lock().expect("lock").iter().copied().collect();

    // The manifest lists each file with its size and checksum; the files are owner-only.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(backup.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest is JSON");
    let files = manifest["files"].as_array().expect("files");
    let names: BTreeSet<&str> = files
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["gk-regler.sqlite3", "pseudonym.key"]),
        "{manifest:#}"
    );
    for file in files {
        let path = backup.join(file["name"].as_str().expect("name"));
        assert_eq!(file["sha256"], sha256sum(&path), "{manifest:#}");
        assert_eq!(
            file["bytes"].as_u64(),
            Some(std::fs::metadata(&path).expect("meta").len()),
            "{manifest:#}"
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&backup), 0o700);
    assert!(
        manifest["schema_version"].as_i64().is_some_and(|v| v >= 1),
        "{manifest:#}"
    );
    assert!(manifest["created_at"].as_str().is_some(), "{manifest:#}");
    assert!(
        manifest["rule_sets"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{manifest:#}"
    );
    let key = std::fs::read(app.dir.path().join("pseudonym.key")).expect("key");
    assert_eq!(
        std::fs::read(backup.join("pseudonym.key")).expect("copied key"),
        key
    );
    let backed_up = stored_ids(&backup.join("gk-regler.sqlite3"));
    for id in &before {
        assert!(
            backed_up.contains(id),
            "check {id}, acknowledged before the backup, is missing"
        );
    }
    assert!(
        backed_up.is_subset(&all),
        "the copy holds checks never acknowledged"
    );

    // A second backup into the same (now full) folder is refused; nothing changes.
    let again = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(again.code, 2, "{again}");
    assert!(again.stderr.contains("inte tom"), "{again}");

    // Restore into a fresh directory and serve from there, with the same tokens.
    app.terminate(Duration::from_secs(20));
    let fresh = tempfile::tempdir().expect("temporary directory");
    let database = fresh.path().join("db").join("gk-regler.sqlite3");
    let key_file = fresh.path().join("db").join("pseudonym.key");
    app.use_files(database.clone(), key_file.clone());
    let restored = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(restored.code, 0, "{restored}");
    // The counts are the restored database's own.
    assert!(
        restored
            .stdout
            .contains(&format!("({} kontroller,", backed_up.len())),
        "{restored}"
    );
    assert_eq!(mode(&database), 0o600);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(std::fs::read(&key_file).expect("restored key"), key);
    // Restoring over an existing database is refused.
    let over = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(over.code, 2, "{over}");
    assert!(over.stderr.contains("finns redan"), "{over}");

    app.restart();
    for id in &backed_up {
        let reply = app.get(&format!("/api/v1/checks/{id}"), &app.handlaggare);
        assert_eq!(reply.status, 200, "check {id}: {reply}");
    }
    // The restored key gives the same pseudonym: the known case's history is found.
    let history = app.post(
        "/api/v1/cases/checks",
        &app.handlaggare,
        &json!({"case_id": "KANT-ARENDE-1"}),
    );
    assert_eq!(history.status, 200, "{history}");
    let ids: Vec<i64> = history.json()["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .map(|e| e["evaluation_id"].as_i64().expect("evaluation_id"))
        .collect();
    assert_eq!(ids, [known], "{history}");
    // New checks go on after the restored ones.
    let next = stored(&app, "KANT-ARENDE-1");
    assert!(
        next > *backed_up.iter().max().expect("ids"),
        "ids reused: {next}"
    );
}

#[test]
fn a_damaged_backup_is_refused_and_nothing_is_restored() {
    let mut app = spawn_app();
    stored(&app, "SKADAD-1");
    let backup = app.dir.path().join("kopia");
    // An empty folder is fine as a target.
    std::fs::create_dir(&backup).expect("empty folder");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    app.terminate(Duration::from_secs(20));

    let copy = backup.join("gk-regler.sqlite3");
    let mut bytes = std::fs::read(&copy).expect("read the copy");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&copy, bytes).expect("damage the copy");

    let (_fresh, database, key_file) = fresh_files(&mut app);
    let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("gk-regler.sqlite3"),
        "names the file: {out}"
    );
    assert!(
        !database.exists() && !key_file.exists(),
        "something was restored"
    );
}

/// A backup folder's files are read as regular files only: a named pipe in place of the
/// manifest hung `restore` for ever, and the database as a symbolic link to `/dev/zero`
/// was copied until the database's disk was full.
#[test]
fn a_backup_whose_files_are_not_regular_files_is_refused_at_once() {
    let mut app = spawn_app();
    stored(&app, "FIFO-1");
    let backup = app.dir.path().join("kopia");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    app.terminate(Duration::from_secs(20));
    let (_fresh, database, key_file) = fresh_files(&mut app);

    let replace = |name: &str, with: &dyn Fn(&Path)| {
        let path = backup.join(name);
        let kept = backup.join(format!("{name}.kept"));
        std::fs::rename(&path, &kept).expect("move aside");
        with(&path);
        let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
        std::fs::remove_file(&path).expect("remove");
        std::fs::rename(&kept, &path).expect("move back");
        out
    };
    let fifo = |path: &Path| {
        let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(made.success());
    };
    let to_zero = |path: &Path| std::os::unix::fs::symlink("/dev/zero", path).expect("symlink");
    for (name, make) in [
        ("manifest.json", &fifo as &dyn Fn(&Path)),
        ("gk-regler.sqlite3", &fifo),
        ("gk-regler.sqlite3", &to_zero),
        ("pseudonym.key", &to_zero),
    ] {
        let out = replace(name, make);
        assert_eq!(out.code, 2, "{name}: {out}");
        assert!(
            out.stderr.contains(name) && out.stderr.contains("ingen vanlig fil"),
            "{name}: {out}"
        );
        assert!(!database.exists() && !key_file.exists(), "{name}: restored");
    }
    let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "the backup itself restores: {out}");
}

/// A new, empty place for `app`'s database and key, to restore into: the temporary
/// directory (removed when dropped), the database path and the key path.
fn fresh_files(app: &mut TestApp) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let fresh = tempfile::tempdir().expect("temporary directory");
    let database = fresh.path().join("gk-regler.sqlite3");
    let key_file = fresh.path().join("pseudonym.key");
    app.use_files(database.clone(), key_file.clone());
    (fresh, database, key_file)
}

/// Rewrites the backup manifest in `backup` to match its changed database, as anyone who
/// can write to the folder can; with `evaluations`, the count it claims too.
fn rewrite_checksum(backup: &Path, evaluations: Option<u64>) {
    use sha2::Digest;
    let bytes = std::fs::read(backup.join("gk-regler.sqlite3")).expect("read the copy");
    let manifest_path = backup.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest"))
            .expect("JSON");
    if let Some(evaluations) = evaluations {
        manifest["evaluations"] = serde_json::json!(evaluations);
    }
    for file in manifest["files"].as_array_mut().expect("files") {
        if file["name"] == "gk-regler.sqlite3" {
            file["bytes"] = serde_json::json!(bytes.len());
            file["sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(&bytes)));
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
}

/// Anyone who can write to a backup folder can change its database and the checksums
/// with it. A trigger added there copied every new profile to a table of its own, kept
/// what a purge deleted and dropped access-log entries, and `restore` reported the
/// manifest's counts, not the database's.
#[test]
fn a_backup_whose_database_was_given_a_trigger_is_refused_and_nothing_is_restored() {
    let mut app = spawn_app();
    stored(&app, "UTLAGD-1");
    let backup = app.dir.path().join("kopia");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    app.terminate(Duration::from_secs(20));

    let copy = backup.join("gk-regler.sqlite3");
    rusqlite::Connection::open(&copy)
        .expect("open the copy")
        .execute_batch(
            "CREATE TABLE zz_copy (profile TEXT);
             CREATE TRIGGER zz_keep AFTER INSERT ON evaluations BEGIN
               INSERT INTO zz_copy VALUES (NEW.profile_json); END;",
        )
        .expect("add a trigger");
    rewrite_checksum(&backup, Some(5000));

    let (fresh, database, key_file) = fresh_files(&mut app);
    let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("`zz_keep`"),
        "names what differs: {out}"
    );
    assert!(!database.exists() && !key_file.exists(), "{out}");
    let left: Vec<_> = std::fs::read_dir(fresh.path())
        .expect("list")
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "no temporary copy left: {left:?}");
}

/// Whoever can write to a backup folder can add rows and rewrite the checksums: a web
/// session planted in the copy signed its holder in as an admin of the restored service,
/// and an admin token added there went unnoticed. A restore now ends every session of the
/// copy (everyone signs in again) and names the active admin tokens it restored, for the
/// person restoring to check.
#[test]
fn a_restore_ends_the_copys_sessions_and_names_its_active_tokens() {
    use sha2::Digest;
    let mut app = spawn_app();
    stored(&app, "SESSION-1");
    let backup = app.dir.path().join("kopia");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    app.terminate(Duration::from_secs(20));

    let session = "ab".repeat(32);
    let copy = backup.join("gk-regler.sqlite3");
    {
        let conn = rusqlite::Connection::open(&copy).expect("open the copy");
        conn.execute(
            "INSERT INTO accounts (name, role, token_sha256, created_at, created_by)
             VALUES ('Bakdörr', 'admin', ?1, '2026-01-01T00:00:00Z', 'system:start')",
            [sha2::Sha256::digest(b"gkr_planted_token_0123456789").to_vec()],
        )
        .expect("plant an admin");
        // A name that would erase its own line on a terminal, and a planted analyst.
        conn.execute(
            "INSERT INTO accounts (name, role, token_sha256, created_at, created_by)
             VALUES (?1, 'admin', ?2, '2026-01-01T00:00:00Z', 'system:start'),
                    ('mallory', 'analytiker', ?3, '2026-01-01T00:00:00Z', 'cli:token')",
            rusqlite::params![
                "dold\r\u{1b}[2K\u{1b}[1A",
                sha2::Sha256::digest(b"gkr_planted_token_9876543210").to_vec(),
                sha2::Sha256::digest(b"gkr_planted_token_5555555555").to_vec()
            ],
        )
        .expect("plant more");
        conn.execute(
            "INSERT INTO sessions (id_sha256, account_id, csrf_token, created_at, last_seen)
             SELECT ?1, id, 'x', '2026-01-01T00:00:00Z', 4102444800 FROM accounts
             WHERE name = 'Bakdörr'",
            [sha2::Sha256::digest(session.as_bytes()).to_vec()],
        )
        .expect("plant a session");
    }
    rewrite_checksum(&backup, None);

    let (_fresh, database, _) = fresh_files(&mut app);
    let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("Bakdörr") && out.stdout.contains(app.admin.name),
        "the active admin tokens are named: {out}"
    );
    assert!(
        out.stdout.contains("mallory (analytiker"),
        "every active token is named: {out}"
    );
    assert!(
        out.stdout.contains("dold\\u{d}\\u{1b}[2K") && !out.stdout.contains('\u{1b}'),
        "control characters are written out, never sent to the terminal: {out}"
    );
    assert!(out.stdout.contains("inloggningar"), "{out}");
    let conn = rusqlite::Connection::open(&database).expect("open the restored database");
    let sessions: i64 = conn
        .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
        .expect("count");
    assert_eq!(sessions, 0, "no session of the copy lives on");
    drop(conn);
    app.restart();
    let page = crate::web::WebClient::new(&app).raw(
        reqwest::Method::GET,
        "/anvandare",
        Some(&format!("gk_session={session}")),
        &[],
        None,
    );
    assert_eq!(
        page.status, 303,
        "the planted session signs nobody in: {page}"
    );
}

/// Files an earlier database left at the path refuse a restore: SQLite would play a stale
/// rollback journal back into the restored copy and damage it. The copies an interrupted
/// backup or restore leaves behind (every stored check, in a hidden temporary name) are
/// named in a warning, since nothing else removes them.
#[test]
fn a_restore_refuses_an_earlier_databases_files_and_interrupted_copies_are_named() {
    let mut app = spawn_app();
    let id = stored(&app, "KVAR-1");
    let backup = app.dir.path().join("kopia");
    let interrupted_backup = app.dir.path().join(".gk-regler-backup-avbruten");
    std::fs::create_dir(&interrupted_backup).expect("a folder");
    let out = app.run_cli(&["backup", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("Varning")
            && out
                .stderr
                .contains(crate::helpers::arg(&interrupted_backup)),
        "names the interrupted backup: {out}"
    );
    app.terminate(Duration::from_secs(20));

    let (fresh, database, key_file) = fresh_files(&mut app);
    for suffix in ["-journal", "-shm"] {
        let stale = with_suffix(&database, suffix);
        std::fs::write(&stale, b"from an earlier database").expect("a stale file");
        let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
        assert_eq!(out.code, 2, "{suffix}: {out}");
        assert!(
            out.stderr.contains(crate::helpers::arg(&stale)),
            "names the file: {out}"
        );
        assert!(
            !database.exists() && !key_file.exists(),
            "{suffix}: something was restored"
        );
        std::fs::remove_file(&stale).expect("remove the stale file");
    }

    let interrupted_restore = fresh.path().join(".gk-regler-restore-avbruten");
    std::fs::write(&interrupted_restore, b"a copy").expect("a leftover");
    let out = app.run_cli(&["restore", crate::helpers::arg(&backup)], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("Varning")
            && out
                .stderr
                .contains(crate::helpers::arg(&interrupted_restore)),
        "names the interrupted restore: {out}"
    );
    let conn = rusqlite::Connection::open(&database).expect("the restored database");
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM evaluations")
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .expect("stored ids");
    assert_eq!(ids, vec![id]);
}

/// A named pipe reads once, and an import reads its file twice (first every line is
/// checked, then the checks are stored): it is refused at once, naming the path, before
/// a database is made; it never waits for a second reading that will not come.
#[test]
fn an_import_from_a_pipe_is_refused_at_once_and_makes_no_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pipe = dir.path().join("profiler.jsonl");
    let made = Command::new("mkfifo").arg(&pipe).status().expect("mkfifo");
    assert!(made.success());
    let database = dir.path().join("db").join("gk-regler.sqlite3");
    let mut child = command_on(
        dir.path(),
        &database,
        &["import", crate::helpers::arg(&pipe)],
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start gk-regler");
    // A writer for the pipe, so that a first reading would get a line and end.
    let profile = profile("ROR-1").to_string();
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            if let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(&pipe) {
                use std::io::Write as _;
                let _ = writeln!(file, "{profile}");
            }
        })
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the import from a pipe still ran after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ingen vanlig fil") && stderr.contains(crate::helpers::arg(&pipe)),
        "{stderr}"
    );
    assert!(!database.exists(), "a database was made");
    // Unblock the writer thread, which waits for a reader that never came.
    drop(std::fs::File::open(&pipe));
    writer.join().expect("the writer");
}

/// A key file path mistyped, or another key, for a database that holds pseudonyms: a new
/// key was made without a word, and outcomes recorded under it never met their checks.
#[test]
fn a_missing_or_other_pseudonym_key_is_refused_for_a_database_with_pseudonyms() {
    let mut app = spawn_app();
    stored(&app, "FK-2024-000311");
    app.terminate(Duration::from_secs(20));
    let outcomes = app.dir.path().join("utfall.jsonl");
    std::fs::write(
        &outcomes,
        "{\"case_id\":\"FK-2024-000311\",\"ended_on\":\"2024-10-01\",\"outcome\":\"returned_to_fk\"}\n",
    )
    .expect("write outcomes");
    let outcomes = crate::helpers::arg(&outcomes);
    let profiles = app.dir.path().join("profiler.jsonl");
    std::fs::write(&profiles, format!("{}\n", profile("FK-2024-000312"))).expect("write");
    let profiles = crate::helpers::arg(&profiles);
    let database = app.database.clone();
    let own_key = app.dir.path().join("pseudonym.key");

    // A path that leads to no key: refused, and no key is made there.
    let missing = app.dir.path().join("pseudonymnyckel.key");
    app.use_files(database.clone(), missing.clone());
    for args in [
        &["import-outcomes", outcomes][..],
        &["import", profiles][..],
        &["serve"][..],
    ] {
        let out = app.cli(args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains("finns inte, men databasen")
                && out.stderr.contains("ingen skapades"),
            "{args:?}: {out}"
        );
        assert!(!missing.exists(), "{args:?} made a key: {out}");
    }

    // Another key: refused before anything is stored under it.
    let other = app.dir.path().join("annan.key");
    std::fs::write(&other, "b".repeat(64)).expect("write key");
    app.use_files(database.clone(), other);
    for args in [&["import-outcomes", outcomes][..], &["serve"][..]] {
        let out = app.cli(args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains("är inte nyckeln som databasen"),
            "{args:?}: {out}"
        );
    }
    let backup = app.dir.path().join("kopia");
    let out = app.cli(&["backup", crate::helpers::arg(&backup)]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("Ingen kopia skrevs"), "{out}");
    assert!(!backup.exists());

    // The database's own key still works, and the outcome meets its check.
    app.use_files(database.clone(), own_key);
    let out = app.cli(&["import-outcomes", outcomes]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("1 nytt"), "{out}");
    assert!(!out.stderr.contains("registrerad som databasens"), "{out}");

    // A database an earlier version made holds pseudonyms and no key check: the first
    // key used is taken, and the person is told, since nothing can tell it is right.
    let conn = rusqlite::Connection::open(&database).expect("open");
    conn.execute("DELETE FROM key_check", [])
        .expect("as an earlier version left it");
    drop(conn);
    let out = app.cli(&["import-outcomes", outcomes]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("är nu registrerad som databasens nyckel"),
        "{out}"
    );
}

/// Files another user placed where the service keeps its own: in a folder others may
/// write to, a planted tokens file made its author admin, a planted key let them
/// re-identify every stored case, and a key that was a symbolic link had its target's
/// mode changed.
#[test]
fn files_someone_else_could_have_placed_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut app = spawn_app();
    stored(&app, "FK-2024-000311");
    app.terminate(Duration::from_secs(20));
    let refused = |app: &TestApp, args: &[&str], expected: &str| {
        let out = app.cli(args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(out.stderr.contains(expected), "{args:?}: {out}");
    };
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };

    // A tokens file everyone may write.
    let tokens = app.dir.path().join("tokens.yaml");
    if !tokens.exists() {
        std::fs::write(&tokens, "").expect("tokens file");
    }
    chmod(&tokens, 0o666);
    refused(&app, &["serve"], "får skrivas av alla användare");
    chmod(&tokens, 0o600);

    // A configuration with the key's secret that everyone may read.
    let config = app.dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("pseudonym_secret: \"{}\"\n", "k".repeat(40)),
    )
    .expect("config");
    chmod(&config, 0o644);
    refused(
        &app,
        &["serve", "--config", crate::helpers::arg(&config)],
        "har pseudonym_secret och kan läsas av alla användare",
    );

    // A key that is a symbolic link: refused, and its target is left as it was.
    let database = app.database.clone();
    let key = app.dir.path().join("pseudonym.key");
    let target = app.dir.path().join("någons-fil.txt");
    std::fs::copy(&key, &target).expect("copy key");
    chmod(&target, 0o644);
    let link = app.dir.path().join("länkad.key");
    std::os::unix::fs::symlink(&target, &link).expect("link");
    app.use_files(database.clone(), link);
    refused(&app, &["serve"], "är en symbolisk länk");
    assert_eq!(mode(&target), 0o644, "the link's target was changed");

    // A database that is a symbolic link.
    let moved = app.dir.path().join("flyttad.sqlite3");
    std::fs::rename(&database, &moved).expect("move");
    std::os::unix::fs::symlink(&moved, &database).expect("link");
    app.use_files(database.clone(), key.clone());
    refused(&app, &["serve"], "är en symbolisk länk");
    std::fs::remove_file(&database).expect("remove link");
    std::fs::rename(&moved, &database).expect("move back");

    // A database in a folder every user may write, reached through a link.
    let open_folder = app.dir.path().join("allas");
    std::fs::create_dir(&open_folder).expect("folder");
    chmod(&open_folder, 0o777);
    let linked = app.dir.path().join("länkad-mapp");
    std::os::unix::fs::symlink(&open_folder, &linked).expect("link");
    app.use_files(linked.join("gk.sqlite3"), key.clone());
    refused(
        &app,
        &["serve"],
        "mappen den ligger i får skrivas av alla användare",
    );
    assert!(!open_folder.join("gk.sqlite3").exists());
    // Nor does a restore put the database and the key there.
    app.use_files(database.clone(), key.clone());
    let backup = app.dir.path().join("kopia");
    let out = app.cli(&["backup", crate::helpers::arg(&backup)]);
    assert_eq!(out.code, 0, "{out}");
    app.use_files(
        open_folder.join("prov.sqlite3"),
        open_folder.join("prov.key"),
    );
    refused(
        &app,
        &["restore", crate::helpers::arg(&backup)],
        "mappen den ligger i får skrivas av alla användare",
    );
    assert!(!open_folder.join("prov.sqlite3").exists());
    assert!(!open_folder.join("prov.key").exists());
    app.use_files(database.clone(), key.clone());

    // Files of another user (only root can give a file away).
    if rustix::process::geteuid().is_root() {
        let nobody = Some(rustix::fs::Uid::from_raw(65534));
        for (file, expected) in [
            (&database, "ägs av en annan användare"),
            (&tokens, "ägs av en annan användare"),
        ] {
            rustix::fs::chown(file, nobody, None).expect("chown");
            refused(&app, &["serve"], expected);
            rustix::fs::chown(file, Some(rustix::process::geteuid()), None).expect("chown back");
        }
    } else {
        eprintln!("not root: files of another user cannot be made here, so that part is not run");
    }

    // Put right, it starts.
    app.restart();
    assert_eq!(app.count("evaluations"), 1);
}
