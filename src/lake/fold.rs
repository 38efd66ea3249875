//! Saved folds: what a stage folded from a table's *settled* partitions, kept under
//! `_state/` between runs so that a nightly run reads the new days, not the history.
//!
//! A fold here is any frame computed from a run of daily partitions that can be extended
//! with later days without reading the earlier ones again (the identifier pairs with the
//! first day each was seen; each person's revenue and activity sums). The nightly
//! restatement window rewrites the last days, so only the days before it are saved: the
//! fold reaches the settled day, and moves forward once [`ADVANCE_DAYS`] more have settled
//! (saving rewrites the whole file, worth doing weekly, not nightly).
//!
//! A saved fold is used only while every partition it was folded from is still the very
//! version it read (a recompute that rewrote a settled day, a day that appeared or went, and
//! the whole history is folded again), with the same parameters, and while its file is
//! there and holds the expected columns. So the result is always the fold of the current
//! partitions, never a stale one. Two runs saving at once cannot corrupt it either: each
//! saves a file of its own and then points the state at it with a conditional put; the
//! fold reaching further wins.

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{DateRange, Lake, LakeError, unique_suffix};
use crate::schema::TableSchema;

/// A saved fold moves forward only once this many more days have settled.
pub const ADVANCE_DAYS: i64 = 7;

/// Rows of partitions a fold reads at a time (see [`Folding::chunk_rows`]): the history of a
/// large world is added to its fold a run of days at a time. Folding the 23 settled days of a
/// month of ten million events a day at once (76 million rows of identifier pairs, five
/// string columns) held 22 GiB.
pub const FOLD_CHUNK_ROWS: u64 = 16 * 1024 * 1024;

/// Which fold: where it is kept and what it was computed with.
#[derive(Debug, Clone)]
pub struct FoldKey {
    /// Its state document, `_state/<key>.json`; its files go to the folder `_state/<key>/`.
    pub key: &'static str,
    /// What it holds, for the log ("identifier pairs").
    pub what: &'static str,
    /// The parameters it was folded with besides the partitions; a fold saved with others
    /// is not used.
    pub params: String,
}

/// What `_state/<key>.json` records about a saved fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedFold {
    /// The last day folded in.
    through: NaiveDate,
    /// Lake-relative path of the Parquet file holding the fold.
    file: String,
    /// The version of every partition folded (each day up to `through`).
    #[serde(alias = "links")]
    partitions: BTreeMap<NaiveDate, String>,
    #[serde(default)]
    params: String,
}

/// The fold of a table's settled partitions, and how much of it was reused or saved.
#[derive(Debug)]
pub struct SettledFold {
    /// The fold of every partition up to `through` (the empty fold when `through` is none).
    pub frame: DataFrame,
    /// The last day in `frame`; later partitions still need folding.
    pub through: Option<NaiveDate>,
    /// The last day of the saved fold that was reused; `None` when all was folded afresh.
    pub reused_through: Option<NaiveDate>,
    /// The last day of the fold this call saved, when it saved one.
    pub saved_through: Option<NaiveDate>,
}

/// How a fold is computed: `fold` turns partitions into a lazy plan, `add` extends a fold
/// with that plan over later partitions (`add(Some(folded), fresh)`), or makes the first
/// from `fresh` alone (`add(None, fresh)`). What `add` returns is the fold that is saved,
/// which may differ in shape from `fold`'s plan.
pub struct Folding<F, A>
where
    F: Fn(LazyFrame) -> LazyFrame,
    A: Fn(Option<DataFrame>, LazyFrame) -> PolarsResult<DataFrame>,
{
    pub fold: F,
    pub add: A,
    /// The partitions to fold are read in runs of consecutive days of at most this many
    /// rows (a larger day alone), each added to the fold before the next is read: what a
    /// fold holds follows the run and the fold, not the history ([`FOLD_CHUNK_ROWS`]).
    pub chunk_rows: u64,
}

impl Lake {
    /// The current version of every committed partition of `table`.
    pub async fn partition_versions(
        &self,
        table: &TableSchema,
    ) -> Result<BTreeMap<NaiveDate, String>, LakeError> {
        Ok(self
            .partition_manifests(table)
            .await?
            .into_iter()
            .map(|(dt, m)| (dt, m.version))
            .collect())
    }

