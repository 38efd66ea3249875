//! Marts in MySQL against a real server (MariaDB on 127.0.0.1:3306 on these machines):
//! round trips equal to the written frame, per-day idempotence, rollback when a write dies
//! half-way (connection killed, server error in a late batch), hostile strings and emoji
//! verbatim, and errors that name table, row and column.
//!
//! The server comes from `LTV_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).
//! Unreachable, the tests skip with a note, except under `CI=true`, where they fail: CI
//! (`.ci/run`) starts the server, so an unreachable one is a broken CI, not a reason to pass.
//! Every test works on its own tables, named after the process and the test, and drops them
//! when it ends (even by a panic), so tests and concurrent runs do not meet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::ci;
use ltv::config::Secret;
use ltv::lake::DateRange;
use ltv::mart::{HeldPartition, MartError, MysqlMart, PartitionVersion};
use ltv::schema::{Registry, TableSchema};
use mysql_async::prelude::Queryable;
use polars::prelude::*;

fn url() -> String {
    common::mysql::server_url()
}

/// A mart connection, or `None` (test skipped) when no server is reachable outside CI.
async fn mart() -> Option<MysqlMart> {
    match MysqlMart::connect(&Secret::new(url())).await {
        Ok(m) => Some(m),
        Err(e) if ci() => panic!("CI=true and the test MySQL server is unreachable: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no MySQL server ({e}); start MariaDB or set LTV_TEST_MYSQL_URL");
            None
        }
    }
}

macro_rules! mart_or_skip {
    () => {
        match mart().await {
            Some(m) => m,
            None => return,
        }
    };
}

async fn admin() -> mysql_async::Conn {
    mysql_async::Conn::from_url(url()).await.unwrap()
}

/// Drops the test's tables when the test ends, passed or panicked.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut statements = Vec::new();
        for t in std::mem::take(&mut self.0) {
            // ensure_table also made the BI view v_<name> over mart_<name>.
            if let Some(name) = t.strip_prefix("mart_") {
                statements.push(format!("DROP VIEW IF EXISTS `v_{name}`"));
            }
            statements.push(format!("DROP TABLE IF EXISTS `{t}`"));
            statements.push(format!(
                "DELETE FROM `ltv_published_partitions` WHERE `mart` = '{t}'"
            ));
        }
        common::mysql::run_in_drop(url(), statements);
    }
}

/// `mart.<base>` renamed to this process and test, so its MySQL table is ours alone.
fn own(base: &TableSchema, test: &str) -> TableSchema {
    let mut t = base.clone();
    t.name = format!("t{}_{test}_{}", std::process::id(), base.name);
    assert!(t.mysql_table_name().len() <= 64, "{}", t.mysql_table_name());
    t
}

fn campaign_daily(test: &str) -> TableSchema {
    own(
        Registry::embedded()
            .unwrap()
            .get("mart.campaign_daily")
            .unwrap(),
        test,
    )
}

