//! The scheduler: one place decides which pulls a run makes, in which order, and whether the
//! budget can pay for them; it lands each pulled partition and only then moves the stream's
//! state. Sources run side by side, each with its own concurrency; inside a source the most
//! valuable pulls go first. A stream that fails stops (its remaining pulls are skipped, so a
//! broken API does not burn the budget) and never stops the other streams.

pub mod plan;
mod progress;
mod summary;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use futures::StreamExt as _;
use tokio::sync::Mutex;

pub use plan::{Mode, PlanSettings, Priority, partitions_to_pull};
pub use progress::Progress;
pub use summary::{RunSummary, StreamSummary};

use super::budget::SourceBudget;
use super::connector::{Connector, PullContext, PullError, Pulled, StreamSpec};
use super::http::{CallError, RetryPolicy};
use super::state::StreamState;
use crate::lake::{Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// A connector with what the scheduler needs to run it.
pub struct SourceRun {
    pub connector: Box<dyn Connector>,
    pub budget: Arc<SourceBudget>,
    /// Pulls in flight at once.
    pub concurrency: usize,
    /// Timeout of one request.
    pub timeout: std::time::Duration,
}

/// Errors that stop the whole run (a stream's own failure only stops that stream).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// One pull to make.
#[derive(Debug, Clone)]
struct Task {
    stream: usize,
    day: NaiveDate,
    priority: Priority,
}

/// A stream's mutable record during a run.
#[derive(Debug)]
struct StreamRun {
    state: StreamState,
    summary: StreamSummary,
    /// Set when the stream failed or its quota is spent: later tasks are not attempted.
    stopped: bool,
}

/// Runs ingest over the sources.
pub struct Scheduler {
    pub lake: Lake,
    pub client: reqwest::Client,
    pub policy: RetryPolicy,
    pub settings: PlanSettings,
}

impl Scheduler {
    /// Pulls what `mode` asks of every source, side by side, and returns the summary.
    pub async fn run(
        &self,
        mode: Mode,
        sources: &[SourceRun],
        progress: &Progress,
    ) -> Result<RunSummary, ScheduleError> {
        let mut plans = Vec::new();
        for source in sources {
            plans.push(self.plan_source(mode, source).await?);
        }
        progress.set_total(plans.iter().map(|(_, t)| t.len() as u64).sum());
        let runs = sources
            .iter()
            .zip(plans)
            .map(|(source, (streams, tasks))| self.run_source(source, streams, tasks, progress));
        let mut summary = RunSummary::default();
        for (source, streams) in sources.iter().zip(futures::future::join_all(runs).await) {
            let name = source.connector.source().name().to_string();
            summary.calls_by_source.insert(name, source.budget.spent());
            for (stream, run) in streams? {
                summary.streams.insert(stream, run.summary);
            }
        }
        progress.finish();
        Ok(summary)
    }

    /// Loads each stream's state and lists its pulls, most valuable first.
    async fn plan_source(
        &self,
        mode: Mode,
        source: &SourceRun,
    ) -> Result<(Vec<Mutex<StreamRun>>, Vec<Task>), ScheduleError> {
        let mut streams = Vec::new();
        let mut tasks = Vec::new();
        for (i, spec) in source.connector.streams().iter().enumerate() {
            let state = StreamState::load(&self.lake, &spec.name).await?;
            for (day, priority) in partitions_to_pull(mode, spec.cursor, &state, self.settings) {
                tasks.push(Task {
                    stream: i,
                    day,
                    priority,
                });
            }
            streams.push(Mutex::new(StreamRun {
                state,
                summary: StreamSummary {
                    source: source.connector.source().name().to_string(),
                    ..StreamSummary::default()
                },
                stopped: false,
            }));
        }
        // Stable: within a priority, streams keep their order and days their planned order.
        tasks.sort_by_key(|t| t.priority);
        Ok((streams, tasks))
    }

    async fn run_source(
        &self,
        source: &SourceRun,
        streams: Vec<Mutex<StreamRun>>,
        tasks: Vec<Task>,
        progress: &Progress,
    ) -> Result<Vec<(String, StreamRun)>, ScheduleError> {
        // Calls promised to pulls in flight, per scope, so concurrent pulls cannot together
        // plan past the budget.
        let reserved: Mutex<HashMap<String, u32>> = Mutex::new(HashMap::new());
        let fatal: Mutex<Option<ScheduleError>> = Mutex::new(None);
        futures::stream::iter(tasks)
            .for_each_concurrent(source.concurrency.max(1), |task| {
                let streams = &streams;
                let reserved = &reserved;
                let fatal = &fatal;
                async move {
                    let spec = &source.connector.streams()[task.stream];
                    if let Err(e) = self
                        .run_task(source, spec, &streams[task.stream], reserved, &task)
                        .await
                    {
                        fatal.lock().await.get_or_insert(e);
                    }
                    progress.step(&spec.name, task.day);
                }
            })
            .await;
        if let Some(e) = fatal.into_inner() {
            return Err(e);
        }
        let specs = source.connector.streams();
        Ok(specs
            .iter()
            .zip(streams)
            .map(|(spec, run)| (spec.name.clone(), run.into_inner()))
            .collect())
    }

    /// One pull: check the budget, pull, land, then record. Only lake errors that are not
    /// the stream's own (state, ledger) escape; everything else is the stream's outcome.
    async fn run_task(
        &self,
        source: &SourceRun,
        spec: &StreamSpec,
        run: &Mutex<StreamRun>,
        reserved: &Mutex<HashMap<String, u32>>,
        task: &Task,
    ) -> Result<(), ScheduleError> {
        let history = {
            let mut r = run.lock().await;
            if r.stopped {
                r.summary.skipped += 1;
                return Ok(());
            }
            r.state.clone()
        };
        let planned = source.connector.plan(spec, task.day, &history);
        // Reserve the planned calls, or defer: starting a pull the budget cannot finish
        // would burn calls on data that is thrown away.
        {
            let mut held = reserved.lock().await;
            for p in &planned {
                let left = source.budget.remaining(&p.scope, Utc::now()).await;
                let held_now = held.get(&p.scope).copied().unwrap_or(0);
                if let Some(left) = left
                    && left < held_now + p.calls
                {
                    let reason = format!(
                        "{} needs {} calls, {} has {} left in its quota",
                        task.day,
                        p.calls,
                        p.scope,
                        left.saturating_sub(held_now)
                    );
                    drop(held);
                    let mut r = run.lock().await;
                    r.summary.deferred += 1;
                    r.summary.deferral.get_or_insert(reason.clone());
                    tracing::warn!(stream = %spec.name, partition = %task.day, priority = task.priority.name(), %reason, "Pull deferred: over budget.");
                    return Ok(());
                }
            }
            for p in &planned {
                *held.entry(p.scope.clone()).or_default() += p.calls;
            }
        }
        let pulled_at = Utc::now();
        let ctx = PullContext {
            client: &self.client,
            budget: source.budget.clone(),
            policy: self.policy,
            timeout: source.timeout,
            history: &history,
            pulled_at,
        };
        let outcome = source.connector.pull(&ctx, spec, task.day).await;
        {
            let mut held = reserved.lock().await;
            for p in &planned {
                if let Some(h) = held.get_mut(&p.scope) {
                    *h = h.saturating_sub(p.calls);
                }
            }
        }
        let outcome = match outcome {
            Ok(pulled) => self.land(spec, task.day, pulled).await,
            Err(e) => Err(e),
        };
        let mut r = run.lock().await;
        match outcome {
            Ok((rows, calls, retries)) => {
                r.state.landed(task.day, pulled_at, rows, calls);
                r.state.save(&self.lake, &spec.name).await?;
                r.summary.landed += 1;
                r.summary.rows += rows;
                r.summary.calls += calls;
                r.summary.retries += retries;
                tracing::info!(stream = %spec.name, partition = %task.day, priority = task.priority.name(), rows, calls, retries, "Landed partition.");
            }
            Err(e) if e.is_deferral() => {
                r.summary.deferred += 1;
                r.summary.deferral.get_or_insert(e.to_string());
                // A spent quota holds for the rest of the day: stop asking.
                if matches!(
                    e,
                    PullError::Call(CallError::QuotaSpent { .. } | CallError::OverBudget(..))
                ) {
                    r.stopped = true;
                }
                tracing::warn!(stream = %spec.name, partition = %task.day, error = %e, "Pull deferred.");
            }
            Err(e) => {
                r.stopped = true;
                r.summary.failure.get_or_insert(e.to_string());
                tracing::error!(stream = %spec.name, partition = %task.day, error = %e, "Stream failed; its other pulls are skipped this run.");
            }
        }
        Ok(())
    }

    /// Writes the pulled frames as one new version of the partition. Nothing is visible
    /// until the commit, so a failure here leaves the previous version whole.
    async fn land(
        &self,
        spec: &StreamSpec,
        day: NaiveDate,
        pulled: Pulled,
    ) -> Result<(u64, u32, u32), PullError> {
        let table = Registry::embedded()
            .and_then(|r| r.get(spec.table))
            .map_err(|e| PullError::Source {
                stream: spec.name.clone(),
                partition: day.to_string(),
                message: e.to_string(),
            })?;
        let rows = pulled.rows();
        let mut writer = self.lake.partition_writer(table, day);
        for frame in pulled.frames {
            writer.write(frame).await?;
        }
        writer.commit().await?;
        Ok((rows, pulled.calls, pulled.retries))
    }
}
