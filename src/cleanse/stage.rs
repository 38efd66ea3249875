//! The cleanse stage: for each day of a range and each source, one lazy plan over the raw
//! partition, collected once, split into clean rows and quarantine, and written as the clean
//! partition. A source partition that fails (a missing column, a store error) stops that
//! partition only: its previous clean partition stays, the other sources go on, and the run
//! reports the failure at the end.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;

use super::appsflyer::{
    EVENT_TABLES, FRAUD_TABLES, INSTALL_TABLES, clean_af_installs, fraud_signals,
};
use super::batches::{batches, clean_mixpanel_batch, duplicate_lines, key_hash};
use super::channels::{
    CHANNEL_TABLES, ChannelContext, clean_channel_partition, clean_manual_costs,
};
use super::dedup::MIXPANEL_EVENT_KEY;
use super::fx::fx_table;
use super::links::{APPSFLYER_PAIRS, BatchPairs, MIXPANEL_PAIRS, id_pairs, sort_links};
use super::mixpanel::{Normalisation, clean_mixpanel_events, clean_mixpanel_events_eager};
use super::normalise::polars_zone;
use super::profiles::clean_profiles;
use super::quality::{QualityLog, RuleCount};
use super::quarantine::{Origin, Split, add_removed, split};
use super::{
    CleanseError, PlanMode, StageOutput, day_tasks, partition_error, replace_stage_rows, table,
};
use crate::config::PipelineConfig;
use crate::lake::{DateRange, Lake};
use chrono::NaiveDate;
use polars::prelude::*;

pub const STAGE: &str = "cleanse";

/// The rules of each source, in the order they run, for the data-quality chain.
const EVENT_RULES: [&str; 2] = ["malformed", "duplicate"];
const INSTALL_RULES: [&str; 2] = ["malformed", "duplicate"];
const CHANNEL_RULES: [&str; 2] = ["duplicate", "malformed"];

/// Runs the cleanse stage over `range`.
pub async fn run_cleanse(
    config: &PipelineConfig,
    lake: &Lake,
    range: DateRange,
    run_id: &str,
) -> Result<StageOutput, CleanseError> {
    run_cleanse_with(config, lake, range, run_id, PlanMode::Lazy).await
}

/// [`run_cleanse`] with a choice of plan mode (the benchmark compares them).
pub async fn run_cleanse_with(
    config: &PipelineConfig,
    lake: &Lake,
    range: DateRange,
    run_id: &str,
    mode: PlanMode,
) -> Result<StageOutput, CleanseError> {
    let mut cx = Context::new(config, lake, range).await?;
    cx.mode = mode;
    let cx = Arc::new(cx);
    let mut out = StageOutput::new(STAGE, run_id);
    // Days are independent: they run side by side.
    let mut days = pin!(day_tasks(range, |dt| {
        let cx = Arc::clone(&cx);
        let run_id = run_id.to_string();
        async move { cx.day(dt, &run_id).await }
    }));
    while let Some(day) = days.next().await {
        out.absorb(day?);
    }
    cx.profiles(range, &mut out).await;
    Ok(out)
}

/// What every day needs: the config's rules and the FX table. Owned, so that days can run
/// as tasks of their own.
struct Context {
    config: PipelineConfig,
    lake: Lake,
    norm: Normalisation,
    mixpanel_key: Vec<String>,
    /// Manual costs of the latest Sheets snapshot, by report date.
    manual_costs: BTreeMap<NaiveDate, DataFrame>,
    mode: PlanMode,
    /// A day of Mixpanel events with more rows is cleansed in batches of this many.
    batch_rows: u64,
    /// A permit per large day in flight (`large_days_in_flight`, default one): a day
    /// cleansed in batches holds one until it is finished. Two large days side by side, each
    /// deep in its batches with its pairs merged so far, set cleanse's peak at the month's
    /// scale; a batched day's plans keep both cores fairly busy on their own.
    large_days: Arc<tokio::sync::Semaphore>,
}

