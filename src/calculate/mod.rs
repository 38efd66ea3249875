//! Calculate: from the clean layer to the models' outputs. `backtest` scores every model at
//! cutoffs across the history, writes `mart.model_evaluation` and records which model
//! predicts each horizon; `predict` fits on everything mature, predicts every user whose
//! window is complete, and saves each fitted model as a JSON artifact under
//! `_state/models/<data end>/`.
//!
//! A refit and a backtest read the whole clean history (`clean.events`, `clean.installs`): a
//! model learns from every mature cohort, and a backtest needs the cohorts' futures. Between
//! refits (weekly in the nightly run), `run_predict_since` predicts only the cohorts whose
//! window has closed, with the saved model set, reading only their days.

mod backtest;
mod predict;
mod roas;

use polars::prelude::*;

use crate::features::FeatureError;
use crate::lake::{DateRange, Lake, LakeError};
use crate::model::backtest::BacktestError;
use crate::model::predict::PredictError;
use crate::schema::{Registry, SchemaError};

pub use backtest::{BacktestOutput, run_backtest};
pub use predict::{PredictOutput, run_predict, run_predict_since};

/// What the calculate stage can fail on, each naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum CalculateError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the clean layer: {0}")]
    Lake(#[from] LakeError),
    #[error("{what}: {source}")]
    Polars {
        what: &'static str,
        source: PolarsError,
    },
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Backtest(#[from] BacktestError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error(
        "the clean layer is empty (no events or installs): run `ltv cleanse` and `ltv process` first"
    )]
    NoData,
}

/// The clean events and installs of the whole lake, lazily.
pub async fn clean_inputs(lake: &Lake) -> Result<(LazyFrame, LazyFrame), CalculateError> {
    let registry = Registry::embedded()?;
    let events = lake
        .scan(registry.get("clean.events")?, DateRange::all())
        .await?;
    let installs = lake
        .scan(registry.get("clean.installs")?, DateRange::all())
        .await?;
    Ok((events, installs))
}