/// A schema from TOML text whose table name is `{name}`.
fn from_toml(text: &str, test: &str) -> TableSchema {
    let text = text.replace("{name}", "custom");
    let reg = Registry::from_sources(&[("mart/custom.toml", text.as_str())]).unwrap();
    own(reg.get("mart.custom").unwrap(), test)
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

const HOSTILE: &str = "'); DROP TABLE x; --";

/// `per_day` campaigns on each day; `version` changes every money value, so two versions of a
/// day differ everywhere. Nulls, emoji, quotes and backslashes are spread over the rows.
fn campaign_frame(days: &[NaiveDate], per_day: usize, version: i64) -> DataFrame {
    let n = days.len() * per_day;
    let mut dt = Vec::with_capacity(n);
    let mut channel = Vec::with_capacity(n);
    let mut campaign_id = Vec::with_capacity(n);
    let mut name = Vec::with_capacity(n);
    let mut spend = Vec::with_capacity(n);
    let mut installs = Vec::with_capacity(n);
    let mut cpi = Vec::with_capacity(n);
    let mut revenue = Vec::with_capacity(n);
    let mut r1 = Vec::with_capacity(n);
    let mut r7 = Vec::with_capacity(n);
    let (mut p30, mut p90, mut p180) = (Vec::new(), Vec::new(), Vec::new());
    let (mut o30, mut o90, mut o180) = (Vec::new(), Vec::new(), Vec::new());
    let mut extrapolated = Vec::with_capacity(n);
    let channels = [
        "facebook",
        "google_ads",
        "naver",
        "apple_search_ads",
        "adison",
    ];
    for (di, day) in days.iter().enumerate() {
        for i in 0..per_day {
            dt.push(days_since_epoch(*day));
            channel.push(channels[i % channels.len()]);
            campaign_id.push(format!("c{i:06}"));
            name.push(match i % 7 {
                0 => HOSTILE.to_owned(),
                1 => "여름 세일 🚀🔥 v".to_owned() + &version.to_string(),
                2 => "back\\slash \"quoted\" 100%_off\ttab".to_owned(),
                _ => format!("Campaign {i} v{version}"),
            });
            let inst = ((i * 37 + di * 11) % 50) as i64;
            let sp = inst * 1_234_567 + version * 1_000 + i as i64;
            spend.push(sp);
            installs.push(inst);
            cpi.push((inst > 0).then(|| sp / inst.max(1)));
            let rev = (i as i64 * 999_999 + version) % 10_000_000_000;
            revenue.push(rev);
            r1.push((i % 4 != 0).then(|| i as f64 / (per_day as f64 + 1.0)));
            r7.push((i % 3 != 0).then(|| 0.1 + 1.0 / (i as f64 + 3.0)));
            let pl = |k: i64| (i % 5 != 0).then_some(rev * k + 7);
            p30.push(pl(2));
            p90.push(pl(3));
            p180.push(pl(4));
            let roas = |p: Option<i64>| p.filter(|_| sp > 0).map(|p| p as f64 / sp as f64);
            o30.push(roas(pl(2)));
            o90.push(roas(pl(3)));
            o180.push(roas(pl(4)));
            extrapolated.push(i % 2 == 0);
        }
    }
    DataFrame::new(
        n,
        vec![
            Column::new("dt".into(), dt).cast(&DataType::Date).unwrap(),
            Column::new("channel".into(), channel),
            Column::new("campaign_id".into(), campaign_id),
            Column::new("campaign_name".into(), name),
            Column::new("currency".into(), vec!["USD"; n]),
            Column::new("spend_micros".into(), spend),
            Column::new("installs".into(), installs.clone()),
            Column::new(
                "fraud_installs".into(),
                installs.iter().map(|i| i / 10).collect::<Vec<i64>>(),
            ),
            Column::new("cpi_micros".into(), cpi),
            Column::new("revenue_to_date_micros".into(), revenue),
            Column::new("retention_d1".into(), r1),
            Column::new("retention_d7".into(), r7),
            Column::new("predicted_users".into(), installs),
            Column::new("pltv_d30_micros".into(), p30),
            Column::new("pltv_d90_micros".into(), p90),
            Column::new("pltv_d180_micros".into(), p180),
            Column::new("roas_d30".into(), o30),
            Column::new("roas_d90".into(), o90),
            Column::new("roas_d180".into(), o180),
            Column::new("extrapolated".into(), extrapolated),
        ],
    )
    .unwrap()
}

fn sorted(schema: &TableSchema, df: &DataFrame) -> DataFrame {
    df.sort(schema.primary_key.clone(), SortMultipleOptions::default())
        .unwrap()
}

fn assert_frames_equal(got: &DataFrame, expected: &DataFrame) {
    assert_eq!(got.schema(), expected.schema());
    assert_eq!(got.height(), expected.height());
    assert!(
        got.equals_missing(expected),
        "frames differ:\n{got}\n{expected}"
    );
}

fn day_filter(df: &DataFrame, day: NaiveDate) -> DataFrame {
    df.clone()
        .lazy()
        .filter(col("dt").eq(lit(day)))
        .collect()
        .unwrap()
}

async fn count(conn: &mut mysql_async::Conn, table: &str, day: Option<NaiveDate>) -> u64 {
    let q = match day {
        Some(d) => format!("SELECT COUNT(*) FROM `{table}` WHERE dt = '{d}'"),
        None => format!("SELECT COUNT(*) FROM `{table}`"),
    };
    conn.query_first(q).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_mart_reads_back_equal() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("roundtrip");
    let _cleanup = Cleanup(vec![schema.mysql_table_name()]);
    m.ensure_table(&schema).await.unwrap();
    // Twice: IF NOT EXISTS, and the column check passes on the table it made.
    m.ensure_table(&schema).await.unwrap();

    let days = [d("2026-01-01"), d("2026-01-02"), d("2026-01-03")];
    let df = campaign_frame(&days, 60, 1);
    assert!(df.column("cpi_micros").unwrap().null_count() > 0);
    let summary = m
        .with_rows_per_insert(37)
        .replace_partitions(&schema, &days, &df)
        .await;
    let summary = summary.unwrap();
    assert_eq!(summary.rows_inserted, 180);
    assert_eq!(summary.rows_deleted, 0);
    assert_eq!(summary.statements, 5); // ceil(180 / 37)
    assert_eq!(summary.partitions, 3);

    let mut m = mart().await.unwrap();
    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &df));

    // A range reads only its days.
    let one = m
        .read_table(&schema, DateRange::day(d("2026-01-02")))
        .await
        .unwrap();
    assert_frames_equal(&one, &sorted(&schema, &day_filter(&df, d("2026-01-02"))));
    let none = m
        .read_table(&schema, DateRange::new(d("2025-01-01"), d("2025-12-31")))
        .await
        .unwrap();
    assert_eq!(none.height(), 0);
    assert_eq!(none.schema(), df.schema());
    m.close().await.unwrap();
}

