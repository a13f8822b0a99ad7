//! People managed while the service runs, web sessions and cross-site forgery, against
//! the real `gk-regler serve`: tokens made, listed and revoked with the CLI and the
//! admin API take effect at the next request; the web cookie is a server-side session
//! that signing out, revoking and idling end; forms from another origin change nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{AppOptions, NoToken, TestApp, base_profile, spawn_app, spawn_app_with};
use crate::web::{UNKNOWN_SESSION, WebClient, csrf_of, set_cookie};

/// The token `gk-regler token create` prints (stdout is the token alone).
fn cli_token(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let out = app.cli(&all);
    assert_eq!(out.code, 0, "{out:?}", out = (&out.stdout, &out.stderr));
    out.stdout.trim().to_owned()
}

/// The number of the account named `name` in `token list`.
fn listed_id(app: &TestApp, name: &str) -> String {
    let out = app.cli(&["token", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(name))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} not listed:\n{}", out.stdout))
        .to_owned()
}

#[test]
fn a_token_made_revoked_or_expired_with_the_cli_counts_at_once_while_serve_runs() {
    let app = spawn_app();
    // Made while serve runs: accepted at the next request, no restart.
    let token = cli_token(&app, &["--role", "handlaggare", "--name", "nils.ny"]);
    let reply = app.api.check(token.as_str(), &base_profile());
    assert_eq!(reply.status, 201, "{reply}");

    // The bearer scheme in any letter case (RFC 9110).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let reply = reqwest::blocking::Client::new()
            .get(app.api.url("/api/v1/rules"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .expect("answer");
        assert_eq!(reply.status().as_u16(), 200, "{scheme}");
    }

    // The list names people, never a token or its hash.
    let list = app.cli(&["token", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("nils.ny"), "{}", list.stdout);
    assert!(list.stdout.contains("anna.handlaggare"), "{}", list.stdout);
    for secret in [&token, &app.admin.token] {
        assert!(!list.stdout.contains(secret.as_str()));
        assert!(!list.stdout.contains(&secret[4..20]));
    }

    // Revoked: refused at the very next request.
    let id = listed_id(&app, "nils.ny");
    let revoked = app.cli(&["token", "revoke", &id]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    app.api.check(token.as_str(), &base_profile()).problem(401);
    let again = app.cli(&["token", "revoke", &id]);
    assert_eq!(again.code, 2, "revoking twice: {}", again.stdout);
    assert!(app.cli(&["token", "list"]).stdout.contains("återkallad"));

    // Expired: a token valid for one second is refused once the second has passed.
    let short = cli_token(
        &app,
        &["--role", "policy", "--name", "kort.tid", "--expires", "1s"],
    );
    std::thread::sleep(Duration::from_millis(2100));
    app.api.get("/api/v1/rules", short.as_str()).problem(401);
    // A moment already past, or nonsense, is refused when the token is made.
    for bad in ["2001-01-01", "snart"] {
        let out = app.cli(&[
            "token",
            "create",
            "--role",
            "policy",
            "--name",
            "x",
            "--expires",
            bad,
        ]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stdout);
        assert!(out.stdout.is_empty(), "no token printed for {bad}");
    }

    // Each action is in the access log, without the token.
    let db = app.db();
    let actions: Vec<String> = db
        .prepare("SELECT action FROM access_log WHERE action LIKE 'account_%' ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        })
        .expect("access log");
    assert!(
        actions.contains(&"account_create".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"account_revoke".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"account_list".to_owned()), "{actions:?}");
    let dump: String = db
        .prepare(
            "SELECT group_concat(actor || action || coalesce(account_id, ''), ' ') FROM access_log",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .expect("log text");
    assert!(!dump.contains(&token));
}

/// With standard output a full disk (`token create … >/dev/full`), the command said
/// nothing of it and exited 0, and the stored token nobody saw stayed valid.
#[test]
fn a_token_that_could_not_be_shown_is_revoked_and_the_command_fails() {
    use std::process::Stdio;
    let app = spawn_app();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut command = app.command(&["token", "create", "--role", "policy", "--name", "osedd"]);
    command.stdout(Stdio::from(full)).stderr(Stdio::piped());
    let out = command.output().expect("token create");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kunde inte skrivas till standard ut (disken är full)")
            && stderr.contains("den är återkallad"),
        "{stderr}"
    );
    let list = app.cli(&["token", "list"]);
    let row = list
        .stdout
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some("osedd"))
        .unwrap_or_else(|| panic!("osedd not listed:\n{}", list.stdout));
    assert!(row.contains("återkallad"), "{row}");

    // The first admin of a new database, unseen, is revoked too: it was the last active
    // admin, but nobody holds it.
    let fresh = tempfile::tempdir().expect("a folder");
    let in_fresh = |args: &[&str], stdout: Stdio| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gk-regler"))
            .args(args)
            .current_dir(fresh.path())
            .env("GK_REGLER_DATABASE", fresh.path().join("gk.sqlite3"))
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("run gk-regler")
    };
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let first = in_fresh(
        &["token", "create", "--role", "admin", "--name", "forsta"],
        Stdio::from(full),
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("den är återkallad"), "{stderr}");
    let list = in_fresh(&["token", "list"], Stdio::piped());
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.contains("forsta") && l.contains("återkallad")),
        "{list}"
    );

    // Sent to /dev/null (or closed, which the standard library turns into /dev/null), a
    // write succeeds: the command refuses before it makes a token.
    let null = in_fresh(
        &["token", "create", "--role", "admin", "--name", "borta"],
        Stdio::null(),
    );
    let stderr = String::from_utf8_lossy(&null.stderr);
    assert_eq!(null.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ingen token skapades"), "{stderr}");
    let list = in_fresh(&["token", "list"], Stdio::piped());
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains("borta"), "{list}");
}

