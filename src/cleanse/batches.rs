//! A large day of Mixpanel's export, cleansed a batch of rows at a time, so that what cleanse
//! holds follows the batch and not the day.
//!
//! Every rule but one is row by row. The exception is Mixpanel's duplicate rule: whether a row
//! repeats an earlier one depends on every row of the day with the same key. So the day's
//! duplicates are found first, in two narrow passes that never hold the day's key strings
//! together ([`duplicate_lines`]), and the batches then mark those lines (see
//! [`clean_mixpanel_batch`]). The result is the one the whole-day plan gives, row for row.

use polars::prelude::*;

use super::dedup::mark_mixpanel_duplicates;
use super::mixpanel::{
    finish_events, reject_listed_duplicates, reject_malformed_events, reject_unpriced_events,
    reject_unreadable_events,
};
use super::reject::{REJECT, with_reject};

/// The row ranges (offset, length) that cover `rows` rows in batches of `batch_rows`.
pub fn batches(rows: u64, batch_rows: u64) -> Vec<(i64, IdxSize)> {
    let step = batch_rows.max(1);
    (0..rows.div_ceil(step))
        .map(|i| {
            let offset = i * step;
            let len = step.min(rows - offset);
            (
                i64::try_from(offset).unwrap_or(i64::MAX),
                IdxSize::try_from(len).unwrap_or(IdxSize::MAX),
            )
        })
        .collect()
}

/// How a key is hashed to find rows that may share it: any function of the key's columns
/// (rows with equal keys must get equal values; different keys may collide).
pub type KeyHash = fn(Vec<Expr>) -> Expr;

/// Seeds of [`key_hash`]: fixed, so a rerun forms the same groups (the result does not depend
/// on them, only the work does).
const SEEDS: [u64; 4] = [
    0x6c74_765f_6b65_7931,
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
];

/// The key's columns hashed to 64 bits by Polars.
pub fn key_hash(key: Vec<Expr>) -> Expr {
    as_struct(key).hash(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3])
}

const HASH: &str = "_key_hash";

/// The rows of one batch that the duplicate rule looks at: sound (no malformed rule rejects
/// them; `unpriced` holds the day's lines in a currency the FX table does not price) and with
/// an `$insert_id`. Rows outside it are never duplicates and hide none.
fn candidates(raw: LazyFrame, (offset, len): (i64, IdxSize), unpriced: &Series) -> LazyFrame {
    reject_unreadable_events(with_reject(raw.slice(offset, len))).filter(
        col("insert_id")
            .is_not_null()
            .and(col(REJECT).is_null())
            .and(
                col("line")
                    .is_in(lit(unpriced.clone()).implode(false), false)
                    .not(),
            ),
    )
}

/// The lines of the day `raw` whose currency `fx` does not price on their UTC day.
///
/// Only rows with a currency (the purchases, a fraction of a percent) can be unpriced, so
/// they are priced apart, once a day: joining every candidate row with the FX table, in both
/// passes of every batch, took 16 s a day of 13.8 million events against 7 s without it.
fn unpriced_lines(raw: &LazyFrame, fx: &LazyFrame) -> PolarsResult<Series> {
    let with_currency = raw.clone().filter(col("currency").is_not_null());
    let lines = reject_unpriced_events(with_reject(with_currency), fx.clone())
        .filter(col(REJECT).is_not_null())
        .select([col("line")])
        .collect()?;
    Ok(lines.column("line")?.as_materialized_series().clone())
}

