//! Each person's totals over the whole of `clean.user_daily`, with the settled days' part
//! kept between runs.
//!
//! The per-campaign marts are rebuilt every night over the whole history, and their
//! behaviour columns (revenue to date and at each checkpoint, activity on days 1 and 7) sum
//! every `clean.user_daily` row of each person: 3.5 million rows at 180 days, the part of the
//! marts that grew with the history. Those totals add up over runs of days, so the totals of
//! the *settled* days (before the restatement window) are saved under
//! `_state/mart/user_totals/` and reused while those days' partitions are the very versions
//! they were summed from (see [`Lake::settled_fold`]); only the recent days are read.

use chrono::NaiveDate;
use polars::prelude::*;

use super::MartStageError;
use super::build::{add_user_totals, user_totals};
use crate::lake::{DateRange, FOLD_CHUNK_ROWS, FoldKey, Folding, Lake, unfolded_from};
use crate::schema::Registry;

const STATE_KEY: &str = "mart/user_totals";
const USER_DAILY: &str = "clean.user_daily";

/// [`user_totals`] over every partition of `clean.user_daily`, for the checkpoint `ladder`;
/// `recent_days` are the restatement window's days, which are never saved.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn history_user_totals(
    lake: &Lake,
    recent_days: u32,
    ladder: &[u32],
) -> Result<LazyFrame, MartStageError> {
    let table = Registry::embedded()?.get(USER_DAILY)?;
    let versions = lake.partition_versions(table).await?;
    let key = FoldKey {
        key: STATE_KEY,
        what: "per-user totals",
        params: format!("checkpoints {ladder:?}"),
    };
    let folding = Folding {
        fold: |daily| user_totals(daily, ladder),
        add: |folded: Option<DataFrame>, fresh: LazyFrame| match folded {
            None => fresh.collect(),
            // Collected first: the addition reads the fresh totals three times.
            Some(folded) => {
                add_user_totals(folded.lazy(), fresh.collect()?.lazy(), ladder)?.collect()
            }
        },
        chunk_rows: FOLD_CHUNK_ROWS,
    };
    let settled = lake
        .settled_fold(&key, table, &versions, recent_days, &folding)
        .await?;
    tracing::info!(
        people = settled.frame.height(),
        reused_through = ?settled.reused_through,
        saved_through = ?settled.saved_through,
        "Per-user totals of the settled days."
    );
    let from = unfolded_from(settled.through);
    let recent = user_totals(
        lake.scan(table, DateRange::new(from, NaiveDate::MAX))
            .await?,
        ladder,
    );
    if settled.through.is_none() {
        return Ok(recent);
    }
    // Small (the people of the restatement window); the addition reads them three times.
    let recent = tracing::debug_span!("recent totals")
        .in_scope(|| recent.collect())
        .map_err(totals_error)?;
    add_user_totals(settled.frame.lazy(), recent.lazy(), ladder).map_err(totals_error)
}

