//! gk-regler: a decision-support rule engine for *gemensam kartläggning* (GK).
//!
//! Layout (see ARCHITECTURE.md for the map and the invariants):
//! - [`profile`], [`outcome`]: the participant profile and the outcome record, parsed and
//!   validated once.
//! - [`engine`]: the sandboxed Rhai engine, loading a rules directory ([`ruleset`]) and
//!   evaluating a rule set on a profile.
//! - [`store`]: SQLite, every query; [`audit`]: flags against outcomes and replay.
//! - [`long_work`]: the pool long work runs on, off the threads that answer requests.
//! - [`answer`]: an officer's answer to a flag (handled, or not relevant with a reason).
//! - [`app`]: every use case, with its roles and access log.
//! - [`service`]: the HTTP API (`gk-regler serve`); [`web`]: the Swedish web pages it also
//!   serves. The command line is `src/main.rs` with `src/cli/`.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod answer;
pub mod app;
pub mod audit;
pub mod auth;
pub mod candidate_archive;
pub mod config;
pub mod contract;
pub mod engine;
pub mod long_work;
pub mod look_alike;
pub mod names;
pub mod outcome;
pub mod owner_only;
pub mod present;
pub mod profile;
pub mod pseudonym;
pub mod rule_tests;
pub mod service;
pub mod store;
pub mod visible;
pub mod web;

/// Loading a rules directory lives beneath the engine that compiles it.
pub use engine::ruleset;