const EVERY_TYPE: &str = r#"
name = "{name}"
layer = "mart"
description = "One column of every type the schemas admit."
partition = "dt"
primary_key = ["dt", "code"]

[[columns]]
name = "dt"
type = "date"
description = "Day."

[[columns]]
name = "code"
type = "string"
max_length = 16
description = "Key; case matters."

[[columns]]
name = "notes"
type = "string"
nullable = true
max_length = 4000
description = "Long text (TEXT)."

[[columns]]
name = "i8"
type = "int8"
description = "x"

[[columns]]
name = "i16"
type = "int16"
nullable = true
description = "x"

[[columns]]
name = "i32"
type = "int32"
description = "x"

[[columns]]
name = "u8"
type = "uint8"
description = "x"

[[columns]]
name = "u16"
type = "uint16"
description = "x"

[[columns]]
name = "u64"
type = "uint64"
description = "x"

[[columns]]
name = "f32"
type = "float32"
nullable = true
description = "x"

[[columns]]
name = "at"
type = "datetime[ms, UTC]"
description = "x"

[[columns]]
name = "seoul_at"
type = "datetime[us, Asia/Seoul]"
nullable = true
description = "x"

[[columns]]
name = "naive_at"
type = "datetime[us]"
description = "x"

[[columns]]
name = "wait"
type = "duration[us]"
description = "x"

[[columns]]
name = "when"
type = "date"
nullable = true
description = "A date that is not the partition."

