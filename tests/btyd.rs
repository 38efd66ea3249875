//! `ltv btyd` end to end: the published CDNOW estimates from the real 1/10 sample, a simulated
//! daily file in Parquet with known parameters, and the messages and treatments of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ltv::model::btyd::simulate::{simulate_bgnbd, simulate_spends};
use ltv::model::btyd::{BgNbdParams, GammaGammaParams};
use polars::prelude::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;

fn ltv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltv"))
        .arg("btyd")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "ltv btyd failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn num(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {v:#}"))
}

fn cdnow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/btyd/cdnowElog.csv")
}

#[test]
fn cdnow_sample_reproduces_the_published_estimates() {
    // Fader, Hardie & Lee (2005): 2,357 customers, 39-week calibration ending 1997-09-30,
    // r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4. Fader & Hardie (2013):
    // 946 repeat buyers, p = 6.25, q = 3.74, gamma = 15.44 (LL -4055.92 in CLVTools' check).
    // Estimates must round to the published digits (half a unit of the last digit, plus a
    // little for the optimiser's tolerance).
    let out = ltv(&[
        "--transactions",
        cdnow().to_str().unwrap(),
        "--customer-col",
        "sampleid",
        "--date-col",
        "date",
        "--date-format",
        "%Y%m%d",
        "--amount-col",
        "sales",
        "--calibration-end",
        "1997-09-30",
    ]);
    let v = json(&out);
    println!("{v:#}");
    assert_eq!(v["period"], "week");
    assert_eq!(v["calibration_end"], "1997-09-30");
    assert_eq!(v["customers"], 2357);
    assert_eq!(v["repeat_buyers"], 946);
    assert_eq!(v["transactions"]["read"], 6919);
    assert_eq!(v["dropped"]["customers_after_calibration"], 0);
    assert_eq!(v["dropped"]["repeat_buyers_without_spend"], 0);
    let (read, after, merged, days) = (
        num(&v, "/transactions/read"),
        num(&v, "/dropped/transactions_after_calibration"),
        num(&v, "/dropped/transactions_merged_into_purchase_days"),
        num(&v, "/transactions/purchase_days"),
    );
    assert!(after > 0.0 && merged > 0.0);
    assert_eq!(read - after - merged, days);

    for (path, published, tolerance) in [
        ("/bg_nbd/params/r", 0.243, 6e-4),
        ("/bg_nbd/params/alpha", 4.414, 6e-4),
        ("/bg_nbd/params/a", 0.793, 6e-4),
        ("/bg_nbd/params/b", 2.426, 6e-4),
        ("/bg_nbd/log_likelihood", -9582.4, 0.06),
        ("/gamma_gamma/params/p", 6.25, 6e-3),
        ("/gamma_gamma/params/q", 3.74, 6e-3),
        ("/gamma_gamma/params/gamma", 15.44, 6e-3),
        ("/gamma_gamma/log_likelihood", -4055.92, 6e-3),
    ] {
        let got = num(&v, path);
        assert!(
            (got - published).abs() <= tolerance,
            "{path}: {got}, published {published}"
        );
    }
    assert_eq!(v["bg_nbd"]["customers"], 2357);
    assert_eq!(v["gamma_gamma"]["customers"], 946);
    assert_eq!(v["bg_nbd"]["fit"]["converged"], true);
    assert!(num(&v, "/bg_nbd/standard_errors/r") > 0.0);
}