#[test]
fn admins_manage_tokens_through_the_api_and_nobody_else_can() {
    let app = spawn_app();
    let body =
        json!({ "name": "greta.ny", "role": "analytiker", "purpose": "test", "expires": "30d" });
    for who in [&app.handlaggare, &app.policy, &app.analytiker] {
        app.api
            .post("/api/v1/admin/tokens", who, &body)
            .problem(403);
        app.api.get("/api/v1/admin/tokens", who).problem(403);
        app.api
            .request(
                reqwest::Method::POST,
                "/api/v1/admin/tokens/1/revoke",
                who,
                crate::helpers::Body::None,
            )
            .problem(403);
    }
    let created = app.api.post("/api/v1/admin/tokens", &app.admin, &body);
    assert_eq!(created.status, 201, "{created}");
    let created = created.json();
    let token = created["token"]
        .as_str()
        .expect("the token, once")
        .to_owned();
    assert_eq!(created["purpose"], "test");
    assert!(created["expires_at"].is_string());
    // It works at once: it reads the rules, and, made for tests, not the audit of real
    // checks.
    assert_eq!(app.api.get("/api/v1/rules", token.as_str()).status, 200);
    assert_eq!(app.api.get("/api/v1/audit", token.as_str()).status, 403);

    // The same name twice while the first is active: refused.
    app.api
        .post("/api/v1/admin/tokens", &app.admin, &body)
        .problem(400);
    // Unknown fields and roles: refused naming nothing secret.
    app.api
        .post(
            "/api/v1/admin/tokens",
            &app.admin,
            &json!({ "name": "x", "role": "kung" }),
        )
        .problem(422);
    // An unknown key with digits, or a value of the wrong type, is not repeated.
    for body in [
        json!({ "name": "x", "role": "handlaggare", "198001011234": true }),
        json!({ "name": 198001011234_u64, "role": "handlaggare" }),
    ] {
        let refused = app.api.post("/api/v1/admin/tokens", &app.admin, &body);
        refused.problem(422);
        assert!(!refused.text.contains("198001011234"), "{refused}");
    }
    // Nor is a validity that cannot be read.
    let refused = app.api.post(
        "/api/v1/admin/tokens",
        &app.admin,
        &json!({ "name": "y", "role": "handlaggare", "expires": "19800101-1234" }),
    );
    refused.problem(400);
    assert!(!refused.text.contains("19800101"), "{refused}");

    let list = app.api.get("/api/v1/admin/tokens", &app.admin);
    assert_eq!(list.status, 200, "{list}");
    assert!(!list.text.contains(&token), "no token in the list");
    assert!(!list.text.contains("sha256"), "no hash in the list");
    let entries: Vec<Value> = list.json().as_array().expect("a list").clone();
    let id = entries
        .iter()
        .find(|e| e["name"] == "greta.ny")
        .and_then(|e| e["id"].as_i64())
        .expect("listed");
    let path = format!("/api/v1/admin/tokens/{id}/revoke");
    let revoked = app.api.request(
        reqwest::Method::POST,
        &path,
        &app.admin,
        crate::helpers::Body::None,
    );
    assert_eq!(revoked.status, 204, "{revoked}");
    app.api.get("/api/v1/audit", token.as_str()).problem(401);
    app.api
        .request(
            reqwest::Method::POST,
            &path,
            &app.admin,
            crate::helpers::Body::None,
        )
        .problem(404);
    // A new token for the same name is fine once the old one is revoked.
    assert_eq!(
        app.api
            .post("/api/v1/admin/tokens", &app.admin, &body)
            .status,
        201
    );
}

