//! Critical paths: which early behaviour leads users to a target action (by default their
//! first `purchase`), as two lazy plans for `mart.critical_path` and
//! `mart.critical_event_lift`.
//!
//! **Definitions.** A user's *path* is the list of distinct events they did in the first
//! `window_hours` after install and before their first target event, in order of each
//! event's first occurrence (ties in time by event name); the target itself and the
//! `exclude_events` never appear. A *prefix* of length L is the path's first L steps. A user
//! *converted* when their first target event falls within `horizon_hours` of install; only
//! users the data covers through the horizon count, so recent installs are not mistaken for
//! users who never convert. A cohort's *base rate* is its users' conversion rate, users
//! without any event included.
//!
//! **Ranking.** Rows need `min_support` users to be listed at all. They are ranked, within
//! each cohort and kind, by `score` = the lower end of the 95% Wilson interval of the
//! conversion rate over the cohort's base rate: the lift the support makes credible. At the
//! ~1% conversion rates of app purchases, raw lift on a hundred users is mostly luck: at a 1%
//! base rate, 4 conversions in 100 users (lift 4) score 1.6, like 17 in 700 (lift 2.4), and 3
//! in 100 (lift 3) score 1.0. Ties go to the larger support, then to the path in text order.
//!
//! A caveat the definitions carry: a converter's path stops at the target while a
//! non-converter's runs to the window's end, so long *full* paths lean towards non-converters
//! and short ones towards converters. Prefixes of behaviour that comes before the target
//! (onboarding) are not affected; read the prefix ranking for "what leads to the target" and
//! the full paths for "what users do".

use polars::prelude::*;

use super::{
    DAY_MS, FeatureError, HOUR_MS, PATH_SEPARATOR, check_event_name, data_end,
    events_since_install, hours, invalid, real_first_installs,
};
use crate::config::AnalysisSection;

/// z of the two-sided 95% interval the ranking score takes its lower end from.
const Z_95: f64 = 1.96;

/// Cohort kinds, in output order.
pub const COHORT_KINDS: [&str; 4] = ["overall", "install_week", "channel", "campaign"];

/// Parameters of the analysis; [`CriticalPathParams::from_analysis`] takes the target and the
/// window from the pipeline config's `[analysis]`, the rest are the defaults below.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticalPathParams {
    /// Event name of the target action; a user converts at their first one (default
    /// `purchase`; `[analysis] target_action`).
    pub target: String,
    /// Paths are made of the events of the first `window_hours` after install (default 168,
    /// a week; `[analysis] critical_path_window_hours`).
    pub window_hours: u32,
    /// A user converted when they reached the target within `horizon_hours` of install; at
    /// least the window, so that a path never runs past the horizon (default: the window).
    pub horizon_hours: u32,
    /// Users a path or event needs before it is listed and ranked (default 100). Below it a
    /// rate is noise: at a 2% base rate, 100 users expect 2 conversions.
    pub min_support: u32,
    /// Longest prefix listed, in steps; full paths longer than this are listed only through
    /// their prefixes (default 8), which keeps paths within the mart's key length.
    pub max_steps: u32,
    /// Events left out of paths and of the event lift: steps of the target's own funnel say
    /// only that the target is seconds away, not what leads a user there (default
    /// `add_to_cart`, which precedes every `purchase`).
    pub exclude_events: Vec<String>,
}

impl Default for CriticalPathParams {
    fn default() -> Self {
        CriticalPathParams {
            target: "purchase".to_owned(),
            window_hours: 168,
            horizon_hours: 168,
            min_support: 100,
            max_steps: 8,
            exclude_events: vec!["add_to_cart".to_owned()],
        }
    }
}

impl CriticalPathParams {
    /// The config's target action and window (the horizon follows the window), the other
    /// parameters at their defaults.
    pub fn from_analysis(analysis: &AnalysisSection) -> Self {
        let window = analysis.critical_path_window_hours.get();
        CriticalPathParams {
            target: analysis.target_action.clone(),
            window_hours: window,
            horizon_hours: window,
            ..CriticalPathParams::default()
        }
    }

    /// Checks the parameters; pure.
    pub fn validate(&self) -> Result<(), FeatureError> {
        check_event_name("target", &self.target)?;
        for e in &self.exclude_events {
            check_event_name("exclude_events", e)?;
            if *e == self.target {
                return Err(invalid(
                    "exclude_events",
                    format!("lists the target {e:?} itself"),
                ));
            }
        }
        if self.window_hours == 0 {
            return Err(invalid("window_hours", "must be at least 1"));
        }
        if self.horizon_hours < self.window_hours {
            return Err(invalid(
                "horizon_hours",
                format!(
                    "{} is shorter than window_hours {}: a path would run past the horizon",
                    self.horizon_hours, self.window_hours
                ),
            ));
        }
        if self.min_support == 0 {
            return Err(invalid("min_support", "must be at least 1 user"));
        }
        if !(1..=20).contains(&self.max_steps) {
            return Err(invalid("max_steps", "must be between 1 and 20"));
        }
        Ok(())
    }

