//! "Prova" on the Regler page: a profile tried with the active rules, nothing stored,
//! from the Kontrollera ärende form as well as from JSON, with errors in Swedish.

use crate::helpers::{TestApp, spawn_app};
use crate::web::WebClient;

/// Posts `fields` as a multipart form (the JSON tool on the Regler page) with `token`'s
/// session.
fn post_multipart(
    app: &TestApp,
    web: &WebClient,
    token: &str,
    fields: &[(&str, &str)],
) -> crate::helpers::Reply {
    let (cookie, csrf) = web.session(token);
    let boundary = "gkreglerprovagrans";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n");
    for (name, text) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{text}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let response = web
        .client
        .post(format!("{}/regler/prova", web.base))
        .header("cookie", cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .expect("an answer");
    let _ = app;
    crate::helpers::Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().expect("a text body"),
    }
}

#[test]
fn prova_accepts_the_case_form_and_stores_nothing() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let page = web.get("/regler/prova", Some(&app.policy.token));
    assert_eq!(page.status, 200, "{page}");
    assert!(
        page.text.contains("Prova reglerna med formuläret"),
        "{page}"
    );
    assert!(page.text.contains("action=\"/regler/prova\""), "{page}");
    let regler = web.get("/regler", Some(&app.policy.token));
    assert!(
        regler.text.contains("href=\"/regler/prova\""),
        "the Regler page links to the form"
    );

    let today = "2024-03-01";
    let form = [
        ("case_id", "PROVA-1"),
        ("stage", "before_gk"),
        ("checked_on", today),
        ("activity_level.documented", "false"),
    ];
    for token in [&app.policy.token, &app.handlaggare.token] {
        let tried = web.post("/regler/prova", Some(token), &form);
        assert_eq!(tried.status, 200, "{tried}");
        assert!(
            tried.text.contains("Provkörning: ingenting sparades"),
            "{tried}"
        );
        assert!(tried.text.contains("Aktivitetsnivå saknas"), "{tried}");
        assert!(
            tried.text.contains("PROVA-1"),
            "the form keeps what was entered"
        );
    }
    assert_eq!(app.count("evaluations"), 0, "a dry run stores nothing");

    let mut bad = form.to_vec();
    bad.push(("person.age", "fyrtio"));
    let refused = web.post("/regler/prova", Some(&app.policy.token), &bad);
    assert_eq!(refused.status, 422, "{refused}");
    assert!(refused.text.contains("hela år"), "{refused}");
    assert!(refused.text.contains("value=\"fyrtio\""), "{refused}");

    let analyst = web.post("/regler/prova", Some(&app.analytiker.token), &form);
    assert_eq!(analyst.status, 403, "{analyst}");
    assert_eq!(app.count("evaluations"), 0);
}

#[test]
fn prova_explains_json_mistakes_in_swedish() {
    let app = spawn_app();
    let web = WebClient::new(&app);
    let no_english = |reply: &crate::helpers::Reply| {
        for english in ["unknown variant", "expected", "EOF", "invalid type"] {
            assert!(!reply.text.contains(english), "{english}: {reply}");
        }
    };
    let mut profile = crate::helpers::base_profile();
    crate::helpers::set(&mut profile, "stage", serde_json::json!("fore"));
    let reply = post_multipart(
        &app,
        &web,
        &app.policy.token,
        &[("profil", &profile.to_string())],
    );
    assert_eq!(reply.status, 422, "{reply}");
    assert!(
        reply.text.contains(
            "Fältet stage är fel: okänt värde; tillåtna värden är before_gk eller gk_closing."
        ),
        "{reply}"
    );
    no_english(&reply);
    let mut profile = crate::helpers::base_profile();
    crate::helpers::set(&mut profile, "person.age", serde_json::json!("fyrtio"));
    let reply = post_multipart(
        &app,
        &web,
        &app.policy.token,
        &[("profil", &profile.to_string())],
    );
    assert!(
        reply
            .text
            .contains("Fältet person.age är fel: fel sorts värde; här ska stå ett heltal."),
        "{reply}"
    );
    no_english(&reply);
    let reply = post_multipart(
        &app,
        &web,
        &app.policy.token,
        &[("profil", "{\"case_id\": ")],
    );
    assert!(
        reply.text.contains("Profilen är inte giltig JSON på rad 1"),
        "{reply}"
    );
    assert!(
        reply.text.contains("texten tar slut mitt i profilen"),
        "{reply}"
    );
    no_english(&reply);
}
