//! From transactions to what the BTYD models are fitted on: each customer's frequency, recency,
//! age and mean repeat spend in a calibration window, as one lazy Polars plan built from one
//! function per step (window, purchase days, per-customer aggregates, periods). The plan is
//! collected once, where the fit needs the numbers.
//!
//! Input columns are those `input` produces: `customer` (String), `date` (Date) and, when
//! spend is known, `amount` (Float64). Times are computed on day numbers (dates cast to
//! integers) and divided by the period's length, so weeks come out fractional (213 days are
//! 30.43 weeks), as in the published CDNOW summaries.

use chrono::NaiveDate;
use polars::prelude::*;

use super::input::{AMOUNT, CUSTOMER, DATE};
use super::{CustomerHistory, Period};
use crate::lake::date_lit;

/// The calibration window: every transaction up to and including `end`, times in `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub end: NaiveDate,
    pub period: Period,
}

/// Output columns of `customer_summaries`, besides `customer`.
pub const FIRST_PURCHASE: &str = "first_purchase";
pub const FREQUENCY: &str = "frequency";
pub const RECENCY: &str = "recency";
pub const AGE: &str = "age";
/// Null for customers without repeat purchases; absent without amounts.
pub const MEAN_REPEAT_SPEND: &str = "mean_repeat_spend";

/// One row per customer with a purchase in the window, sorted by customer: `customer`,
/// `first_purchase`, `frequency` (UInt32), `recency`, `age` (Float64, in periods) and, with
/// amounts, `mean_repeat_spend`. Customers whose first purchase is after the window's end do
/// not appear (see `counts`).
pub fn customer_summaries(
    transactions: LazyFrame,
    window: &Calibration,
    amounts: bool,
) -> LazyFrame {
    let calibrated = within_window(transactions, window.end);
    let days = purchase_days(calibrated, amounts);
    let customers = per_customer(days, amounts);
    in_periods(customers, window, amounts)
}

/// Transactions on or before the calibration end.
pub fn within_window(transactions: LazyFrame, end: NaiveDate) -> LazyFrame {
    transactions.filter(col(DATE).lt_eq(date_lit(end)))
}

/// One row per customer and purchase day, amounts of the day summed: a second order on the same
/// day is not a repeat purchase (the convention of the BTYD literature, which counts periods
/// with purchases).
pub fn purchase_days(transactions: LazyFrame, amounts: bool) -> LazyFrame {
    if amounts {
        transactions
            .group_by([col(CUSTOMER), col(DATE)])
            .agg([col(AMOUNT).sum()])
    } else {
        transactions
            .select([col(CUSTOMER), col(DATE)])
            .unique(None, UniqueKeepStrategy::Any)
    }
}

/// Per customer: first and last purchase day (as day numbers), purchase days, and with amounts
/// the total and the first day's amount (so the repeat days' total is their difference).
fn per_customer(days: LazyFrame, amounts: bool) -> LazyFrame {
    let day = || col(DATE).cast(DataType::Int32);
    let mut aggregates = vec![
        day().min().alias("_first"),
        day().max().alias("_last"),
        len().alias("_days"),
    ];
    if amounts {
        aggregates.push(col(AMOUNT).sum().alias("_total"));
        aggregates.push(
            col(AMOUNT)
                .filter(day().eq(day().min()))
                .sum()
                .alias("_first_amount"),
        );
    }
    days.group_by([col(CUSTOMER)]).agg(aggregates)
}

/// The BTYD variables from the aggregates, in periods; sorted by customer because group order
/// is not stable.
fn in_periods(customers: LazyFrame, window: &Calibration, amounts: bool) -> LazyFrame {
    let period = || lit(window.period.days());
    let repeats = || (col("_days") - lit(1)).cast(DataType::Float64);
    let mut columns = vec![
        col(CUSTOMER),
        col("_first").cast(DataType::Date).alias(FIRST_PURCHASE),
        (col("_days") - lit(1))
            .cast(DataType::UInt32)
            .alias(FREQUENCY),
        ((col("_last") - col("_first")).cast(DataType::Float64) / period()).alias(RECENCY),
        ((lit(day_number(window.end)) - col("_first")).cast(DataType::Float64) / period())
            .alias(AGE),
    ];
    if amounts {
        columns.push(
            when(col("_days").gt(lit(1)))
                .then((col("_total") - col("_first_amount")) / repeats())
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias(MEAN_REPEAT_SPEND),
        );
    }
    customers
        .select(columns)
        .sort([CUSTOMER], SortMultipleOptions::default())
}

