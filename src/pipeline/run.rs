//! One run of the job, stage by stage, with a record that lets a failed run resume.
//!
//! A run has a key (`nightly-<date>` or `recompute-<from>-<to>`) and a record under
//! `_state/runs/<key>.json`. Each stage that finishes is written to the record at once; a
//! stage that fails stops the run, keeps what the earlier stages wrote, and is named in the
//! report. Running the same key again skips the finished stages (the failed one and those
//! after it run), unless `fresh` asks for everything again.
//!
//! What the stages cover:
//! - ingest: nightly, the sources' new days, restatement window and gaps (see
//!   [`crate::ingest`]); a recompute re-pulls its range only when asked for ingest.
//! - cleanse and process: the run's days. Nightly, from the day after the clean layer's
//!   watermark (or `history_start`), at the latest from the start of the restatement window,
//!   to yesterday.
//! - calculate: when a backtest is due (weekly by default, or no model is saved), the
//!   backtest and a refit on the whole history that predicts every user whose window has
//!   closed; on the other nights, the saved models predict only the cohorts whose window
//!   closed or whose events the run rewrote (`mart.user_ltv`, those install dates).
//! - marts: the per-campaign marts rebuilt from installs, `clean.user_daily` and
//!   `mart.user_ltv`; the critical paths weekly on a nightly run, every time on a recompute.
//! - publish: every mart copied from the lake to MySQL when a URL is configured.

use std::fmt;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;

use super::Stage;
use super::record::{
    CLEANED_THROUGH_KEY, LAST_BACKTEST_KEY, RunRecord, StageRecord, advance_watermark,
    read_watermark,
};
use crate::calculate::{CalculateError, run_backtest, run_predict, run_predict_since};
use crate::cleanse::{CleanseError, StageOutput, run_cleanse};
use crate::config::{ConfigError, PipelineConfig};
use crate::features::{FeatureError, FeatureParams};
use crate::ingest::schedule::{Mode, Progress};
use crate::ingest::{IngestError, IngestRequest, run_ingest};
use crate::lake::{DateRange, Lake, LakeError, unique_suffix};
use crate::mart::{
    MartError, MartStageError, MysqlMart, PathRefresh, build_marts, publish_marts, write_user_ltv,
};
use crate::model::evaluate::EvaluationParams;
use crate::model::hurdle::HurdleParams;
use crate::model::predict::PredictParams;
use crate::process::run_process;

/// Days between the backtests a run makes on its own.
pub const BACKTEST_EVERY_DAYS: i64 = 7;

/// Which run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The nightly job as of `date` (today): data through yesterday.
    Nightly { date: NaiveDate },
    /// An analyst's rebuild of `from..=to`.
    Recompute { from: NaiveDate, to: NaiveDate },
}

impl RunKind {
    pub fn key(self) -> String {
        match self {
            RunKind::Nightly { date } => format!("nightly-{date}"),
            RunKind::Recompute { from, to } => format!("recompute-{from}-{to}"),
        }
    }

    /// A fresh id for one stage of this run: the key and a unique suffix. It lands in every
    /// row the stage writes (`run_id`), so it must fit those columns (a test checks).
    pub fn run_id(self) -> String {
        format!("{}-{}", self.key(), unique_suffix())
    }

    /// The day the run stands on: the nightly date, a recompute's last day + 1.
    fn as_of(self) -> NaiveDate {
        match self {
            RunKind::Nightly { date } => date,
            RunKind::Recompute { to, .. } => to + Duration::days(1),
        }
    }
}

/// When the calculate stage backtests before predicting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacktestPolicy {
    /// When no backtest was made in the last [`BACKTEST_EVERY_DAYS`] days.
    Auto,
    Always,
    Never,
}

/// What to run.
pub struct RunRequest<'a> {
    pub kind: RunKind,
    /// The stages to run, a subset of [`Stage::ALL`] (run in that order).
    pub stages: Vec<Stage>,
    /// Run every asked stage even if this run's record says it finished.
    pub fresh: bool,
    pub backtest: BacktestPolicy,
    /// Retry policy and local-server options of the ingest stage (its mode is the run's).
    pub ingest: IngestRequest,
    /// Where secrets (the MySQL URL, source credentials) are read from.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Show the ingest progress bar on a terminal.
    pub progress: bool,
}

