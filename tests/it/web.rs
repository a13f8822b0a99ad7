//! The web pages, end to end: the real `gk-regler serve` (from [`spawn_app`]) driven by
//! headless Chromium through chromedriver and `fantoccini`, as a person would use it
//! (sign in, fill in the form, press the buttons); plus black-box HTTP checks, without a
//! browser, of what a person cannot see: headers, redirects, refusals, URLs and logs.
//!
//! The browser tests need `chromedriver` and `chromium` (Debian: `apt-get install
//! chromium chromium-driver`; `.ci/run` installs them when missing). Without chromedriver
//! they are not run, and the test output says so in one line naming that command; with the
//! environment variable `CI` set (any non-empty value) they are required, and a missing
//! chromedriver fails them, naming what to install ([`chromedriver`]).
//! `GK_REGLER_CHROMEDRIVER` and `GK_REGLER_CHROMIUM` may point at other binaries.
//! Screenshots of every page go to `target/screenshots/`.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{TestApp, base_profile, remove, set, spawn_app, spawn_app_with};

mod case_story;

// ---------------------------------------------------------------------------------------
// The browser: one chromedriver and one headless Chromium per test, one test at a time.
// ---------------------------------------------------------------------------------------

/// Browser tests take turns: two cores do not run several Chromiums well, and a test's
/// timings stay its own.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long the browser may take to start or to answer one command.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

const LAPTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 800);

/// The command that installs what the browser tests need.
const INSTALL_BROWSER: &str = "apt-get install chromium chromium-driver";

/// The file named by `env` if that is set (nothing if the file is not there), else `name`
/// on the `PATH`, else at `/usr/bin/name`.
fn find_program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/bin").join(name)).filter(|p| p.is_file()))
}

/// Whether the browser tests are required: the environment variable `CI` is set and not
/// empty.
fn browser_tests_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The chromedriver the browser tests use, or `None` when it is missing and the tests are
/// not required: then one line on the terminal (once per run, not captured by the test
/// harness) says the browser tests were not run and how to install what they need. With
/// `CI` set, a missing chromedriver fails the test instead.
fn chromedriver() -> Option<PathBuf> {
    static SAID_SO: std::sync::Once = std::sync::Once::new();
    let found = find_program("GK_REGLER_CHROMEDRIVER", "chromedriver");
    if found.is_none() {
        assert!(
            !browser_tests_required(),
            "chromedriver was not found (GK_REGLER_CHROMEDRIVER, PATH or /usr/bin) and CI is \
             set, so the browser tests are required: install Chromium and chromedriver with \
             `{INSTALL_BROWSER}`"
        );
        SAID_SO.call_once(|| {
            // Straight to the terminal: the harness hides what a passing test prints.
            let _ = writeln!(
                std::io::stderr(),
                "browser tests in tests/it/web.rs not run: chromedriver not found; install it \
                 with `{INSTALL_BROWSER}`"
            );
        });
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where the screenshots go: `target/screenshots/`.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// A headless Chromium signed in to nothing yet, pointed at one running service. Every
/// method waits for its answer and fails the test, saying what it tried, on an error.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    base: String,
    /// Chromium's profile and chromedriver's log.
    dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium for `app`; `None` when
    /// the browser tests are not run here ([`chromedriver`]).
    fn open(app: &TestApp) -> Option<Self> {
        let chromedriver = chromedriver()?;
        let turn = ONE_BROWSER_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let chromium = find_program("GK_REGLER_CHROMIUM", "chromium");
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log file");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", chromedriver.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--no-first-run",
                "--lang=sv-SE",
                format!("--window-size={},{}", LAPTOP.0, LAPTOP.1),
                format!("--user-data-dir={}", dir.path().join("profile").display()),
            ],
            "prefs": { "intl.accept_languages": "sv-SE,sv" },
        });
        if let Some(chromium) = chromium {
            options["binary"] = json!(chromium);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let mut browser = Self {
            runtime,
            client: None,
            driver,
            base: app.api.url(""),
            dir,
            _turn: turn,
        };
        let client = loop {
            let connected = browser.runtime.block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url),
            );
            match connected {
                Ok(client) => break client,
                Err(err) if started.elapsed() > BROWSER_TIMEOUT => panic!(
                    "no browser session from {} within {BROWSER_TIMEOUT:?}: {err}\n{}",
                    chromedriver.display(),
                    browser.driver_log()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        browser.client = Some(client);
        Some(browser)
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("an open browser session")
    }

    /// Runs one browser command, failing the test with `what` on an error.
    fn run<T>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(BROWSER_TIMEOUT, command).await });
        match result {
            Ok(Ok(value)) => value,
            Ok(Err(err)) => panic!("browser: {what}: {err}"),
            Err(_) => panic!("browser: {what}: no answer within {BROWSER_TIMEOUT:?}"),
        }
    }

    /// Opens `path` of the service.
    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.run(&format!("open {path}"), self.client().goto(&url));
    }

    /// Opens a whole URL, e.g. a page of another site.
    fn goto_url(&self, url: &str) {
        self.run(&format!("open {url}"), self.client().goto(url));
    }

    /// Waits until the page shown is a loaded page of the service (after another
    /// site's page sent the browser there).
    fn wait_for_service_page(&self) {
        let started = Instant::now();
        loop {
            let here = self.url().starts_with(&self.base)
                && self.script("return document.readyState;") == json!("complete");
            if here {
                return;
            }
            assert!(
                started.elapsed() < BROWSER_TIMEOUT,
                "the browser never reached the service: {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The path of the page shown.
    fn path(&self) -> String {
        self.run("current URL", self.client().current_url())
            .path()
            .to_owned()
    }

    /// The whole URL of the page shown.
    fn url(&self) -> String {
        self.run("current URL", self.client().current_url())
            .to_string()
    }

    fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.run(
            &format!("find {css}"),
            self.client().find(Locator::Css(css)),
        )
    }

    fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.run(
            &format!("find all {css}"),
            self.client().find_all(Locator::Css(css)),
        )
    }

    fn exists(&self, css: &str) -> bool {
        !self.find_all(css).is_empty()
    }

    /// The visible text of the first element matching `css`.
    fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.run(&format!("text of {css}"), element.text())
    }

    /// The visible text of every element matching `css`.
    fn texts(&self, css: &str) -> Vec<String> {
        self.find_all(css)
            .iter()
            .map(|e| self.run(&format!("text of {css}"), e.text()))
            .collect()
    }

    /// An attribute of the first element matching `css`.
    fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css);
        self.run(&format!("{name} of {css}"), element.attr(name))
    }

    /// The current value of a form control.
    fn value(&self, css: &str) -> String {
        let element = self.find(css);
        self.run(&format!("value of {css}"), element.prop("value"))
            .unwrap_or_default()
    }

    fn checked(&self, css: &str) -> bool {
        let element = self.find(css);
        self.run(&format!("is {css} checked"), element.is_selected())
    }

    /// Opens every folded section (`<details>`) around the element matching `css`, as a
    /// person opens the section before filling in a field in it.
    fn reveal(&self, css: &str) {
        let script = format!(
            "const e = document.querySelector({}); \
             let d = e && e.tagName !== 'SUMMARY' ? e.parentElement.closest('details') : null; \
             while (d) {{ d.open = true; d = d.parentElement && d.parentElement.closest('details'); }} \
             return null;",
            json!(css)
        );
        self.script(&script);
    }

    /// Types `text` into an empty text field, as a person would.
    fn type_into(&self, css: &str, text: &str) {
        self.reveal(css);
        let element = self.find(css);
        self.run(&format!("clear {css}"), element.clear());
        self.run(&format!("type into {css}"), element.send_keys(text));
    }

    /// Picks the option with `value` in a select box.
    fn select(&self, css: &str, value: &str) {
        self.reveal(css);
        let element = self.find(css);
        self.run(
            &format!("select {value} in {css}"),
            element.select_by_value(value),
        );
    }

    /// Clicks the element (a radio button, a checkbox, a summary).
    fn click(&self, css: &str) {
        self.reveal(css);
        let element = self.find(css);
        self.run(&format!("click {css}"), element.click());
    }

    /// Clicks a button or link that loads a new page, and waits until it is there.
    fn click_and_wait(&self, css: &str) {
        self.mark_page();
        self.click(css);
        self.wait_for_new_page(css);
    }

    /// Presses keys in the element that has focus.
    fn press(&self, keys: &str) {
        let focused = self.run("focused element", self.client().active_element());
        self.run("press keys", focused.send_keys(keys));
    }

    /// Presses keys that load a new page (Enter in a form), and waits until it is there.
    fn press_and_wait(&self, keys: &str) {
        self.mark_page();
        self.press(keys);
        self.wait_for_new_page("a key press");
    }

    /// Marks the page shown, so that [`Self::wait_for_new_page`] can tell when it is
    /// replaced (a form posted back to the same URL does not change the URL).
    fn mark_page(&self) {
        self.script("window.gkGammalSida = true; return null;");
    }

    fn wait_for_new_page(&self, after: &str) {
        let started = Instant::now();
        loop {
            let loaded = self.script(
                "return window.gkGammalSida === undefined && document.readyState === 'complete';",
            );
            if loaded == json!(true) {
                return;
            }
            assert!(
                started.elapsed() < BROWSER_TIMEOUT,
                "no new page within {BROWSER_TIMEOUT:?} after {after}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `script` in the page and returns what it returns.
    fn script(&self, script: &str) -> Value {
        self.run("run script", self.client().execute(script, Vec::new()))
    }

    fn set_size(&self, (width, height): (u32, u32)) {
        self.run(
            "resize the window",
            self.client().set_window_size(width, height),
        );
    }

    /// Signs in with `token` on the sign-in page and returns the path it lands on.
    fn sign_in(&self, token: &str) -> String {
        self.goto("/logga-in");
        self.type_into("#token", token);
        self.click_and_wait("main form button[type=submit]");
        self.path()
    }

    fn sign_out(&self) {
        self.click_and_wait("header form[action='/logga-ut'] button");
        assert_eq!(self.path(), "/logga-in");
    }

    /// Saves the whole page (not only the window) as `target/screenshots/NAME.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.run("window size", self.client().get_window_size());
        let full = self
            .script("return Math.ceil(document.documentElement.scrollHeight);")
            .as_u64()
            .unwrap_or(height);
        let full = u32::try_from(full.clamp(height, 12_000)).unwrap_or(12_000);
        let width = u32::try_from(width).unwrap_or(LAPTOP.0);
        let height = u32::try_from(height).unwrap_or(LAPTOP.1);
        self.set_size((width, full));
        let png = self.run("screenshot", self.client().screenshot());
        self.set_size((width, height));
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&png))
            .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        path
    }

    /// Saves what the window shows (1280×900 on a laptop) as
    /// `target/screenshots/NAME.png`: the picture for the README.
    fn screenshot_window(&self, name: &str) -> PathBuf {
        let png = self.run("screenshot", self.client().screenshot());
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        path
    }

    /// Whether the page is wider than the window (it then scrolls sideways).
    fn overflows_sideways(&self) -> bool {
        self.script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
        )
        .as_bool()
        .expect("a boolean")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The case form, as the browser fills it in.
