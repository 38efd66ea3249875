//! Cleanse: the rules that turn the `raw` layer into the `clean` one, each a function from a
//! `LazyFrame` to a `LazyFrame` so the stage composes them into one plan per partition.
//! Rules never drop rows: they mark them (see [`reject`]), and the stage splits the marked
//! frame into clean rows and `clean.quarantine`, counting every removal in
//! `clean.data_quality`.

pub mod appsflyer;
pub mod batches;
pub mod channels;
pub mod dedup;
pub mod fraud;
pub mod fx;
pub mod links;
pub mod mixpanel;
pub mod normalise;
pub mod profiles;
pub mod quality;
pub mod quarantine;
pub mod reject;
pub mod stage;
pub mod test_data;

use std::fmt;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError, TableSchema};

pub use stage::{run_cleanse, run_cleanse_with};

/// How a stage runs its per-partition plans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum PlanMode {
    /// One lazy plan per partition, collected once: what the pipeline runs.
    #[default]
    Lazy,
    /// The same rules, collected after each one: only for the benchmark's comparison.
    Eager,
}

/// Errors of the cleanse and process stages. Each names the table and partition at fault.
#[derive(Debug, thiserror::Error)]
pub enum CleanseError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{table}, partition dt={dt}: {error}")]
    Source {
        table: String,
        dt: NaiveDate,
        error: String,
    },
    #[error("{table}: {error}")]
    Table { table: String, error: String },
    #[error(
        "raw.sheets_fx_rates has no snapshot: money cannot be priced in the reporting currency; run `ltv ingest --source google_sheets` first"
    )]
    NoFxRates,
    #[error("configuration: {0}")]
    Config(String),
    /// A day's task panicked or was cancelled (a bug, not bad data).
    #[error("a day's task did not finish: {0}")]
    Task(String),
}

/// Turns a Polars failure over one partition into an error naming the table and day.
pub(crate) fn partition_error(
    table: &str,
    dt: NaiveDate,
) -> impl Fn(PolarsError) -> CleanseError + '_ {
    move |e| CleanseError::Source {
        table: table.to_string(),
        dt,
        error: e.to_string(),
    }
}

/// Days cleansed or processed at the same time. Two keep both cores of a small machine
/// busy; each day in flight holds its own frames, so memory grows with it.
const PARALLEL_DAYS: usize = 2;

/// The days of `range`, each run by `work` as a task of its own so that one day's reads and
/// writes overlap another's Polars work, [`PARALLEL_DAYS`] at a time; results come in date
/// order. Dropping the stream (a day failed) aborts the days still in flight rather than
/// leaving them writing behind the run's back.
pub(crate) fn day_tasks<T, F, Fut>(
    range: DateRange,
    work: F,
) -> impl futures::Stream<Item = Result<T, CleanseError>>
where
    T: Send + 'static,
    F: Fn(NaiveDate) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    use futures::StreamExt;
    futures::stream::iter(range.days())
        .map(move |dt| day_task(work(dt)))
        .buffered(PARALLEL_DAYS)
}

async fn day_task<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, CleanseError> {
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(tokio::spawn(tracing::Instrument::in_current_span(work)));
    (&mut task.0)
        .await
        .map_err(|e| CleanseError::Task(e.to_string()))
}

/// The embedded schema of a qualified table.
pub(crate) fn table(name: &str) -> Result<&'static TableSchema, CleanseError> {
    Ok(Registry::embedded()?.get(name)?)
}

/// What a stage run did: partitions written, failures, and removals per source and rule.
#[derive(Debug, Serialize)]
pub struct StageOutput {
    pub stage: String,
    pub run_id: String,
    /// (table, partition, rows) of every partition written.
    pub written: Vec<(String, NaiveDate, u64)>,
    /// Source partitions that failed, with the error; their clean partitions were left as
    /// they were.
    pub failures: Vec<String>,
    /// (source, rule, rows removed, rows changed) over the run.
    pub quality: Vec<(String, String, u64, u64)>,
}

