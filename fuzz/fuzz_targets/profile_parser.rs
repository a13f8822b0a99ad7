//! Fuzzes the profile parser and, for every profile it accepts, the evaluation of the
//! default rules: neither may panic, and a parsed profile must survive a round trip.
#![no_main]

use std::sync::{Arc, LazyLock};

use gk_regler::profile::Profile;
use gk_regler::ruleset::RuleSet;
use libfuzzer_sys::fuzz_target;

static RULES: LazyLock<Option<RuleSet>> = LazyLock::new(|| {
    RuleSet::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")).ok()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = Profile::from_json(text) else {
        return;
    };
    let again = serde_json::to_string(&profile).map(|json| Profile::from_json(&json));
    assert!(
        matches!(again, Ok(Ok(_))),
        "a parsed profile must round-trip"
    );
    if let Some(rules) = RULES.as_ref() {
        let evaluation = rules.evaluate(&Arc::new(profile));
        assert_eq!(evaluation.outcomes.len(), rules.rules.len());
    }
});
