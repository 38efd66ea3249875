//! ltv: a batch pipeline that predicts what each ad campaign's users will be worth.
pub mod calculate;
pub mod cleanse;
pub mod cli;
pub mod config;
pub mod features;
pub mod ingest;
pub mod lake;
pub mod mart;
pub mod model;
pub mod pipeline;
pub mod process;
pub mod report;
pub mod schema;
pub mod sim;
#[cfg(test)]
mod test_support;
