//! Naver Search Ad campaign days (`raw.naver_stats`): days cut in Asia/Seoul, spend in won
//! as billed (VAT included). `ccnt` mixes installs and purchases, so neither is reported;
//! `convAmt` is the purchases' value.

use polars::prelude::*;

pub(super) const TABLE: &str = "raw.naver_stats";

pub(super) fn columns() -> Vec<(&'static str, Expr)> {
    vec![
        ("dt", col("dt")),
        ("channel", lit("naver")),
        ("account_id", col("customer_id")),
        ("account_timezone", lit("Asia/Seoul")),
        ("campaign_id", col("campaign_id")),
        ("campaign_name", col("campaign_name")),
        ("currency", col("currency")),
        ("spend_micros", col("spend_micros")),
        ("impressions", col("impressions")),
        ("clicks", col("clicks")),
        ("purchase_value_micros", col("conversion_value_micros")),
        ("pulled_at", col("pulled_at")),
    ]
}
