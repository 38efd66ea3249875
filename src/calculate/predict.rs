//! `ltv predict` on a lake: fit, predict, save the artifacts, summarise per campaign.

use std::fmt;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::backtest::materialise;
use super::roas::{campaign_spend, with_roas};
use super::{CalculateError, clean_inputs};
use crate::lake::{DateRange, Lake};
use crate::model::evaluate::{CHOICE_KEY, ModelChoice};
use crate::model::predict::{
    HorizonSummary, PredictParams, Predictions, campaign_predictions, predict, save_artifacts,
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
/// horizon (the hurdle where none was chosen) and saves every fitted model.
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
