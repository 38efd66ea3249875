//! Exchange rates: the team's FX sheet as a dense daily table, and money converted into the
//! reporting currency with it. Rates are US dollars per unit, so any pair converts through
//! the dollar. Polars 0.55 has no as-of join, so instead of looking up "the last known rate on
//! or before a day" per row, the table is made dense (every day forward-filled) once and rows
//! join it on the exact day.

use chrono::NaiveDate;
use polars::prelude::*;

use super::reject::reject_where_with;
use crate::ingest::sheets::cells::epoch_days;
use crate::lake::date_lit;

/// The currency every rate is quoted against; its rate is 1.0 by definition.
pub const USD: &str = "USD";

/// Columns of the dense table [`fx_table`] returns.
pub const FX_DATE: &str = "date";
pub const FX_CURRENCY: &str = "currency";
pub const FX_RATE: &str = "usd_per_unit";

#[derive(Debug, thiserror::Error)]
pub enum FxError {
    /// A rate that would turn every amount of that currency into nonsense (zero, negative,
    /// NaN): a typo in the hand-kept sheet, which someone must fix rather than the pipeline
    /// silently convert with it.
    #[error(
        "raw.sheets_fx_rates row {row}: usd_per_unit {rate} for {currency} on {date} is not a positive number"
    )]
    BadRate {
        row: u64,
        date: String,
        currency: String,
        rate: f64,
    },
    #[error("building the FX table: {0}")]
    Polars(#[from] PolarsError),
}

/// The rows of the latest snapshot (`dt`) of the sheet, one per date and currency: the
/// latest pull wins, then the lowest sheet row (the first a person reads). USD rows are
/// dropped: USD is 1.0 whatever the sheet says.
fn latest_rates(sheet: LazyFrame, through: NaiveDate) -> LazyFrame {
    sheet
        .filter(col("dt").eq(col("dt").max()))
        .filter(col("date").lt_eq(date_lit(through)))
        .filter(col("currency").neq(lit(USD)))
        .sort_by_exprs(
            [col("pulled_at"), col("row")],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false])
                .with_nulls_last(true),
        )
        .unique_stable(Some(cols(["date", "currency"])), UniqueKeepStrategy::First)
        .select([
            col("row"),
            col("date"),
            col("currency"),
            col("usd_per_unit"),
        ])
}

