//! `clean.installs`: every AppsFlyer install with its person, its ids filled from the
//! identity, Protect360's verdicts and the pattern fraud rules, and the test rules. Fraud
//! and test installs are flagged, never dropped: fraud is a campaign quality signal and is
//! reported against the campaign that paid for it.

use polars::prelude::*;

use crate::cleanse::fraud::{FRAUD_REASON, mark_bursts, mark_click_timing, with_fraud_reason};
use crate::cleanse::test_data::{TEST_REASON, mark_test_campaigns};
use crate::config::{FraudRules, Pattern, TestUserRules};

/// The columns of `clean.installs` (`dt` included), in schema order.
pub const COLUMNS: [&str; 28] = [
    "dt",
    "appsflyer_id",
    "user_key",
    "is_first_install",
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
    "advertising_id_filled",
    "customer_user_id",
    "customer_user_id_filled",
    "app_version",
    "is_fraud",
    "fraud_reason",
    "is_test",
    "test_reason",
    // Not a table column: the rule counts of the process stage need it.
    "_no_activity_checked",
];

/// Protect360 signals in the order they name the reason.
const P360_PRIORITY: [&str; 3] = [
    "p360 blocked install",
    "p360 post-attribution",
    "p360 in-app fraud",
];

/// The same install in two reports (a late block of an attributed install): the blocked row
/// wins, as Protect360's verdict is the later word; then the earliest partition, then the
/// earlier row. The rows kept come in that order too: blocked first, then by partition, ties
/// in row order (nulls first in each key, as a Polars sort puts them).
///
/// Why not a Polars sort and `unique_stable`: over the whole history's installs that sort
/// moved every column of every row, and the unique hashed row-encoded keys; at 180 days
/// (362,000 rows) the two took 0.15 to 0.25 s. Here only row numbers are sorted, by two small
/// keys, the first row of each (id, time) is found by one hash pass, and the frame is
/// filtered once per blocked rank (or, for rows not in partition order, taken once).
pub fn one_row_per_install(af: &DataFrame) -> PolarsResult<DataFrame> {
    let ids = af.column("appsflyer_id")?.str()?;
    let times = af.column("install_time")?.datetime()?.physical();
    let blocked: Vec<Option<bool>> = af.column("p360_blocked")?.bool()?.iter().collect();
    let days: Vec<Option<i32>> = af.column("dt")?.date()?.physical().iter().collect();
    // Descending with nulls first: null, blocked, not blocked.
    let blocked_rank = |b: Option<bool>| match b {
        None => 0u8,
        Some(true) => 1,
        Some(false) => 2,
    };
    let mut order: Vec<IdxSize> = (0..af.height() as IdxSize).collect();
    // A stable sort: ties stay in row order.
    order.sort_by_key(|&row| (blocked_rank(blocked[row as usize]), days[row as usize]));
    let keys: Vec<(Option<&str>, Option<i64>)> = ids.iter().zip(times.iter()).collect();
    let mut seen: PlHashSet<(Option<&str>, Option<i64>)> = PlHashSet::with_capacity(af.height());
    order.retain(|&row| seen.insert(keys[row as usize]));
    // A scan of the history comes in partition order: then that order is the rows kept,
    // rank by rank, each rank in row order, and the frame is filtered once per rank. Taking
    // it row by row gathered every column across the scan's file-per-day chunks: at 180
    // days of history (181 chunks) that take was 0.24 s of the 0.3 s this function took.
    if days.is_sorted() {
        return filter_by_rank(af, &order, |row| blocked_rank(blocked[row]));
    }
    af.take(&IdxCa::from_vec("rows".into(), order))
}

/// The rows of `af` in `kept`, rank by rank (0, 1, 2), each rank in row order.
fn filter_by_rank(
    af: &DataFrame,
    kept: &[IdxSize],
    rank: impl Fn(usize) -> u8,
) -> PolarsResult<DataFrame> {
    let mut keep = vec![false; af.height()];
    for &row in kept {
        keep[row as usize] = true;
    }
    let mut out: Option<DataFrame> = None;
    for r in 0..3u8 {
        let mask: Vec<bool> = (0..af.height())
            .map(|row| keep[row] && rank(row) == r)
            .collect();
        let rows = mask.iter().filter(|&&k| k).count();
        if rows == af.height() {
            // Every row kept, all of one rank: the frame as it is.
            return Ok(af.clone());
        }
        if rows == 0 {
            continue;
        }
        let part = af.filter(&BooleanChunked::from_slice("keep".into(), &mask))?;
        match out.as_mut() {
            None => out = Some(part),
            Some(df) => {
                df.vstack_mut(&part)?;
            }
        }
    }
    Ok(out.unwrap_or_else(|| af.clear()))
}