/// Row and customer counts around the window, for the report: `rows`, `rows_after_window`,
/// `customers`, `customers_after_window` (customers whose every purchase is after the end, so
/// they have no calibration history at all). One row.
pub fn counts(transactions: LazyFrame, end: NaiveDate) -> LazyFrame {
    let after = || date_lit(end);
    let rows = transactions.clone().select([
        len().cast(DataType::UInt64).alias("rows"),
        col(DATE)
            .gt(after())
            .sum()
            .cast(DataType::UInt64)
            .alias("rows_after_window"),
    ]);
    let customers = transactions
        .group_by([col(CUSTOMER)])
        .agg([col(DATE).min().alias("_first")])
        .select([
            len().cast(DataType::UInt64).alias("customers"),
            col("_first")
                .gt(after())
                .sum()
                .cast(DataType::UInt64)
                .alias("customers_after_window"),
        ]);
    rows.cross_join(customers, None)
}

/// The summaries as model input, in the frame's (customer) order: histories for BG/NBD and the
/// mean repeat spend of each customer (None without repeat purchases or amounts).
pub fn histories(summaries: &DataFrame) -> PolarsResult<(Vec<CustomerHistory>, Vec<Option<f64>>)> {
    let frequency = summaries.column(FREQUENCY)?.u32()?;
    let recency = summaries.column(RECENCY)?.f64()?;
    let age = summaries.column(AGE)?.f64()?;
    let mut histories = Vec::with_capacity(summaries.height());
    for ((x, tx), t) in frequency.iter().zip(recency.iter()).zip(age.iter()) {
        match (x, tx, t) {
            (Some(frequency), Some(recency), Some(age)) => histories.push(CustomerHistory {
                frequency,
                recency,
                age,
            }),
            _ => {
                polars_bail!(ComputeError: "a customer summary has a null frequency, recency or age")
            }
        }
    }
    let spends = match summaries.column(MEAN_REPEAT_SPEND) {
        Ok(c) => c.f64()?.iter().collect(),
        Err(_) => vec![None; histories.len()],
    };
    Ok((histories, spends))
}

/// Days since 1970-01-01, Polars' Date representation.
fn day_number(date: NaiveDate) -> i32 {
    (date - NaiveDate::default()).num_days() as i32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn transactions(rows: &[(&str, &str, f64)]) -> LazyFrame {
        let customers: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let days: Vec<i32> = rows.iter().map(|r| day_number(date(r.1))).collect();
        let amounts: Vec<f64> = rows.iter().map(|r| r.2).collect();
        DataFrame::new_infer_height(vec![
            Column::new(CUSTOMER.into(), customers),
            Series::new(DATE.into(), days).into_date().into(),
            Column::new(AMOUNT.into(), amounts),
        ])
        .unwrap()
        .lazy()
    }

    #[test]
    fn summaries_by_hand() {
        // Window ends 2024-01-29 (inclusive), weeks.
        // a: days 01-01 (10 + 5 on the same day), 01-08 (20), 01-15 (30), 02-05 (after: out).
        //    x = 2, t_x = 14 days = 2 weeks, T = 28 days = 4 weeks, m = (20 + 30) / 2 = 25.
        // b: one day 01-22 (two orders, 7 + 3): x = 0, t_x = 0, T = 1 week, m null.
        // c: only after the end: absent.
        let tx = transactions(&[
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-01", 5.0),
            ("a", "2024-01-08", 20.0),
            ("a", "2024-01-15", 30.0),
            ("a", "2024-02-05", 99.0),
            ("b", "2024-01-22", 7.0),
            ("b", "2024-01-22", 3.0),
            ("c", "2024-02-01", 4.0),
        ]);
        let window = Calibration {
            end: date("2024-01-29"),
            period: Period::Week,
        };
        let df = customer_summaries(tx.clone(), &window, true)
            .collect()
            .unwrap();
        println!("{df}");
        assert_eq!(
            df.column(CUSTOMER)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [Some("a"), Some("b")]
        );
        let (found, spends) = histories(&df).unwrap();
        assert_eq!(
            found,
            [
                CustomerHistory {
                    frequency: 2,
                    recency: 2.0,
                    age: 4.0
                },
                CustomerHistory {
                    frequency: 0,
                    recency: 0.0,
                    age: 1.0
                },
            ]
        );
        assert_eq!(spends, [Some(25.0), None]);
        assert_eq!(
            df.column(FIRST_PURCHASE).unwrap().get(0).unwrap(),
            AnyValue::Date(day_number(date("2024-01-01")))
        );

        // In days and without amounts: the same purchase days, no spend column.
        let days = Calibration {
            period: Period::Day,
            ..window
        };
        let df = customer_summaries(tx.clone(), &days, false)
            .collect()
            .unwrap();
        assert!(df.column(MEAN_REPEAT_SPEND).is_err());
        let (found, spends) = histories(&df).unwrap();
        assert_eq!((found[0].recency, found[0].age), (14.0, 28.0));
        assert_eq!(spends, [None, None]);

        let c = counts(tx, window.end).collect().unwrap();
        let get = |name: &str| c.column(name).unwrap().u64().unwrap().get(0).unwrap();
        assert_eq!(
            (
                get("rows"),
                get("rows_after_window"),
                get("customers"),
                get("customers_after_window")
            ),
            (8, 2, 3, 1)
        );
    }
}
