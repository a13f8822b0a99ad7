//! Small helpers for the black-box tests: run the binary and capture what it did, build
//! throwaway rule sets, a base profile that the default rules leave alone, and
//! [`spawn_app`], which runs `gk-regler serve` on a free port with its own database.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
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

/// A participant profile with every field of docs/profile.md filled in: a well-prepared
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

/// A copy of the directory `from` (with its subdirectories) at `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The service: `gk-regler serve` as a child process on a free port, with its own
// database, key and tokens in a temporary directory.
// ---------------------------------------------------------------------------------------

/// How long the service may take to start, answer a request or stop.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// A user of the service: a token made by `gk-regler token create`, and its name.
pub struct User {
    pub name: &'static str,
    pub token: String,
}

/// What a request carries in `Authorization`.
pub trait Credentials {
    /// The bearer token, or `None` to send no `Authorization` header.
    fn token(&self) -> Option<&str>;
}

impl Credentials for User {
    fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// A raw token (e.g. one the service never issued).
impl Credentials for str {
    fn token(&self) -> Option<&str> {
        Some(self)
    }
}

/// A raw token, or `None` for no `Authorization` header.
impl Credentials for Option<&str> {
    fn token(&self) -> Option<&str> {
        *self
    }
}

/// No `Authorization` header at all.
pub struct NoToken;

impl Credentials for NoToken {
    fn token(&self) -> Option<&str> {
        None
    }
}

/// A request body.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// Raw text with the given content type.
    Raw(&'a str, String),
}

/// One answer of the service, kept whole so a failing assertion can show it.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON; fails the test, showing the reply, if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}):\n{self}"))
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text"))
            .unwrap_or("")
    }

    /// Requires an `application/problem+json` answer with `status` whose body has the
    /// RFC 9457 members, and returns the body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self}");
        assert!(
            self.header("content-type")
                .starts_with("application/problem+json"),
            "{self}"
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{self}");
        assert!(body["type"].is_string(), "{self}");
        assert!(body["title"].is_string(), "{self}");
        body
    }

    /// The `field` of the first entry of a validation problem's `errors`.
    pub fn first_error_field(&self) -> String {
        let body = self.problem(422);
        body["errors"][0]["field"]
            .as_str()
            .unwrap_or_else(|| panic!("no errors[0].field: {self}"))
            .to_owned()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}\n{:?}\n{}", self.status, self.headers, self.text)
    }
}

/// An HTTP client bound to one running service; cheap to clone into threads.
#[derive(Clone)]
pub struct Api {
    client: reqwest::blocking::Client,
    base: String,
}

impl Api {
    fn new(base: String) -> Self {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(SERVICE_TIMEOUT)
            .build()
            .expect("HTTP client");
        Self { client, base }
    }

    /// `127.0.0.1:PORT`, for raw TCP connections.
    pub fn authority(&self) -> &str {
        self.base.strip_prefix("http://").unwrap_or(&self.base)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; `Err` when the service did not answer (it may have been killed).
    pub fn try_request(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &(impl Credentials + ?Sized),
        body: Body<'_>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = who.token() {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(content_type, text) => request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(text),
        };
        let response = request.send()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text()?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &(impl Credentials + ?Sized),
        body: Body<'_>,
    ) -> Reply {
        self.try_request(method.clone(), path, who, body)
            .unwrap_or_else(|err| panic!("{method} {path}: no answer: {err}"))
    }

    pub fn get(&self, path: &str, who: &(impl Credentials + ?Sized)) -> Reply {
        self.request(reqwest::Method::GET, path, who, Body::None)
    }

    pub fn post(&self, path: &str, who: &(impl Credentials + ?Sized), body: &Value) -> Reply {
        self.request(reqwest::Method::POST, path, who, Body::Json(body))
    }

    /// POST with a body of any content type.
    pub fn post_raw(
        &self,
        path: &str,
        who: &(impl Credentials + ?Sized),
        content_type: &str,
        body: String,
    ) -> Reply {
        self.request(
            reqwest::Method::POST,
            path,
            who,
            Body::Raw(content_type, body),
        )
    }

    /// POST /api/v1/checks with `profile`.
    pub fn check(&self, who: &(impl Credentials + ?Sized), profile: &Value) -> Reply {
        self.post("/api/v1/checks", who, profile)
    }
}

