//! Fuzzes the profile parser and, for every profile it accepts, the evaluation of the
//! default rules: neither may panic, and a parsed profile must survive a round trip to
//! the same text.
#![no_main]

use std::sync::{Arc, LazyLock};

use gk_regler::profile::{Field, Profile};
use gk_regler::ruleset::RuleSet;
use libfuzzer_sys::fuzz_target;

/// The default rules. A rule set that does not load is a broken setup: fail at once
/// rather than fuzz the parser alone and report success.
static RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let rules = RuleSet::load(&dir).unwrap_or_else(|err| {
        panic!(
            "the default rules in {} do not load: {err}: {:?}",
            dir.display(),
            err.problems
        )
    });
    assert!(!rules.rules.is_empty(), "no rules in {}", dir.display());
    rules
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = Profile::from_json(text) else {
        return;
    };
    let json = serde_json::to_string(&profile).expect("a parsed profile serialises");
    let again = Profile::from_json(&json).expect("a parsed profile must round-trip");
    // Dates are read by the profile's own calendar arithmetic and written by jiff: the
    // two must agree, so the text written again is the same. (Hours are left out:
    // serde_json reads floats to within one unit in the last place.)
    let without_hours = |profile: &Profile| {
        let mut profile = profile.clone();
        profile.activity_level.hours_per_week = Field::Absent;
        serde_json::to_string(&profile).ok()
    };
    assert_eq!(
        without_hours(&again),
        without_hours(&profile),
        "a parsed profile must round-trip to the same text"
    );
    let rules = &*RULES;
    let evaluation = rules.evaluate(&Arc::new(profile));
    assert_eq!(evaluation.outcomes.len(), rules.rules.len());
});
