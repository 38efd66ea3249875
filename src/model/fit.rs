//! What the backtest and the prediction stage share: which feature columns the models read,
//! the training and prediction rows, fitting the user-level models, and applying each kind.
//!
//! A backtest and a production fit must train the same way, or the backtest measures a model
//! nobody runs; so both go through this module.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::btyd::input::{AMOUNT, CUSTOMER, DATE};
use super::btyd::summary::{Calibration, customer_summaries, histories};
use super::btyd::{
    BgNbdModel, BtydError, GammaGammaModel, Period, RepeatSpend, bgnbd, gamma_gamma,
};
use super::design::{Design, floats, strings};
use super::hurdle::{Hurdle, HurdleParams, Rows};
use super::multiplier::Multiplier;
use crate::features::{DAY_MS, FeatureParams};

/// Columns of the feature frame that are not model inputs.
const NOT_FEATURES: [&str; 7] = [
    "user_key",
    "install_time",
    "install_date",
    "observation_days",
    "window_complete",
    "campaign_id",
    "install_ms",
];
/// Categorical model inputs.
pub const CATEGORICAL: [&str; 3] = ["platform", "country", "channel"];

/// The models ltv fits and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The main model: P(paying by the horizon) × E[revenue | paying].
    Hurdle,
    /// Revenue at day K × the mature cohorts' D-H / D-K ratio, per channel.
    Multiplier,
    /// BG/NBD + Gamma-Gamma on purchases.
    Btyd,
}

impl ModelKind {
    pub const ALL: [ModelKind; 3] = [ModelKind::Hurdle, ModelKind::Multiplier, ModelKind::Btyd];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Hurdle => "hurdle",
            ModelKind::Multiplier => "multiplier",
            ModelKind::Btyd => "btyd",
        }
    }

    pub fn parse(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Name of the label column at a horizon.
pub fn label_column(horizon_days: u32) -> String {
    format!("revenue_d{horizon_days}_micros")
}

/// Name of the maturity flag at a horizon.
pub fn mature_column(horizon_days: u32) -> String {
    format!("mature_at_d{horizon_days}")
}

/// Every numeric column of the features but labels, maturity flags and identifiers.
pub fn numeric_features(frame: &DataFrame) -> Vec<String> {
    frame
        .columns()
        .iter()
        .filter(|c| {
            let name = c.name().as_str();
            let numeric = c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean;
            numeric && !is_label_or_key(name)
        })
        .map(|c| c.name().to_string())
        .collect()
}

/// Identifiers, categorical inputs, horizon labels (`revenue_d<H>_micros`) and maturity
/// flags: columns a model must not read as numeric features.
fn is_label_or_key(name: &str) -> bool {
    let label = name.starts_with("revenue_d") && name.ends_with("_micros");
    NOT_FEATURES.contains(&name)
        || CATEGORICAL.contains(&name)
        || label
        || name.starts_with("mature_at_d")
}

/// The model rows of a feature frame; `label` may be absent (prediction), then the horizon
/// revenue is zero.
pub fn rows(design: &Design, df: &DataFrame, label: Option<&str>) -> Result<Rows, ModelError> {
    let zero = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.unwrap_or(0.0)).collect();
    Ok(Rows {
        x: design.rows(df)?,
        window_revenue_micros: zero(floats(df, "revenue_micros")?),
        horizon_revenue_micros: match label {
            Some(label) => zero(floats(df, label)?),
            None => vec![0.0; df.height()],
        },
    })
}

/// The user-level models fitted on one training frame at one horizon.
#[derive(Debug)]
pub struct UserModels {
    pub hurdle: Hurdle,
    pub multiplier: Multiplier,
    /// The training rows, for in-sample metrics.
    pub train_rows: Rows,
}

