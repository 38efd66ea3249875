//! The Apple Search Ads connector end to end against the local server: a day pulled through
//! throttling and 5xx equals the world's delivery; offset/limit paging and 90-day splitting
//! fetch every campaign day exactly once; the OAuth token (ES256 client secret, verified by
//! the server) is fetched once, reused, and refreshed once after a 401; cut and broken pages
//! end in the same rows or a clean error; no credential reaches an error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use ltv::config::{AppleSearchAdsSource, CallBudget, PipelineConfig, Secret, std_env};
use ltv::ingest::apple_search_ads::{
    AppleAuth, AppleSearchAdsConnector, CampaignManagementV5, CampaignReports, STREAM, TABLE,
};
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::connector::{Connector, PullContext, PullError, Pulled};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::state::StreamState;
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::server::{Faults, ServerOptions, SimServer, credentials};
use polars::prelude::*;

const OTHER_KEY: &str = include_str!("../fixtures/apple_search_ads/other_private_key.pem");

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn world() -> Lake {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &std_env).unwrap();
    let mut sim = config.sim.unwrap();
    sim.days = NonZeroU32::new(3).unwrap();
    sim.users_per_day = 300;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    lake
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

fn settings() -> AppleSearchAdsSource {
    toml::from_str("org_id = 1000001\n").unwrap()
}

fn auth(server: &SimServer, key: &str) -> Arc<AppleAuth> {
    Arc::new(AppleAuth::new(
        &server.url("apple_search_ads"),
        Secret::new(credentials::APPLE_CLIENT_ID),
        Secret::new(credentials::APPLE_TEAM_ID),
        Secret::new(credentials::APPLE_KEY_ID),
        Secret::new(key),
    ))
}

fn connector(server: &SimServer) -> AppleSearchAdsConnector {
    AppleSearchAdsConnector::new(
        &settings(),
        &server.url("apple_search_ads"),
        Secret::new(credentials::APPLE_CLIENT_ID),
        Secret::new(credentials::APPLE_TEAM_ID),
        Secret::new(credentials::APPLE_KEY_ID),
        Secret::new(credentials::APPLE_PRIVATE_KEY_PEM),
    )
    .unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

struct Harness {
    client: reqwest::Client,
    budget: Arc<SourceBudget>,
    history: StreamState,
}

impl Harness {
    async fn new(lake: &Lake) -> Harness {
        Harness {
            client: reqwest::Client::new(),
            budget: SourceBudget::load(lake, "apple_search_ads", CallBudget::default())
                .await
                .unwrap(),
            history: StreamState::default(),
        }
    }

    fn ctx(&self) -> PullContext<'_> {
        PullContext {
            client: &self.client,
            budget: self.budget.clone(),
            policy: quick(),
            timeout: std::time::Duration::from_secs(30),
            history: &self.history,
            pulled_at: Utc::now(),
        }
    }

    async fn pull(&self, c: &AppleSearchAdsConnector, day: NaiveDate) -> Result<Pulled, PullError> {
        c.pull(&self.ctx(), &c.streams()[0], day).await
    }
}

/// (spend micros, impressions, taps, tap installs, view installs) per (campaign, day).
type Cells = HashMap<(String, NaiveDate), [i64; 5]>;

async fn world_cells(lake: &Lake, from: NaiveDate, to: NaiveDate) -> Cells {
    let t = Registry::embedded().unwrap().get("sim.ad_daily").unwrap();
    let df = lake
        .scan(t, DateRange::new(from, to))
        .await
        .unwrap()
        .filter(col("channel").eq(lit("apple_search_ads")))
        .group_by([col("campaign_id"), col("dt")])
        .agg([
            col("spend_micros").sum(),
            col("impressions").sum(),
            col("clicks").sum(),
            col("installs").sum(),
            col("view_installs").sum(),
        ])
        .with_column(col("dt").cast(DataType::Int32))
        .collect()
        .unwrap();
    cells(
        &df,
        "dt",
        [
            "spend_micros",
            "impressions",
            "clicks",
            "installs",
            "view_installs",
        ],
    )
}

