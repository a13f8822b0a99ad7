# The eight default rules of rules/*.rhai as Rego, flags only (no messages), for the peer
# benchmark. `data.gk.flags` maps each rule id to true when the rule flags.
package gk

import rego.v1

prep := object.get(input, "preparation", {})

gk := object.get(input, "gk", {})

activity := object.get(input, "activity_level", {})

needs := object.get(input, "known_needs", {})

specialists := {s | some s in object.get(input, "specialists", [])}

has_value(obj, key) if object.get(obj, key, null) != null

is_true(obj, key) if object.get(obj, key, false) == true

day(date) := time.parse_ns("2006-01-02", date) / 86400000000000

default activity_unclear := false

activity_unclear if not activity_assessed

activity_assessed if {
	is_true(activity, "documented")
	has_value(activity, "hours_per_week")
}

default no_personal_meeting := false

no_personal_meeting if {
	not has_value(prep, "sassam_on")
	not has_value(prep, "reconciliation_meeting_on")
	not has_value(prep, "other_personal_meeting_on")
}

default social_worker_missing := false

social_worker_missing if {
	is_true(needs, "social_or_family_problems")
	not "social_worker" in specialists
}

default occupational_therapist_missing := false

occupational_therapist_missing if {
	activity_unclear
	not "occupational_therapist" in specialists
}

default specialist_missing := false

specialist_missing if {
	is_true(needs, "hearing_impairment")
	not "deaf_counsellor" in specialists
	not "audiologist" in specialists
}

specialist_missing if {
	is_true(needs, "vision_impairment")
	not "vision_specialist" in specialists
}

default consent_missing_or_late := false

consent_missing_or_late if {
	has_value(gk, "requested_on")
	not has_value(prep, "consent_received_on")
}

consent_missing_or_late if {
	has_value(gk, "requested_on")
	has_value(prep, "consent_received_on")
	day(prep.consent_received_on) > day(gk.requested_on)
}

# The first meeting, or the day of the check when none is booked.
meeting_or_check := gk.first_meeting_on if has_value(gk, "first_meeting_on")

else := input.checked_on

default first_meeting_late := false

first_meeting_late if {
	has_value(gk, "requested_on")
	day(meeting_or_check) - day(gk.requested_on) > 21
}

default interpreter_missing := false

interpreter_missing if {
	is_true(needs, "interpreter_needed")
	not is_true(gk, "interpreter_booked")
}

flags := {
	"aktivitetsniva_saknas": activity_unclear,
	"personligt_mote_saknas": no_personal_meeting,
	"socialkonsulent_saknas": social_worker_missing,
	"arbetsterapeut_vid_oklar_aktivitetsniva": occupational_therapist_missing,
	"specialist_vid_horsel_eller_syn": specialist_missing,
	"samtycke_saknas": consent_missing_or_late,
	"forsta_mote_efter_tre_veckor": first_meeting_late,
	"tolk_ej_bokad": interpreter_missing,
}
