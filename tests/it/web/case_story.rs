//! Kontrollera ärende as a case moves on: Post/Redirect/Get to the stored check's own
//! page, the case's whole story for a colleague, the form filled from the latest check,
//! dates typed loosely or picked, the fields the rules read first, and the printed page.

use super::*;

/// The form of a case before GK: the activity level not documented, social problems
/// known without a social worker, everything else in order.
fn case_form(case_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("case_id", case_id),
        ("stage", "before_gk"),
        ("checked_on", "2024-03-15"),
        ("main_diagnosis", "F32.1"),
        ("person.age", "52"),
        ("state:preparation.sassam_on", "value"),
        ("preparation.sassam_on", "2024-02-10"),
        ("state:preparation.consent_received_on", "value"),
        ("preparation.consent_received_on", "2024-02-01"),
        ("state:gk.requested_on", "value"),
        ("gk.requested_on", "2024-02-20"),
        ("state:gk.first_meeting_on", "value"),
        ("gk.first_meeting_on", "2024-03-01"),
        ("activity_level.documented", "false"),
        ("known_needs.social_or_family_problems", "true"),
        ("known_needs.hearing_impairment", "false"),
        ("known_needs.vision_impairment", "false"),
        ("known_needs.interpreter_needed", "false"),
    ]
}

/// Posts a case form; it must be stored and answered with 303 to the check's page.
fn check(web: &WebClient, token: &str, form: &[(&str, &str)]) -> String {
    let posted = web.post("/kontroll", Some(token), form);
    assert_eq!(posted.status, 303, "{posted}");
    let location = posted.header("location").to_owned();
    assert!(
        location
            .strip_prefix("/kontroll/")
            .is_some_and(|id| id.parse::<i64>().is_ok()),
        "{posted}"
    );
    location
}

