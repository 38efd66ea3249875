//! Predicted ROAS per campaign: the value of its predicted installs over what they cost.
//!
//! Spend comes from `clean.campaign_daily` over the install dates the predictions cover,
//! keyed like the installs (`channel`, `attribution_campaign_id` = the installs'
//! `campaign_id`). Test campaigns' spend is left out: their installs are test data and
//! never predicted. Fraudulent installs are not predicted either, yet their spend counts:
//! a campaign that buys fraud pays for it, and its ROAS should show that.

use polars::prelude::*;

/// Spend in reporting-currency micros per channel and attribution campaign, over the
/// campaign-daily rows dated `from..=to` (the predicted install dates).
pub fn campaign_spend(campaign_daily: LazyFrame, from: i32, to: i32) -> LazyFrame {
    let days = col("dt").cast(DataType::Int32);
    campaign_daily
        .filter(
            days.clone()
                .gt_eq(lit(from))
                .and(days.lt_eq(lit(to)))
                .and(col("is_test").not())
                .and(col("attribution_campaign_id").is_not_null()),
        )
        .group_by([col("channel"), col("attribution_campaign_id")])
        .agg([col("spend_reporting_micros").sum().alias("spend_micros")])
        .select([
            col("channel"),
            col("attribution_campaign_id").alias("campaign_id"),
            col("spend_micros"),
        ])
}

/// Adds `spend_micros` and, per horizon, `roas_d<H>` = pLTV × users / spend (null without
/// spend: organic traffic, or a campaign whose cost no source reports).
pub fn with_roas(campaigns: LazyFrame, spend: LazyFrame, horizons: &[u32]) -> LazyFrame {
    let ratios: Vec<Expr> = horizons
        .iter()
        .map(|h| {
            let value = col(format!("pltv_d{h}_micros")).cast(DataType::Float64)
                * col("users").cast(DataType::Float64);
            when(col("spend_micros").gt(lit(0)))
                .then(value / col("spend_micros").cast(DataType::Float64))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias(format!("roas_d{h}"))
        })
        .collect();
    campaigns
        .join(
            spend,
            [col("channel"), col("campaign_id")],
            [col("channel"), col("campaign_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns(ratios)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(days: &[i32]) -> Column {
        Column::new("dt".into(), days.to_vec())
            .cast(&DataType::Date)
            .unwrap()
    }

    #[test]
    fn roas_is_value_over_spend_of_the_predicted_days_only() {
        let daily = DataFrame::new_infer_height(vec![
            date(&[10, 11, 12, 11, 11]),
            Column::new("channel".into(), ["meta", "meta", "meta", "google", "meta"]),
            Column::new(
                "attribution_campaign_id".into(),
                [Some("c1"), Some("c1"), Some("c1"), Some("g1"), Some("t")],
            ),
            Column::new(
                "spend_reporting_micros".into(),
                [100_000_000i64, 200_000_000, 400_000_000, 50_000_000, 9],
            ),
            Column::new("is_test".into(), [false, false, false, false, true]),
        ])
        .unwrap()
        .lazy();
        let campaigns = DataFrame::new_infer_height(vec![
            Column::new("channel".into(), ["meta", "google", "organic"]),
            Column::new("campaign_id".into(), [Some("c1"), Some("g1"), None]),
            Column::new("users".into(), [30u64, 10, 50]),
            Column::new(
                "pltv_d90_micros".into(),
                [Some(5_000_000i64), Some(1_000_000), Some(2_000_000)],
            ),
        ])
        .unwrap()
        .lazy();
        let out = with_roas(campaigns, campaign_spend(daily, 10, 11), &[90])
            .collect()
            .unwrap();
        let spend: Vec<Option<i64>> = out
            .column("spend_micros")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        // Day 12 is outside the predicted installs; the test campaign never counts.
        assert_eq!(spend, [Some(300_000_000), Some(50_000_000), None]);
        let roas: Vec<Option<f64>> = out
            .column("roas_d90")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(roas[0], Some(30.0 * 5.0 / 300.0));
        assert_eq!(roas[1], Some(10.0 * 1.0 / 50.0));
        assert_eq!(roas[2], None);
    }
}
