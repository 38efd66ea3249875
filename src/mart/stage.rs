//! The marts stage: build every mart from the lake's clean layer and predictions, write it
//! to the lake's `mart/` layer, and publish the lake's marts to MySQL.
//!
//! The lake is the source of truth: `publish` copies whole partitions from it, so MySQL
//! holds exactly what the lake holds (a rerun of publish after a failed one needs nothing
//! recomputed). The per-campaign marts are rebuilt over the whole history on every run (the
//! revenue and retention of older cohorts grow as their users keep paying) from compact
//! inputs: installs, per-person totals of `clean.user_daily` and the predictions, never the
//! raw events.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use futures::StreamExt;
use polars::prelude::*;
use serde::Serialize;

use super::build::{
    MartParams, campaign_daily, channel_summary, checkpoints, cohort_ltv, data_quality, user_facts,
    user_ltv,
};
use super::totals::history_user_totals;
use super::{HeldPartition, MartError, MysqlMart, PartitionVersion};
use crate::config::PipelineConfig;
use crate::features::{CriticalPathParams, FeatureError, critical_paths_at, epoch_ms};
use crate::lake::{DateRange, Lake, LakeError, Manifest, partition_day};
use crate::model::predict::Predictions;
use crate::schema::{Registry, SchemaError, TableSchema};

/// Every mart, in the order they are published.
pub const MART_TABLES: [&str; 8] = [
    "mart.campaign_daily",
    "mart.cohort_ltv",
    "mart.channel_summary",
    "mart.user_ltv",
    "mart.critical_path",
    "mart.critical_event_lift",
    "mart.data_quality",
    "mart.model_evaluation",
];

/// What the marts stage can fail on, each naming the mart.
#[derive(Debug, thiserror::Error)]
pub enum MartStageError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("building {table}: {source}")]
    Polars {
        table: &'static str,
        source: PolarsError,
    },
    #[error("building the critical-path marts: {0}")]
    Features(#[from] FeatureError),
    #[error("publishing {table} to MySQL: {source}")]
    Mysql { table: String, source: MartError },
    #[error("the clean layer has no events: run the cleanse, process and calculate stages first")]
    NoData,
}

/// What one mart's write did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MartWrite {
    /// Partitions written (to the lake) or copied (to MySQL).
    pub partitions: usize,
    /// Partitions left as they were: the lake's rewritten with the same bytes, or MySQL's
    /// already holding the lake's version.
    pub unchanged: usize,
    /// Rows of the partitions built (lake, unchanged ones included) or copied (MySQL).
    pub rows: u64,
    pub seconds: f64,
}

/// What the stage wrote, by qualified table name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MartOutput {
    pub tables: BTreeMap<String, MartWrite>,
}

impl MartOutput {
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// The mart parameters of a pipeline, for data ending at `data_end_ms`.
pub fn mart_params(config: &PipelineConfig, data_end_ms: i64) -> MartParams {
    let mut horizons = config.analysis.horizons.clone();
    horizons.sort_unstable();
    horizons.dedup();
    MartParams {
        currency: config.pipeline.reporting_currency.code().to_string(),
        horizons,
        window_days: config.analysis.primary_observation_days,
        data_end_ms,
    }
}

fn table(name: &str) -> Result<&'static TableSchema, MartStageError> {
    Ok(Registry::embedded()?.get(name)?)
}

/// Writes the predictions as `mart.user_ltv`, one partition per install date.
pub async fn write_user_ltv(
    config: &PipelineConfig,
    lake: &Lake,
    predictions: &Predictions,
) -> Result<MartWrite, MartStageError> {
    let started = Instant::now();
    let params = mart_params(config, predictions.data_end.timestamp_millis());
    let df = user_ltv(
        predictions.users.clone().lazy(),
        &predictions.horizons,
        &params,
    )
    .collect()
    .map_err(polars("mart.user_ltv"))?;
    write_days(lake, table("mart.user_ltv")?, df, started).await
}

/// When the marts stage rebuilds `mart.critical_path` and `mart.critical_event_lift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefresh {
    /// On every build (a recompute; an analyst's call).
    Always,
    /// Only when the newest `mart.critical_path` partition is at least this many days older
    /// than the data's end (the nightly run). The analysis reads every cohort's first week
    /// of events; a week's new cohorts move it little, so it is refreshed with the weekly
    /// backtest rather than paid for every night.
    WhenOlderThan(i64),
}