#[test]
fn the_web_cookie_is_a_session_that_sign_out_revoke_and_idling_end() {
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_SESSION_IDLE", "3s".to_owned())],
        ..AppOptions::default()
    });
    let web = WebClient::new(&app);
    let get =
        |cookie: &str, path: &str| web.raw(reqwest::Method::GET, path, Some(cookie), &[], None);

    // The cookie never holds the token, and is HttpOnly and SameSite=Strict.
    let page = web.raw(reqwest::Method::GET, "/logga-in", None, &[], None);
    let login = set_cookie(&page, "gk_login");
    let form = [
        ("token", app.handlaggare.token.as_str()),
        ("csrf", &csrf_of(&page.text)),
    ];
    let signed = web.raw(
        reqwest::Method::POST,
        "/logga-in",
        Some(&login),
        &[],
        Some(&form),
    );
    assert_eq!(signed.status, 303, "{signed}");
    let cookie = set_cookie(&signed, "gk_session");
    let raw_cookies: Vec<&str> = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for set in &raw_cookies {
        assert!(!set.contains(&app.handlaggare.token), "{set}");
        assert!(!set.contains(&app.handlaggare.token[4..]), "{set}");
    }
    let session_header = raw_cookies
        .iter()
        .find(|c| c.starts_with("gk_session="))
        .expect("a session cookie");
    assert!(session_header.contains("HttpOnly") && session_header.contains("SameSite=Strict"));
    assert!(
        !session_header.contains("Secure"),
        "no https public URL here"
    );
    assert_eq!(get(&cookie, "/kontroll").status, 200);
    // The session cookie does not work as an API credential.
    let api = web.raw(
        reqwest::Method::GET,
        "/api/v1/rules",
        Some(&cookie),
        &[],
        None,
    );
    assert_eq!(api.status, 401, "{api}");

    // Signing out deletes the session: the old cookie sends the browser to sign in.
    let csrf = csrf_of(&get(&cookie, "/kontroll").text);
    let out = web.raw(
        reqwest::Method::POST,
        "/logga-ut",
        Some(&cookie),
        &[],
        Some(&[("csrf", &csrf)]),
    );
    assert_eq!(out.status, 303, "{out}");
    let after = get(&cookie, "/kontroll");
    assert_eq!(after.status, 303, "the old cookie is worthless: {after}");
    assert_eq!(after.header("location"), "/logga-in");

    // Revoking the token ends its sessions at once.
    let (cookie, _) = web.sign_in(&app.policy.token).expect("signed in");
    assert_eq!(get(&cookie, "/regler").status, 200);
    let id = listed_id(&app, app.policy.name);
    assert_eq!(app.cli(&["token", "revoke", &id]).code, 0);
    assert_eq!(get(&cookie, "/regler").status, 303);
    assert!(
        web.sign_in(&app.policy.token).is_none(),
        "revoked: no sign-in"
    );

    // Idle longer than the configured 3 s: over, even though it was used before.
    let (cookie, _) = web.sign_in(&app.analytiker.token).expect("signed in");
    assert_eq!(get(&cookie, "/uppfoljning").status, 200);
    std::thread::sleep(Duration::from_millis(4200));
    assert_eq!(
        get(&cookie, "/uppfoljning").status,
        303,
        "idle session ended"
    );

    // Sign-in and sign-out are in the access log.
    let signs: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM access_log WHERE action IN ('sign_in', 'sign_out')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert!(signs >= 4, "{signs}");
}