/// The lines of the day's duplicates under Mixpanel's rule by `key` (see
/// [`mark_mixpanel_duplicates`]), as a `line` series. `fx` is the dense FX table the
/// malformed rule prices currencies with (see [`reject_malformed_events`]).
///
/// First pass: each batch's candidate rows reduced to their line and a 64-bit hash of their
/// key (16 bytes a row where the key's strings take a hundred or more). Only rows whose hash
/// another row shares can be duplicates: a key repeated has its hash repeated. Second pass:
/// each batch's rows among those lines, with their key and ingestion order, gathered (a few
/// percent of the day) and given the rule itself. A hash collision only brings in rows the
/// rule then tells apart by their keys, so the lines are exactly the whole-day rule's.
pub fn duplicate_lines(
    raw: &LazyFrame,
    key: &[String],
    fx: &LazyFrame,
    ranges: &[(i64, IdxSize)],
    hash: KeyHash,
) -> PolarsResult<Series> {
    let key_columns = || key.iter().map(|k| col(k.as_str())).collect::<Vec<_>>();
    let unpriced = unpriced_lines(raw, fx)?;
    let mut hashed = Vec::with_capacity(ranges.len());
    for range in ranges {
        hashed.push(
            candidates(raw.clone(), *range, &unpriced)
                .select([col("line"), hash(key_columns()).alias(HASH)])
                .collect()?
                .lazy(),
        );
    }
    if hashed.is_empty() {
        return Ok(Series::new_empty("line".into(), &DataType::UInt64));
    }
    let shared = concat(hashed, UnionArgs::default())?
        .filter(len().over([col(HASH)])?.gt(lit(1)))
        .select([col("line")])
        .collect()?;
    if shared.height() == 0 {
        return Ok(Series::new_empty("line".into(), &DataType::UInt64));
    }
    let shared = shared.column("line")?.as_materialized_series().clone();
    let mut needed: Vec<Expr> = key_columns();
    for c in ["line", "insert_id", "mp_processing_time_ms", REJECT] {
        if !key.iter().any(|k| k == c) {
            needed.push(col(c));
        }
    }
    let mut gathered = Vec::with_capacity(ranges.len());
    for range in ranges {
        gathered.push(
            candidates(raw.clone(), *range, &unpriced)
                .filter(col("line").is_in(lit(shared.clone()).implode(false), false))
                .select(needed.clone())
                .collect()?
                .lazy(),
        );
    }
    let lines = mark_mixpanel_duplicates(concat(gathered, UnionArgs::default())?, key)
        .filter(col(super::dedup::DUPLICATE))
        .select([col("line")])
        .collect()?;
    Ok(lines.column("line")?.as_materialized_series().clone())
}