/// Options for [`spawn_app_with`].
#[derive(Default)]
pub struct AppOptions {
    /// Serve a copy of `rules/` in the temporary directory (which a test may change)
    /// instead of the repository's `rules/`.
    pub copy_rules: bool,
    /// Extra environment variables for `serve`, e.g. `("GK_REGLER_MAX_BODY_BYTES", "20000")`.
    pub env: Vec<(&'static str, String)>,
    /// Keep the database here instead of in the temporary directory (e.g. on a small
    /// file system a test fills up).
    pub database: Option<PathBuf>,
}

/// A running `gk-regler serve`, with everything it owns in a temporary directory. The
/// process is killed when this is dropped.
pub struct TestApp {
    /// Holds the database, the pseudonym key, the tokens file and copied rules.
    pub dir: TempDir,
    pub rules_dir: PathBuf,
    pub database: PathBuf,
    pub api: Api,
    /// Two case officers, so one can try to read the other's checks.
    pub handlaggare: User,
    pub handlaggare2: User,
    pub policy: User,
    pub analytiker: User,
    pub admin: User,
    env: Vec<(&'static str, String)>,
    server: Option<Server>,
}

/// The child process and what it printed so far.
struct Server {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

/// A pipe read to the end on its own thread, line by line, into a shared string.
struct Captured {
    text: Arc<Mutex<String>>,
    reader: JoinHandle<()>,
}

impl Captured {
    /// Starts reading `pipe`; each line also goes to `lines` when given.
    fn start(pipe: impl Read + Send + 'static, lines: Option<mpsc::Sender<String>>) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let shared = Arc::clone(&text);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                {
                    let mut text = shared.lock().expect("capture lock");
                    text.push_str(&line);
                    text.push('\n');
                }
                if let Some(lines) = &lines {
                    let _ = lines.send(line);
                }
            }
        });
        Self { text, reader }
    }

    /// Everything, once the process has closed the pipe.
    fn finish(self) -> String {
        self.reader.join().expect("pipe reader");
        Arc::try_unwrap(self.text)
            .map(|m| m.into_inner().expect("capture lock"))
            .unwrap_or_else(|shared| shared.lock().expect("capture lock").clone())
    }
}

/// How a stopped service ended and what it printed.
pub struct Stopped {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From the stop request to the exit.
    pub elapsed: Duration,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Starts the service against the repository's `rules/` with a fresh database.
pub fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default())
}

/// Starts the service: makes a temporary directory, one token per role with the real
/// `token create`, then `serve` on a free port, and waits until it is ready.
pub fn spawn_app_with(options: AppOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rules_dir = if options.copy_rules {
        let copy = dir.path().join("rules");
        copy_dir(&default_rules(), &copy);
        copy
    } else {
        default_rules()
    };
    let database = options
        .database
        .unwrap_or_else(|| dir.path().join("gk-regler.sqlite3"));
    let mut app = TestApp {
        rules_dir,
        database,
        api: Api::new(String::new()),
        handlaggare: User {
            name: "anna.handlaggare",
            token: String::new(),
        },
        handlaggare2: User {
            name: "bo.handlaggare",
            token: String::new(),
        },
        policy: User {
            name: "pia.policy",
            token: String::new(),
        },
        analytiker: User {
            name: "alva.analytiker",
            token: String::new(),
        },
        admin: User {
            name: "adam.admin",
            token: String::new(),
        },
        env: options.env,
        server: None,
        dir,
    };
    app.handlaggare.token = app.create_token("handlaggare", app.handlaggare.name);
    app.handlaggare2.token = app.create_token("handlaggare", app.handlaggare2.name);
    app.policy.token = app.create_token("policy", app.policy.name);
    app.analytiker.token = app.create_token("analytiker", app.analytiker.name);
    app.admin.token = app.create_token("admin", app.admin.name);
    app.start();
    app
}