impl<'a> RunRequest<'a> {
    /// Every stage, resuming, backtest when due.
    pub fn new(kind: RunKind, env: &'a (dyn Fn(&str) -> Option<String> + Sync)) -> Self {
        RunRequest {
            kind,
            stages: Stage::ALL.to_vec(),
            fresh: false,
            backtest: BacktestPolicy::Auto,
            ingest: IngestRequest::new(Mode::Nightly {
                today: kind.as_of(),
            }),
            env,
            progress: false,
        }
    }
}

/// What a stage failure or a broken run setup was.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("reading or writing the run record: {0}")]
    Record(#[from] LakeError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("some streams failed, landed partitions stay:\n{0}")]
    IngestStreams(String),
    #[error(transparent)]
    Cleanse(#[from] CleanseError),
    #[error(
        "{stage} failed for {count} partition(s); their previous partitions are untouched: {first}"
    )]
    Partitions {
        stage: String,
        count: usize,
        first: String,
    },
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Calculate(#[from] CalculateError),
    #[error(transparent)]
    Marts(#[from] MartStageError),
    #[error(transparent)]
    Mysql(#[from] MartError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// How one stage went.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageStatus {
    Done(StageRecord),
    /// Finished by an earlier attempt of this run, not run again.
    Skipped(StageRecord),
    /// Nothing to do in this setup (publish without MySQL).
    NotConfigured {
        reason: String,
    },
    Failed {
        error: String,
    },
    /// Not reached: an earlier stage failed.
    NotRun,
}

/// What a run did, stage by stage.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub key: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub stages: Vec<(Stage, StageStatus)>,
    pub seconds: f64,
}

impl RunReport {
    pub fn failed(&self) -> Option<(Stage, &str)> {
        self.stages.iter().find_map(|(s, status)| match status {
            StageStatus::Failed { error } => Some((*s, error.as_str())),
            _ => None,
        })
    }

    pub fn status(&self, stage: Stage) -> Option<&StageStatus> {
        self.stages
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, st)| st)
    }
}