/// Each install's person and ids filled: `people` is the identity's frame of the same rows
/// (`Identity::installs`: `user_key`, `known_advertising_id`, `known_user_id`,
/// `install_advertising_id`), set beside them. The advertising id is filled from the
/// install's own other rows (AppsFlyer in-app events) or else the person's; the app user id
/// from the person.
pub fn attach_people(af: &DataFrame, people: &DataFrame) -> PolarsResult<DataFrame> {
    af.hstack(people.columns())
}

/// The ids [`attach_people`] set beside the installs, used: the key falls back to the
/// install's own id, missing ids are filled and flagged, and the first install is marked.
pub fn fill_ids(af: LazyFrame) -> LazyFrame {
    // An install always is a node; the fallback keeps a key even on a partial graph.
    af.with_column(coalesce(&[col("user_key"), col("appsflyer_id")]).alias("user_key"))
        .with_column(
            coalesce(&[col("install_advertising_id"), col("known_advertising_id")])
                .alias("known_advertising_id"),
        )
        .with_columns(
            [
                backfill("advertising_id", "known_advertising_id"),
                backfill("customer_user_id", "known_user_id"),
            ]
            .concat(),
        )
        .with_column(
            col("appsflyer_id")
                .eq(col("user_key"))
                .alias("is_first_install"),
        )
}

/// An id a row lacks, filled from what the identity knows (`known`), and the flag
/// `<id>_filled` that says the row did not carry it itself. The two expressions go in one
/// `with_columns`, so the flag sees the row's own id.
pub fn backfill(id: &str, known: &str) -> [Expr; 2] {
    [
        col(id)
            .is_null()
            .and(col(known).is_not_null())
            .alias(format!("{id}_filled")),
        coalesce(&[col(id), col(known)]).alias(id),
    ]
}

