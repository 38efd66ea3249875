//! Per-user features of the observation window, and the revenue labels, as one lazy plan.
//!
//! One row per real first install (see [`super::real_first_installs`]). The *window* is the
//! first `window_days` x 24 hours after install, `[install, install + K days)`. Features:
//!
//! | column | meaning |
//! |---|---|
//! | `user_key`, `install_time`, `install_date`, `platform`, `country`, `channel`, `campaign_id` | who; strings for the model stage to encode |
//! | `observation_days` | K |
//! | `window_complete` | the data covers the whole window (`install + K days <= data end`) |
//! | `revenue_micros` | revenue in the window, micros of the reporting currency (`revenue_reporting_micros` of `clean.events`) |
//! | `purchases` | `purchase_event` events in the window |
//! | `days_active` | distinct 24-hour days since install with any event in the window |
//! | `sessions` | `session_event` events in the window (the app opens once per session) |
//! | `events` | all events in the window |
//! | `n_<event>` | count of each of `key_events` in the window |
//! | `reached_<step>`, `hours_to_<step>` | each of `path_steps` done in the window, and how many hours after install (null when not) |
//! | `hours_to_first_purchase` | hours from install to the first purchase in the window (null when none) |
//! | `revenue_d<h>_micros` | label: revenue from install to install + h days (reporting micros) |
//! | `mature_at_d<h>` | the data covers the label's horizon: `install + h days <= data end` |
//!
//! The data's end is the last event's time. Labels of users who are not mature at a horizon
//! hold the revenue seen so far; models must train on mature users only.

use polars::prelude::*;

use super::{
    DAY_MS, FeatureError, check_event_name, data_end, events_since_install, hours, invalid,
    real_first_installs,
};
use crate::config::AnalysisSection;

/// Parameters of the feature plan; [`FeatureParams::from_analysis`] takes the window and the
/// horizons from the pipeline config's `[analysis]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureParams {
    /// Observation window K in days (default 7; `[analysis] primary_observation_days`; the
    /// config also lists 1 and 3).
    pub window_days: u32,
    /// Label horizons in days, each longer than the window (default 30, 90, 180;
    /// `[analysis] horizons`).
    pub horizons: Vec<u32>,
    /// The event that carries a purchase (default `purchase`).
    pub purchase_event: String,
    /// The event that starts a session (default `app_open`, which the app sends on every
    /// open).
    pub session_event: String,
    /// Events counted one column each (default the demo app's progress and commerce events:
    /// `tutorial_complete`, `sign_up`, `level_up`, `join_guild`, `add_to_cart`, `view_item`,
    /// `share`, `ad_impression`).
    pub key_events: Vec<String>,
    /// Critical-path steps whose reach and time are reported (default none: take them from
    /// the analysis with [`super::top_path_steps`]).
    pub path_steps: Vec<String>,
}

impl Default for FeatureParams {
    fn default() -> Self {
        FeatureParams {
            window_days: 7,
            horizons: vec![30, 90, 180],
            purchase_event: "purchase".to_owned(),
            session_event: "app_open".to_owned(),
            key_events: [
                "tutorial_complete",
                "sign_up",
                "level_up",
                "join_guild",
                "add_to_cart",
                "view_item",
                "share",
                "ad_impression",
            ]
            .map(str::to_owned)
            .to_vec(),
            path_steps: Vec::new(),
        }
    }
}

impl FeatureParams {
    /// The config's primary observation window and horizons, the rest at their defaults.
    pub fn from_analysis(analysis: &AnalysisSection) -> Self {
        FeatureParams {
            window_days: analysis.primary_observation_days,
            horizons: analysis.horizons.clone(),
            ..FeatureParams::default()
        }
    }