/// One day's results that several sources add to.
struct Day {
    dt: NaiveDate,
    run_id: String,
    links: Vec<LazyFrame>,
    quarantine: Vec<DataFrame>,
    quality: QualityLog,
    /// Whether any source had a raw partition this day.
    any_source: bool,
    /// Held from a large day's first batch until the day is finished (see
    /// [`Context::large_days`]); released when the day is dropped.
    large: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Day {
    fn new(dt: NaiveDate, run_id: &str) -> Self {
        Day {
            dt,
            run_id: run_id.to_string(),
            links: Vec::new(),
            quarantine: Vec::new(),
            quality: QualityLog::default(),
            any_source: false,
            large: None,
        }
    }

    fn origin<'b>(&'b self, source: &'b str, key: &'b [&'b str]) -> Origin<'b> {
        Origin {
            stage: STAGE,
            run_id: &self.run_id,
            source,
            dt: self.dt,
            key,
        }
    }

    /// Records a split's counts under the source's rule chain and keeps its quarantine rows.
    fn record(&mut self, source: &str, rules: &[&str], rows_in: u64, s: &Split) {
        self.count(source, rules, rows_in, &s.removed);
        self.keep_quarantine(s);
    }

    fn keep_quarantine(&mut self, s: &Split) {
        if s.quarantined.height() > 0 {
            self.quarantine.push(s.quarantined.clone());
        }
    }

    /// Records rows removed per rule under the source's rule chain.
    fn count(&mut self, source: &str, rules: &[&str], rows_in: u64, removed: &[(String, u64)]) {
        let counts: Vec<RuleCount> = rules
            .iter()
            .map(|rule| {
                let n = removed
                    .iter()
                    .find(|(r, _)| r == rule)
                    .map_or(0, |(_, n)| *n);
                RuleCount::removed(rule, n)
            })
            .collect();
        self.quality
            .push(self.dt, STAGE, &self.run_id, source, rows_in, &counts);
    }
}

impl Context {
    async fn new(
        config: &PipelineConfig,
        lake: &Lake,
        range: DateRange,
    ) -> Result<Context, CleanseError> {
        let zone = polars_zone(config.pipeline.reporting_timezone)
            .map_err(|e| CleanseError::Config(e.to_string()))?;
        let fx = load_fx(lake, range.to).await?;
        let mixpanel_key = config
            .dedup_keys
            .get("raw.mixpanel_export")
            .cloned()
            .unwrap_or_else(|| MIXPANEL_EVENT_KEY.iter().map(|k| k.to_string()).collect());
        let manual_costs = load_manual_costs(config, lake, fx.clone()).await?;
        Ok(Context {
            config: config.clone(),
            lake: lake.clone(),
            norm: Normalisation {
                zone,
                reporting_currency: config.pipeline.reporting_currency.code().to_string(),
                fx,
            },
            mixpanel_key,
            manual_costs,
            mode: PlanMode::Lazy,
            batch_rows: u64::from(config.pipeline.batch_rows.get()),
            large_days: Arc::new(tokio::sync::Semaphore::new(
                config.pipeline.large_days_in_flight.get() as usize,
            )),
        })
    }

    /// One day of every source: its clean partitions, quarantine and data quality.
    async fn day(&self, dt: NaiveDate, run_id: &str) -> StageOutput {
        let mut out = StageOutput::new(STAGE, run_id);
        let mut day = Day::new(dt, run_id);
        self.mixpanel(&mut day, &mut out).await;
        self.appsflyer(&mut day, &mut out).await;
        self.channels(&mut day, &mut out).await;
        self.finish_day(day, &mut out).await;
        out
    }

    /// The raw partition of `source` on `dt`, or `None` when it was never landed.
    async fn raw(&self, source: &str, dt: NaiveDate) -> Result<Option<LazyFrame>, CleanseError> {
        Ok(self.raw_counted(source, dt).await?.map(|(lf, _)| lf))
    }

    /// [`Context::raw`] with the partition's row count.
    async fn raw_counted(
        &self,
        source: &str,
        dt: NaiveDate,
    ) -> Result<Option<(LazyFrame, u64)>, CleanseError> {
        let t = table(source)?;
        let Some(manifest) = self.lake.manifest(t, dt).await? else {
            return Ok(None);
        };
        if manifest.schema_version > t.version {
            return Err(CleanseError::Source {
                table: source.to_string(),
                dt,
                error: format!(
                    "unknown schema version {} (this build reads versions up to {}); \
                     upgrade ltv before cleansing this partition",
                    manifest.schema_version, t.version
                ),
            });
        }
        let lf = self.lake.scan(t, DateRange::day(dt)).await?;
        // Reading the schema opens the files: a missing or retyped column fails here,
        // naming the column, before any work is done.
        let mut probe = lf.clone();
        probe
            .collect_schema()
            .map_err(partition_error(source, dt))?;
        Ok(Some((lf, manifest.rows)))
    }

    async fn write(
        &self,
        out: &mut StageOutput,
        target: &str,
        dt: NaiveDate,
        df: DataFrame,
    ) -> Result<(), CleanseError> {
        let rows = df.height() as u64;
        self.lake.write_partition(table(target)?, dt, df).await?;
        out.written(target, dt, rows);
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(dt = %day.dt))]
    async fn mixpanel(&self, day: &mut Day, out: &mut StageOutput) {
        let source = "raw.mixpanel_export";
        let result = async {
            let Some((raw, rows)) = self.raw_counted(source, day.dt).await? else {
                return Ok(());
            };
            day.any_source = true;
            if rows > self.batch_rows && self.mode == PlanMode::Lazy {
                return self.mixpanel_in_batches(day, out, raw, rows).await;
            }
            let err = partition_error(source, day.dt);
            // Rules mark rows and never drop them, so the marked frame holds every raw row.
            let marked = tracing::debug_span!("plan")
                .in_scope(|| match self.mode {
                    PlanMode::Lazy => {
                        clean_mixpanel_events(raw, &self.mixpanel_key, &self.norm).collect()
                    }
                    PlanMode::Eager => {
                        clean_mixpanel_events_eager(raw, &self.mixpanel_key, &self.norm)
                    }
                })
                .map_err(&err)?;
            let rows_in = marked.height() as u64;
            let s = split(marked, &day.origin(source, &["line"])).map_err(&err)?;
            day.record(source, &EVENT_RULES, rows_in, &s);
            day.links
                .push(id_pairs(s.kept.clone().lazy(), source, &MIXPANEL_PAIRS).map_err(&err)?);
            self.write(out, "clean.mixpanel_events", day.dt, s.kept)
                .await
        }
        .await;
        out.check(source, day.dt, result);
    }

    /// A day of more than `batch_rows` events, a batch at a time (see [`super::batches`]).
    /// Each batch's clean rows become a part file of the day's partition, committed once all
    /// are written: a failure halfway leaves the previous partition whole. The day's pairs
    /// are taken batch by batch and merged, so no batch is held past its write.
    async fn mixpanel_in_batches(
        &self,
        day: &mut Day,
        out: &mut StageOutput,
        raw: LazyFrame,
        rows: u64,
    ) -> Result<(), CleanseError> {
        let source = "raw.mixpanel_export";
        let target = "clean.mixpanel_events";
        let permit = Arc::clone(&self.large_days)
            .acquire_owned()
            .await
            .map_err(|e| CleanseError::Task(e.to_string()))?;
        day.large = Some(permit);
        let err = partition_error(source, day.dt);
        let ranges = batches(rows, self.batch_rows);
        let duplicates = tracing::debug_span!("duplicates", batches = ranges.len())
            .in_scope(|| {
                duplicate_lines(&raw, &self.mixpanel_key, &self.norm.fx, &ranges, key_hash)
            })
            .map_err(&err)?;
        let mut writer = self.lake.partition_writer(table(target)?, day.dt);
        let mut rows_in = 0;
        let mut removed: Vec<(String, u64)> = Vec::new();
        let mut pairs = BatchPairs::new(self.batch_rows as usize);
        for range in ranges {
            let marked = tracing::debug_span!("plan", offset = range.0)
                .in_scope(|| {
                    clean_mixpanel_batch(raw.clone(), range, &duplicates, &self.norm).collect()
                })
                .map_err(&err)?;
            rows_in += marked.height() as u64;
            let s = split(marked, &day.origin(source, &["line"])).map_err(&err)?;
            day.keep_quarantine(&s);
            for (rule, n) in &s.removed {
                add_removed(&mut removed, rule, *n);
            }
            id_pairs(s.kept.clone().lazy(), source, &MIXPANEL_PAIRS)
                .and_then(|lf| pairs.add(lf.collect()?))
                .map_err(&err)?;
            writer.write(s.kept).await?;
        }
        day.count(source, &EVENT_RULES, rows_in, &removed);
        day.links.push(pairs.finish().map_err(&err)?);
        let written = writer.rows();
        writer.commit_or_keep().await?;
        out.written(target, day.dt, written);
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(dt = %day.dt))]
    async fn appsflyer(&self, day: &mut Day, out: &mut StageOutput) {
        let result = async {
            let mut kept = Vec::new();
            for (source, blocked) in INSTALL_TABLES {
                let Some(raw) = self.raw(source, day.dt).await? else {
                    continue;
                };
                day.any_source = true;
                let err = partition_error(source, day.dt);
                let marked = clean_af_installs(raw, source, blocked, &self.norm.zone)
                    .collect()
                    .map_err(&err)?;
                let rows_in = marked.height() as u64;
                let key = ["app_id", "appsflyer_id", "install_time"];
                let s = split(marked, &day.origin(source, &key)).map_err(&err)?;
                day.record(source, &INSTALL_RULES, rows_in, &s);
                kept.push(s.kept);
            }
            let mut signals = Vec::new();
            for (source, signal, reason) in FRAUD_TABLES {
                if let Some(raw) = self.raw(source, day.dt).await? {
                    signals.push(fraud_signals(raw, signal, reason));
                }
            }
            for source in EVENT_TABLES {
                if let Some(raw) = self.raw(source, day.dt).await? {
                    day.any_source = true;
                    let err = partition_error(source, day.dt);
                    day.links
                        .push(id_pairs(raw, source, &APPSFLYER_PAIRS).map_err(&err)?);
                }
            }
            let target = "clean.af_installs";
            if !kept.is_empty() {
                let err = partition_error(target, day.dt);
                let all = concat(
                    kept.into_iter().map(|df| df.lazy()).collect::<Vec<_>>(),
                    UnionArgs::default(),
                )
                .and_then(|lf| {
                    lf.sort(
                        ["install_time", "appsflyer_id"],
                        SortMultipleOptions::default(),
                    )
                    .collect()
                })
                .map_err(&err)?;
                day.links.push(
                    id_pairs(
                        all.clone().lazy(),
                        "raw.appsflyer_installs",
                        &APPSFLYER_PAIRS,
                    )
                    .map_err(&err)?,
                );
                self.write(out, target, day.dt, all).await?;
            }
            let target = "clean.af_fraud_signals";
            if !signals.is_empty() {
                let err = partition_error(target, day.dt);
                let all = concat(signals, UnionArgs::default())
                    .and_then(|lf| {
                        lf.sort(["appsflyer_id", "signal"], SortMultipleOptions::default())
                            .collect()
                    })
                    .map_err(&err)?;
                self.write(out, target, day.dt, all).await?;
            }
            Ok(())
        }
        .await;
        out.check("raw.appsflyer_*", day.dt, result);
    }

