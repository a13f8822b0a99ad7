//! The text of a profile as stored: compact JSON with the keys of every object in byte
//! order (the order of `serde_json::Value`'s map) and the case id replaced by the
//! pseudonym. Written straight from the profile, without building a `Value` tree first.
//!
//! Stored profiles are compared byte for byte (an import skips a check identical to a
//! stored one), so this text never changes for the same profile. Every struct is taken
//! apart field by field without `..`: a new field of the profile does not compile here
//! until it is given its place in the key order.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::profile::{ActivityLevel, Field, Gk, KnownNeeds, Person, Preparation, Profile};

/// The profile as stored, with `case` in place of its case id.
pub(super) fn to_json(profile: &Profile, case: &str) -> serde_json::Result<String> {
    serde_json::to_string(&Stored { profile, case })
}

struct Stored<'a> {
    profile: &'a Profile,
    case: &'a str,
}

/// Writes a field that is left out when it has no value (`Option::None`).
fn optional<S: SerializeStruct, T: Serialize>(
    object: &mut S,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), S::Error> {
    match value {
        Some(value) => object.serialize_field(key, value),
        None => Ok(()),
    }
}

/// Writes a field that is left out when absent, `null` when null.
fn field<S: SerializeStruct, T: Serialize>(
    object: &mut S,
    key: &'static str,
    value: &Field<T>,
) -> Result<(), S::Error> {
    match value {
        Field::Absent => Ok(()),
        Field::Null => object.serialize_field(key, &()),
        Field::Value(value) => object.serialize_field(key, value),
    }
}

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Profile {
            case_id: _,
            stage,
            checked_on,
            benefit,
            sick_leave_started_on,
            main_diagnosis,
            person,
            preparation,
            gk,
            activity_level,
            known_needs,
            specialists,
        } = self.profile;
        let mut object = serializer.serialize_struct("Profile", 12)?;
        object.serialize_field("activity_level", &Sorted(activity_level))?;
        optional(&mut object, "benefit", benefit)?;
        object.serialize_field("case_id", self.case)?;
        object.serialize_field("checked_on", checked_on)?;
        object.serialize_field("gk", &Sorted(gk))?;
        object.serialize_field("known_needs", &Sorted(known_needs))?;
        optional(&mut object, "main_diagnosis", main_diagnosis)?;
        object.serialize_field("person", &Sorted(person))?;
        object.serialize_field("preparation", &Sorted(preparation))?;
        optional(&mut object, "sick_leave_started_on", sick_leave_started_on)?;
        object.serialize_field("specialists", specialists)?;
        object.serialize_field("stage", stage)?;
        object.end()
    }
}

/// A part of the profile with its keys in byte order.
struct Sorted<'a, T>(&'a T);

impl Serialize for Sorted<'_, ActivityLevel> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ActivityLevel {
            documented,
            hours_per_week,
        } = self.0;
        let mut object = serializer.serialize_struct("ActivityLevel", 2)?;
        optional(&mut object, "documented", documented)?;
        field(&mut object, "hours_per_week", hours_per_week)?;
        object.end()
    }
}

impl Serialize for Sorted<'_, Gk> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Gk {
            requested_on,
            first_meeting_on,
            external_participants,
            interpreter_booked,
        } = self.0;
        let mut object = serializer.serialize_struct("Gk", 4)?;
        object.serialize_field("external_participants", external_participants)?;
        field(&mut object, "first_meeting_on", first_meeting_on)?;
        optional(&mut object, "interpreter_booked", interpreter_booked)?;
        field(&mut object, "requested_on", requested_on)?;
        object.end()
    }
}

impl Serialize for Sorted<'_, KnownNeeds> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let KnownNeeds {
            social_or_family_problems,
            hearing_impairment,
            vision_impairment,
            interpreter_needed,
        } = self.0;
        let mut object = serializer.serialize_struct("KnownNeeds", 4)?;
        optional(&mut object, "hearing_impairment", hearing_impairment)?;
        optional(&mut object, "interpreter_needed", interpreter_needed)?;
        optional(
            &mut object,
            "social_or_family_problems",
            social_or_family_problems,
        )?;
        optional(&mut object, "vision_impairment", vision_impairment)?;
        object.end()
    }
}

impl Serialize for Sorted<'_, Person> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Person {
            sex,
            age,
            born_abroad,
            marital_status,
            children_0_17,
            education,
            returner_ever,
            sgi,
        } = self.0;
        let mut object = serializer.serialize_struct("Person", 8)?;
        optional(&mut object, "age", age)?;
        optional(&mut object, "born_abroad", born_abroad)?;
        optional(&mut object, "children_0_17", children_0_17)?;
        optional(&mut object, "education", education)?;
        optional(&mut object, "marital_status", marital_status)?;
        optional(&mut object, "returner_ever", returner_ever)?;
        optional(&mut object, "sex", sex)?;
        optional(&mut object, "sgi", sgi)?;
        object.end()
    }
}

impl Serialize for Sorted<'_, Preparation> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Preparation {
            assessed_for_fs_on,
            consent_received_on,
            sassam_on,
            reconciliation_meeting_on,
            other_personal_meeting_on,
            phone_contact,
            care_contact,
            employer_contact,
            in_depth_medical_assessment,
            insurance_physician_consulted,
        } = self.0;
        let mut object = serializer.serialize_struct("Preparation", 10)?;
        field(&mut object, "assessed_for_fs_on", assessed_for_fs_on)?;
        optional(&mut object, "care_contact", care_contact)?;
        field(&mut object, "consent_received_on", consent_received_on)?;
        optional(&mut object, "employer_contact", employer_contact)?;
        optional(
            &mut object,
            "in_depth_medical_assessment",
            in_depth_medical_assessment,
        )?;
        optional(
            &mut object,
            "insurance_physician_consulted",
            insurance_physician_consulted,
        )?;
        field(
            &mut object,
            "other_personal_meeting_on",
            other_personal_meeting_on,
        )?;
        optional(&mut object, "phone_contact", phone_contact)?;
        field(
            &mut object,
            "reconciliation_meeting_on",
            reconciliation_meeting_on,
        )?;
        field(&mut object, "sassam_on", sassam_on)?;
        object.end()
    }
}
