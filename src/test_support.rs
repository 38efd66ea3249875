//! Helpers the unit tests of several modules share: fixtures, column extraction and small
//! simulated worlds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;

use polars::prelude::*;

use crate::config::{EMBEDDED_DEMO, PipelineConfig, SimConfig, std_env};
use crate::lake::Lake;

/// The bytes of `fixtures/<source>/<name>`.
pub fn fixture(source: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{source}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A string column as owned values.
pub fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// The demo world shrunk to `days` x `users` installs, generated into a memory lake.
pub async fn small_world(days: u32, users: u32) -> (Lake, SimConfig) {
    let config = PipelineConfig::from_toml(EMBEDDED_DEMO, "demo", &std_env).unwrap();
    let mut sim = config.sim.unwrap();
    sim.days = NonZeroU32::new(days).unwrap();
    sim.users_per_day = users;
    let lake = Lake::open("memory://").unwrap();
    crate::sim::simulate(&sim, &lake).await.unwrap();
    (lake, sim)
}
