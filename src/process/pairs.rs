//! The history's identifier pairs, folded once and kept between runs as an interned graph.
//!
//! Identity needs every pair of `clean.id_links`. Folding every daily partition again on
//! every run made the night's process grow with the history: at 180 days, folding 7.1
//! million link rows took 2.5 to 5 s of a 5.5 s resolution. So the pairs of
//! the *settled* days (all but the last `recent_days`, which the nightly restatement window
//! rewrites) are saved under `_state/process/id_pairs/` and reused while those days'
//! `clean.id_links` partitions are the very versions they were folded from (see
//! [`Lake::settled_fold`] for when it holds). The recent days' rows are read afresh, as they
//! are ([`link_pairs`]).
//!
//! They are saved interned ([`intern_pairs`]: a row per identifier and its partners by
//! number), not as string pairs: a night reads each settled identifier once instead of once
//! per pair it is in, and needs neither an anti-join of the week's pairs against the
//! history's nor hashing every settled identifier again (see `identity::graph`).

use chrono::NaiveDate;
use polars::prelude::*;

use super::identity::{Edges, intern_pairs, link_pairs};
use crate::cleanse::{CleanseError, table};
use crate::lake::{DateRange, FOLD_CHUNK_ROWS, FoldKey, Folding, Lake, unfolded_from};

const STATE_KEY: &str = "process/id_pairs";
/// Saved with the fold: a fold saved as string pairs (before the graph was kept interned)
/// has none, so it is folded again rather than misread.
const FORMAT: &str = "interned graph";
const LINKS: &str = "clean.id_links";

/// The history's pairs, and how much of them came from the saved fold.
#[derive(Debug)]
pub struct HistoryPairs {
    /// The settled days' pairs interned, and plans of the recent days' rows (with `extra`).
    pub edges: Edges,
    /// The last day of the saved fold that was reused; `None` when all was folded afresh.
    pub reused_through: Option<NaiveDate>,
    /// The last day of the fold this call saved, when it saved one.
    pub saved_through: Option<NaiveDate>,
}

/// Every pair of `clean.id_links` plus `extra` (pairs in the same columns, such as the latest
/// profile snapshot's); see the module docs.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn history_pairs(
    lake: &Lake,
    recent_days: u32,
    extra: Option<LazyFrame>,
) -> Result<HistoryPairs, CleanseError> {
    history_pairs_in_runs(lake, recent_days, extra, FOLD_CHUNK_ROWS).await
}

