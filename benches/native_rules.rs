//! The eight default rules (docs/rules.md, `rules/*.rhai`) written by hand in Rust on
//! the typed [`Profile`]: the floor every engine is measured against. It gives the
//! flags only (no messages); `assert_agrees` checks it against the engine once before
//! anything is timed, so the comparison is between equal logic.

use gk_regler::profile::{Field, Profile, Specialist};

/// Rule ids in manifest order; bit `i` of a [`Flags`] is `RULE_IDS[i]`.
pub const RULE_IDS: [&str; 8] = [
    "aktivitetsniva_saknas",
    "personligt_mote_saknas",
    "socialkonsulent_saknas",
    "arbetsterapeut_vid_oklar_aktivitetsniva",
    "specialist_vid_horsel_eller_syn",
    "samtycke_saknas",
    "forsta_mote_efter_tre_veckor",
    "tolk_ej_bokad",
];

/// The set of flagged rules, one bit per rule of [`RULE_IDS`].
pub type Flags = u8;

fn has(profile: &Profile, specialist: Specialist) -> bool {
    profile.specialists.contains(&specialist)
}

/// All eight rules on one profile.
pub fn evaluate(p: &Profile) -> Flags {
    let yes = |b: Option<bool>| b == Some(true);

    let aktivitetsniva =
        !(yes(p.activity_level.documented) && p.activity_level.hours_per_week.value().is_some());

    let prep = &p.preparation;
    let personligt_mote = prep.sassam_on.value().is_none()
        && prep.reconciliation_meeting_on.value().is_none()
        && prep.other_personal_meeting_on.value().is_none();

    let socialkonsulent =
        yes(p.known_needs.social_or_family_problems) && !has(p, Specialist::SocialWorker);

    let arbetsterapeut = aktivitetsniva && !has(p, Specialist::OccupationalTherapist);

    let horsel = yes(p.known_needs.hearing_impairment)
        && !has(p, Specialist::DeafCounsellor)
        && !has(p, Specialist::Audiologist);
    let syn = yes(p.known_needs.vision_impairment) && !has(p, Specialist::VisionSpecialist);

    let (samtycke, forsta_mote) = match p.gk.requested_on {
        Field::Value(requested) => {
            let samtycke = match prep.consent_received_on {
                Field::Value(consent) => consent > requested,
                Field::Null | Field::Absent => true,
            };
            let until = match p.gk.first_meeting_on {
                Field::Value(first) => first,
                Field::Null | Field::Absent => p.checked_on,
            };
            (samtycke, requested.days_until(until) > 21)
        }
        Field::Null | Field::Absent => (false, false),
    };

    let tolk = yes(p.known_needs.interpreter_needed) && !yes(p.gk.interpreter_booked);

    [
        aktivitetsniva,
        personligt_mote,
        socialkonsulent,
        arbetsterapeut,
        horsel || syn,
        samtycke,
        forsta_mote,
        tolk,
    ]
    .iter()
    .enumerate()
    .fold(0, |flags, (i, &flag)| flags | (u8::from(flag) << i))
}

/// The flagged rule ids of `flags`, for messages.
pub fn names(flags: Flags) -> Vec<&'static str> {
    RULE_IDS
        .iter()
        .enumerate()
        .filter(|(i, _)| flags & (1 << i) != 0)
        .map(|(_, id)| *id)
        .collect()
}