    /// Checks the parameters; pure. Column names must come out unique.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.window_days == 0 {
            return Err(invalid("window_days", "must be at least 1"));
        }
        for h in &self.horizons {
            if *h <= self.window_days {
                return Err(invalid(
                    "horizons",
                    format!(
                        "{h} is not longer than the window of {} days",
                        self.window_days
                    ),
                ));
            }
        }
        if self.horizons.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("horizons", "must be strictly increasing"));
        }
        check_event_name("purchase_event", &self.purchase_event)?;
        check_event_name("session_event", &self.session_event)?;
        for (param, list) in [
            ("key_events", &self.key_events),
            ("path_steps", &self.path_steps),
        ] {
            for (i, e) in list.iter().enumerate() {
                check_event_name(param, e)?;
                if list[..i].contains(e) {
                    return Err(invalid(param, format!("lists {e:?} twice")));
                }
            }
        }
        Ok(())
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.window_days) * DAY_MS
    }
}

/// The feature plan from `clean.events` (`user_key`, `event`, `time`,
/// `revenue_reporting_micros`) and `clean.installs`: one row per real first install, sorted by
/// `user_key`. Users without any event get zero counts and revenue.
pub fn user_features(
    events: LazyFrame,
    installs: LazyFrame,
    params: &FeatureParams,
) -> Result<LazyFrame, FeatureError> {
    params.validate()?;
    let users = real_first_installs(installs);
    let end = data_end(events.clone());
    let events = events_since_install(
        events.select([
            col("user_key"),
            col("event"),
            col("time"),
            col("revenue_reporting_micros"),
        ]),
        users.clone(),
    );
    let per_user = per_user(events, params);
    let lf = users
        .join(
            per_user,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .cross_join(end, None);
    let lf = with_maturity(fill_missing(lf, params), params);
    Ok(lf
        .select(output_columns(params))
        .sort(["user_key"], SortMultipleOptions::default()))
}

/// One aggregation per user over their events (`_ms` since install): the window's features
/// and the labels at every horizon.
pub fn per_user(events: LazyFrame, params: &FeatureParams) -> LazyFrame {
    let in_window = col("_ms").lt(lit(params.window_ms()));
    let is = |e: &str| col("event").eq(lit(e.to_string()));
    let count = |cond: Expr| cond.cast(DataType::UInt32).sum();
    let purchase = is(&params.purchase_event).and(in_window.clone());
    let mut aggs = vec![
        col("revenue_reporting_micros")
            .filter(in_window.clone())
            .sum()
            .alias("revenue_micros"),
        count(purchase.clone()).alias("purchases"),
        col("_ms")
            .floor_div(lit(DAY_MS))
            .filter(in_window.clone())
            .n_unique()
            .cast(DataType::UInt32)
            .alias("days_active"),
        count(is(&params.session_event).and(in_window.clone())).alias("sessions"),
        count(in_window.clone()).alias("events"),
        hours(col("_ms").filter(purchase).min()).alias("hours_to_first_purchase"),
    ];
    for e in &params.key_events {
        aggs.push(count(is(e).and(in_window.clone())).alias(format!("n_{e}")));
    }
    for s in &params.path_steps {
        let done = is(s).and(in_window.clone());
        aggs.push(done.clone().any(true).alias(format!("reached_{s}")));
        aggs.push(hours(col("_ms").filter(done).min()).alias(format!("hours_to_{s}")));
    }
    for h in &params.horizons {
        aggs.push(
            col("revenue_reporting_micros")
                .filter(col("_ms").lt(lit(i64::from(*h) * DAY_MS)))
                .sum()
                .alias(format!("revenue_d{h}_micros")),
        );
    }
    events.group_by([col("user_key")]).agg(aggs)
}

/// Users without events: zero counts and revenue, steps not reached (times stay null).
fn fill_missing(lf: LazyFrame, params: &FeatureParams) -> LazyFrame {
    let zero_u32 = |c: String| {
        col(c.as_str())
            .fill_null(lit(0u32).cast(DataType::UInt32))
            .alias(c)
    };
    let zero_i64 = |c: String| col(c.as_str()).fill_null(lit(0i64)).alias(c);
    let mut fills = vec![
        zero_i64("revenue_micros".into()),
        zero_u32("purchases".into()),
        zero_u32("days_active".into()),
        zero_u32("sessions".into()),
        zero_u32("events".into()),
    ];
    fills.extend(params.key_events.iter().map(|e| zero_u32(format!("n_{e}"))));
    fills.extend(params.path_steps.iter().map(|s| {
        let c = format!("reached_{s}");
        col(c.as_str()).fill_null(lit(false)).alias(c)
    }));
    fills.extend(
        params
            .horizons
            .iter()
            .map(|h| zero_i64(format!("revenue_d{h}_micros"))),
    );
    lf.with_columns(fills)
}

/// `window_complete` and `mature_at_d<h>`: the data reaches `install + days` (false when
/// there is no data at all).
fn with_maturity(lf: LazyFrame, params: &FeatureParams) -> LazyFrame {
    let covers = |ms: i64| {
        (col("install_ms") + lit(ms))
            .lt_eq(col("_data_end_ms"))
            .fill_null(lit(false))
    };
    let mut flags = vec![covers(params.window_ms()).alias("window_complete")];
    flags.extend(
        params
            .horizons
            .iter()
            .map(|h| covers(i64::from(*h) * DAY_MS).alias(format!("mature_at_d{h}"))),
    );
    lf.with_columns(flags).with_column(
        lit(params.window_days)
            .cast(DataType::UInt32)
            .alias("observation_days"),
    )
}

/// The output columns in order.
fn output_columns(params: &FeatureParams) -> Vec<Expr> {
    let mut names: Vec<String> = [
        "user_key",
        "install_time",
        "install_date",
        "platform",
        "country",
        "channel",
        "campaign_id",
        "observation_days",
        "window_complete",
        "revenue_micros",
        "purchases",
        "days_active",
        "sessions",
        "events",
    ]
    .map(str::to_owned)
    .to_vec();
    names.extend(params.key_events.iter().map(|e| format!("n_{e}")));
    for s in &params.path_steps {
        names.push(format!("reached_{s}"));
        names.push(format!("hours_to_{s}"));
    }
    names.push("hours_to_first_purchase".into());
    for h in &params.horizons {
        names.push(format!("revenue_d{h}_micros"));
        names.push(format!("mature_at_d{h}"));
    }
    names.iter().map(|n| col(n.as_str())).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::features::fixtures::{H, T0, events, installs};

    const M: i64 = 60_000;
    const D: i64 = DAY_MS;

    fn params() -> FeatureParams {
        FeatureParams {
            horizons: vec![30, 90],
            key_events: vec!["tutorial_complete".into(), "join_guild".into()],
            path_steps: vec!["tutorial_complete".into(), "join_guild".into()],
            ..FeatureParams::default()
        }
    }

    fn world() -> (LazyFrame, LazyFrame) {
        let inst = installs(&[
            ("a", T0, "facebook", Some("c1"), false, false, true),
            // a's reinstall: not the install a's value belongs to.
            (
                "a",
                T0 + 3 * D,
                "google_ads",
                Some("c2"),
                false,
                false,
                false,
            ),
            ("b", T0, "organic", None, false, false, true),
            ("c", T0, "facebook", Some("c1"), true, false, true),
            ("d", T0, "facebook", Some("c1"), false, true, true),
            ("f", T0 + 20 * D, "facebook", Some("c1"), false, false, true),
        ]);
        let ev = events(&[
            // Stamped a minute before the install: counts as at the install.
            ("a", "app_open", -M, None),
            ("a", "app_open", 0, None),
            ("a", "tutorial_complete", 30 * M, None),
            ("a", "purchase", 2 * H, Some(1_000_000)),
            ("a", "app_open", 25 * H, None),
            ("a", "app_open", 7 * D - H - M, None),
            ("a", "purchase", 7 * D - H, Some(2_000_000)),
            // After the 7-day window: labels only.
            ("a", "app_open", 7 * D + H - M, None),
            ("a", "purchase", 7 * D + H, Some(5_000_000)),
            ("a", "join_guild", 7 * D + 2 * H, None),
            ("a", "purchase", 40 * D, Some(7_000_000)),
            ("c", "purchase", M, Some(9_000_000)),
            ("zz", "purchase", M, Some(9_000_000)),
        ]);
        (ev, inst)
    }

    fn value<T>(df: &DataFrame, user: &str, column: &str, get: impl Fn(&Column) -> T) -> T {
        let row = df
            .clone()
            .lazy()
            .filter(col("user_key").eq(lit(user.to_string())))
            .select([col(column)])
            .collect()
            .unwrap();
        assert_eq!(row.height(), 1, "{user}: {row}");
        get(row.column(column).unwrap())
    }
    fn u32_of(df: &DataFrame, user: &str, column: &str) -> u32 {
        value(df, user, column, |c| c.u32().unwrap().get(0).unwrap())
    }
    fn i64_of(df: &DataFrame, user: &str, column: &str) -> i64 {
        value(df, user, column, |c| c.i64().unwrap().get(0).unwrap())
    }
    fn f64_of(df: &DataFrame, user: &str, column: &str) -> Option<f64> {
        value(df, user, column, |c| c.f64().unwrap().get(0))
    }
    fn bool_of(df: &DataFrame, user: &str, column: &str) -> bool {
        value(df, user, column, |c| c.bool().unwrap().get(0).unwrap())
    }

    #[test]
    fn features_match_a_hand_computation() {
        let (ev, inst) = world();
        let df = user_features(ev, inst, &params())
            .unwrap()
            .collect()
            .unwrap();
        // Real first installs only, sorted.
        assert_eq!(
            crate::test_support::strs(&df, "user_key"),
            [Some("a".into()), Some("b".into()), Some("f".into())]
        );
        assert_eq!(
            value(&df, "a", "channel", |c| c
                .str()
                .unwrap()
                .get(0)
                .map(str::to_string)),
            Some("facebook".to_string())
        );

        // a: the window is [T0, T0 + 7 days).
        assert_eq!(i64_of(&df, "a", "revenue_micros"), 3_000_000);
        assert_eq!(u32_of(&df, "a", "purchases"), 2);
        assert_eq!(u32_of(&df, "a", "days_active"), 3, "days 0, 1 and 6");
        assert_eq!(u32_of(&df, "a", "sessions"), 4);
        assert_eq!(u32_of(&df, "a", "events"), 7);
        assert_eq!(u32_of(&df, "a", "n_tutorial_complete"), 1);
        assert_eq!(u32_of(&df, "a", "n_join_guild"), 0, "after the window");
        assert!(bool_of(&df, "a", "reached_tutorial_complete"));
        assert_eq!(f64_of(&df, "a", "hours_to_tutorial_complete"), Some(0.5));
        assert!(!bool_of(&df, "a", "reached_join_guild"));
        assert_eq!(f64_of(&df, "a", "hours_to_join_guild"), None);
        assert_eq!(f64_of(&df, "a", "hours_to_first_purchase"), Some(2.0));
        assert_eq!(u32_of(&df, "a", "observation_days"), 7);
        // Labels: D30 holds the purchase an hour after the window, D90 the one at day 40.
        assert_eq!(i64_of(&df, "a", "revenue_d30_micros"), 8_000_000);
        assert_eq!(i64_of(&df, "a", "revenue_d90_micros"), 15_000_000);
        // The data ends at day 40.
        assert!(bool_of(&df, "a", "window_complete"));
        assert!(bool_of(&df, "a", "mature_at_d30"));
        assert!(!bool_of(&df, "a", "mature_at_d90"));

        // b: installed, never seen again.
        for c in [
            "purchases",
            "days_active",
            "sessions",
            "events",
            "n_join_guild",
        ] {
            assert_eq!(u32_of(&df, "b", c), 0, "{c}");
        }
        assert_eq!(i64_of(&df, "b", "revenue_micros"), 0);
        assert_eq!(i64_of(&df, "b", "revenue_d90_micros"), 0);
        assert!(!bool_of(&df, "b", "reached_tutorial_complete"));
        assert_eq!(f64_of(&df, "b", "hours_to_first_purchase"), None);
        assert!(bool_of(&df, "b", "mature_at_d30"));

        // f: installed on day 20; the window is covered, D30 is not.
        assert!(bool_of(&df, "f", "window_complete"));
        assert!(!bool_of(&df, "f", "mature_at_d30"));
    }

    #[test]
    fn a_one_day_window_cuts_at_24_hours() {
        let (ev, inst) = world();
        let p = FeatureParams {
            window_days: 1,
            ..params()
        };
        let df = user_features(ev, inst, &p).unwrap().collect().unwrap();
        assert_eq!(i64_of(&df, "a", "revenue_micros"), 1_000_000);
        assert_eq!(u32_of(&df, "a", "days_active"), 1);
        assert_eq!(u32_of(&df, "a", "sessions"), 2);
        assert_eq!(i64_of(&df, "a", "revenue_d30_micros"), 8_000_000);
    }

    #[test]
    fn the_plan_is_one_lazy_plan_over_the_scans() {
        let dir = tempfile::tempdir().unwrap();
        let (ev, inst) = world();
        let mut scans = Vec::new();
        for (name, lf) in [("events", ev), ("installs", inst)] {
            let path = dir.path().join(format!("{name}.parquet"));
            let mut df = lf.collect().unwrap();
            let file = std::fs::File::create(&path).unwrap();
            ParquetWriter::new(file).finish(&mut df).unwrap();
            let p = PlRefPath::new(path.to_string_lossy().as_ref());
            scans.push(
                LazyFrame::scan_parquet_files(vec![p].into(), ScanArgsParquet::default()).unwrap(),
            );
        }
        let inst = scans.pop().unwrap();
        let ev = scans.pop().unwrap();
        let plan = user_features(ev.clone(), inst.clone(), &params()).unwrap();
        let explained = plan.explain(true).unwrap();
        // Both inputs are read by the plan itself; nothing was collected and fed back in as
        // an in-memory frame.
        assert!(explained.contains("events.parquet"), "{explained}");
        assert!(explained.contains("installs.parquet"), "{explained}");
        assert!(!explained.contains("DF ["), "{explained}");
        let paths = crate::features::critical_paths(
            ev,
            inst,
            &crate::features::CriticalPathParams::default(),
        )
        .unwrap()
        .paths
        .explain(true)
        .unwrap();
        assert!(!paths.contains("DF ["), "{paths}");
        // And it gives the same rows as from memory, where the frames show as `DF [`.
        let (ev, inst) = world();
        let in_memory = user_features(ev, inst, &params()).unwrap();
        assert!(in_memory.explain(true).unwrap().contains("DF ["));
        let from_memory = in_memory.collect().unwrap();
        assert!(plan.collect().unwrap().equals_missing(&from_memory));
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |p: FeatureParams, what: &str| {
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        };
        bad(
            FeatureParams {
                window_days: 0,
                ..params()
            },
            "window_days",
        );
        bad(
            FeatureParams {
                horizons: vec![7],
                ..params()
            },
            "horizons",
        );
        bad(
            FeatureParams {
                horizons: vec![90, 30],
                ..params()
            },
            "horizons",
        );
        bad(
            FeatureParams {
                key_events: vec!["share".into(), "share".into()],
                ..params()
            },
            "twice",
        );
        let p = FeatureParams::from_analysis(&crate::config::AnalysisSection::default());
        assert_eq!(
            (p.window_days, p.horizons.as_slice()),
            (7, &[30, 90, 180][..])
        );
        p.validate().unwrap();
    }
}