    /// The fold of `table`'s settled partitions (all but the last `recent_days`): the saved
    /// one where it still holds (see the module docs), extended and saved again when
    /// [`ADVANCE_DAYS`] more days have settled. `versions` are the table's
    /// ([`Lake::partition_versions`]); the caller folds the days after `through` itself.
    pub async fn settled_fold<F, A>(
        &self,
        key: &FoldKey,
        table: &TableSchema,
        versions: &BTreeMap<NaiveDate, String>,
        recent_days: u32,
        folding: &Folding<F, A>,
    ) -> Result<SettledFold, LakeError>
    where
        F: Fn(LazyFrame) -> LazyFrame,
        A: Fn(Option<DataFrame>, LazyFrame) -> PolarsResult<DataFrame>,
    {
        let failed = |source| LakeError::Fold {
            key: key.key.to_string(),
            source,
        };
        // The fold of no partitions: what a saved file must look like.
        let nothing = (folding.fold)(DataFrame::empty_with_schema(&table.polars_schema()).lazy());
        let empty = (folding.add)(None, nothing).map_err(failed)?;
        let base = self.saved_fold(key, versions, empty.schema()).await?;
        let reused_through = base.as_ref().map(|(d, _)| *d);
        let (mut through, mut frame) = match base {
            Some((d, df)) => (Some(d), Some(df)),
            None => (None, None),
        };
        let mut saved_through = None;
        if let Some(settled) = fold_due(versions, recent_days, through) {
            let from = unfolded_from(through);
            let rows: Vec<(NaiveDate, u64)> = self
                .manifests_in(table, DateRange::new(from, settled))
                .await?
                .into_iter()
                .map(|(dt, m)| (dt, m.rows))
                .collect();
            for run in runs_of_rows(&rows, folding.chunk_rows) {
                let fresh = (folding.fold)(self.scan(table, run).await?);
                frame = Some((folding.add)(frame, fresh).map_err(failed)?);
            }
            // No partition to fold (a gap in the data) leaves the fold as it was.
            let mut folded = frame.unwrap_or_else(|| empty.clone());
            self.save_fold(key, &mut folded, settled, versions).await?;
            frame = Some(folded);
            through = Some(settled);
            saved_through = Some(settled);
        }
        Ok(SettledFold {
            frame: frame.unwrap_or(empty),
            through,
            reused_through,
            saved_through,
        })
    }

    /// The saved fold of `key` and its last day, or `None` (with a log line saying why) when
    /// there is none that holds for `versions` with `schema`.
    async fn saved_fold(
        &self,
        key: &FoldKey,
        versions: &BTreeMap<NaiveDate, String>,
        schema: &Schema,
    ) -> Result<Option<(NaiveDate, DataFrame)>, LakeError> {
        let what = key.what;
        let saved = match self.read_state::<SavedFold>(key.key).await {
            Ok(Some(saved)) => saved,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%error, what, "A saved fold's state is unreadable: folding the whole history.");
                return Ok(None);
            }
        };
        if saved.params != key.params {
            tracing::info!(
                what,
                "A saved fold has other parameters: folding the whole history."
            );
            return Ok(None);
        }
        if !folded_from(versions, saved.through).eq(saved.partitions.iter()) {
            tracing::info!(what, through = %saved.through, "Settled partitions were rewritten since their fold was saved: folding the whole history.");
            return Ok(None);
        }
        let file = saved.file.as_str();
        let Some(bytes) = self.read_object(file).await? else {
            tracing::warn!(
                what,
                file,
                "A saved fold's file is missing: folding the whole history."
            );
            return Ok(None);
        };
        match ParquetReader::new(Cursor::new(bytes)).finish() {
            Ok(df) if df.schema().as_ref() == schema => Ok(Some((saved.through, df))),
            Ok(_) => {
                tracing::warn!(
                    what,
                    file,
                    "A saved fold's file has other columns: folding the whole history."
                );
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(what, file, %error, "A saved fold's file is unreadable: folding the whole history.");
                Ok(None)
            }
        }
    }

    /// Saves `frame` (the fold of every partition up to `through`) as a file of its own and
    /// points the state at it with a conditional put (another run may be saving at the same
    /// time: the fold reaching further wins), then deletes the file no longer named.
    async fn save_fold(
        &self,
        key: &FoldKey,
        frame: &mut DataFrame,
        through: NaiveDate,
        versions: &BTreeMap<NaiveDate, String>,
    ) -> Result<(), LakeError> {
        let mut body = Vec::new();
        ParquetWriter::new(&mut body)
            .finish(frame)
            .map_err(|source| LakeError::Fold {
                key: key.key.to_string(),
                source,
            })?;
        let file = format!("_state/{}/{through}-{}.parquet", key.key, unique_suffix());
        self.write_object(&file, body).await?;
        let ours = SavedFold {
            through,
            file,
            partitions: folded_from(versions, through)
                .map(|(d, v)| (*d, v.clone()))
                .collect(),
            params: key.params.clone(),
        };
        let replaced = std::sync::Mutex::new(None);
        let update = self
            .update_state(key.key, |current: Option<SavedFold>| match current {
                Some(theirs) if theirs.through > ours.through && theirs.params == ours.params => {
                    theirs
                }
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
                self.write_state(key.key, &ours).await?;
                ours.clone()
            }
            Err(e) => return Err(e),
        };
        let unused = if kept.file == ours.file {
            replaced.into_inner().ok().flatten()
        } else {
            Some(ours.file)
        };
        if let Some(file) = unused.filter(|f| *f != kept.file) {
            self.delete_object(&file).await?;
        }
        tracing::info!(what = key.what, %through, "Saved a fold of settled partitions.");
        Ok(())
    }
}