    /// Engage snapshots of the range, and the latest snapshot whatever its day: profiles
    /// are a snapshot (taken on the pull day, usually the day after the data), and the
    /// process stage reads the latest one.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn profiles(&self, range: DateRange, out: &mut StageOutput) {
        let source = "raw.mixpanel_engage";
        let result = async {
            let t = table(source)?;
            let landed = self.lake.partitions(t).await?;
            let mut days: Vec<NaiveDate> = landed
                .iter()
                .copied()
                .filter(|d| range.contains(*d))
                .collect();
            if let Some(latest) = landed.last()
                && !days.contains(latest)
            {
                days.push(*latest);
            }
            for dt in days {
                let Some(raw) = self.raw(source, dt).await? else {
                    continue;
                };
                let df = clean_profiles(raw, &self.config.test_users)
                    .collect()
                    .map_err(partition_error(source, dt))?;
                self.write(out, "clean.profiles", dt, df).await?;
            }
            Ok(())
        }
        .await;
        out.check(source, range.to, result);
    }

    #[tracing::instrument(level = "debug", skip_all, fields(dt = %day.dt))]
    async fn channels(&self, day: &mut Day, out: &mut StageOutput) {
        let ctx = ChannelContext {
            reporting_currency: &self.norm.reporting_currency,
            test_rules: &self.config.test_users,
        };
        let result = async {
            let mut kept = Vec::new();
            for source in CHANNEL_TABLES {
                let Some(raw) = self.raw(source, day.dt).await? else {
                    continue;
                };
                day.any_source = true;
                let err = partition_error(source, day.dt);
                let marked = clean_channel_partition(source, raw, self.norm.fx.clone(), &ctx)
                    .map_err(|e| CleanseError::Source {
                        table: source.to_string(),
                        dt: day.dt,
                        error: e.to_string(),
                    })?
                    .collect()
                    .map_err(&err)?;
                let rows_in = marked.height() as u64;
                let key = table(source)?
                    .primary_key
                    .iter()
                    .filter(|k| k.as_str() != "dt")
                    .map(String::as_str)
                    .collect::<Vec<_>>();
                let s = split(marked, &day.origin(source, &key)).map_err(&err)?;
                day.record(source, &CHANNEL_RULES, rows_in, &s);
                kept.push(s.kept);
            }
            if let Some(manual) = self.manual_costs.get(&day.dt) {
                // Quarantined under the report day the cost was for.
                let source = "raw.sheets_manual_costs";
                let err = partition_error(source, day.dt);
                let s = split(manual.clone(), &day.origin(source, &["row"])).map_err(&err)?;
                day.record(source, &CHANNEL_RULES, manual.height() as u64, &s);
                kept.push(s.kept);
            }
            let target = "clean.channel_daily";
            if !kept.is_empty() {
                let err = partition_error(target, day.dt);
                let all = concat(
                    kept.into_iter().map(|df| df.lazy()).collect::<Vec<_>>(),
                    UnionArgs::default(),
                )
                .and_then(|lf| {
                    lf.sort(
                        ["channel", "account_id", "campaign_id", "adset_id", "ad_id"],
                        SortMultipleOptions::default().with_nulls_last(true),
                    )
                    .collect()
                })
                .map_err(&err)?;
                self.write(out, target, day.dt, all).await?;
            }
            Ok(())
        }
        .await;
        out.check("raw.<channels>", day.dt, result);
    }

    /// The day's identifier pairs, quarantine and data quality.
    #[tracing::instrument(level = "debug", skip_all, fields(dt = %day.dt))]
    async fn finish_day(&self, day: Day, out: &mut StageOutput) {
        let dt = day.dt;
        let result = async {
            if !day.any_source {
                return Ok(());
            }
            let err = partition_error("clean.id_links", dt);
            if !day.links.is_empty() {
                // Each source's pairs are already distinct, and no two sources share a name:
                // the day's links only need their order.
                let links = tracing::debug_span!("links")
                    .in_scope(|| sort_links(concat(day.links, UnionArgs::default())?.collect()?))
                    .map_err(&err)?;
                self.write(out, "clean.id_links", dt, links).await?;
            }
            let quarantine = match day.quarantine.len() {
                0 => super::quarantine::empty_quarantine().map_err(&err)?,
                _ => concat(
                    day.quarantine
                        .into_iter()
                        .map(|df| df.lazy())
                        .collect::<Vec<_>>(),
                    UnionArgs::default(),
                )
                .and_then(|lf| lf.collect())
                .map_err(&err)?,
            };
            let n =
                replace_stage_rows(&self.lake, "clean.quarantine", dt, STAGE, quarantine).await?;
            out.written("clean.quarantine", dt, n);
            let quality = day.quality.frame(dt).map_err(&err)?;
            out.quality.extend(day.quality.totals());
            let n =
                replace_stage_rows(&self.lake, "clean.data_quality", dt, STAGE, quality).await?;
            out.written("clean.data_quality", dt, n);
            Ok(())
        }
        .await;
        out.check("clean.*", dt, result);
    }
}

