//! Features: what a user's first hours and days say about them, as lazy plans over the clean
//! layer (`clean.events`, `clean.installs`).
//!
//! - [`critical_path`]: the event paths and single events that lead users to a target action
//!   (`mart.critical_path`, `mart.critical_event_lift`), per cohort and overall.
//! - [`user_features`]: one row per user of what they did in the observation window, with the
//!   revenue labels the models learn from.
//!
//! Both only build plans: nothing here collects. The users are *real first installs*: each
//! person's first install, neither fraud nor test ([`real_first_installs`]). Time since
//! install is measured in milliseconds from that install; events stamped before it (device
//! clocks, attribution lag) count as at the install.

pub mod critical_path;
pub mod user_features;

use polars::prelude::*;

pub use critical_path::{
    CriticalPathParams, CriticalPathPlans, critical_paths, critical_paths_at, top_path_steps,
};
pub use user_features::{FeatureParams, user_features};

/// Milliseconds in an hour and a day.
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Separator between the steps of a path (`app_open > tutorial_begin`); event names must not
/// contain it.
pub const PATH_SEPARATOR: &str = " > ";

/// What can go wrong building a feature plan or reading its result.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A parameter is out of range; the message names it and says what is allowed.
    #[error("invalid feature parameter `{param}`: {problem}")]
    InvalidParam {
        param: &'static str,
        problem: String,
    },
    /// Polars failed while reading a collected result.
    #[error("{what}: {source}")]
    Polars {
        what: String,
        #[source]
        source: PolarsError,
    },
}

pub(crate) fn invalid(param: &'static str, problem: impl Into<String>) -> FeatureError {
    FeatureError::InvalidParam {
        param,
        problem: problem.into(),
    }
}

/// Checks an event name used as a parameter: not empty, without the path separator.
pub(crate) fn check_event_name(param: &'static str, name: &str) -> Result<(), FeatureError> {
    if name.trim().is_empty() {
        return Err(invalid(param, "an event name is empty"));
    }
    if name.contains(PATH_SEPARATOR.trim()) {
        return Err(invalid(
            param,
            format!("event name {name:?} contains the path separator {PATH_SEPARATOR:?}"),
        ));
    }
    Ok(())
}

/// Each person's first install that is neither fraud nor test, one row per `user_key`:
/// `user_key`, `install_ms` (epoch milliseconds), `install_time`, `install_date` (reporting
/// zone), `platform`, `country`, `channel`, `campaign_id`. Fraud and test installs stay in
/// `clean.installs` for reporting, but their behaviour is not the app's users' behaviour.
pub fn real_first_installs(installs: LazyFrame) -> LazyFrame {
    installs
        .filter(
            col("is_first_install")
                .and(col("is_fraud").not())
                .and(col("is_test").not()),
        )
        .sort(["user_key", "install_time"], SortMultipleOptions::default())
        // A person has one first install; should a repeated report row slip through, the
        // earliest wins.
        .unique_stable(Some(cols(["user_key"])), UniqueKeepStrategy::First)
        .select([
            col("user_key"),
            epoch_ms(col("install_time")).alias("install_ms"),
            col("install_time"),
            col("report_date").alias("install_date"),
            col("platform"),
            col("country"),
            col("channel"),
            col("campaign_id"),
        ])
}

/// A datetime as epoch milliseconds (whatever its unit).
pub(crate) fn epoch_ms(time: Expr) -> Expr {
    time.dt().timestamp(TimeUnit::Milliseconds)
}

/// The end of the data as one row, `_data_end_ms`: the last event's time. A user's horizon is
/// covered when their install plus the horizon is at or before it.
pub(crate) fn data_end(events: LazyFrame) -> LazyFrame {
    events.select([epoch_ms(col("time")).max().alias("_data_end_ms")])
}

/// The events of `users` (`user_key`, `install_ms`) with `_ms`, milliseconds since the
/// user's install (events before the install count as at it). Events of nobody, of fraud or
/// test people drop out with the inner join.
pub(crate) fn events_since_install(events: LazyFrame, users: LazyFrame) -> LazyFrame {
    let since = epoch_ms(col("time")) - col("install_ms");
    events
        .join(
            users.select([col("user_key"), col("install_ms")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_column(
            when(since.clone().lt(lit(0i64)))
                .then(lit(0i64))
                .otherwise(since)
                .alias("_ms"),
        )
}

/// Milliseconds as fractional hours.
pub(crate) fn hours(ms: Expr) -> Expr {
    ms.cast(DataType::Float64) / lit(HOUR_MS as f64)
}

/// Frames the unit tests of both modules build by hand.
#[cfg(test)]
pub(crate) mod fixtures {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use polars::prelude::*;

    /// Epoch milliseconds of 2026-01-05 00:00 UTC (a Monday), the tests' install day.
    pub const T0: i64 = 1_767_571_200_000;
    pub const H: i64 = super::HOUR_MS;

    pub fn datetime_ms(name: &str, v: Vec<Option<i64>>) -> Column {
        Column::new(name.into(), v)
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
    }

    /// One install per user: `(user_key, install_ms, channel, campaign_id, fraud, test,
    /// first)`.
    #[allow(clippy::type_complexity)]
    pub fn installs(rows: &[(&str, i64, &str, Option<&str>, bool, bool, bool)]) -> LazyFrame {
        let day = |ms: i64| (ms.div_euclid(super::DAY_MS)) as i32;
        DataFrame::new_infer_height(vec![
            Column::new(
                "user_key".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            datetime_ms("install_time", rows.iter().map(|r| Some(r.1)).collect()),
            Column::new(
                "report_date".into(),
                rows.iter().map(|r| day(r.1)).collect::<Vec<_>>(),
            )
            .cast(&DataType::Date)
            .unwrap(),
            Column::new(
                "platform".into(),
                rows.iter().map(|_| "android").collect::<Vec<_>>(),
            ),
            Column::new(
                "country".into(),
                rows.iter().map(|_| Some("KR")).collect::<Vec<_>>(),
            ),
            Column::new(
                "channel".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "campaign_id".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new(
                "is_fraud".into(),
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new(
                "is_test".into(),
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            ),
            Column::new(
                "is_first_install".into(),
                rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            ),
        ])
        .unwrap()
        .lazy()
    }

    /// Events: `(user_key, event, ms since T0, revenue in reporting micros)`.
    pub fn events(rows: &[(&str, &str, i64, Option<i64>)]) -> LazyFrame {
        DataFrame::new_infer_height(vec![
            Column::new(
                "user_key".into(),
                rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>(),
            ),
            Column::new("event".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            datetime_ms("time", rows.iter().map(|r| Some(T0 + r.2)).collect()),
            Column::new(
                "revenue_reporting_micros".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
        ])
        .unwrap()
        .lazy()
    }
}
