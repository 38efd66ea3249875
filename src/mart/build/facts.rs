//! One row per real user with everything the per-campaign marts count of them.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, campaign_key};
use crate::features::{DAY_MS, events_since_install, real_first_installs};

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
/// Revenue is in the reporting currency (`revenue_reporting_micros`); events before the
/// install count as at it, as in the models' labels.
pub fn user_facts(
    installs: LazyFrame,
    events: LazyFrame,
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
    let revenue = col("revenue_reporting_micros").fill_null(lit(0i64));
    let day = col("_ms").floor_div(lit(DAY_MS));
    let mut aggs = vec![
        revenue.clone().sum().alias("revenue_to_date_micros"),
        day.clone().eq(lit(1i64)).any(true).alias("active_d1"),
        day.eq(lit(7i64)).any(true).alias("active_d7"),
    ];
    let ladder = checkpoints(params);
    for &n in &ladder {
        aggs.push(
            revenue
                .clone()
                .filter(col("_ms").lt(lit(i64::from(n) * DAY_MS)))
                .sum()
                .alias(revenue_at(n)),
        );
    }
    let per_user = events_since_install(
        events.select([
            col("user_key"),
            col("time"),
            col("revenue_reporting_micros"),
        ]),
        users.clone(),
    )
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
