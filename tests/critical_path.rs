//! Critical paths on simulated worlds: the world is pulled through the local API servers,
//! cleansed and processed like `tests/cleanse.rs`, then analysed. The path the simulator
//! planted (`truth.planted_paths`) must rank first overall and its steps must top the event
//! lift table, on seeds the analysis was not tuned on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::num::NonZeroU32;

use chrono::NaiveDate;
use ltv::cleanse::run_cleanse;
use ltv::config::{PipelineConfig, std_env};
use ltv::features::{CriticalPathParams, PATH_SEPARATOR, critical_paths, user_features};
use ltv::lake::{DateRange, Lake};
use ltv::process::run_process;
use ltv::schema::Registry;
use polars::prelude::*;

const DAYS: u32 = 20;
const USERS_PER_DAY: u32 = 800;

fn range() -> DateRange {
    let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    DateRange::new(from, from + chrono::Duration::days(i64::from(DAYS) - 1))
}

/// The demo config with a small world of the given seed.
fn config(seed: u64) -> PipelineConfig {
    let mut config =
        PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "test", &std_env).unwrap();
    let mut sim = config.sim.clone().unwrap();
    sim.seed = seed;
    sim.days = NonZeroU32::new(DAYS).unwrap();
    sim.users_per_day = USERS_PER_DAY;
    config.sim = Some(sim);
    config
}

/// A simulated world pulled into the raw layer by the real connectors, then cleansed and
/// processed into the clean layer.
async fn clean_world(config: &PipelineConfig) -> Lake {
    let r = range();
    let lake = common::world::ingested_world(config, r).await;
    let c = run_cleanse(config, &lake, r, "test-cleanse").await.unwrap();
    assert!(!c.failed(), "{c}");
    let p = run_process(config, &lake, r, "test-process").await.unwrap();
    assert!(!p.failed(), "{p}");
    lake
}

async fn scan(lake: &Lake, name: &str) -> LazyFrame {
    let t = Registry::embedded().unwrap().get(name).unwrap();
    lake.scan(t, DateRange::all()).await.unwrap()
}