impl TestApp {
    /// A `gk-regler` command configured for this app only: no inherited `GK_REGLER_*`,
    /// run inside the temporary directory, `RUST_LOG=info` unless the test says else.
    /// The command [`Self::run_cli`] runs, for a test that changes its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gk-regler"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GK_REGLER_") {
                command.env_remove(name);
            }
        }
        let path = |p: PathBuf| p.into_os_string();
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .env("GK_REGLER_LISTEN", "127.0.0.1:0")
            .env("GK_REGLER_RULES", path(self.rules_dir.clone()))
            .env("GK_REGLER_DATABASE", path(self.database.clone()))
            .env(
                "GK_REGLER_TOKENS_FILE",
                path(self.dir.path().join("tokens.yaml")),
            )
            .env(
                "GK_REGLER_PSEUDONYM_KEY_FILE",
                path(self.dir.path().join("pseudonym.key")),
            )
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        // Its temporary files (an unpacked candidate) stay in this app's own directory,
        // where a test can look for leftovers without seeing other processes' files.
        let temporary = self.dir.path().join("tmp");
        if std::fs::create_dir_all(&temporary).is_ok() {
            command.env("TMPDIR", temporary);
        }
        command
    }

    /// The service's temporary directory (its `TMPDIR`).
    pub fn temporary_dir(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// `gk-regler token create --role ROLE --name NAME`; returns the printed token.
    pub fn create_token(&self, role: &str, name: &str) -> String {
        let args = ["token", "create", "--role", role, "--name", name];
        let out = run_command(self.command(&args), &format!("{args:?}"), None);
        assert_eq!(out.code, 0, "{out}");
        let token = out.stdout.trim().to_owned();
        assert!(
            token.len() > 20 && !token.contains(char::is_whitespace),
            "stdout should be the token alone: {out}"
        );
        token
    }

    /// Runs `gk-regler ARGS` configured for this app (its database, tokens file, key and
    /// environment), e.g. `token list`, while the service may be running.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_command(self.command(args), &format!("{args:?}"), None)
    }

    /// Starts `serve`, reads the address it prints and waits for /health/ready.
    fn start(&mut self) {
        assert!(self.server.is_none(), "the service is already running");
        let mut child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gk-regler serve");
        let (lines, printed) = mpsc::channel();
        let stdout = Captured::start(child.stdout.take().expect("stdout pipe"), Some(lines));
        let stderr = Captured::start(child.stderr.take().expect("stderr pipe"), None);
        let server = Server {
            child,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + SERVICE_TIMEOUT;
        const PREFIX: &str = "gk-regler lyssnar på http://";
        let address = loop {
            match printed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(PREFIX) {
                        break rest
                            .split_whitespace()
                            .next()
                            .expect("an address after the prefix")
                            .to_owned();
                    }
                }
                Err(_) => {
                    let stopped = Self::stop(server, Instant::now());
                    panic!("serve printed no {PREFIX:?} line:\n{stopped}");
                }
            }
        };
        self.api = Api::new(format!("http://{address}"));
        self.server = Some(server);
        loop {
            let ready =
                self.api
                    .try_request(reqwest::Method::GET, "/health/ready", &NoToken, Body::None);
            if ready.is_ok_and(|r| r.status == 200) {
                break;
            }
            if Instant::now() > deadline {
                let stopped = self.kill();
                panic!("serve did not become ready:\n{stopped}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills `server` if it still runs and collects what it printed.
    fn stop(mut server: Server, asked_at: Instant) -> Stopped {
        let _ = server.child.kill();
        let status = server.child.wait().expect("wait for gk-regler serve");
        Stopped {
            code: status.code(),
            elapsed: asked_at.elapsed(),
            stdout: server.stdout.finish(),
            stderr: server.stderr.finish(),
        }
    }

    fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("the service is running")
    }

    /// The process id of the running service.
    pub fn pid(&self) -> u32 {
        self.server
            .as_ref()
            .expect("the service is running")
            .child
            .id()
    }

    /// Ends the service with SIGKILL (no chance to clean up) and returns its output.
    pub fn kill(&mut self) -> Stopped {
        let server = self.server.take().expect("the service is running");
        Self::stop(server, Instant::now())
    }

    /// Starts the service again on the same database, key and tokens (a new port).
    pub fn restart(&mut self) {
        self.start();
    }

    /// Points this app's later commands and starts at another database and pseudonym key
    /// file (e.g. a restored copy); the tokens and rules stay the same.
    pub fn use_files(&mut self, database: PathBuf, key_file: PathBuf) {
        self.database = database;
        self.env.push((
            "GK_REGLER_PSEUDONYM_KEY_FILE",
            key_file.to_string_lossy().into_owned(),
        ));
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; a process still
    /// running then is killed and the test fails.
    pub fn terminate(&mut self, limit: Duration) -> Stopped {
        let pid = self.server().child.id().to_string();
        let asked_at = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}: {status}");
        let mut server = self.server.take().expect("the service is running");
        loop {
            if let Some(status) = server.child.try_wait().expect("wait for gk-regler serve") {
                return Stopped {
                    code: status.code(),
                    elapsed: asked_at.elapsed(),
                    stdout: server.stdout.finish(),
                    stderr: server.stderr.finish(),
                };
            }
            if asked_at.elapsed() > limit {
                let stopped = Self::stop(server, asked_at);
                panic!("serve did not stop within {limit:?} of SIGTERM:\n{stopped}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn get(&self, path: &str, who: &(impl Credentials + ?Sized)) -> Reply {
        self.api.get(path, who)
    }

    pub fn post(&self, path: &str, who: &(impl Credentials + ?Sized), body: &Value) -> Reply {
        self.api.post(path, who, body)
    }

    pub fn check(&self, who: &(impl Credentials + ?Sized), profile: &Value) -> Reply {
        self.api.check(who, profile)
    }

    /// Runs another `gk-regler` command (`import`, `audit`, `replay`, …) against this
    /// app's database, key and rules.
    pub fn run_cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_command(self.command(args), &args.join(" "), stdin)
    }

    /// Imports the whole development cohort (`examples/cohort-2018`: profiles and
    /// outcomes) with `gk-regler import`, which must succeed.
    pub fn import_development_cohort(&self) {
        let cohort = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cohort-2018");
        let out = self.run_cli(
            &[
                "import",
                cohort.join("profiles.jsonl").to_str().expect("utf-8"),
                "--outcomes",
                cohort.join("outcomes.jsonl").to_str().expect("utf-8"),
            ],
            None,
        );
        assert_eq!(out.code, 0, "{out}");
    }

    /// A read-only connection to the service's database.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            &self.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database read-only")
    }

    /// The number of rows in `table`.
    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap_or_else(|err| panic!("count {table}: {err}"))
    }

    /// The bytes of the database file and of its write-ahead log, if any.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(&self.database).expect("read the database file");
        let mut wal = self.database.clone().into_os_string();
        wal.push("-wal");
        if let Ok(log) = std::fs::read(PathBuf::from(wal)) {
            bytes.extend(log);
        }
        bytes
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}
