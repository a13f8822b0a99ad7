//! The command line's presentation: each command calls the use cases of
//! [`gk_regler::app`] and tells the person at the terminal, in Swedish, what happened.
//! Progress bars, report formats and writing `--out` files live here.

pub mod commands;
pub mod history;
pub mod swedish;