/// A page on a sibling host name shares the site, so the SameSite cookie went with its
/// images: they ran audits of periods it chose, and spent an officer's case lookups, in
/// the signed-in person's name.
#[test]
fn pages_loaded_by_another_site_are_refused_and_its_links_followed() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let (cookie, _) = web.session(&app.analytiker.token);
    let audits = || -> i64 {
        app.db()
            .query_row(
                "SELECT count(*) FROM access_log WHERE action = 'audit'",
                [],
                |r| r.get(0),
            )
            .expect("count")
    };
    let page = "/uppfoljning?fran=2024-03-01&till=2024-03-02";
    let before = audits();
    for (site, mode, dest) in [
        ("same-site", "no-cors", "image"),
        ("same-site", "navigate", "iframe"),
        ("cross-site", "cors", "empty"),
        ("same-site", "no-cors", "script"),
    ] {
        let headers = [
            ("sec-fetch-site", site),
            ("sec-fetch-mode", mode),
            ("sec-fetch-dest", dest),
        ];
        let reply = web.raw(reqwest::Method::GET, page, Some(&cookie), &headers, None);
        assert_eq!(reply.status, 403, "{site} {mode} {dest}: {reply}");
    }
    assert_eq!(audits(), before, "no audit ran for another site");
    // A link followed from another site, and the service's own pages, are answered.
    for headers in [
        &[
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ][..],
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "cors"),
        ][..],
        &[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")][..],
        &[][..],
    ] {
        let reply = web.raw(reqwest::Method::GET, page, Some(&cookie), headers, None);
        assert_eq!(reply.status, 200, "{headers:?}: {reply}");
    }
}

