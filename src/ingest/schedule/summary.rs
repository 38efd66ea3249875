//! What a run did, per stream: the table printed at the end of `ltv ingest` and the record
//! tests check.

use std::collections::BTreeMap;
use std::fmt;

/// One stream's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamSummary {
    pub source: String,
    /// Partitions landed (committed and recorded in the state).
    pub landed: u32,
    pub rows: u64,
    /// Calls made for landed partitions (every attempt).
    pub calls: u32,
    pub retries: u32,
    /// Partitions put off to a later run (budget, quota, data not published yet).
    pub deferred: u32,
    /// Why the first deferral happened.
    pub deferral: Option<String>,
    /// Partitions not attempted because the stream had failed earlier in the run.
    pub skipped: u32,
    /// The failure that stopped the stream, if any.
    pub failure: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// By stream name.
    pub streams: BTreeMap<String, StreamSummary>,
    /// Calls each source took from its budget in this run, failed pulls included.
    pub calls_by_source: BTreeMap<String, u32>,
}

impl RunSummary {
    pub fn failed(&self) -> bool {
        self.streams.values().any(|s| s.failure.is_some())
    }

    pub fn deferred(&self) -> u32 {
        self.streams.values().map(|s| s.deferred).sum()
    }

    pub fn rows(&self) -> u64 {
        self.streams.values().map(|s| s.rows).sum()
    }

    pub fn calls(&self) -> u32 {
        self.calls_by_source.values().sum()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<44} {:>7} {:>11} {:>6} {:>7} {:>8}  status",
            "stream", "landed", "rows", "calls", "retries", "deferred"
        )?;
        for (name, s) in &self.streams {
            let status = match (&s.failure, &s.deferral) {
                (Some(e), _) => format!("FAILED: {e}"),
                (None, Some(d)) => format!("deferred: {d}"),
                (None, None) => "ok".to_string(),
            };
            writeln!(
                f,
                "{name:<44} {:>7} {:>11} {:>6} {:>7} {:>8}  {status}",
                s.landed, s.rows, s.calls, s.retries, s.deferred
            )?;
        }
        let by_source: Vec<String> = self
            .calls_by_source
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        write!(
            f,
            "calls spent: {} ({})",
            self.calls(),
            by_source.join(", ")
        )
    }
}
