//! `cargo bench --bench cleanse`: events per second and peak memory of `ltv cleanse` and
//! `ltv process` over a simulated month, against the same rules collected eagerly.
//!
//! A world of `LTV_BENCH_CLEANSE_SCALE` (`users_per_day:days`, default `10000:30`) is
//! simulated and pulled into the raw layer by `ltv ingest` once, under the demo config with
//! the local servers' pacing lifted ([`bench_pipeline`]). Then, `LTV_BENCH_RUNS` (default 3)
//! times and alternating, the lazy plans (one collect per partition, the pipeline's mode) and
//! the eager ones (`--eager`: the same rule functions, collected after every rule, every column
//! read) rebuild the whole range, each stage as its own release process so peak memory is per
//! stage; so do the lazy plans with every day in batches of `LTV_BENCH_BATCH_ROWS` rows
//! (default 131,072: the pipeline's `batch_rows`, small enough that this scale's days are
//! batched too), to show what batches cost in time and save in memory. Events per second =
//! Mixpanel rows in / the stage's seconds. Medians and the ratios go to
//! `benches/results/cleanse.json`.
//!
//! With `LTV_BENCH_BASELINES` set to a Python that has DuckDB and pandas (`pip install -r
//! benches/baselines/requirements.txt`), the Mixpanel part of cleanse is also timed against
//! the same job in DuckDB and in pandas, their output checked against ltv's
//! ([`against_baselines`]).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use chrono::{Duration, NaiveDate};
use serde_json::Value;

const START: &str = "2026-01-01";

