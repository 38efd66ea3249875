//! The history's identifier pairs, folded once and kept between runs.
//!
//! Identity needs every pair of `clean.id_links` once, with the first day it was seen
//! ([`fold_links`]). Folding every daily partition again on every run made the night's
//! process grow with the history: at 180 days, folding 7.1 million link rows took 2.5 to 5 s
//! of a 5.5 s resolution. So the fold of the *settled* days (all but the last
//! `recent_days`, which the nightly restatement window rewrites) is saved under
//! `_state/process/id_pairs/` and reused while those days' `clean.id_links` partitions are
//! the very versions it was folded from (see [`Lake::settled_fold`] for when it holds).
//! The recent days are folded afresh and added to it.

use chrono::NaiveDate;
use polars::prelude::*;

use super::identity::fold_links;
use crate::cleanse::{CleanseError, table};
use crate::lake::{DateRange, FoldKey, Folding, Lake, unfolded_from};

const STATE_KEY: &str = "process/id_pairs";
const LINKS: &str = "clean.id_links";

/// The history's pairs, and how much of them came from the saved fold.
#[derive(Debug)]
pub struct HistoryPairs {
    /// `dt` (first day seen), `left_kind`, `left_id`, `right_kind`, `right_id`: a row per pair.
    pub edges: DataFrame,
    /// The last day of the saved fold that was reused; `None` when all was folded afresh.
    pub reused_through: Option<NaiveDate>,
    /// The last day of the fold this call saved, when it saved one.
    pub saved_through: Option<NaiveDate>,
}

fn whole(e: PolarsError) -> CleanseError {
    CleanseError::Table {
        table: LINKS.into(),
        error: e.to_string(),
    }
}

/// Every pair of `clean.id_links` plus `extra` (pairs in the same columns, such as the latest
/// profile snapshot's, seen no earlier than `extra_from`), folded; see the module docs.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn history_pairs(
    lake: &Lake,
    recent_days: u32,
    extra: Option<(LazyFrame, NaiveDate)>,
) -> Result<HistoryPairs, CleanseError> {
    let t = table(LINKS)?;
    let versions = lake.partition_versions(t).await?;
    let key = FoldKey {
        key: STATE_KEY,
        what: "identifier pairs",
        params: String::new(),
    };
    let folding = Folding {
        fold: fold_links,
        add: |folded, through, fresh| add_pairs(folded, through, fresh, unfolded_from(through)),
    };
    let settled = lake
        .settled_fold(&key, t, &versions, recent_days, &folding)
        .await?;
    let through = settled.through;

    let from = unfolded_from(through);
    let pair_columns = || ["dt", "left_kind", "left_id", "right_kind", "right_id"].map(col);
    let mut recent = lake
        .scan(t, DateRange::new(from, NaiveDate::MAX))
        .await?
        .select(pair_columns());
    let mut recent_from = from;
    if let Some((pairs, seen_from)) = extra {
        recent =
            concat([recent, pairs.select(pair_columns())], UnionArgs::default()).map_err(whole)?;
        recent_from = recent_from.min(seen_from);
    }
    let edges =
        add_pairs(settled.frame, through, fold_links(recent), recent_from).map_err(whole)?;
    tracing::info!(
        pairs = edges.height(),
        reused_through = ?settled.reused_through,
        saved_through = ?settled.saved_through,
        "Identifier pairs folded."
    );
    Ok(HistoryPairs {
        edges,
        reused_through: settled.reused_through,
        saved_through: settled.saved_through,
    })
}