    /// Hours after install past which no event changes the analysis: the later of the
    /// window and the horizon.
    pub fn reach_hours(&self) -> u32 {
        self.window_hours.max(self.horizon_hours)
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.window_hours) * HOUR_MS
    }

    fn horizon_ms(&self) -> i64 {
        i64::from(self.horizon_hours) * HOUR_MS
    }
}

/// The two plans, in the columns and order of their mart schemas.
pub struct CriticalPathPlans {
    /// `mart.critical_path`.
    pub paths: LazyFrame,
    /// `mart.critical_event_lift`.
    pub event_lift: LazyFrame,
}

/// Builds both plans from `clean.events` (`user_key`, `event`, `time`) and `clean.installs`.
pub fn critical_paths(
    events: LazyFrame,
    installs: LazyFrame,
    params: &CriticalPathParams,
) -> Result<CriticalPathPlans, FeatureError> {
    let end = data_end(events.clone());
    critical_paths_at(events, installs, end, params)
}

/// [`critical_paths`] with the data's end given (`end`: one row, `_data_end_ms`), so that
/// `events` may hold only what the analysis reads: each person's events before install +
/// [`CriticalPathParams::reach_hours`]. The marts pass such a slice, read with a filter on
/// `hours_since_install` instead of every event of the history.
pub fn critical_paths_at(
    events: LazyFrame,
    installs: LazyFrame,
    end: LazyFrame,
    params: &CriticalPathParams,
) -> Result<CriticalPathPlans, FeatureError> {
    params.validate()?;
    let users = covered_users(real_first_installs(installs), end.clone(), params);
    let events = events_since_install(
        events.select([col("user_key"), col("event"), col("time")]),
        users.clone(),
    );
    let outcomes = outcomes(events.clone(), users.clone(), params);
    let early = early_events(events, outcomes.clone(), params);
    let cohorts = user_cohorts(users)?;
    let base = cohort_base(cohorts.clone(), outcomes.clone());
    let paths = user_paths(early.clone(), params.max_steps)?;
    let paths = path_table(
        paths,
        cohorts.clone(),
        outcomes.clone(),
        base.clone(),
        params,
    )?;
    let event_lift = event_lift_table(early, cohorts, outcomes, base, params)?;
    Ok(CriticalPathPlans {
        paths: finish(paths, end.clone(), params, &PATH_COLUMNS, &["kind", "path"]),
        event_lift: finish(event_lift, end, params, &EVENT_LIFT_COLUMNS, &["event"]),
    })
}

/// Real first installs the data covers through the horizon: `install_ms + horizon <= end`.
pub fn covered_users(users: LazyFrame, end: LazyFrame, params: &CriticalPathParams) -> LazyFrame {
    users
        .cross_join(end, None)
        .filter(
            (col("install_ms") + lit(params.horizon_ms()))
                .lt_eq(col("_data_end_ms"))
                .fill_null(lit(false)),
        )
        .drop(cols(["_data_end_ms"]))
}

/// Per user: `_target_ms` (first target event since install, null when none), `converted`
/// (within the horizon) and `_hours_to_convert` (null unless converted).
pub fn outcomes(events: LazyFrame, users: LazyFrame, params: &CriticalPathParams) -> LazyFrame {
    let first_target = events
        .filter(col("event").eq(lit(params.target.clone())))
        .group_by([col("user_key")])
        .agg([col("_ms").min().alias("_target_ms")]);
    let converted = col("_target_ms")
        .lt(lit(params.horizon_ms()))
        .fill_null(lit(false));
    users
        .select([col("user_key")])
        .join(
            first_target,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            converted.clone().alias("converted"),
            when(converted)
                .then(hours(col("_target_ms")))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("_hours_to_convert"),
        ])
}

