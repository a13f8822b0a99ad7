//! Trying a candidate rule set on the Regler page: an uploaded `.zip` or `.tar.gz` of a
//! rules directory, treated as hostile, loaded, tested and replayed beside the live
//! rules; nothing stored, nothing live.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::helpers::{AppOptions, TestApp, spawn_app, spawn_app_with};
use crate::web::WebClient;

/// The body of a multipart form with the CSRF token and one file field `arkiv`.
fn upload_body(csrf: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "gkreglerkandidatgrans";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"arkiv\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` as `token`'s session would from the Regler page.
pub(crate) fn upload(
    app: &TestApp,
    web: &WebClient,
    token: &str,
    file_name: &str,
    bytes: &[u8],
) -> crate::helpers::Reply {
    let (cookie, csrf) = web.session(token);
    let (content_type, body) = upload_body(&csrf, file_name, bytes);
    let _ = app;
    post_upload(web, &cookie, content_type, body)
}

/// Posts a candidate form's `body` with the session `cookie`.
fn post_upload(
    web: &WebClient,
    cookie: &str,
    content_type: String,
    body: Vec<u8>,
) -> crate::helpers::Reply {
    let response = web
        .client
        .post(format!("{}/regler/kandidat", web.base))
        .header("cookie", cookie)
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("an answer");
    crate::helpers::Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: unescape(&response.text().expect("a text body")),
    }
}

/// The page's text with the template's HTML escapes undone, to compare with plain text.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A zip of `files` (name, content) as given, names unchecked.
fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer.start_file(*name, options).expect("start file");
        writer.write_all(content).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

/// A zip of the rules directory `dir`, under the folder `regler/`.
pub(crate) fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).expect("read dir") {
                let inner = inner.expect("entry").path();
                let inner_name = inner
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("name")
                    .to_owned();
                files.push((
                    format!("regler/{name}/{inner_name}"),
                    std::fs::read(&inner).expect("read"),
                ));
            }
        } else {
            files.push((
                format!("regler/{name}"),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    zip_of(&borrowed)
}

/// A tar.gz whose one entry is a symbolic link named `name`.
fn tar_gz_with_symlink(name: &str) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, name, "/etc/passwd")
        .expect("append link");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A copy of the shipped rules in `regler/` of a temporary directory, to change into a
/// candidate; the directory is removed when the first is dropped.
fn rules_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let candidate = tempfile::TempDir::new().expect("temp");
    let dir = candidate.path().join("regler");
    crate::helpers::copy_dir(Path::new("rules"), &dir);
    (candidate, dir)
}

