//! The whole job: ingest, cleanse, process, calculate, marts, publish, as one run with a
//! record per stage, so that a failed run resumes where it stopped.
//!
//! - run.rs: [`run_pipeline`]: the nightly run (`ltv run`) and an analyst's recompute of a
//!   range (`ltv recompute`), stage by stage.
//! - record.rs: the run record under `_state/runs/`: which stages finished, when, what they
//!   wrote; and the watermarks the nightly run keeps.
//! - demo.rs: `ltv demo`: a simulated world through the whole job, predictions against the
//!   world's truth.

mod demo;
mod record;
mod run;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use demo::{DemoCampaign, DemoError, DemoOutput, DemoRequest, format_money, run_demo};
pub use record::{RunRecord, StageRecord};
pub use run::{
    BacktestPolicy, PipelineError, RunKind, RunReport, RunRequest, StageStatus, run_pipeline,
};

/// The stages of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Pull the sources into the raw layer.
    Ingest,
    /// Raw to clean, per source (`ltv cleanse`).
    Cleanse,
    /// Identity, installs, events, campaigns (`ltv process`).
    Process,
    /// Backtest when due, predict every user (`mart.user_ltv`).
    Calculate,
    /// Build the other marts into the lake.
    Marts,
    /// Copy the lake's marts to MySQL (when configured).
    Publish,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Cleanse,
        Stage::Process,
        Stage::Calculate,
        Stage::Marts,
        Stage::Publish,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Cleanse => "cleanse",
            Stage::Process => "process",
            Stage::Calculate => "calculate",
            Stage::Marts => "marts",
            Stage::Publish => "publish",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