/// The stored profile of the latest check, as JSON.
fn latest_profile(app: &TestApp) -> Value {
    let text: String = app
        .db()
        .query_row(
            "SELECT profile_json FROM evaluations ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .expect("a stored check");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn a_check_lands_on_its_own_page_and_a_colleague_sees_the_case_story() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let officer = app.handlaggare.token.as_str();
    let colleague = app.handlaggare2.token.as_str();
    let case_id = "BERATTELSE-17";

    // Post, redirect, get: reading the page again stores nothing.
    let page = check(&web, officer, &case_form(case_id));
    for _ in 0..2 {
        let shown = web.get(&page, Some(officer));
        assert_eq!(shown.status, 200, "{shown}");
        assert!(shown.text.contains("id=\"flagga-aktivitetsniva_saknas\""));
        assert!(
            shown
                .text
                .contains("Ärendet har inte kontrollerats tidigare.")
        );
        assert!(!shown.text.contains("som du har gjort"), "{shown}");
        assert!(shown.text.contains(&format!("value=\"{case_id}\"")));
        // Each card links to the fields of the form its rule reads.
        assert!(
            shown.text.contains(
                "Uppgifter som regeln läser: <a href=\"#f-activity-level-documented\">\
                 Aktivitetsnivån är dokumenterad</a>, <a href=\"#f-activity-level-hours-per-week\">"
            ),
            "{shown}"
        );
        assert!(shown.text.contains("id=\"f-activity-level-documented\""));
    }
    assert_eq!(app.count("evaluations"), 1);

    // Only the officer who made it opens a check by its number; for anyone else it is
    // exactly like a number that does not exist.
    let theirs = web.get(&page, Some(colleague));
    assert_eq!(theirs.status, 404, "{theirs}");
    let missing = web.get("/kontroll/999999", Some(colleague));
    assert_eq!(missing.status, 404);
    assert_eq!(theirs.text, missing.text);
    assert_eq!(web.get("/kontroll/abc", Some(colleague)).status, 404);
    assert!(!theirs.text.contains(case_id) && !theirs.text.contains("F32.1"));

    // The colleague gives the case id: every check of the case, by anyone, with its
    // answers and flags, and the form filled from the latest check.
    let story = web.post("/kontroll/arende", Some(colleague), &[("case_id", case_id)]);
    assert_eq!(story.status, 200, "{story}");
    let text = &story.text;
    assert!(text.contains("av alla handläggare"), "{text}");
    assert!(
        text.contains(&format!("av {}", app.handlaggare.name)),
        "{text}"
    );
    assert!(text.contains("Aktivitetsnivå saknas"), "{text}");
    assert!(text.contains("Socialkonsulent saknas"), "{text}");
    assert!(
        text.contains("Huvuddiagnos (ICD-10)</dt><dd>F32.1"),
        "{text}"
    );
    assert!(
        text.contains("GK standardregler version 2026.2 ("),
        "{text}"
    );
    assert!(
        text.contains("ifyllt från den senaste kontrollen"),
        "{text}"
    );
    assert!(text.contains(&format!("value=\"{case_id}\"")), "{text}");
    assert!(
        text.contains("value=\"52\""),
        "the age is filled in: {text}"
    );
    assert!(text.contains("value=\"2024-02-10\""), "SASSAM is filled in");

    // The colleague re-checks with the activity level documented: that flag is resolved.
    let mut fixed = case_form(case_id);
    fixed.retain(|(name, _)| *name != "activity_level.documented" && *name != "checked_on");
    fixed.extend([
        ("checked_on", "2024-03-20"),
        ("activity_level.documented", "true"),
        ("state:activity_level.hours_per_week", "value"),
        ("activity_level.hours_per_week", "10"),
    ]);
    let second = check(&web, colleague, &fixed);
    let shown = web.get(&second, Some(colleague));
    assert_eq!(shown.status, 200);
    assert!(!shown.text.contains("id=\"flagga-aktivitetsniva_saknas\""));
    assert_eq!(shown.text.matches("history-head").count(), 2, "{shown}");
    assert!(
        shown
            .text
            .contains("Löst sedan kontrollen före:</strong> Aktivitetsnivå saknas"),
        "{shown}"
    );
    // The answers that changed since the check before say what they were.
    assert!(
        shown.text.contains("3 ändrade sedan kontrollen före"),
        "{shown}"
    );
    assert!(
        shown.text.contains(
            "Aktivitetsnivån är dokumenterad</dt><dd><strong>Ja</strong> <span class=\"meta\">(förut: Nej)</span>"
        ),
        "{shown}"
    );
    // The first officer now sees the colleague's check too, and may open their own.
    let story = web.post("/kontroll/arende", Some(officer), &[("case_id", case_id)]);
    assert!(
        story
            .text
            .contains(&format!("av {}", app.handlaggare2.name))
    );
    assert!(
        story
            .text
            .contains(&format!("<a href=\"{page}\">Öppna kontrollen</a>"))
    );
    assert!(
        !story.text.contains(&format!("<a href=\"{second}\">")),
        "not theirs"
    );

    // A case without checks: the form with only the case id; a missing case id is
    // refused beside the field.
    let new = web.post("/kontroll/arende", Some(officer), &[("case_id", "NYTT-1")]);
    assert_eq!(new.status, 200);
    assert!(new.text.contains("inga sparade kontroller"), "{new}");
    let empty = web.post("/kontroll/arende", Some(officer), &[("case_id", " ")]);
    assert_eq!(empty.status, 422, "{empty}");
    assert!(empty.text.contains("Ange ärende-id"), "{empty}");

    // Every read of the case or a check is in the access log, with its reader.
    let reads: Vec<(String, String)> = app
        .db()
        .prepare(
            "SELECT actor, action FROM access_log WHERE action IN ('read_check', 'list_case') \
             ORDER BY id",
        )
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("access log");
    let by = |name: &str, action: &str| {
        reads
            .iter()
            .filter(|(a, b)| a == name && b == action)
            .count()
    };
    assert_eq!(by(app.handlaggare.name, "read_check"), 2, "{reads:?}");
    assert!(by(app.handlaggare2.name, "list_case") >= 2, "{reads:?}");
    assert!(by(app.handlaggare.name, "list_case") >= 3, "{reads:?}");
}

#[test]
fn dates_are_accepted_as_typed_or_picked() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let officer = app.handlaggare.token.as_str();
    let mut form = case_form("DATUM-1");
    form.retain(|(name, _)| {
        !matches!(
            *name,
            "checked_on" | "gk.requested_on" | "preparation.sassam_on"
        )
    });
    form.extend([
        ("checked_on", "2024-3-5"),
        ("gk.requested_on", "20240301"),
        // Only the calendar was used.
        ("preparation.sassam_on", ""),
        ("kalender:preparation.sassam_on", "2024-02-12"),
        ("kalender-fore:preparation.sassam_on", ""),
    ]);
    check(&web, officer, &form);
    let stored = latest_profile(&app);
    assert_eq!(stored["checked_on"], "2024-03-05");
    assert_eq!(stored["gk"]["requested_on"], "2024-03-01");
    assert_eq!(stored["preparation"]["sassam_on"], "2024-02-12");

    // The text changed, the calendar left as shown: the text counts.
    let mut typed = case_form("DATUM-2");
    typed.retain(|(name, _)| *name != "preparation.sassam_on");
    typed.extend([
        ("preparation.sassam_on", "2024-2-9"),
        ("kalender:preparation.sassam_on", "2024-02-10"),
        ("kalender-fore:preparation.sassam_on", "2024-02-10"),
    ]);
    check(&web, officer, &typed);
    assert_eq!(
        latest_profile(&app)["preparation"]["sassam_on"],
        "2024-02-09"
    );

    // Both changed, to different dates: which one? Refused beside the field.
    let mut both = case_form("DATUM-3");
    both.retain(|(name, _)| *name != "preparation.sassam_on");
    both.extend([
        ("preparation.sassam_on", "2024-02-11"),
        ("kalender:preparation.sassam_on", "2024-02-12"),
        ("kalender-fore:preparation.sassam_on", "2024-02-10"),
    ]);
    let refused = web.post("/kontroll", Some(officer), &both);
    assert_eq!(refused.status, 422, "{refused}");
    assert!(
        refused.text.contains("både i fältet och i kalendern"),
        "{refused}"
    );
    // A date that is no date is still refused, by its field, with the formats it takes.
    let mut bad = case_form("DATUM-4");
    bad.retain(|(name, _)| *name != "checked_on");
    bad.push(("checked_on", "2024-13-40"));
    let refused = web.post("/kontroll", Some(officer), &bad);
    assert_eq!(refused.status, 422, "{refused}");
    assert!(refused.text.contains("20240315 går också"), "{refused}");
    // The follow-up section is folded, unless one of its fields has an error.
    assert!(
        refused
            .text
            .contains("<details class=\"followup\" id=\"uppfoljning\">")
    );
    let mut old = case_form("DATUM-5");
    old.retain(|(name, _)| *name != "person.age");
    old.push(("person.age", "gammal"));
    let refused = web.post("/kontroll", Some(officer), &old);
    assert_eq!(refused.status, 422, "{refused}");
    assert!(
        refused
            .text
            .contains("<details class=\"followup\" id=\"uppfoljning\" open>"),
        "{refused}"
    );
    assert_eq!(app.count("evaluations"), 2);
}