[[columns]]
name = "ok"
type = "bool"
nullable = true
description = "x"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_round_trips() {
    let mut m = mart_or_skip!();
    let schema = from_toml(EVERY_TYPE, "types");
    let _cleanup = Cleanup(vec![schema.mysql_table_name()]);
    m.ensure_table(&schema).await.unwrap();
    let utc_ms = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    let seoul = DataType::Datetime(
        TimeUnit::Microseconds,
        TimeZone::opt_try_new(Some("Asia/Seoul")).unwrap(),
    );
    let naive = DataType::Datetime(TimeUnit::Microseconds, None);
    let day = d("2026-02-01");
    let long = "긴 글 ".repeat(700); // 2,800 characters, 5,600 bytes: TEXT
    let df = DataFrame::new(
        4,
        vec![
            Column::new("dt".into(), vec![days_since_epoch(day); 4])
                .cast(&DataType::Date)
                .unwrap(),
            // Differ only by case: two keys under utf8mb4_bin.
            Column::new("code".into(), ["Summer", "summer", "SUMMER", "é"]),
            Column::new(
                "notes".into(),
                [Some(long.as_str()), None, Some(""), Some("  trailing  ")],
            ),
            Column::new("i8".into(), [i8::MIN, -1, 0, i8::MAX]),
            Column::new(
                "i16".into(),
                [Some(i16::MIN), None, Some(0), Some(i16::MAX)],
            ),
            Column::new("i32".into(), [i32::MIN, -1, 0, i32::MAX]),
            Column::new("u8".into(), [0u8, 1, 2, u8::MAX]),
            Column::new("u16".into(), [0u16, 1, 2, u16::MAX]),
            Column::new("u64".into(), [0u64, 1, u64::from(u32::MAX) + 1, u64::MAX]),
            Column::new(
                "f32".into(),
                [Some(1.5f32), None, Some(-0.1), Some(f32::MAX)],
            ),
            Column::new(
                "at".into(),
                [0i64, -1, 1_700_000_000_123, 253_402_300_799_999],
            )
            .cast(&utc_ms)
            .unwrap(),
            Column::new(
                "seoul_at".into(),
                [
                    Some(1_700_000_000_123_456i64),
                    None,
                    Some(0),
                    Some(-86_400_000_000),
                ],
            )
            .cast(&seoul)
            .unwrap(),
            Column::new("naive_at".into(), [1i64, 2, 3, 1_700_000_000_000_001])
                .cast(&naive)
                .unwrap(),
            Column::new("wait".into(), [0i64, -5, 86_400_000_000, i64::MAX])
                .cast(&DataType::Duration(TimeUnit::Microseconds))
                .unwrap(),
            Column::new(
                "when".into(),
                [Some(-354_285i32), None, Some(0), Some(2_932_896)],
            )
            .cast(&DataType::Date)
            .unwrap(),
            Column::new("ok".into(), [Some(true), Some(false), None, Some(true)]),
        ],
    )
    .unwrap();
    // The lake stores a partition without its date column: accepted for a single day.
    let lake_shaped = df.drop("dt").unwrap();
    m.replace_partitions(&schema, &[day], &lake_shaped)
        .await
        .unwrap();
    let back = m.read_table(&schema, DateRange::day(day)).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &df));
    m.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_a_day_replaces_it_and_leaves_other_days() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("rewrite");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    m.ensure_table(&schema).await.unwrap();
    let days = [d("2026-03-01"), d("2026-03-02"), d("2026-03-03")];
    let v1 = campaign_frame(&days, 40, 1);
    m.replace_partitions(&schema, &days, &v1).await.unwrap();

    // Day 2 again, with fewer campaigns and other values.
    let v2_day = campaign_frame(&[days[1]], 25, 2);
    let s = m
        .replace_partitions(&schema, &[days[1]], &v2_day)
        .await
        .unwrap();
    assert_eq!((s.rows_deleted, s.rows_inserted), (40, 25));
    // And once more, identically: a rerun changes nothing.
    let s = m
        .replace_partitions(&schema, &[days[1]], &v2_day)
        .await
        .unwrap();
    assert_eq!((s.rows_deleted, s.rows_inserted), (25, 25));

    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    let expected = concat_frames(&[
        day_filter(&v1, days[0]),
        v2_day.clone(),
        day_filter(&v1, days[2]),
    ]);
    assert_frames_equal(&back, &sorted(&schema, &expected));

    // No duplicate keys, per the table itself.
    let mut a = admin().await;
    let dups: Option<u64> = a
        .query_first(format!(
            "SELECT COUNT(*) FROM (SELECT dt, channel, campaign_id FROM `{table}` \
             GROUP BY dt, channel, campaign_id HAVING COUNT(*) > 1) d"
        ))
        .await
        .unwrap();
    assert_eq!(dups, Some(0));
    assert_eq!(count(&mut a, &table, None).await, 40 + 25 + 40);

    // A day listed with no rows ends up empty; a row outside the listed days is refused.
    let empty = campaign_frame(&[], 0, 3);
    m.replace_partitions(&schema, &[days[2]], &empty)
        .await
        .unwrap();
    assert_eq!(count(&mut a, &table, Some(days[2])).await, 0);
    let e = m
        .replace_partitions(&schema, &[days[0]], &v2_day)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("not among the partitions being replaced"),
        "{e}"
    );
    assert_eq!(count(&mut a, &table, Some(days[0])).await, 40);
    a.disconnect().await.unwrap();
    m.close().await.unwrap();
}

