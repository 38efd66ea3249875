//! `mart.campaign_daily`: per install date, channel and campaign.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, campaign_key, complete_sum, micros_per, null_of, ratio};
use crate::features::DAY_MS;

/// First installs that are not test data, keyed like the marts: `dt` (install date,
/// reporting zone), `channel`, `campaign_id`, with `is_fraud` and `campaign_name`.
fn first_installs(installs: LazyFrame) -> LazyFrame {
    installs
        .filter(col("is_first_install").and(col("is_test").not()))
        .select([
            col("report_date").alias("dt"),
            col("channel"),
            campaign_key(),
            col("campaign_name"),
            col("is_fraud"),
        ])
}

/// Fraudulent first installs and the campaign's name as attribution reports it, per key.
fn fraud_and_names(installs: LazyFrame) -> LazyFrame {
    first_installs(installs)
        .group_by([col("dt"), col("channel"), col("campaign_id")])
        .agg([
            col("is_fraud")
                .sum()
                .cast(DataType::Int64)
                .alias("fraud_installs"),
            col("campaign_name")
                .drop_nulls()
                .first()
                .alias("install_campaign_name"),
        ])
}

/// Spend per report date, channel and campaign in reporting-currency micros, keyed by the
/// attribution campaign id (the channel's own id while the campaign is unmapped), test
/// campaigns out.
pub(super) fn spend(channel_daily: LazyFrame) -> LazyFrame {
    channel_daily
        .filter(col("is_test").not())
        .with_column(coalesce(&[col("attribution_campaign_id"), col("campaign_id")]).alias("_key"))
        .group_by([col("dt"), col("channel"), col("_key")])
        .agg([
            col("spend_reporting_micros").sum().alias("spend_micros"),
            col("campaign_name")
                .drop_nulls()
                .first()
                .alias("channel_campaign_name"),
        ])
        .rename(["_key"], ["campaign_id"], true)
}

/// The users of each install date and campaign, counted.
fn cohorts(facts: LazyFrame, params: &MartParams) -> LazyFrame {
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("installs"),
        col("revenue_to_date_micros")
            .sum()
            .alias("revenue_to_date_micros"),
        col("active_d1")
            .sum()
            .cast(DataType::Int64)
            .alias("_active_d1"),
        col("active_d7")
            .sum()
            .cast(DataType::Int64)
            .alias("_active_d7"),
        col("install_ms").max().alias("_last_install_ms"),
        col("predicted")
            .sum()
            .cast(DataType::Int64)
            .alias("predicted_users"),
    ];
    let mut extrapolated = Vec::new();
    for h in MART_HORIZONS {
        let name = format!("pltv_d{h}_micros");
        aggs.push(if params.predicted(h) {
            complete_sum(col(format!("pred_d{h}_micros"))).alias(&name)
        } else {
            null_of(DataType::Int64, &name)
        });
        extrapolated.push(col(format!("extrapolated_d{h}")).fill_null(lit(false)));
    }
    aggs.push(
        any_horizontal(extrapolated)
            .unwrap_or_else(|_| lit(false))
            .any(true)
            .alias("extrapolated"),
    );
    facts
        .group_by([
            col("install_date").alias("dt"),
            col("channel"),
            col("campaign_id"),
        ])
        .agg(aggs)
}

/// Retention on day `n`: active users over installs, once every install of the cohort has
/// had day `n` whole.
fn retention(n: i64, active: &str, end_ms: i64) -> Expr {
    when((col("_last_install_ms") + lit((n + 1) * DAY_MS)).lt_eq(lit(end_ms)))
        .then(ratio(col(active), col("installs")))
        .otherwise(lit(NULL).cast(DataType::Float64))
        .alias(format!("retention_d{n}"))
}

/// `mart.campaign_daily` from the user facts, the clean installs (fraud, names) and
/// `clean.campaign_daily` (spend): one row per key any of them has.
pub fn campaign_daily(
    facts: LazyFrame,
    installs: LazyFrame,
    channel_daily: LazyFrame,
    params: &MartParams,
) -> LazyFrame {
    let keys = [col("dt"), col("channel"), col("campaign_id")];
    let full = || JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
    let joined = cohorts(facts, params)
        .join(
            fraud_and_names(installs),
            keys.clone(),
            keys.clone(),
            full(),
        )
        .join(spend(channel_daily), keys.clone(), keys, full());
    let mut out = vec![
        col("dt"),
        col("channel"),
        col("campaign_id"),
        coalesce(&[col("install_campaign_name"), col("channel_campaign_name")])
            .alias("campaign_name"),
        lit(params.currency.clone()).alias("currency"),
        col("spend_micros").fill_null(lit(0i64)),
        col("installs").fill_null(lit(0i64)),
        col("fraud_installs").fill_null(lit(0i64)),
        micros_per(col("spend_micros").fill_null(lit(0i64)), col("installs")).alias("cpi_micros"),
        col("revenue_to_date_micros").fill_null(lit(0i64)),
        retention(1, "_active_d1", params.data_end_ms),
        retention(7, "_active_d7", params.data_end_ms),
        col("predicted_users").fill_null(lit(0i64)),
    ];
    for h in MART_HORIZONS {
        out.push(col(format!("pltv_d{h}_micros")));
    }
    for h in MART_HORIZONS {
        out.push(
            ratio(col(format!("pltv_d{h}_micros")), col("spend_micros"))
                .alias(format!("roas_d{h}")),
        );
    }
    out.push(col("extrapolated").fill_null(lit(false)));
    joined.select(out).sort(
        ["dt", "channel", "campaign_id"],
        SortMultipleOptions::default(),
    )
}