/// [`history_pairs`], the settled days read in runs of at most `chunk_rows` link rows.
async fn history_pairs_in_runs(
    lake: &Lake,
    recent_days: u32,
    extra: Option<LazyFrame>,
    chunk_rows: u64,
) -> Result<HistoryPairs, CleanseError> {
    let t = table(LINKS)?;
    let versions = lake.partition_versions(t).await?;
    let key = FoldKey {
        key: STATE_KEY,
        what: "identifier pairs",
        params: FORMAT.into(),
    };
    let folding = Folding {
        fold: link_pairs,
        add: |interned: Option<DataFrame>, fresh| intern_pairs(interned.as_ref(), fresh),
        chunk_rows,
    };
    let settled = lake
        .settled_fold(&key, t, &versions, recent_days, &folding)
        .await?;

    // A plan per recent day, rows as they come: the graph takes repeated pairs once (see
    // `link_pairs`), and reads one day at a time, freeing its strings once it has named them.
    let from = unfolded_from(settled.through);
    let mut recent = Vec::new();
    for &dt in versions.keys().filter(|dt| **dt >= from) {
        let what = format!("{LINKS}, partition dt={dt}");
        recent.push((what, link_pairs(lake.scan(t, DateRange::day(dt)).await?)));
    }
    if let Some(pairs) = extra {
        recent.push(("the latest profile snapshot".to_string(), link_pairs(pairs)));
    }
    tracing::info!(
        settled_identifiers = settled.frame.height(),
        recent_plans = recent.len(),
        reused_through = ?settled.reused_through,
        saved_through = ?settled.saved_through,
        "Identifier pairs gathered."
    );
    Ok(HistoryPairs {
        edges: Edges {
            interned: settled.frame,
            pairs: recent,
        },
        reused_through: settled.reused_through,
        saved_through: settled.saved_through,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

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

    fn day_number(d: NaiveDate) -> i32 {
        (d - NaiveDate::default()).num_days() as i32
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

    /// What a set of pairs comes to: each distinct pair, and each identifier's first day.
    #[derive(Debug, PartialEq)]
    struct Flat {
        pairs: BTreeSet<[String; 4]>,
        first_day: BTreeMap<(String, String), i32>,
    }

    impl Flat {
        fn add(&mut self, [lk, li, rk, ri]: [String; 4], day: i32) {
            for node in [(lk.clone(), li.clone()), (rk.clone(), ri.clone())] {
                let first = self.first_day.entry(node).or_insert(day);
                *first = (*first).min(day);
            }
            self.pairs.insert([lk, li, rk, ri]);
        }

        fn add_pairs(&mut self, df: &DataFrame) {
            let c = |name| crate::test_support::strs(df, name);
            let (lk, li, rk, ri) = (c("left_kind"), c("left_id"), c("right_kind"), c("right_id"));
            let days = df.column("dt").unwrap().date().unwrap().physical();
            for (r, day) in days.iter().enumerate() {
                let pair = [&lk[r], &li[r], &rk[r], &ri[r]].map(|v| v.clone().unwrap());
                self.add(pair, day.unwrap());
            }
        }
    }

    /// `edges` as the identity sees them: the interned graph's pairs and the recent ones.
    fn flat(edges: &Edges) -> Flat {
        let mut flat = Flat {
            pairs: BTreeSet::new(),
            first_day: BTreeMap::new(),
        };
        let g = &edges.interned;
        let (kinds, ids) = (
            crate::test_support::strs(g, "kind"),
            crate::test_support::strs(g, "id"),
        );
        let days = g.column("first_day").unwrap().date().unwrap().physical();
        let node = |v: usize| (kinds[v].clone().unwrap(), ids[v].clone().unwrap());
        let partners = g.column("partners").unwrap().list().unwrap();
        for (v, (list, day)) in partners.amortized_iter().zip(days.iter()).enumerate() {
            let (lk, li) = node(v);
            // An identifier's first day is that of its earliest pair: kept per node.
            flat.first_day
                .insert((lk.clone(), li.clone()), day.unwrap());
            for u in list.unwrap().as_ref().u32().unwrap().into_no_null_iter() {
                let (rk, ri) = node(u as usize);
                let new = flat.pairs.insert([lk.clone(), li.clone(), rk, ri]);
                assert!(new, "an interned pair is kept once");
            }
        }
        for (_, plan) in &edges.pairs {
            flat.add_pairs(&plan.clone().collect().unwrap());
        }
        flat
    }

    /// The whole history folded from scratch: what every call must come to.
    async fn full_fold(lake: &Lake) -> Flat {
        let all = lake
            .scan(table(LINKS).unwrap(), DateRange::all())
            .await
            .unwrap();
        flat(&Edges::from_pairs(LINKS, link_pairs(all)).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_settled_days_folded_a_few_at_a_time_give_the_same_graph() {
        let lake = Lake::open("memory://").unwrap();
        for n in 0..20u32 {
            let devices: Vec<u32> = (0..40).filter(|i| (n + i) % 3 == 0).collect();
            land(&lake, day(i64::from(n)), &devices).await;
        }
        let whole = full_fold(&lake).await;
        // 13 or 14 rows a day: runs of one day, of two, and all at once.
        for chunk_rows in [1, 30, u64::MAX] {
            let _ = lake
                .delete_object(&format!("_state/{STATE_KEY}.json"))
                .await;
            let pairs = history_pairs_in_runs(&lake, 7, None, chunk_rows)
                .await
                .unwrap();
            assert_eq!(pairs.saved_through, Some(day(12)), "folded afresh");
            assert_eq!(flat(&pairs.edges), whole, "runs of {chunk_rows} rows");
        }
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
        assert_eq!(flat(&first.edges), full_fold(&lake).await);

        // The next night: a new day, and the restatement window rewritten.
        land(&lake, day(20), &[40, 41, 3]).await;
        land(&lake, day(15), &[42, 5]).await;
        let next = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(next.reused_through, Some(day(12)));
        assert_eq!(
            next.saved_through, None,
            "one more settled day is not worth a save"
        );
        assert_eq!(flat(&next.edges), full_fold(&lake).await);

        // Profile pairs from a snapshot day before the fold's end: their day is the first
        // day of identifiers the fold already holds.
        let profiles = link_pairs(links(day(2), &[43, 44, 0, 19]).lazy());
        let with_profiles = history_pairs(&lake, 7, Some(profiles.clone()))
            .await
            .unwrap();
        let expected = {
            let all = lake
                .scan(table(LINKS).unwrap(), DateRange::all())
                .await
                .unwrap();
            let pairs = concat([link_pairs(all), profiles], UnionArgs::default()).unwrap();
            flat(&Edges::from_pairs(LINKS, pairs).unwrap())
        };
        let got = flat(&with_profiles.edges);
        assert_eq!(got, expected);
        let d19 = ("device_id".to_string(), "d19".to_string());
        assert_eq!(got.first_day[&d19], day_number(day(2)));

        // A recompute rewrites a settled day: the fold is not used, and is saved again.
        land(&lake, day(3), &[45, 7]).await;
        let rewritten = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(rewritten.reused_through, None);
        assert_eq!(rewritten.saved_through, Some(day(13)));
        assert_eq!(flat(&rewritten.edges), full_fold(&lake).await);

        // Seven more days settle: the fold moves forward from the saved one, whose file goes.
        let before: SavedFold = lake.read_state(STATE_KEY).await.unwrap().unwrap();
        for n in 21..28 {
            land(&lake, day(n), &[n as u32 + 100]).await;
        }
        let week = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(week.reused_through, Some(day(13)));
        assert_eq!(week.saved_through, Some(day(20)));
        assert_eq!(flat(&week.edges), full_fold(&lake).await);
        assert!(lake.read_object(&before.file).await.unwrap().is_none());

        // A corrupt state is not trusted, and is replaced by the next save.
        lake.write_object("_state/process/id_pairs.json", b"{".to_vec())
            .await
            .unwrap();
        let corrupt = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(corrupt.reused_through, None);
        assert_eq!(corrupt.saved_through, Some(day(20)));
        assert_eq!(flat(&corrupt.edges), full_fold(&lake).await);
        let saved: Option<SavedFold> = lake.read_state(STATE_KEY).await.unwrap();
        assert!(saved.is_some());

        // A fold saved in another format (string pairs, before the graph was interned) is
        // not read as a graph.
        let mut state: serde_json::Value = lake.read_state(STATE_KEY).await.unwrap().unwrap();
        state["params"] = serde_json::Value::from("");
        lake.write_state(STATE_KEY, &state).await.unwrap();
        let other = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(other.reused_through, None);
        assert_eq!(flat(&other.edges), full_fold(&lake).await);

        // The file is lost: everything is folded again, with the same result.
        let state: SavedFold = lake.read_state(STATE_KEY).await.unwrap().unwrap();
        lake.delete_object(&state.file).await.unwrap();
        let lost = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(lost.reused_through, None);
        assert_eq!(flat(&lost.edges), full_fold(&lake).await);
    }

    /// A recent day's links are read only as identity names them: a file that cannot be read
    /// then fails the resolution with that table and partition named.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_recent_day_is_named_when_identity_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for n in 0..3u32 {
            land(&lake, day(i64::from(n)), &[n, n + 1]).await;
        }
        let t = table(LINKS).unwrap();
        let broken = lake.manifest(t, day(1)).await.unwrap().unwrap();
        std::fs::write(dir.path().join(&broken.files[0].path), b"not parquet").unwrap();
        let pairs = history_pairs(&lake, 7, None).await.unwrap();
        assert_eq!(pairs.edges.pairs.len(), 3, "a plan per recent day");
        let installs = DataFrame::new_infer_height(vec![
            Column::new("appsflyer_id".into(), Vec::<&str>::new()),
            Column::new("install_time".into(), Vec::<i64>::new()),
        ])
        .unwrap();
        let error = crate::process::identity::resolve_pairs(pairs.edges, installs.lazy())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("clean.id_links, partition dt=2026-01-02"),
            "{error}"
        );
    }
}