/// Runs the asked stages of a run; see the module documentation. Errors only when the run
/// record cannot be read or written; a stage's failure is in the report.
pub async fn run_pipeline(
    config: &PipelineConfig,
    lake: &Lake,
    request: RunRequest<'_>,
) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let key = request.kind.key();
    let previous = RunRecord::load(lake, &key).await?;
    let mut record = match previous {
        Some(mut r) => {
            if request.fresh {
                r.stages.clear();
            }
            r
        }
        None => {
            let (from, to) = run_days(config, lake, request.kind).await?;
            RunRecord {
                key: key.clone(),
                from,
                to,
                stages: Default::default(),
                failure: None,
            }
        }
    };
    let range = DateRange::new(record.from, record.to);
    tracing::info!(run = %key, from = %range.from, to = %range.to, "Run starts.");
    let mut report = RunReport {
        key: key.clone(),
        from: record.from,
        to: record.to,
        stages: Vec::new(),
        seconds: 0.0,
    };
    let mut failed = false;
    for stage in Stage::ALL {
        if !request.stages.contains(&stage) {
            continue;
        }
        if failed {
            report.stages.push((stage, StageStatus::NotRun));
            continue;
        }
        if let Some(done) = record.stages.get(&stage) {
            tracing::info!(run = %key, %stage, "Stage finished earlier; skipped.");
            report
                .stages
                .push((stage, StageStatus::Skipped(done.clone())));
            continue;
        }
        let stage_started = Instant::now();
        tracing::info!(run = %key, %stage, "Stage starts.");
        match run_stage(stage, config, lake, &request, range).await {
            Ok(Outcome::Done { rows, detail }) => {
                let done = StageRecord {
                    finished_at: Utc::now(),
                    seconds: stage_started.elapsed().as_secs_f64(),
                    rows,
                    detail,
                };
                tracing::info!(run = %key, %stage, rows, seconds = done.seconds, "Stage done.");
                record.stages.insert(stage, done.clone());
                record.failure = None;
                record.save(lake).await?;
                report.stages.push((stage, StageStatus::Done(done)));
            }
            Ok(Outcome::NotConfigured(reason)) => {
                report
                    .stages
                    .push((stage, StageStatus::NotConfigured { reason }));
            }
            Err(e) => {
                let error = error_chain(&e);
                tracing::error!(run = %key, %stage, %error, "Stage failed.");
                record.failure = Some(format!("{stage}: {error}"));
                record.save(lake).await?;
                report.stages.push((stage, StageStatus::Failed { error }));
                failed = true;
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The days a new run's cleanse and process cover.
async fn run_days(
    config: &PipelineConfig,
    lake: &Lake,
    kind: RunKind,
) -> Result<(NaiveDate, NaiveDate), LakeError> {
    Ok(match kind {
        RunKind::Recompute { from, to } => (from, to),
        RunKind::Nightly { date } => {
            let to = date - Duration::days(1);
            let window = i64::from(config.analysis.restatement_days.max(1));
            let restated = to - Duration::days(window - 1);
            let after_watermark = read_watermark(lake, CLEANED_THROUGH_KEY)
                .await?
                .map(|d| d + Duration::days(1))
                .or(config.pipeline.history_start);
            let from = after_watermark.map_or(restated, |d| d.min(restated));
            let from = config
                .pipeline
                .history_start
                .map_or(from, |h| from.max(h).min(to));
            (from, to)
        }
    })
}

enum Outcome {
    Done { rows: u64, detail: String },
    NotConfigured(String),
}

async fn run_stage(
    stage: Stage,
    config: &PipelineConfig,
    lake: &Lake,
    request: &RunRequest<'_>,
    range: DateRange,
) -> Result<Outcome, PipelineError> {
    let run_id = request.kind.run_id();
    match stage {
        Stage::Ingest => {
            let mode = match request.kind {
                RunKind::Nightly { date } => Mode::Nightly { today: date },
                RunKind::Recompute { from, to } => Mode::Range {
                    from,
                    to,
                    today: to + Duration::days(1),
                },
            };
            let ingest = IngestRequest {
                mode,
                ..request.ingest.clone()
            };
            let progress = if request.progress {
                Progress::for_terminal()
            } else {
                Progress::hidden()
            };
            let summary = run_ingest(config, lake, ingest, request.env, &progress).await?;
            if summary.failed() {
                return Err(PipelineError::IngestStreams(summary.to_string()));
            }
            let landed: u32 = summary.streams.values().map(|s| s.landed).sum();
            Ok(Outcome::Done {
                rows: summary.rows(),
                detail: format!(
                    "{landed} partitions landed, {} deferred, {} calls",
                    summary.deferred(),
                    summary.calls()
                ),
            })
        }
        Stage::Cleanse => {
            let out = run_cleanse(config, lake, range, &run_id).await?;
            clean_outcome(&out)
        }
        Stage::Process => {
            let out = run_process(config, lake, range, &run_id).await?;
            let outcome = clean_outcome(&out)?;
            if matches!(request.kind, RunKind::Nightly { .. }) {
                advance_watermark(lake, CLEANED_THROUGH_KEY, range.to).await?;
            }
            Ok(outcome)
        }
        Stage::Calculate => calculate(config, lake, request, range, &run_id).await,
        Stage::Marts => {
            let paths = match request.kind {
                RunKind::Nightly { .. } => PathRefresh::WhenOlderThan(BACKTEST_EVERY_DAYS),
                RunKind::Recompute { .. } => PathRefresh::Always,
            };
            let out = build_marts(config, lake, paths).await?;
            let detail = out
                .tables
                .iter()
                .map(|(t, w)| format!("{t} {}", w.rows))
                .collect::<Vec<_>>()
                .join(", ");
            Ok(Outcome::Done {
                rows: out.rows(),
                detail,
            })
        }
        Stage::Publish => {
            let Some(url) = config.mysql_url(request.env)? else {
                return Ok(Outcome::NotConfigured(
                    "no MySQL URL configured: marts are in the lake only".into(),
                ));
            };
            let rows_per_insert = config.mysql_settings().rows_per_insert.get() as usize;
            let mut mysql = MysqlMart::connect(&url)
                .await?
                .with_rows_per_insert(rows_per_insert);
            let out = publish_marts(lake, &mut mysql).await?;
            mysql.close().await?;
            let copied: usize = out.tables.values().map(|w| w.partitions).sum();
            let held: usize = out.tables.values().map(|w| w.unchanged).sum();
            Ok(Outcome::Done {
                rows: out.rows(),
                detail: format!(
                    "{} marts to {}: {copied} partitions copied, {held} already held",
                    out.tables.len(),
                    mysql_label(&url)
                ),
            })
        }
    }
}

/// The redacted URL of the database, for the summary.
fn mysql_label(url: &crate::config::Secret) -> String {
    crate::mart::redact_url(url.expose())
}

fn clean_outcome(out: &StageOutput) -> Result<Outcome, PipelineError> {
    if out.failed() {
        return Err(PipelineError::Partitions {
            stage: out.stage.clone(),
            count: out.failures.len(),
            first: out.failures.first().cloned().unwrap_or_default(),
        });
    }
    let rows: u64 = out.written.iter().map(|(_, _, n)| n).sum();
    Ok(Outcome::Done {
        rows,
        detail: format!("{} partitions written", out.written.len()),
    })
}

/// Backtest and refit when due, else predict the cohorts whose window closed with the saved
/// models; write `mart.user_ltv` for the predicted install dates.
async fn calculate(
    config: &PipelineConfig,
    lake: &Lake,
    request: &RunRequest<'_>,
    range: DateRange,
    run_id: &str,
) -> Result<Outcome, PipelineError> {
    let features = FeatureParams::from_analysis(&config.analysis);
    features.validate()?;
    let as_of = request.kind.as_of();
    let due = match request.backtest {
        BacktestPolicy::Always => true,
        BacktestPolicy::Never => false,
        BacktestPolicy::Auto => read_watermark(lake, LAST_BACKTEST_KEY)
            .await?
            .is_none_or(|last| (as_of - last).num_days() >= BACKTEST_EVERY_DAYS),
    };
    let mut detail = Vec::new();
    if due {
        let params = EvaluationParams {
            window_days: features.window_days,
            horizons: features.horizons.clone(),
            cohort_days: 7,
            every_days: 7,
            max_cutoffs: 4,
            min_campaign_users: 100,
            hurdle: HurdleParams::default(),
            from: None,
            to: None,
        };
        let out = run_backtest(lake, &params, run_id).await?;
        advance_watermark(lake, LAST_BACKTEST_KEY, as_of).await?;
        let chosen: Vec<String> = out
            .choices
            .iter()
            .map(|(h, c)| format!("D{h} {}", c.model))
            .collect();
        detail.push(format!(
            "backtest at {} cutoffs chose {}",
            out.partitions_written.len(),
            if chosen.is_empty() {
                "nothing (history too short)".to_string()
            } else {
                chosen.join(", ")
            }
        ));
    }
    // A user's window is days [install, install + K]; tonight's range rewrote the events
    // from `range.from`, so cohorts installed K + 1 days before it may have changed, and
    // every cohort that closed since the last run is after that.
    let since = range.from - Duration::days(i64::from(features.window_days) + 1);
    let params = PredictParams::new(features);
    let saved = if due {
        None
    } else {
        run_predict_since(lake, params.clone(), since).await?
    };
    let (predicted, how) = match saved {
        Some(p) => (p, format!("installed since {since}, saved models")),
        None => (run_predict(lake, params).await?, "refitted".to_string()),
    };
    let write = write_user_ltv(config, lake, &predicted.predictions).await?;
    detail.push(format!(
        "predicted {} users ({how}; {})",
        predicted.users_predicted,
        crate::mart::build::model_label(&predicted.horizons)
    ));
    Ok(Outcome::Done {
        rows: write.rows,
        detail: detail.join("; "),
    })
}

/// An error with its causes, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} (days {} .. {})", self.key, self.from, self.to)?;
        for (stage, status) in &self.stages {
            let line = match status {
                StageStatus::Done(r) => {
                    format!(
                        "done     {:>8.1} s {:>12} rows  {}",
                        r.seconds, r.rows, r.detail
                    )
                }
                StageStatus::Skipped(r) => format!(
                    "skipped  finished at {} ({} rows)",
                    r.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    r.rows
                ),
                StageStatus::NotConfigured { reason } => format!("-        {reason}"),
                StageStatus::Failed { error } => format!("FAILED   {error}"),
                StageStatus::NotRun => "not run  (an earlier stage failed)".to_string(),
            };
            writeln!(f, "  {:<10} {line}", stage.name())?;
        }
        writeln!(f, "seconds: {:.1}", self.seconds)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::Registry;

    /// A recompute's run ids once were 67 characters, and its backtest failed writing
    /// `mart.model_evaluation`, whose `run_id` held 64.
    #[test]
    fn every_run_id_fits_every_run_id_column() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let ids = [
            RunKind::Nightly { date: day }.run_id(),
            RunKind::Recompute { from: day, to: day }.run_id(),
        ];
        let registry = Registry::embedded().unwrap();
        let mut checked = 0;
        for table in registry.tables() {
            for column in table.columns.iter().filter(|c| c.name == "run_id") {
                if let Some(max) = column.max_length {
                    for id in &ids {
                        assert!(
                            id.chars().count() <= max as usize,
                            "{}.run_id holds {max} characters; run id {id:?} has {}",
                            table.name,
                            id.chars().count()
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 0,
            "no run_id column with a max_length was checked"
        );
    }
}