/// The number of pages of a PDF.
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/Type /Page")
        .chain(text.match_indices("/Type/Page"))
        .filter(|(at, found)| !text[at + found.len()..].starts_with('s'))
        .count()
}

#[test]
fn in_the_browser_a_refresh_stores_nothing_a_colleague_fills_in_from_the_story_and_it_prints_on_one_page()
 {
    let app = spawn_app();
    let Some(browser) = Browser::open(&app) else {
        return;
    };
    browser.sign_in(&app.handlaggare.token);
    browser.goto("/kontroll");
    // The fields the rules read come first; the follow-up's are folded away.
    assert!(browser.exists("details.followup:not([open])"));
    let followup = browser.text("details.followup > summary");
    assert!(
        followup.contains("Uppgifter för uppföljningen"),
        "{followup}"
    );
    let folded = browser.script(&format!(
        "return document.querySelector({}).closest('details.followup') !== null;",
        json!(input("person.age"))
    ));
    assert_eq!(folded, json!(true), "age only feeds the follow-up");
    let first = browser.script(&format!(
        "return document.querySelector({}).closest('details') === null;",
        json!(input("activity_level.documented"))
    ));
    assert_eq!(first, json!(true), "the rules read the activity level");
    let hint = browser.text(&format!(
        "{}-falt .hint",
        input("activity_level.documented")
    ));
    assert!(
        hint.contains("flaggas aktivitetsnivån även om timmar är ifyllda"),
        "{hint}"
    );

    browser.type_into(&input("case_id"), "WEBB-BERATTELSE");
    browser.type_into(&input("checked_on"), "2024-3-15");
    nullable_date(&browser, "preparation.sassam_on", Some(Some("20240210")));
    yes_no(&browser, "activity_level.documented", Some(false));
    yes_no(
        &browser,
        "known_needs.social_or_family_problems",
        Some(true),
    );
    browser.type_into(&input("person.age"), "45");
    submit_case(&browser);
    let page = browser.path();
    assert!(page.starts_with("/kontroll/"), "{page}");
    assert_eq!(browser.value(&input("checked_on")), "2024-03-15");
    assert_eq!(browser.value(&input("preparation.sassam_on")), "2024-02-10");
    assert_eq!(
        browser.value(&format!("{}-kalender", input("preparation.sassam_on"))),
        "2024-02-10",
        "the calendar shows the typed date"
    );
    // A refresh reads the page again and stores nothing.
    browser.mark_page();
    browser.run("refresh", browser.client().refresh());
    browser.wait_for_new_page("a refresh");
    assert_eq!(browser.path(), page);
    assert_eq!(app.count("evaluations"), 1);
    browser.screenshot("kontroll-sparad");

    // Printed: one A4 page, without the form, the story or the menu.
    let pdf = browser.run(
        "print",
        browser.client().print(
            fantoccini::wd::PrintConfiguration::builder()
                .shrink_to_fit(false)
                .build()
                .expect("print settings"),
        ),
    );
    assert_eq!(pdf_pages(&pdf), 1, "one page for the case file");
    let hidden_in_print = browser.script(
        "const hidden = [];
         for (const sheet of document.styleSheets) for (const rule of sheet.cssRules) {
           if (rule.media && rule.media.mediaText === 'print') for (const inner of rule.cssRules) {
             if (inner.style.display === 'none') hidden.push(inner.selectorText);
           }
         }
         return hidden.join(', ');",
    );
    let hidden_in_print = hidden_in_print.as_str().unwrap_or_default();
    for part in [
        "form.case-form",
        "section.history",
        "form.case-lookup",
        "header.site nav",
    ] {
        assert!(hidden_in_print.contains(part), "{part}: {hidden_in_print}");
    }
    browser.set_size(PHONE);
    assert!(
        !browser.overflows_sideways(),
        "the check's page fits a phone"
    );
    browser.screenshot("kontroll-sparad-mobil");
    browser.set_size(LAPTOP);

    // A colleague: the case id, then the story and the filled form.
    browser.sign_out();
    browser.sign_in(&app.handlaggare2.token);
    assert!(
        browser
            .text("form.case-lookup")
            .contains("Fyll i från senaste kontrollen")
    );
    browser.type_into("#f-arende-sok", "WEBB-BERATTELSE");
    browser.click_and_wait("form.case-lookup button[type=submit]");
    let story = browser.texts("ol.history-list > li");
    assert_eq!(story.len(), 1, "{story:?}");
    assert!(story[0].contains(app.handlaggare.name), "{story:?}");
    assert!(story[0].contains("Aktivitetsnivå saknas"), "{story:?}");
    assert_eq!(browser.value(&input("case_id")), "WEBB-BERATTELSE");
    assert_eq!(browser.value(&input("preparation.sassam_on")), "2024-02-10");
    assert_eq!(browser.value(&input("person.age")), "45");
    browser.screenshot("kontroll-arendet-kollega");
    browser.set_size(PHONE);
    assert!(!browser.overflows_sideways(), "the story fits a phone");
    browser.screenshot("kontroll-arendet-kollega-mobil");
    browser.set_size(LAPTOP);

    // The colleague documents the activity level and picks the meeting in the calendar.
    yes_no(&browser, "activity_level.documented", Some(true));
    browser.click(&format!("{}-ja", input("activity_level.hours_per_week")));
    browser.type_into(&input("activity_level.hours_per_week"), "10");
    browser.click(&format!(
        "{}-ja",
        input("preparation.other_personal_meeting_on")
    ));
    browser.script(&format!(
        "document.querySelector({}).value = '2024-03-01'; return null;",
        json!(format!(
            "{}-kalender",
            input("preparation.other_personal_meeting_on")
        ))
    ));
    submit_case(&browser);
    assert_eq!(
        browser.value(&input("preparation.other_personal_meeting_on")),
        "2024-03-01"
    );
    let story = browser.texts("ol.history-list > li");
    assert_eq!(story.len(), 2, "{story:?}");
    assert!(story[0].contains("den här kontrollen"), "{story:?}");
    assert!(
        story[0].contains("Löst sedan kontrollen före: Aktivitetsnivå saknas"),
        "{story:?}"
    );
    assert_eq!(app.count("evaluations"), 2);
    browser.screenshot("kontroll-igen-kollega");
}