/// A dense daily table `date: Date, currency: String, usd_per_unit: f64` from the first
/// date of the latest snapshot of `raw.sheets_fx_rates` to `through`, each currency
/// forward-filled from its last known day, USD 1.0 every day. Days before a currency's first
/// rate stay absent, so rows of that currency then are rejected rather than converted with
/// a guess. Empty when the sheet has no other currency up to `through` (USD converts without
/// the table). Fails on a rate that is not a positive number.
pub fn fx_table(sheet: DataFrame, through: NaiveDate) -> Result<DataFrame, FxError> {
    let rates = latest_rates(sheet.lazy(), through).collect()?;
    check_rates(&rates)?;

    let first = rates.column("date")?.cast(&DataType::Int32)?.i32()?.min();
    let last = epoch_days(through);
    let Some(first) = first.filter(|f| *f <= last) else {
        return Ok(DataFrame::empty_with_schema(&fx_schema()));
    };

    let days = DataFrame::new_infer_height(vec![
        Column::new(FX_DATE.into(), (first..=last).collect::<Vec<i32>>()).cast(&DataType::Date)?,
    ])?;
    let currencies = rates
        .clone()
        .lazy()
        .select([col("currency")])
        .unique(None, UniqueKeepStrategy::Any);
    let known = rates
        .lazy()
        .select([col("date"), col("currency"), col("usd_per_unit")]);
    let filled = days
        .clone()
        .lazy()
        .cross_join(currencies, None)
        .join(
            known,
            [col(FX_DATE), col(FX_CURRENCY)],
            [col("date"), col("currency")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(
            [FX_CURRENCY, FX_DATE],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .with_column(
            col(FX_RATE)
                .fill_null_with_strategy(FillNullStrategy::Forward(None))
                .over([col(FX_CURRENCY)])?,
        )
        .filter(col(FX_RATE).is_not_null());
    let usd = days
        .lazy()
        .with_columns([lit(USD).alias(FX_CURRENCY), lit(1.0f64).alias(FX_RATE)]);
    Ok(concat([filled, usd], UnionArgs::default())?
        .sort([FX_DATE, FX_CURRENCY], SortMultipleOptions::default())
        .select([col(FX_DATE), col(FX_CURRENCY), col(FX_RATE)])
        .collect()?)
}

/// The schema of [`fx_table`]'s output.
fn fx_schema() -> Schema {
    Schema::from_iter([
        Field::new(FX_DATE.into(), DataType::Date),
        Field::new(FX_CURRENCY.into(), DataType::String),
        Field::new(FX_RATE.into(), DataType::Float64),
    ])
}

/// The first rate that is not a positive finite number, as [`FxError::BadRate`].
fn check_rates(rates: &DataFrame) -> Result<(), FxError> {
    let bad = rates
        .clone()
        .lazy()
        .filter(
            col("usd_per_unit")
                .gt(lit(0.0))
                .and(col("usd_per_unit").is_finite())
                .not()
                .or(col("usd_per_unit").is_null()),
        )
        .select([
            col("row").cast(DataType::UInt64),
            col("date").cast(DataType::String),
            col("currency"),
            col("usd_per_unit"),
        ])
        .limit(1)
        .collect()?;
    if bad.height() == 0 {
        return Ok(());
    }
    let text = |name: &str| -> Result<String, FxError> {
        Ok(bad
            .column(name)?
            .str()?
            .get(0)
            .unwrap_or_default()
            .to_string())
    };
    Err(FxError::BadRate {
        row: bad.column("row")?.u64()?.get(0).unwrap_or_default(),
        date: text("date")?,
        currency: text("currency")?,
        rate: bad
            .column("usd_per_unit")?
            .f64()?
            .get(0)
            .unwrap_or(f64::NAN),
    })
}

/// The rate of `currency` on `date` as a column `alias` (null where the table has none),
/// joined from the dense table; USD is 1.0 on every day, even before the sheet starts.
fn with_rate(lf: LazyFrame, currency: Expr, date: &str, fx: LazyFrame, alias: &str) -> LazyFrame {
    let key_date = format!("{alias}_date");
    let key_currency = format!("{alias}_currency");
    let raw_rate = format!("{alias}_raw");
    let right = fx.select([
        col(FX_DATE).alias(&key_date),
        col(FX_CURRENCY).alias(&key_currency),
        col(FX_RATE).alias(&raw_rate),
    ]);
    lf.with_column(currency.clone().alias(&key_currency))
        .join(
            right,
            [col(date), col(&key_currency)],
            [col(&key_date), col(&key_currency)],
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Left)
            },
        )
        .with_column(
            when(currency.eq(lit(USD)))
                .then(lit(1.0f64))
                .otherwise(col(&raw_rate))
                .alias(alias),
        )
        .drop(cols([key_currency, raw_rate]))
}

/// Adds `out`: `amount` (micros of the row's `currency`) in micros of `reporting` at the
/// rates of the row's `date`: `round(amount * usd_per_unit(currency) / usd_per_unit(reporting))`,
/// half away from zero. With USD as the reporting currency this is exactly
/// `(amount as f64 * usd_per_unit).round() as i64`, the simulator's formula
/// (`sim::fx::to_usd_micros`), so sums agree with the truth to the micro; an amount already in
/// the reporting currency is kept as is. Null when the amount is null or either currency has
/// no rate that day (see [`reject_unknown_currency`]). `fx` is [`fx_table`]'s output: one row
/// per date and currency, otherwise the join would repeat rows.
pub fn with_reporting_amount(
    lf: LazyFrame,
    amount: &str,
    currency: &str,
    date: &str,
    fx: LazyFrame,
    reporting: &str,
    out: &str,
) -> LazyFrame {
    let from = "_fx_from";
    let to = "_fx_to";
    let lf = with_rate(lf, col(currency), date, fx.clone(), from);
    let product = col(amount).cast(DataType::Float64) * col(from);
    // USD reporting divides by nothing: the product is rounded as the simulator rounds it.
    let (lf, exact) = if reporting == USD {
        (lf, product)
    } else {
        let lf = with_rate(lf, lit(reporting.to_string()), date, fx, to);
        (lf, product / col(to))
    };
    let converted = exact
        .round(0, RoundMode::HalfAwayFromZero)
        .cast(DataType::Int64);
    let converted = when(col(currency).eq(lit(reporting.to_string())))
        .then(col(amount).cast(DataType::Int64))
        .otherwise(converted);
    let lf = lf.with_column(converted.alias(out));
    if reporting == USD {
        lf.drop(cols([from]))
    } else {
        lf.drop(cols([from, to]))
    }
}

/// Rejects as `malformed` the rows whose non-null `currency` has no rate on `date` (a code the
/// sheet does not list, or a day before its first rate), naming the column, the code and the
/// day. A null currency next to an amount is the caller's to reject; USD always has a rate.
pub fn reject_unknown_currency(
    lf: LazyFrame,
    currency: &str,
    date: &str,
    fx: LazyFrame,
) -> LazyFrame {
    let rate = "_fx_known";
    let lf = with_rate(lf, col(currency), date, fx, rate);
    let fires = col(currency).is_not_null().and(col(rate).is_null());
    // The day is written out only where the rule fires: the detail is evaluated for every
    // row, and formatting every row's date was 4% of the cleanse stage's CPU.
    let day = when(fires.clone())
        .then(col(date))
        .otherwise(lit(NULL))
        .cast(DataType::String);
    let detail = concat_str(
        [
            lit(format!("{currency}=")),
            col(currency),
            lit(" has no FX rate on "),
            day,
        ],
        "",
        true,
    );
    reject_where_with(lf, fires, "malformed", detail).drop(cols([rate]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cleanse::reject::{REJECT, with_reject};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
    }

    fn dates(name: &str, days: &[u32]) -> Column {
        let v: Vec<i32> = days.iter().map(|d| epoch_days(day(*d))).collect();
        Column::new(name.into(), v).cast(&DataType::Date).unwrap()
    }

    fn pulled(ms: &[i64]) -> Column {
        Column::new("pulled_at".into(), ms)
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
    }

    /// A `raw.sheets_fx_rates` frame: (snapshot day, rate day, currency, rate, pulled ms).
    fn sheet(rows: &[(u32, u32, &str, f64, i64)]) -> DataFrame {
        DataFrame::new_infer_height(vec![
            dates("dt", &rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new(
                "row".into(),
                (2..rows.len() as u64 + 2).collect::<Vec<u64>>(),
            ),
            dates("date", &rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new(
                "currency".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "usd_per_unit".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new("extra".into(), vec![None::<&str>; rows.len()]),
            pulled(&rows.iter().map(|r| r.4).collect::<Vec<_>>()),
        ])
        .unwrap()
    }

    fn rates(df: &DataFrame, currency: &str) -> Vec<(i32, f64)> {
        let f = df
            .clone()
            .lazy()
            .filter(col(FX_CURRENCY).eq(lit(currency)))
            .select([col(FX_DATE).cast(DataType::Int32), col(FX_RATE)])
            .collect()
            .unwrap();
        let d = f.column(FX_DATE).unwrap().i32().unwrap().clone();
        let r = f.column(FX_RATE).unwrap().f64().unwrap().clone();
        d.iter()
            .zip(r.iter())
            .map(|(d, r)| (d.unwrap() - epoch_days(day(1)) + 1, r.unwrap()))
            .collect()
    }

    #[test]
    fn rates_are_forward_filled_from_the_latest_snapshot_and_usd_is_one() {
        let df = sheet(&[
            // An older snapshot with a rate the latest one corrects: ignored.
            (3, 1, "KRW", 0.5, 1),
            (4, 1, "KRW", 0.00074, 10),
            // The same day pulled twice within the snapshot: the later pull wins.
            (4, 1, "JPY", 0.0060, 10),
            (4, 1, "JPY", 0.0066, 20),
            // Day 2 is missing for KRW; JPY starts on day 1 and has no later rate.
            (4, 3, "KRW", 0.00075, 10),
            // A sheet USD rate is overruled.
            (4, 2, "USD", 0.9, 10),
            // A rate after `through` is not used.
            (4, 9, "KRW", 0.001, 10),
        ]);
        let fx = fx_table(df, day(4)).unwrap();
        assert_eq!(
            rates(&fx, "KRW"),
            [(1, 0.00074), (2, 0.00074), (3, 0.00075), (4, 0.00075)]
        );
        assert_eq!(
            rates(&fx, "JPY"),
            [(1, 0.0066), (2, 0.0066), (3, 0.0066), (4, 0.0066)]
        );
        assert_eq!(rates(&fx, "USD"), [(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)]);
        assert_eq!(fx.height(), 12);
    }

    #[test]
    fn days_before_a_currencys_first_rate_stay_absent() {
        let fx = fx_table(
            sheet(&[(5, 1, "KRW", 0.00074, 1), (5, 3, "JPY", 0.0066, 1)]),
            day(3),
        )
        .unwrap();
        assert_eq!(rates(&fx, "JPY"), [(3, 0.0066)]);
        assert_eq!(rates(&fx, "KRW").len(), 3);
    }

    #[test]
    fn a_rate_that_is_not_positive_fails_naming_the_row() {
        let e = fx_table(
            sheet(&[(5, 1, "KRW", 0.00074, 1), (5, 2, "JPY", 0.0, 1)]),
            day(3),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("row 3") && e.contains("JPY") && e.contains("2026-01-02"),
            "{e}"
        );
    }

    /// The dense table of `rows` (day, currency, rate).
    fn fx(rows: &[(u32, &str, f64)]) -> LazyFrame {
        DataFrame::new_infer_height(vec![
            dates(FX_DATE, &rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new(
                FX_CURRENCY.into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
            Column::new(FX_RATE.into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        ])
        .unwrap()
        .lazy()
    }

    fn amounts(rows: &[(u32, Option<i64>, &str)]) -> LazyFrame {
        DataFrame::new_infer_height(vec![
            Column::new("id".into(), (0..rows.len() as u32).collect::<Vec<u32>>()),
            dates("dt", &rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new(
                "amount".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
            Column::new("cur".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        ])
        .unwrap()
        .lazy()
    }

    fn converted(lf: LazyFrame, fx: LazyFrame, reporting: &str) -> Vec<Option<i64>> {
        let out = with_reporting_amount(lf, "amount", "cur", "dt", fx, reporting, "out")
            .sort(["id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        assert_eq!(
            out.get_column_names(),
            ["id", "dt", "amount", "cur", "out"],
            "helper columns are dropped"
        );
        out.column("out").unwrap().i64().unwrap().iter().collect()
    }

    #[test]
    fn krw_converts_to_usd_with_the_simulators_formula() {
        let krw = 1.0 / 1350.0;
        let rows = [
            (1, Some(6_500_000_000i64), "KRW"),
            (1, Some(1_234_567), "KRW"),
            (1, None, "KRW"),
            (1, Some(990_000), "USD"),
            (2, Some(1_000_000), "KRW"),
        ];
        let got = converted(amounts(&rows), fx(&[(1, "KRW", krw)]), "USD");
        assert_eq!(
            got,
            [
                Some(crate::sim::fx::to_usd_micros(6_500_000_000, krw)),
                Some(crate::sim::fx::to_usd_micros(1_234_567, krw)),
                None,
                Some(990_000),
                // No KRW rate on day 2: null, for the caller to reject.
                None,
            ]
        );
    }

    #[test]
    fn jpy_converts_to_krw_through_the_dollar() {
        let (jpy, krw) = (1.0 / 150.0, 1.0 / 1350.0);
        let rows = [
            (1, Some(1_600_000_000i64), "JPY"),
            (1, Some(5_000_000), "KRW"),
            (1, Some(2_000_000), "USD"),
        ];
        let table = fx(&[(1, "JPY", jpy), (1, "KRW", krw), (1, "USD", 1.0)]);
        let got = converted(amounts(&rows), table, "KRW");
        assert_eq!(
            got,
            [
                Some((1_600_000_000f64 * jpy / krw).round() as i64),
                Some(5_000_000),
                Some((2_000_000f64 / krw).round() as i64),
            ]
        );
        assert_eq!(got[0], Some(14_400_000_000));
    }

    #[test]
    fn halves_round_away_from_zero() {
        let rows = [
            (1, Some(5i64), "XXX"),
            (1, Some(-5), "XXX"),
            (1, Some(15), "XXX"),
            (1, Some(3), "XXX"),
        ];
        // 0.5 per unit: 2.5 -> 3, -2.5 -> -3, 7.5 -> 8 (half to even would give 2, -2, 8).
        let got = converted(amounts(&rows), fx(&[(1, "XXX", 0.5)]), "USD");
        assert_eq!(got, [Some(3), Some(-3), Some(8), Some(2)]);
    }

    #[test]
    fn an_unknown_currency_is_rejected_naming_it_and_the_day() {
        let rows = [
            (1, Some(1i64), "KRW"),
            (1, Some(1), "XYZ"),
            (2, Some(1), "KRW"),
            (2, Some(1), "USD"),
        ];
        let lf = amounts(&rows).with_column(
            when(col("id").eq(lit(3u32)))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(col("cur"))
                .alias("cur"),
        );
        let out = reject_unknown_currency(with_reject(lf), "cur", "dt", fx(&[(1, "KRW", 0.001)]))
            .sort(["id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let reasons: Vec<Option<&str>> =
            out.column(REJECT).unwrap().str().unwrap().iter().collect();
        assert_eq!(
            reasons,
            [
                None,
                Some("malformed: cur=XYZ has no FX rate on 2026-01-01"),
                Some("malformed: cur=KRW has no FX rate on 2026-01-02"),
                // A null currency is the caller's business.
                None,
            ]
        );
        assert_eq!(out.width(), 5, "helper columns are dropped");
    }
}
