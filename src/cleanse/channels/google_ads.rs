//! Google Ads campaign days (`raw.google_ads_campaign_daily`): campaign level only, the
//! customer's own time zone, cost already in micros.

use polars::prelude::*;

pub(super) const TABLE: &str = "raw.google_ads_campaign_daily";

pub(super) fn columns() -> Vec<(&'static str, Expr)> {
    vec![
        ("dt", col("dt")),
        ("channel", lit("google_ads")),
        ("account_id", col("customer_id")),
        ("account_timezone", col("customer_time_zone")),
        ("campaign_id", col("campaign_id")),
        ("campaign_name", col("campaign_name")),
        ("currency", col("currency")),
        ("spend_micros", col("cost_micros")),
        ("impressions", col("impressions")),
        ("clicks", col("clicks")),
        // App campaigns convert on installs; data-driven attribution makes them fractional.
        (
            "installs",
            col("conversions").round(0, RoundMode::HalfAwayFromZero),
        ),
        ("pulled_at", col("pulled_at")),
    ]
}
