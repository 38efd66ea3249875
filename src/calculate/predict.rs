//! `ltv predict` on a lake: fit, predict, save the artifacts, summarise per campaign.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::backtest::materialise;
use super::roas::{campaign_spend, with_roas};
use super::{CalculateError, clean_inputs};
use crate::lake::{DateRange, Lake, date_lit};
use crate::model::evaluate::{CHOICE_KEY, ModelChoice};
use crate::model::predict::{
    CURRENT_KEY, CurrentModels, HorizonSummary, PredictParams, Predictions, campaign_predictions,
    load_artifact, predict, predict_with_artifacts, save_artifacts,
};
use crate::schema::Registry;

/// What a prediction run did.
#[derive(Debug, Serialize)]
pub struct PredictOutput {
    pub data_end: DateTime<Utc>,
    pub users_predicted: usize,
    pub horizons: Vec<HorizonSummary>,
    /// Keys under `_state/` of the saved artifacts.
    pub artifacts: Vec<String>,
    /// Per channel and campaign: users, pLTV per horizon with its interval, spend over the
    /// predicted install days and predicted ROAS per horizon.
    #[serde(skip)]
    pub campaigns: DataFrame,
    #[serde(skip)]
    pub predictions: Predictions,
}

/// Predicts from the lake's clean layer with the model the last backtest chose for each
/// horizon (the hurdle where none was chosen), saves every fitted model and records the set
/// as the one that serves the nights until the next refit ([`CURRENT_KEY`]).
pub async fn run_predict(
    lake: &Lake,
    mut params: PredictParams,
) -> Result<PredictOutput, CalculateError> {
    let choice: ModelChoice = lake.read_state(CHOICE_KEY).await?.unwrap_or_default();
    params.choice = choice.for_window(params.features.window_days);
    let (events, installs) = clean_inputs(lake).await?;
    let (events, installs) = materialise(events, installs)?;
    let predictions = predict(events, installs, &params)?;
    let artifacts = save_artifacts(lake, &predictions.artifacts).await?;
    let current = CurrentModels::of(&predictions, &params, artifacts.clone());
    lake.write_state(CURRENT_KEY, &current).await?;
    summarise(lake, predictions, artifacts).await
}

/// Predicts, with the saved model set and without refitting, every user installed on
/// `since` or later whose window has closed: the nightly run's cohorts (see
/// [`predict_with_artifacts`]). Reads only the installs and events from `since` on (events
/// from the day before, for clocks that stamp a little before the install).
///
/// `None` when there is no saved set, or it was fitted with other feature settings, or one
/// of its artifacts is gone: the caller refits.
pub async fn run_predict_since(
    lake: &Lake,
    params: PredictParams,
    since: NaiveDate,
) -> Result<Option<PredictOutput>, CalculateError> {
    let Some(current) = lake.read_state::<CurrentModels>(CURRENT_KEY).await? else {
        return Ok(None);
    };
    if !current.fits(&params.features) {
        tracing::info!("The saved models were fitted with other feature settings: refitting.");
        return Ok(None);
    }
    let mut artifacts = Vec::with_capacity(current.artifacts.len());
    for key in &current.artifacts {
        match load_artifact(lake, key).await? {
            Some(a) => artifacts.push(a),
            None => {
                tracing::warn!(key, "A saved model artifact is missing: refitting.");
                return Ok(None);
            }
        }
    }
    let registry = Registry::embedded()?;
    let events = lake
        .scan(
            registry.get("clean.events")?,
            DateRange::new(since - Duration::days(1), NaiveDate::MAX),
        )
        .await?;
    // Installs are partitioned by their UTC day, install dates are in the reporting zone.
    let installs = lake
        .scan(
            registry.get("clean.installs")?,
            DateRange::new(since - Duration::days(1), NaiveDate::MAX),
        )
        .await?
        .filter(col("report_date").gt_eq(date_lit(since)));
    let (events, installs) = materialise(events, installs)?;
    let predictions = predict_with_artifacts(events, installs, &params, &artifacts)?;
    tracing::info!(
        since = %since,
        users = predictions.users.height(),
        fitted = %current.data_end,
        "Predicted the new cohorts with the saved models."
    );
    Ok(Some(summarise(lake, predictions, current.artifacts).await?))
}

