//! Small helpers for the black-box tests: run the binary and capture what it did, build
//! throwaway rule sets, and a base profile that the default rules leave alone.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// A run that takes longer than this is killed and the test fails, so a hanging binary
/// cannot hang `cargo test`.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// What one run of the binary did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall-clock time from start to exit.
    pub elapsed: Duration,
}

impl Output {
    /// Stdout parsed as JSON; fails the test, showing the run, if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{self}"))
    }
}

/// Shown in assertion messages, so a failing test says what the binary printed.
impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    let mut pipe = pipe.expect("piped output");
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).expect("output is UTF-8");
        text
    })
}

/// Runs `gk-regler` with `args`, feeding `stdin` when given (else stdin is empty).
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gk-regler"));
    command.args(args);
    run_command(command, &format!("{args:?}"), stdin)
}

/// Runs a prepared `command` (described as `what` in messages) like [`run`].
pub fn run_command(mut command: Command, what: &str, stdin: Option<&str>) -> Output {
    let started = Instant::now();
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gk-regler");
    // Read both pipes on their own threads, so a chatty child never blocks on a full pipe.
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        match pipe.write_all(text.as_bytes()) {
            // The binary may exit before reading (bad arguments); that is its answer.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("write stdin"),
        }
        // Dropping the pipe closes it: the binary sees end of input.
    }
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gk-regler") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gk-regler {what} ran longer than {RUN_TIMEOUT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    Output {
        code: status
            .code()
            .unwrap_or_else(|| panic!("gk-regler {what} was ended by a signal: {status}")),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed,
    }
}

/// A path as a command-line argument (temporary directories are UTF-8 here).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The rule set shipped in the repository.
pub fn default_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// `check - --rules RULES --json` with `profile` on stdin.
pub fn check_json(profile: &Value, rules: &Path) -> Output {
    run(
        &["check", "-", "--rules", arg(rules), "--json"],
        Some(&profile.to_string()),
    )
}

/// Checks `profile` against the default rules, requiring a clean run (exit 0, no rule
/// errors), and returns the JSON report.
pub fn check_default(profile: &Value) -> Value {
    let out = check_json(profile, &default_rules());
    assert_eq!(out.code, 0, "{out}");
    let report = out.json();
    assert_eq!(report["errors"], json!([]), "{out}");
    report
}

/// The flag that rule `rule_id` raised in a `check --json` report, if any.
pub fn flag<'a>(report: &'a Value, rule_id: &str) -> Option<&'a Value> {
    report["flags"]
        .as_array()
        .expect("flags is an array")
        .iter()
        .find(|flag| flag["rule_id"] == rule_id)
}

/// The message of the flag `rule_id` raised; fails the test when it raised none.
pub fn flag_message<'a>(report: &'a Value, rule_id: &str) -> &'a str {
    flag(report, rule_id)
        .unwrap_or_else(|| panic!("expected a flag from {rule_id}: {report:#}"))["message"]
        .as_str()
        .expect("message is a string")
}

/// A participant profile with every field of domain.md §3 filled in: a well-prepared
/// case before GK that raises no flag under the default rules. Tests change only the
/// fields that matter to them.
pub fn base_profile() -> Value {
    json!({
        "case_id": "IT-0001",
        "stage": "before_gk",
        "checked_on": "2024-03-15",
        "benefit": "sickness_benefit",
        "sick_leave_started_on": "2023-09-01",
        "main_diagnosis": "F43.2",
        "person": {
            "sex": "female",
            "age": 45,
            "born_abroad": false,
            "marital_status": "married",
            "children_0_17": true,
            "education": "upper_secondary",
            "returner_ever": false,
            "sgi": 380000
        },
        "preparation": {
            "assessed_for_fs_on": "2024-02-01",
            "consent_received_on": "2024-02-20",
            "sassam_on": "2024-02-10",
            "reconciliation_meeting_on": null,
            "other_personal_meeting_on": null,
            "phone_contact": true,
            "care_contact": true,
            "employer_contact": false,
            "in_depth_medical_assessment": false,
            "insurance_physician_consulted": false
        },
        "gk": {
            "requested_on": "2024-03-01",
            "first_meeting_on": "2024-03-12",
            "external_participants": ["physician"],
            "interpreter_booked": false
        },
        "activity_level": {
            "documented": true,
            "hours_per_week": 10
        },
        "known_needs": {
            "social_or_family_problems": false,
            "hearing_impairment": false,
            "vision_impairment": false,
            "interpreter_needed": false
        },
        "specialists": ["occupational_therapist"]
    })
}

/// The object holding the last segment of the dotted `path`, and that segment.
fn parent<'a, 'p>(
    profile: &'a mut Value,
    path: &'p str,
) -> (&'a mut serde_json::Map<String, Value>, &'p str) {
    let (parents, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
    let mut current = profile;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        current = current
            .get_mut(part)
            .unwrap_or_else(|| panic!("no field {part} on the way to {path}"));
    }
    let object = current
        .as_object_mut()
        .unwrap_or_else(|| panic!("the parent of {path} is not an object"));
    (object, last)
}

/// Sets the field at the dotted `path` (`"activity_level.hours_per_week"`).
pub fn set(profile: &mut Value, path: &str, value: Value) {
    let (object, last) = parent(profile, path);
    object.insert(last.to_owned(), value);
}

/// Removes the field at the dotted `path`, which must be there (a typo must not pass).
pub fn remove(profile: &mut Value, path: &str) {
    let (object, last) = parent(profile, path);
    assert!(object.remove(last).is_some(), "no field {path} to remove");
}

/// A temporary rules directory holding `manifest` as `manifest.yaml` and each
/// `(name, text)` file; names may contain `/` (e.g. `tests/x.yaml`).
pub fn rules_dir(manifest: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("manifest.yaml"), manifest).expect("write manifest");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("create folder");
        }
        std::fs::write(path, text).expect("write rule file");
    }
    dir
}

/// The manifest entry of a valid warning rule `id` whose script is `{id}.rhai`.
pub fn manifest_entry(id: &str) -> String {
    format!(
        "  - id: {id}\n    script: {id}.rhai\n    title: Regel {id}\n    severity: warning\n    grounds: policy\n    rationale: Testregel {id}.\n    sources: Testkälla {id}\n"
    )
}

/// A manifest with the given entries.
pub fn manifest(entries: &[String]) -> String {
    format!(
        "name: testregler\nversion: \"1\"\nrules:\n{}",
        entries.concat()
    )
}

/// A valid rule set of `(id, script)` pairs, each a warning rule from [`manifest_entry`].
pub fn rule_set(rules: &[(&str, &str)]) -> TempDir {
    let entries: Vec<String> = rules.iter().map(|(id, _)| manifest_entry(id)).collect();
    let scripts: Vec<(String, &str)> = rules
        .iter()
        .map(|(id, script)| (format!("{id}.rhai"), *script))
        .collect();
    let files: Vec<(&str, &str)> = scripts.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    rules_dir(&manifest(&entries), &files)
}
