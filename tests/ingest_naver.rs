//! The Naver connector against the local server on a small simulated world: a day's
//! statistics equal the world's through throttling, 5xx and cut bodies; broken answers and
//! refused credentials end in clean errors without secrets; and the server checks request
//! signatures exactly as Naver documents them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use ltv::config::{CallBudget, NaverSource, PipelineConfig, Secret, std_env};
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::connector::{Connector, PullContext, PullError};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::naver::sign::signature;
use ltv::ingest::naver::{NaverConnector, TABLE};
use ltv::ingest::state::StreamState;
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::serve::naver::{whole_won, world_campaigns, world_customers};
use ltv::sim::server::{Faults, ServerOptions, SimServer, credentials};
use polars::prelude::*;

const DAY: &str = "2026-01-02";

async fn world() -> (Lake, NaverSource) {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &std_env).unwrap();
    let mut sim = config.sim.clone().unwrap();
    sim.days = NonZeroU32::new(3).unwrap();
    sim.users_per_day = 300;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    let mut naver = config.sources.naver.clone().unwrap();
    // The demo names customer 1000001; the world draws its own from the seed.
    let customers = world_customers(&lake).await.unwrap();
    assert_eq!(customers.len(), 1);
    naver.customer_id = customers[0].parse().unwrap();
    (lake, naver)
}

