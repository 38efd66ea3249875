//! The lake: round trips, schema validation on write, atomic and idempotent partitions,
//! pruning, state documents and the sweep of orphaned files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::NaiveDate;
use ltv::lake::{DateRange, Lake, LakeError};
use ltv::schema::{Registry, TableSchema};
use polars::prelude::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Days since 1970-01-01: a `NaiveDate` literal would become a datetime in Polars.
fn day_number(s: &str) -> i32 {
    (date(s) - NaiveDate::default()).num_days() as i32
}

fn events_table() -> TableSchema {
    Registry::embedded()
        .unwrap()
        .get("sim.events")
        .unwrap()
        .clone()
}

/// A small, valid `sim.events` frame whose rows all carry `tag` in `user_id`.
fn events(rows: usize, tag: u64) -> DataFrame {
    let n = rows as i64;
    let time = Series::new(
        "time".into(),
        (0..n)
            .map(|i| 1_767_225_600_000 + i * 1000)
            .collect::<Vec<_>>(),
    )
    .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    DataFrame::new_infer_height(vec![
        Series::new("row_id".into(), (0..rows as u64).collect::<Vec<_>>()).into(),
        Series::new("user_id".into(), vec![tag; rows]).into(),
        time.into(),
        Series::new(
            "event".into(),
            (0..rows)
                .map(|i| if i % 2 == 0 { "app_open" } else { "purchase" })
                .collect::<Vec<_>>(),
        )
        .into(),
        Series::new("device_id".into(), vec![7u64; rows]).into(),
        Series::new(
            "login_id".into(),
            (0..rows)
                .map(|i| (i % 3 != 0).then_some(i as u64))
                .collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "insert_id".into(),
            (0..rows as u64).map(|i| i * 31).collect::<Vec<_>>(),
        )
        .into(),
        Series::new("platform".into(), vec!["ios"; rows]).into(),
        Series::new("country".into(), vec!["KR"; rows]).into(),
        Series::new(
            "revenue_micros".into(),
            (0..rows)
                .map(|i| (i % 2 == 1).then_some(1_200_000_000i64))
                .collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "currency".into(),
            (0..rows)
                .map(|i| (i % 2 == 1).then_some("KRW"))
                .collect::<Vec<_>>(),
        )
        .into(),
        Series::new("malformed".into(), vec![None::<&str>; rows]).into(),
    ])
    .unwrap()
}