/// Held by each test that uploads, so one test's count of leftovers never sees the
/// other's upload in progress.
static UPLOADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A tar.gz with one entry of `kind` whose name is written as `name`, unchecked.
fn tar_gz_raw(name: &str, kind: tar::EntryType, content: &[u8]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, content).expect("append");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// Leftover unpack directories of candidate uploads in the service's temporary directory.
fn leftovers(app: &TestApp) -> usize {
    std::fs::read_dir(app.temporary_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("gk-regler-kandidat-")
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_candidate_is_tested_and_replayed_beside_the_live_rules_and_nothing_is_stored() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app();
    // A little history to replay.
    for i in 0..3 {
        let mut profile = crate::helpers::base_profile();
        crate::helpers::set(
            &mut profile,
            "case_id",
            serde_json::json!(format!("KANDIDAT-{i}")),
        );
        crate::helpers::set(
            &mut profile,
            "activity_level.documented",
            serde_json::json!(false),
        );
        crate::helpers::set(
            &mut profile,
            "activity_level.hours_per_week",
            serde_json::json!(null),
        );
        assert_eq!(app.check(&app.handlaggare, &profile).status, 201);
    }
    let web = WebClient::new(&app);
    let (_candidate, dir) = rules_copy();
    let manifest = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let changed = text
        .replacen("version: \"2026.2\"", "version: \"2026.3-kandidat\"", 1)
        .replacen(
            "script: aktivitetsniva_saknas.rhai",
            "script: aktivitetsniva_saknas.rhai\n    enabled: false",
            1,
        )
        .replacen(
            "{ from: 2000-01-01, value: 21 }",
            "{ from: 2000-01-01, value: 14 }",
            1,
        );
    std::fs::write(&manifest, changed).expect("write");
    let before = (
        app.count("evaluations"),
        app.count("rule_sets"),
        app.count("flags"),
    );

    // Its tests for the switched-off rule now fail: shown, and nothing goes live.
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 200, "{reply}");
    let page = &reply.text;
    assert!(
        page.contains("GK standardregler version 2026.3-kandidat"),
        "{page}"
    );
    assert!(page.contains("Underkänt"), "{page}");
    assert!(page.contains("tests/aktivitetsniva_saknas.yaml:"), "{page}");
    assert!(page.contains("Bredvid reglerna som gäller nu"), "{page}");
    // A title that names a parameter the candidate changes is given both ways: the
    // column of the rules that apply now counted with 21 days, not 14.
    assert!(
        page.contains(
            "Inget GK-möte registrerat inom 14 dagar efter begäran (nu: Inget GK-möte registrerat inom 21 dagar efter begäran)"
        ),
        "{page}"
    );
    assert!(
        page.contains("Utfall för flaggade och ej flaggade ärenden"),
        "{page}"
    );
    // The rule the three checks flagged: 3 now, none with the candidate, 3 lost.
    let row = page
        .split("<code>aktivitetsniva_saknas</code></td>")
        .nth(1)
        .expect("the rule's row");
    assert!(
        row.starts_with("<td>3</td><td>0</td><td>0</td><td>3</td>"),
        "{row}"
    );
    assert_eq!(
        (
            app.count("evaluations"),
            app.count("rule_sets"),
            app.count("flags")
        ),
        before,
        "a candidate stores nothing of its own"
    );
    // What it asked of the stored checks is on record: who, and the rule files.
    let db = app.db();
    let (actor, files): (String, String) = db
        .query_row(
            "SELECT actor, sources_json FROM candidate_trials",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("one trial on record");
    assert_eq!(actor, app.policy.name);
    assert!(files.contains("2026.3-kandidat"), "{files}");
    assert!(files.contains("aktivitetsniva_saknas.rhai"), "{files}");
    assert_eq!(
        db.query_row(
            "SELECT count(*) FROM access_log WHERE action = 'try_candidate'",
            [],
            |row| row.get::<_, i64>(0)
        )
        .expect("count"),
        1
    );
    let live = app.get("/api/v1/rules", &app.policy).json();
    assert_eq!(live["ruleset"]["version"], "2026.2", "{live}");

    // With its tests brought in line, the candidate passes them.
    std::fs::remove_file(dir.join("tests/aktivitetsniva_saknas.yaml")).expect("remove");
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 200, "{reply}");
    assert!(reply.text.contains("Godkänt"), "{reply}");
    assert!(
        reply
            .text
            .contains("Obs: regeln <code>aktivitetsniva_saknas</code> har inga tester."),
        "{reply}"
    );
    // The same rules tried again (only their tests changed): on record once more, their
    // files kept once.
    assert_eq!(
        app.db()
            .query_row(
                "SELECT count(*), count(sources_json), count(DISTINCT content_hash) FROM candidate_trials",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)),
            )
            .expect("counts"),
        (2, 1, 1)
    );

    // A candidate that does not load lists its problems with file and line.
    std::fs::write(dir.join("tolk_ej_bokad.rhai"), "if {").expect("break");
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 422, "{reply}");
    assert!(reply.text.contains("tolk_ej_bokad.rhai:1"), "{reply}");
    // `curry` stores values where no size limit counts them: a chain of them overflowed
    // the stack of the thread of long work and ended the service. It is refused whole.
    std::fs::write(
        dir.join("tolk_ej_bokad.rhai"),
        "fn g(x) { x }\nlet f = Fn(\"g\");\nfor i in 0..15000 { f = Fn(\"g\").curry(f); }\nfalse\n",
    )
    .expect("curry");
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 422, "{reply}");
    let page = unescape(&reply.text);
    assert!(
        page.contains("tolk_ej_bokad.rhai:3:33: `curry` finns inte för regler"),
        "{reply}"
    );
    // With the line of code under it, as a refused reload shows it.
    assert!(
        page.contains("<pre class=\"code-line\">3 | for i in 0..15000 { f = Fn(\"g\").curry(f); }"),
        "{page}"
    );
    assert_eq!(app.get("/health/live", &app.policy).status, 200);
    assert_eq!(leftovers(&app), 0, "every unpacked candidate is removed");

    // Only policy staff, and only with the form's token.
    let officer = upload(
        &app,
        &web,
        &app.handlaggare.token,
        "regler.zip",
        &zip_dir(&dir),
    );
    assert_eq!(officer.status, 403, "{officer}");
    let (cookie, _) = web.session(&app.policy.token);
    let (content_type, body) = upload_body("fel-token", "regler.zip", &zip_dir(&dir));
    let forged = web
        .client
        .post(format!("{}/regler/kandidat", web.base))
        .header("cookie", cookie)
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("an answer");
    assert_eq!(forged.status().as_u16(), 403);
}

