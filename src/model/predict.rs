//! Production predictions: fit on everything mature in the lake, predict every user whose
//! observation window is complete, at every configured horizon, and describe each fitted
//! model as a JSON artifact.
//!
//! Per horizon (ascending):
//! - **Trained** when at least `min_training_users` users (with `MIN_TRAINING_PAYERS` payers)
//!   are mature at it: the hurdle and the multiplier are fitted on them, and the model the
//!   last backtest chose (`_state/models/choice.json`, default the hurdle) predicts. BTYD, when
//!   chosen, is fitted on every purchase to date.
//! - **Extrapolated** otherwise (a young app; a 90-day lake asked for D180): the prediction
//!   at the longest trained horizon (or the window's own revenue when none is trained) times
//!   the revenue curve's ratio (see `curve`). The run logs a warning naming the horizon and
//!   the shortfall, and every such prediction carries `extrapolated_d<H> = true`.
//!
//! Users whose window is not complete yet are not predicted: a model trained on seven days
//! of behaviour reads three days of it as a weak user. They enter the predictions once their
//! window closes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::btyd::{BgNbdModel, GammaGammaModel};
use super::campaign::{CampaignLtv, seed_of};
use super::curve::{RevenueCurve, daily_activity};
use super::design::{floats, strings};
use super::fit::{
    ModelKind, UserModels, btyd_predictions, btyd_predictions_with, fit_user_models, label_column,
    mature_column, multiplier_predictions, rows,
};
use super::hurdle::{Hurdle, HurdleParams};
use super::metrics;
use super::multiplier::Multiplier;
use crate::features::{FeatureError, FeatureParams, epoch_ms, user_features};
use crate::lake::{Lake, LakeError};

/// A horizon needs this many mature payers, besides `min_training_users`, to train its own
/// model: the value trees learn from payers only.
pub const MIN_TRAINING_PAYERS: usize = 30;
/// Version of the artifact layout; bump when a field changes meaning.
pub const ARTIFACT_FORMAT: u32 = 1;

/// Settings of a prediction run.
#[derive(Debug, Clone)]
pub struct PredictParams {
    /// Window and horizons (from `[analysis]`).
    pub features: FeatureParams,
    pub hurdle: HurdleParams,
    /// A horizon needs this many mature users to train on; below it, it is extrapolated.
    pub min_training_users: usize,
    /// Which model predicts each horizon (the backtest's choice); absent horizons use the
    /// hurdle.
    pub choice: BTreeMap<u32, ModelKind>,
}

impl PredictParams {
    pub fn new(features: FeatureParams) -> Self {
        PredictParams {
            features,
            hurdle: HurdleParams::default(),
            min_training_users: 500,
            choice: BTreeMap::new(),
        }
    }
}

/// What a prediction run can fail on.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("feature plan: {0}")]
    Features(#[from] FeatureError),
    #[error("prediction plan: {0}")]
    Polars(#[from] PolarsError),
    #[error("D{horizon} model: {error}")]
    Model { horizon: u32, error: ModelError },
    #[error("no events in the clean layer: nothing to predict from")]
    NoData,
    #[error(
        "D{horizon}: no horizon is trained and the revenue curve cannot be fitted ({error}); \
         the history is too short to predict at all"
    )]
    NoCurve { horizon: u32, error: ModelError },
    #[error("saving model artifacts: {0}")]
    Lake(#[from] LakeError),
    #[error(
        "D{horizon}: the saved model set has no artifact that served this horizon; refit \
         (`ltv run --backtest always` or `ltv predict`)"
    )]
    MissingArtifact { horizon: u32 },
    #[error("D{horizon}: predicting with the saved BTYD pair: {error}")]
    Btyd { horizon: u32, error: String },
    #[error("model artifact {key}: {error}")]
    Artifact {
        key: String,
        error: serde_json::Error,
    },
}

/// How one horizon's predictions were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// A model trained on users mature at the horizon.
    Trained {
        model: ModelKind,
        training_users: usize,
        training_payers: usize,
    },
    /// The prediction at `from_days` times `ratio` (the revenue curve's).
    Extrapolated {
        from_days: u32,
        ratio: f64,
        mature_users: usize,
    },
}

impl Basis {
    pub fn is_extrapolated(&self) -> bool {
        matches!(self, Basis::Extrapolated { .. })
    }
}

/// The installs the training users came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    pub installs_from: Option<NaiveDate>,
    pub installs_to: Option<NaiveDate>,
    pub users: usize,
    pub payers: usize,
}

