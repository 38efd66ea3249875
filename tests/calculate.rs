//! The calculate stage on a simulated world pulled through the local servers, cleansed and
//! processed: `ltv backtest` writes `mart.model_evaluation` and records its choice, reruns
//! replace rather than duplicate; `ltv predict` trains the horizons the history covers,
//! extrapolates (and flags) the one it does not, and saves artifacts that predict again
//! exactly and come out the same on a rerun.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::num::NonZeroU32;

use chrono::NaiveDate;
use ltv::calculate::{CalculateError, clean_inputs, run_backtest, run_predict, run_predict_since};
use ltv::cleanse::run_cleanse;
use ltv::config::{PipelineConfig, std_env};
use ltv::features::FeatureParams;
use ltv::lake::{DateRange, Lake};
use ltv::model::evaluate::{CHOICE_KEY, EvaluationParams, ModelChoice};
use ltv::model::fit::{ModelKind, rows};
use ltv::model::hurdle::HurdleParams;
use ltv::model::predict::{
    Basis, FittedModel, ModelArtifact, PredictParams, load_artifact, predict,
};
use ltv::process::run_process;
use ltv::schema::Registry;
use polars::prelude::*;

const DAYS: u32 = 24;
const USERS_PER_DAY: u32 = 600;

fn range() -> DateRange {
    let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    DateRange::new(from, from + chrono::Duration::days(i64::from(DAYS) - 1))
}

fn config() -> PipelineConfig {
    let mut config =
        PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "test", &std_env).unwrap();
    let mut sim = config.sim.clone().unwrap();
    sim.seed = 31;
    sim.days = NonZeroU32::new(DAYS).unwrap();
    sim.users_per_day = USERS_PER_DAY;
    config.sim = Some(sim);
    config
}

async fn clean_world(config: &PipelineConfig) -> Lake {
    let r = range();
    let lake = common::world::ingested_world(config, r).await;
    let c = run_cleanse(config, &lake, r, "test-cleanse").await.unwrap();
    assert!(!c.failed(), "{c}");
    let p = run_process(config, &lake, r, "test-process").await.unwrap();
    assert!(!p.failed(), "{p}");
    lake
}

/// A short world asks for short horizons: window 3 days, horizons 7 and 10, cohorts of 3
/// days, so that a 24-day history holds several scorable cutoffs.
fn evaluation(horizons: Vec<u32>) -> EvaluationParams {
    EvaluationParams {
        window_days: 3,
        horizons,
        cohort_days: 3,
        every_days: 2,
        max_cutoffs: 3,
        min_campaign_users: 20,
        hurdle: HurdleParams::default(),
        from: None,
        to: None,
    }
}