fn cells(df: &DataFrame, date: &str, metrics: [&str; 5]) -> Cells {
    let ids = df.column("campaign_id").unwrap().str().unwrap().clone();
    let days = df.column(date).unwrap().cast(&DataType::Int32).unwrap();
    let days = days.i32().unwrap().clone();
    let m: Vec<Int64Chunked> = metrics
        .iter()
        .map(|c| df.column(c).unwrap().i64().unwrap().clone())
        .collect();
    let mut out = Cells::new();
    for i in 0..df.height() {
        let key = (
            ids.get(i).unwrap().to_string(),
            NaiveDate::default() + chrono::Days::new(days.get(i).unwrap() as u64),
        );
        let v = [0, 1, 2, 3, 4].map(|k| m[k].get(i).unwrap());
        assert!(out.insert(key.clone(), v).is_none(), "{key:?} came twice");
    }
    out
}

fn pulled_cells(p: &Pulled) -> Cells {
    let mut frames = p.frames.iter();
    let mut df = frames.next().unwrap().clone();
    for f in frames {
        df.vstack_mut(f).unwrap();
    }
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(&df, "range")
        .unwrap();
    cells(
        &df,
        "date",
        [
            "local_spend_micros",
            "impressions",
            "taps",
            "tap_installs",
            "view_installs",
        ],
    )
}