impl StageOutput {
    pub fn new(stage: &str, run_id: &str) -> Self {
        StageOutput {
            stage: stage.to_string(),
            run_id: run_id.to_string(),
            written: Vec::new(),
            failures: Vec::new(),
            quality: Vec::new(),
        }
    }

    pub fn written(&mut self, table: &str, dt: NaiveDate, rows: u64) {
        self.written.push((table.to_string(), dt, rows));
    }

    /// Adds a part of the run (one day's) to the whole.
    pub fn absorb(&mut self, part: StageOutput) {
        self.written.extend(part.written);
        self.failures.extend(part.failures);
        self.quality.extend(part.quality);
    }

    /// Records a source partition's failure (logged, and kept for the summary).
    pub fn check(&mut self, what: &str, dt: NaiveDate, result: Result<(), CleanseError>) {
        if let Err(e) = result {
            tracing::error!(stage = %self.stage, source = what, %dt, error = %e, "partition failed");
            self.failures.push(e.to_string());
        }
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// Rows written to `table` over the run.
    pub fn rows(&self, table: &str) -> u64 {
        self.written
            .iter()
            .filter(|(t, _, _)| t == table)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Removals and changes summed per source and rule.
    fn quality_totals(&self) -> Vec<(String, String, u64, u64)> {
        let mut out: Vec<(String, String, u64, u64)> = Vec::new();
        for (source, rule, removed, changed) in &self.quality {
            match out.iter_mut().find(|(s, r, _, _)| s == source && r == rule) {
                Some((_, _, a, b)) => {
                    *a += removed;
                    *b += changed;
                }
                None => out.push((source.clone(), rule.clone(), *removed, *changed)),
            }
        }
        out
    }
}

impl fmt::Display for StageOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} run {}", self.stage, self.run_id)?;
        let mut tables: Vec<&str> = self.written.iter().map(|(t, _, _)| t.as_str()).collect();
        tables.sort();
        tables.dedup();
        writeln!(f, "{:<28} {:>10} {:>12}", "table", "partitions", "rows")?;
        for t in tables {
            let parts = self.written.iter().filter(|(x, _, _)| x == t).count();
            writeln!(f, "{:<28} {:>10} {:>12}", t, parts, self.rows(t))?;
        }
        let totals = self.quality_totals();
        if !totals.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<44} {:<18} {:>10} {:>10}",
                "source", "rule", "removed", "changed"
            )?;
            for (source, rule, removed, changed) in totals {
                writeln!(f, "{source:<44} {rule:<18} {removed:>10} {changed:>10}")?;
            }
        }
        for failure in &self.failures {
            writeln!(f, "FAILED: {failure}")?;
        }
        Ok(())
    }
}

/// Replaces one stage's rows in a partition shared by both stages (`clean.quarantine`,
/// `clean.data_quality`), keeping the other stage's rows. Returns the rows written.
pub(crate) async fn replace_stage_rows(
    lake: &Lake,
    target: &str,
    dt: NaiveDate,
    stage: &str,
    rows: DataFrame,
) -> Result<u64, CleanseError> {
    let t = table(target)?;
    let err = |e: PolarsError| CleanseError::Source {
        table: target.to_string(),
        dt,
        error: e.to_string(),
    };
    let others = lake
        .scan(t, DateRange::day(dt))
        .await?
        .filter(col("stage").neq(lit(stage.to_string())));
    let mine = rows.lazy().select(
        t.polars_schema()
            .iter_names()
            .filter(|n| n.as_str() != "dt")
            .map(|n| col(n.clone()))
            .collect::<Vec<_>>(),
    );
    let merged = concat([others.drop(cols(["dt"])), mine], UnionArgs::default())
        .and_then(|lf| lf.collect())
        .map_err(err)?;
    let n = merged.height() as u64;
    lake.write_partition(t, dt, merged).await?;
    Ok(n)
}
