//! `cargo bench --bench backtest`: the LTV models judged on simulated worlds, and what
//! training and predicting cost at a million users.
//!
//! **Backtest table.** For each of five seeds the models were never tuned on, a world of
//! `LTV_BENCH_BACKTEST_DAYS` days (default 210) × `LTV_BENCH_BACKTEST_USERS` installs a day
//! (default 2,000) is simulated and read as a perfect cleanse would leave it
//! (`sim::clean_view`); `ltv backtest`'s evaluation then predicts D90 from 7 days of
//! behaviour at the two latest scorable cutoffs, 28-day install cohorts, and scores
//! campaigns with at least 1,000 scored installs. Per model: campaign MAPE, bias, normalized
//! Gini and decile MAPE, per seed and over the seeds.
//!
//! **Scale.** A world of `LTV_BENCH_PREDICT_USERS` installs a day (default 10,000) over
//! `LTV_BENCH_PREDICT_DAYS` days (default 100): one million users. `model::predict::predict`
//! at D30 and D90 (features, fits on every mature user, predictions for every user with a
//! complete window) is timed end to end, and the hurdle fit and its predictions alone.
//!
//! Results go to `benches/results/backtest.json`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use ltv::config::{PipelineConfig, SimConfig, std_env};
use ltv::features::{FeatureParams, user_features};
use ltv::lake::{DateRange, Lake};
use ltv::model::evaluate::{EvaluationParams, History, Summary, evaluate};
use ltv::model::fit::{ModelKind, fit_user_models, mature_column, rows};
use ltv::model::hurdle::HurdleParams;
use ltv::model::predict::{PredictParams, predict};
use ltv::schema::Registry;
use ltv::sim::clean_view::clean_view;
use polars::prelude::*;
use serde_json::{Value, json};

const SEEDS: [u64; 5] = [1101, 2202, 3303, 4404, 5505];
const MIN_CAMPAIGN_USERS: usize = 1000;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sim_config(seed: u64, days: u32, users_per_day: u32) -> SimConfig {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "bench", &std_env).unwrap();
    SimConfig {
        seed,
        days: NonZeroU32::new(days).unwrap(),
        users_per_day,
        ..config.sim.unwrap()
    }
}

/// The simulated world as the models see it (events, installs), the truth's users, and the
/// seconds it took.
fn world(rt: &tokio::runtime::Runtime, sim: &SimConfig) -> (LazyFrame, LazyFrame, DataFrame, f64) {
    let started = Instant::now();
    let lake = Lake::open("memory://").unwrap();
    rt.block_on(ltv::sim::simulate(sim, &lake)).unwrap();
    let view = rt.block_on(clean_view(&lake)).unwrap();
    let registry = Registry::embedded().unwrap();
    let truth = rt
        .block_on(lake.scan(registry.get("truth.users").unwrap(), DateRange::all()))
        .unwrap()
        .filter(col("is_test").not().and(col("fraud_kind").is_null()))
        .select([
            col("dt"),
            col("channel"),
            col("campaign_id"),
            col("expected_revenue_d90_micros").cast(DataType::Float64),
            col("revenue_d90_micros").cast(DataType::Float64),
        ])
        .collect()
        .unwrap();
    // Materialise once so the timings below measure the models, not the simulator's tables.
    let events = view.events.collect().unwrap().lazy();
    let installs = view.installs.collect().unwrap().lazy();
    (events, installs, truth, started.elapsed().as_secs_f64())
}