/// The last event's time in `clean.events`, epoch milliseconds, from its last two
/// partitions (a partition is an export day: later days hold later events).
pub async fn clean_data_end_ms(lake: &Lake) -> Result<i64, MartStageError> {
    let events = table("clean.events")?;
    let days = lake.partitions(events).await?;
    let (Some(&last), Some(&from)) = (days.last(), days.iter().rev().nth(1).or(days.last())) else {
        return Err(MartStageError::NoData);
    };
    let end = lake
        .scan(events, DateRange::new(from, last))
        .await?
        .select([epoch_ms(col("time")).max().alias("end")])
        .collect()
        .map_err(polars("clean.events: data end"))?;
    end.column("end")
        .and_then(|c| c.i64().map(|c| c.get(0)))
        .map_err(polars("clean.events: data end"))?
        .ok_or(MartStageError::NoData)
}

/// Builds the marts other than `mart.user_ltv` (the calculate stage's) and
/// `mart.model_evaluation` (the backtest's) from the lake and writes them to it.
///
/// What it reads over the whole history is compact: installs (a row per install), each
/// person's totals over `clean.user_daily` (kept between runs for the settled days, so only
/// the recent days' rows are read), the channels' daily rows and the predictions. The
/// events themselves are read only for the critical paths, only each person's first
/// `reach_hours`, and only when `paths` asks for them.
pub async fn build_marts(
    config: &PipelineConfig,
    lake: &Lake,
    paths: PathRefresh,
) -> Result<MartOutput, MartStageError> {
    let all = DateRange::all();
    // Installs and the channels' daily rows are read by several marts (and the installs by
    // the critical paths): each is read once, a file per day of the history.
    let installs = mart_installs(lake.scan(table("clean.installs")?, all).await?);
    let installs = tracing::debug_span!("read installs")
        .in_scope(|| installs.collect())
        .map_err(polars("clean.installs"))?
        .lazy();
    let channel_daily = lake.scan(table("clean.campaign_daily")?, all).await?;
    let channel_daily = tracing::debug_span!("read campaign_daily")
        .in_scope(|| channel_daily.collect())
        .map_err(polars("clean.campaign_daily"))?
        .lazy();
    let predictions = lake.scan(table("mart.user_ltv")?, all).await?;
    let quality = lake.scan(table("clean.data_quality")?, all).await?;

    let data_end_ms = clean_data_end_ms(lake).await?;
    let params = mart_params(config, data_end_ms);
    let mut out = MartOutput::default();

    let started = Instant::now();
    let totals = history_user_totals(
        lake,
        config.analysis.restatement_days,
        &checkpoints(&params),
    )
    .await?;
    let totals = tracing::debug_span!("totals")
        .in_scope(|| totals.collect())
        .map_err(polars("per-user totals"))?;
    // The predictions stay a scan: the facts read a few of their columns.
    let facts = tracing::debug_span!("user_facts")
        .in_scope(|| user_facts(installs.clone(), totals.lazy(), predictions, &params).collect())
        .map_err(polars("user facts"))?;
    let daily = campaign_daily(
        facts.clone().lazy(),
        installs.clone(),
        channel_daily.clone(),
        &params,
    )
    .collect()
    .map_err(polars("mart.campaign_daily"))?;
    let write = write_days(lake, table("mart.campaign_daily")?, daily.clone(), started).await?;
    out.tables.insert("mart.campaign_daily".into(), write);

    let started = Instant::now();
    let cohorts = cohort_ltv(facts.lazy(), &params)
        .and_then(LazyFrame::collect)
        .map_err(polars("mart.cohort_ltv"))?;
    let write = write_days(lake, table("mart.cohort_ltv")?, cohorts, started).await?;
    out.tables.insert("mart.cohort_ltv".into(), write);

    let started = Instant::now();
    let channels = channel_summary(daily.lazy(), channel_daily, &params)
        .collect()
        .map_err(polars("mart.channel_summary"))?;
    let write = write_days(lake, table("mart.channel_summary")?, channels, started).await?;
    out.tables.insert("mart.channel_summary".into(), write);

    let started = Instant::now();
    let dq = data_quality(quality)
        .collect()
        .map_err(polars("mart.data_quality"))?;
    let write = write_days(lake, table("mart.data_quality")?, dq, started).await?;
    out.tables.insert("mart.data_quality".into(), write);

    if paths_due(lake, paths, data_end_ms).await? {
        write_critical_paths(config, lake, installs, data_end_ms, &mut out).await?;
    } else {
        tracing::info!(
            "The critical-path marts are less than a week old: kept (they refresh weekly)."
        );
    }
    Ok(out)
}

/// The installs the marts count: first installs that are not test data (every mart and the
/// critical paths filter to those), with the columns they read.
fn mart_installs(installs: LazyFrame) -> LazyFrame {
    installs
        .filter(col("is_first_install").and(col("is_test").not()))
        .select(
            [
                "user_key",
                "install_time",
                "report_date",
                "platform",
                "country",
                "channel",
                "campaign_id",
                "campaign_name",
                "is_first_install",
                "is_fraud",
                "is_test",
            ]
            .map(col),
        )
}

