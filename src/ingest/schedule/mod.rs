//! The scheduler: one place decides which pulls a run makes, in which order, and whether the
//! budget can pay for them; it lands each pulled partition and only then moves the stream's
//! state. Sources run side by side, each with its own concurrency; inside a source the most
//! valuable pulls go first. A stream that fails stops (its remaining pulls are skipped, so a
//! broken API does not burn the budget) and never stops the other streams.

pub mod plan;
mod progress;
mod summary;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use tokio::sync::Mutex;

pub use plan::{Mode, PlanSettings, Priority, partitions_to_pull};
pub use progress::Progress;
pub use summary::{RunSummary, StreamSummary};

use super::budget::SourceBudget;
use super::connector::{Connector, PullContext, PullError, Pulled, StreamSpec, days_label};
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

/// One partition to pull.
#[derive(Debug, Clone)]
struct Task {
    stream: usize,
    day: NaiveDate,
    priority: Priority,
}

/// One pull: a stream's consecutive days, usually one.
#[derive(Debug, Clone)]
struct Pull {
    stream: usize,
    days: Vec<NaiveDate>,
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
        // A queue rather than a fixed list of pulls: how many backfill days one pull takes
        // is decided when it starts, from what the days before it landed.
        let queue = Mutex::new(VecDeque::from(tasks));
        let (streams_ref, queue, reserved, fatal_ref) = (&streams, &queue, &reserved, &fatal);
        let workers = (0..source.concurrency.max(1)).map(|_| async move {
            while let Some(pull) = self.next_pull(source, streams_ref, queue).await {
                let spec = &source.connector.streams()[pull.stream];
                if let Err(e) = self
                    .run_pull(source, spec, &streams_ref[pull.stream], reserved, &pull)
                    .await
                {
                    fatal_ref.lock().await.get_or_insert(e);
                }
                for day in &pull.days {
                    progress.step(&spec.name, *day);
                }
            }
        });
        futures::future::join_all(workers).await;
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

    /// Takes the next pull off the queue: one task, and for a backfill the consecutive days
    /// of the same stream after it, as many as the connector takes in one pull given what
    /// the stream has landed so far. Tasks are queued stream by stream, days in order, so
    /// those days are the ones next in line.
    async fn next_pull(
        &self,
        source: &SourceRun,
        streams: &[Mutex<StreamRun>],
        queue: &Mutex<VecDeque<Task>>,
    ) -> Option<Pull> {
        let mut queue = queue.lock().await;
        let first = queue.pop_front()?;
        let mut pull = Pull {
            stream: first.stream,
            days: vec![first.day],
            priority: first.priority,
        };
        if first.priority != Priority::Backfill {
            return Some(pull);
        }
        let spec = &source.connector.streams()[first.stream];
        let span = {
            let run = streams[first.stream].lock().await;
            source
                .connector
                .days_per_pull(spec, first.day, &run.state)
                .max(1) as usize
        };
        while pull.days.len() < span {
            let next = pull.days.last().and_then(|d| d.succ_opt());
            match queue.front() {
                Some(t)
                    if t.stream == first.stream
                        && t.priority == Priority::Backfill
                        && Some(t.day) == next =>
                {
                    pull.days.push(t.day);
                    queue.pop_front();
                }
                _ => break,
            }
        }
        Some(pull)
    }

    /// One pull: check the budget, pull, land each day, then record. Only lake errors that
    /// are not the stream's own (state, ledger) escape; everything else is the stream's
    /// outcome.
    async fn run_pull(
        &self,
        source: &SourceRun,
        spec: &StreamSpec,
        run: &Mutex<StreamRun>,
        reserved: &Mutex<HashMap<String, u32>>,
        pull: &Pull,
    ) -> Result<(), ScheduleError> {
        let days = pull.days.as_slice();
        let history = {
            let mut r = run.lock().await;
            if r.stopped {
                r.summary.skipped += days.len() as u32;
                return Ok(());
            }
            r.state.clone()
        };
        let planned = source.connector.plan_days(spec, days, &history);
        let label = days_label(days);
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
                        "{label} needs {} calls, {} has {} left in its quota",
                        p.calls,
                        p.scope,
                        left.saturating_sub(held_now)
                    );
                    drop(held);
                    let mut r = run.lock().await;
                    r.summary.deferred += days.len() as u32;
                    r.summary.deferral.get_or_insert(reason.clone());
                    tracing::warn!(stream = %spec.name, partition = %label, priority = pull.priority.name(), %reason, "Pull deferred: over budget.");
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
        let outcome = source.connector.pull_days(&ctx, spec, days).await;
        {
            let mut held = reserved.lock().await;
            for p in &planned {
                if let Some(h) = held.get_mut(&p.scope) {
                    *h = h.saturating_sub(p.calls);
                }
            }
        }
        // Day by day, in order: a landing that fails leaves the days before it landed and
        // recorded, and the rest for the next run.
        let mut landed = Vec::new();
        let outcome = match outcome {
            Ok(pulled) if pulled.len() != days.len() => Err(PullError::Source {
                stream: spec.name.clone(),
                partition: label.clone(),
                message: format!(
                    "the connector returned {} partitions for {} days",
                    pulled.len(),
                    days.len()
                ),
            }),
            Ok(pulled) => {
                let mut failed = Ok(());
                for (day, p) in days.iter().zip(pulled) {
                    match self.land(spec, *day, p).await {
                        Ok(done) => landed.push((*day, done)),
                        Err(e) => {
                            failed = Err(e);
                            break;
                        }
                    }
                }
                failed
            }
            Err(e) => Err(e),
        };
        let mut r = run.lock().await;
        for (day, (rows, calls, retries)) in &landed {
            r.state.landed(*day, pulled_at, *rows, *calls);
            r.summary.landed += 1;
            r.summary.rows += rows;
            r.summary.calls += calls;
            r.summary.retries += retries;
            tracing::info!(stream = %spec.name, partition = %day, priority = pull.priority.name(), rows, calls, retries, "Landed partition.");
        }
        if !landed.is_empty() {
            r.state.save(&self.lake, &spec.name).await?;
        }
        match outcome {
            Ok(()) => {}
            Err(e) if e.is_deferral() => {
                r.summary.deferred += (days.len() - landed.len()) as u32;
                r.summary.deferral.get_or_insert(e.to_string());
                // A spent quota holds for the rest of the day: stop asking.
                if matches!(
                    e,
                    PullError::Call(CallError::QuotaSpent { .. } | CallError::OverBudget(..))
                ) {
                    r.stopped = true;
                }
                tracing::warn!(stream = %spec.name, partition = %label, error = %e, "Pull deferred.");
            }
            Err(e) => {
                r.stopped = true;
                r.summary.failure.get_or_insert(e.to_string());
                tracing::error!(stream = %spec.name, partition = %label, error = %e, "Stream failed; its other pulls are skipped this run.");
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
