//! The wire name of a closed set of values is the one serde gives it (`snake_case`, from
//! `#[serde(rename_all)]`): these helpers read and write that name, so each name is
//! written once, on the type.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The name serde writes for `value` (a unit variant); empty for anything else.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The value serde reads from `name`; `None` for a name the type does not have.
pub fn parse_name<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FailureKind;
    use crate::ruleset::{Grounds, Severity};

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(parse_name::<Severity>(&name_of(&severity)), Some(severity));
        }
        assert_eq!(name_of(&Severity::Critical), "critical");
        assert_eq!(name_of(&Grounds::Empirical), "empirical");
        assert_eq!(
            name_of(&FailureKind::TooManyOperations),
            "too_many_operations"
        );
        assert_eq!(parse_name::<Severity>("kritisk"), None);
        assert_eq!(parse_name::<FailureKind>(""), None);
    }
}
