//! The process stage runner. See the module docs of each step for its rules.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use futures::StreamExt;
use polars::prelude::*;

use super::campaigns::{campaign_daily, map_campaigns, suggest};
use super::events::{PERSON, PersonLookup, events_plan, events_plan_eager, first_activity};
use super::identity::{Identity, resolve_pairs};
use super::installs::{
    attach_people, fill_ids, finish_installs, mark_no_activity, mark_p360, mark_pattern_fraud,
    mark_test_installs, one_row_per_install,
};
use super::new_events::{EventNames, STATE_KEY};
use super::pairs::history_pairs;
use super::user_daily::{merge_user_daily, user_daily};
use crate::cleanse::batches::batches;
use crate::cleanse::links::{PROFILE_PAIRS, id_pairs};
use crate::cleanse::quality::{QualityLog, RuleCount};
use crate::cleanse::quarantine::{Origin, split};
use crate::cleanse::{
    CleanseError, PlanMode, StageOutput, day_tasks, partition_error, replace_stage_rows, table,
};
use crate::config::PipelineConfig;
use crate::lake::{DateRange, Lake, date_lit};

pub const STAGE: &str = "process";

fn whole(what: &str) -> impl Fn(PolarsError) -> CleanseError + '_ {
    move |e| CleanseError::Table {
        table: what.to_string(),
        error: e.to_string(),
    }
}

/// Runs the process stage over `range`.
pub async fn run_process(
    config: &PipelineConfig,
    lake: &Lake,
    range: DateRange,
    run_id: &str,
) -> Result<StageOutput, CleanseError> {
    run_process_with(config, lake, range, run_id, PlanMode::Lazy).await
}

