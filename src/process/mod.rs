//! Process: from the clean sources to the joined clean tables. Unlike cleanse, it spans
//! days: identity and installs are resolved over the whole history (both are small: one row
//! per identifier pair and per install; the pairs of the settled days are folded once and
//! kept between runs, see [`pairs`]), while events, the large table, are still handled one
//! partition at a time; each events partition is also folded into `clean.user_daily`,
//! the compact per-person daily aggregates the later stages read over the whole history.

pub mod campaigns;
pub mod events;
pub mod identity;
pub mod installs;
pub mod new_events;
pub mod pairs;
mod stage;
pub mod user_daily;

pub use stage::{run_process, run_process_with};