// ---------------------------------------------------------------------------------------

/// The id of the form's input for a profile path (as `web::form::input_id`).
fn input(path: &str) -> String {
    format!("#f-{}", path.replace(['.', '_'], "-"))
}

/// Vet ej / Ja / Nej of a yes-no field.
fn yes_no(browser: &Browser, path: &str, value: Option<bool>) {
    let value = match value {
        None => "",
        Some(true) => "true",
        Some(false) => "false",
    };
    browser.select(&input(path), value);
}

/// A date field that may be null: "Vet ej" (`None`), not happened (`Some(None)`) or a
/// date.
fn nullable_date(browser: &Browser, path: &str, value: Option<Option<&str>>) {
    let id = input(path);
    match value {
        None => browser.click(&format!("{id}-vet-ej")),
        Some(None) => browser.click(&format!("{id}-nej")),
        Some(Some(date)) => {
            browser.click(&format!("{id}-ja"));
            browser.type_into(&id, date);
        }
    }
}

fn tick(browser: &Browser, path: &str, value: &str, on: bool) {
    let css = format!("{}-{value}", input(path));
    if browser.checked(&css) != on {
        browser.click(&css);
    }
}

/// Presses the form's submit button and waits for the answer.
fn submit_case(browser: &Browser) {
    browser.click_and_wait("form.case-form button[type=submit]");
}

/// The cards shown, in order: (severity class, badge word, title, message).
fn cards(browser: &Browser) -> Vec<(String, String, String)> {
    browser
        .find_all("ol.cards > li.card")
        .iter()
        .map(|card| {
            let class = browser
                .run("card class", card.attr("class"))
                .unwrap_or_default();
            let badge = browser.run("card badge", card.find(Locator::Css(".card-title .sev")));
            let id = browser.run("card id", card.attr("id")).unwrap_or_default();
            (class, browser.run("badge text", badge.text()), id)
        })
        .collect()
}

fn card_text(browser: &Browser, rule_id: &str) -> String {
    browser.text(&format!("#flagga-{rule_id}"))
}

#[test]
fn a_case_officer_fills_in_the_form_and_sees_each_core_flag_as_a_card() {
    let app = spawn_app();
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    assert_eq!(browser.sign_in(&app.handlaggare.token), "/kontroll");
    assert_eq!(browser.text("h1"), "Kontrollera ärende");

    // A case before GK: activity level not documented, the meetings not known,
    // social problems known without a social worker, an interpreter needed but not
    // booked, a hearing impairment without a specialist.
    browser.type_into(&input("case_id"), "WEBB-1");
    browser.type_into(&input("checked_on"), "2024-03-15");
    browser.select(&input("person.sex"), "female");
    browser.type_into(&input("person.age"), "45");
    browser.type_into(&input("main_diagnosis"), "M54.5");
    yes_no(&browser, "activity_level.documented", Some(false));
    nullable_date(&browser, "activity_level.hours_per_week", Some(None));
    yes_no(
        &browser,
        "known_needs.social_or_family_problems",
        Some(true),
    );
    yes_no(&browser, "known_needs.hearing_impairment", Some(true));
    yes_no(&browser, "known_needs.interpreter_needed", Some(true));
    yes_no(&browser, "gk.interpreter_booked", Some(false));
    tick(&browser, "specialists", "psychologist", true);
    submit_case(&browser);

    // The browser lands on the stored check's own page; the case id stays out of the URL.
    let path = browser.path();
    assert!(
        path.strip_prefix("/kontroll/")
            .is_some_and(|id| id.parse::<i64>().is_ok()),
        "{path}"
    );
    let shown = cards(&browser);
    let ids: Vec<&str> = shown.iter().map(|(_, _, id)| id.as_str()).collect();
    for rule in [
        "flagga-aktivitetsniva_saknas",
        "flagga-personligt_mote_saknas",
        "flagga-socialkonsulent_saknas",
        "flagga-arbetsterapeut_vid_oklar_aktivitetsniva",
        "flagga-specialist_vid_horsel_eller_syn",
        "flagga-tolk_ej_bokad",
    ] {
        assert!(ids.contains(&rule), "a card {rule} among {shown:?}");
    }
    // Most severe first, and the severity is a word as well as a colour.
    let rank = |class: &str| {
        ["flag-critical", "flag-warning", "flag-info"]
            .iter()
            .position(|c| class.split(' ').any(|part| part == *c))
            .unwrap_or_else(|| panic!("a severity class in {class:?}"))
    };
    let ranks: Vec<usize> = shown.iter().map(|(class, _, _)| rank(class)).collect();
    assert!(ranks.is_sorted(), "cards ordered by severity: {shown:?}");
    for (class, word, _) in &shown {
        let expected = match rank(class) {
            0 => "Kritisk",
            1 => "Varning",
            _ => "Information",
        };
        assert_eq!(word, expected, "{class}");
    }
    // Each card: message, why it matters, source.
    let activity = card_text(&browser, "aktivitetsniva_saknas");
    assert!(
        activity.contains("Aktivitetsnivån är inte dokumenterad"),
        "{activity}"
    );
    assert!(
        activity.contains("Varför:") && activity.contains("Källa:"),
        "{activity}"
    );
    assert!(activity.contains("SFR 2018:11"), "{activity}");
    // "Vet ej" about all three meetings reads as missing information, not as "no".
    let meeting = card_text(&browser, "personligt_mote_saknas");
    assert!(
        meeting.contains("Uppgift saknas om personligt möte"),
        "{meeting}"
    );
    // What was entered is still in the form.
    assert_eq!(browser.value(&input("case_id")), "WEBB-1");
    assert_eq!(browser.value(&input("person.age")), "45");
    assert!(browser.checked(&format!("{}-psychologist", input("specialists"))));
    assert_eq!(browser.texts("ol.history-list > li").len(), 1);
    browser.screenshot("kontrollera-arende-flaggor");
    browser.screenshot_window("kontrollera-arende");

    // "Har inte skett" is not "Vet ej": now the message says no meeting was held.
    for path in [
        "preparation.sassam_on",
        "preparation.reconciliation_meeting_on",
        "preparation.other_personal_meeting_on",
    ] {
        nullable_date(&browser, path, Some(None));
    }
    submit_case(&browser);
    let meeting = card_text(&browser, "personligt_mote_saknas");
    assert!(meeting.contains("Inget personligt möte"), "{meeting}");
    assert!(!meeting.contains("Uppgift saknas"), "{meeting}");

    // The officer fixes the case and checks again: a clean case says so plainly, and
    // the earlier checks of the same case are listed, newest first.
    nullable_date(&browser, "preparation.sassam_on", Some(Some("2024-02-10")));
    yes_no(&browser, "activity_level.documented", Some(true));
    browser.click(&format!("{}-ja", input("activity_level.hours_per_week")));
    browser.type_into(&input("activity_level.hours_per_week"), "12,5");
    tick(&browser, "specialists", "social_worker", true);
    tick(&browser, "specialists", "audiologist", true);
    yes_no(&browser, "gk.interpreter_booked", Some(true));
    submit_case(&browser);
    assert!(cards(&browser).is_empty(), "{:?}", cards(&browser));
    let summary = browser.text("p.summary");
    assert!(summary.contains("Inga flaggor"), "{summary}");
    assert!(summary.contains("Klart"), "{summary}");
    // It says what the rules checked, not that nothing needs doing.
    assert!(
        summary.contains("inget att uppmärksamma bland de 8 punkter som reglerna kontrollerar"),
        "{summary}"
    );
    let history = browser.texts("ol.history-list > li");
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history[0].contains("den här kontrollen") && history[0].contains("Inga flaggor"));
    assert!(history[1].contains("Aktivitetsnivå saknas") || history[1].contains("Varning"));
    assert_eq!(
        browser.value(&input("activity_level.hours_per_week")),
        "12,5"
    );
    browser.screenshot("kontrollera-arende-ren");
    browser.set_size(LAPTOP);
}