/// The fold of `folded` (pairs up to `through`) and `fresh` (folded pairs, none seen before
/// `fresh_from`). When every fresh pair is later than every folded one, a pair already
/// folded keeps its day and only the new pairs are added: no group-by over the history.
fn add_pairs(
    folded: DataFrame,
    through: Option<NaiveDate>,
    fresh: LazyFrame,
    fresh_from: NaiveDate,
) -> PolarsResult<DataFrame> {
    let keys = || {
        [
            col("left_kind"),
            col("left_id"),
            col("right_kind"),
            col("right_id"),
        ]
    };
    if through.is_none_or(|t| t < fresh_from) {
        let new = fresh.join(
            folded.clone().lazy(),
            keys(),
            keys(),
            JoinArgs::new(JoinType::Anti),
        );
        concat([folded.lazy(), new], UnionArgs::default())?.collect()
    } else {
        // Fresh pairs may be older than folded ones: the full fold decides their day.
        fold_links(concat([folded.lazy(), fresh], UnionArgs::default())?).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;

    use super::*;

    /// The part of the saved fold's state these tests look at.
    #[derive(serde::Deserialize)]
    struct SavedFold {
        file: String,
    }

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
    }

    /// A day of links: pairs `(device d<i>, user u<i / 2>)` for each `i`, so people hold two
    /// devices each.
    fn links(dt: NaiveDate, devices: &[u32]) -> DataFrame {
        let n = devices.len();
        DataFrame::new_infer_height(vec![
            Column::new("source".into(), vec!["raw.mixpanel_events"; n]),
            Column::new("left_kind".into(), vec!["device_id"; n]),
            Column::new(
                "left_id".into(),
                devices.iter().map(|i| format!("d{i}")).collect::<Vec<_>>(),
            ),
            Column::new("right_kind".into(), vec!["user_id"; n]),
            Column::new(
                "right_id".into(),
                devices
                    .iter()
                    .map(|i| format!("u{}", i / 2))
                    .collect::<Vec<_>>(),
            ),
            Column::new("rows".into(), vec![1u64; n]),
        ])
        .unwrap()
        .lazy()
        .with_column(
            lit((dt - NaiveDate::default()).num_days() as i32)
                .cast(DataType::Date)
                .alias("dt"),
        )
        .collect()
        .unwrap()
    }

    async fn land(lake: &Lake, dt: NaiveDate, devices: &[u32]) {
        let t = table(LINKS).unwrap();
        let df = links(dt, devices)
            .select(t.polars_schema().iter_names().cloned())
            .unwrap();
        lake.write_partition(t, dt, df).await.unwrap();
    }

    /// The whole history folded from scratch, sorted: what every call must return.
    async fn full_fold(lake: &Lake) -> DataFrame {
        let all = lake
            .scan(table(LINKS).unwrap(), DateRange::all())
            .await
            .unwrap();
        sorted(fold_links(all).collect().unwrap())
    }

    fn sorted(df: DataFrame) -> DataFrame {
        df.sort(["left_id", "right_id"], SortMultipleOptions::default())
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_saved_fold_is_reused_only_while_its_links_are_unchanged() {
        let lake = Lake::open("memory://").unwrap();
        // 20 days; device i is active from day i % 10 on, every other day.
        for n in 0..20u32 {
            let devices: Vec<u32> = (0..40)
                .filter(|i| n >= i % 10 && (n + i) % 2 == 0)
                .collect();
            land(&lake, day(i64::from(n)), &devices).await;
        }
        let first = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(first.reused_through, None);
        assert_eq!(first.saved_through, Some(day(12)));
        assert_eq!(sorted(first.edges), full_fold(&lake).await);

        // The next night: a new day, and the restatement window rewritten.
        land(&lake, day(20), &[40, 41, 3]).await;
        land(&lake, day(15), &[42, 5]).await;
        let next = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(next.reused_through, Some(day(12)));
        assert_eq!(
            next.saved_through, None,
            "one more settled day is not worth a save"
        );
        assert_eq!(sorted(next.edges), full_fold(&lake).await);

        // Profile pairs from a snapshot day before the fold's end: the full fold decides.
        let pair_columns = || ["dt", "left_kind", "left_id", "right_kind", "right_id"].map(col);
        let profiles = links(day(2), &[43, 44, 0]).lazy().select(pair_columns());
        let with_profiles = history_pairs(&lake, 7, Some((profiles.clone(), day(2))))
            .await
            .unwrap();
        let expected = {
            let all = lake
                .scan(table(LINKS).unwrap(), DateRange::all())
                .await
                .unwrap();
            let all = all.select(pair_columns());
            sorted(
                fold_links(concat([all, profiles], UnionArgs::default()).unwrap())
                    .collect()
                    .unwrap(),
            )
        };
        assert_eq!(sorted(with_profiles.edges), expected);

        // A recompute rewrites a settled day: the fold is not used, and is saved again.
        land(&lake, day(3), &[45, 7]).await;
        let rewritten = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(rewritten.reused_through, None);
        assert_eq!(rewritten.saved_through, Some(day(13)));
        assert_eq!(sorted(rewritten.edges), full_fold(&lake).await);

        // Seven more days settle: the fold moves forward from the saved one, whose file goes.
        let before: SavedFold = lake.read_state(STATE_KEY).await.unwrap().unwrap();
        for n in 21..28 {
            land(&lake, day(n), &[n as u32 + 100]).await;
        }
        let week = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(week.reused_through, Some(day(13)));
        assert_eq!(week.saved_through, Some(day(20)));
        assert_eq!(sorted(week.edges), full_fold(&lake).await);
        assert!(lake.read_object(&before.file).await.unwrap().is_none());

        // A corrupt state is not trusted, and is replaced by the next save.
        lake.write_object("_state/process/id_pairs.json", b"{".to_vec())
            .await
            .unwrap();
        let corrupt = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(corrupt.reused_through, None);
        assert_eq!(corrupt.saved_through, Some(day(20)));
        assert_eq!(sorted(corrupt.edges), full_fold(&lake).await);
        let saved: Option<SavedFold> = lake.read_state(STATE_KEY).await.unwrap();
        assert!(saved.is_some());

        // The file is lost: everything is folded again, with the same result.
        let state: SavedFold = lake.read_state(STATE_KEY).await.unwrap().unwrap();
        lake.delete_object(&state.file).await.unwrap();
        let lost = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(lost.reused_through, None);
        assert_eq!(sorted(lost.edges), full_fold(&lake).await);
    }
}
