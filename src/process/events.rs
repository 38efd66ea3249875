//! `clean.events`: each day's clean Mixpanel events joined to the person and their first
//! install. Events of test people are removed (quarantined by the stage); events of fraud
//! installs stay, flagged, so later stages can leave them out of training and campaign LTV.

use polars::prelude::*;

use crate::cleanse::reject::{reject_where_with, with_reject};

/// The columns of `clean.events` (`dt` included), in schema order, plus the reject reason.
pub const COLUMNS: [&str; 25] = [
    "dt",
    "line",
    "user_key",
    "event",
    "time",
    "report_date",
    "install_time",
    "install_date",
    "days_since_install",
    "hours_since_install",
    "revenue_micros",
    "currency",
    "reporting_currency",
    "revenue_reporting_micros",
    "channel",
    "campaign_id",
    "adset_id",
    "ad_id",
    "platform",
    "country",
    "user_id",
    "user_id_filled",
    "is_fraud",
    crate::cleanse::reject::REJECT,
    // Not a table column: whether the event was linked to a person at all.
    "_linked",
];

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A left join that keeps the events where they are. Every right side here has one row per
/// key, so no event is repeated, and the day's events stay in `line` order without a sort
/// of all their columns at the end.
pub(crate) fn in_place() -> JoinArgs {
    JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    }
}

/// The person of each event: by its Mixpanel device, else its app user id, else its
/// AppsFlyer id (`nodes`: `kind`, `id`, `user_key`).
pub fn attach_person(events: LazyFrame, nodes: LazyFrame) -> LazyFrame {
    let lookup = |kind: &str, name: &str| {
        nodes
            .clone()
            .filter(col("kind").eq(lit(kind.to_string())))
            .select([col("id"), col("user_key").alias(name)])
    };
    events
        .join(
            lookup("device_id", "_by_device"),
            [col("device_id")],
            [col("id")],
            in_place(),
        )
        .join(
            lookup("user_id", "_by_user"),
            [col("user_id")],
            [col("id")],
            in_place(),
        )
        .join(
            lookup("appsflyer_id", "_by_install"),
            [col("appsflyer_id")],
            [col("id")],
            in_place(),
        )
        .with_column(
            coalesce(&[col("_by_device"), col("_by_user"), col("_by_install")]).alias("user_key"),
        )
        .drop(cols(["_by_device", "_by_user", "_by_install"]))
}

/// The person's first install (`persons`: `user_key`, `install_time`, `install_date`, `channel`,
/// `campaign_id`, `adset_id`, `ad_id`, `is_fraud`, `test_reason`, `known_user_id`): time
/// since install, campaign keys, the app user id filled, and the flags.
pub fn attach_install(events: LazyFrame, persons: LazyFrame) -> LazyFrame {
    let since_ms = col("time").cast(DataType::Int64) - col("install_time").cast(DataType::Int64);
    events
        .join(persons, [col("user_key")], [col("user_key")], in_place())
        .with_columns([
            since_ms
                .clone()
                .floor_div(lit(DAY_MS))
                .cast(DataType::Int32)
                .alias("days_since_install"),
            since_ms
                .floor_div(lit(HOUR_MS))
                .cast(DataType::Int32)
                .alias("hours_since_install"),
            col("user_id")
                .is_null()
                .and(col("known_user_id").is_not_null())
                .alias("user_id_filled"),
            coalesce(&[col("user_id"), col("known_user_id")]).alias("user_id"),
            col("is_fraud").fill_null(lit(false)).alias("is_fraud"),
            col("user_key").is_not_null().alias("_linked"),
        ])
}

/// Events of test people go: they are not the app's users.
pub fn reject_test_people(events: LazyFrame) -> LazyFrame {
    reject_where_with(
        with_reject(events),
        col("test_reason").is_not_null(),
        "test data",
        col("test_reason"),
    )
}

/// The whole plan for one day of `clean.mixpanel_events`, in its order (`line`).
pub fn events_plan(events: LazyFrame, nodes: LazyFrame, persons: LazyFrame) -> LazyFrame {
    let lf = attach_person(events, nodes);
    let lf = attach_install(lf, persons);
    reject_test_people(lf).select(COLUMNS.map(col))
}

/// [`events_plan`] collected after every step: the eager comparison of the benchmark.
pub fn events_plan_eager(
    events: LazyFrame,
    nodes: LazyFrame,
    persons: LazyFrame,
) -> PolarsResult<DataFrame> {
    let df = events.collect()?;
    let df = attach_person(df.lazy(), nodes).collect()?;
    let df = attach_install(df.lazy(), persons).collect()?;
    let df = reject_test_people(df.lazy()).collect()?;
    df.lazy().select(COLUMNS.map(col)).collect()
}

/// Each person's first event at or after their first install, from joined events.
pub fn first_activity(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col("user_key").is_not_null().and(
                col("time")
                    .cast(DataType::Int64)
                    .gt_eq(col("install_time").cast(DataType::Int64)),
            ),
        )
        .group_by([col("user_key")])
        .agg([col("time").min().alias("first_activity")])
}