/// Fits the hurdle and the multiplier on `train` (users mature at `horizon_days`).
pub fn fit_user_models(
    train: &DataFrame,
    horizon_days: u32,
    params: &HurdleParams,
) -> Result<UserModels, ModelError> {
    let label = label_column(horizon_days);
    let numeric = numeric_features(train);
    let numeric: Vec<&str> = numeric.iter().map(String::as_str).collect();
    let design = Design::fit(train, &numeric, &CATEGORICAL)?;
    let train_rows = rows(&design, train, Some(&label))?;
    let hurdle = Hurdle::fit(design, &train_rows, params.clone())?;
    let channels = strings(train, "channel")?;
    let multiplier = Multiplier::fit(
        channels
            .iter()
            .zip(&train_rows.window_revenue_micros)
            .zip(&train_rows.horizon_revenue_micros)
            .map(|((c, k), h)| (c.as_deref().unwrap_or(""), *k, *h)),
    );
    Ok(UserModels {
        hurdle,
        multiplier,
        train_rows,
    })
}

/// The multiplier's predictions for a frame's users.
pub fn multiplier_predictions(
    multiplier: &Multiplier,
    frame: &DataFrame,
    rows: &Rows,
) -> Result<Vec<f64>, ModelError> {
    Ok(strings(frame, "channel")?
        .iter()
        .zip(&rows.window_revenue_micros)
        .map(|(c, k)| multiplier.predict(c.as_deref().unwrap_or(""), *k))
        .collect())
}

