//! The outcome record of docs/profile.md: how a case's participation ended.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::profile::{CaseId, Date};

macro_rules! closed_names {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_name(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

closed_names!(OutcomeKind {
    LeftInsurance => "left_insurance",
    ReturnedToFk => "returned_to_fk",
});

closed_names!(EndReason {
    WorkUnsupported => "work_unsupported",
    WorkSupported => "work_supported",
    RegularStudies => "regular_studies",
    LabourMarketTraining => "labour_market_training",
    BusinessStart => "business_start",
    JobSeeker => "job_seeker",
    RehabBenefitStopped => "rehab_benefit_stopped",
    GoalReached => "goal_reached",
    HealthWorsenedRelated => "health_worsened_related",
    HealthWorsenedUnrelated => "health_worsened_unrelated",
    NoWorkCapacityProgress => "no_work_capacity_progress",
    DeclinedHelp => "declined_help",
    Other => "other",
});

/// One outcome, as clients send it.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub case_id: CaseId,
    pub ended_on: Date,
    pub outcome: OutcomeKind,
    #[serde(default)]
    pub reasons: Vec<EndReason>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outcome { <redacted> }")
    }
}

impl Outcome {
    /// "Avslut jobb": work with or without support, or regular studies.
    pub fn work_or_studies(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r,
                EndReason::WorkUnsupported | EndReason::WorkSupported | EndReason::RegularStudies
            )
        })
    }

    /// Either kind of worsened health.
    pub fn worsened_health(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r,
                EndReason::HealthWorsenedRelated | EndReason::HealthWorsenedUnrelated
            )
        })
    }

    /// Parses one CSV record with the header `case_id,ended_on,outcome,reasons`, where
    /// `reasons` is separated by `;` or `|`.
    pub fn from_csv_record(
        record: &csv::StringRecord,
        headers: &csv::StringRecord,
    ) -> Result<Self, String> {
        let field = |name: &str| -> Result<Cow<'_, str>, String> {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .and_then(|i| record.get(i))
                .map(|v| Cow::Borrowed(v.trim()))
                .ok_or_else(|| format!("{name}: kolumnen saknas"))
        };
        let case_id = CaseId::parse(&field("case_id")?).map_err(|e| format!("case_id: {e}"))?;
        let ended_on = Date::parse(&field("ended_on")?).map_err(|e| format!("ended_on: {e}"))?;
        let outcome_text = field("outcome")?;
        let outcome = OutcomeKind::from_name(&outcome_text)
            .ok_or_else(|| format!("outcome: okänt värde {outcome_text:?}"))?;
        let reasons = match field("reasons") {
            Ok(text) => text
                .split([';', '|'])
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| {
                    EndReason::from_name(r).ok_or_else(|| format!("reasons: okänt värde {r:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Err(_) => Vec::new(),
        };
        Ok(Self {
            case_id,
            ended_on,
            outcome,
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_outcome_parses_and_derives() {
        let o: Outcome = serde_json::from_str(
            r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance","reasons":["work_supported"]}"#,
        )
        .expect("valid");
        assert!(o.work_or_studies());
        assert!(!o.worsened_health());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_str::<Outcome>(
                r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance","extra":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn csv_record_parses() {
        let headers = csv::StringRecord::from(vec!["case_id", "ended_on", "outcome", "reasons"]);
        let record = csv::StringRecord::from(vec![
            "A",
            "2024-02-01",
            "returned_to_fk",
            "health_worsened_related;other",
        ]);
        let o = Outcome::from_csv_record(&record, &headers).expect("valid");
        assert!(o.worsened_health());
        let bad = csv::StringRecord::from(vec!["A", "2024-02-01", "left", ""]);
        assert!(
            Outcome::from_csv_record(&bad, &headers)
                .unwrap_err()
                .starts_with("outcome")
        );
    }
}