/// The dense FX table through `through` from the latest Sheets snapshot. Without one,
/// money in any currency but the reporting one could not be priced: that stops the stage.
async fn load_fx(lake: &Lake, through: NaiveDate) -> Result<LazyFrame, CleanseError> {
    let source = "raw.sheets_fx_rates";
    let t = table(source)?;
    let Some(latest) = lake.partitions(t).await?.into_iter().next_back() else {
        return Err(CleanseError::NoFxRates);
    };
    let sheet = lake
        .scan(t, DateRange::day(latest))
        .await?
        .collect()
        .map_err(partition_error(source, latest))?;
    let fx = fx_table(sheet, through).map_err(|e| CleanseError::Source {
        table: source.to_string(),
        dt: latest,
        error: e.to_string(),
    })?;
    Ok(fx.lazy())
}

/// The latest Sheets snapshot of manual costs, cleaned and split, by report date.
async fn load_manual_costs(
    config: &PipelineConfig,
    lake: &Lake,
    fx: LazyFrame,
) -> Result<BTreeMap<NaiveDate, DataFrame>, CleanseError> {
    let source = "raw.sheets_manual_costs";
    let t = table(source)?;
    let mut by_day = BTreeMap::new();
    let Some(latest) = lake.partitions(t).await?.into_iter().next_back() else {
        return Ok(by_day);
    };
    let raw = lake.scan(t, DateRange::day(latest)).await?;
    let ctx = ChannelContext {
        reporting_currency: config.pipeline.reporting_currency.code(),
        test_rules: &config.test_users,
    };
    let err = partition_error(source, latest);
    let all = clean_manual_costs(raw, fx, &ctx).collect().map_err(&err)?;
    for part in all.partition_by_stable(["dt"], true).map_err(&err)? {
        if let Some(day) = crate::lake::partition_day(&part) {
            by_day.insert(day, part);
        }
    }
    Ok(by_day)
}
