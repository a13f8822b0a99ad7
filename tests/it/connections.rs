//! The service's connections under attack: half-sent headers, idle keep-alive
//! connections, more connections than it may hold, a SIGTERM while a request hangs, long
//! audits beside the liveness probe, and the caching and framing headers of personal and
//! audit data. Each test talks to the real `gk-regler serve` over TCP.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{AppOptions, NoToken, TestApp, base_profile, spawn_app_with};

/// Longest a test waits for the service to close a connection it should close.
const CLOSE_LIMIT: Duration = Duration::from_secs(15);

fn app_with(env: &[(&'static str, &str)]) -> TestApp {
    spawn_app_with(AppOptions {
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..AppOptions::default()
    })
}

/// A TCP connection to the service, with a read timeout so a test never hangs.
fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.api.authority()).expect("connect to the service");
    stream
        .set_read_timeout(Some(CLOSE_LIMIT))
        .expect("set read timeout");
    stream
}

/// Reads until the service closes the connection; `Err` with what happened when it
/// does not within [`CLOSE_LIMIT`]. Returns what was read.
fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(seen),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return Ok(seen),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "still open after {CLOSE_LIMIT:?}; read so far: {:?}",
                    String::from_utf8_lossy(&seen)
                ));
            }
            Err(err) => return Err(format!("read failed: {err}")),
        }
    }
}

/// Reads one whole answer (headers and a `Content-Length` body) from a kept-alive
/// connection and returns its head.
fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("a length"))
                })
                .expect("the answer has a Content-Length");
            if seen.len() >= end + 4 + length {
                return head;
            }
        }
        let n = stream.read(&mut buffer).expect("read the answer");
        assert!(n > 0, "closed before the answer was whole: {seen:?}");
        seen.extend_from_slice(&buffer[..n]);
    }
}

#[test]
fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let app = app_with(&[("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let mut stream = connect(&app);
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: gk\r\nX-Slow: ")
        .expect("send half a header");
    let started = Instant::now();
    let result = read_until_closed(&mut stream);
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before the timeout"
    );
    // A complete request on a new connection is still answered.
    assert_eq!(app.get("/health/live", &NoToken).status, 200);
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    let app = app_with(&[("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let mut stream = connect(&app);
    let result = read_until_closed(&mut stream);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let app = app_with(&[
        ("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "30"),
        ("GK_REGLER_IDLE_TIMEOUT_SECONDS", "1"),
    ]);
    let mut stream = connect(&app);
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: gk\r\n\r\n")
        .expect("send a request");
    let head = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Kept alive, then idle: closed after the idle timeout, long before the header one.
    let started = Instant::now();
    let result = read_until_closed(&mut stream);
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closed only after {:?}",
        started.elapsed()
    );
}

/// Reads an answer's head (up to the blank line); `Err` with what was read when none
/// comes within [`CLOSE_LIMIT`].
fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) => return Err(format!("closed: {:?}", String::from_utf8_lossy(&seen))),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(err) => {
                return Err(format!(
                    "no answer ({err}); read so far: {:?}",
                    String::from_utf8_lossy(&seen)
                ));
            }
        }
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

/// A post to a web page is answered from its headers when it has no session (or, to the
/// sign-in page, no sign-in cookie): the service never waits for, nor holds, the body of
/// someone who has not signed in, so 500 such posts of 5 MB each, sent slowly, cost it
/// nothing.
#[test]
fn a_post_without_a_session_is_answered_before_its_body_is_read() {
    let app = app_with(&[
        ("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "600"),
        ("GK_REGLER_IDLE_TIMEOUT_SECONDS", "600"),
    ]);
    for (path, content_type, status) in [
        ("/regler/kandidat", "multipart/form-data; boundary=x", "303"),
        ("/logga-in", "application/x-www-form-urlencoded", "403"),
    ] {
        let mut stream = connect(&app);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: 5000000\r\n\r\n--x\r\n",
            app.api.authority()
        );
        stream
            .write_all(head.as_bytes())
            .expect("send a head and the start of a body");
        let answer = read_head(&mut stream).unwrap_or_else(|err| panic!("{path}: {err}"));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {answer}"
        );
    }
}

#[test]
fn a_stalled_request_body_is_given_up_after_the_idle_timeout() {
    let app = app_with(&[
        ("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "600"),
        ("GK_REGLER_IDLE_TIMEOUT_SECONDS", "1"),
    ]);
    let mut stream = connect(&app);
    let head = format!(
        "POST /api/v1/checks HTTP/1.1\r\nHost: gk\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.handlaggare.token
    );
    stream
        .write_all(head.as_bytes())
        .expect("send a head and one byte of body");
    let answer = read_until_closed(&mut stream).expect("given up and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a client error or nothing: {answer}"
    );
    assert_eq!(app.count("evaluations"), 0, "nothing stored");
}

#[test]
fn a_request_body_that_trickles_in_is_given_up_after_the_body_timeout() {
    // One byte a second restarts the idle timeout each time: a token holder held each of
    // the capped connections that way, and normal checks got 503.
    let app = app_with(&[
        ("GK_REGLER_IDLE_TIMEOUT_SECONDS", "3"),
        ("GK_REGLER_BODY_TIMEOUT_SECONDS", "2"),
    ]);
    // A web page posted with a bearer token needs no form token, but its body is read
    // within the same time: that post was the one read without a deadline, by any
    // token, whatever its role.
    const FORM: &str = "application/x-www-form-urlencoded";
    for (path, token, kind, said) in [
        (
            "/api/v1/checks",
            &app.handlaggare,
            "application/json",
            "request-timeout",
        ),
        (
            "/api/v1/outcomes",
            &app.analytiker,
            "application/json",
            "request-timeout",
        ),
        ("/kontroll", &app.handlaggare, FORM, "kom inte fram i tid"),
        ("/kontroll", &app.analytiker, FORM, "kom inte fram i tid"),
    ] {
        let token = &token.token;
        let mut stream = connect(&app);
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: gk\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {kind}\r\nContent-Length: 200000\r\n\r\n{{"
        )
        .expect("send a head and one byte of body");
        let started = Instant::now();
        let trickle = stream.try_clone().expect("clone the stream");
        let trickling = std::thread::spawn(move || {
            let mut trickle = trickle;
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(500));
                if trickle.write_all(b" ").is_err() {
                    break;
                }
            }
        });
        let answer = read_until_closed(&mut stream).expect("given up and closed");
        let elapsed = started.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains(said), "{path}: {answer}");
        assert!(elapsed < Duration::from_secs(8), "{path}: took {elapsed:?}");
        trickling.join().expect("trickling thread");
    }
    assert_eq!(app.count("evaluations"), 0, "nothing stored");
}