/// Protect360's verdicts (`clean.af_fraud_signals` of any day) as the fraud reason.
pub fn mark_p360(af: LazyFrame, signals: LazyFrame) -> LazyFrame {
    let mut rank = lit(P360_PRIORITY.len() as u32);
    for (i, s) in P360_PRIORITY.iter().enumerate().rev() {
        rank = when(col("signal").eq(lit(*s)))
            .then(lit(i as u32))
            .otherwise(rank);
    }
    let verdicts = signals
        .with_column(rank.alias("_rank"))
        .sort(["_rank"], SortMultipleOptions::default())
        .group_by([col("appsflyer_id")])
        .agg([col("signal").first().alias("_p360")]);
    with_fraud_reason(af)
        .join(
            verdicts,
            [col("appsflyer_id")],
            [col("appsflyer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            when(col(FRAUD_REASON).is_null())
                .then(col("_p360"))
                .otherwise(col(FRAUD_REASON))
                .alias(FRAUD_REASON),
        )
        .drop(cols(["_p360"]))
}

/// The pattern rules that need installs only: click injection, click flooding, bursts.
pub fn mark_pattern_fraud(af: LazyFrame, rules: &FraudRules) -> PolarsResult<LazyFrame> {
    mark_bursts(mark_click_timing(af, rules), rules)
}

/// Installs with no Mixpanel event of their person within `no_activity_hours` after install.
/// `activity` holds `user_key` and `first_activity` (the person's first event at or after
/// their first install); installs whose window ends after `data_end_ms` are not judged yet.
pub fn mark_no_activity(
    af: LazyFrame,
    activity: LazyFrame,
    rules: &FraudRules,
    data_end_ms: i64,
) -> LazyFrame {
    let window_ms = i64::from(rules.no_activity_hours.get()) * 3_600_000;
    let install_ms = col("install_time").cast(DataType::Int64);
    let window_end = install_ms + lit(window_ms);
    let checked = col("is_first_install").and(window_end.clone().lt_eq(lit(data_end_ms)));
    let silent = col("first_activity")
        .is_null()
        .or(col("first_activity").cast(DataType::Int64).gt(window_end));
    af.join(
        activity,
        [col("user_key")],
        [col("user_key")],
        JoinArgs::new(JoinType::Left),
    )
    .with_columns([
        when(col(FRAUD_REASON).is_null().and(checked.clone()).and(silent))
            .then(lit("no activity after install"))
            .otherwise(col(FRAUD_REASON))
            .alias(FRAUD_REASON),
        checked.alias("_no_activity_checked"),
    ])
    .drop(cols(["first_activity"]))
}

fn any_of(patterns: &[Pattern]) -> Option<String> {
    (!patterns.is_empty()).then(|| {
        patterns
            .iter()
            .map(|p| format!("(?:{})", p.as_str()))
            .collect::<Vec<_>>()
            .join("|")
    })
}

/// Test installs: test campaigns, internal builds, devices on the hand-kept list
/// (`test_devices`: `advertising_id`), and people that are test users (`test_people`:
/// `user_key`, `reason`, a row per person). A person with any test install or profile is
/// test throughout.
/// Fails only if Polars cannot build the per-person window.
pub fn mark_test_installs(
    af: LazyFrame,
    rules: &TestUserRules,
    test_devices: LazyFrame,
    test_people: LazyFrame,
) -> PolarsResult<LazyFrame> {
    let lf = mark_test_campaigns(af, rules, "campaign_name");
    let lf = match any_of(&rules.internal_build_patterns) {
        Some(p) => lf.with_column(
            when(
                col(TEST_REASON)
                    .is_null()
                    .and(col("app_version").str().contains(lit(p), true)),
            )
            .then(lit("internal build"))
            .otherwise(col(TEST_REASON))
            .alias(TEST_REASON),
        ),
        None => lf,
    };
    let devices = test_devices
        .select([col("advertising_id").alias("_test_device")])
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit("test device list").alias("_device_reason"));
    let people = test_people.select([col("user_key"), col("reason").alias("_person_reason")]);
    let person_reason = col(TEST_REASON)
        .drop_nulls()
        .first()
        .over([col("user_key")])?;
    Ok(lf
        .join(
            devices,
            [col("advertising_id")],
            [col("_test_device")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            people,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            coalesce(&[
                col(TEST_REASON),
                col("_device_reason"),
                col("_person_reason"),
            ])
            .alias(TEST_REASON),
        )
        .with_column(person_reason.alias(TEST_REASON))
        .drop(cols(["_device_reason", "_person_reason"])))
}

/// The final columns, with the flags derived from the reasons.
pub fn finish_installs(af: LazyFrame) -> LazyFrame {
    af.with_columns([
        col(FRAUD_REASON).is_not_null().alias("is_fraud"),
        col(FRAUD_REASON).alias("fraud_reason"),
        col(TEST_REASON).is_not_null().alias("is_test"),
        col(TEST_REASON).alias("test_reason"),
    ])
    .select(COLUMNS.map(col))
    .sort(
        ["dt", "install_time", "appsflyer_id"],
        SortMultipleOptions::default(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::strs;

    /// `(appsflyer_id, install second, p360_blocked, dt day, campaign)` rows of installs.
    fn installs(rows: &[(&str, i64, bool, i32, &str)]) -> DataFrame {
        df!(
            "dt" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "appsflyer_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "install_time" => rows.iter().map(|r| r.1 * 1000).collect::<Vec<_>>(),
            "p360_blocked" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "campaign_id" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_columns([
            col("dt").cast(DataType::Date),
            col("install_time").cast(DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )),
        ])
        .collect()
        .unwrap()
    }

    #[test]
    fn one_row_per_install_keeps_the_blocked_row_then_the_earliest_partition() {
        let df = one_row_per_install(&installs(&[
            // Attributed on day 1, blocked in day 3's report: the blocked row wins.
            ("a", 100, false, 1, "a-attributed"),
            ("a", 100, true, 3, "a-blocked"),
            // In two days' reports, neither blocked: the earlier partition wins.
            ("b", 200, false, 2, "b-day2"),
            ("b", 200, false, 1, "b-day1"),
            // Twice in one report: the earlier row wins.
            ("c", 300, false, 1, "c-first"),
            ("c", 300, false, 1, "c-second"),
            // The same id at another time is another install (a reinstall).
            ("a", 900, false, 2, "a-reinstall"),
        ]))
        .unwrap();
        assert_eq!(
            strs(&df, "campaign_id"),
            ["a-blocked", "b-day1", "c-first", "a-reinstall"].map(|c| Some(c.to_string())),
            "blocked first, then by partition, ties in row order"
        );
    }

    #[test]
    fn a_history_in_partition_order_gives_the_same_rows_in_the_same_order() {
        // As a scan gives them: in partition order, a chunk per partition.
        let mut df = installs(&[
            ("a", 100, false, 1, "a-attributed"),
            ("c", 300, false, 1, "c-first"),
            ("c", 300, false, 1, "c-second"),
            ("b", 200, false, 1, "b-day1"),
        ]);
        for day in [
            installs(&[
                ("b", 200, false, 2, "b-day2"),
                ("a", 900, false, 2, "a-reinstall"),
            ]),
            installs(&[
                ("a", 100, true, 3, "a-blocked"),
                ("d", 400, true, 3, "d-blocked"),
            ]),
        ] {
            df.vstack_mut(&day).unwrap();
        }
        assert_eq!(df.first_col_n_chunks(), 3);
        let kept = one_row_per_install(&df).unwrap();
        assert_eq!(
            strs(&kept, "campaign_id"),
            ["a-blocked", "d-blocked", "c-first", "b-day1", "a-reinstall"]
                .map(|c| Some(c.to_string())),
            "blocked first, then by partition, ties in row order"
        );

        // Nothing to drop or move: the frame as it came.
        let plain = installs(&[("a", 100, false, 1, "a"), ("b", 100, false, 2, "b")]);
        assert!(one_row_per_install(&plain).unwrap().equals(&plain));
    }
}