#[test]
fn a_candidate_that_runs_too_long_is_stopped_at_the_time_limit_naming_the_failing_rule() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS", "1".to_owned())],
        ..AppOptions::default()
    });
    app.import_development_cohort();
    let web = WebClient::new(&app);
    let (_candidate, dir) = rules_copy();
    // A rule that never ends, each step copying a list of 999 texts: the operation
    // limit stops it on every check, after about half a second in a release build, so
    // the 6,388 stored checks would hold the thread of long work for most of an hour.
    std::fs::write(
        dir.join("tolk_ej_bokad.rhai"),
        "let needed = profile.known_needs.interpreter_needed;\n\
         let booked = profile.gk.interpreter_booked;\n\
         let texts = [];\n\
         texts.pad(999, \"abcdefghij\");\n\
         loop { let copy = texts + []; }\n",
    )
    .expect("write the rule");

    // Each of its tests runs the whole set, the endless rule too: they are stopped first.
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 422, "{reply}");
    assert!(
        reply.text.contains(
            "Kandidatens egna tester tog längre än 1 sekund och stoppades. \
             Ingen omkörning mot historiken gjordes."
        ),
        "{reply}"
    );
    assert!(
        !reply.text.contains("Bredvid reglerna som gäller nu"),
        "{reply}"
    );

    // Without tests, the replay over the stored checks is stopped.
    std::fs::remove_dir_all(dir.join("tests")).expect("remove the tests");
    let reply = upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir));
    assert_eq!(reply.status, 422, "{reply}");
    assert!(
        reply.text.contains(
            "Omkörningen mot historiken tog längre än 1 sekund och stoppades, så inga siffror visas."
        ),
        "{reply}"
    );
    assert!(
        reply
            .text
            .contains("Nya eller ändrade regler som gav fel under omkörningen: tolk_ej_bokad."),
        "{reply}"
    );
    assert!(
        !reply.text.contains("Bredvid reglerna som gäller nu"),
        "no figures of a replay that did not finish: {reply}"
    );

    // The thread of long work is free again: an audit is answered.
    let audit = app.get("/api/v1/audit", &app.analytiker);
    assert_eq!(audit.status, 200, "{audit}");
}

#[test]
fn hostile_archives_are_refused_naming_the_entry() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app();
    let web = WebClient::new(&app);
    let policy = &app.policy.token;
    let refused = |name: &str, bytes: &[u8], says: &[&str]| {
        let reply = upload(&app, &web, policy, name, bytes);
        assert_eq!(reply.status, 422, "{name}: {reply}");
        for needle in says {
            assert!(
                reply.text.contains(needle),
                "{name}: no {needle:?} in {reply}"
            );
        }
    };
    let manifest: &[u8] = b"name: x\nversion: \"1\"\nrules: []\n";
    refused(
        "ut.zip",
        &zip_of(&[("manifest.yaml", manifest), ("../utanfor.rhai", b"true")]),
        &["«../utanfor.rhai»", "pekar ut ur mappen"],
    );
    refused(
        "absolut.zip",
        &zip_of(&[("/etc/cron.d/x", b"true")]),
        &["«/etc/cron.d/x»", "absolut sökväg"],
    );
    refused(
        "lank.tar.gz",
        &tar_gz_with_symlink("regler/manifest.yaml"),
        &["«regler/manifest.yaml»", "symbolisk länk"],
    );
    refused(
        "ut.tar.gz",
        &tar_gz_raw("../../etc/x.rhai", tar::EntryType::Regular, b"true"),
        &["«../../etc/x.rhai»", "pekar ut ur mappen"],
    );
    refused(
        "absolut.tar.gz",
        &tar_gz_raw("/tmp/x.rhai", tar::EntryType::Regular, b"true"),
        &["«/tmp/x.rhai»", "absolut sökväg"],
    );
    refused(
        "enhet.tar.gz",
        &tar_gz_raw("regler/tty", tar::EntryType::Char, b""),
        &["«regler/tty»", "en enhet"],
    );
    refused(
        "hardlank.tar.gz",
        &tar_gz_raw("regler/manifest.yaml", tar::EntryType::Link, b""),
        &["«regler/manifest.yaml»", "hård länk"],
    );
    // A zip bomb: 21 MB of zeros packs into a few kilobytes.
    let zeros = vec![0u8; 21 * 1024 * 1024];
    let bomb = zip_of(&[("manifest.yaml", manifest), ("tests/noll.yaml", &zeros)]);
    assert!(bomb.len() < 100 * 1024, "the bomb is small: {}", bomb.len());
    refused("bomb.zip", &bomb, &["mer än 20 MB", "«tests/noll.yaml»"]);
    let names: Vec<String> = (0..201).map(|i| format!("tests/t{i}.yaml")).collect();
    let many: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"x".as_slice()))
        .collect();
    refused("manga.zip", &zip_of(&many), &["fler än 200"]);
    refused("text.zip", b"name: x", &["inget zip- eller tar.gz-arkiv"]);
    refused(
        "tom.zip",
        &zip_of(&[("README.md", b"x")]),
        &["ingen manifest.yaml"],
    );
    // Over 5 MB is refused before anything is unpacked.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let reply = upload(&app, &web, policy, "stor.zip", &big);
    assert_eq!(reply.status, 413, "{reply}");
    assert!(reply.text.contains("högst 5 MB"), "{reply}");
    assert_eq!(leftovers(&app), 0, "every unpacked archive is removed");
    assert_eq!(app.count("rule_sets"), 1, "nothing stored");
}