async fn start(lake: &Lake, faults: Faults) -> SimServer {
    SimServer::start(
        lake.clone(),
        ServerOptions {
            faults,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

fn connector(naver: &NaverSource, server: &SimServer, secret: &str) -> NaverConnector {
    NaverConnector::new(
        naver,
        &server.url("naver"),
        Secret::new(credentials::NAVER_API_KEY),
        Secret::new(secret),
    )
    .unwrap()
}

async fn pull(
    lake: &Lake,
    c: &NaverConnector,
) -> Result<ltv::ingest::connector::Pulled, PullError> {
    let client = reqwest::Client::new();
    let budget = SourceBudget::load(lake, "naver", CallBudget::default())
        .await
        .unwrap();
    let history = StreamState::default();
    let ctx = PullContext {
        client: &client,
        budget,
        policy: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        history: &history,
        timeout: Duration::from_secs(30),
        pulled_at: Utc::now(),
    };
    let stream = c.streams()[0].clone();
    c.pull(&ctx, &stream, DAY.parse().unwrap()).await
}

/// The world's Naver campaign days: (campaign, name) → (impressions, clicks, whole-won
/// spend, conversions, whole-won conversion value).
async fn expected(lake: &Lake) -> HashMap<String, (Option<String>, [i64; 5])> {
    let reg = Registry::embedded().unwrap();
    let day: NaiveDate = DAY.parse().unwrap();
    let daily = lake
        .scan(reg.get("sim.ad_daily").unwrap(), DateRange::day(day))
        .await
        .unwrap()
        .filter(col("channel").eq(lit("naver")))
        .group_by([col("campaign_id")])
        .agg([
            col("impressions").sum(),
            col("clicks").sum(),
            col("spend_micros").sum(),
            (col("installs") + col("purchases_7d_click"))
                .sum()
                .alias("conversions"),
            col("purchase_value_7d_click_micros").sum().alias("value"),
        ]);
    let names = lake
        .scan(reg.get("sim.campaigns").unwrap(), DateRange::all())
        .await
        .unwrap()
        .filter(col("channel").eq(lit("naver")))
        .group_by([col("campaign_id")])
        .agg([col("campaign_name").first()]);
    let df = daily
        .left_join(names, col("campaign_id"), col("campaign_id"))
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
    let (imp, clk, spend, conv, value) = (
        ints("impressions"),
        ints("clicks"),
        ints("spend_micros"),
        ints("conversions"),
        ints("value"),
    );
    let ids = df.column("campaign_id").unwrap().str().unwrap().clone();
    let nm = df.column("campaign_name").unwrap().str().unwrap().clone();
    ids.iter()
        .zip(nm.iter())
        .enumerate()
        .map(|(i, (id, n))| {
            (
                id.unwrap().to_string(),
                (
                    n.map(str::to_string),
                    [
                        imp[i],
                        clk[i],
                        whole_won(spend[i]),
                        conv[i],
                        whole_won(value[i]),
                    ],
                ),
            )
        })
        .collect()
}

fn got(df: &DataFrame) -> HashMap<String, (Option<String>, [i64; 5])> {
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(df, &format!("dt={DAY}"))
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
    let (imp, clk, spend, conv, value) = (
        ints("impressions"),
        ints("clicks"),
        ints("spend_micros"),
        ints("conversions"),
        ints("conversion_value_micros"),
    );
    let ids: Vec<String> = df
        .column("campaign_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a campaign landed twice");
    let names = df.column("campaign_name").unwrap().str().unwrap().clone();
    ids.iter()
        .zip(names.iter())
        .enumerate()
        .map(|(i, (id, n))| {
            (
                id.clone(),
                (
                    n.map(str::to_string),
                    [imp[i], clk[i], spend[i], conv[i], value[i]],
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_equals_the_world_through_throttling_errors_and_cut_bodies() {
    let (lake, naver) = world().await;
    let want = expected(&lake).await;
    assert!(want.len() >= 3, "the world needs several Naver campaigns");
    let server = start(
        &lake,
        Faults {
            throttle: 1,
            server_errors: 1,
            truncated: 1,
            ..Faults::default()
        },
    )
    .await;
    let c = connector(&naver, &server, credentials::NAVER_SECRET_KEY);
    let pulled = pull(&lake, &c).await.unwrap();
    assert_eq!(got(&pulled.frames[0]), want);
    let spend: i64 = want.values().map(|(_, v)| v[2]).sum();
    assert!(spend > 0);
    // Campaign list and one stats batch, each: 429 (code 1016), 503, a cut body, the answer.
    assert_eq!((pulled.calls, pulled.retries), (8, 6));
    assert_eq!(server.requests("naver/campaigns"), 4);
    assert_eq!(server.requests("naver/stats"), 4);
    let plan = c.plan(
        &c.streams()[0],
        DAY.parse().unwrap(),
        &StreamState::default(),
    );
    assert_eq!(plan[0].calls, 2, "one list and one batch");

    // Two ids per /stats call: the same rows, one call per batch of the listed campaigns,
    // and the plan from this day's rows foresees the batches of campaigns with delivery.
    let listed = world_campaigns(&lake, &naver.customer_id.to_string())
        .await
        .unwrap()
        .len() as u32;
    let server = start(&lake, Faults::default()).await;
    let c = connector(&naver, &server, credentials::NAVER_SECRET_KEY).with_batch_size(2);
    let pulled = pull(&lake, &c).await.unwrap();
    assert_eq!(got(&pulled.frames[0]), want);
    assert_eq!(server.requests("naver/campaigns"), 1);
    assert_eq!(server.requests("naver/stats"), listed.div_ceil(2));
    assert_eq!(pulled.calls, 1 + listed.div_ceil(2));
    let day: NaiveDate = DAY.parse().unwrap();
    let mut history = StreamState::default();
    history.landed(day, Utc::now(), want.len() as u64, pulled.calls);
    let plan = c.plan(&c.streams()[0], day.succ_opt().unwrap(), &history);
    assert_eq!(plan[0].calls, 1 + (want.len() as u32).div_ceil(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_answers_and_refusals_are_clean_errors_without_secrets() {
    let (lake, naver) = world().await;
    let server = start(
        &lake,
        Faults {
            malformed: 1,
            ..Faults::default()
        },
    )
    .await;
    let c = connector(&naver, &server, credentials::NAVER_SECRET_KEY);
    let err = pull(&lake, &c).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PullError::Parse(ref p) if p.column.as_deref() == Some("nccCampaignId")),
        "{msg}"
    );

    // A wrong secret key signs wrongly: the server refuses with 401, the pull stops at once.
    let server = start(&lake, Faults::default()).await;
    let wrong = "not-the-naver-secret-0042";
    let c = connector(&naver, &server, wrong);
    let msg = pull(&lake, &c).await.unwrap_err().to_string();
    assert!(msg.contains("401") && msg.contains("refused"), "{msg}");
    for secret in [
        wrong,
        credentials::NAVER_API_KEY,
        credentials::NAVER_SECRET_KEY,
    ] {
        assert!(!msg.contains(secret), "{msg}");
    }
    assert_eq!(
        server.requests("naver/"),
        0,
        "refused before any fault or data"
    );

    // A customer the key does not manage is 403.
    let mut other = naver.clone();
    other.customer_id = 9_999_999;
    let c = connector(&other, &server, credentials::NAVER_SECRET_KEY);
    let msg = pull(&lake, &c).await.unwrap_err().to_string();
    assert!(msg.contains("403"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checks_signatures_exactly_as_documented() {
    let (lake, naver) = world().await;
    let server = start(&lake, Faults::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/ncc/campaigns", server.url("naver"));
    let send = |ts: i64, key: &str, sig: String| {
        client
            .get(&url)
            .header("X-Timestamp", ts.to_string())
            .header("X-API-KEY", key)
            .header("X-Customer", naver.customer_id.to_string())
            .header("X-Signature", sig)
            .send()
    };
    let now = Utc::now().timestamp_millis();
    let good = signature(credentials::NAVER_SECRET_KEY, now, "GET", "/ncc/campaigns");
    assert_eq!(
        send(now, credentials::NAVER_API_KEY, good.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    let cases = [
        (
            "wrong secret",
            now,
            credentials::NAVER_API_KEY,
            signature("other-secret", now, "GET", "/ncc/campaigns"),
        ),
        (
            "another path",
            now,
            credentials::NAVER_API_KEY,
            signature(credentials::NAVER_SECRET_KEY, now, "GET", "/stats"),
        ),
        (
            "another method",
            now,
            credentials::NAVER_API_KEY,
            signature(credentials::NAVER_SECRET_KEY, now, "POST", "/ncc/campaigns"),
        ),
        (
            "signed at another time",
            now + 1,
            credentials::NAVER_API_KEY,
            good.clone(),
        ),
        ("wrong key", now, "another-key", good.clone()),
        (
            "stale timestamp",
            now - 10 * 60 * 1000,
            credentials::NAVER_API_KEY,
            signature(
                credentials::NAVER_SECRET_KEY,
                now - 10 * 60 * 1000,
                "GET",
                "/ncc/campaigns",
            ),
        ),
    ];
    for (what, ts, key, sig) in cases {
        let r = send(ts, key, sig).await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let body = r.text().await.unwrap();
        assert!(body.contains("\"code\":1018"), "{what}: {body}");
    }
    let unsigned = client.get(&url).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
}
