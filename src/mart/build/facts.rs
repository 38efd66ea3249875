//! One row per real user with everything the per-campaign marts count of them.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, campaign_key};
use crate::features::real_first_installs;

/// The days N at which `mart.cohort_ltv` gives the cumulative revenue: a fixed ladder for
/// LTV curves, plus the observation window and every configured horizon.
pub fn checkpoints(params: &MartParams) -> Vec<u32> {
    let mut days: Vec<u32> = vec![1, 3, 7, 14, 30, 60, 90, 120, 180];
    days.push(params.window_days);
    days.extend(params.horizons.iter().copied());
    days.sort_unstable();
    days.dedup();
    days
}

/// Name of a user's revenue in their first `n` days.
pub(super) fn revenue_at(n: u32) -> String {
    format!("revenue_n{n}_micros")
}

/// Real users (see [`real_first_installs`]) with `user_key`, `install_ms`, `install_date`,
/// `channel`, `campaign_id` (organic keyed), `revenue_to_date_micros`, `active_d1`,
/// `active_d7` (an event on that day after install), the revenue at each checkpoint, and
/// from `user_ltv` (the prediction mart) `predicted` and per mart horizon
/// `pred_d<H>_micros` and `extrapolated_d<H>`.
///
/// Behaviour comes from `clean.user_daily` (one row per person, export day and day since
/// install), not from the events: a user's first N days are the rows with `day_n < N`, the
/// same 24-hour steps from install the models' labels use, and events before the install
/// already count as day 0 there. Revenue is in the reporting currency.
pub fn user_facts(
    installs: LazyFrame,
    user_daily: LazyFrame,
    user_ltv: LazyFrame,
    params: &MartParams,
) -> LazyFrame {
    let users = real_first_installs(installs).select([
        col("user_key"),
        col("install_ms"),
        col("install_date"),
        col("channel"),
        campaign_key(),
    ]);
    // Each checkpoint's revenue is a column before the group-by, so every aggregation is a
    // plain sum or any: a filter inside the aggregation is evaluated group by group, and with
    // a person per group over millions of daily rows that took seconds.
    let revenue = col("revenue_reporting_micros").fill_null(lit(0i64));
    let day = col("day_n");
    let mut columns = vec![
        col("user_key"),
        revenue.clone().alias("revenue_to_date_micros"),
        day.clone().eq(lit(1i32)).alias("active_d1"),
        day.clone().eq(lit(7i32)).alias("active_d7"),
    ];
    let mut aggs = vec![
        col("revenue_to_date_micros").sum(),
        col("active_d1").any(true),
        col("active_d7").any(true),
    ];
    let ladder = checkpoints(params);
    for &n in &ladder {
        let name = revenue_at(n);
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        columns.push(
            when(day.clone().lt(lit(n)))
                .then(revenue.clone())
                .otherwise(lit(0i64))
                .alias(name.as_str()),
        );
        aggs.push(col(name).sum());
    }
    let per_user = user_daily
        .select(columns)
        .group_by([col("user_key")])
        .agg(aggs);

    let mut predicted = vec![col("user_key"), lit(true).alias("predicted")];
    for h in MART_HORIZONS {
        predicted.push(col(format!("pred_d{h}_micros")));
        predicted.push(col(format!("extrapolated_d{h}")));
    }
    let mut filled = vec![
        col("revenue_to_date_micros").fill_null(lit(0i64)),
        col("active_d1").fill_null(lit(false)),
        col("active_d7").fill_null(lit(false)),
        col("predicted").fill_null(lit(false)),
    ];
    for &n in &ladder {
        filled.push(col(revenue_at(n)).fill_null(lit(0i64)));
    }
    users
        .join(
            per_user,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            user_ltv.select(predicted),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns(filled)
}
