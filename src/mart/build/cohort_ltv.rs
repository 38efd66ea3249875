//! `mart.cohort_ltv`: LTV curves per install date and campaign, actual and predicted.

use polars::prelude::*;

use super::facts::revenue_at;
use super::{MART_HORIZONS, MartParams, checkpoints, complete_sum, micros_per};
use crate::features::DAY_MS;

/// One row per install date, channel, campaign and checkpoint day N (see [`checkpoints`]):
/// the cohort's actual revenue of the first N days once every user has had them, and the
/// predicted revenue at N where N is a configured horizon and every user is predicted.
pub fn cohort_ltv(facts: LazyFrame, params: &MartParams) -> PolarsResult<LazyFrame> {
    let ladder = checkpoints(params);
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("users"),
        col("install_ms").max().alias("_last_install_ms"),
    ];
    for &n in &ladder {
        aggs.push(col(revenue_at(n)).sum().alias(revenue_at(n)));
    }
    for h in MART_HORIZONS {
        if params.predicted(h) {
            aggs.push(complete_sum(col(format!("pred_d{h}_micros"))).alias(format!("_pred_d{h}")));
            aggs.push(
                col(format!("extrapolated_d{h}"))
                    .fill_null(lit(false))
                    .any(true)
                    .alias(format!("_extrapolated_d{h}")),
            );
        }
    }
    let cohorts = facts
        .group_by([
            col("install_date").alias("dt"),
            col("channel"),
            col("campaign_id"),
        ])
        .agg(aggs);

    let rows: Vec<LazyFrame> = ladder
        .iter()
        .map(|&n| {
            let observed = (col("_last_install_ms") + lit(i64::from(n) * DAY_MS))
                .lt_eq(lit(params.data_end_ms));
            let actual = when(observed.clone())
                .then(col(revenue_at(n)))
                .otherwise(lit(NULL).cast(DataType::Int64));
            let (predicted, extrapolated) = if MART_HORIZONS.contains(&n) && params.predicted(n) {
                (
                    col(format!("_pred_d{n}")),
                    col(format!("_extrapolated_d{n}")),
                )
            } else {
                (lit(NULL).cast(DataType::Int64), lit(false))
            };
            cohorts.clone().select([
                col("dt"),
                col("channel"),
                col("campaign_id"),
                lit(params.currency.clone()).alias("currency"),
                lit(n).cast(DataType::UInt32).alias("day_n"),
                col("users"),
                observed.alias("observed"),
                actual.clone().alias("actual_revenue_micros"),
                micros_per(actual, col("users")).alias("actual_ltv_micros"),
                predicted.clone().alias("predicted_revenue_micros"),
                micros_per(predicted, col("users")).alias("predicted_ltv_micros"),
                extrapolated.alias("extrapolated"),
            ])
        })
        .collect();
    Ok(concat(rows, UnionArgs::default())?.sort(
        ["dt", "channel", "campaign_id", "day_n"],
        SortMultipleOptions::default(),
    ))
}
