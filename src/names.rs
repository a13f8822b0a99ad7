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

/// Declares a closed set of names: a fieldless enum whose wire names are serde's
/// (`snake_case`), with `ALL` (every variant, in order), `as_str` (the serde name, read from
/// serde once per type), `names` and `from_name`. Profiles, outcomes and rule scripts all see these
/// names, so each is written once: the variant's.
macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash,
            serde::Deserialize, serde::Serialize, schemars::JsonSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The serde name.
            pub fn as_str(self) -> &'static str {
                static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    $name::ALL.iter().map($crate::names::name_of).collect()
                });
                // `ALL` lists the variants in declaration order, so a variant's
                // discriminant is its index.
                &NAMES[self as usize]
            }

            /// Every variant's serde name, in order.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }

            /// The variant whose serde name is `text`.
            pub fn from_name(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }
    };
}
pub(crate) use name_enum;

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
        for &role in crate::auth::Role::ALL {
            assert_eq!(parse_name(&name_of(&role)), Some(role));
        }
        assert_eq!(name_of(&crate::auth::Role::Handlaggare), "handlaggare");
        assert_eq!(parse_name::<Severity>("kritisk"), None);
        for stage in crate::profile::Stage::ALL {
            assert_eq!(stage.as_str(), name_of(stage));
            assert_eq!(
                crate::profile::Stage::from_name(stage.as_str()),
                Some(*stage)
            );
        }
        assert_eq!(crate::profile::Stage::GkClosing.as_str(), "gk_closing");
        assert_eq!(crate::profile::Stage::from_name("GkClosing"), None);
        assert_eq!(
            crate::outcome::EndReason::HealthWorsenedRelated.as_str(),
            "health_worsened_related"
        );
        assert_eq!(parse_name::<FailureKind>(""), None);
    }
}