fn strs(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

/// Whether `path` holds `steps` in this order (not necessarily next to each other).
fn holds_in_order(path: &str, steps: &[String]) -> bool {
    let mut want = steps.iter().peekable();
    for step in path.split(PATH_SEPARATOR) {
        if want.peek().is_some_and(|w| *w == step) {
            want.next();
        }
    }
    want.peek().is_none()
}

fn overall(df: &DataFrame, kind: Option<&str>, n: usize) -> DataFrame {
    let mut f = col("cohort_kind").eq(lit("overall"));
    if let Some(k) = kind {
        f = f.and(col("kind").eq(lit(k)));
    }
    df.clone()
        .lazy()
        .filter(f.and(col("rank").is_not_null()))
        .sort(["rank"], SortMultipleOptions::default())
        .limit(n as IdxSize)
        .collect()
        .unwrap()
}

/// The ranked rows as text: rank, key, support, conversions, rate, lift, score and one more
/// float column.
fn table(df: &DataFrame, key: &str, extra: &str) -> String {
    let keys = strs(df, key);
    let u = |c: &str| -> Vec<u64> {
        df.column(c)
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect()
    };
    let f = |c: &str| -> Vec<f64> {
        df.column(c)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect()
    };
    let (support, conv) = (u("support"), u("conversions"));
    let (rate, lift, score, more) = (f("conversion_rate"), f("lift"), f("score"), f(extra));
    let mut out = format!(
        "  {:>4} {:<70} {:>7} {:>5} {:>7} {:>5} {:>5} {:>9}\n",
        "rank",
        key,
        "support",
        "conv",
        "rate",
        "lift",
        "score",
        extra.split('_').next_back().unwrap_or("")
    );
    for i in 0..df.height() {
        out.push_str(&format!(
            "  {:>4} {:<70} {:>7} {:>5} {:>6.2}% {:>5.2} {:>5.2} {:>9.3}\n",
            i + 1,
            keys[i],
            support[i],
            conv[i],
            100.0 * rate[i],
            lift[i],
            score[i],
            more[i]
        ));
    }
    out
}

async fn planted_path_ranks_first(seed: u64) {
    let config = config(seed);
    let lake = clean_world(&config).await;
    let events = scan(&lake, "clean.events").await;
    let installs = scan(&lake, "clean.installs").await;
    let params = CriticalPathParams::from_analysis(&config.analysis);
    let plans = critical_paths(events.clone(), installs.clone(), &params).unwrap();
    let paths = plans.paths.collect().unwrap();
    let lift = plans.event_lift.collect().unwrap();
    let registry = Registry::embedded().unwrap();
    registry
        .get("mart.critical_path")
        .unwrap()
        .validate(&paths, "test")
        .unwrap();
    registry
        .get("mart.critical_event_lift")
        .unwrap()
        .validate(&lift, "test")
        .unwrap();

    let planted = scan(&lake, "truth.planted_paths").await.collect().unwrap();
    let planted: Vec<String> = strs(&planted, "path")[0]
        .split(PATH_SEPARATOR)
        .map(str::to_string)
        .collect();

    let top_prefixes = overall(&paths, Some("prefix"), 8);
    let top_paths = overall(&paths, Some("path"), 5);
    let top_events = overall(&lift, None, 8);
    println!(
        "seed {seed}: planted {planted:?}\ntop prefixes (overall):\n{}top full paths (overall):\n{}event lift (overall):\n{}",
        table(&top_prefixes, "path", "median_hours_to_convert"),
        table(&top_paths, "path", "median_hours_to_convert"),
        table(&top_events, "event", "conversion_rate_without"),
    );

    // The best prefix overall walks the planted path.
    let best = &strs(&top_prefixes, "path")[0];
    assert!(
        holds_in_order(best, &planted),
        "seed {seed}: top prefix {best:?} does not walk {planted:?}"
    );
    // Every planted step lifts conversion, and the planted steps rank above all others.
    let ranked = strs(&top_events, "event");
    let lifts: Vec<f64> = top_events
        .column("lift")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let last = planted.last().unwrap();
    assert_eq!(&ranked[0], last, "seed {seed}: event lift {ranked:?}");
    assert!(
        lifts[0] > 1.5,
        "seed {seed}: lift of {last} is {}",
        lifts[0]
    );
    for step in &planted {
        let i = ranked.iter().position(|e| e == step).unwrap_or(usize::MAX);
        assert!(
            i < planted.len(),
            "seed {seed}: {step} ranks {} in {ranked:?}",
            i + 1
        );
        assert!(
            lifts[i] > 1.1,
            "seed {seed}: lift of {step} is {}",
            lifts[i]
        );
    }

    // The features of the same world, for the record: buyers in the window among users who
    // reached the planted path's last step and those who did not.
    let features = user_features(events, installs, &{
        let mut p = ltv::features::FeatureParams::from_analysis(&config.analysis);
        p.path_steps = planted.clone();
        p
    })
    .unwrap()
    .collect()
    .unwrap();
    let reached = format!("reached_{last}");
    let by_walk = features
        .clone()
        .lazy()
        .filter(col("window_complete"))
        .group_by([col(reached.as_str())])
        .agg([
            len().alias("users"),
            col("purchases")
                .gt(lit(0u32))
                .cast(DataType::Float64)
                .mean()
                .alias("payer_share"),
        ])
        .sort([reached.as_str()], SortMultipleOptions::default())
        .collect()
        .unwrap();
    println!("seed {seed}: features {:?}\n{by_walk}", features.shape());
    assert!(features.height() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_path_ranks_first_seed_11() {
    planted_path_ranks_first(11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_path_ranks_first_seed_2027() {
    planted_path_ranks_first(2027).await;
}
