//! The whole job on a simulated world served by the local API servers: `ltv run` builds
//! every mart in the lake and publishes them to MySQL row for row; a run whose publish
//! failed resumes at publish without redoing the finished stages; a fresh rerun of the same
//! date gives identical marts; `ltv demo` runs end to end and its printed errors agree with
//! the marts and the simulator's truth.
//!
//! MySQL comes from `LTV_TEST_MYSQL_URL` (default root@127.0.0.1:3306); the test works in a
//! database of its own, dropped at the end. Under `CI=true` an unreachable server fails the
//! test; elsewhere the MySQL half is skipped with a note.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::NaiveDate;
use common::mysql::OwnDatabase;
use common::sum_i64;
use ltv::config::{PipelineConfig, Secret, std_env};
use ltv::ingest::http::RetryPolicy;
use ltv::lake::{DateRange, Lake};
use ltv::mart::{MART_TABLES, MysqlMart};
use ltv::pipeline::{DemoRequest, RunKind, RunRequest, Stage, StageStatus, run_demo, run_pipeline};
use ltv::schema::Registry;
use mysql_async::prelude::Queryable;
use polars::prelude::*;

const DAYS: u32 = 45;
const USERS_PER_DAY: u32 = 400;

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

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

fn run_date() -> NaiveDate {
    start() + chrono::Duration::days(i64::from(DAYS))
}

fn fast_retry(request: &mut RunRequest<'_>) {
    request.ingest.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
}

async fn simulated_lake(config: &PipelineConfig) -> Lake {
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(config.sim.as_ref().unwrap(), &lake)
        .await
        .unwrap();
    let days = ltv::ingest::sources::world_days(&lake)
        .await
        .unwrap()
        .unwrap();
    ltv::ingest::sources::drop_simulated_adison_files(config, &lake, days)
        .await
        .unwrap();
    lake
}

async fn lake_table(lake: &Lake, name: &str) -> DataFrame {
    let schema = Registry::embedded().unwrap().get(name).unwrap();
    lake.scan(schema, DateRange::all())
        .await
        .unwrap()
        .sort(schema.primary_key.clone(), SortMultipleOptions::default())
        .collect()
        .unwrap()
}

/// Every mart of the lake, without the backtest's run bookkeeping (a new backtest is a new
/// run, with its own id and time).
async fn marts(lake: &Lake) -> BTreeMap<&'static str, DataFrame> {
    let mut out = BTreeMap::new();
    for name in MART_TABLES {
        let mut df = lake_table(lake, name).await;
        if name == "mart.model_evaluation" {
            df = df.drop_many(["run_id", "evaluated_at"]);
        }
        out.insert(name, df);
    }
    out
}