fn concat_frames(frames: &[DataFrame]) -> DataFrame {
    let mut out = frames[0].clone();
    for f in &frames[1..] {
        out.vstack_mut(f).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_mid_write_leaves_previous_rows() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("kill");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    m.ensure_table(&schema).await.unwrap();
    let days = [d("2026-04-01"), d("2026-04-02")];
    let v1 = campaign_frame(&days, 100, 1);
    m.replace_partitions(&schema, &days, &v1).await.unwrap();

    // A big rewrite of day 1 in small batches, killed from another connection once part of
    // it is in the table (visible to a READ UNCOMMITTED reader only).
    let big = campaign_frame(&days[..1], 300_000, 2);
    let id = m.connection_id();
    let writer = {
        let schema = schema.clone();
        let day = days[0];
        tokio::spawn(async move {
            let mut m = m.with_rows_per_insert(200);
            m.replace_partitions(&schema, &[day], &big).await
        })
    };
    let mut a = admin().await;
    a.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        .await
        .unwrap();
    let started = Instant::now();
    let mut seen = 0;
    while seen < 5_000 {
        assert!(
            !writer.is_finished(),
            "the write ended before it could be killed (saw {seen} rows)"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = count(&mut a, &table, Some(days[0])).await;
    }
    a.query_drop(format!("KILL {id}")).await.unwrap();
    let result = writer.await.unwrap();
    let e = result.expect_err("a killed write must fail");
    println!("killed after seeing {seen} uncommitted rows: {e}");
    assert!(matches!(e, MartError::Write { .. }), "{e:?}");
    assert!(e.to_string().contains(&table), "{e}");
    assert!(e.to_string().contains("rolled back"), "{e}");

    // A fresh session sees exactly the rows from before the write.
    a.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    let mut m = mart().await.unwrap();
    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &v1));
    a.disconnect().await.unwrap();
    m.close().await.unwrap();
}