fn ltv(lake: &std::path::Path, pipeline: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ltv"))
        .args(["-q", "--lake", lake.to_str().unwrap()])
        .args(["--pipeline", pipeline.to_str().unwrap()])
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

/// The demo config with the local servers' pacing lifted, written into `dir`. The benchmark
/// measures cleanse and process; at the scale (ten million events a day) the demo's
/// quotas stop the landing halfway (an Engage page per thousand profiles spends Mixpanel's
/// hourly calls, an AppsFlyer call per million rows its daily ones) and the local server
/// takes longer than a minute to render one day's export. One export in flight, as each
/// day's body is held whole on both ends.
fn bench_pipeline(dir: &std::path::Path, batch_rows: Option<u32>) -> std::path::PathBuf {
    let mut doc: toml::Table = ltv::config::EMBEDDED_DEMO.parse().unwrap();
    if let Some(rows) = batch_rows {
        doc["pipeline"]
            .as_table_mut()
            .unwrap()
            .insert("batch_rows".into(), toml::Value::Integer(rows.into()));
    }
    let sources = doc["sources"].as_table_mut().unwrap();
    let lift = [
        ("mixpanel", "per_hour", 100_000, 1),
        ("appsflyer", "per_day", 10_000, 2),
    ];
    for (source, window, calls, concurrency) in lift {
        let s = sources[source].as_table_mut().unwrap();
        let budget = s["budget"].as_table_mut().unwrap();
        budget.insert(window.into(), toml::Value::Integer(calls));
        s.insert("concurrency".into(), toml::Value::Integer(concurrency));
        s.insert("timeout_seconds".into(), toml::Value::Integer(3600));
    }
    let path = dir.join(match batch_rows {
        Some(_) => "bench-pipeline-batched.toml",
        None => "bench-pipeline.toml",
    });
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

fn day(offset: i64) -> String {
    (START.parse::<NaiveDate>().unwrap() + Duration::days(offset)).to_string()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn written(summary: &Value, table: &str) -> u64 {
    summary["written"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w[0] == table)
        .map(|w| w[2].as_u64().unwrap())
        .sum()
}

fn main() {
    let runs: usize = std::env::var("LTV_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let scale = std::env::var("LTV_BENCH_CLEANSE_SCALE").unwrap_or_else(|_| "10000:30".into());
    let (users, days) = scale.split_once(':').expect("scale is users_per_day:days");
    let n: i64 = days.parse().unwrap();
    let dir = std::env::var_os("LTV_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let lake = tempfile::tempdir_in(dir).unwrap();
    let (from, to, today) = (day(0), day(n - 1), day(n));
    let config = tempfile::tempdir().unwrap();
    let pipeline = bench_pipeline(config.path(), None);
    let batch_rows: u32 = std::env::var("LTV_BENCH_BATCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(131_072);
    let batched = bench_pipeline(config.path(), Some(batch_rows));
    ltv(
        lake.path(),
        &pipeline,
        &[
            "simulate",
            "--json",
            "--users-per-day",
            users,
            "--days",
            days,
        ],
    );
    let ingest = ltv(
        lake.path(),
        &pipeline,
        &[
            "ingest", "--json", "--from", &from, "--to", &to, "--date", &today,
        ],
    );
    let events_in: u64 = ingest["streams"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("mixpanel.export"))
        .map(|(_, s)| s["rows"].as_u64().unwrap())
        .sum();
    println!("world: {users} users/day x {days} days, {events_in} Mixpanel events landed");

    let mut seconds = std::collections::BTreeMap::<String, Vec<f64>>::new();
    let mut peaks = std::collections::BTreeMap::<String, u64>::new();
    let mut clean_events = 0;
    for run in 0..runs {
        for mode in ["lazy", "batched", "eager"] {
            for stage in ["cleanse", "process"] {
                let mut args = vec![stage, "--json", "--from", &from, "--to", &to];
                if mode == "eager" {
                    args.push("--eager");
                }
                let config = if mode == "batched" {
                    &batched
                } else {
                    &pipeline
                };
                let out = ltv(lake.path(), config, &args);
                assert!(out["failures"].as_array().unwrap().is_empty(), "{out}");
                if stage == "cleanse" {
                    clean_events = written(&out, "clean.mixpanel_events");
                }
                let key = format!("{stage} {mode}");
                let s = out["seconds"].as_f64().unwrap();
                println!("run {run}: {key}: {s:.2} s");
                seconds.entry(key.clone()).or_default().push(s);
                let peak = out["peak_memory_bytes"].as_u64().unwrap_or(0);
                let p = peaks.entry(key).or_default();
                *p = (*p).max(peak);
            }
        }
    }

    println!(
        "\n{:<16} {:>12} {:>10} {:>14} {:>10}",
        "stage", "events", "seconds", "events/s", "peak MiB"
    );
    let mut rows = Vec::new();
    let mut medians = std::collections::BTreeMap::new();
    for (key, runs) in &seconds {
        let m = median(runs.clone());
        medians.insert(key.clone(), m);
        let events = if key.starts_with("cleanse") {
            events_in
        } else {
            clean_events
        };
        let peak = peaks[key] as f64 / 1_048_576.0;
        println!(
            "{key:<16} {events:>12} {m:>10.2} {:>14.0} {peak:>10.0}",
            events as f64 / m
        );
        rows.push(serde_json::json!({
            "stage": key, "events": events, "median_seconds": m,
            "events_per_second": events as f64 / m, "peak_memory_mib": peak, "runs": runs,
        }));
    }
    let lazy = medians["cleanse lazy"] + medians["process lazy"];
    let eager = medians["cleanse eager"] + medians["process eager"];
    let in_batches = medians["cleanse batched"] + medians["process batched"];
    println!(
        "cleanse + process: lazy {lazy:.2} s ({:.0} events/s), eager {eager:.2} s; eager / lazy = {:.2}; \
         in batches of {batch_rows} rows {in_batches:.2} s ({:.2} times lazy)",
        events_in as f64 / lazy,
        eager / lazy,
        in_batches / lazy
    );
    let baselines = std::env::var("LTV_BENCH_BASELINES")
        .ok()
        .map(|python| against_baselines(&python, lake.path(), &pipeline, &from, &to, runs));
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/cleanse.json");
    let doc = serde_json::json!({
        "scale": { "users_per_day": users, "days": n, "mixpanel_events": events_in },
        "stages": rows,
        "lazy_seconds": lazy,
        "eager_seconds": eager,
        "eager_over_lazy": eager / lazy,
        "batch_rows_of_batched": batch_rows,
        "batched_seconds": in_batches,
        "batched_over_lazy": in_batches / lazy,
        "events_per_second_cleanse_plus_process": events_in as f64 / lazy,
        "mixpanel_only_against_baselines": baselines,
        "machine": "2 cores, 24 GiB; not pinned",
        "profile": if cfg!(debug_assertions) {
            "dev (cargo bench --profile dev: dependencies at opt-level 2, ltv at 1)"
        } else {
            "release"
        },
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("written to {}", path.display());
}

/// The raw tables the Mixpanel part of cleanse reads: the export and the FX sheet.
const MIXPANEL_ONLY: [&str; 2] = ["raw/mixpanel_export", "raw/sheets_fx_rates"];

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `ltv cleanse` on a copy of the lake that holds only what its Mixpanel part reads, against
/// the same job written for DuckDB (SQL) and for pandas (`benches/baselines/cleanse_mixpanel.py`,
/// run by `python`), alternating, `runs` times each. Every baseline run checks its output
/// against the clean partitions ltv wrote (every column of every kept row, the identifier
/// pairs, each quarantined row's key and reason, the rule counts), so the timings are of the
/// same work.
fn against_baselines(
    python: &str,
    lake: &std::path::Path,
    pipeline: &std::path::Path,
    from: &str,
    to: &str,
    runs: usize,
) -> Value {
    let dir = lake.parent().unwrap();
    let mixpanel = tempfile::tempdir_in(dir).unwrap();
    for table in MIXPANEL_ONLY {
        copy_dir(&lake.join(table), &mixpanel.path().join(table));
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/baselines/cleanse_mixpanel.py");
    let engines = ["ltv", "duckdb", "pandas"];
    let mut seconds = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    let mut peaks = std::collections::BTreeMap::<&str, u64>::new();
    let mut versions = std::collections::BTreeMap::<&str, String>::new();
    let mut rows_in = 0;
    for run in 0..runs {
        for engine in engines {
            let (s, peak) = if engine == "ltv" {
                let out = ltv(
                    mixpanel.path(),
                    pipeline,
                    &["cleanse", "--json", "--from", from, "--to", to],
                );
                assert!(out["failures"].as_array().unwrap().is_empty(), "{out}");
                let peak = out["peak_memory_bytes"].as_u64().unwrap_or(0);
                (out["seconds"].as_f64().unwrap(), peak)
            } else {
                let target = tempfile::tempdir_in(dir).unwrap();
                let done = Command::new(python)
                    .arg(&script)
                    .args(["--engine", engine])
                    .args(["--lake", mixpanel.path().to_str().unwrap()])
                    .args(["--out", target.path().to_str().unwrap()])
                    .args(["--from", from, "--to", to])
                    .args(["--check", mixpanel.path().to_str().unwrap()])
                    .output()
                    .expect("run the baseline job");
                assert!(
                    done.status.success(),
                    "the {engine} job failed or differs from ltv's output: {}{}",
                    String::from_utf8_lossy(&done.stdout),
                    String::from_utf8_lossy(&done.stderr)
                );
                let report: Value = serde_json::from_slice(&done.stdout).unwrap();
                rows_in = report["rows_in"].as_u64().unwrap();
                versions.insert(engine, report["engine"].as_str().unwrap().to_string());
                let peak = report["peak_memory_bytes"].as_u64().unwrap();
                (report["seconds"].as_f64().unwrap(), peak)
            };
            println!("run {run}: mixpanel-only cleanse, {engine}: {s:.2} s");
            seconds.entry(engine).or_default().push(s);
            let p = peaks.entry(engine).or_default();
            *p = (*p).max(peak);
        }
    }
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let ltv_median = median(seconds["ltv"].clone());
    let mut doc = serde_json::Map::new();
    doc.insert("events".into(), rows_in.into());
    println!("mixpanel-only cleanse of {rows_in} events:");
    for engine in engines {
        let m = median(seconds[engine].clone());
        let version = versions.get(engine).map_or("ltv", String::as_str);
        println!(
            "  {version:<14} {m:>7.2} s {:>10.0} events/s  peak {:>6.0} MiB  {:.2} x ltv's time",
            rows_in as f64 / m,
            mib(peaks[engine]),
            m / ltv_median
        );
        doc.insert(
            engine.into(),
            serde_json::json!({
                "version": version, "median_seconds": m, "runs": seconds[engine],
                "events_per_second": rows_in as f64 / m, "peak_memory_mib": mib(peaks[engine]),
                "over_ltv": m / ltv_median,
            }),
        );
    }
    Value::Object(doc)
}
