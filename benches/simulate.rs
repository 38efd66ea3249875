//! `cargo bench --bench simulate`: throughput and peak memory of `ltv simulate`.
//!
//! Each scale runs the release binary in its own process (peak memory is per process),
//! pinned to one core with `taskset` when available, three times; the median events per
//! second and the largest peak are reported and written to `benches/results/simulate.json`.
//! Scales: `LTV_BENCH_SCALES="users_per_day:days,..."` (default `10000:10,1000000:2`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const RUNS: usize = 3;

fn main() {
    let scales = std::env::var("LTV_BENCH_SCALES").unwrap_or_else(|_| "10000:10,1000000:2".into());
    let pinned = Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    let mut results = Vec::new();
    println!(
        "{:>13} {:>5} {:>12} {:>14} {:>12} {:>14}",
        "users/day", "days", "events", "events/s", "seconds", "peak MiB"
    );
    for scale in scales.split(',') {
        let (users, days) = scale.split_once(':').expect("scale is users_per_day:days");
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            let lake = tempfile::tempdir().unwrap();
            let mut cmd = if pinned {
                let mut c = Command::new("taskset");
                c.args(["-c", "0", env!("CARGO_BIN_EXE_ltv")]);
                c
            } else {
                Command::new(env!("CARGO_BIN_EXE_ltv"))
            };
            let out = cmd
                .args([
                    "-q",
                    "--lake",
                    lake.path().to_str().unwrap(),
                    "simulate",
                    "--json",
                ])
                .args(["--users-per-day", users, "--days", days])
                .env("POLARS_MAX_THREADS", "1")
                .output()
                .expect("run ltv simulate");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            runs.push(report);
        }
        let mut rates: Vec<f64> = runs
            .iter()
            .map(|r| r["events_per_second"].as_f64().unwrap())
            .collect();
        rates.sort_by(f64::total_cmp);
        let mut secs: Vec<f64> = runs
            .iter()
            .map(|r| r["seconds"].as_f64().unwrap())
            .collect();
        secs.sort_by(f64::total_cmp);
        let peak = runs
            .iter()
            .map(|r| r["peak_memory_bytes"].as_u64().unwrap())
            .max()
            .unwrap();
        let events = runs[0]["event_rows"].as_u64().unwrap();
        println!(
            "{users:>13} {days:>5} {events:>12} {:>14.0} {:>12.2} {:>14.1}",
            rates[RUNS / 2],
            secs[RUNS / 2],
            peak as f64 / 1048576.0
        );
        results.push(serde_json::json!({
            "users_per_day": users.parse::<u64>().unwrap(),
            "days": days.parse::<u64>().unwrap(),
            "events": events,
            "median_events_per_second": rates[RUNS / 2],
            "median_seconds": secs[RUNS / 2],
            "max_peak_memory_bytes": peak,
            "runs": RUNS,
            "pinned_to_one_core": pinned,
        }));
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/simulate.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("written to {}", path.display());
}