/// The `user_id` column, where [`events`] puts its tag.
fn user_ids(df: &DataFrame) -> Vec<u64> {
    df.column("user_id")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

async fn read(lake: &Lake, table: &TableSchema, range: DateRange) -> DataFrame {
    lake.scan(table, range)
        .await
        .unwrap()
        .sort(["dt", "row_id"], Default::default())
        .collect()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_frame_round_trips_unchanged_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    for lake in [
        Lake::open("memory://").unwrap(),
        Lake::open(dir.path().to_str().unwrap()).unwrap(),
    ] {
        let table = events_table();
        let d = date("2026-01-02");
        let frame = events(10, 1);
        let manifest = lake
            .write_partition(&table, d, frame.clone())
            .await
            .unwrap();
        assert_eq!(manifest.rows, 10);
        let back = read(&lake, &table, DateRange::day(d)).await;
        // The partition column comes back from the path; everything else as written.
        assert_eq!(back.column("dt").unwrap().dtype(), &DataType::Date);
        let back = back.drop("dt").unwrap();
        assert_eq!(back.schema(), frame.schema(), "dtypes survive");
        assert!(
            back.equals_missing(&frame),
            "values survive:\n{back}\n{frame}"
        );
    }
}

/// The codec of a part file's first column chunk, as Polars names it.
fn codec(path: &std::path::Path) -> String {
    let meta = ParquetReader::new(std::fs::File::open(path).unwrap())
        .get_metadata()
        .unwrap()
        .clone();
    format!(
        "{:?}",
        meta.row_groups[0].parquet_columns()[0].compression()
    )
    .to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_hive_style_parquet_zstd_or_lz4_when_small() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let small = lake
        .write_partition(&table, date("2026-01-03"), events(5, 1))
        .await
        .unwrap();
    let file = &small.files[0].path;
    assert!(
        file.starts_with("sim/events/dt=2026-01-03/part-00000-"),
        "{file}"
    );
    assert!(file.ends_with(".parquet"));
    // A small file is LZ4 (zstd's per-page context costs more than it saves there); a
    // large one zstd.
    let small_codec = codec(&dir.path().join(file));
    assert!(small_codec.contains("lz4"), "{small_codec}");
    let big = lake
        .write_partition(&table, date("2026-01-04"), events(20_000, 2))
        .await
        .unwrap();
    let big_codec = codec(&dir.path().join(&big.files[0].path));
    assert!(big_codec.contains("zstd"), "{big_codec}");
    assert!(
        dir.path()
            .join("sim/events/dt=2026-01-03/_manifest.json")
            .exists()
    );
    // Both read back as written.
    let back = read(&lake, &table, DateRange::day(date("2026-01-03"))).await;
    assert_eq!(back.height(), 5);
    let back = read(&lake, &table, DateRange::day(date("2026-01-04"))).await;
    assert_eq!(back.height(), 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_violations_name_table_partition_and_column() {
    let lake = Lake::open("memory://").unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    let cases: Vec<(DataFrame, &str)> = vec![
        (events(3, 1).drop("event").unwrap(), "event"),
        (
            {
                let mut f = events(3, 1);
                f.with_column(Series::new("device_id".into(), vec!["a", "b", "c"]).into())
                    .unwrap();
                f
            },
            "device_id",
        ),
        (
            {
                let mut f = events(3, 1);
                f.with_column(Series::new("row_id".into(), vec![Some(1u64), None, Some(3)]).into())
                    .unwrap();
                f
            },
            "row_id",
        ),
    ];
    for (frame, column) in cases {
        let err = lake.write_partition(&table, d, frame).await.unwrap_err();
        let msg = format!("{err}");
        assert!(matches!(err, LakeError::Schema { .. }), "{msg}");
        assert!(msg.contains("sim.events"), "{msg}");
        assert!(msg.contains("2026-01-02"), "{msg}");
        assert!(msg.contains(column), "{msg}");
    }
    assert!(
        lake.partitions(&table).await.unwrap().is_empty(),
        "nothing landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_another_partitions_dates_is_refused() {
    let lake = Lake::open("memory://").unwrap();
    let table = events_table();
    let mut frame = events(2, 1);
    frame
        .with_column(Series::new("dt".into(), vec![date("2026-01-02"), date("2026-01-05")]).into())
        .unwrap();
    let err = lake
        .write_partition(&table, date("2026-01-02"), frame)
        .await
        .unwrap_err();
    assert!(matches!(err, LakeError::PartitionMismatch { .. }), "{err}");
    assert!(err.to_string().contains("2026-01-05"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_replaces_a_partition_whole() {
    let lake = Lake::open("memory://").unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    lake.write_partition(&table, d, events(10, 1))
        .await
        .unwrap();
    lake.write_partition(&table, d, events(4, 2)).await.unwrap();
    let back = read(&lake, &table, DateRange::day(d)).await;
    assert_eq!(back.height(), 4);
    assert_eq!(
        back.column("user_id").unwrap().u64().unwrap().max(),
        Some(2)
    );
    assert_eq!(lake.row_count(&table, DateRange::all()).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_with_the_same_bytes_keeps_the_partitions_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    let first = lake
        .write_partition(&table, d, events(10, 1))
        .await
        .unwrap();
    let part_dir = dir
        .path()
        .join(first.files[0].path.rsplit_once('/').unwrap().0);
    let parquet_files = || {
        std::fs::read_dir(&part_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .and_then(|x| x.to_str())
                    == Some("parquet")
            })
            .count()
    };
    assert_eq!(first.files[0].sha256.as_ref().map(String::len), Some(64));
    let again = lake
        .write_partition(&table, d, events(10, 1))
        .await
        .unwrap();
    assert_eq!(
        again, first,
        "same bytes: the same manifest, nothing written"
    );
    assert_eq!(parquet_files(), 1);

    let changed = lake
        .write_partition(&table, d, events(10, 2))
        .await
        .unwrap();
    assert_ne!(changed.version, first.version);
    assert_eq!(parquet_files(), 2);
    assert_eq!(
        read(&lake, &table, DateRange::day(d))
            .await
            .column("user_id")
            .unwrap()
            .u64()
            .unwrap()
            .min(),
        Some(2)
    );

    // A manifest from before digests were recorded cannot vouch for its file: rewritten.
    let manifest_path = part_dir.join("_manifest.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    doc["files"][0].as_object_mut().unwrap().remove("sha256");
    std::fs::write(&manifest_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let rewritten = lake
        .write_partition(&table, d, events(10, 2))
        .await
        .unwrap();
    assert_ne!(rewritten.version, changed.version);

    // An empty partition rewritten empty keeps its version too.
    let e = date("2026-01-03");
    let empty = lake.write_partition(&table, e, events(0, 0)).await.unwrap();
    let empty_again = lake.write_partition(&table, e, events(0, 0)).await.unwrap();
    assert_eq!(empty_again.version, empty.version);
    let filled = lake.write_partition(&table, e, events(3, 0)).await.unwrap();
    assert_ne!(filled.version, empty.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_several_parts_rewritten_the_same_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    let write = |tags: [u64; 2]| {
        let lake = lake.clone();
        let table = table.clone();
        async move {
            let mut w = lake.partition_writer(&table, d);
            for tag in tags {
                w.write(events(5, tag)).await.unwrap();
            }
            w.commit_or_keep().await.unwrap()
        }
    };
    let files_on_disk = || {
        walk(dir.path())
            .into_iter()
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("parquet"))
            .count()
    };
    let first = write([1, 2]).await;
    assert!(!first.unchanged);
    assert_eq!(first.manifest.files.len(), 2);
    let again = write([1, 2]).await;
    assert!(again.unchanged);
    assert_eq!(again.manifest, first.manifest);
    assert_eq!(files_on_disk(), 2, "the rewrite's own files are deleted");
    // The same rows split differently, or one part changed: a new version.
    let reordered = write([2, 1]).await;
    assert!(!reordered.unchanged);
    assert_ne!(reordered.manifest.version, first.manifest.version);
    assert_eq!(
        user_ids(&read(&lake, &table, DateRange::day(d)).await).len(),
        10
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_at_its_last_file_leaves_the_old_partition_whole() {
    let store = Arc::new(common::FailingStore::default());
    let cache = tempfile::tempdir().unwrap();
    let lake = Lake::from_store(store.clone(), "failing://", cache.path().to_path_buf());
    let table = events_table();
    let d = date("2026-01-02");
    // Version 1: two part files.
    let mut w = lake.partition_writer(&table, d);
    w.write(events(6, 1)).await.unwrap();
    w.write(events(6, 1)).await.unwrap();
    w.commit().await.unwrap();
    // Version 2 dies writing its second (last) part file.
    store.arm("part-00001");
    let mut w = lake.partition_writer(&table, d);
    w.write(events(3, 2)).await.unwrap();
    let err = w.write(events(3, 2)).await.unwrap_err();
    assert!(err.to_string().contains("part-00001"), "{err}");
    drop(w);
    store.disarm();
    let back = read(&lake, &table, DateRange::day(d)).await;
    assert_eq!(back.height(), 12, "old version whole");
    assert!(
        back.column("user_id")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .all(|v| v == 1)
    );

    // Version 3 dies at the manifest put, after all its files landed: still version 1.
    store.arm("_manifest.json");
    let mut w = lake.partition_writer(&table, d);
    w.write(events(5, 3)).await.unwrap();
    assert!(w.commit().await.is_err());
    store.disarm();
    let back = read(&lake, &table, DateRange::day(d)).await;
    assert_eq!(back.height(), 12);

    // The next run completes the job.
    lake.write_partition(&table, d, events(5, 3)).await.unwrap();
    assert_eq!(read(&lake, &table, DateRange::day(d)).await.height(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_never_see_a_mix_of_versions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    lake.write_partition(&table, d, events(50, 0))
        .await
        .unwrap();
    let writer = {
        let (lake, table) = (lake.clone(), table.clone());
        tokio::spawn(async move {
            for version in 1..=25u64 {
                let mut w = lake.partition_writer(&table, d);
                // Each version is two files of 25 rows, all tagged with the version.
                w.write(events(25, version)).await.unwrap();
                w.write(events(25, version)).await.unwrap();
                w.commit().await.unwrap();
            }
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    // Read at least once, then for as long as the writer writes.
    let mut reading = true;
    while reading {
        reading = !writer.is_finished();
        let frame = lake
            .scan(&table, DateRange::day(d))
            .await
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(frame.height(), 50, "a reader saw a partial partition");
        let tags = frame.column("user_id").unwrap().u64().unwrap();
        let (min, max) = (tags.min().unwrap(), tags.max().unwrap());
        assert_eq!(min, max, "a reader saw two versions at once");
        seen.insert(min);
    }
    writer.await.unwrap();
    assert!(!seen.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_prune_partitions_outside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    for (i, day) in ["2026-01-01", "2026-01-02", "2026-01-03"]
        .into_iter()
        .enumerate()
    {
        lake.write_partition(&table, date(day), events(3, i as u64))
            .await
            .unwrap();
    }
    // Corrupt the last partition's file: only a scan that opens it can fail.
    let m = lake
        .manifest(&table, date("2026-01-03"))
        .await
        .unwrap()
        .unwrap();
    std::fs::write(dir.path().join(&m.files[0].path), b"not parquet").unwrap();
    let two = read(
        &lake,
        &table,
        DateRange::new(date("2026-01-01"), date("2026-01-02")),
    )
    .await;
    assert_eq!(two.height(), 6);
    let dts = two.column("dt").unwrap().unique().unwrap();
    assert_eq!(dts.len(), 2);
    let bad = lake
        .scan(&table, DateRange::day(date("2026-01-03")))
        .await
        .unwrap()
        .collect();
    assert!(bad.is_err());
    // A filter on `dt` over the whole table skips the other days' files unopened too.
    let first_two = lake
        .scan(&table, DateRange::all())
        .await
        .unwrap()
        .filter(col("dt").lt(lit(day_number("2026-01-03")).cast(DataType::Date)))
        .collect()
        .unwrap();
    assert_eq!(first_two.height(), 6);
    // A range with no data is an empty frame of the table's schema.
    let none = read(&lake, &table, DateRange::day(date("2027-01-01"))).await;
    assert_eq!(none.height(), 0);
    assert_eq!(none.schema().as_ref(), &table.polars_schema());
}

/// The partition date comes back from each file's `dt=` folder in one scan of the table, and
/// from the manifest where the lake's own root holds an `=` (which Polars would otherwise read
/// as a Hive column of its own); rows come in partition order either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_gets_its_partitions_date_in_partition_order_whatever_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("lake");
    let with_equals = dir.path().join("run=3").join("lake");
    let table = events_table();
    let days = ["2026-01-01", "2026-01-02", "2026-01-05"];
    for lake in [
        Lake::open(plain.to_str().unwrap()).unwrap(),
        Lake::open(with_equals.to_str().unwrap()).unwrap(),
        Lake::open("memory://").unwrap(),
    ] {
        for (i, day) in days.into_iter().enumerate() {
            lake.write_partition(&table, date(day), events(2 + i, i as u64))
                .await
                .unwrap();
        }
        let all = lake
            .scan(&table, DateRange::all())
            .await
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(all.schema().as_ref(), &table.polars_schema());
        let dts: Vec<i32> = all
            .column("dt")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let tags = user_ids(&all);
        let expected_dts: Vec<i32> = days
            .iter()
            .enumerate()
            .flat_map(|(i, d)| std::iter::repeat_n(day_number(d), 2 + i))
            .collect();
        let expected_tags: Vec<u64> = (0..days.len() as u64)
            .flat_map(|i| std::iter::repeat_n(i, 2 + i as usize))
            .collect();
        assert_eq!(dts, expected_dts);
        assert_eq!(tags, expected_tags);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_partition_is_committed_and_reads_as_no_rows() {
    let lake = Lake::open("memory://").unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    lake.write_partition(&table, d, events(0, 0)).await.unwrap();
    assert_eq!(lake.partitions(&table).await.unwrap(), vec![d]);
    assert_eq!(read(&lake, &table, DateRange::day(d)).await.height(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_documents_round_trip() {
    let lake = Lake::open("memory://").unwrap();
    let none: Option<serde_json::Value> = lake.read_state("ingest/mixpanel").await.unwrap();
    assert!(none.is_none());
    let doc = serde_json::json!({"last_complete": "2026-01-02", "calls": 3});
    lake.write_state("ingest/mixpanel", &doc).await.unwrap();
    let back: serde_json::Value = lake.read_state("ingest/mixpanel").await.unwrap().unwrap();
    assert_eq!(back, doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_removes_only_files_no_manifest_names() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let d = date("2026-01-02");
    let old = lake.write_partition(&table, d, events(4, 1)).await.unwrap();
    let new = lake.write_partition(&table, d, events(4, 2)).await.unwrap();
    // An uncommitted writer's file is an orphan too.
    let mut w = lake.partition_writer(&table, date("2026-01-09"));
    w.write(events(2, 9)).await.unwrap();
    drop(w);
    let young = lake.sweep(chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(young.files_removed, 0);
    assert_eq!(young.files_kept_young, 2);
    let report = lake.sweep(chrono::Duration::zero()).await.unwrap();
    assert_eq!(report.files_removed, 2);
    assert!(!dir.path().join(&old.files[0].path).exists());
    assert!(dir.path().join(&new.files[0].path).exists());
    assert_eq!(read(&lake, &table, DateRange::day(d)).await.height(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lake_urls_are_refused_with_the_url() {
    let err = Lake::open("ftp://somewhere/x").unwrap_err();
    assert!(err.to_string().contains("ftp://somewhere/x"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listing_finds_the_committed_partitions_and_stamps_each_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let (d1, d2) = (date("2026-01-02"), date("2026-01-03"));
    lake.write_partition(&table, d1, events(3, 1))
        .await
        .unwrap();
    lake.write_partition(&table, d2, events(4, 2))
        .await
        .unwrap();
    // What the listing must pass over: a partition folder without a manifest (a write that
    // never committed), a stray file beside the partitions, and a table whose name starts
    // with this one's.
    let root = dir.path().join("sim");
    std::fs::create_dir_all(root.join("events/dt=2026-01-05")).unwrap();
    std::fs::write(root.join("events/dt=2026-01-05/part-0.parquet"), b"x").unwrap();
    std::fs::write(root.join("events/notes.txt"), b"x").unwrap();
    std::fs::create_dir_all(root.join("events_old/dt=2026-01-09")).unwrap();
    std::fs::write(root.join("events_old/dt=2026-01-09/_manifest.json"), b"{}").unwrap();
    assert_eq!(lake.partitions(&table).await.unwrap(), vec![d1, d2]);

    let before = lake.manifest_stamps(&table).await.unwrap();
    assert_eq!(
        before.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        vec![d1, d2]
    );
    assert_eq!(lake.manifest_stamps(&table).await.unwrap(), before);
    lake.write_partition(&table, d1, events(5, 3))
        .await
        .unwrap();
    let after = lake.manifest_stamps(&table).await.unwrap();
    assert_ne!(
        after[0].1, before[0].1,
        "a new version of d1 changes its stamp"
    );
    assert_eq!(after[1], before[1], "d2 was not touched");
}

/// A short range reads its days' manifests by name, a long one lists the table first: both
/// find the same committed partitions, skip the days without one, and never see a
/// partition whose write did not commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_and_long_ranges_find_the_same_committed_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    let (d1, d3, d4) = (date("2026-01-01"), date("2026-01-03"), date("2026-01-04"));
    for (day, rows, tag) in [(d1, 3, 1), (d3, 4, 3)] {
        lake.write_partition(&table, day, events(rows, tag))
            .await
            .unwrap();
    }
    // A writer that never committed leaves a file in d4's folder but no manifest.
    let mut w = lake.partition_writer(&table, d4);
    w.write(events(2, 4)).await.unwrap();
    drop(w);
    let tags = |df: &DataFrame| {
        let mut tags = user_ids(df);
        tags.dedup();
        tags
    };
    let week = read(&lake, &table, DateRange::new(d1, date("2026-01-07"))).await;
    let year = read(&lake, &table, DateRange::new(d1, date("2026-12-31"))).await;
    assert_eq!(tags(&week), [1, 3]);
    assert!(week.equals_missing(&year), "{week}\n{year}");
    // A one-day range on a day without a partition, and a reversed range, hold nothing.
    assert_eq!(
        read(&lake, &table, DateRange::day(date("2026-01-02")))
            .await
            .height(),
        0
    );
    assert_eq!(
        read(&lake, &table, DateRange::new(d3, d1)).await.height(),
        0
    );
}

/// A partition written in a layout older than the table's `oldest_readable_version` (a world
/// simulated before `sim.events` had its `malformed` column) stops the scan, naming the
/// table, partition and versions, before any file is opened; a scan of the other days reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_older_than_the_table_reads_stops_the_scan_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let table = events_table();
    assert_eq!(
        table.oldest_readable_version, 2,
        "sim.events reads layout 2 on"
    );
    for (i, day) in ["2026-01-01", "2026-01-02"].into_iter().enumerate() {
        lake.write_partition(&table, date(day), events(3, i as u64))
            .await
            .unwrap();
    }
    let old_day = date("2026-01-02");
    let manifest = lake.manifest(&table, old_day).await.unwrap().unwrap();
    let old = ltv::lake::Manifest {
        schema_version: 1,
        ..manifest
    };
    std::fs::write(
        dir.path().join("sim/events/dt=2026-01-02/_manifest.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    let error = lake
        .scan(&table, DateRange::all())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            &error,
            LakeError::OldLayout { partition, found: 1, oldest: 2, .. } if *partition == old_day
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("sim.events")
            && message.contains("dt=2026-01-02")
            && message.contains("simulate the world again"),
        "{message}"
    );
    let first = read(&lake, &table, DateRange::day(date("2026-01-01"))).await;
    assert_eq!(first.height(), 3);
}