#[test]
fn a_bad_value_is_shown_next_to_its_field_and_what_was_entered_is_kept() {
    let app = spawn_app();
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    browser.sign_in(&app.handlaggare.token);

    // The page can be used from the keyboard: the first Tab reaches the skip link.
    browser.goto("/kontroll");
    browser.press(&fantoccini::key::Key::Tab.to_string());
    let focused = browser.script("return document.activeElement.textContent;");
    assert_eq!(focused, "Hoppa till innehållet");

    browser.type_into(&input("case_id"), "WEBB-2");
    browser.type_into(&input("person.age"), "fyrtio");
    browser.type_into(&input("main_diagnosis"), "XYZ");
    nullable_date(&browser, "preparation.sassam_on", Some(Some("2024-02-30")));
    browser.click(&format!("{}-ja", input("activity_level.hours_per_week")));
    browser.type_into(&input("activity_level.hours_per_week"), "200");
    submit_case(&browser);

    assert_eq!(browser.path(), "/kontroll");
    assert!(!browser.exists("section.result"), "nothing was checked");
    assert_eq!(app.count("evaluations"), 0, "nothing was stored");
    let summary = browser.text(".problems");
    assert!(summary.contains("Rätta 4 uppgifter"), "{summary}");
    for (path, says, kept) in [
        ("person.age", "hela år", "fyrtio"),
        ("main_diagnosis", "ICD-10-kod", "XYZ"),
        ("preparation.sassam_on", "ÅÅÅÅ-MM-DD", "2024-02-30"),
        ("activity_level.hours_per_week", "från 0 till 168", "200"),
    ] {
        let id = input(path);
        // The message is inside the field's own box, tied to the input.
        let message = browser.text(&format!("{id}-falt .error"));
        assert!(message.contains(says), "{path}: {message}");
        assert_eq!(browser.value(&id), kept, "{path} keeps what was typed");
        assert_eq!(browser.attr(&id, "aria-invalid").as_deref(), Some("true"));
        let described = browser.attr(&id, "aria-describedby").unwrap_or_default();
        assert!(
            described.contains(&format!("{}-fel", &id[1..])),
            "{described}"
        );
        // The summary links to the field.
        assert!(
            browser.exists(&format!(".problems a[href='{id}']")),
            "{path}"
        );
    }
    assert_eq!(browser.value(&input("case_id")), "WEBB-2");
    assert!(browser.checked(&format!("{}-ja", input("preparation.sassam_on"))));
    browser.screenshot("kontrollera-arende-fel");

    // Fixed, and sent with Enter from a text field: no mouse needed.
    browser.type_into(&input("person.age"), "40");
    browser.type_into(&input("main_diagnosis"), "F32.1");
    browser.type_into(&input("preparation.sassam_on"), "2024-02-28");
    browser.type_into(&input("activity_level.hours_per_week"), "20");
    browser.press_and_wait(&fantoccini::key::Key::Enter.to_string());
    assert!(!browser.exists(".problems"), "{}", browser.text("main"));
    assert!(browser.exists("section.result"));
    assert_eq!(app.count("evaluations"), 1);
}

/// The pages a role's menu offers.
fn menu(browser: &Browser) -> Vec<String> {
    browser.texts("header nav a")
}

const FORBIDDEN: &str = "Du har inte behörighet till den här sidan";

#[test]
fn each_role_signs_in_to_its_own_pages_and_is_refused_the_others() {
    let app = spawn_app();
    let Some(browser) = Browser::open(&app) else {
        return;
    };

    // A wrong token is refused on the sign-in page itself.
    assert_eq!(browser.sign_in("gkr_inte_en_riktig_token"), "/logga-in");
    let error = browser.text("#token-fel");
    assert!(error.contains("känns inte igen"), "{error}");
    browser.screenshot("logga-in");

    struct Case<'a> {
        token: &'a str,
        start: &'a str,
        menu: &'a [&'a str],
        refused: &'a [&'a str],
        reload: bool,
        dry_run: bool,
    }
    let cases = [
        Case {
            token: &app.handlaggare.token,
            start: "/kontroll",
            menu: &["Kontrollera ärende", "Regler"],
            refused: &["/uppfoljning", "/uppfoljning/rapport.csv", "/anvandare"],
            reload: false,
            dry_run: true,
        },
        Case {
            token: &app.policy.token,
            start: "/regler",
            menu: &["Regler"],
            refused: &["/kontroll", "/uppfoljning", "/anvandare"],
            reload: true,
            dry_run: true,
        },
        Case {
            token: &app.analytiker.token,
            start: "/uppfoljning",
            menu: &["Regler", "Uppföljning"],
            refused: &["/kontroll", "/anvandare"],
            reload: false,
            dry_run: false,
        },
        Case {
            token: &app.admin.token,
            start: "/kontroll",
            menu: &["Kontrollera ärende", "Regler", "Uppföljning", "Användare"],
            refused: &[],
            reload: true,
            dry_run: true,
        },
    ];
    for case in cases {
        assert_eq!(browser.sign_in(case.token), case.start);
        assert_eq!(
            menu(&browser),
            case.menu,
            "menu after signing in to {}",
            case.start
        );
        for path in case.refused {
            browser.goto(path);
            assert_eq!(browser.text("h1"), FORBIDDEN, "{path}");
            let why = browser.text("main");
            assert!(why.contains("Du är inloggad som"), "{why}");
        }
        for page in ["/kontroll", "/regler", "/uppfoljning"] {
            if !case.refused.contains(&page) {
                browser.goto(page);
                assert_ne!(browser.text("h1"), FORBIDDEN, "{page}");
            }
        }
        browser.goto("/regler");
        assert_eq!(
            browser.exists("form[action='/regler/ladda-om']"),
            case.reload
        );
        assert_eq!(browser.exists("form[action='/regler/prova']"), case.dry_run);
        if case.start == "/uppfoljning" {
            browser.goto("/kontroll");
            browser.screenshot("behorighet-saknas");
        }
        browser.sign_out();
        // Signed out means signed out: the pages send you back to sign in.
        browser.goto(case.start);
        assert_eq!(browser.path(), "/logga-in");
    }
}

#[test]
fn policy_staff_read_the_rules_try_a_profile_and_reload_with_every_error_shown() {
    let app = spawn_app_with(crate::helpers::AppOptions {
        copy_rules: true,
        ..Default::default()
    });
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    assert_eq!(browser.sign_in(&app.policy.token), "/regler");
    let lead = browser.text(".lead");
    assert!(lead.contains("GK standardregler version 2026.2"), "{lead}");
    let tests = browser.text("main > p:nth-of-type(3)");
    assert!(
        tests.contains("godkända") && !tests.contains("Underkänt"),
        "{tests}"
    );

    // Every rule: title, severity, grounds, rationale, sources, script and tests.
    let rules = browser.find_all("section.rule");
    assert_eq!(rules.len(), 8);
    let activity = browser.text("#regel-aktivitetsniva_saknas");
    for part in [
        "Aktivitetsnivå saknas",
        "Varning före GK",
        "Kritisk vid avslut av GK",
        "empiriskt stöd",
        "Varför regeln finns",
        "SFR 2018:11 avsnitt 4.4",
        "Tester",
        "Godkänt",
    ] {
        assert!(activity.contains(part), "{part} in {activity}");
    }
    browser.click("#regel-aktivitetsniva_saknas details summary");
    let script = browser.text("#regel-aktivitetsniva_saknas details pre");
    assert!(
        script.contains("has_value(niva.hours_per_week)"),
        "{script}"
    );
    browser.screenshot("regler");

    // A pasted profile: flags shown, nothing stored.
    let mut profile = base_profile();
    set(&mut profile, "activity_level.documented", json!(false));
    remove(&mut profile, "activity_level.hours_per_week");
    browser.type_into("#profil", &profile.to_string());
    browser.click_and_wait("form[action='/regler/prova'] button");
    let result = browser.text(".tool-result");
    assert!(result.contains("den inklistrade profilen"), "{result}");
    assert!(result.contains("ingenting sparades"), "{result}");
    assert!(browser.exists(".tool-result #flagga-aktivitetsniva_saknas"));
    assert_eq!(app.count("evaluations"), 0);
    // The pasted text is still there to edit.
    assert!(browser.value("#profil").contains("\"case_id\""));

    // An uploaded file is used instead of the text box.
    let file = app.dir.path().join("profil.json");
    std::fs::write(&file, base_profile().to_string()).expect("write profile");
    browser.type_into("#profil", "inte json");
    let upload = browser.find("#fil");
    browser.run(
        "choose a file",
        upload.send_keys(file.to_str().expect("UTF-8 path")),
    );
    browser.click_and_wait("form[action='/regler/prova'] button");
    let result = browser.text(".tool-result");
    assert!(result.contains("filen profil.json"), "{result}");
    assert!(result.contains("Inga flaggor"), "{result}");

    // Not JSON: said plainly.
    browser.type_into("#profil", "{\"case_id\": ");
    browser.click_and_wait("form[action='/regler/prova'] button");
    let result = browser.text(".tool-result .error");
    assert!(result.contains("inte giltig JSON"), "{result}");

    // A broken rule set is refused whole, with every problem at file:line; the old
    // rules stay active.
    let broken = app.rules_dir.join("tolk_ej_bokad.rhai");
    let good = std::fs::read_to_string(&broken).expect("read rule");
    std::fs::write(&broken, format!("{good}\nlet x = ;\n")).expect("break rule");
    let also = app.rules_dir.join("samtycke_saknas.rhai");
    let also_good = std::fs::read_to_string(&also).expect("read rule");
    std::fs::write(&also, format!("{also_good}\nif (\n")).expect("break rule");
    browser.click_and_wait("form[action='/regler/ladda-om'] button");
    let refused = browser.text(".tool-result.failed");
    assert!(refused.contains("laddades inte om"), "{refused}");
    assert!(refused.contains("tidigare reglerna gäller"), "{refused}");
    let problems = browser.texts(".tool-result.failed .problem-list li");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("tolk_ej_bokad.rhai:")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("samtycke_saknas.rhai:")),
        "{problems:?}"
    );
    for problem in &problems {
        let line = problem.split(':').nth(1).unwrap_or_default();
        assert!(line.parse::<usize>().is_ok(), "file:line in {problem}");
    }
    // Each script problem shows its line of code with a caret under the column.
    let code = browser.texts(".tool-result.failed .problem-list pre.code-line");
    assert!(
        code.iter()
            .any(|c| c.contains("| let x = ;") && c.trim_end().ends_with('^')),
        "{code:?}"
    );
    browser.screenshot("regler-ladda-om-fel");

    // Fixed, with a new version: reloaded, and the page shows the new version.
    std::fs::write(&broken, &good).expect("fix rule");
    std::fs::write(&also, &also_good).expect("fix rule");
    let manifest = app.rules_dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("read manifest");
    std::fs::write(
        &manifest,
        text.replace("version: \"2026.2\"", "version: \"2026.3\""),
    )
    .expect("write manifest");
    browser.click_and_wait("form[action='/regler/ladda-om'] button");
    let done = browser.text(".tool-result.ok");
    assert!(done.contains("version 2026.3"), "{done}");
    assert!(browser.text(".lead").contains("version 2026.3"));
}