/// The predictions with their per-campaign summary (pLTV and ROAS).
async fn summarise(
    lake: &Lake,
    predictions: Predictions,
    artifacts: Vec<String>,
) -> Result<PredictOutput, CalculateError> {
    let campaigns = campaign_predictions(&predictions)?;
    let campaigns = match install_days(&predictions.users)? {
        Some((from, to)) => {
            let registry = Registry::embedded()?;
            let daily = lake
                .scan(registry.get("clean.campaign_daily")?, DateRange::all())
                .await?;
            let horizons: Vec<u32> = predictions
                .horizons
                .iter()
                .map(|h| h.horizon_days)
                .collect();
            with_roas(campaigns.lazy(), campaign_spend(daily, from, to), &horizons)
                .collect()
                .map_err(|source| CalculateError::Polars {
                    what: "predicted ROAS per campaign",
                    source,
                })?
        }
        None => campaigns,
    };
    Ok(PredictOutput {
        data_end: predictions.data_end,
        users_predicted: predictions.users.height(),
        horizons: predictions.horizons.clone(),
        artifacts,
        campaigns,
        predictions,
    })
}

/// First and last install day (days since the epoch) of the predicted users; `None` when
/// nobody was predicted.
fn install_days(users: &DataFrame) -> Result<Option<(i32, i32)>, CalculateError> {
    let polars = |source| CalculateError::Polars {
        what: "install dates of the predicted users",
        source,
    };
    let days = users
        .column("install_date")
        .and_then(|c| c.cast(&DataType::Int32))
        .map_err(polars)?;
    let days = days.i32().map_err(polars)?;
    Ok(days.min().zip(days.max()))
}

impl fmt::Display for PredictOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "predicted {} users from data up to {}",
            self.users_predicted, self.data_end
        )?;
        for h in &self.horizons {
            writeln!(
                f,
                "D{}: {} ({} users mature)",
                h.horizon_days,
                match &h.basis {
                    crate::model::predict::Basis::Trained { model, .. } => format!("{model}"),
                    crate::model::predict::Basis::Extrapolated {
                        from_days, ratio, ..
                    } => format!("EXTRAPOLATED from D{from_days} x {ratio:.3}"),
                },
                h.mature_users
            )?;
        }
        let money = |v: Option<i64>| {
            v.map_or("-".to_string(), |v| {
                format!("{:.2}", v as f64 / 1_000_000.0)
            })
        };
        let get_str = |name: &str, i: usize| {
            self.campaigns
                .column(name)
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(i).map(str::to_string)))
                .unwrap_or_else(|| "-".to_string())
        };
        let get_i64 = |name: &str, i: usize| {
            self.campaigns
                .column(name)
                .ok()
                .and_then(|c| c.cast(&DataType::Int64).ok())
                .and_then(|c| c.i64().ok().and_then(|s| s.get(i)))
        };
        let get_f64 = |name: &str, i: usize| {
            self.campaigns
                .column(name)
                .ok()
                .and_then(|c| c.f64().ok().and_then(|s| s.get(i)))
        };
        write!(
            f,
            "{:<18} {:<28} {:>7} {:>12}",
            "channel", "campaign", "users", "spend"
        )?;
        for h in &self.horizons {
            write!(f, " {:>26}", format!("pLTV D{} [90%]", h.horizon_days))?;
            write!(f, " {:>8}", format!("ROAS D{}", h.horizon_days))?;
        }
        writeln!(f)?;
        for i in 0..self.campaigns.height() {
            write!(
                f,
                "{:<18} {:<28} {:>7} {:>12}",
                get_str("channel", i),
                get_str("campaign_id", i),
                get_i64("users", i).unwrap_or(0),
                money(get_i64("spend_micros", i)),
            )?;
            for h in &self.horizons {
                let d = h.horizon_days;
                let cell = format!(
                    "{}{} [{}, {}]",
                    if h.basis.is_extrapolated() { "~" } else { "" },
                    money(get_i64(&format!("pltv_d{d}_micros"), i)),
                    money(get_i64(&format!("pltv_d{d}_low_micros"), i)),
                    money(get_i64(&format!("pltv_d{d}_high_micros"), i)),
                );
                write!(f, " {cell:>26}")?;
                let roas = get_f64(&format!("roas_d{d}"), i)
                    .map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0));
                write!(f, " {roas:>8}")?;
            }
            writeln!(f)?;
        }
        if self.horizons.iter().any(|h| h.basis.is_extrapolated()) {
            writeln!(
                f,
                "~ extrapolated: no cohort is mature at that horizon yet (see README, LTV models)"
            )?;
        }
        writeln!(f, "artifacts: {} under _state/", self.artifacts.len())
    }
}
