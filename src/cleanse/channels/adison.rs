//! Adison's dropped report (`raw.adison_report`): ads within campaigns, no ad sets, and no
//! account in the file (one advertiser per drop), so the account is the constant
//! [`ACCOUNT`].

use polars::prelude::*;

pub(super) const TABLE: &str = "raw.adison_report";

/// The account of every Adison row: its report names none.
pub const ACCOUNT: &str = "adison";

pub(super) fn columns() -> Vec<(&'static str, Expr)> {
    vec![
        ("dt", col("dt")),
        ("channel", lit("adison")),
        ("account_id", lit(ACCOUNT)),
        ("campaign_id", col("campaign_id")),
        ("campaign_name", col("campaign_name")),
        ("ad_id", col("ad_id")),
        ("ad_name", col("ad_name")),
        ("currency", col("currency")),
        ("spend_micros", col("spend_micros")),
        ("impressions", col("impressions")),
        ("clicks", col("clicks")),
        ("installs", col("installs")),
        ("pulled_at", col("pulled_at")),
    ]
}