/// One batch of a day through the cleanse plan, its duplicates the day's `duplicates` lines
/// (from [`duplicate_lines`]): the columns and reject reasons
/// [`super::mixpanel::clean_mixpanel_events`] gives those rows.
pub fn clean_mixpanel_batch(
    raw: LazyFrame,
    range: (i64, IdxSize),
    duplicates: &Series,
    norm: &super::mixpanel::Normalisation,
) -> LazyFrame {
    let lf = reject_malformed_events(with_reject(raw.slice(range.0, range.1)), norm.fx.clone());
    let lf = reject_listed_duplicates(lf, duplicates);
    finish_events(lf, norm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cleanse::dedup::MIXPANEL_EVENT_KEY;
    use crate::cleanse::mixpanel::clean_mixpanel_events;

    #[test]
    fn batches_cover_every_row_once() {
        assert_eq!(batches(0, 4), []);
        assert_eq!(batches(4, 4), [(0, 4)]);
        assert_eq!(batches(10, 4), [(0, 4), (4, 4), (8, 2)]);
        assert_eq!(batches(3, 0), [(0, 1), (1, 1), (2, 1)]);
    }

    /// Every key to one value: every candidate row collides with every other.
    fn one_bucket(_: Vec<Expr>) -> Expr {
        lit(7u64)
    }

    /// A day of raw rows (line, event, distinct id, insert id, processing time, revenue),
    /// the processing times out of line order so ingestion order matters.
    fn raw_day() -> DataFrame {
        #[allow(clippy::type_complexity)]
        let rows: [(u64, &str, &str, Option<&str>, i64, Option<i64>); 10] = [
            (0, "open", "u1", Some("a"), 50, None),
            (1, "open", "u1", Some("a"), 10, None), // first ingested: line 0 is the duplicate
            (2, "buy", "u1", Some("b"), 20, Some(-1)), // malformed: neither counts nor hides
            (3, "buy", "u1", Some("b"), 30, Some(5)),
            (4, "buy", "u1", Some("b"), 40, Some(5)), // duplicate of line 3
            (5, "open", "u2", None, 10, None),        // no insert id: never a duplicate
            (6, "open", "u2", None, 10, None),
            (7, "open", "u2", Some("a"), 10, None), // other user: not a duplicate of line 0
            (8, "open", "u1", Some("a"), 90, None), // third of key (open, u1, a)
            (9, "view", "u3", Some("c"), 10, None),
        ];
        let time = Column::new("time".into(), vec![1_767_225_610_000i64; rows.len()])
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap();
        let revenue: Vec<Option<i64>> = rows.iter().map(|r| r.5).collect();
        let currency: Vec<Option<&str>> = revenue.iter().map(|r| r.map(|_| "USD")).collect();
        DataFrame::new_infer_height(vec![
            Column::new("dt".into(), vec![20_454i32; rows.len()])
                .cast(&DataType::Date)
                .unwrap(),
            Column::new("line".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new("event".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            time,
            Column::new(
                "distinct_id".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "insert_id".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new(
                "mp_processing_time_ms".into(),
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new("revenue_micros".into(), revenue),
            Column::new("currency".into(), currency),
            Column::new("malformed".into(), vec![None::<&str>; rows.len()]),
            Column::new("device_id".into(), vec![Some("d1"); rows.len()]),
            Column::new("user_id".into(), vec![None::<&str>; rows.len()]),
            Column::new("appsflyer_id".into(), vec![None::<&str>; rows.len()]),
            Column::new("os".into(), vec!["iOS"; rows.len()]),
            Column::new("country_code".into(), vec!["KR"; rows.len()]),
        ])
        .unwrap()
    }

    fn norm() -> super::super::mixpanel::Normalisation {
        let fx = df!(
            "date" => [20_454i32],
            "currency" => ["USD"],
            "usd_per_unit" => [1.0f64],
        )
        .unwrap()
        .lazy()
        .with_column(col("date").cast(DataType::Date));
        super::super::mixpanel::Normalisation {
            zone: TimeZone::opt_try_new(Some("Asia/Seoul")).unwrap().unwrap(),
            reporting_currency: "USD".into(),
            fx,
        }
    }

    fn key() -> Vec<String> {
        MIXPANEL_EVENT_KEY.iter().map(|k| k.to_string()).collect()
    }

    fn lines(s: &Series) -> Vec<u64> {
        let mut v: Vec<u64> = s.u64().unwrap().into_no_null_iter().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn the_days_duplicates_are_found_across_batches_and_through_collisions() {
        let raw = raw_day().lazy();
        for batch in [1, 3, 4, 10] {
            let ranges = batches(10, batch);
            for hash in [key_hash as KeyHash, one_bucket] {
                let dups = duplicate_lines(&raw, &key(), &norm().fx, &ranges, hash).unwrap();
                assert_eq!(lines(&dups), [0, 4, 8], "batch of {batch}");
            }
        }
    }

    #[test]
    fn batches_give_the_whole_day_plans_rows_and_reasons() {
        let raw = raw_day().lazy();
        let whole = clean_mixpanel_events(raw.clone(), &key(), &norm())
            .collect()
            .unwrap();
        let ranges = batches(10, 3);
        let dups = duplicate_lines(&raw, &key(), &norm().fx, &ranges, key_hash).unwrap();
        let parts: Vec<LazyFrame> = ranges
            .iter()
            .map(|r| {
                clean_mixpanel_batch(raw.clone(), *r, &dups, &norm())
                    .collect()
                    .unwrap()
                    .lazy()
            })
            .collect();
        let batched = concat(parts, UnionArgs::default())
            .unwrap()
            .collect()
            .unwrap();
        assert!(batched.equals_missing(&whole), "{batched}\n{whole}");
        let kept = whole.column(REJECT).unwrap().null_count();
        assert_eq!(whole.height() - kept, 4, "three duplicates, one malformed");
    }

    #[test]
    fn a_resend_in_an_unpriced_currency_hides_no_sound_send() {
        // Lines 3 and 4 share a key, line 3 ingested first; line 3 now comes in a currency
        // the FX table lacks, so it is malformed and line 4 is the one send that stays.
        let raw = raw_day()
            .lazy()
            .filter(col("line").is_in(
                lit(Series::new("l".into(), [3u64, 4])).implode(false),
                false,
            ))
            .with_column(
                when(col("line").eq(lit(3u64)))
                    .then(lit("XXX"))
                    .otherwise(col("currency"))
                    .alias("currency"),
            );
        let whole = clean_mixpanel_events(raw.clone(), &key(), &norm())
            .collect()
            .unwrap();
        let reasons: Vec<Option<&str>> = whole
            .column(REJECT)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            reasons,
            [
                Some("malformed: currency=XXX has no FX rate on 2026-01-01"),
                None
            ]
        );
        for batch in [1, 2] {
            let dups =
                duplicate_lines(&raw, &key(), &norm().fx, &batches(2, batch), key_hash).unwrap();
            assert_eq!(dups.len(), 0, "batch of {batch}");
        }
    }

    #[test]
    fn a_day_without_candidates_has_no_duplicates() {
        let raw = raw_day().lazy().filter(col("insert_id").is_null());
        let dups = duplicate_lines(&raw, &key(), &norm().fx, &batches(2, 1), key_hash).unwrap();
        assert_eq!(dups.len(), 0);
        let none = duplicate_lines(&raw, &key(), &norm().fx, &[], key_hash).unwrap();
        assert_eq!(none.len(), 0);
    }
}