/// Stores checks of `n` cases through the API, half of them without a documented
/// activity level, and an outcome for each: flagged cases mostly return to FK.
fn store_checks_and_outcomes(app: &TestApp, n: usize) {
    let mut outcomes = Vec::new();
    for i in 0..n {
        let case_id = format!("UPP-{i:03}");
        let flagged = i < n / 2;
        let mut profile = base_profile();
        set(&mut profile, "case_id", json!(case_id));
        set(&mut profile, "checked_on", json!("2024-03-05"));
        set(
            &mut profile,
            "person.sex",
            json!(if i % 2 == 0 { "female" } else { "male" }),
        );
        set(&mut profile, "person.age", json!(25 + i % 40));
        if flagged {
            set(&mut profile, "activity_level.documented", json!(false));
        }
        let reply = app.check(&app.handlaggare, &profile);
        assert_eq!(reply.status, 201, "{reply}");
        let left = if flagged { i % 5 == 0 } else { i % 5 != 0 };
        outcomes.push(json!({
            "case_id": case_id,
            "ended_on": "2024-06-30",
            "outcome": if left { "left_insurance" } else { "returned_to_fk" },
            "reasons": [if left { "work_supported" } else { "health_worsened_unrelated" }],
        }));
    }
    let reply = app.post("/api/v1/outcomes", &app.analytiker, &Value::Array(outcomes));
    assert_eq!(reply.status, 200, "{reply}");
}

#[test]
fn an_analyst_sees_the_audit_with_its_charts_for_a_period_and_can_download_it() {
    let app = spawn_app();
    store_checks_and_outcomes(&app, 40);
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    assert_eq!(browser.sign_in(&app.analytiker.token), "/uppfoljning");
    assert_eq!(browser.text("h1"), "Uppföljning");

    // The period: a bad date is refused beside its field.
    browser.type_into("#fran", "2024-07-01");
    browser.type_into("#till", "2024-01-01");
    browser.click_and_wait("form.period button");
    let error = browser.text(".period .has-error .error");
    assert!(error.contains("före startdatumet"), "{error}");
    assert!(!browser.exists(".audit-report"));

    browser.type_into("#fran", "2024-01-01");
    browser.type_into("#till", "2024-12-31");
    browser.click_and_wait("form.period button");
    let url = browser.url();
    assert!(
        url.contains("/uppfoljning?fran=2024-01-01&till=2024-12-31"),
        "{url}"
    );
    let report = browser.text(".audit-report");
    assert!(report.contains("Uppföljning av reglerna"), "{report}");
    assert!(report.contains("Aktivitetsnivå saknas"), "{report}");

    // Each rule's details are folded under the summary; opened, its charts show.
    assert!(browser.exists(".audit-report table.summary"));
    browser
        .script("document.querySelectorAll('.audit-report details').forEach(d => d.open = true);");
    // The charts: bars drawn for flagged and unflagged cases, in the site's colours.
    let flagged_bars = browser.find_all(".audit-report svg rect.flagged");
    let clear_bars = browser.find_all(".audit-report svg rect.clear");
    assert!(!flagged_bars.is_empty() && !clear_bars.is_empty());
    let fill = browser.run("bar colour", flagged_bars[0].css_value("fill"));
    assert_eq!(fill, "rgb(180, 83, 9)", "the stylesheet colours the bars");
    let (_, _, width, height) = browser.run("bar size", flagged_bars[0].rectangle());
    assert!(width > 0.0 && height > 0.0, "{width}×{height}");
    let charts = browser.find_all(".audit-report svg[role=img]");
    assert!(
        charts.len() >= 9,
        "a chart per rule and for any flag: {}",
        charts.len()
    );
    // Headings stay in order with the report inside the page.
    let levels = browser.script(
        "return [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]);",
    );
    let levels: Vec<u64> = levels
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_u64().expect("a number"))
        .collect();
    assert_eq!(levels.iter().filter(|l| **l == 1).count(), 1, "{levels:?}");
    assert!(
        levels.windows(2).all(|w| w[1] <= w[0] + 1),
        "no heading level skipped: {levels:?}"
    );
    browser.screenshot("uppfoljning");

    // The downloads are the same report for the same period.
    let json_href = browser.attr(".downloads a[href*='rapport.json']", "href");
    assert_eq!(
        json_href.as_deref(),
        Some("/uppfoljning/rapport.json?fran=2024-01-01&till=2024-12-31")
    );
    let web = WebClient::new(&app);
    let reply = web.get(
        "/uppfoljning/rapport.json?fran=2024-01-01&till=2024-12-31",
        Some(&app.analytiker.token),
    );
    assert_eq!(reply.status, 200, "{reply}");
    assert!(reply.header("content-disposition").contains("attachment"));
    let body = reply.json();
    assert_eq!(body["units"]["all"], 40, "{body:#}");
    assert_eq!(body["period"]["from"], "2024-01-01");
    let csv = web.get(
        "/uppfoljning/rapport.csv?fran=2024-01-01&till=2024-12-31",
        Some(&app.analytiker.token),
    );
    assert_eq!(csv.status, 200, "{csv}");
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(
        csv.text.starts_with("section,rule_id,sex,outcome"),
        "{}",
        csv.text
    );
    let xlsx_href = browser.attr(".downloads a[href*='rapport.xlsx']", "href");
    assert_eq!(
        xlsx_href.as_deref(),
        Some("/uppfoljning/rapport.xlsx?fran=2024-01-01&till=2024-12-31")
    );
    let xlsx = web.get(
        "/uppfoljning/rapport.xlsx?fran=2024-01-01&till=2024-12-31&compare_from=2023-01-01&compare_to=2023-12-31&include_test=true",
        Some(&app.analytiker.token),
    );
    assert_eq!(xlsx.status, 200, "{xlsx}");
    assert!(
        xlsx.header("content-type").contains("spreadsheetml"),
        "{xlsx}"
    );
    assert!(
        xlsx.header("content-disposition")
            .contains("uppfoljning-2024-01-01-2024-12-31.xlsx"),
        "{xlsx}"
    );
    // A comparison period that ends before it starts is refused beside its field.
    browser.type_into("#compare_from", "2023-12-31");
    browser.type_into("#compare_to", "2023-01-01");
    browser.click_and_wait("form.period button");
    let error = browser.text(".period .has-error .error");
    assert!(error.contains("Jämförelseperiodens slutdatum"), "{error}");
    browser.type_into("#compare_from", "2023-01-01");
    browser.type_into("#compare_to", "2023-12-31");
    browser.click("#include_test");
    browser.click_and_wait("form.period button");
    let url = browser.url();
    assert!(
        url.contains("compare_from=2023-01-01") && url.contains("include_test=true"),
        "{url}"
    );
    assert!(browser.checked("#include_test"), "the choice is kept");
    let report = browser.text(".audit-report");
    assert!(
        report.contains("Jämförelse med en annan period"),
        "{report}"
    );
    assert!(report.contains("Testkontroller"), "{report}");

    // How long the page takes, measured over HTTP (printed for the record).
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let reply = web.get(
            "/uppfoljning?fran=2024-01-01&till=2024-12-31",
            Some(&app.analytiker.token),
        );
        times.push(started.elapsed());
        assert_eq!(reply.status, 200);
    }
    times.sort();
    println!(
        "Uppföljning, 40 ärenden: median {:?} över 5 hämtningar",
        times[2]
    );
}

#[test]
fn every_page_fits_a_phone_screen() {
    let app = spawn_app();
    store_checks_and_outcomes(&app, 12);
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    browser.sign_in(&app.admin.token);
    browser.set_size(PHONE);
    let width = browser.script("return window.innerWidth;");
    assert_eq!(width, json!(PHONE.0), "the window is phone-narrow");

    // The case page, with a result showing cards.
    browser.goto("/kontroll");
    browser.type_into(&input("case_id"), "MOBIL-1");
    yes_no(&browser, "activity_level.documented", Some(false));
    yes_no(
        &browser,
        "known_needs.social_or_family_problems",
        Some(true),
    );
    submit_case(&browser);
    assert!(browser.exists("#flagga-socialkonsulent_saknas"));
    for (page, name, heading) in [
        (None, "kontrollera-arende-mobil", "Kontrollera ärende"),
        (Some("/regler"), "regler-mobil", "Regler"),
        (Some("/uppfoljning"), "uppfoljning-mobil", "Uppföljning"),
        (Some("/logga-in"), "logga-in-mobil", "Logga in"),
    ] {
        if let Some(page) = page {
            browser.goto(page);
        }
        assert_eq!(browser.text("h1"), heading);
        assert!(
            !browser.overflows_sideways(),
            "{name}: the page is wider than the phone: {}",
            browser.script(
                "const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement) {
                     if (getComputedStyle(a).overflowX !== 'visible') return true; } return false; };
                 return [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
                    .filter(e => !clipped(e))
                    .slice(0, 8)
                    .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right));"
            )
        );
        // Every form control can be reached without scrolling sideways.
        let outside = browser.script(
            "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea,button')]
                .filter(e => { const r = e.getBoundingClientRect();
                               return r.width > 0 && (r.left < 0 || r.right > window.innerWidth + 0.5); })
                .map(e => e.id || e.name || e.textContent);",
        );
        assert_eq!(outside, json!([]), "{name}: controls outside the screen");
        browser.screenshot(name);
    }
    browser.set_size(LAPTOP);
}

