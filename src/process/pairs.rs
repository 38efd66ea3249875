//! The history's identifier pairs, folded once and kept between runs.
//!
//! Identity needs every pair of `clean.id_links` once, with the first day it was seen
//! ([`fold_links`]). Folding every daily partition again on every run made the night's
//! process grow with the history: at 180 days, folding 7.1 million link rows took 2.5 to 5 s
//! of a 5.5 s resolution. So the fold of the *settled* days (all but the last
//! `recent_days`, which the nightly restatement window rewrites) is saved as a Parquet file
//! under `_state/process/`, and reused while those days' `clean.id_links` partitions are the
//! very versions it was folded from. The recent days are folded afresh and added to it.
//!
//! Any difference (a recompute rewrote a settled day, a day appeared or went, the file is
//! gone or unreadable) and the whole history is folded again: the result is always the fold
//! of the current links, never a stale one. Two runs saving at once cannot corrupt it
//! either: each saves a file of its own and then points the state at it with a conditional
//! put, and a state that names versions the lake no longer holds is simply not used.

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::identity::fold_links;
use crate::cleanse::{CleanseError, table};
use crate::lake::{DateRange, Lake, LakeError, unique_suffix};

const STATE_KEY: &str = "process/id_pairs";
const FOLD_DIR: &str = "_state/process/id_pairs";
const LINKS: &str = "clean.id_links";
/// The saved fold moves forward only once this many more days have settled: saving
/// rewrites it whole (a million pairs at 180 days), worth doing weekly, not nightly.
const ADVANCE_DAYS: i64 = 7;

/// What `_state/process/id_pairs.json` records about the saved fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedFold {
    /// The last day folded in.
    through: NaiveDate,
    /// Lake-relative path of the Parquet file holding the fold.
    file: String,
    /// The version of every `clean.id_links` partition folded (each day up to `through`).
    links: BTreeMap<NaiveDate, String>,
}

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
    let mut versions = BTreeMap::new();
    for dt in lake.partitions(t).await? {
        if let Some(m) = lake.manifest(t, dt).await? {
            versions.insert(dt, m.version);
        }
    }
    let saved = match lake.read_state::<SavedFold>(STATE_KEY).await {
        Ok(saved) => saved,
        Err(error) => {
            tracing::warn!(%error, "The saved fold of identifier pairs is unreadable: folding the whole history.");
            None
        }
    };
    let mut base = None;
    if let Some(s) = &saved {
        let folded: BTreeMap<NaiveDate, String> = versions
            .range(..=s.through)
            .map(|(d, v)| (*d, v.clone()))
            .collect();
        if folded == s.links {
            base = read_fold(lake, &s.file).await?.map(|df| (s.through, df));
        } else {
            tracing::info!(through = %s.through, "Settled id links were rewritten since their fold was saved: folding the whole history.");
        }
    }
    let reused_through = base.as_ref().map(|(d, _)| *d);
    let (mut through, mut folded) = match base {
        Some((d, df)) => (Some(d), df),
        None => (None, no_pairs().map_err(whole)?),
    };

    let mut saved_through = None;
    let settled = versions
        .keys()
        .next_back()
        .map(|last| *last - Duration::days(i64::from(recent_days)))
        .filter(|s| versions.keys().next().is_some_and(|first| first <= s));
    if let Some(settled) = settled {
        let due = through.is_none_or(|d| (settled - d).num_days() >= ADVANCE_DAYS);
        if due {
            let from = through.map_or(NaiveDate::MIN, |d| d + Duration::days(1));
            let links = lake.scan(t, DateRange::new(from, settled)).await?;
            folded = add_pairs(folded, through, fold_links(links), from).map_err(whole)?;
            let links = versions
                .range(..=settled)
                .map(|(d, v)| (*d, v.clone()))
                .collect();
            save_fold(lake, &mut folded, settled, links).await?;
            through = Some(settled);
            saved_through = Some(settled);
        }
    }

    let from = through.map_or(NaiveDate::MIN, |d| d + Duration::days(1));
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
    let edges = add_pairs(folded, through, fold_links(recent), recent_from).map_err(whole)?;
    tracing::info!(
        pairs = edges.height(),
        reused_through = ?reused_through,
        saved_through = ?saved_through,
        "Identifier pairs folded."
    );
    Ok(HistoryPairs {
        edges,
        reused_through,
        saved_through,
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

/// An empty fold, in [`fold_links`]'s columns.
fn no_pairs() -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new_empty("dt".into(), &DataType::Date),
        Column::new_empty("left_kind".into(), &DataType::String),
        Column::new_empty("left_id".into(), &DataType::String),
        Column::new_empty("right_kind".into(), &DataType::String),
        Column::new_empty("right_id".into(), &DataType::String),
    ])
}

/// The saved fold, or `None` (with a warning) when its file is gone or is not a fold.
async fn read_fold(lake: &Lake, file: &str) -> Result<Option<DataFrame>, CleanseError> {
    let Some(bytes) = lake.read_object(file).await? else {
        tracing::warn!(
            file,
            "The saved fold of identifier pairs is missing: folding the whole history."
        );
        return Ok(None);
    };
    let expected = no_pairs().map_err(whole)?;
    match ParquetReader::new(Cursor::new(bytes)).finish() {
        Ok(df) if df.schema() == expected.schema() => Ok(Some(df)),
        Ok(_) => {
            tracing::warn!(
                file,
                "The saved fold of identifier pairs has other columns: folding the whole history."
            );
            Ok(None)
        }
        Err(error) => {
            tracing::warn!(file, %error, "The saved fold of identifier pairs is unreadable: folding the whole history.");
            Ok(None)
        }
    }
}

/// Saves `folded` (every pair up to `through`) as a file of its own and points the state at
/// it with a conditional put (another run may be saving at the same time: the fold reaching
/// further wins), then deletes the file no longer named.
async fn save_fold(
    lake: &Lake,
    folded: &mut DataFrame,
    through: NaiveDate,
    links: BTreeMap<NaiveDate, String>,
) -> Result<(), CleanseError> {
    let mut body = Vec::new();
    ParquetWriter::new(&mut body)
        .finish(folded)
        .map_err(whole)?;
    let file = format!("{FOLD_DIR}/{through}-{}.parquet", unique_suffix());
    lake.write_object(&file, body).await?;
    let ours = SavedFold {
        through,
        file,
        links,
    };
    let replaced = std::sync::Mutex::new(None);
    let update = lake
        .update_state(STATE_KEY, |current: Option<SavedFold>| match current {
            Some(theirs) if theirs.through > ours.through => theirs,
            other => {
                if let Ok(mut r) = replaced.lock() {
                    *r = other.map(|o| o.file);
                }
                ours.clone()
            }
        })
        .await;
    let kept = match update {
        Ok(kept) => kept,
        // An unreadable state (warned about when it was read) is replaced, not kept.
        Err(LakeError::BadState { .. }) => {
            lake.write_state(STATE_KEY, &ours).await?;
            ours.clone()
        }
        Err(e) => return Err(e.into()),
    };
    let unused = if kept.file == ours.file {
        replaced.into_inner().ok().flatten()
    } else {
        Some(ours.file)
    };
    if let Some(file) = unused.filter(|f| *f != kept.file) {
        lake.delete_object(&file).await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
