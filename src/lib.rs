//! gk-regler: a decision-support rule engine for *gemensam kartläggning* (GK).
//!
//! Layout (see ARCHITECTURE.md for the map and the invariants):
//! - [`profile`]: the participant profile of docs/profile.md, parsed and validated once.
//! - [`ruleset`]: loading a rules directory (manifest + Rhai scripts), all or nothing.
//! - [`engine`]: the sandboxed Rhai engine and evaluation of a rule set on a profile.
//! - [`audit`]: flags against outcomes (docs/audit.md) and what-if replay of rule changes.
//! - [`service`]: the HTTP API (`gk-regler serve`); [`web`]: the Swedish web pages it also serves.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod contract;
pub mod engine;
pub mod history;
pub mod outcome;
pub mod present;
pub mod profile;
pub mod pseudonym;
pub mod rule_tests;
pub mod ruleset;
pub mod service;
pub mod store;
pub mod web;
