//! `clean.user_daily`: each day's clean events folded to one row per person and day since
//! install. The marts (revenue to date, retention, LTV curves) and the models' labels need
//! no more than this, and it is an order of magnitude smaller than the events, so a nightly
//! run reads it over the whole history instead of months of raw events.

use chrono::NaiveDate;
use polars::prelude::*;

/// The columns of `clean.user_daily`, in schema order.
pub const COLUMNS: [&str; 8] = [
    "dt",
    "user_key",
    "day_n",
    "events",
    "purchases",
    "reporting_currency",
    "revenue_reporting_micros",
    "last_event_ms",
];

/// One partition of `clean.events` (`user_key`, `event`, `time`, `install_time`,
/// `days_since_install`, `reporting_currency`, `revenue_reporting_micros`) as
/// `clean.user_daily`. Events without a person or an install are left out: no later stage
/// can place them on anyone's curve. Events stamped before the install count as day 0, as
/// in the models' labels.
pub fn user_daily(
    events: LazyFrame,
    dt: NaiveDate,
    purchase_event: &str,
    reporting_currency: &str,
) -> LazyFrame {
    let day = col("days_since_install");
    let day_n = when(day.clone().lt(lit(0i32)))
        .then(lit(0i32))
        .otherwise(day)
        .alias("day_n");
    events
        .filter(
            col("user_key")
                .is_not_null()
                .and(col("days_since_install").is_not_null()),
        )
        .with_column(day_n)
        .group_by([col("user_key"), col("day_n")])
        .agg([
            len().cast(DataType::UInt32).alias("events"),
            col("event")
                .eq(lit(purchase_event.to_string()))
                .cast(DataType::UInt32)
                .sum()
                .alias("purchases"),
            col("revenue_reporting_micros")
                .fill_null(lit(0i64))
                .sum()
                .alias("revenue_reporting_micros"),
            col("time")
                .dt()
                .timestamp(TimeUnit::Milliseconds)
                .max()
                .alias("last_event_ms"),
        ])
        .with_columns([
            lit((dt - NaiveDate::default()).num_days() as i32)
                .cast(DataType::Date)
                .alias("dt"),
            lit(reporting_currency.to_string()).alias("reporting_currency"),
        ])
        .select(COLUMNS.map(col))
        .sort(["user_key", "day_n"], SortMultipleOptions::default())
}

/// [`user_daily`] of the batches of one day, as one: the rows of a person and day in
/// several batches added up (events, purchases and revenue summed, the last event the latest).
pub fn merge_user_daily(parts: Vec<LazyFrame>) -> PolarsResult<LazyFrame> {
    Ok(concat(parts, UnionArgs::default())?
        .group_by([col("user_key"), col("day_n")])
        .agg([
            col("dt").first(),
            col("events").sum().cast(DataType::UInt32),
            col("purchases").sum().cast(DataType::UInt32),
            col("reporting_currency").first(),
            col("revenue_reporting_micros").sum(),
            col("last_event_ms").max(),
        ])
        .select(COLUMNS.map(col))
        .sort(["user_key", "day_n"], SortMultipleOptions::default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const T0: i64 = 1_767_571_200_000;
    const H: i64 = 3_600_000;

    fn events() -> LazyFrame {
        let time = Column::new(
            "time".into(),
            vec![
                T0 - H,
                T0 + H,
                T0 + 2 * H,
                T0 + 25 * H,
                T0 + 3 * H,
                T0 + 4 * H,
            ],
        )
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
        df!(
            "user_key" => [Some("a"), Some("a"), Some("a"), Some("a"), Some("b"), None],
            "event" => ["app_open", "purchase", "purchase", "app_open", "app_open", "purchase"],
            "days_since_install" => [Some(-1i32), Some(0), Some(0), Some(1), None, None],
            "reporting_currency" => ["KRW"; 6],
            "revenue_reporting_micros" => [None, Some(1_000_000i64), Some(2_500_000), None, None, Some(9)],
        )
        .unwrap()
        .with_column(time)
        .unwrap()
        .clone()
        .lazy()
    }

    #[test]
    fn batches_merged_give_the_whole_days_rows() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let whole = user_daily(events(), day, "purchase", "KRW")
            .collect()
            .unwrap();
        // `a`'s day 0 falls in both batches.
        let parts = [(0, 2), (2, 4)]
            .map(|(offset, len)| user_daily(events().slice(offset, len), day, "purchase", "KRW"))
            .to_vec();
        let merged = merge_user_daily(parts).unwrap().collect().unwrap();
        assert!(merged.equals_missing(&whole), "{merged}\n{whole}");
    }

    #[test]
    fn folds_each_person_day_and_drops_events_of_nobody() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let df = user_daily(events(), day, "purchase", "KRW")
            .collect()
            .unwrap();
        assert_eq!(df.get_column_names(), COLUMNS.to_vec());
        // `b` has no install and the last event no person: only `a`'s two days remain.
        assert_eq!(df.height(), 2);
        let day_n: Vec<_> = df.column("day_n").unwrap().i32().unwrap().iter().collect();
        assert_eq!(day_n, vec![Some(0), Some(1)]);
        let events: Vec<_> = df.column("events").unwrap().u32().unwrap().iter().collect();
        // The event before the install counts as day 0.
        assert_eq!(events, vec![Some(3), Some(1)]);
        let purchases: Vec<_> = df
            .column("purchases")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(purchases, vec![Some(2), Some(0)]);
        let revenue: Vec<_> = df
            .column("revenue_reporting_micros")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(revenue, vec![Some(3_500_000), Some(0)]);
        let last: Vec<_> = df
            .column("last_event_ms")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(last, vec![Some(T0 + 2 * H), Some(T0 + 25 * H)]);
    }
}