/// In-sample scores of a fitted model on its training users (the backtest gives the honest,
/// out-of-time ones; these catch a broken fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetrics {
    pub bias: Option<f64>,
    pub normalized_gini: Option<f64>,
    pub spearman: Option<f64>,
}

/// The fitted parameters, whole: enough to predict again without refitting.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FittedModel {
    Hurdle(Box<Hurdle>),
    Multiplier(Multiplier),
    Btyd {
        bgnbd: BgNbdModel,
        gamma_gamma: GammaGammaModel,
    },
}

/// One model of one horizon, as saved under `_state/models/<data end>/<model>_d<H>.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: u32,
    pub model: ModelKind,
    pub horizon_days: u32,
    pub window_days: u32,
    /// The last event the fit saw.
    pub data_end: DateTime<Utc>,
    /// Whether this model produced the horizon's predictions (the others were fitted for
    /// comparison).
    pub serves_predictions: bool,
    pub basis: Basis,
    pub training: Option<TrainingWindow>,
    /// Encoded feature names, in the order the fitted parameters read them.
    pub features: Vec<String>,
    pub metrics: Option<TrainingMetrics>,
    pub fitted: Option<FittedModel>,
    /// For an extrapolated horizon: the curve that lifted it.
    pub curve: Option<RevenueCurve>,
}

impl ModelArtifact {
    /// The artifact's key under `_state/`.
    pub fn key(&self) -> String {
        format!(
            "models/{}/{}_d{}",
            self.data_end.date_naive(),
            self.model,
            self.horizon_days
        )
    }
}

/// One horizon's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HorizonSummary {
    pub horizon_days: u32,
    pub mature_users: usize,
    pub basis: Basis,
}

/// Everything a prediction run produced.
#[derive(Debug)]
pub struct Predictions {
    pub data_end: DateTime<Utc>,
    /// One row per predicted user: `user_key`, `install_date`, `platform`, `country`,
    /// `channel`, `campaign_id`, `revenue_window_micros` and per horizon `pred_d<H>_micros`
    /// (Int64), `p_pay_d<H>` and `extrapolated_d<H>`; sorted by `user_key`.
    pub users: DataFrame,
    pub horizons: Vec<HorizonSummary>,
    pub artifacts: Vec<ModelArtifact>,
}

/// The last event's time, and "now" for BTYD: the midnight after it, so that the whole last
/// day counts.
fn data_end(events: &LazyFrame) -> Result<(DateTime<Utc>, NaiveDate), PredictError> {
    let end_ms = events
        .clone()
        .select([epoch_ms(col("time")).max().alias("end")])
        .collect()?
        .column("end")?
        .i64()?
        .get(0)
        .ok_or(PredictError::NoData)?;
    let data_end = DateTime::from_timestamp_millis(end_ms).ok_or(PredictError::NoData)?;
    let day = data_end.date_naive();
    Ok((data_end, day.succ_opt().unwrap_or(day)))
}