/// Why the BTYD baseline could not run (it is skipped, not fatal: a young app may have no
/// repeat buyers yet).
#[derive(Debug, thiserror::Error)]
pub enum BtydSkip {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Btyd(#[from] BtydError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A fitted BTYD pair and its predictions.
#[derive(Debug)]
pub struct BtydFit {
    pub bgnbd: BgNbdModel,
    pub gamma_gamma: GammaGammaModel,
    pub predictions: Vec<f64>,
}

/// The BTYD baseline at `now` (midnight UTC starting that day): BG/NBD and Gamma-Gamma
/// fitted on every purchase before it (periods of a day; a customer is born at their first
/// purchase, as in the literature); for each user of `users` (`user_key`, `install_time`)
/// the revenue they brought before `now` (and before their horizon), plus the expected repeat
/// purchases from `now` to their horizon times their expected spend. A user who has not
/// bought is not a customer to BTYD and keeps their (zero) revenue: the model's known blind
/// spot.
pub fn btyd_predictions(
    known_events: LazyFrame,
    now: NaiveDate,
    users: &DataFrame,
    horizon_days: u32,
) -> Result<BtydFit, BtydSkip> {
    let known = PurchaseHistories::of(known_events, now)?;
    let bg = bgnbd::fit(&known.customers)?;
    let repeat: Vec<RepeatSpend> = known
        .customers
        .iter()
        .zip(&known.spends)
        .filter_map(|(c, m)| {
            m.filter(|m| *m > 0.0 && c.frequency > 0)
                .map(|mean_spend| RepeatSpend {
                    frequency: c.frequency,
                    mean_spend,
                })
        })
        .collect();
    let gg = gamma_gamma::fit(&repeat)?;
    let predictions = known.predict(&bg, &gg, users, horizon_days)?;
    Ok(BtydFit {
        bgnbd: bg,
        gamma_gamma: gg,
        predictions,
    })
}

/// [`btyd_predictions`] with a BTYD pair fitted earlier (a saved artifact): the users'
/// purchase histories to `now` are read from `known_events`, the parameters are not refitted.
/// The events need only hold the predicted users' purchases.
pub fn btyd_predictions_with(
    bgnbd: &BgNbdModel,
    gamma_gamma: &GammaGammaModel,
    known_events: LazyFrame,
    now: NaiveDate,
    users: &DataFrame,
    horizon_days: u32,
) -> Result<Vec<f64>, BtydSkip> {
    PurchaseHistories::of(known_events, now)?.predict(bgnbd, gamma_gamma, users, horizon_days)
}

/// Every customer's purchase history before `now`, as BTYD reads it.
struct PurchaseHistories {
    now: NaiveDate,
    /// `user_key`, `time`, `revenue_reporting_micros` (Float64) of the purchases.
    purchases: LazyFrame,
    /// Customer index by `user_key`.
    by_key: BTreeMap<String, usize>,
    customers: Vec<super::btyd::CustomerHistory>,
    spends: Vec<Option<f64>>,
}

impl PurchaseHistories {
    fn of(known_events: LazyFrame, now: NaiveDate) -> Result<Self, BtydSkip> {
        let now_ms = midnight_ms(now);
        let purchases = known_events
            .filter(
                col("event")
                    .eq(lit(FeatureParams::default().purchase_event))
                    .and(col("user_key").is_not_null())
                    .and(col("time").cast(DataType::Int64).lt(lit(now_ms))),
            )
            .select([
                col("user_key"),
                col("time"),
                col("revenue_reporting_micros")
                    .cast(DataType::Float64)
                    .fill_null(lit(0.0)),
            ]);
        let transactions = purchases.clone().select([
            col("user_key").alias(CUSTOMER),
            col("time").dt().date().alias(DATE),
            col("revenue_reporting_micros").alias(AMOUNT),
        ]);
        let window = Calibration {
            end: now.pred_opt().unwrap_or(now),
            period: Period::Day,
        };
        let summaries = customer_summaries(transactions, &window, true).collect()?;
        let (customers, spends) = histories(&summaries)?;
        let by_key: BTreeMap<String, usize> = strings(&summaries, CUSTOMER)?
            .into_iter()
            .enumerate()
            .filter_map(|(i, k)| Some((k?, i)))
            .collect();
        Ok(PurchaseHistories {
            now,
            purchases,
            by_key,
            customers,
            spends,
        })
    }

    /// Each user's revenue before `now` (and their horizon) plus the pair's expected repeat
    /// revenue from `now` to their horizon.
    fn predict(
        &self,
        bg: &BgNbdModel,
        gg: &GammaGammaModel,
        users: &DataFrame,
        horizon_days: u32,
    ) -> Result<Vec<f64>, BtydSkip> {
        let now_ms = midnight_ms(self.now);
        let horizon_ms = i64::from(horizon_days) * DAY_MS;
        let seen = revenue_seen(self.purchases.clone(), users, horizon_ms)?;
        let keys = strings(users, "user_key")?;
        let installs = users
            .column("install_time")
            .and_then(|c| c.cast(&DataType::Int64))?;
        let installs = installs.i64()?;
        let predictions = keys
            .iter()
            .zip(installs.iter())
            .map(|(user, install)| {
                let seen = user
                    .as_ref()
                    .and_then(|u| seen.get(u))
                    .copied()
                    .unwrap_or(0.0);
                let Some(i) = user.as_ref().and_then(|u| self.by_key.get(u)) else {
                    return Ok(seen);
                };
                let c = &self.customers[*i];
                let end = install.unwrap_or(now_ms) + horizon_ms;
                let t = ((end - now_ms) as f64 / DAY_MS as f64).max(0.0);
                let repeats = bg.params.conditional_expected_repeats(c, t)?;
                let spend = gg.params.conditional_expected_spend(&RepeatSpend {
                    frequency: c.frequency,
                    mean_spend: self.spends[*i].unwrap_or(0.0),
                });
                Ok(seen + repeats * spend)
            })
            .collect::<Result<Vec<f64>, ModelError>>()?;
        Ok(predictions)
    }
}

/// Each user's purchase revenue before their horizon, among `purchases` (`user_key`, `time`,
/// `revenue_reporting_micros` as Float64).
fn revenue_seen(
    purchases: LazyFrame,
    users: &DataFrame,
    horizon_ms: i64,
) -> Result<BTreeMap<String, f64>, PolarsError> {
    let installs = users.select(["user_key", "install_time"])?.lazy().select([
        col("user_key"),
        col("install_time")
            .cast(DataType::Int64)
            .alias("_install_ms"),
    ]);
    let seen = purchases
        .join(
            installs,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("time")
                .cast(DataType::Int64)
                .lt(col("_install_ms") + lit(horizon_ms)),
        )
        .group_by([col("user_key")])
        .agg([col("revenue_reporting_micros").sum().alias("_seen")])
        .collect()?;
    let keys = seen.column("user_key")?.str()?.clone();
    let sums = seen.column("_seen")?.f64()?.clone();
    Ok(keys
        .iter()
        .zip(sums.iter())
        .filter_map(|(k, s)| Some((k?.to_string(), s.unwrap_or(0.0))))
        .collect())
}

/// Milliseconds since the epoch at midnight UTC starting `day`.
pub fn midnight_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default()
}
