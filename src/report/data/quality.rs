//! The data-quality reads: rule counts of the range, and the latest lists of unmapped
//! campaigns and new events.

use chrono::NaiveDate;
use polars::prelude::*;

use super::{Period, collect, polars, scan};
use crate::lake::{DateRange, Lake};
use crate::report::ReportError;
use crate::report::frame::{dates, floats, ints, keys, strings};
use crate::schema::Registry;

#[derive(Debug, Clone, PartialEq)]
pub struct QualityRow {
    pub stage: String,
    pub source: String,
    pub rule: String,
    pub days: i64,
    pub rows_in: i64,
    pub rows_out: i64,
    pub removed: i64,
    pub changed: i64,
}

/// One source partition through all its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityDay {
    pub dt: NaiveDate,
    pub stage: String,
    pub source: String,
    pub rows_in: i64,
    pub rows_out: i64,
    pub removed: i64,
    pub changed: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnmappedRow {
    pub side: String,
    pub channel: String,
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub first_seen: Option<NaiveDate>,
    pub last_seen: Option<NaiveDate>,
    pub spend: i64,
    pub installs: i64,
    pub suggested_id: Option<String>,
    pub suggested_name: Option<String>,
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEventRow {
    pub event: String,
    pub first_seen: Option<NaiveDate>,
    pub events: i64,
    pub suggested: Option<String>,
    pub distance: Option<i64>,
}

/// `mart.data_quality` of the period: totals per stage, source and rule, and per source
/// partition (rows in before the first rule, out after the last).
pub(super) async fn quality(
    lake: &Lake,
    period: Period,
) -> Result<(Vec<QualityRow>, Vec<QualityDay>), ReportError> {
    let lf = scan(lake, "mart.data_quality", period.range()).await?;
    let int = |name: &str| col(name).cast(DataType::Int64);
    let df = collect(
        lf.clone()
            .group_by([col("stage"), col("source"), col("rule")])
            .agg([
                int("step").min().alias("step"),
                col("dt").n_unique().cast(DataType::Int64).alias("days"),
                int("rows_in").sum().alias("rows_in"),
                int("rows_out").sum().alias("rows_out"),
                int("rows_removed").sum().alias("removed"),
                int("rows_changed").sum().alias("changed"),
            ])
            .sort(["stage", "source", "step"], SortMultipleOptions::default()),
        "mart.data_quality by rule",
    )?;
    let p = polars("reading mart.data_quality");
    let stage = keys(&df, "stage").map_err(&p)?;
    let source = keys(&df, "source").map_err(&p)?;
    let rule = keys(&df, "rule").map_err(&p)?;
    let days = ints(&df, "days").map_err(&p)?;
    let rows_in = ints(&df, "rows_in").map_err(&p)?;
    let rows_out = ints(&df, "rows_out").map_err(&p)?;
    let removed = ints(&df, "removed").map_err(&p)?;
    let changed = ints(&df, "changed").map_err(&p)?;
    let rows = (0..df.height())
        .map(|k| QualityRow {
            stage: stage[k].clone(),
            source: source[k].clone(),
            rule: rule[k].clone(),
            days: days[k].unwrap_or(0),
            rows_in: rows_in[k].unwrap_or(0),
            rows_out: rows_out[k].unwrap_or(0),
            removed: removed[k].unwrap_or(0),
            changed: changed[k].unwrap_or(0),
        })
        .collect();

    let df = collect(
        lf.group_by([col("dt"), col("stage"), col("source")])
            .agg([
                int("rows_in")
                    .sort_by([col("step")], SortMultipleOptions::default())
                    .first()
                    .alias("rows_in"),
                int("rows_out")
                    .sort_by([col("step")], SortMultipleOptions::default())
                    .last()
                    .alias("rows_out"),
                int("rows_removed").sum().alias("removed"),
                int("rows_changed").sum().alias("changed"),
            ])
            .sort(["dt", "stage", "source"], SortMultipleOptions::default()),
        "mart.data_quality by partition",
    )?;
    let dt = dates(&df, "dt").map_err(&p)?;
    let stage = keys(&df, "stage").map_err(&p)?;
    let source = keys(&df, "source").map_err(&p)?;
    let rows_in = ints(&df, "rows_in").map_err(&p)?;
    let rows_out = ints(&df, "rows_out").map_err(&p)?;
    let removed = ints(&df, "removed").map_err(&p)?;
    let changed = ints(&df, "changed").map_err(&p)?;
    let days = (0..df.height())
        .filter_map(|k| {
            Some(QualityDay {
                dt: dt[k]?,
                stage: stage[k].clone(),
                source: source[k].clone(),
                rows_in: rows_in[k].unwrap_or(0),
                rows_out: rows_out[k].unwrap_or(0),
                removed: removed[k].unwrap_or(0),
                changed: changed[k].unwrap_or(0),
            })
        })
        .collect();
    Ok((rows, days))
}

/// The latest partition of a clean table written "as of the run's last day".
async fn latest(lake: &Lake, name: &str) -> Result<(Option<NaiveDate>, LazyFrame), ReportError> {
    let registry = Registry::embedded()?;
    let table = registry.get(name)?;
    let last = lake.partitions(table).await?.into_iter().max();
    let lf = match last {
        Some(d) => lake.scan(table, DateRange::day(d)).await?,
        None => lake.scan(table, DateRange::all()).await?,
    };
    Ok((last, lf))
}

pub(super) async fn unmapped(
    lake: &Lake,
) -> Result<(Option<NaiveDate>, Vec<UnmappedRow>), ReportError> {
    let (as_of, lf) = latest(lake, "clean.unmapped_campaigns").await?;
    let df = collect(
        lf.sort(
            ["side", "spend_reporting_micros", "installs"],
            SortMultipleOptions::default().with_order_descending_multi([false, true, true]),
        ),
        "clean.unmapped_campaigns",
    )?;
    let p = polars("reading clean.unmapped_campaigns");
    let side = keys(&df, "side").map_err(&p)?;
    let channel = keys(&df, "channel").map_err(&p)?;
    let campaign = keys(&df, "campaign_id").map_err(&p)?;
    let name = strings(&df, "campaign_name").map_err(&p)?;
    let first = dates(&df, "first_seen").map_err(&p)?;
    let last = dates(&df, "last_seen").map_err(&p)?;
    let spend = ints(&df, "spend_reporting_micros").map_err(&p)?;
    let installs = ints(&df, "installs").map_err(&p)?;
    let sid = strings(&df, "suggested_campaign_id").map_err(&p)?;
    let sname = strings(&df, "suggested_campaign_name").map_err(&p)?;
    let score = floats(&df, "suggestion_score").map_err(&p)?;
    let rows = (0..df.height())
        .map(|k| UnmappedRow {
            side: side[k].clone(),
            channel: channel[k].clone(),
            campaign_id: campaign[k].clone(),
            campaign_name: name[k].clone(),
            first_seen: first[k],
            last_seen: last[k],
            spend: spend[k].unwrap_or(0),
            installs: installs[k].unwrap_or(0),
            suggested_id: sid[k].clone(),
            suggested_name: sname[k].clone(),
            score: score[k],
        })
        .collect();
    Ok((as_of, rows))
}

pub(super) async fn new_events(
    lake: &Lake,
) -> Result<(Option<NaiveDate>, Vec<NewEventRow>), ReportError> {
    let (as_of, lf) = latest(lake, "clean.new_events").await?;
    let df = collect(
        lf.sort(
            ["events"],
            SortMultipleOptions::default().with_order_descending(true),
        ),
        "clean.new_events",
    )?;
    let p = polars("reading clean.new_events");
    let event = keys(&df, "event").map_err(&p)?;
    let first = dates(&df, "first_seen").map_err(&p)?;
    let events = ints(&df, "events").map_err(&p)?;
    let suggested = strings(&df, "suggested_event").map_err(&p)?;
    let distance = ints(&df, "distance").map_err(&p)?;
    let rows = (0..df.height())
        .map(|k| NewEventRow {
            event: event[k].clone(),
            first_seen: first[k],
            events: events[k].unwrap_or(0),
            suggested: suggested[k].clone(),
            distance: distance[k],
        })
        .collect();
    Ok((as_of, rows))
}
