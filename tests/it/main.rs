//! Black-box tests of the `gk-regler` binary: each test runs the real executable with
//! arguments and standard input, and checks its exit code, stdout and stderr, against
//! the shipped rules in `rules/` or throwaway rule sets built in temporary directories;
//! the service tests start `gk-regler serve` on a free port and talk HTTP to it; the web
//! tests drive its pages in headless Chromium.

mod accounts;
mod audit;
mod audit_reference;
pub(crate) mod candidate;
mod cli;
mod connections;
mod helpers;
mod lint;
mod prova;
mod reliability;
mod responses;
mod rule_sets;
mod security;
mod service;
mod shadow;
mod storage;
mod verdict;
mod web;
