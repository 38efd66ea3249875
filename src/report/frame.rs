//! Columns of a collected frame as plain Rust vectors, typed by the schema files' types.
//!
//! The report reads small, already aggregated frames (a few thousand rows at most), so
//! copying them into vectors costs nothing and keeps the page code free of Polars.

use chrono::NaiveDate;
use polars::prelude::{DataFrame, DataType, PolarsResult};

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01, Polars' day 0.
const EPOCH_FROM_CE: i32 = 719_163;

pub fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Like [`strings`], a missing value read as the empty string (key columns are never null).
pub fn keys(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(strings(df, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

pub fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().collect())
}

pub fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

pub fn bools(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<bool>>> {
    let c = df.column(name)?.cast(&DataType::Boolean)?;
    Ok(c.bool()?.iter().collect())
}

pub fn dates(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<NaiveDate>>> {
    let c = df.column(name)?.cast(&DataType::Int32)?;
    Ok(c.i32()?
        .iter()
        .map(|d| d.and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + EPOCH_FROM_CE)))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use polars::prelude::*;

    use super::*;

    #[test]
    fn dates_come_back_as_calendar_days() {
        let df = DataFrame::new(
            2,
            vec![
                Column::new("dt".into(), [Some(0i32), None])
                    .cast(&DataType::Date)
                    .unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(
            dates(&df, "dt").unwrap(),
            vec![NaiveDate::from_ymd_opt(1970, 1, 1), None]
        );
    }
}
