//! `cargo bench --bench ingest`: rows per second landed from the local servers, and the calls
//! a 30-day backfill of every source spends.
//!
//! Throughput: a world of `LTV_BENCH_INGEST_SCALE` (`users_per_day:days`, default `20000:3`)
//! is simulated once; then `ltv ingest --from --to --source S` runs three times per source
//! as its own release process, after one untimed run that also takes the day's snapshots
//! (Engage), so the timed runs land report days only. Rows per second = rows
//! landed / the run's seconds (server rendering included: it is the same machine).
//! Calls: a 30-day world of 500 installs a day, one backfill of every source.
//! Results go to `benches/results/ingest.json`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use chrono::{Duration, NaiveDate};
use serde_json::Value;

const RUNS: usize = 3;
const START: &str = "2026-01-01";

fn ltv(lake: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ltv"))
        .args(["-q", "--lake", lake.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run ltv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn day(offset: i64) -> String {
    (START.parse::<NaiveDate>().unwrap() + Duration::days(offset)).to_string()
}

fn rows(summary: &Value, prefix: &str) -> u64 {
    summary["streams"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, s)| s["rows"].as_u64().unwrap())
        .sum()
}

fn main() {
    let scale = std::env::var("LTV_BENCH_INGEST_SCALE").unwrap_or_else(|_| "20000:3".into());
    let (users, days) = scale.split_once(':').expect("scale is users_per_day:days");
    let n: i64 = days.parse().unwrap();
    let lake = tempfile::tempdir().unwrap();
    ltv(
        lake.path(),
        &[
            "simulate",
            "--json",
            "--users-per-day",
            users,
            "--days",
            days,
        ],
    );
    let (from, to, today) = (day(0), day(n - 1), day(n));
    let range = [
        "ingest", "--json", "--from", &from, "--to", &to, "--date", &today,
    ];

    let mut results = Vec::new();
    println!(
        "{:<12} {:>12} {:>10} {:>14}",
        "source", "rows", "seconds", "rows/s"
    );
    // Google Sheets is left out: its streams are daily snapshots, taken once a day.
    let sources = [
        "mixpanel",
        "appsflyer",
        "adison",
        "meta",
        "google_ads",
        "apple_search_ads",
        "naver",
    ];
    for source in sources {
        let prefix = format!("{source}.");
        // Takes today's snapshots, so the timed runs pull report days only.
        ltv(lake.path(), &[&range[..], &["--source", source]].concat());
        let mut runs: Vec<(u64, f64)> = (0..RUNS)
            .map(|_| {
                let s = ltv(lake.path(), &[&range[..], &["--source", source]].concat());
                (rows(&s, &prefix), s["seconds"].as_f64().unwrap())
            })
            .collect();
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (landed, secs) = runs[RUNS / 2];
        let rate = landed as f64 / secs;
        println!("{source:<12} {landed:>12} {secs:>10.2} {rate:>14.0}");
        results.push(serde_json::json!({
            "source": source,
            "users_per_day": users.parse::<u64>().unwrap(),
            "days": n,
            "rows": landed,
            "median_seconds": secs,
            "rows_per_second": rate,
            "runs": RUNS,
        }));
    }

    // A 30-day backfill of every source.
    let small = tempfile::tempdir().unwrap();
    ltv(
        small.path(),
        &[
            "simulate",
            "--json",
            "--users-per-day",
            "500",
            "--days",
            "30",
        ],
    );
    let backfill = ltv(
        small.path(),
        &[
            "ingest",
            "--json",
            "--from",
            &day(0),
            "--to",
            &day(29),
            "--date",
            &day(30),
        ],
    );
    println!("30-day backfill calls: {}", backfill["calls_by_source"]);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/ingest.json");
    let doc = serde_json::json!({
        "throughput": results,
        "backfill_30_days": {
            "users_per_day": 500,
            "calls_by_source": backfill["calls_by_source"],
            "streams": backfill["streams"],
        },
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("written to {}", path.display());
}