/// Fits and predicts; see the module documentation.
#[tracing::instrument(level = "debug", skip_all)]
pub fn predict(
    events: LazyFrame,
    installs: LazyFrame,
    params: &PredictParams,
) -> Result<Predictions, PredictError> {
    let fp = &params.features;
    let (data_end, now) = data_end(&events)?;
    let features = user_features(events.clone(), installs.clone(), fp)?.collect()?;
    let users = features
        .clone()
        .lazy()
        .filter(col("window_complete"))
        .collect()?;
    let window_revenue: Vec<f64> = zeros(floats(&users, "revenue_micros"))?;

    let mut out = Outputs::default();
    // The longest trained horizon so far: (days, predictions, p_pay, mean label at it).
    let mut base: Option<(u32, Vec<f64>, Vec<f64>, f64)> = None;
    let mut curve: Option<Result<RevenueCurve, ModelError>> = None;
    for &h in &fp.horizons {
        let me = |error| PredictError::Model { horizon: h, error };
        let train = features
            .clone()
            .lazy()
            .filter(col(mature_column(h).as_str()))
            .collect()?;
        let labels = zeros(floats(&train, &label_column(h)))?;
        let payers = labels.iter().filter(|v| **v > 0.0).count();
        if train.height() >= params.min_training_users && payers >= MIN_TRAINING_PAYERS {
            let models = fit_user_models(&train, h, &params.hurdle).map_err(me)?;
            let prediction_rows = rows(&models.hurdle.design, &users, None).map_err(me)?;
            let p_pay = models.hurdle.pay_probability(&prediction_rows);
            let chosen = params.choice.get(&h).copied().unwrap_or(ModelKind::Hurdle);
            let (served, predicted, btyd) = match chosen {
                ModelKind::Hurdle => (
                    ModelKind::Hurdle,
                    models.hurdle.predict(&prediction_rows).map_err(me)?,
                    None,
                ),
                ModelKind::Multiplier => (
                    ModelKind::Multiplier,
                    multiplier_predictions(&models.multiplier, &users, &prediction_rows)
                        .map_err(me)?,
                    None,
                ),
                ModelKind::Btyd => match btyd_predictions(events.clone(), now, &users, h) {
                    Ok(mut fit) => (
                        ModelKind::Btyd,
                        std::mem::take(&mut fit.predictions),
                        Some(fit),
                    ),
                    Err(e) => {
                        tracing::warn!(horizon = h, error = %e,
                            "BTYD was chosen but cannot be fitted; the hurdle predicts instead");
                        (
                            ModelKind::Hurdle,
                            models.hurdle.predict(&prediction_rows).map_err(me)?,
                            None,
                        )
                    }
                },
            };
            let basis = Basis::Trained {
                model: served,
                training_users: train.height(),
                training_payers: payers,
            };
            let window = training_window(&train, payers)?;
            let multiplier_in_sample =
                multiplier_predictions(&models.multiplier, &train, &models.train_rows)
                    .map_err(me)?;
            out.artifacts.extend(trained_artifacts(
                models,
                multiplier_in_sample,
                btyd,
                Served {
                    model: served,
                    basis: basis.clone(),
                    training: window,
                },
                h,
                fp,
                data_end,
            ));
            out.horizons.push(HorizonSummary {
                horizon_days: h,
                mature_users: train.height(),
                basis,
            });
            let mean_label = labels.iter().sum::<f64>() / labels.len().max(1) as f64;
            out.add(h, &predicted, &p_pay, false);
            base = Some((h, predicted, p_pay, mean_label));
        } else {
            let curve = curve
                .get_or_insert_with(|| {
                    daily_activity(events.clone(), installs.clone())
                        .and_then(|days| RevenueCurve::fit(&days, fp.window_days))
                })
                .as_ref()
                .map_err(|e| PredictError::NoCurve {
                    horizon: h,
                    error: e.clone(),
                })?;
            let (from, from_predictions, p_pay, at_from) = match &base {
                Some((d, p, pay, mean)) => (*d, p.clone(), pay.clone(), *mean),
                None => {
                    let pay = window_revenue
                        .iter()
                        .map(|v| f64::from(u8::from(*v > 0.0)))
                        .collect();
                    let mean =
                        window_revenue.iter().sum::<f64>() / window_revenue.len().max(1) as f64;
                    (fp.window_days, window_revenue.clone(), pay, mean)
                }
            };
            let ratio = curve.ratio(at_from, from, h).map_err(me)?;
            tracing::warn!(
                horizon = h,
                mature_users = train.height(),
                mature_payers = payers,
                needed = params.min_training_users,
                from_days = from,
                ratio,
                "no cohort is mature enough at this horizon: extrapolating from D{from} with \
                 the retention × revenue-per-active-user curve; these predictions are flagged"
            );
            let basis = Basis::Extrapolated {
                from_days: from,
                ratio,
                mature_users: train.height(),
            };
            let predicted: Vec<f64> = from_predictions.iter().map(|p| p * ratio).collect();
            out.artifacts.push(ModelArtifact {
                format: ARTIFACT_FORMAT,
                model: base_model(&out.horizons, from),
                horizon_days: h,
                window_days: fp.window_days,
                data_end,
                serves_predictions: true,
                basis: basis.clone(),
                training: None,
                features: Vec::new(),
                metrics: None,
                fitted: None,
                curve: Some(curve.clone()),
            });
            out.horizons.push(HorizonSummary {
                horizon_days: h,
                mature_users: train.height(),
                basis,
            });
            out.add(h, &predicted, &p_pay, true);
        }
    }
    let users = out.frame(&users, &window_revenue)?;
    let Outputs {
        horizons,
        artifacts,
        ..
    } = out;
    Ok(Predictions {
        data_end,
        users,
        horizons,
        artifacts,
    })
}