fn assert_no_secrets(message: &str) {
    for s in [
        credentials::APPLE_PRIVATE_KEY_PEM,
        &credentials::APPLE_PRIVATE_KEY_PEM[31..95],
        OTHER_KEY,
        &OTHER_KEY[31..95],
    ] {
        assert!(!message.contains(s), "a credential leaked: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_equals_the_world_through_throttling_and_server_errors() {
    let lake = world().await;
    let server = start(
        &lake,
        Faults {
            throttle: 1,
            server_errors: 1,
            ..Faults::default()
        },
    )
    .await;
    let h = Harness::new(&lake).await;
    let c = connector(&server);
    assert_eq!(c.key_problem(), None);
    let day = d("2026-01-02");
    let pulled = h.pull(&c, day).await.unwrap();
    assert_eq!(
        (pulled.calls, pulled.retries),
        (4, 2),
        "a token, then 429, 500 and the page"
    );
    let world = world_cells(&lake, day, day).await;
    assert!(world.len() >= 2, "the world buys on Apple Search Ads");
    assert_eq!(pulled_cells(&pulled), world);
    // The rest of the world's days reuse the token.
    for day in [d("2026-01-01"), d("2026-01-03")] {
        let p = h.pull(&c, day).await.unwrap();
        assert_eq!(
            pulled_cells(&p),
            world_cells(&lake, day, day).await,
            "{day}"
        );
    }
    assert_eq!(server.requests("apple_search_ads/"), 5);
    assert_eq!(c.streams()[0].name, STREAM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_range_splitting_fetch_every_campaign_day_once() {
    let lake = world().await;
    let server = start(&lake, Faults::default()).await;
    let h = Harness::new(&lake).await;
    let a = auth(&server, credentials::APPLE_PRIVATE_KEY_PEM);
    // One campaign per page and two days per window: 2026-01-01..02, then 2026-01-03.
    let v5 = CampaignManagementV5::new(&server.url("apple_search_ads"), 1000001, a.clone())
        .page_size(1)
        .max_days(2);
    let (from, to) = (d("2026-01-01"), d("2026-01-03"));
    let pulled = v5.campaign_days(&h.ctx(), from, to).await.unwrap();
    let world = world_cells(&lake, from, to).await;
    assert_eq!(
        pulled_cells(&pulled),
        world,
        "every campaign day exactly once"
    );
    let windows = [(from, d("2026-01-02")), (to, to)];
    let pages: usize = windows
        .iter()
        .map(|(a, b)| {
            let campaigns: HashSet<&String> = world
                .keys()
                .filter(|(_, day)| day >= a && day <= b)
                .map(|(c, _)| c)
                .collect();
            campaigns.len().max(1)
        })
        .sum();
    assert!(pages > 2, "several pages: {pages}");
    assert_eq!(server.requests("apple_search_ads/") as usize, pages);
    assert_eq!(pulled.calls as usize, pages + 1, "pages and one token");
    assert_eq!(a.tokens_fetched(), 1);

    // The connector over this client lands the same day as the default one.
    let c = AppleSearchAdsConnector::with_reports(Arc::new(
        CampaignManagementV5::new(&server.url("apple_search_ads"), 1000001, a.clone()).page_size(2),
    ))
    .unwrap();
    let day = d("2026-01-02");
    assert_eq!(
        pulled_cells(&h.pull(&c, day).await.unwrap()),
        world_cells(&lake, day, day).await
    );
    assert_eq!(a.tokens_fetched(), 1, "the token is shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once() {
    let lake = world().await;
    let server = start(
        &lake,
        Faults {
            token_lifetime: Some(Duration::from_millis(1000)),
            ..Faults::default()
        },
    )
    .await;
    let h = Harness::new(&lake).await;
    let a = auth(&server, credentials::APPLE_PRIVATE_KEY_PEM);
    let c = AppleSearchAdsConnector::with_reports(Arc::new(CampaignManagementV5::new(
        &server.url("apple_search_ads"),
        1000001,
        a.clone(),
    )))
    .unwrap();
    let day = d("2026-01-02");
    h.pull(&c, day).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pulled = h.pull(&c, day).await.unwrap();
    assert_eq!(a.tokens_fetched(), 2);
    assert_eq!(
        (pulled.calls, pulled.retries),
        (3, 1),
        "401, a new token, the page"
    );
    assert_eq!(pulled_cells(&pulled), world_cells(&lake, day, day).await);

    let dead = start(
        &lake,
        Faults {
            token_lifetime: Some(Duration::ZERO),
            ..Faults::default()
        },
    )
    .await;
    let c = connector(&dead);
    let err = h.pull(&c, day).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("UNAUTHORIZED"), "{msg}");
    assert_eq!(c.tokens_fetched(), 2, "one refresh, not a loop");
    assert_no_secrets(&msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_broken_pages_and_wrong_keys_fail_cleanly() {
    let lake = world().await;
    let server = start(
        &lake,
        Faults {
            truncated: 1,
            malformed: 1,
            ..Faults::default()
        },
    )
    .await;
    let h = Harness::new(&lake).await;
    let c = connector(&server);
    let day = d("2026-01-02");
    let err = h.pull(&c, day).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PullError::Parse(ref e) if !e.retryable),
        "{msg}"
    );
    assert!(
        msg.contains("apple_search_ads.campaign_daily dt=2026-01-02"),
        "{msg}"
    );
    assert_no_secrets(&msg);
    let pulled = h.pull(&c, day).await.unwrap();
    assert_eq!(pulled_cells(&pulled), world_cells(&lake, day, day).await);

    // Cut pages alone are pulled again within the same pull and end in the same rows.
    let cut = start(
        &lake,
        Faults {
            truncated: 2,
            ..Faults::default()
        },
    )
    .await;
    let pulled = h.pull(&connector(&cut), day).await.unwrap();
    assert_eq!(pulled.retries, 2);
    assert_eq!(pulled_cells(&pulled), world_cells(&lake, day, day).await);

    // A key Apple does not know signs a secret the token endpoint refuses.
    let stranger = AppleSearchAdsConnector::with_reports(Arc::new(CampaignManagementV5::new(
        &server.url("apple_search_ads"),
        1000001,
        auth(&server, OTHER_KEY),
    )))
    .unwrap();
    let err = h.pull(&stranger, day).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("invalid_client"), "{msg}");
    assert_no_secrets(&msg);
    // A key that is not a key is named before any call.
    let broken = auth(
        &server,
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
    );
    assert!(broken.key_problem().is_some());
}
