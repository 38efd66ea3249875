//! The Meta connector against the local server's Graph API on a small simulated world:
//! sync paging and async report runs land every row of the world exactly once, faults end
//! in the same rows or a clean error, usage headers slow the connector down before Meta
//! blocks it, and a block is waited out for the time Meta names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use ltv::config::{CallBudget, MetaLevel, MetaSource, PipelineConfig, Secret, std_env};
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::connector::{Connector, PullContext, PullError, StreamSpec};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::meta::{MetaConnector, MetaTuning, key_field, table};
use ltv::ingest::money::exact_micros;
use ltv::ingest::state::StreamState;
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::serve::meta::{INSTALL, PURCHASE, WINDOWS, round_to_minor, world_accounts};
use ltv::sim::server::{Faults, MetaOptions, ServerOptions, SimServer, credentials};
use polars::prelude::*;
use serde_json::Value;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn world() -> (Lake, MetaSource) {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &std_env).unwrap();
    let mut sim = config.sim.clone().unwrap();
    sim.days = NonZeroU32::new(3).unwrap();
    sim.users_per_day = 300;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    let mut meta = config.sources.meta.clone().unwrap();
    // The world's account is the one the demo names; read it from the world all the same.
    meta.ad_account_ids = world_accounts(&lake).await.unwrap();
    assert_eq!(meta.ad_account_ids.len(), 1);
    (lake, meta)
}

