//! `ltv backtest` on a lake: scores, `mart.model_evaluation`, the recorded choice.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::{CalculateError, clean_inputs};
use crate::lake::{DateRange, Lake};
use crate::model::evaluate::{
    CHOICE_KEY, Evaluation, EvaluationParams, History, HorizonChoice, ModelChoice, Skipped,
    Summary, evaluate, model_evaluation_frame,
};
use crate::schema::Registry;

/// What a backtest run did.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestOutput {
    pub run_id: String,
    pub window_days: u32,
    pub min_campaign_users: usize,
    pub summaries: Vec<Summary>,
    pub skipped: Vec<Skipped>,
    pub choices: BTreeMap<u32, HorizonChoice>,
    /// Cutoff partitions of `mart.model_evaluation` written.
    pub partitions_written: Vec<NaiveDate>,
}

/// Runs the backtest over the lake's clean layer, replaces this run's window and horizons in
/// the `mart.model_evaluation` partitions of its cutoffs (other horizons' rows stay), and
/// merges its choices into `_state/models/choice.json`.
pub async fn run_backtest(
    lake: &Lake,
    params: &EvaluationParams,
    run_id: &str,
) -> Result<BacktestOutput, CalculateError> {
    let started = Utc::now();
    let (events, installs) = clean_inputs(lake).await?;
    let history = History::of(events.clone(), installs.clone())
        .map_err(|source| CalculateError::Polars {
            what: "reading the history's bounds",
            source,
        })?
        .ok_or(CalculateError::NoData)?;
    let (events, installs) = materialise(events, installs)?;
    let evaluation = evaluate(events, installs, &history, params, run_id, started)?;
    let partitions_written = write_evaluation(lake, &evaluation, params, run_id, started).await?;
    if !evaluation.choices.is_empty() {
        // A conditional update: a backtest running beside this one (another recompute)
        // keeps its horizons' choices.
        lake.update_state::<ModelChoice, _>(CHOICE_KEY, |doc| {
            let mut doc = doc.unwrap_or_default();
            doc.merge(params.window_days, &evaluation.choices);
            doc
        })
        .await?;
    }
    Ok(BacktestOutput {
        run_id: run_id.to_string(),
        window_days: params.window_days,
        min_campaign_users: params.min_campaign_users,
        summaries: evaluation.summaries,
        skipped: evaluation.skipped,
        choices: evaluation.choices,
        partitions_written,
    })
}

/// Every cutoff re-reads the clean layer; read the Parquet files once.
pub(super) fn materialise(
    events: LazyFrame,
    installs: LazyFrame,
) -> Result<(LazyFrame, LazyFrame), CalculateError> {
    let collect = |lf: LazyFrame, what| {
        lf.collect()
            .map(IntoLazy::lazy)
            .map_err(|source| CalculateError::Polars { what, source })
    };
    Ok((
        collect(
            events.select([
                col("user_key"),
                col("event"),
                col("time"),
                col("revenue_reporting_micros"),
            ]),
            "reading clean.events",
        )?,
        collect(installs, "reading clean.installs")?,
    ))
}

async fn write_evaluation(
    lake: &Lake,
    evaluation: &Evaluation,
    params: &EvaluationParams,
    run_id: &str,
    started: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, CalculateError> {
    let table = Registry::embedded()?.get("mart.model_evaluation")?;
    let polars = |what| move |source| CalculateError::Polars { what, source };
    let rows = model_evaluation_frame(evaluation, params, run_id, started)
        .map_err(polars("building mart.model_evaluation"))?;
    let horizons: Vec<u32> = evaluation.scores.iter().map(|s| s.horizon_days).collect();
    let mut cutoffs: Vec<NaiveDate> = evaluation.scores.iter().map(|s| s.cutoff).collect();
    cutoffs.sort_unstable();
    cutoffs.dedup();
    for &dt in &cutoffs {
        let days = (dt - NaiveDate::default()).num_days() as i32;
        let day = lit(days).cast(DataType::Date);
        let new = rows
            .clone()
            .lazy()
            .filter(col("dt").eq(day))
            .collect()
            .map_err(polars("building mart.model_evaluation"))?;
        // Rows of other windows and horizons at this cutoff stay.
        let kept = lake
            .scan(table, DateRange::day(dt))
            .await?
            .filter(
                col("window_days")
                    .eq(lit(params.window_days))
                    .and(col("horizon_days").is_in(
                        lit(Series::new("h".into(), horizons.clone())).implode(false),
                        false,
                    ))
                    .not(),
            )
            .collect()
            .map_err(polars("reading mart.model_evaluation"))?;
        let merged = kept
            .vstack(&new)
            .map_err(polars("merging mart.model_evaluation"))?;
        lake.write_partition(table, dt, merged).await?;
    }
    Ok(cutoffs)
}

impl fmt::Display for BacktestOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        writeln!(
            f,
            "backtest {} (window D{}, campaigns of at least {} scored users)",
            self.run_id, self.window_days, self.min_campaign_users
        )?;
        writeln!(
            f,
            "{:>8} {:<11} {:>7} {:>13} {:>6} {:>8} {:>11} {:>8}  chosen",
            "horizon",
            "model",
            "cutoffs",
            "campaign MAPE",
            "bias",
            "Gini",
            "decile MAPE",
            "Spearman"
        )?;
        for s in &self.summaries {
            let chosen = self
                .choices
                .get(&s.horizon_days)
                .is_some_and(|c| c.model == s.model);
            writeln!(
                f,
                "{:>8} {:<11} {:>7} {:>13} {:>6} {:>8} {:>11} {:>8}  {}",
                format!("D{}", s.horizon_days),
                s.model.name(),
                s.cutoffs,
                pct(s.campaign_mape),
                num(s.bias),
                num(s.normalized_gini),
                pct(s.decile_mape),
                num(s.spearman),
                if chosen { "*" } else { "" }
            )?;
        }
        for s in &self.skipped {
            match s.cutoff {
                Some(c) => writeln!(f, "D{} cutoff {c} not scored: {}", s.horizon_days, s.reason)?,
                None => writeln!(f, "D{}: {}", s.horizon_days, s.reason)?,
            }
        }
        for (h, c) in &self.choices {
            writeln!(
                f,
                "D{h}: {} predicts the marts (lowest mean campaign MAPE over {} cutoffs)",
                c.model,
                c.cutoffs.len()
            )?;
        }
        if self.partitions_written.is_empty() {
            writeln!(f, "nothing scored: mart.model_evaluation unchanged")?;
        } else {
            writeln!(
                f,
                "mart.model_evaluation: {} cutoff partitions written",
                self.partitions_written.len()
            )?;
        }
        Ok(())
    }
}