fn done(status: Option<&StageStatus>) -> bool {
    matches!(status, Some(StageStatus::Done(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_run_publishes_resumes_and_reruns_identically() {
    // A 45-day history can backtest a 3-day window at D14, and train D30.
    let mut config = config(77);
    config.analysis.primary_observation_days = 3;
    config.analysis.horizons = vec![14, 30];
    let lake = simulated_lake(&config).await;
    let database = OwnDatabase::create("ltv_pipeline").await;

    // --- 1. MySQL unreachable: every stage but publish finishes, publish fails. --------
    let dead =
        |name: &str| (name == "LTV_MYSQL_URL").then(|| "mysql://root@127.0.0.1:1/test".to_string());
    let mut request = RunRequest::new(RunKind::Nightly { date: run_date() }, &dead);
    fast_retry(&mut request);
    let first = run_pipeline(&config, &lake, request).await.unwrap();
    print!("{first}");
    assert_eq!(
        first.from,
        start(),
        "the first run cleans the whole history"
    );
    assert_eq!(first.to, run_date() - chrono::Duration::days(1));
    for stage in [
        Stage::Ingest,
        Stage::Cleanse,
        Stage::Process,
        Stage::Calculate,
        Stage::Marts,
    ] {
        assert!(done(first.status(stage)), "{stage}: {first}");
    }
    let (failed, error) = first.failed().expect("publish must fail");
    assert_eq!(failed, Stage::Publish);
    assert!(error.contains("127.0.0.1:1"), "{error}");
    let marts_after_first = marts(&lake).await;
    let manifest_before = lake
        .manifest(
            Registry::embedded()
                .unwrap()
                .get("mart.campaign_daily")
                .unwrap(),
            start(),
        )
        .await
        .unwrap()
        .unwrap();

    // --- The marts hold what the clean layer and the predictions say. ------------------
    check_marts(&lake, &marts_after_first).await;

    // --- 2. Same date again with MySQL up: only publish runs. --------------------------
    let Some(database) = database else { return };
    let url = database.url();
    let live = move |name: &str| (name == "LTV_MYSQL_URL").then(|| url.clone());
    let mut request = RunRequest::new(RunKind::Nightly { date: run_date() }, &live);
    fast_retry(&mut request);
    let second = run_pipeline(&config, &lake, request).await.unwrap();
    print!("{second}");
    assert!(second.failed().is_none(), "{second}");
    for stage in [
        Stage::Ingest,
        Stage::Cleanse,
        Stage::Process,
        Stage::Calculate,
        Stage::Marts,
    ] {
        assert!(
            matches!(second.status(stage), Some(StageStatus::Skipped(_))),
            "{stage} must not run again: {second}"
        );
    }
    assert!(done(second.status(Stage::Publish)), "{second}");
    let manifest_after = lake
        .manifest(
            Registry::embedded()
                .unwrap()
                .get("mart.campaign_daily")
                .unwrap(),
            start(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        manifest_before.version, manifest_after.version,
        "marts were rewritten"
    );

    // --- MySQL holds the lake's marts row for row. --------------------------------------
    assert_mysql_holds_the_lake(&lake, &database.url()).await;

    // --- 3. A fresh rerun of the same date: identical marts, MySQL replaced not doubled.
    let url = database.url();
    let live = move |name: &str| (name == "LTV_MYSQL_URL").then(|| url.clone());
    let mut request = RunRequest::new(RunKind::Nightly { date: run_date() }, &live);
    fast_retry(&mut request);
    request.fresh = true;
    let third = run_pipeline(&config, &lake, request).await.unwrap();
    print!("{third}");
    assert!(third.failed().is_none(), "{third}");
    for stage in Stage::ALL {
        assert!(done(third.status(stage)), "{stage}: {third}");
    }
    let marts_after_third = marts(&lake).await;
    for (name, df) in &marts_after_first {
        let again = &marts_after_third[name];
        assert!(
            df.equals_missing(again),
            "{name} differs on a rerun of the same date\n{df}\n{again}"
        );
    }
    let mut mysql = MysqlMart::connect(&Secret::new(database.url()))
        .await
        .unwrap();
    let schema = Registry::embedded().unwrap().get("mart.user_ltv").unwrap();
    let rows = mysql.read_table(schema, DateRange::all()).await.unwrap();
    assert_eq!(rows.height(), marts_after_first["mart.user_ltv"].height());
    mysql.close().await.unwrap();

    // --- 4. The next night, with no new data: the saved models predict only the cohorts
    // near the run's days (older install dates keep their partitions), the critical paths
    // are kept, and every mart comes out the same.
    let user_ltv = Registry::embedded().unwrap().get("mart.user_ltv").unwrap();
    let first_day = lake.partitions(user_ltv).await.unwrap()[0];
    let old_cohort = lake.manifest(user_ltv, first_day).await.unwrap().unwrap();
    // That night's process covers a week (and the no-activity window) of a 45-day history,
    // so it joins the events to only the identifiers they meet: its clean rows must be the
    // ones the whole-history run wrote.
    let clean_tables = ["clean.events", "clean.user_daily", "clean.installs"];
    let mut clean_before = Vec::new();
    for name in clean_tables {
        clean_before.push(lake_table(&lake, name).await);
    }
    let next = run_date() + chrono::Duration::days(1);
    let mut request = RunRequest::new(RunKind::Nightly { date: next }, &std_env);
    request.stages = vec![
        Stage::Cleanse,
        Stage::Process,
        Stage::Calculate,
        Stage::Marts,
    ];
    let fourth = run_pipeline(&config, &lake, request).await.unwrap();
    print!("{fourth}");
    assert!(fourth.failed().is_none(), "{fourth}");
    let Some(StageStatus::Done(calculate)) = fourth.status(Stage::Calculate) else {
        panic!("{fourth}")
    };
    assert!(
        calculate.detail.contains("saved models"),
        "{}",
        calculate.detail
    );
    let still = lake.manifest(user_ltv, first_day).await.unwrap().unwrap();
    assert_eq!(
        old_cohort.version, still.version,
        "an old cohort's predictions were rewritten"
    );
    for (name, before) in clean_tables.iter().zip(&clean_before) {
        let after = lake_table(&lake, name).await;
        assert!(
            before.equals_missing(&after),
            "{name} differs after the next night's process"
        );
    }
    let marts_after_fourth = marts(&lake).await;
    for (name, df) in &marts_after_first {
        let again = &marts_after_fourth[name];
        assert!(
            df.equals_missing(again),
            "{name} differs the next night\n{df}\n{again}"
        );
    }

    // --- 5. Publish copies only what MySQL does not hold as the lake has it: after a night
    // whose marts came out the same (rewritten with the same bytes, so with the same
    // versions), nothing; after rows were deleted by hand, that one day.
    let publish = |database: &OwnDatabase| {
        let url = database.url();
        let config = config.clone();
        let lake = lake.clone();
        async move {
            let live = move |name: &str| (name == "LTV_MYSQL_URL").then(|| url.clone());
            let mut request = RunRequest::new(RunKind::Nightly { date: next }, &live);
            request.stages = vec![Stage::Publish];
            request.fresh = true;
            let report = run_pipeline(&config, &lake, request).await.unwrap();
            print!("{report}");
            match report.status(Stage::Publish) {
                Some(StageStatus::Done(done)) => done.detail.clone(),
                other => panic!("publish did not run: {other:?}\n{report}"),
            }
        }
    };
    let detail = publish(&database).await;
    assert!(detail.contains(": 0 partitions copied"), "{detail}");
    assert_mysql_holds_the_lake(&lake, &database.url()).await;
    let mut admin = mysql_async::Conn::from_url(database.url()).await.unwrap();
    admin
        .query_drop(format!(
            "DELETE FROM mart_user_ltv WHERE dt = '{first_day}' LIMIT 1"
        ))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    let detail = publish(&database).await;
    assert!(detail.contains(": 1 partitions copied"), "{detail}");
    assert_mysql_holds_the_lake(&lake, &database.url()).await;
}

/// Every mart in MySQL (at `url`) equals the lake's, row for row.
async fn assert_mysql_holds_the_lake(lake: &Lake, url: &str) {
    let mut mysql = MysqlMart::connect(&Secret::new(url.to_owned()))
        .await
        .unwrap();
    for name in MART_TABLES {
        let schema = Registry::embedded().unwrap().get(name).unwrap();
        let lake_rows = lake_table(lake, name).await;
        let db_rows = mysql
            .read_table(schema, DateRange::all())
            .await
            .unwrap()
            .sort(schema.primary_key.clone(), SortMultipleOptions::default())
            .unwrap();
        assert_eq!(db_rows.height(), lake_rows.height(), "{name}");
        assert!(lake_rows.height() > 0, "{name} is empty");
        assert!(
            db_rows.equals_missing(&lake_rows),
            "{name}: MySQL differs from the lake\n{db_rows}\n{lake_rows}"
        );
    }
    mysql.close().await.unwrap();
}

/// Totals of the marts against the clean layer and the predictions.
async fn check_marts(lake: &Lake, marts: &BTreeMap<&'static str, DataFrame>) {
    let daily = &marts["mart.campaign_daily"];
    let users = &marts["mart.user_ltv"];
    let clean_daily = lake_table(lake, "clean.campaign_daily").await;
    let clean_spend = clean_daily
        .clone()
        .lazy()
        .filter(col("is_test").not())
        .collect()
        .unwrap();
    assert_eq!(
        sum_i64(daily, "spend_micros"),
        sum_i64(&clean_spend, "spend_reporting_micros"),
        "every non-test spend lands in mart.campaign_daily once"
    );
    let installs = lake_table(lake, "clean.installs").await;
    let real = installs
        .clone()
        .lazy()
        .filter(
            col("is_first_install")
                .and(col("is_fraud").not())
                .and(col("is_test").not()),
        )
        .select([col("user_key")])
        .unique(None, UniqueKeepStrategy::First)
        .collect()
        .unwrap();
    assert_eq!(sum_i64(daily, "installs") as usize, real.height());
    // Revenue to date comes from `clean.user_daily`; it must be every real user's event
    // revenue, as the events themselves say.
    let events = lake_table(lake, "clean.events").await;
    let real_revenue = events
        .lazy()
        .join(
            real.clone().lazy(),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([col("revenue_reporting_micros").sum()])
        .collect()
        .unwrap();
    let real_revenue = sum_i64(&real_revenue, "revenue_reporting_micros");
    assert!(real_revenue > 0);
    assert_eq!(sum_i64(daily, "revenue_to_date_micros"), real_revenue);
    let fraud = installs
        .clone()
        .lazy()
        .filter(
            col("is_first_install")
                .and(col("is_fraud"))
                .and(col("is_test").not()),
        )
        .collect()
        .unwrap();
    assert!(fraud.height() > 0);
    assert_eq!(sum_i64(daily, "fraud_installs") as usize, fraud.height());
    assert_eq!(sum_i64(daily, "predicted_users") as usize, users.height());

    // pLTV per campaign-day is the sum of its users' predictions where complete.
    let per_day = users
        .clone()
        .lazy()
        .group_by([col("dt"), col("channel"), col("campaign_id")])
        .agg([len().alias("n"), col("pred_d30_micros").sum().alias("p30")])
        .join(
            daily.clone().lazy(),
            [col("dt"), col("channel"), col("campaign_id")],
            [col("dt"), col("channel"), col("campaign_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("pltv_d30_micros").is_not_null())
        .collect()
        .unwrap();
    assert!(per_day.height() > 20, "{per_day}");
    assert_eq!(
        sum_i64(&per_day, "p30"),
        sum_i64(&per_day, "pltv_d30_micros")
    );
    // Retention is a share, and null only for the last days.
    for name in ["retention_d1", "retention_d7"] {
        let r = daily.column(name).unwrap().f64().unwrap();
        assert!(r.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
        assert!(r.null_count() < daily.height());
    }
    // Channel summary totals equal campaign totals; every channel is there.
    let channels = &marts["mart.channel_summary"];
    assert_eq!(
        sum_i64(channels, "spend_micros"),
        sum_i64(daily, "spend_micros")
    );
    assert_eq!(sum_i64(channels, "installs"), sum_i64(daily, "installs"));
    assert!(sum_i64(channels, "impressions") > 0);
    // Cohort curves: actual revenue never falls with N and ends below revenue to date.
    let cohorts = &marts["mart.cohort_ltv"];
    let observed = cohorts
        .clone()
        .lazy()
        .filter(col("observed"))
        .sort(
            ["dt", "channel", "campaign_id", "day_n"],
            SortMultipleOptions::default(),
        )
        .collect()
        .unwrap();
    assert!(observed.height() > 100);
    let keys: Vec<String> = observed
        .column("dt")
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(
            observed
                .column("campaign_id")
                .unwrap()
                .str()
                .unwrap()
                .iter(),
        )
        .zip(observed.column("channel").unwrap().str().unwrap().iter())
        .map(|((d, c), ch)| format!("{d:?}{c:?}{ch:?}"))
        .collect();
    let rev: Vec<i64> = observed
        .column("actual_revenue_micros")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    for k in 1..rev.len() {
        if keys[k] == keys[k - 1] {
            assert!(rev[k] >= rev[k - 1], "cumulative revenue fell at row {k}");
        }
    }
    for name in [
        "mart.critical_path",
        "mart.critical_event_lift",
        "mart.data_quality",
        "mart.model_evaluation",
    ] {
        assert!(marts[name].height() > 0, "{name} is empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_end_to_end_and_its_errors_agree_with_the_marts() {
    let config = config(5);
    let lake = Lake::open("memory://").unwrap();
    let no_mysql = |_: &str| None;
    let out = run_demo(
        &config,
        &lake,
        DemoRequest {
            sim: config.sim.clone().unwrap(),
        },
        &no_mysql,
    )
    .await
    .unwrap();
    let printed = out.to_string();
    print!("{printed}");
    assert!(out.run.failed().is_none(), "{printed}");
    assert!(matches!(
        out.run.status(Stage::Publish),
        Some(StageStatus::NotConfigured { .. })
    ));
    assert_eq!(out.horizon_days, 90);
    assert!(out.campaigns.len() >= 15, "{printed}");

    // The truth, independently: user_key -> user -> true D90.
    let sim_installs = lake_table(&lake, "sim.installs").await;
    let truth = lake_table(&lake, "truth.users").await;
    let true_d90: HashMap<u64, i64> = truth
        .column("user_id")
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .zip(
            truth
                .column("revenue_d90_micros")
                .unwrap()
                .i64()
                .unwrap()
                .iter(),
        )
        .map(|(u, r)| (u.unwrap(), r.unwrap()))
        .collect();
    let user_of: HashMap<String, u64> = sim_installs
        .column("appsflyer_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(
            sim_installs
                .column("user_id")
                .unwrap()
                .u64()
                .unwrap()
                .iter(),
        )
        .map(|(a, u)| (a.unwrap().to_string(), u.unwrap()))
        .collect();
    let users = lake_table(&lake, "mart.user_ltv").await;
    let mut expected: HashMap<(String, String), (i64, i64, i64)> = HashMap::new();
    let ch = users.column("channel").unwrap().str().unwrap();
    let ca = users.column("campaign_id").unwrap().str().unwrap();
    let keys = users.column("user_key").unwrap().str().unwrap();
    let pred = users.column("pred_d90_micros").unwrap().i64().unwrap();
    for k in 0..users.height() {
        let e = expected
            .entry((ch.get(k).unwrap().into(), ca.get(k).unwrap().into()))
            .or_default();
        e.0 += 1;
        e.1 += pred.get(k).unwrap();
        e.2 += true_d90[&user_of[keys.get(k).unwrap()]];
    }
    let mut compared = 0;
    for c in &out.campaigns {
        let Some(&(n, p, t)) = expected.get(&(c.channel.clone(), c.campaign_id.clone())) else {
            assert_eq!(c.predicted_users, 0, "{c:?}");
            continue;
        };
        assert_eq!(
            (c.predicted_users, c.predicted_micros, c.true_micros),
            (n, p, t),
            "{c:?}"
        );
        let error = p as f64 / t as f64 - 1.0;
        assert!((c.error.unwrap() - error).abs() < 1e-12);
        // The printed line carries the same error.
        let line = printed
            .lines()
            .find(|l| l.starts_with(&c.channel) && l.contains(&format!(" {} ", c.campaign_id)))
            .unwrap();
        assert!(line.contains(&format!("{:+.1}%", error * 100.0)), "{line}");
        compared += 1;
    }
    assert_eq!(compared, expected.len());
    // Spend per campaign is the mart's.
    let daily = lake_table(&lake, "mart.campaign_daily").await;
    assert_eq!(
        out.campaigns.iter().map(|c| c.spend_micros).sum::<i64>(),
        sum_i64(&daily, "spend_micros")
    );
    // A demo of the demo's size is not wildly off.
    let ratio = out.total_ratio.unwrap();
    assert!((0.5..2.0).contains(&ratio), "predicted / true = {ratio}");
}