async fn start(lake: &Lake, faults: Faults, meta: MetaOptions) -> SimServer {
    SimServer::start(
        lake.clone(),
        ServerOptions {
            faults,
            meta,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn tuning(page_limit: u32) -> MetaTuning {
    MetaTuning {
        slow_down_above_pct: Some(75.0),
        slow_down: Duration::from_millis(200),
        minute: Duration::from_millis(700),
        max_block_wait: Duration::from_secs(5),
        page_limit,
        poll_interval: Duration::from_millis(10),
        stuck_after_polls: 3,
        max_run_restarts: 2,
    }
}

fn connector(meta: &MetaSource, server: &SimServer, token: &str, t: MetaTuning) -> MetaConnector {
    MetaConnector::new(meta, &server.url("meta"), Secret::new(token))
        .unwrap()
        .with_tuning(t)
}

fn stream(c: &MetaConnector, level: MetaLevel) -> StreamSpec {
    let name = format!("meta.insights_{}", level.name());
    c.streams().iter().find(|s| s.name == name).unwrap().clone()
}

struct Ctx {
    client: reqwest::Client,
    budget: Arc<SourceBudget>,
    history: StreamState,
}

impl Ctx {
    async fn new(lake: &Lake) -> Ctx {
        Ctx {
            client: reqwest::Client::new(),
            budget: SourceBudget::load(lake, "meta", CallBudget::default())
                .await
                .unwrap(),
            history: StreamState::default(),
        }
    }

    fn get(&self) -> PullContext<'_> {
        PullContext {
            client: &self.client,
            budget: self.budget.clone(),
            policy: quick(),
            history: &self.history,
            timeout: Duration::from_secs(30),
            pulled_at: Utc::now(),
        }
    }
}

/// What a level's rows add up to, from the world or from what landed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    rows: usize,
    spend_micros: i64,
    impressions: i64,
    clicks: i64,
    installs: i64,
    view_installs: i64,
    purchases: [i64; 4],
    values: [i64; 4],
}

/// The world's totals of one day at a level: `sim.ad_daily` summed per level key, money
/// rounded per row to the cent as Meta reports it.
async fn expected(lake: &Lake, level: MetaLevel, d: NaiveDate) -> Totals {
    let key = key_field(level).unwrap_or("account_id");
    let mut aggs = vec![
        col("spend_micros").sum(),
        col("impressions").sum(),
        col("clicks").sum(),
        col("installs").sum(),
        col("view_installs").sum(),
        col("currency").first(),
    ];
    for w in WINDOWS {
        aggs.push(col(format!("purchases_{w}")).sum());
        aggs.push(col(format!("purchase_value_{w}_micros")).sum());
    }
    let t = Registry::embedded()
        .unwrap()
        .get("sim.ad_daily")
        .unwrap()
        .clone();
    let df = lake
        .scan(&t, DateRange::day(d))
        .await
        .unwrap()
        .filter(col("channel").eq(lit("facebook")))
        .group_by([col(key)])
        .agg(aggs)
        .collect()
        .unwrap();
    let ints = |n: &str| -> Vec<i64> {
        df.column(n)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    };
    let currency: Vec<String> = df
        .column("currency")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    let sum = |n: &str| ints(n).iter().sum::<i64>();
    let rounded = |n: &str| {
        ints(n)
            .iter()
            .zip(&currency)
            .map(|(m, c)| round_to_minor(*m, c))
            .sum::<i64>()
    };
    Totals {
        rows: df.height(),
        spend_micros: rounded("spend_micros"),
        impressions: sum("impressions"),
        clicks: sum("clicks"),
        installs: sum("installs"),
        view_installs: sum("view_installs"),
        purchases: WINDOWS.map(|w| sum(&format!("purchases_{w}"))),
        values: WINDOWS.map(|w| rounded(&format!("purchase_value_{w}_micros"))),
    }
}

fn action_sum(list: Option<&str>, action_type: &str, window: &str) -> i64 {
    let Some(text) = list else { return 0 };
    let v: Value = serde_json::from_str(text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action_type"] == action_type)
        .filter_map(|a| a.get(window).and_then(Value::as_str))
        .map(|s| exact_micros(s).unwrap())
        .sum()
}

/// What landed adds up to, after checking the frame against the table's schema and that
/// every (account, day, id) is there once.
fn landed(df: &DataFrame, level: MetaLevel, d: NaiveDate) -> Totals {
    Registry::embedded()
        .unwrap()
        .get(table(level))
        .unwrap()
        .validate(df, &format!("dt={d}"))
        .unwrap();
    let key = key_field(level).unwrap_or("account_id");
    let keys: std::collections::HashSet<Option<&str>> =
        df.column(key).unwrap().str().unwrap().iter().collect();
    assert_eq!(keys.len(), df.height(), "a row landed twice");
    let ints = |n: &str| {
        df.column(n)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .sum::<i64>()
    };
    let texts = |n: &str| -> Vec<Option<String>> {
        df.column(n)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    let (actions, values) = (texts("actions"), texts("action_values"));
    let total = |list: &[Option<String>], t: &str, w: &str| {
        list.iter()
            .map(|a| action_sum(a.as_deref(), t, w))
            .sum::<i64>()
    };
    Totals {
        rows: df.height(),
        spend_micros: ints("spend_micros"),
        impressions: ints("impressions"),
        clicks: ints("clicks"),
        installs: total(&actions, INSTALL, "1d_click") / 1_000_000,
        view_installs: total(&actions, INSTALL, "1d_view") / 1_000_000,
        purchases: WINDOWS.map(|w| total(&actions, PURCHASE, w) / 1_000_000),
        values: WINDOWS.map(|w| total(&values, PURCHASE, w)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_paging_lands_every_row_once_at_every_level() {
    let (lake, meta) = world().await;
    let server = start(&lake, Faults::default(), MetaOptions::default()).await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(3));
    let ctx = Ctx::new(&lake).await;
    let d = day("2026-01-02");
    let mut total_calls = 0;
    for level in [MetaLevel::Campaign, MetaLevel::Adset, MetaLevel::Ad] {
        let want = expected(&lake, level, d).await;
        assert!(
            want.rows > 3,
            "{level:?}: the world must need several pages"
        );
        let pulled = c.pull(&ctx.get(), &stream(&c, level), d).await.unwrap();
        assert_eq!(pulled.frames.len(), 1);
        assert_eq!(landed(&pulled.frames[0], level, d), want, "{level:?}");
        // One call per page of three rows, no retries.
        assert_eq!(pulled.calls as usize, want.rows.div_ceil(3), "{level:?}");
        assert_eq!(pulled.retries, 0);
        total_calls += pulled.calls;
        // The plan for the next day, from this one's rows, covers what it took.
        let mut history = StreamState::default();
        history.landed(d, Utc::now(), want.rows as u64, pulled.calls);
        let plan = c.plan(&stream(&c, level), day("2026-01-03"), &history);
        assert!(plan[0].calls >= pulled.calls, "{plan:?}");
    }
    assert_eq!(server.requests("meta/insights"), total_calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_the_same_rows_or_a_clean_error() {
    let (lake, meta) = world().await;
    let d = day("2026-01-02");
    let want = expected(&lake, MetaLevel::Ad, d).await;
    let faults = Faults {
        throttle: 1,
        server_errors: 1,
        truncated: 1,
        ..Faults::default()
    };
    let server = start(&lake, faults, MetaOptions::default()).await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(500));
    let ctx = Ctx::new(&lake).await;
    let started = Instant::now();
    let pulled = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap();
    assert_eq!(landed(&pulled.frames[0], MetaLevel::Ad, d), want);
    // A block (80000, regain 1 minute), a 500, a cut body, then the page.
    assert_eq!((pulled.calls, pulled.retries), (4, 3));
    assert!(
        started.elapsed() >= tuning(500).minute,
        "the block was waited out"
    );

    // A broken value fails cleanly, naming the field; no token in the message.
    let server = start(
        &lake,
        Faults {
            malformed: 1,
            ..Faults::default()
        },
        MetaOptions::default(),
    )
    .await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(500));
    let err = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PullError::Parse(ref p) if p.column.as_deref() == Some("spend") && p.row == Some(1)),
        "{msg}"
    );
    assert!(!msg.contains(credentials::META_ACCESS_TOKEN), "{msg}");

    // A block longer than a run waits defers the pull.
    let server = start(
        &lake,
        Faults {
            daily_quota: Some(0),
            ..Faults::default()
        },
        MetaOptions::default(),
    )
    .await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(500));
    let err = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap_err();
    assert!(err.is_deferral(), "{err}");
    assert!(!err.to_string().contains(credentials::META_ACCESS_TOKEN));

    // A wrong token and an account Meta does not know are fatal, and say why.
    let server = start(&lake, Faults::default(), MetaOptions::default()).await;
    let wrong = "EAAGwrongTokenValue123";
    let c = connector(&meta, &server, wrong, tuning(500));
    let err = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("190") && !err.contains(wrong), "{err}");
    let mut other = meta.clone();
    other.ad_account_ids = vec!["act_9999999999".into()];
    let c = connector(&other, &server, credentials::META_ACCESS_TOKEN, tuning(500));
    let err = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not exist") && !err.contains(credentials::META_ACCESS_TOKEN),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_runs_land_every_day_once_and_stuck_runs_are_restarted() {
    let (lake, mut meta) = world().await;
    // Ranges longer than one day go through report runs.
    meta.async_threshold_days = NonZeroU32::new(1).unwrap();
    let server = start(
        &lake,
        Faults::default(),
        MetaOptions {
            stuck_runs: 1,
            ..MetaOptions::default()
        },
    )
    .await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(4));
    let ctx = Ctx::new(&lake).await;
    let (from, to) = (day("2026-01-01"), day("2026-01-03"));
    let range = c
        .pull_range(&ctx.get(), &stream(&c, MetaLevel::Ad), from, to)
        .await
        .unwrap();
    // The first run never moved past 10%; it was started again once.
    assert_eq!(range.runs, 2);
    assert_eq!(server.requests("meta/runs"), 2);
    assert_eq!(range.days.len(), 3);
    let mut rows = 0;
    for (d, frame) in &range.days {
        assert_eq!(
            landed(frame, MetaLevel::Ad, *d),
            expected(&lake, MetaLevel::Ad, *d).await,
            "{d}"
        );
        rows += frame.height();
    }
    assert!(rows > 4, "the run's results took several pages");
    assert!(server.requests("meta/insights") as usize >= rows.div_ceil(4));

    // Within the threshold the same range is read with sync pages, to the same rows.
    let mut sync = meta.clone();
    sync.async_threshold_days = NonZeroU32::new(7).unwrap();
    let c = connector(&sync, &server, credentials::META_ACCESS_TOKEN, tuning(4));
    let by_sync = c
        .pull_range(&ctx.get(), &stream(&c, MetaLevel::Ad), from, to)
        .await
        .unwrap();
    assert_eq!(by_sync.runs, 0);
    assert_eq!(server.requests("meta/runs"), 2, "no run for a short range");
    for (d, frame) in &by_sync.days {
        assert_eq!(
            landed(frame, MetaLevel::Ad, *d),
            landed(&range.days[d], MetaLevel::Ad, *d),
            "{d}"
        );
    }

    // A run that fails is started again too.
    let server = start(
        &lake,
        Faults::default(),
        MetaOptions {
            failed_runs: 1,
            ..MetaOptions::default()
        },
    )
    .await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(4));
    let again = c
        .pull_range(&ctx.get(), &stream(&c, MetaLevel::Ad), from, to)
        .await
        .unwrap();
    assert_eq!((again.runs, server.requests("meta/runs")), (2, 2));
    for (d, frame) in &again.days {
        assert_eq!(
            landed(frame, MetaLevel::Ad, *d),
            expected(&lake, MetaLevel::Ad, *d).await,
            "{d}"
        );
    }

    // A run that never finishes ends in a clean error once the restarts are spent.
    let server = start(
        &lake,
        Faults::default(),
        MetaOptions {
            stuck_runs: 100,
            ..MetaOptions::default()
        },
    )
    .await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(4));
    let err = c
        .pull_range(&ctx.get(), &stream(&c, MetaLevel::Ad), from, to)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("gave up after 2 restarts"), "{err}");
    assert_eq!(server.requests("meta/runs"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_headers_slow_the_connector_down_before_meta_blocks_it() {
    let (lake, meta) = world().await;
    let d = day("2026-01-02");
    let want = expected(&lake, MetaLevel::Ad, d).await;
    let metering = MetaOptions {
        usage_per_call_pct: 25.0,
        usage_window: Duration::from_millis(600),
        regain_minutes: 1,
        ..MetaOptions::default()
    };
    let ctx = Ctx::new(&lake).await;

    // Paced: pauses from 75% on, and is never blocked.
    let server = start(&lake, Faults::default(), metering.clone()).await;
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, tuning(2));
    let pulled = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap();
    assert_eq!(landed(&pulled.frames[0], MetaLevel::Ad, d), want);
    assert!(
        pulled.calls >= 6,
        "enough pages to run usage up: {}",
        pulled.calls
    );
    let (pauses, paused) = c.pauses();
    assert!(
        pauses >= 1 && paused >= Duration::from_millis(200),
        "{pauses} {paused:?}"
    );
    assert_eq!(
        server.requests("meta/blocked"),
        0,
        "the paced connector was blocked"
    );
    assert_eq!(pulled.retries, 0);

    // Unpaced: Meta blocks it, and each block is waited out for the regain time it names.
    let server = start(&lake, Faults::default(), metering).await;
    let unpaced = MetaTuning {
        slow_down_above_pct: None,
        ..tuning(2)
    };
    let c = connector(&meta, &server, credentials::META_ACCESS_TOKEN, unpaced);
    let started = Instant::now();
    let pulled = c
        .pull(&ctx.get(), &stream(&c, MetaLevel::Ad), d)
        .await
        .unwrap();
    assert_eq!(landed(&pulled.frames[0], MetaLevel::Ad, d), want);
    let blocks = server.requests("meta/blocked");
    assert!(blocks >= 1, "an unpaced client must meet a block");
    assert_eq!(pulled.retries, blocks);
    assert!(
        started.elapsed() >= unpaced.minute * blocks,
        "blocks were not waited out"
    );
}