/// A reference for the campaign MAPE: each scored user's *true expected* D90 revenue at
/// install (the simulator's, given their latent traits, before any behaviour is seen)
/// against what they realised, over the same cohorts (installs in `[c − K − C, c − K)`) and
/// campaigns of at least `min_users` genuine installs. Its error is the luck of who turned
/// out a whale. The models see the first K days' realised revenue, which that luck has
/// already partly revealed, so they can come out below it; it says how much of the error
/// is noise in the campaigns' outcomes, not how well any model could do.
fn install_time_truth(
    truth: &DataFrame,
    cutoffs: &[NaiveDate],
    window: u32,
    cohort: u32,
    min_users: usize,
) -> Option<f64> {
    let per_cutoff = cutoffs.iter().filter_map(|c| {
        let to = *c - chrono::Duration::days(i64::from(window));
        let from = to - chrono::Duration::days(i64::from(cohort));
        let day = |d: NaiveDate| {
            lit((d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32)
        };
        let df = truth
            .clone()
            .lazy()
            .filter(
                col("dt")
                    .cast(DataType::Int32)
                    .gt_eq(day(from))
                    .and(col("dt").cast(DataType::Int32).lt(day(to))),
            )
            .filter(col("campaign_id").is_not_null())
            .group_by([col("channel"), col("campaign_id")])
            .agg([
                len().alias("users"),
                col("expected_revenue_d90_micros").sum().alias("expected"),
                col("revenue_d90_micros").sum().alias("actual"),
            ])
            .filter(
                col("users")
                    .gt_eq(lit(min_users as u32))
                    .and(col("actual").gt(lit(0.0))),
            )
            .select([((col("expected") - col("actual")).abs() / col("actual"))
                .mean()
                .alias("mape")])
            .collect()
            .unwrap();
        df.column("mape").unwrap().f64().unwrap().get(0)
    });
    mean(per_cutoff.map(Some))
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn backtests(rt: &tokio::runtime::Runtime) -> Value {
    let days = env_u32("LTV_BENCH_BACKTEST_DAYS", 210);
    let users = env_u32("LTV_BENCH_BACKTEST_USERS", 2000);
    let params = EvaluationParams {
        window_days: 7,
        horizons: vec![90],
        cohort_days: 28,
        every_days: 14,
        max_cutoffs: 2,
        min_campaign_users: MIN_CAMPAIGN_USERS,
        hurdle: HurdleParams::default(),
        from: None,
        to: None,
    };
    let mut per_seed = Vec::new();
    let mut all: Vec<Summary> = Vec::new();
    let mut references: Vec<Option<f64>> = Vec::new();
    println!(
        "D90 from D7, {days} days x {users} installs/day, campaigns >= {MIN_CAMPAIGN_USERS} installs"
    );
    println!(
        "{:>6} {:<17} {:>8} {:>9} {:>7} {:>7} {:>11} {:>9}",
        "seed", "model", "cutoffs", "campaigns", "MAPE", "bias", "norm. Gini", "dec. MAPE"
    );
    for seed in SEEDS {
        let (events, installs, truth, sim_seconds) = world(rt, &sim_config(seed, days, users));
        let history = History::of(events.clone(), installs.clone())
            .unwrap()
            .unwrap();
        let started = Instant::now();
        let evaluation =
            evaluate(events, installs, &history, &params, "bench", Utc::now()).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        for s in &evaluation.skipped {
            println!(
                "seed {seed}: skipped D{} at {:?}: {}",
                s.horizon_days, s.cutoff, s.reason
            );
        }
        let campaigns = |m: ModelKind| {
            evaluation
                .scores
                .iter()
                .filter(|s| s.model == m)
                .map(|s| s.scored_campaigns)
                .min()
                .unwrap_or(0)
        };
        for s in &evaluation.summaries {
            println!(
                "{seed:>6} {:<17} {:>8} {:>9} {:>7} {:>7} {:>11} {:>9}",
                s.model.name(),
                s.cutoffs,
                campaigns(s.model),
                fmt(s.campaign_mape),
                fmt(s.bias),
                fmt(s.normalized_gini),
                fmt(s.decile_mape)
            );
        }
        let cutoffs: Vec<NaiveDate> = evaluation
            .scores
            .iter()
            .filter(|s| s.model == ModelKind::Hurdle)
            .map(|s| s.cutoff)
            .collect();
        let reference = install_time_truth(
            &truth,
            &cutoffs,
            params.window_days,
            params.cohort_days,
            MIN_CAMPAIGN_USERS,
        );
        references.push(reference);
        println!(
            "{seed:>6} {:<17} {:>8} {:>9} {:>7}",
            "E[LTV] at install",
            cutoffs.len(),
            "",
            fmt(reference)
        );
        per_seed.push(json!({
            "seed": seed,
            "install_time_truth_campaign_mape": reference,
            "simulate_seconds": sim_seconds,
            "backtest_seconds": seconds,
            "scores": evaluation.scores,
            "summaries": evaluation.summaries,
            "chosen": evaluation.choices.get(&90).map(|c| c.model),
        }));
        all.extend(evaluation.summaries);
    }
    let mut overall = Vec::new();
    println!("over {} seeds:", SEEDS.len());
    for model in ModelKind::ALL {
        let of =
            |f: fn(&Summary) -> Option<f64>| mean(all.iter().filter(|s| s.model == model).map(f));
        let row = json!({
            "model": model,
            "campaign_mape": of(|s| s.campaign_mape),
            "bias": of(|s| s.bias),
            "normalized_gini": of(|s| s.normalized_gini),
            "decile_mape": of(|s| s.decile_mape),
            "spearman": of(|s| s.spearman),
        });
        println!(
            "{:>6} {:<17} {:>8} {:>9} {:>7} {:>7} {:>11} {:>9}",
            "all",
            model.name(),
            "",
            "",
            fmt(of(|s| s.campaign_mape)),
            fmt(of(|s| s.bias)),
            fmt(of(|s| s.normalized_gini)),
            fmt(of(|s| s.decile_mape))
        );
        overall.push(row);
    }
    let reference = mean(references.into_iter());
    println!(
        "{:>6} {:<17} {:>8} {:>9} {:>7}",
        "all",
        "E[LTV] at install",
        "",
        "",
        fmt(reference)
    );
    json!({
        "world_days": days,
        "installs_per_day": users,
        "install_time_truth_campaign_mape": reference,
        "window_days": params.window_days,
        "horizon_days": 90,
        "cohort_days": params.cohort_days,
        "cutoffs_per_seed": params.max_cutoffs,
        "min_campaign_users": MIN_CAMPAIGN_USERS,
        "seeds": per_seed,
        "over_seeds": overall,
    })
}

fn scale(rt: &tokio::runtime::Runtime) -> Value {
    let days = env_u32("LTV_BENCH_PREDICT_DAYS", 100);
    let users = env_u32("LTV_BENCH_PREDICT_USERS", 10_000);
    let (events, installs, _, sim_seconds) = world(rt, &sim_config(77, days, users));
    let features = FeatureParams {
        window_days: 7,
        horizons: vec![30, 90],
        ..FeatureParams::default()
    };

    let started = Instant::now();
    let predictions = predict(
        events.clone(),
        installs.clone(),
        &PredictParams::new(features.clone()),
    )
    .unwrap();
    let predict_seconds = started.elapsed().as_secs_f64();
    let predicted_users = predictions.users.height();

    // The pieces: the feature plan, then the D90 hurdle's fit and its predictions.
    let started = Instant::now();
    let frame = user_features(events, installs, &features)
        .unwrap()
        .collect()
        .unwrap();
    let features_seconds = started.elapsed().as_secs_f64();
    let train = frame
        .clone()
        .lazy()
        .filter(col(mature_column(90).as_str()))
        .collect()
        .unwrap();
    let started = Instant::now();
    let models = fit_user_models(&train, 90, &HurdleParams::default()).unwrap();
    let fit_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let x = rows(&models.hurdle.design, &frame, None).unwrap();
    let predicted = models.hurdle.predict(&x).unwrap();
    let hurdle_predict_seconds = started.elapsed().as_secs_f64();

    println!(
        "{} users ({} with a complete window, {} mature at D90): simulate+view {sim_seconds:.1} s; \
         predict() at D30 and D90 {predict_seconds:.1} s; of which features {features_seconds:.1} s, \
         D90 hurdle+multiplier fit {fit_seconds:.1} s, D90 hurdle predictions for {} users {hurdle_predict_seconds:.2} s",
        frame.height(),
        predicted_users,
        train.height(),
        predicted.len()
    );
    json!({
        "world_days": days,
        "installs_per_day": users,
        "users": frame.height(),
        "predicted_users": predicted_users,
        "training_users_d90": train.height(),
        "simulate_seconds": sim_seconds,
        "predict_seconds": predict_seconds,
        "features_seconds": features_seconds,
        "fit_d90_seconds": fit_seconds,
        "hurdle_predict_seconds": hurdle_predict_seconds,
        "horizons": predictions.horizons,
    })
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backtest = backtests(&rt);
    let scale = scale(&rt);
    let result = json!({
        "backtest_d90_from_d7": backtest,
        "one_million_users": scale,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/backtest.json");
    std::fs::write(out, text + "\n").unwrap();
}
