//! The lake beyond one machine: on S3 (a local S3-compatible server, moto, on loopback) and
//! shared by two `ltv recompute` jobs at once.
//!
//! - A partition written to S3 scans back equal; `_state/` updates from many tasks at once
//!   are all kept (conditional puts with `If-Match` / `If-None-Match`, not last-writer-wins).
//! - Two recomputes of the cleanse stage over disjoint ranges of one lake, run at the same
//!   time, leave exactly the partitions a sequential run leaves, and both run records.
//!
//! The S3 endpoint comes from `LTV_TEST_S3_ENDPOINT` (`.ci/run` starts moto's server and
//! sets it). Unset, the S3 tests skip with a note, except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use common::ci;
use ltv::config::{PipelineConfig, std_env};
use ltv::ingest::http::RetryPolicy;
use ltv::lake::{DateRange, Lake};
use ltv::pipeline::{RunKind, RunRecord, RunRequest, Stage, run_pipeline};
use ltv::schema::Registry;
use object_store::aws::AmazonS3Builder;
use polars::prelude::*;

/// A fresh bucket on the test S3 server, or `None` (skip) outside CI without one.
async fn s3_lake(test: &str) -> Option<Lake> {
    let endpoint = match std::env::var("LTV_TEST_S3_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ if ci() => panic!("CI=true but LTV_TEST_S3_ENDPOINT is not set; .ci/run starts moto"),
        _ => {
            eprintln!("SKIPPED: no S3 server (set LTV_TEST_S3_ENDPOINT, e.g. moto_server)");
            return None;
        }
    };
    let bucket = format!("ltv-{test}-{}", std::process::id()).replace('_', "-");
    // moto takes an unsigned bucket creation.
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 server {endpoint} unreachable: {e}"));
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let store = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap().keep();
    Some(Lake::from_store(
        Arc::new(store),
        &format!("s3://{bucket}"),
        cache,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_and_state_on_s3() {
    let Some(lake) = s3_lake("basics").await else {
        return;
    };
    let table = Registry::embedded()
        .unwrap()
        .get("mart.data_quality")
        .unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let df = df![
        "dt" => [day, day],
        "stage" => ["cleanse", "cleanse"],
        "source" => ["raw.mixpanel_export", "raw.mixpanel_export"],
        "rule" => ["duplicate", "malformed"],
        "step" => [1u64, 2],
        "rows_in" => [100u64, 98],
        "rows_out" => [98u64, 97],
        "rows_removed" => [2u64, 1],
        "rows_changed" => [0u64, 0],
    ]
    .unwrap();
    lake.write_partition(table, day, df.clone()).await.unwrap();
    let back = lake
        .scan(table, DateRange::all())
        .await
        .unwrap()
        .collect()
        .unwrap();
    assert!(back.equals_missing(&df), "{back}\n{df}");

    // Many writers at once: every increment kept.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let lake = lake.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    lake.update_state::<u64, _>("shared/counter", |c| c.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        lake.read_state::<u64>("shared/counter").await.unwrap(),
        Some(40)
    );
}

const DAYS: u32 = 12;

fn config() -> PipelineConfig {
    let mut config =
        PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "test", &std_env).unwrap();
    let mut sim = config.sim.clone().unwrap();
    sim.seed = 404;
    sim.days = NonZeroU32::new(DAYS).unwrap();
    sim.users_per_day = 150;
    config.sim = Some(sim);
    config
}

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)
}

/// A simulated world landed in `lake`'s raw layer by an ingest-only recompute.
async fn landed_world(config: &PipelineConfig, lake: &Lake) {
    ltv::sim::simulate(config.sim.as_ref().unwrap(), lake)
        .await
        .unwrap();
    let days = ltv::ingest::sources::world_days(lake)
        .await
        .unwrap()
        .unwrap();
    ltv::ingest::sources::drop_simulated_adison_files(config, lake, days)
        .await
        .unwrap();
    let mut request = RunRequest::new(
        RunKind::Recompute {
            from: day(0),
            to: day(i64::from(DAYS) - 1),
        },
        &std_env,
    );
    request.stages = vec![Stage::Ingest];
    request.ingest.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let report = run_pipeline(config, lake, request).await.unwrap();
    assert!(report.failed().is_none(), "{report}");
}

fn cleanse_only(from: NaiveDate, to: NaiveDate) -> RunRequest<'static> {
    let mut request = RunRequest::new(RunKind::Recompute { from, to }, &std_env);
    request.stages = vec![Stage::Cleanse];
    request
}

async fn clean_tables(lake: &Lake) -> Vec<(String, DataFrame)> {
    let mut out = Vec::new();
    for name in [
        "clean.mixpanel_events",
        "clean.af_installs",
        "clean.channel_daily",
    ] {
        let schema = Registry::embedded().unwrap().get(name).unwrap();
        let mut df = lake
            .scan(schema, DateRange::all())
            .await
            .unwrap()
            .collect()
            .unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        df = df.sort(names, SortMultipleOptions::default()).unwrap();
        out.push((name.to_string(), df));
    }
    out
}

/// Two `ltv recompute` processes at once on disjoint halves of the lake at `url`, against
/// the same two recomputes run again one after the other.
async fn concurrent_recomputes_match_sequential(lake: Lake, url: &str, env: &[(String, String)]) {
    let config = config();
    landed_world(&config, &lake).await;
    let half = i64::from(DAYS) / 2;
    let (a, b) = (
        (day(0), day(half - 1)),
        (day(half), day(i64::from(DAYS) - 1)),
    );
    let spawn = |(from, to): (NaiveDate, NaiveDate)| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ltv"))
            .args(["--lake", url, "-q", "recompute", "--stage", "cleanse"])
            .args(["--from", &from.to_string(), "--to", &to.to_string()])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("LTV_PIPELINE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (left, right) = (spawn(a), spawn(b));
    for child in [left, right] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (from, to) in [a, b] {
        let key = RunKind::Recompute { from, to }.key();
        let record = RunRecord::load(&lake, &key).await.unwrap().unwrap();
        assert_eq!((record.from, record.to), (from, to));
        assert!(record.stages.contains_key(&Stage::Cleanse), "{record:?}");
    }
    let concurrent = clean_tables(&lake).await;

    // The same two recomputes again, one after the other, over the same raw layer.
    for (from, to) in [a, b] {
        let mut request = cleanse_only(from, to);
        request.fresh = true;
        let r = run_pipeline(&config, &lake, request).await.unwrap();
        assert!(r.failed().is_none(), "{r}");
    }
    let sequential = clean_tables(&lake).await;
    for ((name, got), (_, want)) in concurrent.iter().zip(&sequential) {
        assert!(want.height() > 0, "{name} is empty");
        assert!(
            got.equals_missing(want),
            "{name} differs between concurrent and sequential recomputes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recomputes_on_a_local_lake() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    concurrent_recomputes_match_sequential(Lake::open(url).unwrap(), url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recomputes_on_s3() {
    let Some(lake) = s3_lake("recompute").await else {
        return;
    };
    let endpoint = std::env::var("LTV_TEST_S3_ENDPOINT").unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = lake.url().to_string();
    concurrent_recomputes_match_sequential(lake, &url, &env).await;
}
