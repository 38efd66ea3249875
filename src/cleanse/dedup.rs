//! Duplicates, by each source's own rule. A rule marks rows rather than dropping them (a
//! `LazyFrame` in, the same frame with a boolean [`DUPLICATE`] column out), so the stage can
//! count what it removes and send it to quarantine with its reason. Every rule is local to one
//! partition (one day), which is what lets the stage work day by day.

use polars::prelude::*;

use crate::cleanse::reject::REJECT;

/// The column a rule adds: true for a row that repeats an earlier kept one.
pub const DUPLICATE: &str = "_duplicate";

/// Mixpanel's default key within one project day (one raw partition): two events are the
/// same when `event`, `distinct_id` and `$insert_id` match on the same day, which covers the
/// stricter "same `time` too". Configurable under `[dedup_keys]`.
pub const MIXPANEL_EVENT_KEY: [&str; 3] = ["event", "distinct_id", "insert_id"];

/// Mixpanel's own rule over one partition, by `key` (see [`MIXPANEL_EVENT_KEY`]). Events
/// without an `$insert_id` are never duplicates: Mixpanel itself does not merge them. Of a
/// set of duplicates the first ingested (`mp_processing_time_ms`, then export line) is kept,
/// so the choice does not depend on the order rows arrive in. Rows an earlier rule already
/// rejected (see [`crate::cleanse::reject`]) neither count as nor hide a duplicate: a sound
/// resend of a malformed row is kept. The frame must carry the reject column.
///
/// Only the key and the two order columns are put in ingestion order, not the frame:
/// sorting the frame moved every string column of the day twice (into ingestion order and
/// back into line order), which cost more than the rule itself. Rows keep their places.
pub fn mark_mixpanel_duplicates(lf: LazyFrame, key: &[String]) -> LazyFrame {
    let mut parts: Vec<Expr> = key.iter().map(|k| col(k.as_str())).collect();
    parts.push(col(REJECT).is_null().alias("_sound"));
    // Row numbers in ingestion order (processing time, then export line, unknown times
    // last), and each row's position in that order.
    let ingestion_order = col(ROW).sort_by(
        [col("mp_processing_time_ms"), col("line")],
        SortMultipleOptions::default().with_nulls_last(true),
    );
    let position = ingestion_order.clone().arg_sort(false, false);
    let first_of_key = as_struct(parts)
        .gather(ingestion_order, false)
        .is_first_distinct()
        .gather(position, false);
    lf.with_row_index(ROW, None)
        .with_column(
            when(col("insert_id").is_null().or(col(REJECT).is_not_null()))
                .then(lit(false))
                .otherwise(first_of_key.not())
                .alias(DUPLICATE),
        )
        .drop(cols([ROW]))
}

/// The row number [`mark_mixpanel_duplicates`] orders by.
const ROW: &str = "_row";

/// Rows that repeat `key`: the first by `newest_first` column descending is kept (for
/// channel reports, `pulled_at`, so the latest pull of a restated day wins; for AppsFlyer,
/// any order, as its duplicate rows are identical).
pub fn mark_key_duplicates(lf: LazyFrame, key: &[&str], newest_first: &str) -> LazyFrame {
    let key = as_struct(key.iter().map(|k| col(*k)).collect());
    lf.sort(
        [newest_first],
        SortMultipleOptions::default()
            .with_order_descending(true)
            .with_nulls_last(true),
    )
    .with_column(key.is_first_distinct().not().alias(DUPLICATE))
}

/// The AppsFlyer in-app event key: the same install, event, time and value.
pub const APPSFLYER_EVENT_KEY: [&str; 5] = [
    "app_id",
    "appsflyer_id",
    "event_name",
    "event_time",
    "event_value",
];

/// The AppsFlyer install key: one install of one app.
pub const APPSFLYER_INSTALL_KEY: [&str; 3] = ["app_id", "appsflyer_id", "install_time"];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cleanse::reject::with_reject;

    fn dt(days: &[i32]) -> Column {
        Column::new("dt".into(), days)
            .cast(&DataType::Date)
            .unwrap()
    }

    fn ms(values: &[i64]) -> Column {
        Column::new("time".into(), values)
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
    }

    /// Marks and returns (line, duplicate) sorted by line.
    fn marked(lf: LazyFrame) -> Vec<(u64, bool)> {
        // The stage runs the rule once per raw partition; `dt` in the key stands for that
        // here, where one frame holds two days.
        let key: Vec<String> = MIXPANEL_EVENT_KEY
            .iter()
            .chain(&["dt"])
            .map(|k| k.to_string())
            .collect();
        let df = mark_mixpanel_duplicates(with_reject(lf), &key)
            .sort(["line"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let lines = df.column("line").unwrap().u64().unwrap().clone();
        let dups = df.column(DUPLICATE).unwrap().bool().unwrap().clone();
        lines
            .iter()
            .zip(dups.iter())
            .map(|(l, d)| (l.unwrap(), d.unwrap()))
            .collect()
    }

    fn events(
        event: &[&str],
        distinct: &[&str],
        insert: &[Option<&str>],
        time: &[i64],
        day: &[i32],
        processed: &[i64],
    ) -> LazyFrame {
        let n = event.len() as u64;
        DataFrame::new_infer_height(vec![
            Column::new("event".into(), event),
            Column::new("distinct_id".into(), distinct),
            Column::new("insert_id".into(), insert),
            ms(time),
            dt(day),
            Column::new("mp_processing_time_ms".into(), processed),
            Column::new("line".into(), (1..=n).collect::<Vec<u64>>()),
        ])
        .unwrap()
        .lazy()
    }

    #[test]
    fn mixpanel_keeps_the_first_ingested_of_a_day_and_never_merges_across_days() {
        let lf = events(
            &["open", "open", "open", "open", "buy", "open"],
            &["u1", "u1", "u1", "u2", "u1", "u1"],
            &[Some("a"), Some("a"), Some("a"), Some("a"), Some("a"), None],
            // Line 2 repeats line 1 a second later the same day (a client retry with a new
            // time): the same-day rule catches it. Line 3 has the same insert id the next day.
            &[1_000, 2_000, 86_401_000, 1_000, 1_000, 1_000],
            &[0, 0, 1, 0, 0, 0],
            // Line 2 was ingested first, so it is the one kept.
            &[50, 40, 60, 50, 50, 50],
        );
        assert_eq!(
            marked(lf),
            [
                (1, true),
                (2, false),
                (3, false),
                (4, false),
                (5, false),
                (6, false)
            ]
        );
    }

    #[test]
    fn events_without_insert_ids_are_all_kept() {
        let lf = events(
            &["open", "open"],
            &["u1", "u1"],
            &[None, None],
            &[1_000, 1_000],
            &[0, 0],
            &[1, 2],
        );
        assert_eq!(marked(lf), [(1, false), (2, false)]);
    }

    #[test]
    fn the_latest_pull_of_a_channel_row_wins() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("campaign_id".into(), ["c1", "c1", "c2"]),
            Column::new("spend_micros".into(), [100i64, 120, 7]),
            Column::new("pulled_at".into(), [1i64, 2, 1]),
        ])
        .unwrap();
        let out = mark_key_duplicates(df.lazy(), &["campaign_id"], "pulled_at")
            .filter(col(DUPLICATE).not())
            .sort(["campaign_id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let spend: Vec<Option<i64>> = out
            .column("spend_micros")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(spend, [Some(120), Some(7)], "the restated amount is kept");
    }
}