/// Whether `paths` asks for the critical-path marts to be rebuilt now.
async fn paths_due(
    lake: &Lake,
    paths: PathRefresh,
    data_end_ms: i64,
) -> Result<bool, MartStageError> {
    let PathRefresh::WhenOlderThan(days) = paths else {
        return Ok(true);
    };
    let newest = lake.partitions(table("mart.critical_path")?).await?;
    let end_day = data_end_ms.div_euclid(crate::features::DAY_MS);
    Ok(newest.last().is_none_or(|d| {
        let day = (*d - NaiveDate::default()).num_days();
        end_day - day >= days
    }))
}

/// `mart.critical_path` and `mart.critical_event_lift` from each person's first
/// `reach_hours` of events.
async fn write_critical_paths(
    config: &PipelineConfig,
    lake: &Lake,
    installs: LazyFrame,
    data_end_ms: i64,
    out: &mut MartOutput,
) -> Result<(), MartStageError> {
    let started = Instant::now();
    let params = CriticalPathParams::from_analysis(&config.analysis);
    let reach = i32::try_from(params.reach_hours()).unwrap_or(i32::MAX);
    let early = lake
        .scan(table("clean.events")?, DateRange::all())
        .await?
        .filter(col("hours_since_install").lt(lit(reach)))
        .select([col("user_key"), col("event"), col("time")]);
    let end = df!("_data_end_ms" => [data_end_ms])
        .map_err(polars("mart.critical_path"))?
        .lazy();
    let plans = critical_paths_at(early, installs, end, &params)?;
    let path_rows = plans
        .paths
        .collect()
        .map_err(polars("mart.critical_path"))?;
    let lift_rows = plans
        .event_lift
        .collect()
        .map_err(polars("mart.critical_event_lift"))?;
    let write = write_days(lake, table("mart.critical_path")?, path_rows, started).await?;
    out.tables.insert("mart.critical_path".into(), write);
    let started = Instant::now();
    let write = write_days(lake, table("mart.critical_event_lift")?, lift_rows, started).await?;
    out.tables.insert("mart.critical_event_lift".into(), write);
    Ok(())
}

/// Copies the lake's marts to MySQL, one transaction per mart: a mart either holds the lake's
/// rows for every day it has, or (on failure) what it held before.
///
/// Only the days MySQL does not already hold as the lake has them are copied: each
/// transaction also records the lake version of every day it copied (`ltv_published_partitions`,
/// see [`MysqlMart::publish_partitions`]), and a day whose record is the lake's current version
/// and whose row count is the manifest's is left alone. The marts keep a partition's version when
/// it is rewritten unchanged, so a night copies what changed rather than the whole history.
pub async fn publish_marts(
    lake: &Lake,
    mysql: &mut MysqlMart,
) -> Result<MartOutput, MartStageError> {
    let mut out = MartOutput::default();
    mysql
        .ensure_published_table()
        .await
        .map_err(|source| MartStageError::Mysql {
            table: super::sql::PUBLISHED_TABLE.into(),
            source,
        })?;
    for name in MART_TABLES {
        let started = Instant::now();
        let schema = table(name)?;
        let mysql_error = |source| MartStageError::Mysql {
            table: schema.mysql_table_name(),
            source,
        };
        mysql.ensure_table(schema).await.map_err(mysql_error)?;
        let manifests = lake.partition_manifests(schema).await?;
        let held = mysql.held_partitions(schema).await.map_err(mysql_error)?;
        let due = due_partitions(&manifests, &held);
        let unchanged = manifests.len() - due.len();
        let mut write = MartWrite {
            partitions: due.len(),
            unchanged,
            ..MartWrite::default()
        };
        if !due.is_empty() {
            let df = read_days(lake, schema, &due)
                .await?
                .collect()
                .map_err(polars(name))?;
            let summary = mysql
                .publish_partitions(schema, &due, &df)
                .await
                .map_err(mysql_error)?;
            write.rows = summary.rows_inserted;
        }
        write.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            table = %schema.mysql_table_name(),
            published = write.partitions,
            unchanged,
            rows = write.rows,
            "Published mart to MySQL."
        );
        out.tables.insert(name.into(), write);
    }
    Ok(out)
}

