//! `cargo bench --bench btyd`: how long `ltv btyd` takes on a large transaction file, and how
//! long the two fits take on their own.
//!
//! `LTV_BENCH_BTYD_CUSTOMERS` customers (default 1,000,000) are drawn from BG/NBD and
//! Gamma-Gamma with first purchases spread over a year and a calibration end one year after
//! the last of them, purchase times in days. Their transactions go to a Parquet file, which the
//! release binary reads end to end (`--period day`, amounts): reading and validation, the
//! summary plan, both fits, standard errors. The fits are also timed in-process on the same
//! summaries. Medians of `RUNS` go to `benches/results/btyd.json`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use ltv::model::btyd::simulate::{simulate_bgnbd, simulate_spends};
use ltv::model::btyd::{
    BgNbdParams, CustomerHistory, GammaGammaParams, RepeatSpend, bgnbd, gamma_gamma,
};
use polars::prelude::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Value, json};

const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let customers: usize = std::env::var("LTV_BENCH_BTYD_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let truth = BgNbdParams {
        r: 0.25,
        alpha: 28.0,
        a: 0.8,
        b: 2.5,
    };
    let spend = GammaGammaParams {
        p: 6.0,
        q: 4.0,
        gamma: 15.0,
    };
    // First purchases on days 0..365 of 2025, calibration end 2026-12-31 (day 729).
    let end_day = 729.0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let starts: Vec<f64> = (0..customers).map(|i| (i % 365) as f64).collect();
    let ages: Vec<f64> = starts.iter().map(|s| end_day - s).collect();
    let drawn = simulate_bgnbd(&truth, &ages, &mut rng).unwrap();

    let (mut ids, mut days, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let mut histories = Vec::with_capacity(customers);
    let mut spends = Vec::new();
    let day_2025 = 20_089; // 2025-01-01 as days since 1970-01-01
    for (i, (c, start)) in drawn.iter().zip(&starts).enumerate() {
        let mut purchase_days: Vec<i32> = std::iter::once(0.0)
            .chain(c.repeat_times.iter().copied())
            .map(|t| (start + t).floor() as i32)
            .collect();
        purchase_days.dedup();
        let paid = simulate_spends(&spend, purchase_days.len(), &mut rng).unwrap();
        for (d, amount) in purchase_days.iter().zip(&paid) {
            ids.push(i as i64);
            days.push(day_2025 + d);
            amounts.push(*amount);
        }
        let x = purchase_days.len() as u32 - 1;
        let first = f64::from(purchase_days[0]);
        histories.push(CustomerHistory {
            frequency: x,
            recency: f64::from(purchase_days[x as usize]) - first,
            age: end_day - first,
        });
        if x > 0 {
            spends.push(RepeatSpend {
                frequency: x,
                mean_spend: paid[1..].iter().sum::<f64>() / f64::from(x),
            });
        }
    }
    let rows = ids.len();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transactions.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("customer".into(), ids),
        Series::new("day".into(), days).into_date().into(),
        Column::new("amount".into(), amounts),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    drop(df);
    println!(
        "{customers} customers, {rows} transactions, {} repeat buyers",
        spends.len()
    );

    let mut command = Vec::new();
    let mut last = Value::Null;
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ltv"))
            .args(["-q", "btyd", "--transactions", path.to_str().unwrap()])
            .args(["--customer-col", "customer", "--date-col", "day"])
            .args(["--amount-col", "amount", "--calibration-end", "2026-12-31"])
            .args(["--period", "day"])
            .output()
            .expect("run ltv");
        command.push(started.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = serde_json::from_slice(&out.stdout).unwrap();
    }
    let (mut bg, mut gg) = (Vec::new(), Vec::new());
    let mut bg_model = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        bg_model = Some(bgnbd::fit(&histories).unwrap());
        bg.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        gamma_gamma::fit(&spends).unwrap();
        gg.push(started.elapsed().as_secs_f64());
    }
    let result = json!({
        "customers": customers,
        "transactions": rows,
        "repeat_buyers": spends.len(),
        "ltv_btyd_seconds": median(command.clone()),
        "ltv_btyd_runs": command,
        "bg_nbd_fit_seconds": median(bg),
        "bg_nbd_evaluations": bg_model.as_ref().map(|m| m.fit.evaluations),
        "gamma_gamma_fit_seconds": median(gg),
        "estimates": {"bg_nbd": last["bg_nbd"]["params"], "gamma_gamma": last["gamma_gamma"]["params"]},
        "truth": {"bg_nbd": {"r": truth.r, "alpha": truth.alpha, "a": truth.a, "b": truth.b},
                  "gamma_gamma": {"p": spend.p, "q": spend.q, "gamma": spend.gamma}},
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/btyd.json");
    std::fs::write(out, text + "\n").unwrap();
}