/// `rows` rows of `day` whose row 4,950 (when there is one) repeats row 10's key: the
/// server refuses the batch holding it, after the earlier batches went in.
fn frame_failing_late(day: NaiveDate, rows: usize) -> DataFrame {
    let mut df = campaign_frame(&[day], rows, 2);
    for (name, repeat) in [("campaign_id", "c000010"), ("channel", "facebook")] {
        let values: Vec<String> = df
            .column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 4_950 {
                    repeat.to_owned()
                } else {
                    s.unwrap().to_owned()
                }
            })
            .collect();
        df.replace(name, Column::new(name.into(), values)).unwrap();
    }
    df
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_versions_commit_with_the_rows_and_counts_show_hand_edits() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("pub");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    m.ensure_table(&schema).await.unwrap();
    m.ensure_published_table().await.unwrap();
    assert!(m.held_partitions(&schema).await.unwrap().is_empty());
    let (d1, d2, d3) = (d("2026-06-01"), d("2026-06-02"), d("2026-06-03"));
    let version = |dt: NaiveDate, v: &str, rows: u64| PartitionVersion {
        dt,
        version: v.into(),
        rows,
    };
    let held = |v: Option<&str>, rows: u64| HeldPartition {
        version: v.map(str::to_owned),
        rows,
    };
    let v1 = campaign_frame(&[d1, d2], 50, 1);
    let summary = m
        .publish_partitions(&schema, &[version(d1, "a", 50), version(d2, "a", 50)], &v1)
        .await
        .unwrap();
    assert_eq!(summary.rows_inserted, 100);
    let first = m.held_partitions(&schema).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[&d1], held(Some("a"), 50));
    assert_eq!(first[&d2], held(Some("a"), 50));

    // A publish that fails half-way leaves the rows and their records as they were.
    let mut m = m.with_rows_per_insert(100);
    let e = m
        .publish_partitions(
            &schema,
            &[version(d1, "b", 5_000)],
            &frame_failing_late(d1, 5_000),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Duplicate entry"), "{e}");
    assert_eq!(m.held_partitions(&schema).await.unwrap(), first);
    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &v1));

    // A new version of one day replaces that day's record only.
    let v2 = campaign_frame(&[d1], 30, 2);
    m.publish_partitions(&schema, &[version(d1, "b", 30)], &v2)
        .await
        .unwrap();
    let second = m.held_partitions(&schema).await.unwrap();
    assert_eq!(second[&d1], held(Some("b"), 30));
    assert_eq!(second[&d2], held(Some("a"), 50));

    // Rows deleted by hand show in the count; rows written without a record have none.
    let mut a = admin().await;
    a.query_drop(format!(
        "DELETE FROM `{table}` WHERE `dt` = '2026-06-02' LIMIT 1"
    ))
    .await
    .unwrap();
    a.disconnect().await.unwrap();
    m.replace_partitions(&schema, &[d3], &campaign_frame(&[d3], 7, 1))
        .await
        .unwrap();
    let third = m.held_partitions(&schema).await.unwrap();
    assert_eq!(third[&d2], held(Some("a"), 49));
    assert_eq!(third[&d3], held(None, 7));
    m.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_in_a_late_batch_rolls_back() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("late");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    m.ensure_table(&schema).await.unwrap();
    let day = d("2026-05-01");
    let v1 = campaign_frame(&[day], 50, 1);
    m.replace_partitions(&schema, &[day], &v1).await.unwrap();

    // 5,000 rows in batches of 100; row 4,950 repeats row 10's key, so batch 50 fails after
    // 49 batches went in.
    let v2 = frame_failing_late(day, 5_000);
    let mut m = m.with_rows_per_insert(100);
    let e = m
        .replace_partitions(&schema, &[day], &v2)
        .await
        .unwrap_err();
    println!("{e}");
    match &e {
        MartError::Write { action, at, .. } => {
            assert_eq!(*action, "insert");
            assert_eq!(at.rows, Some((4_900, 4_999)));
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    assert!(e.to_string().contains(&table), "{e}");
    assert!(e.to_string().contains("Duplicate entry"), "{e}");

    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &v1));
    m.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_emoji_are_stored_verbatim() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("hostile");
    let table = schema.mysql_table_name();
    // The table the hostile name would drop, were it ever spliced into SQL.
    let victim = format!("t{}_hostile_x", std::process::id());
    let _cleanup = Cleanup(vec![table.clone(), victim.clone()]);
    let mut a = admin().await;
    a.query_drop(format!("CREATE TABLE IF NOT EXISTS `{victim}` (id INT)"))
        .await
        .unwrap();
    m.ensure_table(&schema).await.unwrap();

    let day = d("2026-06-01");
    let names = [
        HOSTILE.to_owned(),
        format!("'); DROP TABLE {victim}; --"),
        "x' OR '1'='1".to_owned(),
        "🚀🔥👩‍👩‍👧‍👦 캠페인 ÉTÉ".to_owned(),
        "back\\slash\\' and \"double\" and `tick`".to_owned(),
        "%_ LIKE wildcards".to_owned(),
        "  leading and trailing  ".to_owned(),
        "line\nbreak\r\n\u{0} nul".to_owned(),
        "a".repeat(512),
        "🚀".repeat(512), // 512 characters, 2,048 bytes: fits VARCHAR(512) in utf8mb4
    ];
    let mut df = campaign_frame(&[day], names.len(), 1);
    df.replace(
        "campaign_name",
        Column::new("campaign_name".into(), names.to_vec()),
    )
    .unwrap();
    // Key values that differ only by case stay two rows (utf8mb4_bin).
    let ids: Vec<String> = (0..names.len())
        .map(|i| {
            if i % 2 == 0 {
                format!("Camp{i}")
            } else {
                format!("camp{}", i - 1)
            }
        })
        .collect();
    df.replace("campaign_id", Column::new("campaign_id".into(), ids))
        .unwrap();
    df.replace(
        "channel",
        Column::new("channel".into(), vec!["🚀 channel"; names.len()]),
    )
    .unwrap();
    m.replace_partitions(&schema, &[day], &df).await.unwrap();

    let back = m.read_table(&schema, DateRange::day(day)).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &df));
    let stored: Vec<String> = a
        .query(format!(
            "SELECT campaign_name FROM `{table}` ORDER BY campaign_id"
        ))
        .await
        .unwrap();
    assert_eq!(stored.len(), names.len());
    for n in &names {
        assert!(stored.contains(n), "{n:?} not stored verbatim");
    }
    let victim_left: Option<String> = a
        .query_first(format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{victim}'"
        ))
        .await
        .unwrap();
    assert_eq!(victim_left.as_deref(), Some(victim.as_str()));
    a.disconnect().await.unwrap();
    m.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_name_table_row_and_column() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("bad");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    m.ensure_table(&schema).await.unwrap();
    let day = d("2026-07-01");
    let v1 = campaign_frame(&[day], 20, 1);
    m.replace_partitions(&schema, &[day], &v1).await.unwrap();

    // A value too long for VARCHAR(512) at row 7.
    let mut long = campaign_frame(&[day], 20, 2);
    let names: Vec<String> = (0..20)
        .map(|i| {
            if i == 7 {
                "é".repeat(513)
            } else {
                format!("n{i}")
            }
        })
        .collect();
    long.replace("campaign_name", Column::new("campaign_name".into(), names))
        .unwrap();
    let e = m
        .replace_partitions(&schema, &[day], &long)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "mysql table {table}, partition dt=2026-07-01, row 7, column \"campaign_name\": 513 characters, over the column's 512"
        )
    );
    assert_eq!((e.row(), e.column()), (Some(7), Some("campaign_name")));

    // A null in a NOT NULL column at row 3.
    let mut nulls = campaign_frame(&[day], 20, 2);
    let installs: Vec<Option<i64>> = (0..20).map(|i| (i != 3).then_some(1)).collect();
    nulls
        .replace("installs", Column::new("installs".into(), installs))
        .unwrap();
    let e = m
        .replace_partitions(&schema, &[day], &nulls)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "mysql table {table}, partition dt=2026-07-01, row 3, column \"installs\": null in a NOT NULL column"
        )
    );

    // A missing column is named too; and none of these touched the table.
    let e = m
        .replace_partitions(&schema, &[day], &v1.drop("currency").unwrap())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&table) && e.to_string().contains("\"currency\""),
        "{e}"
    );
    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &sorted(&schema, &v1));
    m.close().await.unwrap();
}