/// The lake's partitions that MySQL does not hold as they are: never published, published
/// from another version, or holding another number of rows than the manifest says.
fn due_partitions(
    manifests: &BTreeMap<NaiveDate, Manifest>,
    held: &BTreeMap<NaiveDate, HeldPartition>,
) -> Vec<PartitionVersion> {
    manifests
        .iter()
        .filter(|(dt, m)| {
            held.get(dt).is_none_or(|h| {
                h.version.as_deref() != Some(m.version.as_str()) || h.rows != m.rows
            })
        })
        .map(|(dt, m)| PartitionVersion {
            dt: *dt,
            version: m.version.clone(),
            rows: m.rows,
        })
        .collect()
}

/// The rows of `days` (sorted) of a mart: one scan over their span, filtered to them.
async fn read_days(
    lake: &Lake,
    schema: &TableSchema,
    days: &[PartitionVersion],
) -> Result<LazyFrame, MartStageError> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(DataFrame::empty_with_schema(&schema.polars_schema()).lazy());
    };
    let scan = lake.scan(schema, DateRange::new(first.dt, last.dt)).await?;
    let Some(partition) = schema.partition.as_deref() else {
        return Ok(scan);
    };
    let wanted = Series::new(
        "wanted".into(),
        days.iter()
            .map(|p| (p.dt - NaiveDate::default()).num_days() as i32)
            .collect::<Vec<i32>>(),
    )
    .cast(&DataType::Date)
    .map_err(polars("mart partition"))?;
    Ok(scan.filter(col(partition).is_in(lit(wanted).implode(false), false)))
}

/// Partition writes of one mart in flight at once.
const PARTITION_WRITES_AT_ONCE: usize = 8;

/// Writes `df` to the lake one partition per `dt`.
async fn write_days(
    lake: &Lake,
    schema: &TableSchema,
    df: DataFrame,
    started: Instant,
) -> Result<MartWrite, MartStageError> {
    let name: &'static str = "mart partition";
    let mut by_day: BTreeMap<NaiveDate, DataFrame> = BTreeMap::new();
    if df.height() > 0 {
        for part in df.partition_by_stable(["dt"], true).map_err(polars(name))? {
            if let Some(day) = partition_day(&part) {
                by_day.insert(day, part);
            }
        }
    }
    let mut write = MartWrite {
        partitions: by_day.len(),
        rows: by_day.values().map(|p| p.height() as u64).sum(),
        ..MartWrite::default()
    };
    // A mart rewrites a partition per install day every night; each is a few puts whose
    // time is the store's round trips (tens of milliseconds each on S3), so several go at
    // once. Each partition still commits on its own, whole or not at all.
    let mut writes = futures::stream::iter(by_day)
        .map(|(day, part)| lake.replace_partition(schema, day, part))
        .buffer_unordered(PARTITION_WRITES_AT_ONCE);
    while let Some(written) = writes.next().await {
        if written?.unchanged {
            write.unchanged += 1;
        }
    }
    write.partitions -= write.unchanged;
    write.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        table = %schema.qualified_name(),
        partitions = write.partitions,
        unchanged = write.unchanged,
        rows = write.rows,
        seconds = write.seconds,
        "Wrote mart to the lake."
    );
    Ok(write)
}

fn polars(table: &'static str) -> impl Fn(PolarsError) -> MartStageError {
    move |source| MartStageError::Polars { table, source }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn manifest(dt: NaiveDate, version: &str, rows: u64) -> Manifest {
        Manifest {
            table: "mart.campaign_daily".into(),
            partition: dt,
            version: version.into(),
            schema_version: 1,
            written_at: Utc::now(),
            rows,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_day_is_due_unless_mysql_holds_its_version_and_its_rows() {
        let day = |n: u32| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        let manifests: BTreeMap<NaiveDate, Manifest> = [
            (day(1), "a", 10),
            (day(2), "b", 10),
            (day(3), "c", 10),
            (day(4), "d", 10),
            (day(5), "e", 0),
        ]
        .into_iter()
        .map(|(d, v, r)| (d, manifest(d, v, r)))
        .collect();
        let held = |version: Option<&str>, rows| HeldPartition {
            version: version.map(str::to_owned),
            rows,
        };
        let held: BTreeMap<NaiveDate, HeldPartition> = [
            // Held as the lake has it.
            (day(1), held(Some("a"), 10)),
            // An older version.
            (day(2), held(Some("old"), 10)),
            // The right version, a row deleted by hand.
            (day(3), held(Some("c"), 9)),
            // Day 4 was never published; an empty day published empty is held.
            (day(5), held(Some("e"), 0)),
            // A day MySQL has and the lake does not is not the publish's to touch.
            (day(9), held(Some("z"), 3)),
        ]
        .into_iter()
        .collect();
        let due: Vec<NaiveDate> = due_partitions(&manifests, &held)
            .into_iter()
            .map(|p| p.dt)
            .collect();
        assert_eq!(due, vec![day(2), day(3), day(4)]);
    }
}