/// `_state/` key of the record naming the model set that serves predictions now.
pub const CURRENT_KEY: &str = "models/current";

/// The model set a refit left to serve the nights until the next one: which artifacts, and
/// the settings they were fitted with (a night whose settings differ must refit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentModels {
    pub format: u32,
    /// The last event the fit saw.
    pub data_end: DateTime<Utc>,
    /// The feature settings (window, horizons, events) as text: the design reads columns by
    /// these names, so any change means a refit.
    pub features: String,
    /// Keys under `_state/` of every artifact of the set.
    pub artifacts: Vec<String>,
}

impl CurrentModels {
    /// The record of a refit's artifacts.
    pub fn of(predictions: &Predictions, params: &PredictParams, artifacts: Vec<String>) -> Self {
        CurrentModels {
            format: ARTIFACT_FORMAT,
            data_end: predictions.data_end,
            features: feature_fingerprint(&params.features),
            artifacts,
        }
    }

    /// Whether the set was fitted with these feature settings.
    pub fn fits(&self, features: &FeatureParams) -> bool {
        self.format == ARTIFACT_FORMAT && self.features == feature_fingerprint(features)
    }
}

fn feature_fingerprint(features: &FeatureParams) -> String {
    format!("{features:?}")
}

/// Predicts the window-complete users of `events` and `installs` with saved models, without
/// refitting: for each horizon the artifact that served it at the fit, applied as it was
/// (the hurdle or the multiplier on the user's window, BTYD's fitted pair on their
/// purchases, an extrapolated horizon's ratio on its base). Given the same users and
/// events, this is exactly what the fit predicted.
///
/// The frames need hold only the users to predict and their events (a nightly run passes
/// the cohorts whose window closed since the last one).
#[tracing::instrument(level = "debug", skip_all)]
pub fn predict_with_artifacts(
    events: LazyFrame,
    installs: LazyFrame,
    params: &PredictParams,
    artifacts: &[ModelArtifact],
) -> Result<Predictions, PredictError> {
    let fp = &params.features;
    let (data_end, now) = data_end(&events)?;
    let users = user_features(events.clone(), installs, fp)?
        .filter(col("window_complete"))
        .collect()?;
    let window_revenue: Vec<f64> = zeros(floats(&users, "revenue_micros"))?;
    let window_pay: Vec<f64> = window_revenue
        .iter()
        .map(|v| f64::from(u8::from(*v > 0.0)))
        .collect();

    let mut out = Outputs::default();
    // Each horizon's predictions and P(pay), as the base of extrapolated ones.
    let mut done: BTreeMap<u32, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for &h in &fp.horizons {
        let me = |error| PredictError::Model { horizon: h, error };
        let served = artifacts
            .iter()
            .find(|a| a.horizon_days == h && a.serves_predictions)
            .ok_or(PredictError::MissingArtifact { horizon: h })?;
        let (predicted, p_pay, extrapolated, mature) = match &served.basis {
            Basis::Trained {
                model,
                training_users,
                ..
            } => {
                let hurdle = artifacts
                    .iter()
                    .find_map(|a| match (&a.fitted, a.horizon_days == h) {
                        (Some(FittedModel::Hurdle(m)), true) => Some(m),
                        _ => None,
                    })
                    .ok_or(PredictError::MissingArtifact { horizon: h })?;
                let rows = rows(&hurdle.design, &users, None).map_err(me)?;
                let p_pay = hurdle.pay_probability(&rows);
                let predicted = match (model, &served.fitted) {
                    (ModelKind::Hurdle, _) => hurdle.predict(&rows).map_err(me)?,
                    (ModelKind::Multiplier, Some(FittedModel::Multiplier(m))) => {
                        multiplier_predictions(m, &users, &rows).map_err(me)?
                    }
                    (ModelKind::Btyd, Some(FittedModel::Btyd { bgnbd, gamma_gamma })) => {
                        btyd_predictions_with(bgnbd, gamma_gamma, events.clone(), now, &users, h)
                            .map_err(|e| PredictError::Btyd {
                                horizon: h,
                                error: e.to_string(),
                            })?
                    }
                    _ => return Err(PredictError::MissingArtifact { horizon: h }),
                };
                (predicted, p_pay, false, *training_users)
            }
            Basis::Extrapolated {
                from_days,
                ratio,
                mature_users,
            } => {
                let (base, pay) = match done.get(from_days) {
                    Some((p, pay)) => (p.clone(), pay.clone()),
                    None => (window_revenue.clone(), window_pay.clone()),
                };
                (
                    base.iter().map(|p| p * ratio).collect(),
                    pay,
                    true,
                    *mature_users,
                )
            }
        };
        out.add(h, &predicted, &p_pay, extrapolated);
        out.horizons.push(HorizonSummary {
            horizon_days: h,
            mature_users: mature,
            basis: served.basis.clone(),
        });
        done.insert(h, (predicted, p_pay));
    }
    let users = out.frame(&users, &window_revenue)?;
    Ok(Predictions {
        data_end,
        users,
        horizons: out.horizons,
        artifacts: Vec::new(),
    })
}

