//! `mart.channel_summary`: every channel in one shape per date.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, complete_sum, micros_per, ratio};

/// What each channel reports of itself per date (test campaigns out).
fn channel_reported(channel_daily: LazyFrame) -> LazyFrame {
    channel_daily
        .filter(col("is_test").not())
        .group_by([col("dt"), col("channel")])
        .agg([
            col("impressions").sum().alias("impressions"),
            col("clicks").sum().alias("clicks"),
            col("installs").sum().alias("channel_installs"),
        ])
}

/// `mart.channel_summary` from `mart.campaign_daily` (this run's frame) and
/// `clean.campaign_daily`.
pub fn channel_summary(
    campaign_daily: LazyFrame,
    channel_daily: LazyFrame,
    params: &MartParams,
) -> LazyFrame {
    let mut aggs = vec![
        col("spend_micros").sum().alias("spend_micros"),
        col("installs").sum().alias("installs"),
        col("fraud_installs").sum().alias("fraud_installs"),
        col("revenue_to_date_micros")
            .sum()
            .alias("revenue_to_date_micros"),
    ];
    for h in MART_HORIZONS {
        let name = format!("pltv_d{h}_micros");
        // Campaigns that spent nothing and acquired nobody carry no prediction, and lack
        // none: only rows with installs count toward completeness.
        aggs.push(complete_sum(col(&name).filter(col("installs").gt(lit(0i64)))).alias(&name));
    }
    let keys = [col("dt"), col("channel")];
    let joined = campaign_daily.group_by(keys.clone()).agg(aggs).join(
        channel_reported(channel_daily),
        keys.clone(),
        keys,
        JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
    );
    let zero = |name: &str| col(name).fill_null(lit(0i64));
    let mut out = vec![
        col("dt"),
        col("channel"),
        lit(params.currency.clone()).alias("currency"),
        zero("spend_micros"),
        zero("impressions"),
        zero("clicks"),
        zero("channel_installs"),
        zero("installs"),
        zero("fraud_installs"),
        ratio(
            zero("fraud_installs"),
            zero("installs") + zero("fraud_installs"),
        )
        .alias("fraud_share"),
        micros_per(zero("spend_micros"), zero("installs")).alias("cpi_micros"),
        zero("revenue_to_date_micros"),
    ];
    for h in MART_HORIZONS {
        out.push(col(format!("pltv_d{h}_micros")));
    }
    for h in MART_HORIZONS {
        out.push(
            ratio(col(format!("pltv_d{h}_micros")), zero("spend_micros"))
                .alias(format!("roas_d{h}")),
        );
    }
    joined
        .select(out)
        .sort(["dt", "channel"], SortMultipleOptions::default())
}
