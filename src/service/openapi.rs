//! The OpenAPI document, generated from the handlers and types so it cannot drift. The
//! profile and outcome schemas come from the same `schemars` derive as `gk-regler
//! schema`; a copy is checked in at `src/service/openapi.json` and a test keeps it equal.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// Stands for the profile schema of [`crate::profile::Profile`] in handler annotations;
/// the real schema is put in place by [`document`].
pub struct ProfileBody;

impl PartialSchema for ProfileBody {
    fn schema() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Profile"))
    }
}

impl ToSchema for ProfileBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "ProfileBody".into()
    }
}

/// Stands for "one outcome or an array of outcomes".
pub struct OutcomesBody;

impl PartialSchema for OutcomesBody {
    fn schema() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name("OutcomesBody"))
    }
}

impl ToSchema for OutcomesBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "OutcomesBody".into()
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "gk-regler", description = "Beslutsstöd inför gemensam kartläggning (GK)."),
    paths(
        super::create_check,
        super::dry_run_check,
        super::get_check,
        super::case_checks,
        super::record_outcomes,
        super::audit_report,
        super::list_rules,
        super::reload_rules,
        super::rules_history,
        super::create_token,
        super::list_tokens,
        super::revoke_token,
        super::live,
        super::ready,
        super::metrics_text,
        super::openapi_document,
    ),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Moves a schemars schema's `$defs` into `components.schemas` and points its refs there.
fn hoist(
    schema: serde_json::Value,
    name: &str,
    components: &mut serde_json::Map<String, serde_json::Value>,
) {
    let text = schema
        .to_string()
        .replace("#/$defs/", "#/components/schemas/");
    let Ok(serde_json::Value::Object(mut object)) =
        serde_json::from_str::<serde_json::Value>(&text)
    else {
        return;
    };
    object.remove("$schema");
    if let Some(serde_json::Value::Object(defs)) = object.remove("$defs") {
        for (key, value) in defs {
            components.insert(key, value);
        }
    }
    components.insert(name.to_owned(), serde_json::Value::Object(object));
}

/// The whole document as JSON.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(serde_json::Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        let profile =
            serde_json::to_value(crate::profile::Profile::json_schema()).unwrap_or_default();
        hoist(profile, "Profile", schemas);
        let outcome = serde_json::to_value(schemars::schema_for!(crate::outcome::Outcome))
            .unwrap_or_default();
        hoist(outcome, "Outcome", schemas);
        schemas.insert(
            "OutcomesBody".to_owned(),
            serde_json::json!({
                "oneOf": [
                    { "$ref": "#/components/schemas/Outcome" },
                    { "type": "array", "minItems": 1, "maxItems": super::MAX_OUTCOMES_PER_REQUEST,
                      "items": { "$ref": "#/components/schemas/Outcome" } }
                ]
            }),
        );
    }
    doc
}

static DOCUMENT_TEXT: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string_pretty(&document()).unwrap_or_default() + "\n");

/// The document as pretty-printed JSON (what is served and checked in).
pub fn document_text() -> &'static str {
    &DOCUMENT_TEXT
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/service/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == super::document_text(),
            "src/service/openapi.json is out of date: run `cargo run -- openapi > src/service/openapi.json`"
        );
    }

    #[test]
    fn profile_schema_is_inlined_with_resolvable_refs() {
        let doc = super::document();
        let text = doc.to_string();
        assert!(!text.contains("#/$defs/"));
        let refs: Vec<&str> = text
            .match_indices("#/components/schemas/")
            .map(|(i, _)| &text[i + 21..])
            .collect();
        for r in refs {
            let name: String = r.chars().take_while(|c| *c != '"').collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