#[test]
fn forms_without_the_session_token_or_from_another_origin_change_nothing() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let (cookie, csrf) = web.session(&app.admin.token);
    let case = [
        ("case_id", "CSRF-1"),
        ("stage", "before_gk"),
        ("checked_on", "2024-03-15"),
        ("person.age", "52"),
    ];
    let host = app.api.url("").trim_start_matches("http://").to_owned();
    let own_origin = format!("http://{host}");
    let other_port = format!(
        "http://127.0.0.1:{}",
        host.rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .map_or(1, |p| p ^ 1)
    );
    fn with<'a>(case: &[(&'a str, &'a str)], csrf: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut form = case.to_vec();
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        form
    }
    let zeros = "0".repeat(64);
    /// What a forged request is, its form, and its extra headers.
    type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);
    let attempts: Vec<Attempt> = vec![
        ("no form token", with(&case, None), vec![]),
        ("a wrong form token", with(&case, Some(&zeros)), vec![]),
        (
            "another port",
            with(&case, Some(&csrf)),
            vec![("origin", &other_port)],
        ),
        (
            "origin null",
            with(&case, Some(&csrf)),
            vec![("origin", "null")],
        ),
        (
            "same-site fetch",
            with(&case, Some(&csrf)),
            vec![("sec-fetch-site", "same-site")],
        ),
        (
            "cross-site fetch",
            with(&case, Some(&csrf)),
            vec![("sec-fetch-site", "cross-site")],
        ),
    ];
    for (what, form, headers) in &attempts {
        for path in ["/kontroll", "/regler/ladda-om", "/logga-ut"] {
            let reply = web.raw(
                reqwest::Method::POST,
                path,
                Some(&cookie),
                headers,
                Some(form),
            );
            assert_eq!(reply.status, 403, "{what} {path}: {reply}");
        }
    }
    // The API refuses a browser's cross-origin write too, even with a valid bearer token.
    let api = reqwest::blocking::Client::new()
        .post(app.api.url("/api/v1/rules/reload"))
        .bearer_auth(&app.admin.token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .expect("answer");
    assert_eq!(api.status().as_u16(), 403);
    assert_eq!(app.count("evaluations"), 0, "nothing stored");
    // The session survived every attempt, and the real form works, also with the
    // `Origin: null` browsers send under `Referrer-Policy: no-referrer`.
    let own = web.raw(
        reqwest::Method::POST,
        "/kontroll",
        Some(&cookie),
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        Some(&with(&case, Some(&csrf))),
    );
    assert_eq!(own.status, 303, "stored, and sent to its page: {own}");
    let own = web.raw(
        reqwest::Method::POST,
        "/kontroll",
        Some(&cookie),
        &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
        Some(&with(&case, Some(&csrf))),
    );
    assert_eq!(own.status, 303, "stored, and sent to its page: {own}");
    assert_eq!(app.count("evaluations"), 2);

    // Login CSRF: a sign-in post without the sign-in page's cookie and token is refused.
    let forged = web.raw(
        reqwest::Method::POST,
        "/logga-in",
        Some(&cookie),
        &[],
        Some(&[("token", app.handlaggare.token.as_str())]),
    );
    assert_eq!(forged.status, 403, "{forged}");
    assert!(set_cookie(&forged, "gk_session").is_empty());
    // Nor does any bearer header stand in for the sign-in page's form token.
    let forged = web.raw(
        reqwest::Method::POST,
        "/logga-in",
        None,
        &[("authorization", "Bearer nonsense")],
        Some(&[("token", app.handlaggare.token.as_str())]),
    );
    assert_eq!(forged.status, 403, "{forged}");
    assert!(set_cookie(&forged, "gk_session").is_empty());
    let still = web.raw(reqwest::Method::GET, "/anvandare", Some(&cookie), &[], None);
    assert_eq!(still.status, 200, "still the admin: {still}");
    let unknown = web.raw(
        reqwest::Method::GET,
        "/kontroll",
        Some(UNKNOWN_SESSION),
        &[],
        None,
    );
    assert_eq!(unknown.status, 303);
    assert_eq!(app.api.get("/health/live", &NoToken).status, 200);
}

#[test]
fn configured_and_file_tokens_are_imported_once_and_a_revoked_one_stays_revoked() {
    let mut app = spawn_app();
    // A tokens file as earlier versions wrote it.
    let token = "gkr_importerad_token_0123456789";
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    };
    let _ = app.kill();
    std::fs::write(
        app.dir.path().join("tokens.yaml"),
        format!("- name: ida.fil\n  role: policy\n  sha256: {hash}\n"),
    )
    .expect("write tokens file");
    app.restart();
    assert_eq!(app.api.get("/api/v1/rules", token).status, 200);
    let id = listed_id(&app, "ida.fil");
    assert_eq!(app.cli(&["token", "revoke", &id]).code, 0);
    let _ = app.kill();
    app.restart();
    app.api.get("/api/v1/rules", token).problem(401);
    assert_eq!(app.count("accounts"), 6, "imported once");
}

