//! The marts as lazy plans over the clean layer and the predictions (`mart.user_ltv`): one
//! function per mart, each `LazyFrame`s in, `LazyFrame` out, in the column order of its
//! schema under `schemas/mart/`.
//!
//! - [`user_facts`] (facts.rs): one row per real user (first install, neither fraud nor
//!   test) with what the marts count of them: revenue to date, activity on days 1 and 7,
//!   revenue at each curve checkpoint, and their predictions. Collected once per run; every
//!   per-campaign mart aggregates it. Its behaviour columns are [`user_totals`] of
//!   `clean.user_daily`, which add up over runs of days ([`add_user_totals`]).
//! - [`campaign_daily`], [`cohort_ltv`], [`channel_summary`]: per install date and campaign
//!   or channel.
//! - [`user_ltv`]: the prediction run's users as the mart.
//! - [`data_quality`]: the clean layer's rule counts for people.
//!
//! Organic installs have no campaign; the marts key them as campaign [`NO_CAMPAIGN`] so that
//! every key column is a value a BI tool can filter on.

mod campaign_daily;
mod channel_summary;
mod cohort_ltv;
mod data_quality;
mod facts;
mod user_ltv;

use polars::prelude::*;

pub use campaign_daily::campaign_daily;
pub use channel_summary::channel_summary;
pub use cohort_ltv::cohort_ltv;
pub use data_quality::data_quality;
pub use facts::{add_user_totals, checkpoints, user_facts, user_totals};
pub use user_ltv::{model_label, user_ltv};

/// The campaign key of installs without a campaign (organic).
pub const NO_CAMPAIGN: &str = "(none)";

/// The horizons the mart schemas carry columns for; a configured horizon outside them is
/// predicted (and printed) but has no mart column, and one of them that is not configured
/// is null.
pub const MART_HORIZONS: [u32; 3] = [30, 90, 180];

/// What every mart plan needs besides its frames.
#[derive(Debug, Clone)]
pub struct MartParams {
    /// ISO 4217 code of the reporting currency (the money columns' unit).
    pub currency: String,
    /// The configured horizons, ascending.
    pub horizons: Vec<u32>,
    /// Observation window K of the predictions.
    pub window_days: u32,
    /// The last event's time, epoch milliseconds: a day N is observed for a user when
    /// install + N days is at or before it.
    pub data_end_ms: i64,
}

impl MartParams {
    /// The mart horizons that are also configured.
    fn predicted(&self, h: u32) -> bool {
        self.horizons.contains(&h)
    }
}

/// `campaign_id` with organic's null as [`NO_CAMPAIGN`].
fn campaign_key() -> Expr {
    col("campaign_id")
        .fill_null(lit(NO_CAMPAIGN))
        .alias("campaign_id")
}

/// A typed null of `dtype` named `name`.
fn null_of(dtype: DataType, name: &str) -> Expr {
    lit(NULL).cast(dtype).alias(name)
}

/// `num / den` as Float64; null when `den` is zero or either is null.
fn ratio(num: Expr, den: Expr) -> Expr {
    when(den.clone().gt(lit(0)))
        .then(num.cast(DataType::Float64) / den.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// `num / den` rounded to whole micros (Int64); null when `den` is zero or either is null.
fn micros_per(num: Expr, den: Expr) -> Expr {
    ratio(num, den)
        .round(0, RoundMode::HalfAwayFromZero)
        .cast(DataType::Int64)
}

/// The sum of `expr` over the group, null when any value of the group is null (a total
/// that misses a part is not a total).
fn complete_sum(expr: Expr) -> Expr {
    when(expr.clone().null_count().gt(lit(0)))
        .then(lit(NULL).cast(DataType::Int64))
        .otherwise(expr.sum().cast(DataType::Int64))
}
