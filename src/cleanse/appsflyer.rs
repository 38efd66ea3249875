//! AppsFlyer's raw reports, one partition at a time: installs (paid, organic and Protect360
//! blocked) into one shape, and Protect360's verdicts as fraud signals by AppsFlyer id. The
//! verdicts are applied to installs by the process stage, since a post-attribution detection
//! can arrive days after the install it condemns.

use polars::prelude::*;

use super::dedup::{APPSFLYER_INSTALL_KEY, DUPLICATE, mark_key_duplicates};
use super::normalise::{channel_of_media_source, local_date, platform};
use super::reject::{reject_where, with_reject};

/// The install reports and whether Protect360 blocked their installs.
pub const INSTALL_TABLES: [(&str, bool); 3] = [
    ("raw.appsflyer_installs_report", false),
    ("raw.appsflyer_organic_installs_report", false),
    ("raw.appsflyer_blocked_installs_report", true),
];

/// Protect360's reports and the signal each gives, with the column holding its reason.
pub const FRAUD_TABLES: [(&str, &str, &str); 3] = [
    (
        "raw.appsflyer_blocked_installs_report",
        "p360 blocked install",
        "blocked_reason",
    ),
    (
        "raw.appsflyer_detection",
        "p360 post-attribution",
        "fraud_reason",
    ),
    (
        "raw.appsflyer_fraud_post_inapps",
        "p360 in-app fraud",
        "fraud_reason",
    ),
];

/// The in-app event reports: read only for the identifiers they pair.
pub const EVENT_TABLES: [&str; 2] = [
    "raw.appsflyer_in_app_events_report",
    "raw.appsflyer_organic_in_app_events_report",
];

/// The columns of `clean.af_installs` (`dt` included), in schema order.
pub const CLEAN_COLUMNS: [&str; 22] = [
    "dt",
    "appsflyer_id",
    "install_time",
    "report_date",
    "attributed_touch_time",
    "app_id",
    "platform",
    "country",
    "media_source",
    "channel",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "advertising_id",
    "customer_user_id",
    "ip",
    "app_version",
    "p360_blocked",
    "source_table",
];

/// One raw install report partition as `clean.af_installs` rows plus the reject reason.
pub fn clean_af_installs(raw: LazyFrame, table: &str, blocked: bool, zone: &TimeZone) -> LazyFrame {
    let lf = with_reject(raw);
    let lf = reject_malformed_installs(lf);
    let lf = reject_duplicate_installs(lf);
    let lf = normalise_installs(lf, table, blocked, zone);
    let mut columns: Vec<Expr> = CLEAN_COLUMNS.iter().map(|c| col(*c)).collect();
    columns.push(col(super::reject::REJECT));
    lf.select(columns).sort(
        ["install_time", "appsflyer_id"],
        SortMultipleOptions::default(),
    )
}

/// An install without an AppsFlyer id or an install time cannot be joined to anything.
pub fn reject_malformed_installs(lf: LazyFrame) -> LazyFrame {
    let lf = reject_where(
        lf,
        col("appsflyer_id")
            .is_null()
            .or(col("appsflyer_id").eq(lit(""))),
        "malformed",
        "appsflyer_id: missing",
    );
    reject_where(
        lf,
        col("install_time").is_null(),
        "malformed",
        "install_time: missing",
    )
}

/// One install of one app per AppsFlyer id and install time; of repeated rows the latest
/// pull is kept.
pub fn reject_duplicate_installs(lf: LazyFrame) -> LazyFrame {
    let lf = mark_key_duplicates(lf, &APPSFLYER_INSTALL_KEY, "pulled_at");
    reject_where(
        lf,
        col(DUPLICATE),
        "duplicate",
        "same app_id, appsflyer_id and install_time as another row",
    )
}

fn empty_to_null(c: &str) -> Expr {
    when(col(c).eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(col(c))
        .alias(c)
}

/// Canonical channel and platform, report date, the advertising id of either platform, and
/// empty texts as nulls.
pub fn normalise_installs(lf: LazyFrame, table: &str, blocked: bool, zone: &TimeZone) -> LazyFrame {
    lf.with_columns([
        local_date(col("install_time"), zone).alias("report_date"),
        platform(col("platform")).alias("platform"),
        col("country_code").alias("country"),
        channel_of_media_source(col("media_source")).alias("channel"),
        col("campaign").alias("campaign_name"),
        col("adset").alias("adset_name"),
        col("ad").alias("ad_name"),
        coalesce(&[col("advertising_id"), col("idfa")]).alias("advertising_id"),
        lit(blocked).alias("p360_blocked"),
        lit(table.to_string()).alias("source_table"),
    ])
    .with_columns(
        [
            "campaign_id",
            "campaign_name",
            "adset_id",
            "adset_name",
            "ad_id",
            "ad_name",
            "advertising_id",
            "customer_user_id",
            "ip",
            "app_version",
        ]
        .map(empty_to_null),
    )
}

/// Protect360's verdicts of one raw partition: one row per AppsFlyer id with the signal,
/// the first reason given and how many report rows carried it.
pub fn fraud_signals(raw: LazyFrame, signal: &str, reason_column: &str) -> LazyFrame {
    raw.filter(col("appsflyer_id").is_not_null())
        .group_by([col("appsflyer_id")])
        .agg([
            col(reason_column).drop_nulls().first().alias("reason"),
            len().cast(DataType::UInt64).alias("rows"),
        ])
        .with_column(lit(signal.to_string()).alias("signal"))
        .select([
            col("appsflyer_id"),
            col("signal"),
            col("reason"),
            col("rows"),
        ])
        .sort(["appsflyer_id"], SortMultipleOptions::default())
}