/// Each user's distinct early events with their first time, `_first_ms`: within the window,
/// strictly before the user's first target event, the target and excluded events left out.
pub fn early_events(
    events: LazyFrame,
    outcomes: LazyFrame,
    params: &CriticalPathParams,
) -> LazyFrame {
    let kept = params
        .exclude_events
        .iter()
        .fold(col("event").neq(lit(params.target.clone())), |acc, e| {
            acc.and(col("event").neq(lit(e.clone())))
        });
    let before_target = col("_target_ms")
        .is_null()
        .or(col("_ms").lt(col("_target_ms")));
    events
        .join(
            outcomes.select([col("user_key"), col("_target_ms")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .filter(
            col("_ms")
                .lt(lit(params.window_ms()))
                .and(before_target)
                .and(kept),
        )
        .group_by([col("user_key"), col("event")])
        .agg([col("_ms").min().alias("_first_ms")])
}

/// Full paths (`kind = path`, up to `max_steps` steps) and prefixes (`kind = prefix`, 1 to
/// `max_steps` steps) of every user with at least one early event: `user_key`, `kind`,
/// `path`, `steps`. Users without one have no path; they still count in the base rate.
pub fn user_paths(early: LazyFrame, max_steps: u32) -> Result<LazyFrame, FeatureError> {
    let lists = early
        .group_by([col("user_key")])
        .agg([col("event")
            .sort_by(
                [col("_first_ms"), col("event")],
                SortMultipleOptions::default(),
            )
            .alias("_steps")])
        .with_column(
            col("_steps")
                .list()
                .len()
                .cast(DataType::UInt32)
                .alias("_n"),
        );
    let join = |steps: Expr| steps.list().join(lit(PATH_SEPARATOR), false);
    let mut frames = vec![
        lists
            .clone()
            .filter(col("_n").lt_eq(lit(max_steps)))
            .select([
                col("user_key"),
                lit("path").alias("kind"),
                join(col("_steps")).alias("path"),
                col("_n").alias("steps"),
            ]),
    ];
    for l in 1..=max_steps {
        frames.push(lists.clone().filter(col("_n").gt_eq(lit(l))).select([
            col("user_key"),
            lit("prefix").alias("kind"),
            join(col("_steps").list().head(lit(i64::from(l)))).alias("path"),
            lit(l).cast(DataType::UInt32).alias("steps"),
        ]));
    }
    concat(frames, UnionArgs::default()).map_err(|source| FeatureError::Polars {
        what: "critical path plan: paths and prefixes".into(),
        source,
    })
}

/// Every user once per cohort: `user_key`, `cohort_kind`, `cohort`, `install_week`,
/// `channel`, `campaign_id` (the last three set where the kind uses them). Organic users have
/// no campaign cohort.
pub fn user_cohorts(users: LazyFrame) -> Result<LazyFrame, FeatureError> {
    let null_date = || lit(NULL).cast(DataType::Date);
    let null_str = || lit(NULL).cast(DataType::String);
    let base = users.select([
        col("user_key"),
        install_week(col("install_date")).alias("_week"),
        col("channel"),
        col("campaign_id"),
    ]);
    let frame = |lf: LazyFrame, kind: &str, cohort: Expr, week: Expr, ch: Expr, cmp: Expr| {
        lf.select([
            col("user_key"),
            lit(kind.to_string()).alias("cohort_kind"),
            cohort.alias("cohort"),
            week.alias("install_week"),
            ch.alias("channel"),
            cmp.alias("campaign_id"),
        ])
    };
    let frames = [
        frame(
            base.clone(),
            COHORT_KINDS[0],
            lit("all"),
            null_date(),
            null_str(),
            null_str(),
        ),
        frame(
            base.clone(),
            COHORT_KINDS[1],
            col("_week").cast(DataType::String),
            col("_week"),
            null_str(),
            null_str(),
        ),
        frame(
            base.clone(),
            COHORT_KINDS[2],
            col("channel"),
            null_date(),
            col("channel"),
            null_str(),
        ),
        frame(
            base.filter(col("campaign_id").is_not_null()),
            COHORT_KINDS[3],
            concat_str([col("channel"), lit("/"), col("campaign_id")], "", false),
            null_date(),
            col("channel"),
            col("campaign_id"),
        ),
    ];
    concat(frames, UnionArgs::default()).map_err(|source| FeatureError::Polars {
        what: "critical path plan: cohorts".into(),
        source,
    })
}

/// Monday of the ISO week of a date: day numbers count from Thursday 1970-01-01.
pub fn install_week(date: Expr) -> Expr {
    let days = date.cast(DataType::Int32);
    ((days + lit(3i32)).floor_div(lit(7i32)) * lit(7i32) - lit(3i32)).cast(DataType::Date)
}

/// Per cohort: `cohort_users`, `cohort_conversions`, `base_rate`.
pub fn cohort_base(cohorts: LazyFrame, outcomes: LazyFrame) -> LazyFrame {
    cohorts
        .join(
            outcomes.select([col("user_key"), col("converted")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("cohort_kind"), col("cohort")])
        .agg([
            len().cast(DataType::UInt64).alias("cohort_users"),
            col("converted")
                .cast(DataType::UInt64)
                .sum()
                .alias("cohort_conversions"),
        ])
        .with_column(
            (col("cohort_conversions").cast(DataType::Float64)
                / col("cohort_users").cast(DataType::Float64))
            .alias("base_rate"),
        )
}

/// Support, conversions and median time to convert of every path and prefix per cohort,
/// from `min_support` users, with rates and ranks.
pub fn path_table(
    paths: LazyFrame,
    cohorts: LazyFrame,
    outcomes: LazyFrame,
    base: LazyFrame,
    params: &CriticalPathParams,
) -> Result<LazyFrame, FeatureError> {
    let lf = paths
        .join(
            cohorts,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            outcomes.select([col("user_key"), col("converted"), col("_hours_to_convert")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("cohort_kind"), col("cohort"), col("kind"), col("path")])
        .agg([
            col("install_week").first(),
            col("channel").first(),
            col("campaign_id").first(),
            col("steps").first(),
            len().cast(DataType::UInt64).alias("support"),
            col("converted")
                .cast(DataType::UInt64)
                .sum()
                .alias("conversions"),
            col("_hours_to_convert")
                .median()
                .alias("median_hours_to_convert"),
        ]);
    let lf = with_rates(supported(lf, base, params));
    rank_within(lf, &["cohort_kind", "cohort", "kind"], "path")
}

/// Per cohort and early event: support, conversions with and without it, lift and rank.
pub fn event_lift_table(
    early: LazyFrame,
    cohorts: LazyFrame,
    outcomes: LazyFrame,
    base: LazyFrame,
    params: &CriticalPathParams,
) -> Result<LazyFrame, FeatureError> {
    let lf = early
        .join(
            cohorts,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            outcomes.select([col("user_key"), col("converted")]),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("cohort_kind"), col("cohort"), col("event")])
        .agg([
            col("install_week").first(),
            col("channel").first(),
            col("campaign_id").first(),
            len().cast(DataType::UInt64).alias("support"),
            col("converted")
                .cast(DataType::UInt64)
                .sum()
                .alias("conversions"),
            hours(col("_first_ms"))
                .median()
                .alias("median_hours_to_event"),
        ]);
    let f = |c: &str| col(c).cast(DataType::Float64);
    let users_without = f("cohort_users") - f("support");
    let rate_without = when(users_without.clone().gt(lit(0.0)))
        .then((f("cohort_conversions") - f("conversions")) / users_without)
        .otherwise(lit(NULL).cast(DataType::Float64));
    let lf = with_rates(supported(lf, base, params))
        .with_column(rate_without.alias("conversion_rate_without"))
        .with_column(
            when(col("conversion_rate_without").gt(lit(0.0)))
                .then(col("conversion_rate") / col("conversion_rate_without"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("lift_vs_without"),
        );
    rank_within(lf, &["cohort_kind", "cohort"], "event")
}

/// Rows with `min_support` users, joined to their cohort's base.
fn supported(lf: LazyFrame, base: LazyFrame, params: &CriticalPathParams) -> LazyFrame {
    lf.filter(col("support").gt_eq(lit(u64::from(params.min_support))))
        .join(
            base,
            [col("cohort_kind"), col("cohort")],
            [col("cohort_kind"), col("cohort")],
            JoinArgs::new(JoinType::Inner),
        )
}

/// `conversion_rate`, its Wilson lower bound `conversion_rate_low`, `lift` and `score` from
/// `support`, `conversions` and `base_rate`.
fn with_rates(lf: LazyFrame) -> LazyFrame {
    let n = col("support").cast(DataType::Float64);
    let c = col("conversions").cast(DataType::Float64);
    let over_base = |e: Expr| {
        when(col("base_rate").gt(lit(0.0)))
            .then(e / col("base_rate"))
            .otherwise(lit(NULL).cast(DataType::Float64))
    };
    lf.with_columns([
        (c.clone() / n.clone()).alias("conversion_rate"),
        wilson_low(c, n).alias("conversion_rate_low"),
    ])
    .with_columns([
        over_base(col("conversion_rate")).alias("lift"),
        over_base(col("conversion_rate_low")).alias("score"),
    ])
}

/// Lower end of the Wilson score interval of `c` successes in `n` trials at [`Z_95`]:
/// `(p + z²/2n - z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`. Unlike `p - z se`, it stays
/// within [0, 1] and is honest at small `n` and at rates near 0, where ours live.
pub fn wilson_low(c: Expr, n: Expr) -> Expr {
    let z2 = Z_95 * Z_95;
    let p = c / n.clone();
    let spread = (p.clone() * (lit(1.0) - p.clone()) / n.clone()
        + lit(z2 / 4.0) / (n.clone() * n.clone()))
    .sqrt();
    (p + lit(z2 / 2.0) / n.clone() - lit(Z_95) * spread) / (lit(1.0) + lit(z2) / n)
}

/// Sorts by the groups, then score (best first, nulls last), support (larger first) and the
/// `tie` column, and numbers the rows with a score within each group: `rank`, 1 = best.
fn rank_within(lf: LazyFrame, groups: &[&str], tie: &str) -> Result<LazyFrame, FeatureError> {
    let mut by: Vec<Expr> = groups.iter().map(|g| col(*g)).collect();
    by.extend([col("score"), col("support"), col(tie)]);
    let mut descending = vec![false; groups.len()];
    descending.extend([true, true, false]);
    let position = col("score")
        .cum_count(false)
        .over(groups.iter().map(|g| col(*g)).collect::<Vec<_>>())
        .map_err(|source| FeatureError::Polars {
            what: "critical path plan: ranks".into(),
            source,
        })?;
    Ok(lf
        .sort_by_exprs(
            by,
            SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .with_column(
            when(col("score").is_not_null())
                .then(position.cast(DataType::UInt32))
                .otherwise(lit(NULL).cast(DataType::UInt32))
                .alias("rank"),
        ))
}

/// The columns of `mart.critical_path`, in schema order.
pub const PATH_COLUMNS: [&str; 23] = [
    "dt",
    "target",
    "window_hours",
    "horizon_hours",
    "cohort_kind",
    "cohort",
    "install_week",
    "channel",
    "campaign_id",
    "kind",
    "path",
    "steps",
    "support",
    "conversions",
    "conversion_rate",
    "conversion_rate_low",
    "cohort_users",
    "cohort_conversions",
    "base_rate",
    "lift",
    "score",
    "median_hours_to_convert",
    "rank",
];

/// The columns of `mart.critical_event_lift`, in schema order.
pub const EVENT_LIFT_COLUMNS: [&str; 23] = [
    "dt",
    "target",
    "window_hours",
    "horizon_hours",
    "cohort_kind",
    "cohort",
    "install_week",
    "channel",
    "campaign_id",
    "event",
    "support",
    "conversions",
    "conversion_rate",
    "conversion_rate_low",
    "conversion_rate_without",
    "cohort_users",
    "cohort_conversions",
    "base_rate",
    "lift",
    "lift_vs_without",
    "score",
    "median_hours_to_event",
    "rank",
];

/// Adds the analysis' date (the UTC day of the data's end) and parameters, selects the
/// mart's columns and sorts: cohort, then `kind` (paths), rank (unranked rows last), then
/// `key` (path or event).
fn finish(
    lf: LazyFrame,
    end: LazyFrame,
    params: &CriticalPathParams,
    columns: &[&str],
    key: &[&str],
) -> LazyFrame {
    let dt = (col("_data_end_ms").floor_div(lit(DAY_MS)))
        .cast(DataType::Int32)
        .cast(DataType::Date);
    let mut by = vec!["cohort_kind", "cohort"];
    let (kind, tie) = key.split_at(key.len().saturating_sub(1));
    by.extend(kind);
    by.push("rank");
    by.extend(tie);
    lf.cross_join(end, None)
        .with_columns([
            dt.alias("dt"),
            lit(params.target.clone()).alias("target"),
            lit(params.window_hours)
                .cast(DataType::UInt32)
                .alias("window_hours"),
            lit(params.horizon_hours)
                .cast(DataType::UInt32)
                .alias("horizon_hours"),
        ])
        .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .sort(
            by,
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
}

/// The steps of the best-ranked prefix of the overall cohort in a collected
/// `mart.critical_path` frame: the critical-path steps [`super::user_features`] reports on.
/// Empty when nothing ranked.
pub fn top_path_steps(paths: &DataFrame) -> Result<Vec<String>, FeatureError> {
    let err = |source| FeatureError::Polars {
        what: "mart.critical_path: top path".into(),
        source,
    };
    let top = paths
        .clone()
        .lazy()
        .filter(
            col("cohort_kind")
                .eq(lit(COHORT_KINDS[0]))
                .and(col("kind").eq(lit("prefix")))
                .and(col("rank").eq(lit(1u32))),
        )
        .select([col("path")])
        .collect()
        .map_err(err)?;
    let path = top
        .column("path")
        .and_then(|c| Ok(c.str()?.iter().next().flatten().map(str::to_string)))
        .map_err(err)?;
    Ok(path
        .map(|p| p.split(PATH_SEPARATOR).map(str::to_string).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::features::fixtures::{H, T0, events, installs};

    const M: i64 = 60_000;

    fn params() -> CriticalPathParams {
        CriticalPathParams {
            window_hours: 48,
            horizon_hours: 48,
            min_support: 1,
            ..CriticalPathParams::default()
        }
    }

    /// Seven covered users (u1-u6, u8), a fraud install (u7) and a late one (u9).
    fn world() -> (LazyFrame, LazyFrame) {
        let fb = Some("c1");
        let gg = Some("c2");
        let inst = installs(&[
            ("u1", T0, "facebook", fb, false, false, true),
            ("u2", T0, "facebook", fb, false, false, true),
            ("u3", T0, "facebook", fb, false, false, true),
            ("u4", T0, "google_ads", gg, false, false, true),
            ("u5", T0, "google_ads", gg, false, false, true),
            ("u6", T0, "google_ads", gg, false, false, true),
            ("u7", T0, "facebook", fb, true, false, true),
            ("u8", T0, "organic", None, false, false, true),
            ("u9", T0 + 240 * H, "facebook", fb, false, false, true),
        ]);
        let ev = events(&[
            // u1 walks tutorial > guild, then the checkout funnel; events after the target
            // do not count.
            ("u1", "app_open", 0, None),
            ("u1", "tutorial_complete", M, None),
            ("u1", "join_guild", 10 * M, None),
            ("u1", "add_to_cart", H, None),
            ("u1", "purchase", H + M / 2, Some(1_000_000)),
            ("u1", "level_up", 2 * H, None),
            ("u1", "purchase", 3 * H, Some(1_000_000)),
            // u2: two events at the same instant order by name.
            ("u2", "app_open", 0, None),
            ("u2", "tutorial_complete", 5 * M, None),
            ("u2", "sign_up", 5 * M, None),
            ("u2", "tutorial_complete", 6 * M, None),
            ("u2", "purchase", 30 * H, Some(1_000_000)),
            // u3 converts at hour 0: nothing comes before the target.
            ("u3", "purchase", 0, Some(1_000_000)),
            ("u3", "app_open", 0, None),
            // u4 never converts; the share falls after the window.
            ("u4", "app_open", 0, None),
            ("u4", "tutorial_complete", M, None),
            ("u4", "level_up", 47 * H, None),
            ("u4", "share", 49 * H, None),
            // u5 has no events. u6 converts after the horizon.
            ("u6", "app_open", 0, None),
            ("u6", "purchase", 50 * H, Some(1_000_000)),
            ("u7", "app_open", 0, None),
            ("u7", "purchase", M, Some(1_000_000)),
            ("u8", "app_open", 0, None),
            ("u8", "tutorial_complete", M, None),
            ("u9", "app_open", 241 * H, None),
        ]);
        (ev, inst)
    }

    fn run(p: &CriticalPathParams) -> (DataFrame, DataFrame) {
        let (ev, inst) = world();
        let plans = critical_paths(ev, inst, p).unwrap();
        (
            plans.paths.collect().unwrap(),
            plans.event_lift.collect().unwrap(),
        )
    }

    /// `(path or event) -> (support, conversions, rank)` of one cohort (and kind).
    fn rows(
        df: &DataFrame,
        cohort: &str,
        kind: Option<&str>,
        key: &str,
    ) -> BTreeMap<String, (u64, u64, Option<u32>)> {
        let mut filter = col("cohort").eq(lit(cohort.to_string()));
        if let Some(k) = kind {
            filter = filter.and(col("kind").eq(lit(k.to_string())));
        }
        let df = df.clone().lazy().filter(filter).collect().unwrap();
        let keys = crate::test_support::strs(&df, key);
        let support = df.column("support").unwrap().u64().unwrap().clone();
        let conv = df.column("conversions").unwrap().u64().unwrap().clone();
        let rank = df.column("rank").unwrap().u32().unwrap().clone();
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k.unwrap(),
                    (support.get(i).unwrap(), conv.get(i).unwrap(), rank.get(i)),
                )
            })
            .collect()
    }

    fn f64_of(df: &DataFrame, filter: Expr, column: &str) -> Option<f64> {
        let df = df.clone().lazy().filter(filter).collect().unwrap();
        assert_eq!(df.height(), 1, "{df}");
        df.column(column).unwrap().f64().unwrap().get(0)
    }

    #[test]
    fn full_paths_are_distinct_events_before_the_target_in_first_occurrence_order() {
        let (paths, _) = run(&params());
        let full = rows(&paths, "all", Some("path"), "path");
        let expected: BTreeMap<String, (u64, u64, Option<u32>)> = [
            ("app_open > tutorial_complete > join_guild", 1, 1),
            // The tie at 5 minutes goes by name; the second tutorial_complete is no step.
            ("app_open > sign_up > tutorial_complete", 1, 1),
            ("app_open > tutorial_complete > level_up", 1, 0),
            ("app_open > tutorial_complete", 1, 0),
            // u6 converted after the horizon: a non-converter.
            ("app_open", 1, 0),
        ]
        .into_iter()
        .map(|(p, s, c)| (p.to_string(), (s, c, None)))
        .collect();
        let got: BTreeMap<String, (u64, u64, Option<u32>)> = full
            .into_iter()
            .map(|(p, (s, c, _))| (p, (s, c, None)))
            .collect();
        assert_eq!(got, expected);
        for p in crate::test_support::strs(&paths, "path")
            .into_iter()
            .flatten()
        {
            assert!(
                !p.contains("purchase") && !p.contains("add_to_cart") && !p.contains("share"),
                "{p}"
            );
        }
    }

    #[test]
    fn every_covered_user_counts_in_the_base_rate() {
        let (paths, lift) = run(&params());
        for df in [&paths, &lift] {
            let all = df
                .clone()
                .lazy()
                .filter(col("cohort").eq(lit("all")))
                .collect()
                .unwrap();
            // u1-u6 and u8: the hour-0 converter and the user without events included,
            // the fraud install and the install the data does not yet cover left out.
            let users = all.column("cohort_users").unwrap().u64().unwrap();
            let conv = all.column("cohort_conversions").unwrap().u64().unwrap();
            assert!(users.iter().all(|v| v == Some(7)), "{all}");
            assert!(conv.iter().all(|v| v == Some(3)), "{all}");
        }
    }

    #[test]
    fn prefixes_rank_by_credible_lift_then_support_then_path() {
        let (paths, _) = run(&params());
        let prefixes = rows(&paths, "all", Some("prefix"), "path");
        let ranked: Vec<(&str, u64, u64, u32)> = [
            ("app_open > sign_up", 1, 1, 1),
            ("app_open > sign_up > tutorial_complete", 1, 1, 2),
            ("app_open > tutorial_complete > join_guild", 1, 1, 3),
            ("app_open", 5, 2, 4),
            ("app_open > tutorial_complete", 3, 1, 5),
            ("app_open > tutorial_complete > level_up", 1, 0, 6),
        ]
        .to_vec();
        assert_eq!(prefixes.len(), ranked.len(), "{prefixes:?}");
        for (p, s, c, r) in ranked {
            assert_eq!(prefixes[p], (s, c, Some(r)), "{p}");
        }
        // Rows come sorted by rank within the cohort and kind.
        let top = paths
            .clone()
            .lazy()
            .filter(
                col("cohort")
                    .eq(lit("all"))
                    .and(col("kind").eq(lit("prefix"))),
            )
            .collect()
            .unwrap();
        let order: Vec<u32> = top
            .column("rank")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(order, (1..=6).collect::<Vec<_>>());
        // Wilson's lower bound of 2 in 5 is 0.1176; the base rate 3/7.
        let app_open = col("cohort")
            .eq(lit("all"))
            .and(col("path").eq(lit("app_open")))
            .and(col("kind").eq(lit("prefix")));
        let low = f64_of(&paths, app_open.clone(), "conversion_rate_low").unwrap();
        assert!((low - 0.117_618_231).abs() < 1e-6, "{low}");
        let score = f64_of(&paths, app_open.clone(), "score").unwrap();
        assert!(
            (score - 0.117_618_231 / (3.0 / 7.0)).abs() < 1e-6,
            "{score}"
        );
        let lift = f64_of(&paths, app_open.clone(), "lift").unwrap();
        assert!((lift - 0.4 / (3.0 / 7.0)).abs() < 1e-9, "{lift}");
        // u1 converted 1 h 30 s after install, u2 after 30 h.
        let median = f64_of(&paths, app_open, "median_hours_to_convert").unwrap();
        assert!(
            (median - (1.0 + 1.0 / 120.0 + 30.0) / 2.0).abs() < 1e-9,
            "{median}"
        );
    }

    #[test]
    fn cohorts_are_typed_and_organic_users_have_no_campaign() {
        let (paths, _) = run(&params());
        let cohorts: std::collections::BTreeSet<(String, String)> =
            crate::test_support::strs(&paths, "cohort_kind")
                .into_iter()
                .zip(crate::test_support::strs(&paths, "cohort"))
                .map(|(k, c)| (k.unwrap(), c.unwrap()))
                .collect();
        let expected: std::collections::BTreeSet<(String, String)> = [
            ("overall", "all"),
            ("install_week", "2026-01-05"),
            ("channel", "facebook"),
            ("channel", "google_ads"),
            ("channel", "organic"),
            ("campaign", "facebook/c1"),
            ("campaign", "google_ads/c2"),
        ]
        .into_iter()
        .map(|(k, c)| (k.to_string(), c.to_string()))
        .collect();
        assert_eq!(cohorts, expected);
        let week = paths
            .clone()
            .lazy()
            .filter(col("cohort_kind").eq(lit("install_week")))
            .select([col("install_week").cast(DataType::Int32)])
            .collect()
            .unwrap();
        let monday = (chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()
            - chrono::NaiveDate::default())
        .num_days() as i32;
        assert!(
            week.column("install_week")
                .unwrap()
                .i32()
                .unwrap()
                .iter()
                .all(|d| d == Some(monday))
        );
        // Nobody converted on google_ads: no lift, no rank.
        let google = rows(&paths, "google_ads", Some("prefix"), "path");
        assert!(
            google.values().all(|(_, c, r)| *c == 0 && r.is_none()),
            "{google:?}"
        );
        // The world's data ends with u9's event on 2026-01-15.
        let dt = paths
            .column("dt")
            .unwrap()
            .date()
            .unwrap()
            .physical()
            .get(0);
        assert_eq!(dt, Some(monday + 10));
    }

    #[test]
    fn the_minimum_support_keeps_rare_paths_out() {
        let (paths, lift) = run(&CriticalPathParams {
            min_support: 3,
            ..params()
        });
        let prefixes = rows(&paths, "all", Some("prefix"), "path");
        assert_eq!(
            prefixes.keys().collect::<Vec<_>>(),
            ["app_open", "app_open > tutorial_complete"]
        );
        assert_eq!(prefixes["app_open"].2, Some(1));
        let events = rows(&lift, "all", None, "event");
        assert_eq!(
            events.keys().collect::<Vec<_>>(),
            ["app_open", "tutorial_complete"]
        );
    }

    #[test]
    fn event_lift_compares_users_with_and_without_the_event() {
        let (_, lift) = run(&params());
        let events = rows(&lift, "all", None, "event");
        let expected = [
            ("join_guild", 1, 1, 1),
            ("sign_up", 1, 1, 2),
            // Wilson's lower bound of 2 in 4 (0.150) beats 2 in 5 (0.118).
            ("tutorial_complete", 4, 2, 3),
            ("app_open", 5, 2, 4),
            ("level_up", 1, 0, 5),
        ];
        assert_eq!(events.len(), expected.len(), "{events:?}");
        for (e, s, c, r) in expected {
            assert_eq!(events[e], (s, c, Some(r)), "{e}");
        }
        let tutorial = col("cohort")
            .eq(lit("all"))
            .and(col("event").eq(lit("tutorial_complete")));
        // Without it: u3 (converted), u5, u6.
        let without = f64_of(&lift, tutorial.clone(), "conversion_rate_without").unwrap();
        assert!((without - 1.0 / 3.0).abs() < 1e-9);
        let vs = f64_of(&lift, tutorial.clone(), "lift_vs_without").unwrap();
        assert!((vs - 1.5).abs() < 1e-9);
        // First tutorial_complete after 1, 5, 1 and 1 minutes.
        let median = f64_of(&lift, tutorial, "median_hours_to_event").unwrap();
        assert!((median - 1.0 / 60.0).abs() < 1e-9, "{median}");
    }

    #[test]
    fn the_marts_match_their_schemas() {
        let (paths, lift) = run(&params());
        let registry = crate::schema::Registry::embedded().unwrap();
        for (name, df) in [
            ("mart.critical_path", &paths),
            ("mart.critical_event_lift", &lift),
        ] {
            let t = registry.get(name).unwrap();
            t.validate(df, "test").unwrap();
            let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
            let got: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert_eq!(got, names, "{name}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |p: CriticalPathParams, what: &str| {
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        };
        bad(
            CriticalPathParams {
                target: String::new(),
                ..params()
            },
            "target",
        );
        bad(
            CriticalPathParams {
                horizon_hours: 24,
                ..params()
            },
            "horizon_hours",
        );
        bad(
            CriticalPathParams {
                min_support: 0,
                ..params()
            },
            "min_support",
        );
        bad(
            CriticalPathParams {
                exclude_events: vec!["purchase".into()],
                ..params()
            },
            "exclude_events",
        );
        bad(
            CriticalPathParams {
                target: "a > b".into(),
                ..params()
            },
            "separator",
        );
        let config = crate::config::AnalysisSection::default();
        let p = CriticalPathParams::from_analysis(&config);
        assert_eq!((p.target.as_str(), p.window_hours), ("purchase", 168));
        p.validate().unwrap();
    }

    #[test]
    fn the_top_prefix_gives_the_steps() {
        let (paths, _) = run(&params());
        assert_eq!(top_path_steps(&paths).unwrap(), ["app_open", "sign_up"]);
        let none = paths.clear();
        assert!(top_path_steps(&none).unwrap().is_empty());
    }
}
