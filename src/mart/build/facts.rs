//! One row per real user with everything the per-campaign marts count of them.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, campaign_key};
use crate::features::real_first_installs;

/// The days N at which `mart.cohort_ltv` gives the cumulative revenue: a fixed ladder for
/// LTV curves, plus the observation window and every configured horizon.
pub fn checkpoints(params: &MartParams) -> Vec<u32> {
    let mut days: Vec<u32> = vec![1, 3, 7, 14, 30, 60, 90, 120, 180];
    days.push(params.window_days);
    days.extend(params.horizons.iter().copied());
    days.sort_unstable();
    days.dedup();
    days
}

/// Name of a user's revenue in their first `n` days.
pub(super) fn revenue_at(n: u32) -> String {
    format!("revenue_n{n}_micros")
}

/// Each person's totals over `clean.user_daily` rows (any run of partitions): `user_key`,
/// `revenue_to_date_micros`, `active_d1`, `active_d7` (an event on that day after install)
/// and the revenue at each of the `ladder`'s days ([`revenue_at`]).
///
/// A user's first N days are the rows with `day_n < N`, the same 24-hour steps from
/// install the models' labels use, and events before the install already count as day 0
/// there. Revenue is in the reporting currency. Totals of two runs of partitions add up
/// ([`add_user_totals`]), so the settled days' totals are kept between runs.
pub fn user_totals(user_daily: LazyFrame, ladder: &[u32]) -> LazyFrame {
    // Each checkpoint's revenue is a column before the group-by, so every aggregation is a
    // plain sum or any: a filter inside the aggregation is evaluated group by group, and with
    // a person per group over millions of daily rows that took seconds.
    let revenue = col("revenue_reporting_micros").fill_null(lit(0i64));
    let day = col("day_n");
    let mut columns = vec![
        col("user_key"),
        revenue.clone().alias("revenue_to_date_micros"),
        day.clone().eq(lit(1i32)).alias("active_d1"),
        day.clone().eq(lit(7i32)).alias("active_d7"),
    ];
    for &n in ladder {
        let name = revenue_at(n);
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        columns.push(
            when(day.clone().lt(lit(n)))
                .then(revenue.clone())
                .otherwise(lit(0i64))
                .alias(name.as_str()),
        );
    }
    sum_totals(user_daily.select(columns), ladder)
}

/// The totals of two runs of partitions together (both as [`user_totals`] gives them: a row
/// per person).
///
/// `a` is the settled history (every person of months of installs) and `b` a few recent days
/// (the people active in them): most of `a`'s people have no row in `b`, and their totals
/// pass through as they are; only the people in both are summed. A group-by over both whole
/// frames made a one-row group of every person and gathered each column group by group: at
/// 180 days of history that was most of the marts' totals.
pub fn add_user_totals(a: LazyFrame, b: LazyFrame, ladder: &[u32]) -> PolarsResult<LazyFrame> {
    let keys = b.clone().select([col("user_key")]);
    let only_a = a.clone().join(
        keys.clone(),
        [col("user_key")],
        [col("user_key")],
        JoinArgs::new(JoinType::Anti),
    );
    let both_a = a.join(
        keys,
        [col("user_key")],
        [col("user_key")],
        JoinArgs::new(JoinType::Semi),
    );
    let mut summed = sum_totals(concat([both_a, b], UnionArgs::default())?, ladder);
    // The passing rows in the summed rows' column order, as the plan resolves it.
    let order: Vec<Expr> = summed
        .collect_schema()?
        .iter_names()
        .map(|name| col(name.clone()))
        .collect();
    concat([only_a.select(order), summed], UnionArgs::default())
}

/// Rows of totals (or of one daily row's share of them) summed per person.
fn sum_totals(rows: LazyFrame, ladder: &[u32]) -> LazyFrame {
    let mut aggs = vec![
        col("revenue_to_date_micros").sum(),
        col("active_d1").any(true),
        col("active_d7").any(true),
    ];
    aggs.extend(ladder.iter().map(|&n| col(revenue_at(n)).sum()));
    rows.group_by([col("user_key")]).agg(aggs)
}

/// Real users (see [`real_first_installs`]) with `user_key`, `install_ms`, `install_date`,
/// `channel`, `campaign_id` (organic keyed), their [`user_totals`] (`totals`, over the
/// whole history, computed with [`checkpoints`]; zero or false for a user without a row),
/// and from `user_ltv` (the prediction mart) `predicted` and per mart horizon
/// `pred_d<H>_micros` and `extrapolated_d<H>`.
pub fn user_facts(
    installs: LazyFrame,
    totals: LazyFrame,
    user_ltv: LazyFrame,
    params: &MartParams,
) -> LazyFrame {
    let users = real_first_installs(installs).select([
        col("user_key"),
        col("install_ms"),
        col("install_date"),
        col("channel"),
        campaign_key(),
    ]);
    let ladder = checkpoints(params);
    let mut predicted = vec![col("user_key"), lit(true).alias("predicted")];
    for h in MART_HORIZONS {
        predicted.push(col(format!("pred_d{h}_micros")));
        predicted.push(col(format!("extrapolated_d{h}")));
    }
    let mut filled = vec![
        col("revenue_to_date_micros").fill_null(lit(0i64)),
        col("active_d1").fill_null(lit(false)),
        col("active_d7").fill_null(lit(false)),
        col("predicted").fill_null(lit(false)),
    ];
    for &n in &ladder {
        filled.push(col(revenue_at(n)).fill_null(lit(0i64)));
    }
    users
        .join(
            totals,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            user_ltv.select(predicted),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns(filled)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `clean.user_daily` rows (the columns [`user_totals`] reads): person, day N, revenue.
    fn daily(rows: &[(&str, i32, i64)]) -> LazyFrame {
        df!(
            "user_key" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "day_n" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "revenue_reporting_micros" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
    }

    fn sorted(lf: LazyFrame) -> DataFrame {
        lf.sort(["user_key"], SortMultipleOptions::default())
            .collect()
            .unwrap()
    }

    #[test]
    fn adding_totals_sums_the_people_in_both_and_keeps_the_others() {
        let ladder = [1, 7];
        // "settled" pays on days 0 and 7; "both" is in both runs; "new" only in the recent.
        let old = [("settled", 0, 5), ("settled", 7, 11), ("both", 1, 3)];
        let recent = [("both", 7, 20), ("new", 0, 2), ("new", 1, 0)];
        let added = add_user_totals(
            user_totals(daily(&old), &ladder),
            user_totals(daily(&recent), &ladder),
            &ladder,
        )
        .unwrap();
        let all: Vec<_> = old.iter().chain(&recent).copied().collect();
        let want = sorted(user_totals(daily(&all), &ladder));
        assert_eq!(sorted(added), want);
        assert_eq!(
            want.column("revenue_to_date_micros")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect::<Vec<_>>(),
            [23, 2, 16],
            "both, new, settled"
        );
        assert_eq!(
            want.column("active_d7")
                .unwrap()
                .bool()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true)]
        );
    }
}