async fn evaluation_rows(lake: &Lake) -> DataFrame {
    let table = Registry::embedded()
        .unwrap()
        .get("mart.model_evaluation")
        .unwrap();
    lake.scan(table, DateRange::all())
        .await
        .unwrap()
        .sort(
            ["dt", "horizon_days", "model"],
            SortMultipleOptions::default(),
        )
        .collect()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_then_predict_on_a_simulated_world() {
    let config = config();
    let lake = clean_world(&config).await;

    // --- backtest at D7 -------------------------------------------------------------
    let out = run_backtest(&lake, &evaluation(vec![7]), "bt-1")
        .await
        .unwrap();
    print!("{out}");
    assert_eq!(out.partitions_written.len(), 3, "{out}");
    let models: Vec<ModelKind> = out.summaries.iter().map(|s| s.model).collect();
    assert!(models.contains(&ModelKind::Hurdle) && models.contains(&ModelKind::Multiplier));
    for s in &out.summaries {
        assert_eq!(s.cutoffs, 3, "{s:?}");
        assert!(s.campaign_mape.is_some_and(f64::is_finite), "{s:?}");
    }
    let chosen = out.choices[&7].model;
    let first = evaluation_rows(&lake).await;
    assert_eq!(first.height(), 3 * out.summaries.len());
    Registry::embedded()
        .unwrap()
        .get("mart.model_evaluation")
        .unwrap()
        .validate(&first, "all")
        .unwrap();
    // Exactly one chosen model per cutoff, the one the summary chose.
    let chosen_rows = first
        .clone()
        .lazy()
        .filter(col("chosen"))
        .collect()
        .unwrap();
    assert_eq!(chosen_rows.height(), 3);
    assert!(
        chosen_rows
            .column("model")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .all(|m| m == Some(chosen.name()))
    );
    let doc: ModelChoice = lake.read_state(CHOICE_KEY).await.unwrap().unwrap();
    assert_eq!(doc.for_window(3)[&7], chosen);

    // A rerun replaces its rows; another horizon's run adds beside them.
    run_backtest(&lake, &evaluation(vec![7]), "bt-2")
        .await
        .unwrap();
    let again = evaluation_rows(&lake).await;
    assert_eq!(again.height(), first.height());
    assert!(
        again
            .column("run_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .all(|r| r == Some("bt-2"))
    );
    let metrics = ["campaign_mape", "bias", "normalized_gini", "spearman"];
    assert!(
        again
            .select(metrics)
            .unwrap()
            .equals_missing(&first.select(metrics).unwrap()),
        "a rerun on the same data scores the same"
    );
    let ten = run_backtest(&lake, &evaluation(vec![10]), "bt-3")
        .await
        .unwrap();
    assert!(!ten.summaries.is_empty(), "{ten}");
    let both = evaluation_rows(&lake).await;
    let by_h = |h: u32| {
        both.clone()
            .lazy()
            .filter(col("horizon_days").eq(lit(h)))
            .collect()
            .unwrap()
            .height()
    };
    assert_eq!(by_h(7), first.height());
    assert!(by_h(10) > 0);
    let doc: ModelChoice = lake.read_state(CHOICE_KEY).await.unwrap().unwrap();
    assert_eq!(doc.for_window(3).len(), 2, "{doc:?}");

    // A horizon the history cannot score says how long it must be and writes nothing.
    let long = run_backtest(&lake, &evaluation(vec![30]), "bt-4")
        .await
        .unwrap();
    assert!(long.partitions_written.is_empty());
    assert!(
        long.skipped[0]
            .reason
            .contains("needs a history of at least"),
        "{long}"
    );

    // --- predict: D7 trained, D30 extrapolated --------------------------------------
    let features = FeatureParams {
        window_days: 3,
        horizons: vec![7, 30],
        ..FeatureParams::default()
    };
    let out = run_predict(&lake, PredictParams::new(features.clone()))
        .await
        .unwrap();
    print!("{out}");
    let [d7, d30] = &out.horizons[..] else {
        panic!("{:?}", out.horizons)
    };
    assert!(
        matches!(d7.basis, Basis::Trained { model, .. } if model == doc.for_window(3)[&7]),
        "{d7:?}"
    );
    let Basis::Extrapolated {
        from_days, ratio, ..
    } = d30.basis
    else {
        panic!("{d30:?}")
    };
    assert_eq!(from_days, 7);
    assert!(ratio > 1.0 && ratio < 20.0, "ratio {ratio}");
    let users = &out.predictions.users;
    assert!(users.height() > 5_000, "{}", users.height());
    let flags = |c: &str| users.column(c).unwrap().bool().unwrap().clone();
    assert!(!flags("extrapolated_d7").any());
    assert!(flags("extrapolated_d30").all());
    let ints = |c: &str| -> Vec<i64> {
        users
            .column(c)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    };
    let (window, p7, p30) = (
        ints("revenue_window_micros"),
        ints("pred_d7_micros"),
        ints("pred_d30_micros"),
    );
    for i in 0..window.len() {
        assert!(p7[i] >= window[i] && p30[i] >= p7[i], "user {i}");
    }
    assert!(
        out.campaigns
            .column("extrapolated_d30")
            .unwrap()
            .bool()
            .unwrap()
            .all()
    );

    // Predicted ROAS: paid campaigns have spend and a ROAS that is pLTV x users / spend;
    // organic traffic has neither.
    let campaigns = out.campaigns.clone().lazy();
    let paid = campaigns
        .clone()
        .filter(col("spend_micros").is_not_null())
        .collect()
        .unwrap();
    assert!(paid.height() >= 10, "{}", out.campaigns);
    for i in 0..paid.height() {
        let get = |c: &str| {
            paid.column(c)
                .unwrap()
                .cast(&DataType::Float64)
                .unwrap()
                .f64()
                .unwrap()
                .get(i)
                .unwrap()
        };
        let want = get("pltv_d7_micros") * get("users") / get("spend_micros");
        assert!((get("roas_d7") - want).abs() < 1e-9 * want.max(1.0));
        assert!(get("roas_d30") >= get("roas_d7"));
    }
    let organic = campaigns
        .filter(col("channel").eq(lit("organic")))
        .collect()
        .unwrap();
    assert!(organic.height() >= 1);
    assert_eq!(
        organic.column("roas_d7").unwrap().null_count(),
        organic.height()
    );

    // Artifacts: one per fitted model of the trained horizon, one for the extrapolated one.
    let end = out.data_end.date_naive();
    let mut keys = out.artifacts.clone();
    keys.sort();
    let mut want = vec![
        format!("models/{end}/hurdle_d7"),
        format!("models/{end}/multiplier_d7"),
    ];
    if keys.contains(&format!("models/{end}/btyd_d7")) {
        want.push(format!("models/{end}/btyd_d7"));
    }
    let d30_model = match &out.horizons[0].basis {
        Basis::Trained { model, .. } => *model,
        Basis::Extrapolated { .. } => unreachable!(),
    };
    want.push(format!("models/{end}/{d30_model}_d30"));
    want.sort();
    assert_eq!(keys, want);
    let hurdle: ModelArtifact = load_artifact(&lake, &format!("models/{end}/hurdle_d7"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hurdle.window_days, 3);
    let training = hurdle.training.as_ref().unwrap();
    assert!(training.users > 500 && training.payers > 30, "{training:?}");
    assert!(hurdle.features.iter().any(|f| f == "revenue_micros"));
    assert!(hurdle.metrics.as_ref().unwrap().normalized_gini.unwrap() > 0.0);
    let extrapolated: ModelArtifact =
        load_artifact(&lake, &format!("models/{end}/{d30_model}_d30"))
            .await
            .unwrap()
            .unwrap();
    assert!(extrapolated.curve.is_some() && extrapolated.fitted.is_none());

    // The saved hurdle predicts exactly what the run predicted (when it served D7).
    let Some(FittedModel::Hurdle(model)) = hurdle.fitted else {
        panic!("hurdle artifact without its model")
    };
    if d30_model == ModelKind::Hurdle {
        let (events, installs) = clean_inputs(&lake).await.unwrap();
        let frame = ltv::features::user_features(events, installs, &features)
            .unwrap()
            .filter(col("window_complete"))
            .collect()
            .unwrap();
        let r = rows(&model.design, &frame, None).unwrap();
        let again: Vec<i64> = model
            .predict(&r)
            .unwrap()
            .iter()
            .map(|p| p.round() as i64)
            .collect();
        assert_eq!(again, p7);
    }

    // A rerun on the same lake writes the same artifacts.
    let rerun = run_predict(&lake, PredictParams::new(features.clone()))
        .await
        .unwrap();
    assert_eq!(rerun.artifacts, out.artifacts);
    assert!(rerun.predictions.users.equals_missing(users));

    // The saved set predicts again without refitting, reading only the days from `since`:
    // the same numbers for every user as the fit gave.
    let again = run_predict_since(&lake, PredictParams::new(features.clone()), range().from)
        .await
        .unwrap()
        .expect("the refit saved its model set");
    assert_eq!(again.artifacts, out.artifacts);
    assert_same(&again.predictions.users, users);
    let since = range().from + chrono::Duration::days(12);
    let late = run_predict_since(&lake, PredictParams::new(features.clone()), since)
        .await
        .unwrap()
        .unwrap();
    let since_days = (since - NaiveDate::default()).num_days() as i32;
    let expected = users
        .clone()
        .lazy()
        .filter(
            col("install_date")
                .cast(DataType::Int32)
                .gt_eq(lit(since_days)),
        )
        .collect()
        .unwrap();
    assert!(expected.height() > 0 && expected.height() < users.height());
    assert_same(&late.predictions.users, &expected);
    // Other feature settings do not fit the saved set: the caller must refit.
    let other = FeatureParams {
        window_days: 4,
        ..features.clone()
    };
    assert!(
        run_predict_since(&lake, PredictParams::new(other), since)
            .await
            .unwrap()
            .is_none()
    );
    let reread: ModelArtifact = load_artifact(&lake, &format!("models/{end}/hurdle_d7"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&reread.training).unwrap(),
        serde_json::to_value(&hurdle.training).unwrap()
    );

    // Too little maturity anywhere: every horizon extrapolated from the window itself.
    let (events, installs) = clean_inputs(&lake).await.unwrap();
    let young = predict(
        events,
        installs,
        &PredictParams {
            min_training_users: usize::MAX,
            ..PredictParams::new(features)
        },
    )
    .unwrap();
    for h in &young.horizons {
        assert!(
            matches!(h.basis, Basis::Extrapolated { from_days: 3, .. }),
            "{h:?}"
        );
    }
}

/// Two prediction frames are equal; else the first column and row that differ.
fn assert_same(got: &DataFrame, want: &DataFrame) {
    assert_eq!(got.shape(), want.shape(), "{got}\n{want}");
    assert_eq!(got.get_column_names(), want.get_column_names());
    for name in want.get_column_names() {
        let (g, w) = (got.column(name).unwrap(), want.column(name).unwrap());
        if !g.equals_missing(w) {
            let row = (0..w.len())
                .find(|&i| g.get(i).unwrap() != w.get(i).unwrap())
                .unwrap_or(0);
            panic!(
                "column {name} differs first at row {row}: {:?} vs {:?} ({:?})",
                g.get(row).unwrap(),
                w.get(row).unwrap(),
                want.get_row(row).unwrap()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_lake_says_what_to_run_first() {
    let lake = Lake::open("memory://").unwrap();
    let err = run_backtest(&lake, &evaluation(vec![7]), "bt")
        .await
        .unwrap_err();
    assert!(matches!(err, CalculateError::NoData), "{err}");
    assert!(err.to_string().contains("ltv cleanse"), "{err}");
    let err = run_predict(&lake, PredictParams::new(FeatureParams::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no events"), "{err}");
}