/// [`run_process`] with a choice of plan mode for the events (the benchmark compares them).
pub async fn run_process_with(
    config: &PipelineConfig,
    lake: &Lake,
    range: DateRange,
    run_id: &str,
    mode: PlanMode,
) -> Result<StageOutput, CleanseError> {
    let mut out = StageOutput::new(STAGE, run_id);
    let mut quality = QualityLog::default();
    // Days whose quarantine the events wrote (the other days of the range get an empty one).
    let mut quarantined: BTreeSet<NaiveDate> = BTreeSet::new();

    let pairs = history_pairs(
        lake,
        config.analysis.restatement_days,
        profile_pairs(lake).await?,
    )
    .await?;
    // The history's AppsFlyer installs feed identity, the installs and the campaign mapping:
    // read once rather than scanned by each.
    let af = lake
        .scan(table("clean.af_installs")?, DateRange::all())
        .await?
        .collect()
        .map_err(whole("clean.af_installs"))?;
    // The campaign mapping's share of the installs, taken now so that the history's
    // AppsFlyer rows are not held past the installs below.
    let attribution = attribution_campaigns(af.clone().lazy())?;
    let mut identity =
        resolve_pairs(pairs.edges, af.clone().lazy()).map_err(|e| CleanseError::Table {
            table: "clean.identities".into(),
            error: e.to_string(),
        })?;
    tracing::info!(
        identifiers = identity.nodes.height(),
        people = identity.people.height(),
        components = identity.components,
        conflicts = identity.conflicts,
        "identity resolved"
    );
    write_identities(lake, &identity, range, &mut out).await?;

    let test_people = test_people(lake, &identity).await?;
    let installs = installs_before_activity(config, lake, &identity, &af, &test_people).await?;
    // Each frame below is freed as soon as its last reader is done: at a month of large
    // days the identity's frames and the history's installs are gigabytes each, and the
    // lookup is built beside them.
    drop(af);
    identity.installs = DataFrame::default();
    // The no-activity rule looks past the range by its window, where events exist.
    let extra_days = (i64::from(config.fraud.no_activity_hours.get()) + 23) / 24 + 1;
    let read = DateRange::new(range.from, range.to + Duration::days(extra_days));
    let nodes = lookups_for(lake, &identity.nodes, read).await?;
    let people = match &nodes {
        Some(nodes) => identity.people.clone().lazy().join(
            nodes.clone().lazy().select([col("user_key")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Semi),
        ),
        None => identity.people.clone().lazy(),
    };
    let persons = persons(&installs, people, &test_people)?;
    identity.people = DataFrame::default();
    let nodes = nodes.unwrap_or_else(|| std::mem::take(&mut identity.nodes));
    drop(identity);
    let lookup = PersonLookup::new(nodes, persons).map_err(whole("clean.identities"))?;
    // Only the range's installs are written; the history's were needed for the persons.
    let installs = in_range(installs, range).map_err(whole("clean.installs"))?;

    let mut seen = ActivitySeen::default();
    let mut names: Vec<DataFrame> = Vec::new();
    let day_events = Arc::new(DayEvents {
        lake: lake.clone(),
        mode,
        lookup,
        purchase_event: crate::features::FeatureParams::default().purchase_event,
        reporting_currency: config.pipeline.reporting_currency.code().to_string(),
        batch_rows: u64::from(config.pipeline.batch_rows.get()),
    });
    // Days are independent given identity and persons: they run side by side.
    let mut days = pin!(day_tasks(range, |dt| {
        let day_events = Arc::clone(&day_events);
        let run_id = run_id.to_string();
        async move { day_events.process(dt, &run_id).await }
    }));
    while let Some(day) = days.next().await {
        let Some(day) = day?? else {
            continue;
        };
        seen.add(day.activity).map_err(whole("clean.installs"))?;
        names.push(day.names);
        quality.push(
            day.dt,
            STAGE,
            run_id,
            EVENTS_SOURCE,
            day.rows_in,
            &[
                RuleCount::removed("test data", day.removed),
                RuleCount::changed("user id backfill", day.filled),
                RuleCount::changed("no person found", day.unlinked),
            ],
        );
        // Written with its day rather than held to the end: over a month of large days the
        // removed rows add up.
        if let Some(q) = day.quarantined {
            let n = replace_stage_rows(lake, "clean.quarantine", day.dt, STAGE, q).await?;
            out.written("clean.quarantine", day.dt, n);
            quarantined.insert(day.dt);
        }
        out.absorb(day.written);
    }

    for k in 1..=extra_days {
        let dt = range.to + Duration::days(k);
        let Some((events, ranges)) = day_events.day(dt).await? else {
            break;
        };
        for batch in ranges {
            let (_, activity) = day_events.marked(&events, batch, dt)?;
            seen.add(activity).map_err(whole("clean.installs"))?;
        }
    }
    write_installs(
        config,
        lake,
        installs,
        seen.firsts,
        seen.data_end_ms,
        range,
        run_id,
        &mut quality,
        &mut out,
    )
    .await?;
    let reporting_currency = config.pipeline.reporting_currency.code();
    write_campaigns(
        lake,
        range,
        run_id,
        reporting_currency,
        &attribution,
        &mut quality,
        &mut out,
    )
    .await?;
    write_new_events(lake, range, names, &mut out).await?;

    for dt in range.days() {
        let err = partition_error("clean.quarantine", dt);
        if quality.days().contains(&dt) {
            if !quarantined.contains(&dt) {
                let rows = crate::cleanse::quarantine::empty_quarantine().map_err(&err)?;
                let n = replace_stage_rows(lake, "clean.quarantine", dt, STAGE, rows).await?;
                out.written("clean.quarantine", dt, n);
            }
            let frame = quality.frame(dt).map_err(&err)?;
            let n = replace_stage_rows(lake, "clean.data_quality", dt, STAGE, frame).await?;
            out.written("clean.data_quality", dt, n);
        }
    }
    out.quality.extend(quality.totals());
    Ok(out)
}

/// What the no-activity rule needs from every day of events: each person's first activity
/// and the end of the data.
///
/// A person active on many days has a row in each day's frame, and over a month of large
/// days those rows run to tens of millions. So the days are folded (earliest activity
/// per person) whenever the unfolded rows outnumber the folded ones: what is held stays near
/// a row per person, and each row is folded a bounded number of times on average.
struct ActivitySeen {
    /// Frames of `user_key`, `first_activity`: the last fold first, then the days since.
    firsts: Vec<DataFrame>,
    folded_rows: usize,
    pending_rows: usize,
    /// Unfolded rows below which no fold happens: small runs never pay for one.
    fold_min_rows: usize,
    data_end_ms: i64,
}

impl Default for ActivitySeen {
    fn default() -> Self {
        Self {
            firsts: Vec::new(),
            folded_rows: 0,
            pending_rows: 0,
            fold_min_rows: 1 << 20,
            data_end_ms: i64::MIN,
        }
    }
}

impl ActivitySeen {
    fn add(&mut self, day: DayActivity) -> PolarsResult<()> {
        if let Some(end) = day.end_ms {
            self.data_end_ms = self.data_end_ms.max(end);
        }
        self.pending_rows += day.firsts.height();
        self.firsts.push(day.firsts);
        if self.pending_rows > self.folded_rows.max(self.fold_min_rows) {
            let all = earliest_activity(std::mem::take(&mut self.firsts))?.collect()?;
            self.folded_rows = all.height();
            self.pending_rows = 0;
            self.firsts.push(all);
        }
        Ok(())
    }
}

/// Each person's earliest `first_activity` over frames of `user_key`, `first_activity`.
fn earliest_activity(frames: Vec<DataFrame>) -> PolarsResult<LazyFrame> {
    Ok(concat(
        frames.into_iter().map(|df| df.lazy()).collect::<Vec<_>>(),
        UnionArgs::default(),
    )?
    .group_by([col("user_key")])
    .agg([col("first_activity").min()]))
}

/// Whether a row's partition (`dt`) is in `range`.
fn dt_in(range: DateRange) -> Expr {
    col("dt")
        .gt_eq(date_lit(range.from))
        .and(col("dt").lt_eq(date_lit(range.to)))
}

/// The rows of `installs` whose partition is in `range`.
fn in_range(installs: DataFrame, range: DateRange) -> PolarsResult<DataFrame> {
    installs.lazy().filter(dt_in(range)).collect()
}

/// One day's share of [`ActivitySeen`].
struct DayActivity {
    firsts: DataFrame,
    end_ms: Option<i64>,
}

const EVENTS_SOURCE: &str = "clean.mixpanel_events";

/// What the events plan of every day needs. Owned, so that days can run as tasks.
struct DayEvents {
    lake: Lake,
    mode: PlanMode,
    lookup: PersonLookup,
    purchase_event: String,
    reporting_currency: String,
    /// A day of events with more rows is processed in batches of this many.
    batch_rows: u64,
}

/// One day of events processed and written: what the run adds up.
struct ProcessedDay {
    dt: NaiveDate,
    /// Events per name, for `clean.new_events`.
    names: DataFrame,
    activity: DayActivity,
    rows_in: u64,
    removed: u64,
    filled: u64,
    unlinked: u64,
    quarantined: Option<DataFrame>,
    written: StageOutput,
}

impl DayEvents {
    /// One day of `clean.mixpanel_events` and the row ranges it is processed in (one for a
    /// day of up to `batch_rows` events), or `None` when the day was never cleansed.
    async fn day(
        &self,
        dt: NaiveDate,
    ) -> Result<Option<(LazyFrame, Vec<(i64, IdxSize)>)>, CleanseError> {
        let t = table(EVENTS_SOURCE)?;
        let Some(manifest) = self.lake.manifest(t, dt).await? else {
            return Ok(None);
        };
        let events = self.lake.scan(t, DateRange::day(dt)).await?;
        let mut ranges = batches(manifest.rows, self.batch_rows);
        if ranges.is_empty() {
            // A day known to hold no events still gets its (empty) partitions.
            ranges.push((0, 0));
        }
        Ok(Some((events, ranges)))
    }

    /// One batch of a day's events through the events plan (people attached, test people
    /// marked), with its activity. Every step of the plan is row by row, so a batch gives
    /// the rows the whole day would.
    fn marked(
        &self,
        events: &LazyFrame,
        (offset, len): (i64, IdxSize),
        dt: NaiveDate,
    ) -> Result<(DataFrame, DayActivity), CleanseError> {
        let events = events.clone().slice(offset, len);
        let err = partition_error(EVENTS_SOURCE, dt);
        let marked = tracing::debug_span!("events_plan", %dt, offset)
            .in_scope(|| match self.mode {
                PlanMode::Lazy => events_plan(events, &self.lookup)?.collect(),
                PlanMode::Eager => events_plan_eager(events, &self.lookup),
            })
            .map_err(&err)?;
        let activity = DayActivity {
            end_ms: max_ms(&marked, "time"),
            firsts: first_activity_of(&marked).map_err(&err)?,
        };
        Ok((marked, activity))
    }

    /// One day of events, a batch at a time: split into kept and test rows, written as
    /// `clean.events` (a part file per batch, committed when all are written) and folded
    /// into `clean.user_daily`.
    async fn process(
        &self,
        dt: NaiveDate,
        run_id: &str,
    ) -> Result<Option<ProcessedDay>, CleanseError> {
        let Some((events, ranges)) = self.day(dt).await? else {
            return Ok(None);
        };
        let err = partition_error(EVENTS_SOURCE, dt);
        let origin = Origin {
            stage: STAGE,
            run_id,
            source: EVENTS_SOURCE,
            dt,
            key: &["line"],
        };
        let mut day = DayTotals::default();
        let mut writer = self.lake.partition_writer(table("clean.events")?, dt);
        let one_batch = ranges.len() == 1;
        for batch in ranges {
            let (marked, activity) = self.marked(&events, batch, dt)?;
            day.activity.push(activity);
            day.names.push(
                marked
                    .clone()
                    .lazy()
                    .group_by([col("event")])
                    .agg([len().cast(DataType::UInt64).alias("events")])
                    .with_column(date_lit(dt).alias("dt"))
                    .collect()
                    .map_err(&err)?,
            );
            day.rows_in += marked.height() as u64;
            day.filled += count_true(&marked, "user_id_filled");
            day.unlinked += marked.height() as u64 - count_true(&marked, "_linked");
            let s = split(marked, &origin).map_err(&err)?;
            day.removed += s.removed.iter().map(|(_, n)| n).sum::<u64>();
            if s.quarantined.height() > 0 {
                day.quarantined.push(s.quarantined);
            }
            let kept = s.kept.drop_many(["_linked", PERSON]);
            day.daily.push(
                user_daily(
                    kept.clone().lazy(),
                    dt,
                    &self.purchase_event,
                    &self.reporting_currency,
                )
                .collect()
                .map_err(&err)?,
            );
            day.kept_rows += kept.height() as u64;
            if one_batch {
                // One part: written so that an unchanged day keeps its version unput.
                self.lake
                    .write_partition(table("clean.events")?, dt, kept)
                    .await?;
            } else {
                writer.write(kept).await?;
            }
        }
        if !one_batch {
            writer.commit_or_keep().await?;
        }
        day.finish(self, dt, run_id).await.map(Some)
    }
}

/// The frames of a day's batches, one under the other (none: an empty frame).
fn stack(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut frames = frames.into_iter();
    let mut all = frames.next().unwrap_or_default();
    for f in frames {
        all.vstack_mut_owned(f)?;
    }
    Ok(all)
}

/// What the batches of one day add up to.
#[derive(Default)]
struct DayTotals {
    activity: Vec<DayActivity>,
    names: Vec<DataFrame>,
    daily: Vec<DataFrame>,
    quarantined: Vec<DataFrame>,
    rows_in: u64,
    removed: u64,
    filled: u64,
    unlinked: u64,
    kept_rows: u64,
}

impl DayTotals {
    /// Writes the day's `clean.user_daily` and hands back what the run adds up.
    async fn finish(
        self,
        day_events: &DayEvents,
        dt: NaiveDate,
        run_id: &str,
    ) -> Result<ProcessedDay, CleanseError> {
        let err = partition_error(EVENTS_SOURCE, dt);
        let daily = match <[DataFrame; 1]>::try_from(self.daily) {
            Ok([daily]) => daily,
            Err(parts) => merge_user_daily(parts.into_iter().map(DataFrame::lazy).collect())
                .and_then(|lf| lf.collect())
                .map_err(&err)?,
        };
        let mut written = StageOutput::new(STAGE, run_id);
        written.written("clean.events", dt, self.kept_rows);
        let rows = daily.height() as u64;
        day_events
            .lake
            .write_partition(table("clean.user_daily")?, dt, daily)
            .await?;
        written.written("clean.user_daily", dt, rows);
        let mut firsts = Vec::with_capacity(self.activity.len());
        let mut end_ms = None;
        for a in self.activity {
            end_ms = end_ms.max(a.end_ms);
            firsts.push(a.firsts);
        }
        Ok(ProcessedDay {
            dt,
            names: stack(self.names).map_err(&err)?,
            activity: DayActivity {
                firsts: stack(firsts).map_err(&err)?,
                end_ms,
            },
            rows_in: self.rows_in,
            removed: self.removed,
            filled: self.filled,
            unlinked: self.unlinked,
            quarantined: match self.quarantined.is_empty() {
                true => None,
                false => Some(stack(self.quarantined).map_err(&err)?),
            },
            written,
        })
    }
}

/// The identifiers the events of `days` can meet, or `None` for all of them. Each day's
/// events are joined to these, and the persons are built for their people only; a nightly
/// run's week touches a small part of a long history's identity, and joining every day
/// against all of it made the night's cost grow with the history. Narrowing costs a read of
/// three id columns, so it is done only when the run covers a small part (under a third) of
/// the events' days.
#[tracing::instrument(level = "debug", skip_all)]
async fn lookups_for(
    lake: &Lake,
    nodes: &DataFrame,
    days: DateRange,
) -> Result<Option<DataFrame>, CleanseError> {
    let t = table(EVENTS_SOURCE)?;
    let landed = lake.partitions(t).await?.len();
    if days.days().count().saturating_mul(3) > landed {
        return Ok(None);
    }
    let err = whole("clean.identities");
    let events = lake.scan(t, days).await?;
    // Each kind of node against the one event column that names it, as `attach_person`
    // joins them: three semi-joins. A union of every event's three ids made unique first
    // cost more (0.35 against 0.2 s for a week of a 180-day history).
    let kinds = [
        ("device_id", "device_id"),
        ("user_id", "user_id"),
        ("appsflyer_id", "appsflyer_id"),
    ]
    .map(|(kind, column)| {
        nodes.clone().lazy().filter(col("kind").eq(lit(kind))).join(
            events.clone().select([col(column)]),
            [col("id")],
            [col(column)],
            JoinArgs::new(JoinType::Semi),
        )
    });
    tracing::debug_span!("narrow nodes")
        .in_scope(|| concat(kinds, UnionArgs::default())?.collect())
        .map(Some)
        .map_err(err)
}

/// The latest profile snapshot's identifier pairs (`dt`, `left_kind`, `left_id`,
/// `right_kind`, `right_id`, seen on the snapshot's day): identity adds them to the daily
/// links.
async fn profile_pairs(lake: &Lake) -> Result<Option<LazyFrame>, CleanseError> {
    let err = whole("clean.profiles");
    let t = table("clean.profiles")?;
    let Some(day) = lake.partitions(t).await?.into_iter().next_back() else {
        return Ok(None);
    };
    let profiles = lake.scan(t, DateRange::day(day)).await?;
    let pairs = id_pairs(profiles, "clean.profiles", &PROFILE_PAIRS)
        .map_err(&err)?
        .with_column(date_lit(day).alias("dt"))
        .select(["dt", "left_kind", "left_id", "right_kind", "right_id"].map(col));
    Ok(Some(pairs))
}

fn count_true(df: &DataFrame, column: &str) -> u64 {
    df.column(column)
        .ok()
        .and_then(|c| c.bool().ok().map(|b| b.sum().unwrap_or(0)))
        .map_or(0, u64::from)
}

fn max_ms(df: &DataFrame, column: &str) -> Option<i64> {
    df.column(column).ok()?.datetime().ok()?.physical().max()
}

/// First activity per person from a day's joined events (see [`first_activity`]).
#[tracing::instrument(level = "debug", skip_all)]
fn first_activity_of(marked: &DataFrame) -> PolarsResult<DataFrame> {
    first_activity(marked.clone().lazy().select([
        col(PERSON),
        col("user_key"),
        col("time"),
        col("install_time"),
    ]))
    .collect()
}

/// `clean.identities`, the partitions of the range (an identifier's partition is the day it
/// was first seen), each sorted by kind and id.
///
/// A day at a time: sorting the range's identifiers at once and then splitting them by day
/// held two copies of them beside the identity (at a month, 33 million identifiers, each copy
/// gigabytes). A day's filter reads only the date column.
#[tracing::instrument(level = "debug", skip_all)]
async fn write_identities(
    lake: &Lake,
    identity: &Identity,
    range: DateRange,
    out: &mut StageOutput,
) -> Result<(), CleanseError> {
    let target = "clean.identities";
    let t = table(target)?;
    for dt in range.days() {
        let df = identity
            .nodes
            .clone()
            .lazy()
            .filter(col("dt").eq(date_lit(dt)))
            .sort(["kind", "id"], SortMultipleOptions::default())
            .collect()
            .map_err(partition_error(target, dt))?;
        if df.height() == 0 {
            continue;
        }
        let rows = df.height() as u64;
        lake.write_partition(t, dt, df).await?;
        out.written(target, dt, rows);
    }
    Ok(())
}

/// Every install of the history with its person, ids filled, Protect360 and the install
/// pattern rules, and the test rules: all but the no-activity rule, which needs events.
#[tracing::instrument(level = "debug", skip_all)]
async fn installs_before_activity(
    config: &PipelineConfig,
    lake: &Lake,
    identity: &Identity,
    af: &DataFrame,
    test_people: &DataFrame,
) -> Result<DataFrame, CleanseError> {
    let err = whole("clean.installs");
    let signals = lake
        .scan(table("clean.af_fraud_signals")?, DateRange::all())
        .await?;
    let test_devices = latest(lake, "raw.sheets_test_devices").await?;
    // The identity's install frame is row for row with `af`: set beside it before the
    // duplicates go.
    let lf = attach_people(af, &identity.installs)
        .and_then(|df| one_row_per_install(&df))
        .map_err(&err)?;
    let lf = fill_ids(lf.lazy());
    let lf = mark_p360(lf, signals);
    let lf = mark_pattern_fraud(lf, &config.fraud).map_err(&err)?;
    let lf = mark_test_installs(
        lf,
        &config.test_users,
        test_devices,
        test_people.clone().lazy(),
    )
    .map_err(&err)?;
    lf.collect().map_err(&err)
}

/// The latest snapshot of a daily snapshot table (empty when none was landed).
async fn latest(lake: &Lake, name: &str) -> Result<LazyFrame, CleanseError> {
    let t = table(name)?;
    let day = lake.partitions(t).await?.into_iter().next_back();
    Ok(match day {
        Some(d) => lake.scan(t, DateRange::day(d)).await?,
        None => DataFrame::empty_with_schema(&t.polars_schema()).lazy(),
    })
}

/// People whose latest profile matches a test-user rule: `user_key`, `reason` (a row per
/// person; where several of their profiles match, the smallest reason). The installs' test
/// rule and the persons both use it.
async fn test_people(lake: &Lake, identity: &Identity) -> Result<DataFrame, CleanseError> {
    let profiles = latest(lake, "clean.profiles").await?;
    let by_user = identity
        .nodes
        .clone()
        .lazy()
        .filter(col("kind").eq(lit("user_id")))
        .select([col("id"), col("user_key")]);
    profiles
        .filter(col("test_reason").is_not_null())
        .join(
            by_user,
            [col("user_id")],
            [col("id")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("user_key")])
        // One reason per person, the same whatever order the joins left the rows in.
        .agg([col("test_reason").min().alias("reason")])
        .collect()
        .map_err(whole("clean.profiles"))
}

/// Each of `people` (the identity's people frame, or the part of it a run's events meet)
/// with their first install (campaign keys, fraud, test), if any, and the app user id that
/// fills events.
#[tracing::instrument(level = "debug", skip_all)]
fn persons(
    installs: &DataFrame,
    people: LazyFrame,
    test_people: &DataFrame,
) -> Result<DataFrame, CleanseError> {
    let err = whole("clean.events");
    let firsts = installs
        .clone()
        .lazy()
        .filter(col("is_first_install"))
        .select([
            col("user_key"),
            col("install_time"),
            // The install's report date is the person's install date: computed once per
            // install rather than once per event.
            col("report_date").alias("install_date"),
            col("channel"),
            col("campaign_id"),
            col("adset_id"),
            col("ad_id"),
            col(crate::cleanse::fraud::FRAUD_REASON)
                .is_not_null()
                .alias("is_fraud"),
            col(crate::cleanse::test_data::TEST_REASON).alias("test_reason"),
        ]);
    let profile_tests = test_people
        .clone()
        .lazy()
        .select([col("user_key"), col("reason").alias("_profile_reason")]);
    people
        .select([col("user_key"), col("known_user_id")])
        .join(
            firsts,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            profile_tests,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(coalesce(&[col("test_reason"), col("_profile_reason")]).alias("test_reason"))
        .drop(cols(["_profile_reason"]))
        .collect()
        .map_err(err)
}

/// AppsFlyer's paid campaigns over the history (`af`: `clean.af_installs`), for mapping:
/// `channel`, `campaign_id`, `campaign_name`, first and last install day and installs.
fn attribution_campaigns(af: LazyFrame) -> Result<DataFrame, CleanseError> {
    let err = whole("clean.af_installs");
    af.filter(
        col("campaign_id")
            .is_not_null()
            .and(col("channel").neq(lit("organic"))),
    )
    .group_by([col("channel"), col("campaign_id")])
    .agg([
        col("campaign_name")
            .drop_nulls()
            .last()
            .alias("campaign_name"),
        col("dt").min().alias("first_seen"),
        col("dt").max().alias("last_seen"),
        len().cast(DataType::UInt64).alias("installs"),
    ])
    .sort(["channel", "campaign_id"], SortMultipleOptions::default())
    .collect()
    .map_err(err)
}

/// Applies the no-activity rule to the range's `installs` and writes them as its
/// `clean.installs` partitions.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(level = "debug", skip_all)]
async fn write_installs(
    config: &PipelineConfig,
    lake: &Lake,
    installs: DataFrame,
    activity: Vec<DataFrame>,
    data_end_ms: i64,
    range: DateRange,
    run_id: &str,
    quality: &mut QualityLog,
    out: &mut StageOutput,
) -> Result<(), CleanseError> {
    let target = "clean.installs";
    let err = whole(target);
    let activity = if activity.is_empty() {
        DataFrame::empty_with_schema(&Schema::from_iter([
            Field::new("user_key".into(), DataType::String),
            Field::new(
                "first_activity".into(),
                DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
            ),
        ]))
        .lazy()
    } else {
        earliest_activity(activity).map_err(&err)?
    };
    let all = finish_installs(mark_no_activity(
        installs.lazy(),
        activity,
        &config.fraud,
        data_end_ms,
    ))
    .collect()
    .map_err(&err)?;
    let mut by_day: BTreeMap<NaiveDate, DataFrame> = BTreeMap::new();
    for part in all.partition_by_stable(["dt"], true).map_err(&err)? {
        if let Some(d) = crate::lake::partition_day(&part) {
            by_day.insert(d, part);
        }
    }
    let af = table("clean.af_installs")?;
    for dt in range.days() {
        if lake.manifest(af, dt).await?.is_none() {
            continue;
        }
        let df = match by_day.remove(&dt) {
            Some(df) => df,
            None => DataFrame::empty_with_schema(&table(target)?.polars_schema()),
        };
        let n = df.height() as u64;
        quality.push(
            dt,
            STAGE,
            run_id,
            "clean.af_installs",
            n,
            &[
                RuleCount::changed(
                    "advertising id backfill",
                    count_true(&df, "advertising_id_filled"),
                ),
                RuleCount::changed(
                    "user id backfill",
                    count_true(&df, "customer_user_id_filled"),
                ),
                RuleCount::changed("fraud", count_true(&df, "is_fraud")),
                RuleCount::changed("test data", count_true(&df, "is_test")),
            ],
        );
        let df = df.drop("_no_activity_checked").unwrap_or(df);
        lake.write_partition(table(target)?, dt, df).await?;
        out.written(target, dt, n);
    }
    Ok(())
}

/// `clean.campaign_daily` for the range and `clean.unmapped_campaigns` as of its last day.
#[tracing::instrument(level = "debug", skip_all)]
async fn write_campaigns(
    lake: &Lake,
    range: DateRange,
    run_id: &str,
    reporting_currency: &str,
    attribution: &DataFrame,
    quality: &mut QualityLog,
    out: &mut StageOutput,
) -> Result<(), CleanseError> {
    let target = "clean.campaign_daily";
    let err = whole(target);
    let channel_daily = lake.scan(table("clean.channel_daily")?, range).await?;
    let overrides = latest(lake, "raw.sheets_campaign_overrides").await?;
    let channel_campaigns = channel_daily
        .clone()
        .group_by([col("channel"), col("campaign_id")])
        .agg([
            col("campaign_name")
                .drop_nulls()
                .last()
                .alias("campaign_name"),
            col("dt").min().alias("first_seen"),
            col("dt").max().alias("last_seen"),
            col("spend_reporting_micros")
                .sum()
                .alias("spend_reporting_micros"),
        ])
        .sort(["channel", "campaign_id"], SortMultipleOptions::default())
        .collect()
        .map_err(&err)?;
    let mapping = map_campaigns(
        channel_campaigns.clone().lazy().select([
            col("channel"),
            col("campaign_id"),
            col("campaign_name"),
        ]),
        attribution.clone().lazy(),
        overrides,
    )
    .collect()
    .map_err(&err)?;
    let daily = campaign_daily(channel_daily, mapping.clone().lazy())
        .collect()
        .map_err(&err)?;
    let mut by_day: BTreeMap<NaiveDate, DataFrame> = BTreeMap::new();
    for part in daily.partition_by_stable(["dt"], true).map_err(&err)? {
        if let Some(d) = crate::lake::partition_day(&part) {
            by_day.insert(d, part);
        }
    }
    let t = table(target)?;
    for (dt, df) in by_day {
        let n = df.height() as u64;
        let unmapped = df
            .column("mapping")
            .map(|c| c.null_count() as u64)
            .unwrap_or(0);
        quality.push(
            dt,
            STAGE,
            run_id,
            "clean.channel_daily",
            n,
            &[RuleCount::changed("unmapped campaign", unmapped)],
        );
        lake.write_partition(t, dt, df).await?;
        out.written(target, dt, n);
    }
    let unmapped = unmapped_campaigns(
        &channel_campaigns,
        &mapping,
        attribution,
        range,
        reporting_currency,
    )
    .map_err(&err)?;
    let n = unmapped.height() as u64;
    lake.write_partition(table("clean.unmapped_campaigns")?, range.to, unmapped)
        .await?;
    out.written("clean.unmapped_campaigns", range.to, n);
    Ok(())
}

fn strs(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df
        .column(c)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// Campaigns on one side only, with the closest name on the other side of the same channel.
fn unmapped_campaigns(
    channel_campaigns: &DataFrame,
    mapping: &DataFrame,
    attribution: &DataFrame,
    range: DateRange,
    reporting_currency: &str,
) -> PolarsResult<DataFrame> {
    let mapped_attr: std::collections::BTreeSet<(String, String)> = {
        let ch = strs(mapping, "channel")?;
        let ids = strs(mapping, "attribution_campaign_id")?;
        ch.into_iter()
            .zip(ids)
            .filter_map(|(c, i)| Some((c?, i?)))
            .collect()
    };
    let channel_side = channel_campaigns
        .clone()
        .lazy()
        .join(
            mapping.clone().lazy(),
            [col("channel"), col("campaign_id")],
            [col("channel"), col("campaign_id")],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("mapping").is_null())
        .collect()?;
    let attr_in_range = attribution
        .clone()
        .lazy()
        .filter(
            col("last_seen")
                .gt_eq(date_lit(range.from))
                .and(col("first_seen").lt_eq(date_lit(range.to))),
        )
        .collect()?;
    let names_of = |df: &DataFrame| -> PolarsResult<Vec<(String, String, String)>> {
        let ch = strs(df, "channel")?;
        let id = strs(df, "campaign_id")?;
        let nm = strs(df, "campaign_name")?;
        Ok(ch
            .into_iter()
            .zip(id)
            .zip(nm)
            .filter_map(|((c, i), n)| Some((c?, i?, n.unwrap_or_default())))
            .collect())
    };
    let channel_names = names_of(channel_campaigns)?;
    let attr_names = names_of(&attr_in_range)?;

    let mut side = Vec::new();
    let mut channel = Vec::new();
    let mut campaign_id = Vec::new();
    let mut campaign_name = Vec::new();
    let mut first_seen = Vec::new();
    let mut last_seen = Vec::new();
    let mut spend = Vec::new();
    let mut installs = Vec::new();
    let mut sugg_id = Vec::new();
    let mut sugg_name = Vec::new();
    let mut score = Vec::new();
    let mut push_suggestion = |name: &str, ch: &str, pool: &[(String, String, String)]| {
        let candidates: Vec<(String, String)> = pool
            .iter()
            .filter(|(c, _, _)| c == ch)
            .map(|(_, i, n)| (i.clone(), n.clone()))
            .collect();
        match suggest(name, &candidates) {
            Some((i, n, s)) => {
                sugg_id.push(Some(i.to_string()));
                sugg_name.push(Some(n.to_string()));
                score.push(Some(s));
            }
            None => {
                sugg_id.push(None);
                sugg_name.push(None);
                score.push(None);
            }
        }
    };
    let dates = |df: &DataFrame, c: &str| -> PolarsResult<Vec<i32>> {
        Ok(df
            .column(c)?
            .date()?
            .physical()
            .iter()
            .map(|d| d.unwrap_or(0))
            .collect())
    };
    {
        let ch = strs(&channel_side, "channel")?;
        let id = strs(&channel_side, "campaign_id")?;
        let nm = strs(&channel_side, "campaign_name")?;
        let f = dates(&channel_side, "first_seen")?;
        let l = dates(&channel_side, "last_seen")?;
        let sp: Vec<i64> = channel_side
            .column("spend_reporting_micros")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        for i in 0..channel_side.height() {
            let c = ch[i].clone().unwrap_or_default();
            let n = nm[i].clone().unwrap_or_default();
            push_suggestion(&n, &c, &attr_names);
            side.push("channel");
            channel.push(c);
            campaign_id.push(id[i].clone().unwrap_or_default());
            campaign_name.push(nm[i].clone());
            first_seen.push(f[i]);
            last_seen.push(l[i]);
            spend.push(sp[i]);
            installs.push(0u64);
        }
    }
    {
        let f = dates(&attr_in_range, "first_seen")?;
        let l = dates(&attr_in_range, "last_seen")?;
        let n_inst: Vec<u64> = attr_in_range
            .column("installs")?
            .u64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        for (i, (c, id, n)) in attr_names.iter().enumerate() {
            if mapped_attr.contains(&(c.clone(), id.clone())) {
                continue;
            }
            push_suggestion(n, c, &channel_names);
            side.push("attribution");
            channel.push(c.clone());
            campaign_id.push(id.clone());
            campaign_name.push(Some(n.clone()));
            first_seen.push(f.get(i).copied().unwrap_or(0));
            last_seen.push(l.get(i).copied().unwrap_or(0));
            spend.push(0);
            installs.push(n_inst.get(i).copied().unwrap_or(0));
        }
    }
    let n = side.len();
    let as_date = |v: Vec<i32>, name: &str| Column::new(name.into(), v).cast(&DataType::Date);
    DataFrame::new_infer_height(vec![
        Column::new("side".into(), side),
        Column::new("channel".into(), channel),
        Column::new("campaign_id".into(), campaign_id),
        Column::new("campaign_name".into(), campaign_name),
        as_date(first_seen, "first_seen")?,
        as_date(last_seen, "last_seen")?,
        Column::new("spend_reporting_micros".into(), spend),
        Column::new(
            "reporting_currency".into(),
            vec![reporting_currency.to_string(); n],
        ),
        Column::new("installs".into(), installs),
        Column::new("suggested_campaign_id".into(), sugg_id),
        Column::new("suggested_campaign_name".into(), sugg_name),
        Column::new("suggestion_score".into(), score),
    ])
}

/// `clean.new_events` as of the range's last day, and the event-name registry updated.
#[tracing::instrument(level = "debug", skip_all)]
async fn write_new_events(
    lake: &Lake,
    range: DateRange,
    names: Vec<DataFrame>,
    out: &mut StageOutput,
) -> Result<(), CleanseError> {
    let target = "clean.new_events";
    let err = whole(target);
    let mut registry: EventNames = lake.read_state(STATE_KEY).await?.unwrap_or_default();
    let seen = if names.is_empty() {
        return Ok(());
    } else {
        concat(
            names.into_iter().map(|df| df.lazy()).collect::<Vec<_>>(),
            UnionArgs::default(),
        )
        .and_then(|lf| {
            lf.group_by([col("event")])
                .agg([col("dt").min().alias("first_seen"), col("events").sum()])
                .sort(["event"], SortMultipleOptions::default())
                .collect()
        })
        .map_err(&err)?
    };
    let events = strs(&seen, "event").map_err(&err)?;
    let firsts: Vec<Option<NaiveDate>> = seen
        .column("first_seen")
        .and_then(|c| Ok(c.date()?.as_date_iter().collect()))
        .map_err(&err)?;
    let counts: Vec<u64> = seen
        .column("events")
        .and_then(|c| Ok(c.u64()?.iter().map(|v| v.unwrap_or(0)).collect()))
        .map_err(&err)?;
    for (e, d) in events.iter().zip(&firsts) {
        if let (Some(e), Some(d)) = (e, d) {
            registry.saw(e, *d);
        }
    }
    let (mut name, mut first, mut n, mut sugg, mut dist) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((e, _), count) in events.iter().zip(&firsts).zip(&counts) {
        let Some(e) = e else { continue };
        let Some(first_day) = registry.first_seen.get(e).copied() else {
            continue;
        };
        if !range.contains(first_day) {
            continue;
        }
        let suggestion = registry.suggest(e, range.from);
        name.push(e.clone());
        first.push((first_day - NaiveDate::default()).num_days() as i32);
        n.push(*count);
        sugg.push(suggestion.map(|(s, _)| s.to_string()));
        dist.push(suggestion.map(|(_, d)| d as u64));
    }
    let df = DataFrame::new_infer_height(vec![
        Column::new("event".into(), name),
        Column::new("first_seen".into(), first)
            .cast(&DataType::Date)
            .map_err(&err)?,
        Column::new("events".into(), n),
        Column::new("suggested_event".into(), sugg),
        Column::new("distance".into(), dist),
    ])
    .map_err(&err)?;
    let rows = df.height() as u64;
    lake.write_partition(table(target)?, range.to, df).await?;
    out.written(target, range.to, rows);
    lake.write_state(STATE_KEY, &registry).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day(rows: &[(&str, i64)], end_ms: i64) -> DayActivity {
        let keys: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let ms: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let firsts = df!("user_key" => keys, "first_activity" => ms)
            .unwrap()
            .lazy()
            .with_column(col("first_activity").cast(DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )))
            .collect()
            .unwrap();
        DayActivity {
            firsts,
            end_ms: Some(end_ms),
        }
    }

    fn earliest(seen: ActivitySeen) -> Vec<(String, i64)> {
        let df = earliest_activity(seen.firsts)
            .unwrap()
            .sort(["user_key"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let keys = crate::test_support::strs(&df, "user_key");
        let ms = df.column("first_activity").unwrap().datetime().unwrap();
        keys.into_iter()
            .zip(ms.physical().iter())
            .map(|(k, t)| (k.unwrap(), t.unwrap()))
            .collect()
    }

    #[test]
    fn folding_the_days_keeps_each_persons_earliest_activity_and_few_rows() {
        let days = [
            day(&[("a", 50), ("b", 70)], 100),
            // A late event of `a` exported a day later is still the earliest.
            day(&[("a", 40), ("c", 150)], 200),
            day(&[("b", 250), ("c", 260), ("d", 270)], 300),
            day(&[("a", 310)], 320),
        ];
        let mut folding = ActivitySeen {
            fold_min_rows: 2,
            ..ActivitySeen::default()
        };
        let mut holding = ActivitySeen::default();
        for d in days {
            let copy = DayActivity {
                firsts: d.firsts.clone(),
                end_ms: d.end_ms,
            };
            folding.add(d).unwrap();
            holding.add(copy).unwrap();
        }
        assert_eq!(folding.data_end_ms, 320);
        // Folded after the second day (4 unfolded rows against max(0, 2)), not after the
        // third (3 against the fold's 3), then after the fourth (4 against 3).
        assert_eq!(folding.firsts.len(), 1);
        assert_eq!(folding.folded_rows, 4);
        assert_eq!(holding.firsts.len(), 4);
        let want: Vec<(String, i64)> = [("a", 40), ("b", 70), ("c", 150), ("d", 270)]
            .iter()
            .map(|(k, t)| (k.to_string(), *t))
            .collect();
        assert_eq!(earliest(folding), want);
        assert_eq!(earliest(holding), want);
    }

    /// A day of `clean.mixpanel_events` whose rows carry these (device, user, AppsFlyer)
    /// ids; every other column holds a placeholder of its type.
    fn events_day(dt: NaiveDate, ids: &[(Option<&str>, Option<&str>, Option<&str>)]) -> DataFrame {
        let n = ids.len();
        let schema = table(EVENTS_SOURCE).unwrap().polars_schema();
        let columns = schema
            .iter()
            .map(|(name, dtype)| {
                let pick = |i: usize| ids.iter().map(|r| [r.0, r.1, r.2][i]).collect::<Vec<_>>();
                match name.as_str() {
                    "dt" => Column::new(
                        name.clone(),
                        vec![i32::try_from((dt - NaiveDate::default()).num_days()).unwrap(); n],
                    )
                    .cast(dtype)
                    .unwrap(),
                    "line" => Column::new(name.clone(), (0..n as u64).collect::<Vec<_>>()),
                    "device_id" => Column::new(name.clone(), pick(0)),
                    "user_id" => Column::new(name.clone(), pick(1)),
                    "appsflyer_id" => Column::new(name.clone(), pick(2)),
                    _ => Column::new(name.clone(), vec![0i64; n])
                        .cast(dtype)
                        .unwrap(),
                }
            })
            .collect();
        DataFrame::new(n, columns).unwrap()
    }

    fn keys(df: &DataFrame) -> Vec<String> {
        let mut keys: Vec<String> = crate::test_support::strs(df, "user_key")
            .into_iter()
            .flatten()
            .collect();
        keys.sort();
        keys
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_range_looks_up_only_the_identifiers_its_events_carry() {
        let lake = Lake::open("memory://").unwrap();
        let t = table(EVENTS_SOURCE).unwrap();
        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let last = first + Duration::days(11);
        for dt in DateRange::new(first, last).days() {
            let ids: &[(Option<&str>, Option<&str>, Option<&str>)] = if dt == first {
                // Only an old day names p5's device.
                &[(Some("d5"), None, None)]
            } else if dt == last {
                &[
                    (Some("d1"), None, None),
                    (None, Some("u2"), None),
                    (None, None, Some("a3")),
                    // An id that is a node of another kind only: not a match.
                    (Some("u4"), None, None),
                    (None, None, None),
                ]
            } else {
                &[(None, None, None)]
            };
            lake.write_partition(t, dt, events_day(dt, ids))
                .await
                .unwrap();
        }
        let nodes = df!(
            "kind" => ["device_id", "user_id", "appsflyer_id", "user_id", "device_id"],
            "id" => ["d1", "u2", "a3", "u4", "d5"],
            "user_key" => ["p1", "p2", "p3", "p4", "p5"],
        )
        .unwrap();
        let narrowed = lookups_for(&lake, &nodes, DateRange::day(last))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys(&narrowed), ["p1", "p2", "p3"]);

        // A range over a third of the landed days takes everything: narrowing would
        // cost more than it saves.
        let all = lookups_for(
            &lake,
            &nodes,
            DateRange::new(last - Duration::days(4), last),
        )
        .await
        .unwrap();
        assert!(all.is_none());
    }
}