#[test]
fn at_the_connection_cap_a_new_connection_gets_503() {
    let app = app_with(&[("GK_REGLER_MAX_CONNECTIONS", "4")]);
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&app)).collect();
    // The fifth is answered 503 at once, without the service reading a request.
    let mut fifth = connect(&app);
    let answer = read_until_closed(&mut fifth).expect("the fifth is answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after:"),
        "{answer}"
    );
    assert!(answer.contains("för många"), "a Swedish reason: {answer}");
    // A liveness probe is answered even at the cap: the process does answer. Nothing
    // else is, readiness included.
    for (request, status) in [
        (
            "GET /health/live HTTP/1.1\r\nHost: gk\r\n\r\n",
            "HTTP/1.1 200",
        ),
        (
            "GET /health/ready HTTP/1.1\r\nHost: gk\r\n\r\n",
            "HTTP/1.1 503",
        ),
        (
            "GET /health/liveness HTTP/1.1\r\nHost: gk\r\n\r\n",
            "HTTP/1.1 503",
        ),
        (
            "POST /health/live HTTP/1.1\r\nHost: gk\r\n\r\n",
            "HTTP/1.1 503",
        ),
    ] {
        let mut probe = connect(&app);
        probe.write_all(request.as_bytes()).expect("send");
        let answer = read_until_closed(&mut probe).expect("answered and closed");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(status), "{request:?}: {answer}");
        if status.ends_with("200") {
            assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
        }
    }
    // Connections over the cap that send nothing and never close are let go within
    // 0.3 s each, so a flood of them that has stopped growing leaves the probe answered.
    let silent: Vec<TcpStream> = (0..128).map(|_| connect(&app)).collect();
    std::thread::sleep(Duration::from_millis(800));
    let mut probe = connect(&app);
    probe
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: gk\r\n\r\n")
        .expect("send");
    let answer = read_until_closed(&mut probe).expect("answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(silent);
    // Once one held connection closes, a new one is served again.
    drop(held);
    let deadline = Instant::now() + CLOSE_LIMIT;
    loop {
        let reply = app
            .api
            .try_request(
                reqwest::Method::GET,
                "/health/live",
                &NoToken,
                crate::helpers::Body::None,
            )
            .map(|r| r.status);
        if reply.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served again after the held connections closed: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn made_up_method_names_do_not_grow_the_metrics_or_the_log() {
    // hyper accepts any method name; each one counted under its own label was a new
    // counter kept for good: 4,000 long names took 280 MB, without a token. At debug
    // level each request's span wrote the name, several times.
    let mut app = app_with(&[("RUST_LOG", "debug")]);
    let mut stream = connect(&app);
    let long = "X".repeat(4096);
    for i in 0..50 {
        write!(
            stream,
            "M{i}{long} /health/live HTTP/1.1\r\nHost: gk\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("send a request");
        let head = read_response(&mut stream);
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    }
    let metrics = app.get("/metrics", &NoToken);
    assert_eq!(metrics.status, 200, "{metrics}");
    assert!(!metrics.text.contains(&long), "a made-up method is a label");
    assert!(
        metrics
            .text
            .lines()
            .any(|l| l.starts_with("gk_regler_http_requests_total{")
                && l.contains("method=\"other\"")
                && l.ends_with(" 50")),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.len() < 64 * 1024,
        "{} bytes",
        metrics.text.len()
    );
    let stopped = app.terminate(Duration::from_secs(20));
    assert!(
        !stopped.stderr.contains("XXXXXXXX"),
        "a made-up method in the log"
    );
    assert!(stopped.stderr.contains("other"), "{}", stopped.stderr.len());
}

#[test]
fn sigterm_with_a_half_sent_request_exits_within_the_grace_period() {
    let mut app = app_with(&[
        ("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", "600"),
        ("GK_REGLER_IDLE_TIMEOUT_SECONDS", "600"),
        ("GK_REGLER_SHUTDOWN_GRACE_SECONDS", "1"),
    ]);
    let mut stream = connect(&app);
    stream
        .write_all(b"POST /api/v1/checks HTTP/1.1\r\nHost: gk\r\nContent-Length: 100\r\n\r\n{")
        .expect("send half a request");
    let mut half_header = connect(&app);
    half_header
        .write_all(b"GET /health/live HTTP/1.1\r\nHo")
        .expect("send half a header");
    // Let the service take both connections before it is asked to stop.
    std::thread::sleep(Duration::from_millis(300));
    let stopped = app.terminate(Duration::from_secs(10));
    assert_eq!(stopped.code, Some(0), "{stopped}");
    assert!(
        stopped.stdout.contains("gk-regler har stängts"),
        "{stopped}"
    );
}

#[test]
fn liveness_answers_while_four_large_audits_render() {
    let app = app_with(&[]);
    app.import_development_cohort();

    // Two months of the cohort (about 500 cases): seconds per audit in a debug build.
    let audits = audits_in_flight(&app, 4);
    // An answer that came back while the audits were still rendering: a service whose
    // request workers were busy with the audits would answer only after them. (How fast
    // it answers is a benchmark's question: benches/live-under-audit.sh.)
    let mut answered_during = 0;
    while !audits.iter().all(|a| a.is_finished()) {
        let reply = app.get("/health/live", &NoToken);
        assert_eq!(reply.status, 200, "{reply}");
        if !audits.iter().all(|a| a.is_finished()) {
            answered_during += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for audit in audits {
        assert!(
            audit.join().expect("audit thread").len() > 10_000,
            "a real report"
        );
    }
    assert!(
        answered_during > 0,
        "no liveness answer came while the audits were in flight"
    );
}

/// `count` HTML audits of two months of the cohort (about 500 cases), half through the
/// API and half through the web page, each on a thread of its own; each thread gives the
/// report it was answered with (200, or the thread panics).
fn audits_in_flight(app: &TestApp, count: usize) -> Vec<std::thread::JoinHandle<String>> {
    // One analyst each: one person may have two audits waiting or running at once.
    let tokens: Vec<String> = (0..count)
        .map(|i| app.create_token("analytiker", &format!("analytiker.{i}")))
        .collect();
    (0..count)
        .map(|i| {
            let url = app.api.url(if i % 2 == 0 {
                "/api/v1/audit?format=html&from=2024-01-01&to=2024-02-29"
            } else {
                "/uppfoljning?fran=2024-01-01&till=2024-02-29"
            });
            let token = tokens[i].clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(600))
                    .build()
                    .expect("HTTP client");
                let reply = client
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .unwrap_or_else(|err| panic!("{url}: {err}"));
                assert_eq!(reply.status(), 200, "{url}");
                reply.text().expect("the report")
            })
        })
        .collect()
}

/// The value of the metric `name` (a gauge without labels) on `/metrics`.
fn gauge(app: &TestApp, name: &str) -> f64 {
    let reply = app.get("/metrics", &NoToken);
    assert_eq!(reply.status, 200, "{reply}");
    reply
        .text
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{name} is not on /metrics"))
}

#[test]
fn long_work_beyond_its_one_thread_waits_its_turn_and_completes_while_liveness_answers() {
    let app = app_with(&[("GK_REGLER_LONG_WORK_THREADS", "1")]);
    app.import_development_cohort();
    assert_eq!(gauge(&app, "gk_regler_long_work_threads"), 1.0);

    // Three audits for one thread: two of them wait for it, and every one is answered.
    let audits = audits_in_flight(&app, 3);
    // A backup and a replay beside them, as commands of their own.
    let backup_dir = tempfile::tempdir().expect("temp dir");
    let backup_to = backup_dir.path().join("kopia");
    let rules = app.rules_dir.to_str().expect("utf-8").to_owned();
    let (backup, replay) = std::thread::scope(|scope| {
        let backup =
            scope.spawn(|| app.run_cli(&["backup", backup_to.to_str().expect("utf-8")], None));
        let replay = scope.spawn(|| {
            app.run_cli(
                &[
                    "replay",
                    "--rules",
                    &rules,
                    "--from",
                    "2024-01-01",
                    "--to",
                    "2024-02-29",
                    "--format",
                    "json",
                ],
                None,
            )
        });
        let mut answered_during = 0;
        let busy = || {
            !(audits.iter().all(|a| a.is_finished())
                && backup.is_finished()
                && replay.is_finished())
        };
        while busy() {
            let reply = app.get("/health/live", &NoToken);
            assert_eq!(reply.status, 200, "{reply}");
            if busy() {
                answered_during += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            answered_during > 0,
            "no liveness answer came while the long work was in progress"
        );
        (
            backup.join().expect("backup thread"),
            replay.join().expect("replay thread"),
        )
    });
    for audit in audits {
        let page = audit.join().expect("audit thread");
        assert!(page.len() > 10_000, "a real report");
        assert!(page.contains("</html>"), "a whole page");
    }
    assert_eq!(backup.code, 0, "{backup}");
    assert!(backup_to.join("manifest.json").is_file());
    assert_eq!(replay.code, 0, "{replay}");
    let replayed: serde_json::Value = serde_json::from_str(&replay.stdout).expect("replay JSON");
    assert!(replayed.is_object(), "{replay}");
    assert_eq!(gauge(&app, "gk_regler_long_work_running"), 0.0);
    assert_eq!(gauge(&app, "gk_regler_long_work_queued"), 0.0);
}

#[test]
fn personal_and_audit_data_is_never_cached_and_the_audit_page_is_never_framed() {
    let app = app_with(&[]);
    let check = app.check(&app.handlaggare, &base_profile());
    assert_eq!(check.status, 201, "{check}");
    let id = check.json()["evaluation_id"].as_i64().expect("an id");
    let mut replies = vec![
        ("POST /api/v1/checks", check),
        (
            "GET /api/v1/checks/{id}",
            app.get(&format!("/api/v1/checks/{id}"), &app.handlaggare),
        ),
        (
            "POST /api/v1/cases/checks",
            app.post(
                "/api/v1/cases/checks",
                &app.handlaggare,
                &json!({"case_id": "IT-0001"}),
            ),
        ),
        (
            "POST /api/v1/checks/dry-run",
            app.post("/api/v1/checks/dry-run", &app.handlaggare, &base_profile()),
        ),
        (
            "POST /api/v1/outcomes",
            app.post(
                "/api/v1/outcomes",
                &app.analytiker,
                &json!({"case_id": "IT-0001", "ended_on": "2024-06-01", "outcome": "left_insurance", "reasons": ["work_supported"]}),
            ),
        ),
    ];
    for format in ["json", "csv", "html"] {
        replies.push((
            "GET /api/v1/audit",
            app.get(&format!("/api/v1/audit?format={format}"), &app.analytiker),
        ));
    }
    replies.push(("GET /uppfoljning", app.get("/uppfoljning", &app.analytiker)));
    for (route, reply) in &replies {
        assert!(
            (200..300).contains(&reply.status),
            "{route} should succeed: {reply}"
        );
        assert_eq!(
            reply.header("cache-control"),
            "no-store",
            "{route}: {reply}"
        );
        // A CSV or JSON answer is never guessed to be a page.
        assert_eq!(
            reply.header("x-content-type-options"),
            "nosniff",
            "{route}: {reply}"
        );
    }
    for (route, reply) in replies
        .iter()
        .filter(|(_, r)| r.header("content-type").starts_with("text/html"))
    {
        let csp = reply.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{route}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{route}: {csp}");
        assert_eq!(reply.header("x-frame-options"), "DENY", "{route}");
        assert_eq!(reply.header("x-content-type-options"), "nosniff", "{route}");
    }
    assert_eq!(
        replies
            .iter()
            .filter(|(_, r)| r.header("content-type").starts_with("text/html"))
            .count(),
        2,
        "the API's HTML audit and the web page"
    );
}
