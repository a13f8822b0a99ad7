//! Attacks a hostile tester made on the release binary, each reproduced against the
//! real `gk-regler` (CLI or `serve` over HTTP with a temporary database) and shown to
//! fail safely. RELIABILITY.md ("Defects found by hostile testing") lists each defect
//! with the test here that covers it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{AppOptions, TestApp, arg, base_profile, run, spawn_app_with};

/// Stands in for the pseudonym key: content no answer may ever show.
const SECRET: &str = "5ec7e75ec7e75ec7e7a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef";

/// Whether `text` holds any 8-character run of [`SECRET`].
fn shows_secret(text: &str) -> bool {
    SECRET
        .as_bytes()
        .windows(8)
        .any(|w| text.contains(std::str::from_utf8(w).unwrap_or("")))
}

/// A service on a copy of `rules/` with a secret file beside (outside) that copy.
fn app_with_secret() -> (TestApp, std::path::PathBuf) {
    let app = spawn_app_with(AppOptions {
        copy_rules: true,
        ..AppOptions::default()
    });
    let secret = app.dir.path().join("secret.key");
    std::fs::write(&secret, SECRET).expect("write the secret");
    (app, secret)
}

/// Adds rule `id` with `script` to the manifest in `rules`.
fn add_rule(rules: &Path, id: &str, script: &str) {
    let manifest = rules.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        format!(
            "{text}\n  - id: {id}\n    script: {script}\n    title: Länk\n    severity: info\n    grounds: policy\n    rationale: En regel.\n    sources:\n      - Test\n"
        ),
    )
    .expect("extend the manifest");
}

fn problems(reply: &crate::helpers::Reply) -> Vec<Value> {
    reply.problem(422)["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems: {reply}"))
        .clone()
}

#[test]
fn symlinked_rule_script_is_refused_without_showing_its_target() {
    let (app, secret) = app_with_secret();
    std::os::unix::fs::symlink(&secret, app.rules_dir.join("lank.rhai")).expect("symlink");
    add_rule(&app.rules_dir, "lank", "lank.rhai");

    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    assert!(!shows_secret(&reply.text), "{reply}");
    let problems = problems(&reply);
    let problem = problems
        .iter()
        .find(|p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("lank.rhai"))
        })
        .unwrap_or_else(|| panic!("lank.rhai is named: {reply}"));
    assert!(problem["line"].is_u64(), "{problem:#}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("symbolisk länk")),
        "{problem:#}"
    );
    // `lint` on the same directory says the same and shows nothing of the target either.
    let out = run(&["lint", arg(&app.rules_dir)], None);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("lank.rhai") || out.stderr.contains("lank.rhai"),
        "{out}"
    );
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
}

#[test]
fn symlinked_rule_test_file_is_never_shown() {
    let (app, secret) = app_with_secret();
    std::os::unix::fs::symlink(&secret, app.rules_dir.join("tests").join("zz.yaml"))
        .expect("symlink");

    for who in [&app.handlaggare, &app.policy, &app.analytiker, &app.admin] {
        let page = app.get("/regler", who);
        assert!(
            !shows_secret(&page.text),
            "{} sees the secret:\n{page}",
            who.name
        );
    }
    let page = app.get("/regler", &app.policy);
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text.contains("zz.yaml"),
        "the refused file is named: {page}"
    );

    let out = run(&["test", arg(&app.rules_dir)], None);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
    assert!(
        out.stdout.contains("zz.yaml") || out.stderr.contains("zz.yaml"),
        "{out}"
    );
}

#[test]
fn yaml_errors_in_rule_tests_do_not_quote_values() {
    let (app, _) = app_with_secret();
    // A regular file in the tests folder whose whole content is one value.
    std::fs::write(app.rules_dir.join("tests").join("zz.yaml"), SECRET).expect("write");
    let out = run(&["test", arg(&app.rules_dir)], None);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        !shows_secret(&out.stdout) && !shows_secret(&out.stderr),
        "{out}"
    );
    assert!(
        out.stdout.contains("zz.yaml:1:1") || out.stderr.contains("zz.yaml:1:1"),
        "{out}"
    );
}

#[test]
fn fifo_as_rule_script_neither_hangs_reload_nor_shutdown() {
    let (mut app, _) = app_with_secret();
    let fifo = app.rules_dir.join("ror.rhai");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo: {made}");
    add_rule(&app.rules_dir, "ror", "ror.rhai");

    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let problems = problems(&reply);
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("ror.rhai"))),
        "{reply}"
    );
    // The old rules still answer.
    let check = app.check(&app.handlaggare, &base_profile());
    assert_eq!(check.status, 201, "{check}");
    let stopped = app.terminate(Duration::from_secs(20));
    assert_eq!(stopped.code, Some(0), "{stopped}");
}

#[test]
fn rule_script_outside_the_rules_folder_is_refused() {
    let (app, _) = app_with_secret();
    std::fs::write(app.dir.path().join("ute.rhai"), "true").expect("write");
    add_rule(&app.rules_dir, "ute", "../ute.rhai");
    let reply = app.post("/api/v1/rules/reload", &app.policy, &json!({}));
    let problems = problems(&reply);
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("../ute.rhai"))),
        "{reply}"
    );
    let rules = app.get("/api/v1/rules", &app.policy).json();
    assert!(
        !rules.to_string().contains("\"ute\""),
        "the rule is not loaded: {rules:#}"
    );
}
