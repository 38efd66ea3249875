//! Mixpanel's export, one raw partition (one project day) at a time: malformed rows and
//! duplicates out, revenue priced in the reporting currency, report dates added.

use polars::prelude::*;

use super::dedup::{DUPLICATE, mark_mixpanel_duplicates};
use super::fx::{reject_unknown_currency, with_reporting_amount};
use super::normalise::{local_date, platform, utc_date};
use super::reject::{REJECT, reject_where, reject_where_with, with_reject};

/// What normalisation needs to know: where the marketer sits and what they count money in.
#[derive(Clone)]
pub struct Normalisation {
    pub zone: TimeZone,
    pub reporting_currency: String,
    /// The dense FX table (`date`, `currency`, `usd_per_unit`), see [`super::fx::fx_table`].
    pub fx: LazyFrame,
}

/// The columns of `clean.mixpanel_events` the plan yields (`dt` included), in schema order.
pub const CLEAN_COLUMNS: [&str; 17] = [
    "dt",
    "line",
    "event",
    "time",
    "report_date",
    "distinct_id",
    "device_id",
    "user_id",
    "appsflyer_id",
    "insert_id",
    "platform",
    "country",
    "revenue_micros",
    "currency",
    "reporting_currency",
    "revenue_reporting_micros",
    // Not a table column: the reject reason the stage splits on.
    REJECT,
];

/// The whole plan for one raw partition of `raw.mixpanel_export`: the clean columns plus
/// the reject reason, in the raw partition's order (export line order: the connector lands
/// one body's lines in order, and no rule here moves a row).
pub fn clean_mixpanel_events(raw: LazyFrame, key: &[String], norm: &Normalisation) -> LazyFrame {
    let lf = with_reject(raw);
    let lf = reject_malformed_events(lf, norm.fx.clone());
    let lf = reject_duplicate_events(lf, key);
    finish_events(lf, norm)
}

/// The plan's steps after the duplicates, row by row: the report date and the reporting
/// currency, in the clean columns. Shared with the batches of a large day
/// ([`super::batches`]).
pub fn finish_events(lf: LazyFrame, norm: &Normalisation) -> LazyFrame {
    let lf = lf.with_column(utc_date(col("time")).alias(FX_DATE));
    let lf = normalise_events(lf, norm);
    lf.select(CLEAN_COLUMNS.map(col))
}

/// The UTC day whose rate prices a row's revenue.
const FX_DATE: &str = "_fx_date";

/// The same rules as [`clean_mixpanel_events`], collected after every rule: the eager
/// plan a pandas-style job would run (every column read, every step materialised). Kept for
/// the benchmark that shows what the single lazy plan saves.
pub fn clean_mixpanel_events_eager(
    raw: LazyFrame,
    key: &[String],
    norm: &Normalisation,
) -> PolarsResult<DataFrame> {
    let df = with_reject(raw.collect()?.lazy()).collect()?;
    let df = reject_malformed_events(df.lazy(), norm.fx.clone()).collect()?;
    let df = reject_duplicate_events(df.lazy(), key).collect()?;
    let df = df
        .lazy()
        .with_column(utc_date(col("time")).alias(FX_DATE))
        .collect()?;
    let df = normalise_events(df.lazy(), norm).collect()?;
    df.lazy().select(CLEAN_COLUMNS.map(col)).collect()
}

/// Rows the parser could not read (`malformed`), negative revenue, revenue without a
/// currency, and a currency with no rate in `fx` (the dense FX table) on the row's UTC day:
/// none of them can be priced, so none may reach a revenue sum. All of them come before the
/// duplicate rule, which ignores rejected rows: a garbled resend that Mixpanel ingested first
/// (say in a currency no one prices) must not make the sound send look like its duplicate.
pub fn reject_malformed_events(lf: LazyFrame, fx: LazyFrame) -> LazyFrame {
    reject_unpriced_events(reject_unreadable_events(lf), fx)
}

/// The malformed rules a row decides alone: what the parser could not read, negative
/// revenue, revenue without a currency.
pub fn reject_unreadable_events(lf: LazyFrame) -> LazyFrame {
    let lf = reject_where_with(
        lf,
        col("malformed").is_not_null(),
        "malformed",
        col("malformed"),
    );
    let lf = reject_where(lf, col("time").is_null(), "malformed", "time: missing");
    let lf = reject_where_with(
        lf,
        col("revenue_micros").lt(lit(0i64)),
        "malformed",
        concat_str(
            [
                lit("revenue: negative ("),
                col("revenue_micros").cast(DataType::String),
                lit(" micros)"),
            ],
            "",
            true,
        ),
    );
    reject_where(
        lf,
        col("revenue_micros")
            .is_not_null()
            .and(col("currency").is_null()),
        "malformed",
        "currency: revenue without a currency",
    )
}

/// The malformed rule that needs the FX table `fx`: a currency with no rate on the row's UTC
/// day.
pub fn reject_unpriced_events(lf: LazyFrame, fx: LazyFrame) -> LazyFrame {
    let lf = lf.with_column(utc_date(col("time")).alias(FX_DATE));
    reject_unknown_currency(lf, "currency", FX_DATE, fx).drop(cols([FX_DATE]))
}

/// Mixpanel's duplicate rule by `key` (see [`mark_mixpanel_duplicates`]).
pub fn reject_duplicate_events(lf: LazyFrame, key: &[String]) -> LazyFrame {
    let lf = mark_mixpanel_duplicates(lf, key);
    reject_where(lf, col(DUPLICATE), "duplicate", DUPLICATE_DETAIL)
}

/// What a duplicate's quarantine reason says after `duplicate: `.
const DUPLICATE_DETAIL: &str =
    "same event, distinct_id and $insert_id as an earlier row of the day";

/// Rejects as duplicates the rows whose `line` is in `lines`: the day's duplicates, found
/// beforehand (see [`super::batches::duplicate_lines`]), with the reason
/// [`reject_duplicate_events`] gives them.
pub fn reject_listed_duplicates(lf: LazyFrame, lines: &Series) -> LazyFrame {
    let listed = col("line").is_in(lit(lines.clone()).implode(false), false);
    reject_where(lf, listed, "duplicate", DUPLICATE_DETAIL)
}

/// Report date, canonical platform, and revenue in the reporting currency at the FX rate of
/// the UTC day the money moved (the frame's `_fx_date`).
pub fn normalise_events(lf: LazyFrame, norm: &Normalisation) -> LazyFrame {
    let lf = lf.with_columns([
        local_date(col("time"), &norm.zone).alias("report_date"),
        platform(col("os")).alias("platform"),
        col("country_code").alias("country"),
        lit(norm.reporting_currency.clone()).alias("reporting_currency"),
    ]);
    with_reporting_amount(
        lf,
        "revenue_micros",
        "currency",
        FX_DATE,
        norm.fx.clone(),
        &norm.reporting_currency,
        "revenue_reporting_micros",
    )
}