#[test]
fn simulated_daily_parquet_recovers_its_parameters() {
    // 3,000 customers drawn from known parameters (in days), first purchases spread over a
    // year, written to Parquet with a datetime column and integer customer ids. The fit must
    // land within 4 of its own reported standard errors of the truth: 3 would be the usual
    // bound, one more absorbs the rounding of purchase times to whole days.
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
    let end = 730.0; // days from 2023-01-01 to the calibration end 2025-01-01
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let starts: Vec<f64> = (0..3_000).map(|i| f64::from(i % 365)).collect();
    let ages: Vec<f64> = starts.iter().map(|s| end - s).collect();
    let customers = simulate_bgnbd(&truth, &ages, &mut rng).unwrap();
    let (mut ids, mut times, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let epoch_2023_ms = 1_672_531_200_000i64;
    for (i, (c, start)) in customers.iter().zip(&starts).enumerate() {
        let when: Vec<f64> = std::iter::once(0.0)
            .chain(c.repeat_times.iter().copied())
            .collect();
        let paid = simulate_spends(&spend, when.len(), &mut rng).unwrap();
        for (t, amount) in when.iter().zip(paid) {
            ids.push(i as i64 + 1);
            times.push(epoch_2023_ms + ((start + t) * 86_400_000.0) as i64);
            amounts.push(amount);
        }
        // One purchase after the calibration end, which must be left out of the fit.
        if i % 10 == 0 {
            ids.push(i as i64 + 1);
            times.push(epoch_2023_ms + ((end + 3.0) * 86_400_000.0) as i64);
            amounts.push(1.0);
        }
    }
    let after = customers.len().div_ceil(10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), ids),
        Series::new("ordered_at".into(), times)
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap()
            .into(),
        Column::new("revenue".into(), amounts),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();

    let out = ltv(&[
        "--transactions",
        path.to_str().unwrap(),
        "--customer-col",
        "user_id",
        "--date-col",
        "ordered_at",
        "--amount-col",
        "revenue",
        "--calibration-end",
        "2024-12-31",
        "--period",
        "day",
    ]);
    let v = json(&out);
    println!("{v:#}");
    assert_eq!(v["period"], "day");
    assert_eq!(v["customers"], 3000);
    assert_eq!(
        num(&v, "/dropped/transactions_after_calibration"),
        after as f64
    );
    for (name, want) in [
        ("r", truth.r),
        ("alpha", truth.alpha),
        ("a", truth.a),
        ("b", truth.b),
    ] {
        let got = num(&v, &format!("/bg_nbd/params/{name}"));
        let se = num(&v, &format!("/bg_nbd/standard_errors/{name}"));
        assert!(se < 0.5 * want, "{name}: standard error {se}");
        assert!(
            (got - want).abs() <= 4.0 * se,
            "{name}: {got}, truth {want}, standard error {se}"
        );
    }
    for (name, want) in [("p", spend.p), ("q", spend.q), ("gamma", spend.gamma)] {
        let got = num(&v, &format!("/gamma_gamma/params/{name}"));
        let se = num(&v, &format!("/gamma_gamma/standard_errors/{name}"));
        assert!(
            (got - want).abs() <= 4.0 * se,
            "{name}: {got}, truth {want}, standard error {se}"
        );
    }
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn btyd_on(path: &Path, amount: bool) -> Output {
    let mut args = vec![
        "--transactions",
        path.to_str().unwrap(),
        "--customer-col",
        "customer",
        "--date-col",
        "day",
        "--calibration-end",
        "2024-03-31",
    ];
    if amount {
        args.extend(["--amount-col", "amount"]);
    }
    ltv(&args)
}

/// Eight rows of four customers within the window, three of them repeat buyers (the fewest
/// Gamma-Gamma accepts).
const GOOD_ROWS: &str = "a,2024-01-02,10\na,2024-01-20,12\na,2024-02-11,9\nb,2024-01-05,20\n\
b,2024-03-01,25\nc,2024-02-02,5\nc,2024-03-10,6\nd,2024-03-30,8\n";

#[test]
fn bad_input_gets_an_error_naming_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();

    let empty = write(dir.path(), "empty.csv", "");
    let err = stderr(&btyd_on(&empty, true));
    assert!(
        err.contains("empty.csv") && err.contains("no transactions"),
        "{err}"
    );
    let header_only = write(dir.path(), "header.csv", "customer,day,amount\n");
    let err = stderr(&btyd_on(&header_only, true));
    assert!(
        err.contains("header.csv") && err.contains("no transactions"),
        "{err}"
    );

    let bad_date = write(
        dir.path(),
        "bad_date.csv",
        &format!("customer,day,amount\n{GOOD_ROWS}e,2024-02-31,3\n"),
    );
    let out = btyd_on(&bad_date, true);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bad_date.csv: row 9, column \"day\": cannot read \"2024-02-31\""),
        "{err}"
    );

    let negative = write(
        dir.path(),
        "negative.csv",
        &format!("customer,day,amount\n{GOOD_ROWS}e,2024-02-03,-3.5\n"),
    );
    let err = stderr(&btyd_on(&negative, true));
    assert!(
        err.contains("negative.csv: row 9, column \"amount\": negative amount -3.5"),
        "{err}"
    );

    let text = write(
        dir.path(),
        "text.csv",
        &format!("customer,day,amount\n{GOOD_ROWS}e,2024-02-03,three\n"),
    );
    let err = stderr(&btyd_on(&text, true));
    assert!(
        err.contains("text.csv: row 9, column \"amount\": \"three\" is not a number"),
        "{err}"
    );

    let no_amount_col = write(
        dir.path(),
        "cols.csv",
        &format!("customer,day,spend\n{GOOD_ROWS}"),
    );
    let err = stderr(&btyd_on(&no_amount_col, true));
    assert!(
        err.contains(
            "no column \"amount\" (given as --amount-col); the columns are: customer, day, spend"
        ),
        "{err}"
    );

    let all_later = write(
        dir.path(),
        "later.csv",
        "customer,day,amount\na,2024-04-02,1\nb,2024-05-01,2\n",
    );
    let err = stderr(&btyd_on(&all_later, true));
    assert!(
        err.contains("every transaction is after the calibration end 2024-03-31"),
        "{err}"
    );
}

#[test]
fn customers_and_rows_after_the_calibration_end_are_left_out_and_counted() {
    // e and f buy only after the window: left out of the fit, counted. a buys again after the
    // window and twice on one day inside it: one row left out, one merged.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "tx.csv",
        &format!(
            "customer,day,amount\n{GOOD_ROWS}e,2024-04-01,3\nf,2024-04-10,4\nf,2024-04-11,4\n\
a,2024-04-05,30\na,2024-01-20 18:30:00,1\n"
        ),
    );
    let v = json(&btyd_on(&path, true));
    assert_eq!(v["customers"], 4);
    assert_eq!(v["repeat_buyers"], 3);
    assert_eq!(v["transactions"]["read"], 13);
    assert_eq!(v["transactions"]["in_calibration"], 9);
    assert_eq!(v["transactions"]["purchase_days"], 8);
    assert_eq!(v["dropped"]["customers_after_calibration"], 2);
    assert_eq!(v["dropped"]["transactions_after_calibration"], 4);
    assert_eq!(v["dropped"]["transactions_merged_into_purchase_days"], 1);
    assert_eq!(v["bg_nbd"]["customers"], 4);
    // Without an amount column there is no spend model.
    let v = json(&btyd_on(&path, false));
    assert!(v["gamma_gamma"].is_null());
    assert!(v["dropped"]["repeat_buyers_without_spend"].is_null());
}