/// Writes every artifact under `_state/` (one atomic put each) and returns their keys.
pub async fn save_artifacts(
    lake: &Lake,
    artifacts: &[ModelArtifact],
) -> Result<Vec<String>, PredictError> {
    let mut keys = Vec::with_capacity(artifacts.len());
    for a in artifacts {
        let key = a.key();
        lake.write_state(&key, a).await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Reads one artifact back (for an analyst, or to predict again without refitting).
pub async fn load_artifact(lake: &Lake, key: &str) -> Result<Option<ModelArtifact>, PredictError> {
    Ok(lake.read_state(key).await?)
}

/// Campaign pLTV per horizon from the user predictions: one row per channel and campaign
/// with `users`, and per horizon `pltv_d<H>_micros`, `pltv_d<H>_low_micros`,
/// `pltv_d<H>_high_micros` (a 90% bootstrap interval over users) and `extrapolated_d<H>`.
pub fn campaign_predictions(predictions: &Predictions) -> Result<DataFrame, PredictError> {
    let users = &predictions.users;
    let channel =
        strings(users, "channel").map_err(|error| PredictError::Model { horizon: 0, error })?;
    let campaign =
        strings(users, "campaign_id").map_err(|error| PredictError::Model { horizon: 0, error })?;
    let mut groups: BTreeMap<(String, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, (ch, c)) in channel.into_iter().zip(campaign).enumerate() {
        groups
            .entry((ch.unwrap_or_default(), c))
            .or_default()
            .push(i);
    }
    let mut columns = vec![
        Column::new(
            "channel".into(),
            groups.keys().map(|k| k.0.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "campaign_id".into(),
            groups.keys().map(|k| k.1.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "users".into(),
            groups.values().map(|v| v.len() as u64).collect::<Vec<_>>(),
        ),
    ];
    for summary in &predictions.horizons {
        let h = summary.horizon_days;
        let name = format!("pred_d{h}_micros");
        let values = zeros(floats(users, &name)).map_err(|e| match e {
            PredictError::Model { error, .. } => PredictError::Model { horizon: h, error },
            other => other,
        })?;
        let ltv: Vec<Option<CampaignLtv>> = groups
            .iter()
            .map(|(key, idx)| {
                let seed = seed_of(&format!("{}/{}", key.0, key.1.as_deref().unwrap_or("")));
                let sample: Vec<f64> = idx.iter().map(|&i| values[i]).collect();
                CampaignLtv::of(&sample, seed)
            })
            .collect();
        let pick = |f: fn(&CampaignLtv) -> f64| {
            ltv.iter()
                .map(|c| c.as_ref().map(|c| f(c).round() as i64))
                .collect::<Vec<_>>()
        };
        columns.push(Column::new(
            format!("pltv_d{h}_micros").into(),
            pick(|c| c.pltv_micros),
        ));
        columns.push(Column::new(
            format!("pltv_d{h}_low_micros").into(),
            pick(|c| c.low_micros),
        ));
        columns.push(Column::new(
            format!("pltv_d{h}_high_micros").into(),
            pick(|c| c.high_micros),
        ));
        columns.push(Column::new(
            format!("extrapolated_d{h}").into(),
            vec![summary.basis.is_extrapolated(); groups.len()],
        ));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// The per-horizon columns and artifacts as they accumulate.
#[derive(Default)]
struct Outputs {
    columns: Vec<Column>,
    horizons: Vec<HorizonSummary>,
    artifacts: Vec<ModelArtifact>,
}

impl Outputs {
    fn add(&mut self, h: u32, predicted: &[f64], p_pay: &[f64], extrapolated: bool) {
        self.columns.push(Column::new(
            format!("pred_d{h}_micros").into(),
            predicted
                .iter()
                .map(|p| p.round() as i64)
                .collect::<Vec<_>>(),
        ));
        self.columns
            .push(Column::new(format!("p_pay_d{h}").into(), p_pay.to_vec()));
        self.columns.push(Column::new(
            format!("extrapolated_d{h}").into(),
            vec![extrapolated; predicted.len()],
        ));
    }

    fn frame(
        &mut self,
        users: &DataFrame,
        window_revenue: &[f64],
    ) -> Result<DataFrame, PolarsError> {
        let mut df = users.select([
            "user_key",
            "install_date",
            "platform",
            "country",
            "channel",
            "campaign_id",
        ])?;
        df.with_column(Column::new(
            "revenue_window_micros".into(),
            window_revenue
                .iter()
                .map(|v| v.round() as i64)
                .collect::<Vec<_>>(),
        ))?;
        for c in std::mem::take(&mut self.columns) {
            df.with_column(c)?;
        }
        Ok(df)
    }
}

/// The model a horizon extrapolated from `from` was served by (the window's own revenue
/// reads as the multiplier: observed revenue times a ratio).
fn base_model(horizons: &[HorizonSummary], from: u32) -> ModelKind {
    horizons
        .iter()
        .find(|s| s.horizon_days == from)
        .and_then(|s| match s.basis {
            Basis::Trained { model, .. } => Some(model),
            Basis::Extrapolated { .. } => None,
        })
        .unwrap_or(ModelKind::Multiplier)
}

/// Which model served a trained horizon, and on what.
struct Served {
    model: ModelKind,
    basis: Basis,
    training: TrainingWindow,
}

/// The artifacts of a trained horizon: the hurdle and the multiplier (both fitted), and BTYD
/// when it was.
fn trained_artifacts(
    models: UserModels,
    multiplier_in_sample: Vec<f64>,
    btyd: Option<super::fit::BtydFit>,
    served: Served,
    h: u32,
    fp: &FeatureParams,
    data_end: DateTime<Utc>,
) -> Vec<ModelArtifact> {
    let actual = &models.train_rows.horizon_revenue_micros;
    let in_sample = |predicted: &[f64]| TrainingMetrics {
        bias: metrics::bias(predicted, actual).ok(),
        normalized_gini: metrics::normalized_gini(predicted, actual).ok(),
        spearman: metrics::spearman(predicted, actual).ok(),
    };
    let hurdle_metrics = models
        .hurdle
        .predict(&models.train_rows)
        .ok()
        .map(|p| in_sample(&p));
    let multiplier_metrics = Some(in_sample(&multiplier_in_sample));
    let artifact = |model: ModelKind,
                    features: Vec<String>,
                    fitted: FittedModel,
                    metrics: Option<TrainingMetrics>| ModelArtifact {
        format: ARTIFACT_FORMAT,
        model,
        horizon_days: h,
        window_days: fp.window_days,
        data_end,
        serves_predictions: model == served.model,
        basis: served.basis.clone(),
        training: Some(served.training.clone()),
        features,
        metrics,
        fitted: Some(fitted),
        curve: None,
    };
    let mut out = vec![
        artifact(
            ModelKind::Multiplier,
            vec!["channel".into(), "revenue_micros".into()],
            FittedModel::Multiplier(models.multiplier),
            multiplier_metrics,
        ),
        artifact(
            ModelKind::Hurdle,
            models.hurdle.design.names(),
            FittedModel::Hurdle(Box::new(models.hurdle)),
            hurdle_metrics,
        ),
    ];
    if let Some(fit) = btyd {
        out.push(artifact(
            ModelKind::Btyd,
            vec!["purchases: frequency, recency, age, mean repeat spend".into()],
            FittedModel::Btyd {
                bgnbd: fit.bgnbd,
                gamma_gamma: fit.gamma_gamma,
            },
            None,
        ));
    }
    out
}

fn training_window(train: &DataFrame, payers: usize) -> Result<TrainingWindow, PolarsError> {
    let dates = train.column("install_date")?.date()?.clone();
    let day = |d: Option<i32>| d.and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163));
    Ok(TrainingWindow {
        installs_from: day(dates.physical().min()),
        installs_to: day(dates.physical().max()),
        users: train.height(),
        payers,
    })
}

fn zeros(values: Result<Vec<Option<f64>>, ModelError>) -> Result<Vec<f64>, PredictError> {
    values
        .map(|v| v.into_iter().map(|x| x.unwrap_or(0.0)).collect())
        .map_err(|error| PredictError::Model { horizon: 0, error })
}