fn totals_error(source: PolarsError) -> MartStageError {
    MartStageError::Polars {
        table: "per-user totals",
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::lake::ADVANCE_DAYS;

    const LADDER: [u32; 3] = [1, 7, 30];

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
    }

    /// A day of `clean.user_daily`: person `u<i>` installed on day `i % 15` and pays
    /// `i * 1000 + salt` micros on every third day since then.
    async fn land(lake: &Lake, n: i64, salt: i64) {
        let (mut keys, mut day_n, mut revenue) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..40i64 {
            let since = n - i % 15;
            if since >= 0 && (since + i) % 3 != 1 {
                keys.push(format!("u{i}"));
                day_n.push(i32::try_from(since).unwrap());
                revenue.push(if since % 3 == 0 { i * 1000 + salt } else { 0 });
            }
        }
        let rows = keys.len();
        let days = i32::try_from((day(n) - NaiveDate::default()).num_days()).unwrap();
        let df = DataFrame::new_infer_height(vec![
            Column::new("dt".into(), vec![days; rows])
                .cast(&DataType::Date)
                .unwrap(),
            Column::new("user_key".into(), keys),
            Column::new("day_n".into(), day_n),
            Column::new("events".into(), vec![3u32; rows]),
            Column::new("purchases".into(), vec![1u32; rows]),
            Column::new("reporting_currency".into(), vec!["KRW"; rows]),
            Column::new("revenue_reporting_micros".into(), revenue),
            Column::new("last_event_ms".into(), vec![0i64; rows]),
        ])
        .unwrap();
        let t = Registry::embedded().unwrap().get(USER_DAILY).unwrap();
        lake.write_partition(t, day(n), df).await.unwrap();
    }

    /// Every partition summed from scratch, sorted: what every call must give.
    async fn from_scratch(lake: &Lake, ladder: &[u32]) -> DataFrame {
        let t = Registry::embedded().unwrap().get(USER_DAILY).unwrap();
        let all = lake.scan(t, DateRange::all()).await.unwrap();
        sorted(user_totals(all, ladder))
    }

    fn sorted(lf: LazyFrame) -> DataFrame {
        lf.sort(["user_key"], SortMultipleOptions::default())
            .collect()
            .unwrap()
    }

    async fn saved_through(lake: &Lake) -> Option<NaiveDate> {
        let state: Option<serde_json::Value> = lake.read_state(STATE_KEY).await.unwrap();
        state.map(|s| s["through"].as_str().unwrap().parse().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_totals_equal_a_sum_over_every_day_whatever_was_saved() {
        let lake = Lake::open("memory://").unwrap();
        for n in 0..30 {
            land(&lake, n, 0).await;
        }
        let first = history_user_totals(&lake, 7, &LADDER).await.unwrap();
        assert_eq!(sorted(first), from_scratch(&lake, &LADDER).await);
        assert_eq!(saved_through(&lake).await, Some(day(22)));

        // Nights: a new day and the restatement window restated, from the saved totals.
        for n in 30..30 + ADVANCE_DAYS {
            land(&lake, n, 0).await;
            land(&lake, n - 5, 7).await;
            let night = history_user_totals(&lake, 7, &LADDER).await.unwrap();
            assert_eq!(sorted(night), from_scratch(&lake, &LADDER).await, "day {n}");
            if n < 29 + ADVANCE_DAYS {
                // Not summed again: a fresh sum would have been saved through n - 7.
                assert_eq!(saved_through(&lake).await, Some(day(22)), "day {n}");
            }
        }
        assert_eq!(
            saved_through(&lake).await,
            Some(day(29)),
            "moved forward once a week more had settled"
        );

        // A recompute rewrites a settled day: the saved totals are not used, and are saved
        // again from scratch.
        let file = |s: serde_json::Value| s["file"].as_str().unwrap().to_string();
        let before = file(lake.read_state(STATE_KEY).await.unwrap().unwrap());
        land(&lake, 3, 11).await;
        let rewritten = history_user_totals(&lake, 7, &LADDER).await.unwrap();
        assert_eq!(sorted(rewritten), from_scratch(&lake, &LADDER).await);
        let after = file(lake.read_state(STATE_KEY).await.unwrap().unwrap());
        assert_ne!(before, after);
        assert!(lake.read_object(&before).await.unwrap().is_none());

        // Other checkpoints: other columns, not the saved ones.
        let ladder = [3, 60];
        let other = history_user_totals(&lake, 7, &ladder).await.unwrap();
        assert_eq!(sorted(other), from_scratch(&lake, &ladder).await);

        // The saved file lost: summed again, same result.
        let state = file(lake.read_state(STATE_KEY).await.unwrap().unwrap());
        lake.delete_object(&state).await.unwrap();
        let lost = history_user_totals(&lake, 7, &ladder).await.unwrap();
        assert_eq!(sorted(lost), from_scratch(&lake, &ladder).await);
    }
}