/// A form cut off before its end was answered 422 with axum's English (`field "arkiv"
/// received with incomplete data`).
#[test]
fn a_form_that_did_not_arrive_whole_is_refused_in_swedish() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app();
    let web = WebClient::new(&app);
    let (cookie, csrf) = web.session(&app.policy.token);
    let (content_type, mut body) = upload_body(&csrf, "regler.zip", b"PK\x03\x04 och mer");
    body.truncate(body.len() - 30);
    let reply = post_upload(&web, &cookie, content_type, body);
    assert_eq!(reply.status, 400, "{reply}");
    assert!(reply.text.contains("kom inte fram helt"), "{reply}");
    assert!(!reply.text.contains("incomplete data"), "{reply}");
}

/// The candidate upload's 5 MB cap is for those who may try a candidate (the policy role,
/// and an admin, who may do anything); anyone else's post to it is a form, capped as
/// forms are, and refused before the service holds an archive's worth of it.
#[test]
fn an_archive_over_the_form_cap_is_taken_from_those_who_may_try_a_candidate_only() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app();
    let web = WebClient::new(&app);
    // 400 KB that do not compress: over the forms' 256 KiB, under the archive's 5 MB.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..400_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let archive = zip_of(&[("regler/brus.bin", &noise)]);
    assert!(archive.len() > 300_000, "{}", archive.len());
    for user in [&app.policy, &app.admin] {
        let reply = upload(&app, &web, &user.token, "stor.zip", &archive);
        assert_ne!(reply.status, 413, "{}: {reply}", user.name);
        assert!(reply.status < 500, "{}: {reply}", user.name);
    }
    let reply = upload(&app, &web, &app.handlaggare.token, "stor.zip", &archive);
    assert_eq!(reply.status, 413, "{reply}");
}