/// The service records the accounts it makes at start as made by `system:start`: a token
/// named so made admins that read as the service's own, and could revoke itself to leave
/// the trail pointing at the service. Names the service or the command line write are
/// taken by neither made nor configured tokens, in any case.
#[test]
fn no_token_may_take_a_name_the_service_writes_itself() {
    let mut app = spawn_app();
    for name in ["system:start", "System:Retention", "cli:purge"] {
        let made = app.post(
            "/api/v1/admin/tokens",
            &app.admin,
            &json!({"name": name, "role": "admin"}),
        );
        assert_eq!(made.status, 400, "{name}: {made}");
        assert!(
            made.text.contains("tjänstens eller kommandoradens"),
            "{made}"
        );
    }
    let out = app.cli(&[
        "token",
        "create",
        "--role",
        "admin",
        "--name",
        "system:start",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("tjänstens eller kommandoradens"),
        "{out}"
    );
    let _ = app.kill();
    let accounts = app.count("accounts");
    std::fs::write(
        app.dir.path().join("tokens.yaml"),
        "- name: system:start\n  role: admin\n  sha256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .expect("write tokens file");
    let out = app.cli(&["serve"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("tjänstens eller kommandoradens"),
        "{out}"
    );
    assert_eq!(app.count("accounts"), accounts, "nothing imported");
}

/// Names that look like another (Unicode's confusables: Cyrillic `асе` for `ace`, a capital
/// I for an l, a dotless ı) passed, so the access log could show a look-alike of another
/// person or of the command line. A new name that looks like a known one, active or
/// revoked, is refused and names the one it looks like; the same name may come back.
#[test]
fn no_token_may_take_a_name_that_looks_like_another() {
    let app = spawn_app();
    let make = |name: &str| {
        app.post(
            "/api/v1/admin/tokens",
            &app.admin,
            &json!({"name": name, "role": "handlaggare"}),
        )
    };
    for name in ["ace", "lisa"] {
        let made = make(name);
        assert_eq!(made.status, 201, "{name}: {made}");
    }
    for (look_alike, known) in [("\u{430}\u{441}\u{435}", "ace"), ("Iisa", "lisa")] {
        let refused = make(look_alike);
        assert_eq!(refused.status, 400, "{look_alike}: {refused}");
        assert!(
            refused.text.contains(&format!("ser ut som {known}")),
            "{refused}"
        );
    }
    let out = app.cli(&["token", "revoke", &listed_id(&app, "ace")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        make("\u{430}\u{441}\u{435}").status,
        400,
        "revoked, still known"
    );
    assert_eq!(make("ace").status, 201, "the same name may come back");
    let refused = make("cl\u{131}:import");
    assert_eq!(refused.status, 400, "{refused}");
    assert!(
        refused.text.contains("tjänstens eller kommandoradens"),
        "{refused}"
    );
    // A tone letter is no letter of a name (UTS #39's General Security Profile).
    assert_eq!(make("\u{1bd}ystem:start").status, 400);
    // A dotless ı with a combining dot is drawn as i.
    assert_eq!(make("l\u{131}\u{307}sa").status, 400);
    // The answer gives the name as stored: NFC, one space between words.
    let made = make("  A\u{30a}sa   \u{d6}berg  ");
    assert_eq!(made.status, 201, "{made}");
    assert_eq!(made.json()["name"], "\u{c5}sa \u{d6}berg");
}

/// Revoking the last active admin left nobody who could manage tokens through the
/// service (recovery needed the database file). It is refused with 409 on the API, on the
/// Användare page and on the command line; with a second admin, either may go.
#[test]
fn the_last_active_admin_cannot_be_revoked() {
    let app = spawn_app();
    let own = listed_id(&app, app.admin.name);
    let refused = app.post(
        &format!("/api/v1/admin/tokens/{own}/revoke"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(refused.status, 409, "{refused}");
    assert!(refused.text.contains("sista"), "{refused}");
    assert_eq!(app.get("/api/v1/admin/tokens", &app.admin).status, 200);
    let out = app.cli(&["token", "revoke", &own]);
    assert_eq!(out.code, 2, "{out:?}", out = (&out.stdout, &out.stderr));
    assert!(out.stderr.contains("sista"), "{}", out.stderr);

    let web = WebClient::new(&app);
    let (cookie, csrf) = web.sign_in(&app.admin.token).expect("signed in");
    let page = web.raw(
        reqwest::Method::POST,
        "/anvandare/aterkalla",
        Some(&cookie),
        &[],
        Some(&[("csrf", csrf.as_str()), ("id", own.as_str())]),
    );
    assert_eq!(page.status, 409, "{page}");
    assert!(page.text.contains("sista"), "{page}");

    // With a second admin, the first may go, and then the second is the last.
    let second = cli_token(&app, &["--role", "admin", "--name", "andra.admin"]);
    let revoked = app.post(
        &format!("/api/v1/admin/tokens/{own}/revoke"),
        &app.admin,
        &json!({}),
    );
    assert_eq!(revoked.status, 204, "{revoked}");
    let second_id = listed_id(&app, "andra.admin");
    let reply = app.api.post(
        &format!("/api/v1/admin/tokens/{second_id}/revoke"),
        second.as_str(),
        &json!({}),
    );
    assert_eq!(reply.status, 409, "{reply}");
}

#[test]
fn configured_tokens_are_checked_like_made_ones_and_never_skipped_silently() {
    let mut app = spawn_app();
    let _ = app.kill();
    let hash = |token: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    };
    let entry = |name: &str, token: &str| {
        format!(
            "- name: {name}\n  role: handlaggare\n  sha256: {}\n",
            hash(token)
        )
    };
    let accounts = app.count("accounts");
    for (text, says) in [
        // The command line's name: its imports' checks would read as this token's own.
        (entry("cli:import", "gkr_a_0123456789"), "kommandoradens"),
        // An active account's name: the entry was skipped and its token never worked.
        (
            entry(app.handlaggare.name, "gkr_b_0123456789"),
            "aktiv token med namnet anna.handlaggare",
        ),
        // A look-alike of the command line's name (Cyrillic с), and an active name in
        // other case: both would read as someone else in the access log.
        (
            entry("\u{441}li:import", "gkr_e_0123456789"),
            "blandar alfabet",
        ),
        // A look-alike of a known name in one script (a capital I for an l).
        (
            entry("anna.handIaggare", "gkr_g_0123456789"),
            "ser ut som anna.handlaggare",
        ),
        (
            entry("Anna.Handlaggare", "gkr_f_0123456789"),
            "aktiv token med namnet Anna.Handlaggare",
        ),
        (
            [
                entry("ida.fil", "gkr_c_0123456789"),
                entry("ida.fil", "gkr_d_0123456789"),
            ]
            .concat(),
            "[1]: namnet ida.fil står mer än en gång",
        ),
    ] {
        std::fs::write(app.dir.path().join("tokens.yaml"), &text).expect("write tokens file");
        let out = app.cli(&["serve"]);
        assert_eq!(out.code, 2, "{text}\n{out}");
        assert!(out.stderr.contains(says), "{text}\n{out}");
        assert_eq!(app.count("accounts"), accounts, "nothing imported: {text}");
    }
    std::fs::remove_file(app.dir.path().join("tokens.yaml")).expect("remove tokens file");
    // A tokens file the configuration names but that is missing is said, not passed over.
    let out = app.cli(&["token", "list"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("tokens.yaml (tokens_file) finns inte"),
        "{out}"
    );
    app.restart();

    // An expired token no longer holds its name: the person gets a new one.
    let old = cli_token(
        &app,
        &[
            "--role",
            "handlaggare",
            "--name",
            "tillfallig",
            "--expires",
            "1s",
        ],
    );
    std::thread::sleep(Duration::from_millis(2100));
    app.api.get("/api/v1/rules", old.as_str()).problem(401);
    let new = cli_token(&app, &["--role", "handlaggare", "--name", "tillfallig"]);
    assert_eq!(app.api.get("/api/v1/rules", new.as_str()).status, 200);
    let made = app.post(
        "/api/v1/admin/tokens",
        &app.admin,
        &json!({"name": "tillfallig", "role": "handlaggare"}),
    );
    assert_eq!(made.status, 400, "the new token holds the name: {made}");
}

/// A page on another port or path of the same host can set a second `gk_session` (with a
/// more specific `Path`, the browser sends both), holding the attacker's own session: the
/// last one was taken, so the officer worked, unknowingly, in the attacker's session, and
/// the attacker read the checks made there. A request naming the session twice is now
/// taken as signed out, whichever of the two is live.
#[test]
fn a_session_cookie_given_twice_is_no_session() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let (victim, _) = web.sign_in(&app.handlaggare.token).expect("signed in");
    let (attacker, _) = web.sign_in(&app.handlaggare2.token).expect("signed in");
    let get = |cookie: &str| web.raw(reqwest::Method::GET, "/kontroll", Some(cookie), &[], None);
    assert_eq!(get(&victim).status, 200);
    for both in [
        format!("{victim}; {attacker}"),
        format!("{attacker}; {victim}"),
        format!("{victim}; {victim}"),
    ] {
        let page = get(&both);
        assert_eq!(page.status, 303, "{both}: {page}");
        assert_eq!(page.header("location"), "/logga-in");
    }
    assert_eq!(get(&victim).status, 200, "the session itself lives on");
}

#[test]
fn with_an_https_public_url_cookies_are_secure_and_only_its_origin_may_post() {
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_PUBLIC_URL", "https://gk.example.se".to_owned())],
        ..AppOptions::default()
    });
    let web = WebClient::new(&app);
    let page = web.raw(reqwest::Method::GET, "/logga-in", None, &[], None);
    // `__Host-`: a browser takes these cookies only from a secure page of this host
    // name itself (`Secure`, `Path=/`, no `Domain`), never from a sibling domain.
    let login = set_cookie(&page, "__Host-gk_login");
    let secure = |reply: &crate::helpers::Reply, name: &str| {
        reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| {
                c.starts_with(&format!("{name}="))
                    && c.contains("; Secure")
                    && c.contains("; Path=/;")
                    && !c.contains("Domain")
            })
    };
    assert!(secure(&page, "__Host-gk_login"), "{page}");
    let form = [
        ("token", app.handlaggare.token.as_str()),
        ("csrf", &csrf_of(&page.text)),
    ];
    // The service's own address is the public one: a post from its own port is refused.
    let local = app.api.url("");
    let refused = web.raw(
        reqwest::Method::POST,
        "/logga-in",
        Some(&login),
        &[("origin", &local)],
        Some(&form),
    );
    assert_eq!(refused.status, 403, "{refused}");
    let signed = web.raw(
        reqwest::Method::POST,
        "/logga-in",
        Some(&login),
        &[("origin", "https://gk.example.se")],
        Some(&form),
    );
    assert_eq!(signed.status, 303, "{signed}");
    assert!(secure(&signed, "__Host-gk_session"), "{signed}");
    let cookie = set_cookie(&signed, "__Host-gk_session");
    let page = web.raw(reqwest::Method::GET, "/kontroll", Some(&cookie), &[], None);
    assert_eq!(page.status, 200, "{page}");
    let plain = cookie.replacen("__Host-", "", 1);
    let page = web.raw(reqwest::Method::GET, "/kontroll", Some(&plain), &[], None);
    assert_eq!(page.status, 303, "the unprefixed name is not read: {page}");
}
