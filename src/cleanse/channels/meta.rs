//! Meta insights at ad level (`raw.meta_insights_ad`) as clean rows: ids and names as sent,
//! `account_currency` as the row's currency, conversions from the flattened actions.

use polars::prelude::*;

use super::meta_actions::{OUTPUT_COLUMNS, flatten_actions, reject_unreadable_actions};

pub(super) const TABLE: &str = "raw.meta_insights_ad";

/// The actions JSON flattened per window; a row whose JSON cannot be read is rejected.
pub(super) fn prepare(lf: LazyFrame) -> LazyFrame {
    reject_unreadable_actions(flatten_actions(lf))
}

pub(super) fn columns() -> Vec<(&'static str, Expr)> {
    let mut c = vec![
        ("dt", col("dt")),
        ("channel", lit("facebook")),
        ("account_id", col("account_id")),
        ("campaign_id", col("campaign_id")),
        ("campaign_name", col("campaign_name")),
        ("adset_id", col("adset_id")),
        ("adset_name", col("adset_name")),
        ("ad_id", col("ad_id")),
        ("ad_name", col("ad_name")),
        ("currency", col("account_currency")),
        ("spend_micros", col("spend_micros")),
        ("impressions", col("impressions")),
        ("clicks", col("clicks")),
        ("pulled_at", col("pulled_at")),
    ];
    // The flattened columns already carry their clean names.
    c.extend(OUTPUT_COLUMNS.map(|n| (n, col(n))));
    c
}