/// Each stored trial keeps the candidate's rule files, and a trial replays the whole
/// history on the one thread of long work: a policy session uploading candidates of 200
/// rules of comments, each a byte apart, stored 12 MB every 0.15 s and held the thread.
/// Trials are now budgeted per person (`candidate_trials_per_hour`), and a candidate's
/// manifest and scripts together may be at most 1 MiB.
#[test]
fn trials_are_budgeted_per_person_and_a_candidates_rule_files_are_capped() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app_with(AppOptions {
        env: vec![("GK_REGLER_CANDIDATE_TRIALS_PER_HOUR", "3".to_owned())],
        ..AppOptions::default()
    });
    let web = WebClient::new(&app);
    let archive = zip_dir(Path::new("rules"));
    for _ in 0..3 {
        let page = upload(&app, &web, &app.policy.token, "regler.zip", &archive);
        assert_eq!(page.status, 200, "{page}");
    }
    let page = upload(&app, &web, &app.policy.token, "regler.zip", &archive);
    assert_eq!(page.status, 429, "{page}");
    assert!(page.text.contains("Försök igen om"), "{page}");
    assert_eq!(app.count("candidate_trials"), 3, "no trial past the budget");

    // Another person has a budget of their own; a candidate over 1 MiB is refused whole.
    let other = app.create_token("policy", "policy.andra");
    let (_candidate, dir) = rules_copy();
    let manifest = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let scripts = [
        "tolk_ej_bokad.rhai",
        "samtycke_saknas.rhai",
        "socialkonsulent_saknas.rhai",
        "aktivitetsniva_saknas.rhai",
        "personligt_mote_saknas.rhai",
        "specialist_vid_horsel_eller_syn.rhai",
    ];
    let originals: Vec<String> = scripts
        .iter()
        .map(|script| std::fs::read_to_string(dir.join(script)).expect("script"))
        .collect();
    let with_comments = |comment: &str, count: usize| {
        for (script, original) in scripts.iter().zip(&originals).take(count) {
            std::fs::write(dir.join(script), format!("// {comment}\n{original}")).expect("write");
        }
    };
    // 700 KB of description (the manifest's own limit is 1 MiB) and six scripts of 60 KB
    // of comments: each file within its limit, together over the candidate's.
    let long = format!("description: >-\n  {}\n", "a".repeat(700_000));
    let changed = text.replacen("description: >-\n", &long, 1);
    assert_ne!(changed, text);
    std::fs::write(&manifest, changed).expect("write");
    with_comments(&"a".repeat(60_000), 6);
    let page = upload(&app, &web, &other, "stor.zip", &zip_dir(&dir));
    assert_eq!(page.status, 422, "{page}");
    assert!(page.text.contains("mer än 1 MiB när de sparas"), "{page}");
    assert_eq!(app.count("candidate_trials"), 3, "nothing stored");
    // Control characters take six bytes each as stored: four scripts of 60,000 are
    // refused though their text is 240 KB in all.
    std::fs::write(&manifest, &text).expect("write");
    with_comments(&"\u{1}".repeat(60_000), 4);
    let page = upload(&app, &web, &other, "styrtecken.zip", &zip_dir(&dir));
    assert_eq!(page.status, 422, "{page}");
    assert!(page.text.contains("mer än 1 MiB när de sparas"), "{page}");
    assert_eq!(app.count("candidate_trials"), 3, "nothing stored");
    let page = upload(&app, &web, &other, "regler.zip", &archive);
    assert_eq!(page.status, 200, "{page}");
}

/// Each audit or candidate trial holds a connection while it waits for the thread of
/// long work: one analyst's 600 audits in a loop held every connection the service takes,
/// and officers' checks got 503. One person may now have two waiting or running at once;
/// a third is answered 429 at once, and once they are done the next is taken.
#[test]
fn one_person_may_have_two_audits_waiting_or_running_at_once() {
    let _one_at_a_time = UPLOADS.lock().unwrap_or_else(|e| e.into_inner());
    let app = spawn_app_with(AppOptions {
        env: vec![
            ("GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS", "3".to_owned()),
            ("GK_REGLER_LONG_WORK_THREADS", "1".to_owned()),
        ],
        ..AppOptions::default()
    });
    app.import_development_cohort();
    let web = WebClient::new(&app);
    let (_candidate, dir) = rules_copy();
    std::fs::remove_dir_all(dir.join("tests")).expect("remove the tests");
    std::fs::write(
        dir.join("tolk_ej_bokad.rhai"),
        "let needed = profile.known_needs.interpreter_needed;\n\
         let booked = profile.gk.interpreter_booked;\n\
         loop { }\n",
    )
    .expect("write the rule");
    let (cookie, _) = web.session(&app.analytiker.token);
    // The policy person's trial holds the one thread of long work for its time limit.
    let trial = std::thread::scope(|scope| {
        let trial = scope.spawn(|| {
            let web = WebClient::new(&app);
            upload(&app, &web, &app.policy.token, "regler.zip", &zip_dir(&dir))
        });
        std::thread::sleep(Duration::from_millis(500));
        let audits: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| app.get("/api/v1/audit?format=json", &app.analytiker)))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let third = app.get("/api/v1/audit?format=json", &app.analytiker);
        assert_eq!(third.status, 429, "{third}");
        assert!(third.text.contains("Du har redan 2"), "{third}");
        let page = web.raw(
            reqwest::Method::GET,
            "/uppfoljning",
            Some(&cookie),
            &[],
            None,
        );
        assert_eq!(page.status, 429, "the web page counts too: {page}");
        for audit in audits {
            let reply = audit.join().expect("audit");
            assert_eq!(reply.status, 200, "{reply}");
        }
        trial.join().expect("trial")
    });
    assert_eq!(trial.status, 422, "stopped at its time limit: {trial}");
    let reply = app.get("/api/v1/audit?format=json", &app.analytiker);
    assert_eq!(reply.status, 200, "the places are given back: {reply}");
}
