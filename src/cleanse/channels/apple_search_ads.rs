//! Apple Search Ads campaign days (`raw.apple_search_ads_campaign_daily`): the org is the
//! account, taps are the clicks, installs are tap and view installs together.

use polars::prelude::*;

pub(super) const TABLE: &str = "raw.apple_search_ads_campaign_daily";

pub(super) fn columns() -> Vec<(&'static str, Expr)> {
    vec![
        ("dt", col("dt")),
        ("channel", lit("apple_search_ads")),
        ("account_id", col("org_id")),
        ("campaign_id", col("campaign_id")),
        ("campaign_name", col("campaign_name")),
        ("currency", col("currency")),
        ("spend_micros", col("local_spend_micros")),
        ("impressions", col("impressions")),
        ("clicks", col("taps")),
        ("installs", col("total_installs")),
        ("pulled_at", col("pulled_at")),
    ]
}