/// The first day a fold through `through` does not hold (every day, for no fold).
pub fn unfolded_from(through: Option<NaiveDate>) -> NaiveDate {
    through.map_or(NaiveDate::MIN, |d| d + Duration::days(1))
}

/// Runs of consecutive `(day, rows)` of at most `max_rows` rows each (a larger day alone),
/// as date ranges, in order.
fn runs_of_rows(days: &[(NaiveDate, u64)], max_rows: u64) -> Vec<DateRange> {
    let mut runs = Vec::new();
    let mut run: Option<(NaiveDate, NaiveDate, u64)> = None;
    for &(dt, rows) in days {
        run = match run {
            Some((from, _, sum)) if sum.saturating_add(rows) <= max_rows => {
                Some((from, dt, sum + rows))
            }
            Some((from, to, _)) => {
                runs.push(DateRange::new(from, to));
                Some((dt, dt, rows))
            }
            None => Some((dt, dt, rows)),
        };
    }
    if let Some((from, to, _)) = run {
        runs.push(DateRange::new(from, to));
    }
    runs
}

/// The partitions a fold through `through` is folded from.
fn folded_from(
    versions: &BTreeMap<NaiveDate, String>,
    through: NaiveDate,
) -> impl Iterator<Item = (&NaiveDate, &String)> {
    versions.range(..=through)
}

/// The day a fold through `through` should now be extended to, if it is due: the last
/// partition less `recent_days`, once that is [`ADVANCE_DAYS`] past `through` (or there is
/// no fold yet) and some partition is that old.
fn fold_due(
    versions: &BTreeMap<NaiveDate, String>,
    recent_days: u32,
    through: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let first = *versions.keys().next()?;
    let settled = *versions.keys().next_back()? - Duration::days(i64::from(recent_days));
    let due = through.is_none_or(|d| (settled - d).num_days() >= ADVANCE_DAYS);
    (first <= settled && due).then_some(settled)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
    }

    fn versions(days: std::ops::Range<i64>) -> BTreeMap<NaiveDate, String> {
        days.map(|n| (day(n), format!("v{n}"))).collect()
    }

    #[test]
    fn runs_of_days_stay_within_their_rows_and_a_larger_day_goes_alone() {
        let days = [
            (day(0), 5),
            (day(1), 5),
            (day(2), 20),
            (day(3), 3),
            (day(5), 4),
        ];
        let runs = runs_of_rows(&days, 10);
        let expect = [
            DateRange::new(day(0), day(1)),
            DateRange::new(day(2), day(2)),
            DateRange::new(day(3), day(5)),
        ];
        assert_eq!(runs, expect);
        assert_eq!(
            runs_of_rows(&days, u64::MAX),
            [DateRange::new(day(0), day(5))]
        );
        assert_eq!(runs_of_rows(&[], 10), []);
    }

    #[test]
    fn a_fold_is_due_once_a_week_more_has_settled() {
        // Days 0..20, seven recent: day 12 is the last settled one.
        let v = versions(0..20);
        assert_eq!(fold_due(&v, 7, None), Some(day(12)));
        assert_eq!(fold_due(&v, 7, Some(day(6))), None, "six days on");
        assert_eq!(fold_due(&v, 7, Some(day(5))), Some(day(12)));
        assert_eq!(fold_due(&v, 0, Some(day(12))), Some(day(19)));
        // Nothing has settled yet.
        assert_eq!(fold_due(&versions(0..5), 7, None), None);
        assert_eq!(fold_due(&BTreeMap::new(), 7, None), None);
    }

    #[test]
    fn a_state_saved_before_folds_were_shared_still_reads() {
        let old = r#"{"through":"2026-01-05","file":"_state/process/id_pairs/x.parquet",
            "links":{"2026-01-05":"v4"}}"#;
        let saved: SavedFold = serde_json::from_str(old).unwrap();
        assert_eq!(saved.partitions.len(), 1);
        assert_eq!(saved.params, "");
    }
}