const UNPARTITIONED: &str = r#"
name = "{name}"
layer = "mart"
description = "A mart without partitions."
primary_key = ["channel"]

[[columns]]
name = "channel"
type = "string"
max_length = 64
description = "Channel."

[[columns]]
name = "users"
type = "uint64"
description = "Users."

[[columns]]
name = "as_of"
type = "date"
description = "Day of the figures."
"#;

fn channels(users: &[u64]) -> DataFrame {
    let names: Vec<String> = (0..users.len()).map(|i| format!("ch{i}")).collect();
    DataFrame::new(
        users.len(),
        vec![
            Column::new("channel".into(), names),
            Column::new("users".into(), users.to_vec()),
            Column::new(
                "as_of".into(),
                vec![days_since_epoch(d("2026-01-01")); users.len()],
            )
            .cast(&DataType::Date)
            .unwrap(),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpartitioned_mart_is_replaced_whole() {
    let mut m = mart_or_skip!();
    let schema = from_toml(UNPARTITIONED, "whole");
    let _cleanup = Cleanup(vec![schema.mysql_table_name()]);
    m.ensure_table(&schema).await.unwrap();
    m.replace_table(&schema, &channels(&[1, 2, 3, 4]))
        .await
        .unwrap();
    let v2 = channels(&[10, 20]);
    let s = m.replace_table(&schema, &v2).await.unwrap();
    assert_eq!((s.rows_deleted, s.rows_inserted), (4, 2));
    let back = m.read_table(&schema, DateRange::all()).await.unwrap();
    assert_frames_equal(&back, &v2);
    // Partition calls are refused on it, and table calls on partitioned marts.
    assert!(
        m.replace_partitions(&schema, &[d("2026-01-01")], &v2)
            .await
            .is_err()
    );
    assert!(
        m.read_table(&schema, DateRange::day(d("2026-01-01")))
            .await
            .is_err()
    );
    m.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_table_is_reported_not_written() {
    let mut m = mart_or_skip!();
    let schema = campaign_daily("outdated");
    let table = schema.mysql_table_name();
    let _cleanup = Cleanup(vec![table.clone()]);
    let mut a = admin().await;
    a.query_drop(format!(
        "CREATE TABLE `{table}` (dt DATE NOT NULL, channel VARCHAR(64) NOT NULL, old_col INT, PRIMARY KEY (dt, channel))"
    ))
    .await
    .unwrap();
    let e = m.ensure_table(&schema).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MartError::TableMismatch { .. }), "{msg}");
    assert!(
        msg.contains(&table) && msg.contains("old_col") && msg.contains("campaign_id"),
        "{msg}"
    );
    a.disconnect().await.unwrap();
    m.close().await.unwrap();
}

const RATE: &str = r#"
name = "{name}"
layer = "mart"
description = "Ten columns, for the write rate."
partition = "dt"
primary_key = ["dt", "user_key"]

[[columns]]
name = "dt"
type = "date"
description = "x"

[[columns]]
name = "user_key"
type = "string"
max_length = 64
description = "x"

[[columns]]
name = "channel"
type = "string"
max_length = 64
description = "x"

[[columns]]
name = "campaign_id"
type = "string"
nullable = true
max_length = 128
description = "x"

[[columns]]
name = "currency"
type = "string"
max_length = 3
description = "x"

[[columns]]
name = "revenue_micros"
type = "int64"
unit = "micros"
currency_column = "currency"
description = "x"

[[columns]]
name = "pred_micros"
type = "int64"
nullable = true
unit = "micros"
currency_column = "currency"
description = "x"

[[columns]]
name = "p_pay"
type = "float64"
description = "x"

[[columns]]
name = "sessions"
type = "uint32"
description = "x"

[[columns]]
name = "extrapolated"
type = "bool"
description = "x"
"#;

fn rate_frame(day: NaiveDate, n: usize) -> DataFrame {
    DataFrame::new(
        n,
        vec![
            Column::new("dt".into(), vec![days_since_epoch(day); n])
                .cast(&DataType::Date)
                .unwrap(),
            Column::new(
                "user_key".into(),
                (0..n).map(|i| format!("u{i:012x}")).collect::<Vec<_>>(),
            ),
            Column::new(
                "channel".into(),
                (0..n)
                    .map(|i| ["facebook", "google_ads", "naver", "organic"][i % 4])
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "campaign_id".into(),
                (0..n)
                    .map(|i| (i % 4 != 3).then(|| format!("campaign-{}", i % 97)))
                    .collect::<Vec<_>>(),
            ),
            Column::new("currency".into(), vec!["USD"; n]),
            Column::new(
                "revenue_micros".into(),
                (0..n)
                    .map(|i| (i as i64 * 7_919) % 50_000_000)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "pred_micros".into(),
                (0..n)
                    .map(|i| (i % 10 != 0).then_some(i as i64 * 13))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "p_pay".into(),
                (0..n)
                    .map(|i| (i % 1000) as f64 / 1000.0)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "sessions".into(),
                (0..n).map(|i| (i % 300) as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                "extrapolated".into(),
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

/// The write rate (README, MySQL marts): 100,000 rows of a 10-column mart per batch size.
/// `cargo test --locked --test mart_mysql -- --ignored --nocapture write_rate`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn write_rate() {
    let m = mart_or_skip!();
    let schema = from_toml(RATE, "rate");
    let _cleanup = Cleanup(vec![schema.mysql_table_name()]);
    let rows: usize = std::env::var("LTV_MART_RATE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let day = d("2026-08-01");
    let df = rate_frame(day, rows);
    let mut m = m;
    m.ensure_table(&schema).await.unwrap();
    for batch in [100, 500, 2_000, 6_000] {
        m = m.with_rows_per_insert(batch);
        // Twice per size: the second run also deletes the first's rows, as a nightly rerun does.
        for run in 0..2 {
            let s = m.replace_partitions(&schema, &[day], &df).await.unwrap();
            println!(
                "rows_per_insert {batch:>5} run {run}: {} rows (deleted {}) in {:.2} s = {:.0} rows/s, {} statements",
                s.rows_inserted,
                s.rows_deleted,
                s.elapsed.as_secs_f64(),
                s.rows_per_second(),
                s.statements
            );
        }
    }
    let started = Instant::now();
    let back = m.read_table(&schema, DateRange::day(day)).await.unwrap();
    println!(
        "read back {} rows in {:.2} s = {:.0} rows/s",
        back.height(),
        started.elapsed().as_secs_f64(),
        back.height() as f64 / started.elapsed().as_secs_f64()
    );
    assert_frames_equal(&back, &sorted(&schema, &df));
    m.close().await.unwrap();
}