/// What an accessibility check of the page shown finds wrong: form controls without a
/// label, headings that skip a level or a page without exactly one `h1`, and text whose
/// contrast with its background is below WCAG AA (4.5:1; 3:1 for large text).
fn accessibility_problems(browser: &Browser) -> Vec<String> {
    let found = browser.script(
        r#"
        const problems = [];
        // Every control has a label: <label for>, an enclosing label, or aria-label(ledby).
        for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
            const labelled = (e.id && document.querySelector(`label[for="${e.id}"]`))
                || e.closest('label') || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby');
            if (!labelled) problems.push('no label: ' + (e.id || e.name));
        }
        // Headings in order.
        const levels = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]);
        if (levels.filter(l => l === 1).length !== 1) problems.push('h1 count: ' + levels);
        if (levels[0] !== 1) problems.push('first heading is not h1: ' + levels);
        for (let i = 1; i < levels.length; i++) {
            if (levels[i] > levels[i - 1] + 1) problems.push('heading skips a level: ' + levels);
        }
        // Contrast of every piece of visible text against its effective background.
        const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
            const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const background = e => {
            for (let a = e; a; a = a.parentElement) {
                const c = rgb(getComputedStyle(a).backgroundColor);
                if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
            }
            return [255, 255, 255];
        };
        const seen = new Set();
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode;
            const e = node.parentElement;
            if (!node.textContent.trim() || !e || seen.has(e)) continue;
            seen.add(e);
            if (e.closest('svg, .vh, .skip, option')) continue;
            const box = e.getBoundingClientRect();
            if (box.width === 0 || box.height === 0) continue;
            const style = getComputedStyle(e);
            const fg = lum(rgb(style.color)), bg = lum(background(e));
            const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
            const size = parseFloat(style.fontSize), bold = +style.fontWeight >= 700;
            const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
            if (ratio < needed) {
                problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${e.tagName}.${e.className} "${node.textContent.trim().slice(0, 30)}"`);
            }
        }
        return problems;
        "#,
    );
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn every_page_has_labels_ordered_headings_and_enough_contrast() {
    let app = spawn_app();
    store_checks_and_outcomes(&app, 12);
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    let mut problems = Vec::new();
    let mut look = |page: &str| {
        for problem in accessibility_problems(&browser) {
            problems.push(format!("{page}: {problem}"));
        }
    };
    browser.goto("/logga-in");
    look("sign-in");
    browser.sign_in("fel");
    look("sign-in refused");
    browser.sign_in(&app.admin.token);
    browser.goto("/kontroll");
    look("case form");
    browser.type_into(&input("case_id"), "TILLG-1");
    browser.type_into(&input("person.age"), "gammal");
    submit_case(&browser);
    look("case form with errors");
    browser.type_into(&input("person.age"), "50");
    yes_no(&browser, "activity_level.documented", Some(false));
    yes_no(&browser, "known_needs.interpreter_needed", Some(true));
    submit_case(&browser);
    look("case result");
    browser.goto("/regler");
    look("rules");
    browser.type_into("#profil", &base_profile().to_string());
    browser.click_and_wait("form[action='/regler/prova'] button");
    look("rules dry run");
    browser.goto("/uppfoljning");
    look("audit");
    browser.sign_in(&app.policy.token);
    browser.goto("/kontroll");
    look("403");
    assert!(problems.is_empty(), "{problems:#?}");
}

// ---------------------------------------------------------------------------------------
// Without a browser: what a person does not see.
// ---------------------------------------------------------------------------------------

/// An HTTP client that acts like the browser (signs in with a token on the sign-in page,
/// then sends the session cookie, and the page's CSRF token with every form) but does
/// not follow redirects, so a test sees them.
pub(crate) struct WebClient {
    pub(crate) client: reqwest::blocking::Client,
    pub(crate) base: String,
    /// Per token: the session cookie (`gk_session=…`) and the session's CSRF token.
    sessions: std::cell::RefCell<std::collections::HashMap<String, (String, String)>>,
}

/// The value of the hidden `csrf` field of a page ("" when there is none).
pub(crate) fn csrf_of(html: &str) -> String {
    const FIELD: &str = "name=\"csrf\" value=\"";
    html.find(FIELD)
        .map(|start| {
            let rest = &html[start + FIELD.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_owned()
        })
        .unwrap_or_default()
}

/// `name=value` of the cookie `name` set by a reply ("" when it sets none).
pub(crate) fn set_cookie(reply: &crate::helpers::Reply, name: &str) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// A session id the service never issued.
pub(crate) const UNKNOWN_SESSION: &str =
    "gk_session=0000000000000000000000000000000000000000000000000000000000000000";

impl WebClient {
    pub(crate) fn new(app: &TestApp) -> Self {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            client,
            base: app.api.url(""),
            sessions: Default::default(),
        }
    }

    /// Sends a request with `cookie` as the `Cookie` header.
    pub(crate) fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> crate::helpers::Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(pairs) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(urlencode(pairs));
        }
        let response = request
            .send()
            .unwrap_or_else(|err| panic!("{path}: no answer: {err}"));
        crate::helpers::Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().expect("a text body"),
        }
    }

    /// Signs in with `token` as the sign-in page does: the page's `gk_login` cookie and
    /// form token, then the token. Returns the session cookie and the session's CSRF
    /// token, or `None` when sign-in was refused.
    pub(crate) fn sign_in(&self, token: &str) -> Option<(String, String)> {
        let page = self.raw(reqwest::Method::GET, "/logga-in", None, &[], None);
        let login = set_cookie(&page, "gk_login");
        assert!(!login.is_empty(), "the sign-in page sets gk_login: {page}");
        let form = [("token", token), ("csrf", &csrf_of(&page.text))];
        let signed = self.raw(
            reqwest::Method::POST,
            "/logga-in",
            Some(&login),
            &[],
            Some(&form),
        );
        if signed.status != 303 {
            return None;
        }
        let cookie = set_cookie(&signed, "gk_session");
        assert!(!cookie.is_empty(), "{signed}");
        let start = self.raw(
            reqwest::Method::GET,
            signed.header("location"),
            Some(&cookie),
            &[],
            None,
        );
        assert_eq!(start.status, 200, "{start}");
        Some((cookie, csrf_of(&start.text)))
    }

    /// The session of `token` (signed in once per client); an unknown session for a
    /// token the service refuses.
    pub(crate) fn session(&self, token: &str) -> (String, String) {
        if let Some(found) = self.sessions.borrow().get(token) {
            return found.clone();
        }
        let session = self
            .sign_in(token)
            .unwrap_or_else(|| (UNKNOWN_SESSION.to_owned(), "x".repeat(64)));
        self.sessions
            .borrow_mut()
            .insert(token.to_owned(), session.clone());
        session
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> crate::helpers::Reply {
        let session = token.map(|t| self.session(t));
        let with_csrf: Option<Vec<(&str, &str)>> = form.map(|pairs| {
            let mut pairs = pairs.to_vec();
            if let Some((_, csrf)) = &session {
                pairs.push(("csrf", csrf));
            }
            pairs
        });
        self.raw(
            method,
            path,
            session.as_ref().map(|(cookie, _)| cookie.as_str()),
            &[],
            with_csrf.as_deref(),
        )
    }

    pub(crate) fn get(&self, path: &str, token: Option<&str>) -> crate::helpers::Reply {
        self.send(reqwest::Method::GET, path, token, None)
    }

    pub(crate) fn post(
        &self,
        path: &str,
        token: Option<&str>,
        form: &[(&str, &str)],
    ) -> crate::helpers::Reply {
        self.send(reqwest::Method::POST, path, token, Some(form))
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn urlencode(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A multipart form with text fields, as the dry-run form sends it.
fn multipart(fields: &[(&str, &str)]) -> (String, String) {
    let boundary = "gkreglergrans";
    let mut body = String::new();
    for (field, text) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{text}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const PAGES: [&str; 3] = ["/kontroll", "/regler", "/uppfoljning"];

#[test]
fn without_a_valid_token_every_page_and_action_sends_the_browser_to_sign_in() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let stale = "gkr_0000000000000000000000000000000000000000000000000000000000000000";
    for token in [None, Some(stale)] {
        let mut replies = Vec::new();
        for page in PAGES.iter().chain(&["/uppfoljning/rapport.json", "/"]) {
            replies.push((page.to_string(), web.get(page, token)));
        }
        for action in ["/kontroll", "/regler/ladda-om", "/regler/prova"] {
            replies.push((
                format!("POST {action}"),
                web.post(action, token, &[("case_id", "X-1")]),
            ));
        }
        for (what, reply) in replies {
            assert_eq!(reply.status, 303, "{what}: {reply}");
            assert_eq!(reply.header("location"), "/logga-in", "{what}");
            if token.is_some() && what != "/" {
                // A stale cookie is cleared.
                assert!(
                    reply.header("set-cookie").contains("Max-Age=0"),
                    "{what}: {reply}"
                );
            }
        }
    }
    let reply = web.get("/logga-in", None);
    assert_eq!(reply.status, 200);
    assert!(reply.text.contains("<html lang=\"sv\">"));
    // Nothing was checked or stored.
    assert_eq!(app.count("evaluations"), 0);
}

#[test]
fn each_role_is_refused_with_a_403_page_what_it_may_not_do() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let profile = base_profile().to_string();
    let allowed = |role: &str, what: &str| -> bool {
        match (role, what) {
            ("admin", _) => true,
            (_, "GET /regler") => true,
            // The web dry run allows the roles of the API's dry run.
            ("handlaggare", w) => w.contains("/kontroll") || w == "POST /regler/prova",
            ("policy", w) => w.contains("/regler"),
            ("analytiker", w) => w.contains("/uppfoljning"),
            _ => false,
        }
    };
    for (role, token) in [
        ("handlaggare", &app.handlaggare.token),
        ("policy", &app.policy.token),
        ("analytiker", &app.analytiker.token),
        ("admin", &app.admin.token),
    ] {
        let mut replies = vec![
            ("GET /kontroll", web.get("/kontroll", Some(token))),
            ("GET /regler", web.get("/regler", Some(token))),
            ("GET /uppfoljning", web.get("/uppfoljning", Some(token))),
            (
                "GET /uppfoljning/rapport.csv",
                web.get("/uppfoljning/rapport.csv", Some(token)),
            ),
            (
                "POST /kontroll",
                web.post("/kontroll", Some(token), &[("case_id", "ROLL-1")]),
            ),
            (
                "POST /kontroll/arende",
                web.post("/kontroll/arende", Some(token), &[("case_id", "ROLL-1")]),
            ),
        ];
        let (cookie, csrf) = web.session(token);
        let (dry_run_type, dry_run_body) = multipart(&[("csrf", &csrf), ("profil", &profile)]);
        let mut request = web
            .client
            .post(format!("{}/regler/prova", web.base))
            .header("cookie", &cookie)
            .header("content-type", &dry_run_type)
            .body(dry_run_body);
        let response = request.send().expect("dry run");
        let status = response.status().as_u16();
        replies.push((
            "POST /regler/prova",
            crate::helpers::Reply {
                status,
                headers: response.headers().clone(),
                text: response.text().expect("text"),
            },
        ));
        request = web
            .client
            .post(format!("{}/regler/ladda-om", web.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencode(&[("csrf", &csrf)]));
        let response = request.send().expect("reload");
        replies.push((
            "POST /regler/ladda-om",
            crate::helpers::Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                text: response.text().expect("text"),
            },
        ));
        for (what, reply) in replies {
            if allowed(role, what) {
                // A stored check sends the browser on to its own page.
                let ok = if what == "POST /kontroll" { 303 } else { 200 };
                assert_eq!(reply.status, ok, "{role} {what}: {reply}");
            } else {
                assert_eq!(reply.status, 403, "{role} {what}: {reply}");
                assert!(reply.header("content-type").starts_with("text/html"));
                assert!(reply.text.contains(FORBIDDEN), "{role} {what}: {reply}");
            }
        }
    }
    // Only the officer's and the admin's checks were stored.
    assert_eq!(app.count("evaluations"), 2);
}

/// Every `href="…"` and `action="…"` of a page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "action=\"", "src=\""] {
        for (start, _) in html.match_indices(attribute) {
            let rest = &html[start + attribute.len()..];
            if let Some(end) = rest.find('"') {
                found.push(rest[..end].to_owned());
            }
        }
    }
    found
}

#[test]
fn case_pages_are_not_cached_and_case_data_stays_out_of_urls_and_logs() {
    let mut app = spawn_app();
    let web = WebClient::new(&app);
    let token = Some(app.handlaggare.token.as_str());
    let case_id = "HEMLIGT-4711";
    let form = [
        ("case_id", case_id),
        ("stage", "before_gk"),
        ("checked_on", "2024-03-15"),
        ("main_diagnosis", "F32.1"),
        ("person.age", "52"),
        ("activity_level.documented", "false"),
        ("known_needs.social_or_family_problems", "true"),
    ];
    // A check is stored and the browser sent on to the stored check's page (303), so a
    // refresh reads and never stores again; the case id stays out of that URL.
    let stored = |form: &[(&str, &str)]| {
        let posted = web.post("/kontroll", token, form);
        assert_eq!(posted.status, 303, "{posted}");
        let location = posted.header("location").to_owned();
        assert!(
            location
                .strip_prefix("/kontroll/")
                .is_some_and(|id| id.parse::<i64>().is_ok()),
            "{posted}"
        );
        assert!(posted.text.is_empty(), "{posted}");
        web.get(&location, token)
    };
    let first = stored(&form);
    assert_eq!(first.status, 200, "{first}");
    let second = stored(&form);
    let refused = web.post(
        "/kontroll",
        token,
        &[("case_id", case_id), ("person.age", "x")],
    );
    assert_eq!(refused.status, 422, "{refused}");
    let empty = web.get("/kontroll", token);
    for (what, reply) in [
        ("result", &first),
        ("re-check", &second),
        ("refused form", &refused),
        ("empty form", &empty),
    ] {
        assert_eq!(reply.header("cache-control"), "no-store", "{what}");
        assert!(reply.header("location").is_empty(), "{what}: no redirect");
        assert!(
            reply
                .header("content-security-policy")
                .contains("default-src 'none'")
        );
        assert_eq!(reply.header("referrer-policy"), "no-referrer");
        for link in links(&reply.text) {
            assert!(!link.contains(case_id), "{what}: {link}");
            assert!(
                !link.starts_with("http"),
                "{what}: nothing from elsewhere: {link}"
            );
        }
        assert!(!reply.text.contains("<script"), "{what}: no scripts");
    }
    // The result names the flags; the case id (held in memory for the session that
    // made the check) only in the check's head and in the form's field.
    assert!(first.text.contains("id=\"flagga-socialkonsulent_saknas\""));
    assert_eq!(first.text.matches(case_id).count(), 2, "{first}");
    assert_eq!(second.text.matches("<li class=\"current\"").count(), 1);
    assert_eq!(
        second.text.matches("history-head").count(),
        2,
        "both checks of the case are listed"
    );

    // How long the pages take, measured over HTTP (printed for the record): a check
    // evaluates, commits and renders; the rules page also runs every rule test.
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut check_times = Vec::new();
    let mut rules_times = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(stored(&form).status, 200);
        check_times.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(web.get("/regler", token).status, 200);
        rules_times.push(started.elapsed());
    }
    println!(
        "Kontrollera ärende (POST och sidan den leder till): median {:?}; Regler (GET): median {:?}; över 10 hämtningar",
        median(&mut check_times),
        median(&mut rules_times)
    );

    let css = web.get("/static/style.css", None);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));

    let stopped = app.kill();
    for secret in [case_id, "F32.1"] {
        assert!(
            !stopped.stdout.contains(secret),
            "{secret} in stdout:\n{stopped}"
        );
        assert!(
            !stopped.stderr.contains(secret),
            "{secret} in the log:\n{stopped}"
        );
    }
    assert!(stopped.stderr.contains("check stored"), "{stopped}");
}

// ---------------------------------------------------------------------------------------
// Another site attacks a signed-in browser.
// ---------------------------------------------------------------------------------------

/// A tiny web site on another port of 127.0.0.1: each path is one page whose script
/// posts a form to the service as soon as it loads. Stops when dropped.
struct AttackerSite {
    base: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AttackerSite {
    fn start(pages: Vec<(&'static str, String)>) -> Self {
        use std::io::{BufRead as _, BufReader};
        let listener = TcpListener::bind("127.0.0.1:0").expect("attacker port");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut reader = BufReader::new(&stream);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/");
                let body = pages
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or_else(String::new, |(_, html)| html.clone());
                let mut stream = &stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            base,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for AttackerSite {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A page that posts `fields` to `action` as soon as it loads.
fn auto_post(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!("<input type=\"hidden\" name=\"{name}\" value=\"{value}\">"))
        .collect();
    format!(
        "<!doctype html><html><body><form id=\"f\" method=\"post\" action=\"{action}\">{inputs}</form>\
         <script>document.getElementById('f').submit();</script></body></html>"
    )
}

#[test]
fn a_page_on_another_port_cannot_check_a_case_reload_the_rules_or_sign_the_victim_in() {
    let app = spawn_app_with(crate::helpers::AppOptions {
        copy_rules: true,
        ..Default::default()
    });
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    let victim = &app.admin;
    let version = |app: &TestApp| {
        app.api.get("/api/v1/rules", &app.admin).json()["ruleset"]["version"]
            .as_str()
            .expect("a version")
            .to_owned()
    };
    assert_eq!(version(&app), "2026.2");
    // New rules wait in the directory: a reload would make them active.
    let manifest = app.rules_dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("version: \"2026.2\"", "version: \"2026.9\""),
    )
    .expect("change the manifest");

    // The attacker's own valid token, for the login CSRF.
    let attacker_token = app
        .api
        .post(
            "/api/v1/admin/tokens",
            &app.admin,
            &json!({ "name": "mallory", "role": "handlaggare" }),
        )
        .json()["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let service = app.api.url("");
    let site = AttackerSite::start(vec![
        (
            "/kontroll",
            auto_post(
                &format!("{service}/kontroll"),
                &[
                    ("case_id", "FORFALSKAT-1"),
                    ("stage", "before_gk"),
                    ("checked_on", "2024-03-15"),
                    ("person.age", "40"),
                ],
            ),
        ),
        (
            "/ladda-om",
            auto_post(&format!("{service}/regler/ladda-om"), &[]),
        ),
        (
            "/logga-in",
            auto_post(
                &format!("{service}/logga-in"),
                &[("token", &attacker_token)],
            ),
        ),
    ]);

    assert_eq!(browser.sign_in(&victim.token), "/kontroll");
    for page in ["/kontroll", "/ladda-om", "/logga-in"] {
        browser.goto_url(&format!("{}{page}", site.base));
        browser.wait_for_service_page();
        let shown = browser.text("body");
        assert!(
            shown.contains("annan webbplats"),
            "{page}: refused as coming from another site: {shown}"
        );
    }
    browser.screenshot("csrf-avvisad");
    // Nothing stored, nothing reloaded, and the victim is still the victim.
    assert_eq!(app.count("evaluations"), 0, "no forged check stored");
    assert_eq!(version(&app), "2026.2", "no forged reload");
    browser.goto("/kontroll");
    let who = browser.text("header .who");
    assert!(
        who.contains(victim.name),
        "still signed in as the victim: {who}"
    );
    assert!(!who.contains("mallory"), "{who}");

    // The test can see a reload: the victim's own button does make 2026.9 active.
    browser.goto("/regler");
    browser.click_and_wait("form[action='/regler/ladda-om'] button");
    assert_eq!(version(&app), "2026.9");
}

#[test]
fn an_admin_creates_lists_and_revokes_tokens_on_the_users_page() {
    let app = spawn_app();
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    assert_eq!(browser.sign_in(&app.admin.token), "/kontroll");
    browser.goto("/anvandare");
    assert_eq!(browser.text("h1"), "Användare");
    let listed = browser.text("table.users");
    for user in [app.handlaggare.name, app.policy.name, app.analytiker.name] {
        assert!(listed.contains(user), "{user} listed: {listed}");
    }
    assert!(!listed.contains(&app.handlaggare.token), "no tokens listed");

    browser.type_into("#namn", "sara.ny");
    browser.select("#roll", "analytiker");
    browser.type_into("#giltig", "2999-12-31");
    browser.click_and_wait("form[action='/anvandare'] button[type=submit]");
    let token = browser.text("#token");
    assert!(
        token.starts_with("gkr_"),
        "the token is shown once: {token}"
    );
    browser.screenshot("anvandare-ny-token");
    assert_eq!(app.api.get("/api/v1/audit", token.as_str()).status, 200);
    let row = browser.text("table.users tbody tr");
    assert!(row.contains("sara.ny") && row.contains("2999"), "{row}");
    // Shown once: the next load of the page has no token.
    browser.goto("/anvandare");
    assert!(!browser.exists("#token"));
    assert!(!browser.text("main").contains(&token));

    // Revoke the newest (first) row: refused at once.
    browser.click_and_wait("table.users tbody tr:first-child form button");
    assert!(browser.text("main").contains("är återkallad"));
    assert!(browser.text("table.users tbody tr").contains("Återkallad"));
    app.api.get("/api/v1/audit", token.as_str()).problem(401);

    // A name already in use is refused beside the form, nothing created.
    browser.type_into("#namn", app.policy.name);
    browser.click_and_wait("form[action='/anvandare'] button[type=submit]");
    assert!(
        browser.text("main .error").contains("redan"),
        "{}",
        browser.text("main")
    );
    assert!(!browser.exists("#token"));
    browser.screenshot("anvandare");
}

// ---------------------------------------------------------------------------------------
// Answering a flag on its card.
// ---------------------------------------------------------------------------------------

#[test]
fn answering_a_flag_on_its_card_needs_the_form_token_and_the_officer_who_made_the_check() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let mut profile = base_profile();
    set(&mut profile, "case_id", json!("WEBB-SVAR"));
    set(&mut profile, "known_needs.interpreter_needed", json!(true));
    let reply = app.check(&app.handlaggare, &profile);
    assert_eq!(reply.status, 201, "{reply}");
    let id = reply.json()["evaluation_id"].as_i64().expect("id");
    let path = format!("/kontroll/{id}/svar");
    let handled = [("rule_id", "tolk_ej_bokad"), ("response", "handled")];

    // A case id looked up in small letters finds none of the checks made in capitals,
    // and the page says how to find them.
    let lookup = |case_id: &str| {
        web.post(
            "/kontroll/arende",
            Some(&app.handlaggare.token),
            &[("case_id", case_id)],
        )
    };
    let small = lookup("webb-svar");
    assert_eq!(small.status, 200, "{small}");
    assert!(
        small.text.contains("skiljer på stora och små bokstäver")
            && small.text.contains("<strong>WEBB-SVAR</strong>"),
        "{small}"
    );
    let found = lookup("WEBB-SVAR");
    assert!(!found.text.contains("skiljer på stora och små"), "{found}");
    assert!(
        found.text.contains("ifyllt från den senaste kontrollen"),
        "{found}"
    );

    // Opened in a session that did not make it, the check cannot show its case id (only
    // its pseudonym is stored), and says so rather than leaving the field blank.
    let page = web.get(&format!("/kontroll/{id}"), Some(&app.handlaggare.token));
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text
            .contains("visas inte, eftersom det bara sparas som pseudonym"),
        "{page}"
    );

    // A colleague does not see the check; an admin sees it but answers for no one.
    let reply = web.post(&path, Some(&app.handlaggare2.token), &handled);
    assert_eq!(reply.status, 404, "{reply}");
    let reply = web.post(&path, Some(&app.admin.token), &handled);
    assert_eq!(reply.status, 403, "{reply}");
    assert!(
        reply.text.contains("Bara den som gjorde kontrollen"),
        "{reply}"
    );
    // Without the session's form token the answer is refused before anything runs.
    let (cookie, _) = web.session(&app.handlaggare.token);
    let forged = web.raw(
        reqwest::Method::POST,
        &path,
        Some(&cookie),
        &[],
        Some(&handled),
    );
    assert_eq!(forged.status, 403, "{forged}");
    // "Inte relevant" without a reason says what to do.
    let reply = web.post(
        &path,
        Some(&app.handlaggare.token),
        &[
            ("rule_id", "tolk_ej_bokad"),
            ("response", "not_relevant"),
            ("reason", ""),
        ],
    );
    assert_eq!(reply.status, 422, "{reply}");
    assert!(reply.text.contains("Välj en orsak"), "{reply}");
    // A link back to the check, not its address in the text.
    assert!(
        reply.text.contains(&format!(
            "<a href=\"&#x2f;kontroll&#x2f;{id}\">Tillbaka till kontrollen för att försöka igen</a>"
        )) && !reply.text.contains("(/kontroll/"),
        "{reply}"
    );
    assert_eq!(app.count("flag_responses"), 0);

    let reply = web.post(
        &path,
        Some(&app.handlaggare.token),
        &[
            ("rule_id", "tolk_ej_bokad"),
            ("response", "not_relevant"),
            ("reason", "personen_avbojer"),
        ],
    );
    assert_eq!(reply.status, 303, "{reply}");
    assert_eq!(
        reply.header("location"),
        format!("/kontroll/{id}#flagga-tolk_ej_bokad")
    );
    let stored: (String, String, String) = app
        .db()
        .query_row(
            "SELECT response, reason, answered_by FROM flag_responses WHERE evaluation_id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("one answer");
    assert_eq!(
        stored,
        (
            "not_relevant".to_owned(),
            "personen_avbojer".to_owned(),
            app.handlaggare.name.to_owned()
        )
    );
}

#[test]
fn the_rules_page_lists_each_rules_reasons_for_not_relevant() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let page = web.get("/regler", Some(&app.policy.token));
    assert_eq!(page.status, 200, "{page}");
    let tolk = &page.text[page
        .text
        .find("id=\"regel-tolk_ej_bokad\"")
        .expect("the rule")..];
    let tolk = &tolk[..tolk.find("</section>").expect("its end")];
    assert!(
        tolk.contains("Orsaker när handläggaren svarar Inte relevant"),
        "{tolk}"
    );
    let own = tolk.find("personen avböjer tolk").expect("its own reason");
    let common = tolk
        .find("<li>annat <code>annat</code>")
        .expect("a common reason");
    assert!(own < common, "its own reasons first: {tolk}");
}

/// The smallest chart label on the page, in CSS pixels as drawn (font size times the
/// chart's scale), over the charts that are shown.
const SMALLEST_CHART_LABEL: &str = "
    let smallest = Infinity;
    for (const svg of document.querySelectorAll('svg[viewBox]')) {
        const box = svg.getBoundingClientRect();
        if (box.width === 0) continue;
        const scale = box.width / svg.viewBox.baseVal.width;
        for (const t of svg.querySelectorAll('text')) {
            smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * scale);
        }
    }
    return smallest;";

#[test]
fn the_standalone_audit_reads_on_a_laptop_and_on_a_phone() {
    let app = spawn_app();
    app.import_development_cohort();
    let page = app.dir.path().join("uppfoljning.html");
    let out = app.run_cli(
        &[
            "audit",
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
            "--out",
            page.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    let url = format!("file://{}", page.display());
    for (size, name) in [
        (LAPTOP, "uppfoljning-sammanfattning"),
        (PHONE, "uppfoljning-sammanfattning-mobil"),
    ] {
        browser.set_size(size);
        browser.goto_url(&url);
        assert_eq!(
            browser.text("h2"),
            "Sammanfattning",
            "the summary comes first"
        );
        assert!(
            !browser.overflows_sideways(),
            "{name}: wider than the window"
        );
        browser.screenshot_window(name);
        // Every rule's details opened: still no sideways scrolling, labels readable.
        browser.script("document.querySelectorAll('details').forEach(d => d.open = true);");
        assert!(
            !browser.overflows_sideways(),
            "{name}: with the details open, wider than the window"
        );
        let smallest = browser
            .script(SMALLEST_CHART_LABEL)
            .as_f64()
            .expect("a number");
        assert!(
            smallest >= 10.9,
            "{name}: a chart label is {smallest:.1} px, below 11 px"
        );
        browser.screenshot(&format!("{name}-detaljer"));
    }
}

/// The test gate on the Regler page: a set whose tests fail is refused with each
/// failing test listed, never a "Klart"; a fixed set under a new version goes live, and
/// the history compares the two versions line by line.
#[test]
fn policy_staff_see_a_refusal_listing_the_failing_tests_and_compare_versions_in_the_history() {
    let app = spawn_app_with(crate::helpers::AppOptions {
        copy_rules: true,
        ..Default::default()
    });
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    assert_eq!(browser.sign_in(&app.policy.token), "/regler");
    let parameters = browser.text("#regel-forsta_mote_efter_tre_veckor table.params");
    assert!(
        parameters.contains("param.max_dagar") && parameters.contains("2000-01-01"),
        "{parameters}"
    );
    assert!(parameters.contains("21"), "{parameters}");

    // 21 days become 14 under a new version; the rule's tests still expect 21.
    let manifest = app.rules_dir.join("manifest.yaml");
    let original = std::fs::read_to_string(&manifest).expect("read manifest");
    let changed = original
        .replace("value: 21 }", "value: 14 }")
        .replace("version: \"2026.2\"", "version: \"2026.3\"");
    assert_ne!(changed, original);
    std::fs::write(&manifest, &changed).expect("write manifest");
    browser.click_and_wait("form[action='/regler/ladda-om'] button");
    assert!(!browser.exists(".tool-result.ok"));
    let refused = browser.text(".tool-result.failed");
    assert!(!refused.contains("Klart"), "{refused}");
    assert!(
        refused.contains("laddades inte om") && refused.contains("tester misslyckades"),
        "{refused}"
    );
    assert!(
        refused.contains("version 2026.2"),
        "the running set is named: {refused}"
    );
    let problems = browser.texts(".tool-result.failed .problem-list li");
    assert!(!problems.is_empty());
    for problem in &problems {
        assert!(
            problem.starts_with("tests/forsta_mote_efter_tre_veckor.yaml:")
                && problem.contains("förväntat")
                && problem.contains("fick"),
            "{problem}"
        );
    }
    assert!(browser.text(".lead").contains("version 2026.2"));
    browser.screenshot("regler-tester-underkanda");

    // A real change that keeps the tests green goes live under the new version.
    std::fs::write(
        &manifest,
        original
            .replace("version: \"2026.2\"", "version: \"2026.3\"")
            .replace(
                "title: Tolk behövs men ingen bokning är registrerad",
                "title: Tolk behövs men ingen bokning till GK är registrerad",
            ),
    )
    .expect("write manifest");
    browser.click_and_wait("form[action='/regler/ladda-om'] button");
    let done = browser.text(".tool-result.ok");
    assert!(
        done.contains("Klart")
            && done.contains("version 2026.3")
            && done.contains("tester gick igenom"),
        "{done}"
    );

    // Both versions in the history; their diff shows the changed lines.
    let rows = browser.texts("#historik tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].contains("version 2026.2"), "{rows:?}");
    assert!(
        rows[1].contains("version 2026.3") && rows[1].contains("gäller nu"),
        "{rows:?}"
    );
    browser.click_and_wait("form.compare button");
    let diff = browser.text("#historik .diff");
    assert!(
        diff.contains("från GK standardregler version 2026.2"),
        "{diff}"
    );
    assert!(diff.contains("-version: \"2026.2\""), "{diff}");
    assert!(diff.contains("+version: \"2026.3\""), "{diff}");
    assert!(
        diff.contains("+  title: Tolk behövs men ingen bokning till GK är registrerad")
            || diff.contains("+    title: Tolk behövs men ingen bokning till GK är registrerad"),
        "{diff}"
    );
    browser.screenshot("regler-historik");
}

/// Policy staff on the Regler page: the shadow rules are shown, a candidate rule set is
/// uploaded and shown beside the live rules, and Prova takes the case form.
#[test]
fn policy_sees_shadow_rules_tries_a_candidate_and_the_case_form() {
    let shadow = tempfile::TempDir::new().expect("temp dir");
    let shadow_dir = shadow.path().join("skugga");
    crate::helpers::copy_dir(std::path::Path::new("rules"), &shadow_dir);
    let manifest = shadow_dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replacen("version: \"2026.2\"", "version: \"2026.2-skugga\"", 1),
    )
    .expect("write manifest");
    let app = crate::helpers::spawn_app_with(crate::helpers::AppOptions {
        env: vec![(
            "GK_REGLER_SHADOW_RULES",
            shadow_dir.to_str().expect("utf-8").to_owned(),
        )],
        ..crate::helpers::AppOptions::default()
    });
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    browser.sign_in(&app.policy.token);
    browser.goto("/regler");
    let section = browser.text("section.shadow");
    assert!(section.contains("version 2026.2-skugga"), "{section}");
    assert!(
        section.contains("visas aldrig för handläggare"),
        "{section}"
    );

    // A candidate: the shipped rules under a new version, zipped.
    let candidate = tempfile::TempDir::new().expect("temp dir");
    let dir = candidate.path().join("regler");
    crate::helpers::copy_dir(std::path::Path::new("rules"), &dir);
    let manifest = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replacen("version: \"2026.2\"", "version: \"2026.3\"", 1),
    )
    .expect("write manifest");
    let archive = candidate.path().join("regler.zip");
    std::fs::write(&archive, crate::candidate::zip_dir(&dir)).expect("write zip");
    let file = browser.find("#arkiv");
    browser.run(
        "choose the archive",
        file.send_keys(archive.to_str().expect("utf-8")),
    );
    browser.click_and_wait("section.candidate form button[type=submit]");
    let result = browser.text("#kandidatresultat");
    assert!(
        result.contains("GK standardregler version 2026.3"),
        "{result}"
    );
    assert!(result.contains("Godkänt"), "{result}");
    assert!(
        result.contains("Bredvid reglerna som gäller nu"),
        "{result}"
    );
    browser.screenshot("regler-kandidat");
    browser.script("document.getElementById('kandidatresultat').scrollIntoView(); return null;");
    browser.screenshot_window("regler-kandidat-resultat");
    assert_eq!(app.count("evaluations"), 0, "nothing stored");

    // Prova with the case form.
    browser.goto("/regler");
    browser.click_and_wait("a[href='/regler/prova']");
    assert_eq!(browser.path(), "/regler/prova");
    browser.type_into(&input("case_id"), "PROVA-WEBB");
    yes_no(&browser, "activity_level.documented", Some(false));
    submit_case(&browser);
    let shown = cards(&browser);
    assert!(
        shown
            .iter()
            .any(|(_, _, id)| id == "flagga-aktivitetsniva_saknas"),
        "{shown:?}"
    );
    assert!(
        browser
            .text("section.result")
            .contains("ingenting sparades")
    );
    browser.screenshot("regler-prova-formular");
    assert_eq!(app.count("evaluations"), 0, "nothing stored");
}

/// The officer's whole loop, as people do it: a check, one flag answered "Inte relevant"
/// with a reason, a colleague who opens the case and sees the earlier check with the
/// answer, a re-check that clears another flag, and the audit that counts both.
#[test]
fn the_whole_loop_from_check_to_answer_to_colleague_to_recheck_to_audit() {
    let app = spawn_app_with(crate::helpers::AppOptions {
        env: vec![("GK_REGLER_AUDIT_MIN_CELL_FLOOR", "1".to_owned())],
        ..crate::helpers::AppOptions::default()
    });
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    let case = "SLINGA-1";
    assert_eq!(browser.sign_in(&app.handlaggare.token), "/kontroll");
    browser.type_into(&input("case_id"), case);
    browser.type_into(&input("checked_on"), "2024-03-05");
    nullable_date(&browser, "gk.first_meeting_on", Some(Some("2024-04-02")));
    yes_no(&browser, "activity_level.documented", Some(false));
    nullable_date(&browser, "activity_level.hours_per_week", Some(None));
    yes_no(&browser, "known_needs.interpreter_needed", Some(true));
    yes_no(&browser, "gk.interpreter_booked", Some(false));
    submit_case(&browser);
    let first = browser.path();
    assert!(first.starts_with("/kontroll/"), "{first}");
    assert!(browser.exists("#flagga-aktivitetsniva_saknas"));

    // "Inte relevant" with a reason on the interpreter's card.
    browser.select("#orsak-tolk_ej_bokad", "personen_avbojer");
    browser.click_and_wait("#svar-tolk_ej_bokad form.answer-not-relevant button");
    assert_eq!(browser.path(), first, "back on the check's page");
    let card = card_text(&browser, "tolk_ej_bokad");
    assert!(
        card.contains("Svar: Inte relevant: personen avböjer tolk"),
        "{card}"
    );
    assert!(card_text(&browser, "aktivitetsniva_saknas").contains("Inte besvarad än"));
    browser.screenshot("hela-slingan-svar");
    browser.sign_out();

    // A colleague opens the case: the earlier check, by whom, and the answer.
    assert_eq!(browser.sign_in(&app.handlaggare2.token), "/kontroll");
    browser.type_into("#f-arende-sok", case);
    browser.click_and_wait("form.case-lookup button");
    let story = browser.texts("ol.history-list > li");
    assert_eq!(story.len(), 1, "{story:?}");
    assert!(story[0].contains(app.handlaggare.name), "{story:?}");
    assert!(
        story[0].contains("Inte relevant: personen avböjer tolk"),
        "{story:?}"
    );

    // The colleague re-checks with the activity level documented: that flag clears.
    browser.type_into(&input("checked_on"), "2024-03-15");
    yes_no(&browser, "activity_level.documented", Some(true));
    nullable_date(&browser, "activity_level.hours_per_week", Some(Some("10")));
    submit_case(&browser);
    let second = browser.path();
    assert!(
        second.starts_with("/kontroll/") && second != first,
        "{second}"
    );
    assert!(!browser.exists("#flagga-aktivitetsniva_saknas"));
    assert!(browser.exists("#flagga-tolk_ej_bokad"));
    let story = browser.texts("ol.history-list > li");
    assert_eq!(story.len(), 2, "{story:?}");
    assert!(
        story[0].contains("Löst sedan kontrollen före")
            && story[0].contains("Aktivitetsnivå saknas"),
        "{story:?}"
    );
    assert!(
        story[1].contains("Inte relevant: personen avböjer tolk"),
        "{story:?}"
    );
    browser.screenshot("hela-slingan-kollega");

    // The audit counts the answer and the resolution.
    let outcome = json!({"case_id": case, "ended_on": "2024-06-30", "outcome": "left_insurance", "reasons": ["work_supported"]});
    assert_eq!(
        app.post("/api/v1/outcomes", &app.analytiker, &outcome)
            .status,
        200
    );
    let reply = app.get("/api/v1/audit?min_cell=1", &app.analytiker);
    assert_eq!(reply.status, 200, "{reply}");
    let report = reply.json();
    let rule = |id: &str| {
        report["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["rule_id"] == id)
            .map(|r| r["responses"]["versions"][0].clone())
            .unwrap_or_else(|| panic!("no rule {id}: {report:#}"))
    };
    let tolk = rule("tolk_ej_bokad");
    assert_eq!(
        (tolk["answered"].clone(), tolk["not_relevant"].clone()),
        (json!(1), json!(1)),
        "{tolk:#}"
    );
    assert_eq!(
        tolk["not_relevant_by_reason"][0]["code"],
        "personen_avbojer"
    );
    let activity = rule("aktivitetsniva_saknas");
    assert_eq!(
        (
            activity["cases_flagged_before_gk"].clone(),
            activity["resolved"].clone()
        ),
        (json!(1), json!(1)),
        "{activity:#}"
    );
    assert_eq!(activity["median_days_to_resolution"], 10.0, "{activity:#}");
}

/// A test file that cannot be read stops every test from running: the Regler page said
/// "inga tester hittades" above the list of what could not be read.
#[test]
fn the_rules_page_says_unreadable_tests_and_names_fields_as_the_form_does() {
    let app = spawn_app_with(crate::helpers::AppOptions {
        copy_rules: true,
        ..Default::default()
    });
    std::fs::write(
        app.rules_dir.join("tests/ny_regel.yaml"),
        "rule: ny_regel\ncases: []\n",
    )
    .expect("write a test file");
    let web = WebClient::new(&app);
    let page = web.get("/regler", Some(&app.policy.token));
    assert_eq!(page.status, 200, "{page}");
    assert!(!page.text.contains("inga tester hittades"), "{page}");
    assert!(
        page.text
            .contains("kunde inte läsas, så inget test har körts"),
        "{page}"
    );
    assert!(page.text.contains("Testerna kunde inte läsas"), "{page}");
    // The fields a rule reads are named as the check form names them, with their code.
    assert!(
        page.text.contains("<li>Läge <code>stage</code></li>"),
        "{page}"
    );
    // The page keeps its run of the tests only while the tests folder is unchanged.
    std::fs::remove_file(app.rules_dir.join("tests/ny_regel.yaml")).expect("remove");
    let page = web.get("/regler", Some(&app.policy.token));
    assert!(!page.text.contains("Testerna kunde inte läsas"), "{page}");
    assert!(page.text.contains("Godkänt"), "{page}");
    // What makes the tests refuse a file is seen at once, not hidden by a kept run: a
    // test file writable by all.
    use std::os::unix::fs::PermissionsExt as _;
    let file = app.rules_dir.join("tests/tolk_ej_bokad.yaml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let page = web.get("/regler", Some(&app.policy.token));
    assert!(page.text.contains("kan skrivas av alla"), "{page}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // A FIFO among the tests, which no one writes to, is refused, not waited on: the
    // page answered never, and each view held a thread until the service stopped.
    let fifo = app.rules_dir.join("tests/ror.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let page = web.get("/regler", Some(&app.policy.token));
    assert_eq!(page.status, 200, "{page}");
    assert!(page.text.contains("Testerna kunde inte läsas"), "{page}");
}
