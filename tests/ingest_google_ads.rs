//! The Google Ads connector end to end against the local server: a day pulled through
//! throttling and 5xx equals the world's delivery, Google's `retryDelay` is waited, cut and
//! broken streams end in the same rows or a clean error, the access token is fetched once and
//! refreshed once when refused, a spent daily quota defers, and no credential ever reaches an
//! error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use ltv::config::{CallBudget, GoogleAdsSource, PipelineConfig, Secret, std_env};
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::connector::{Connector, PullContext, PullError, Pulled};
use ltv::ingest::google_ads::{GoogleAdsConnector, STREAM, TABLE};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::state::StreamState;
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::server::{Faults, ServerOptions, SimServer, credentials};
use polars::prelude::*;

const SECRETS: [&str; 4] = [
    credentials::GOOGLE_ADS_DEVELOPER_TOKEN,
    credentials::GOOGLE_ADS_CLIENT_ID,
    credentials::GOOGLE_ADS_CLIENT_SECRET,
    credentials::GOOGLE_ADS_REFRESH_TOKEN,
];

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()
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

fn settings(customer: &str) -> GoogleAdsSource {
    toml::from_str(&format!(
        "customer_ids = [\"{customer}\"]\nlogin_customer_id = \"1000000000\"\n"
    ))
    .unwrap()
}

fn connector(server: &SimServer, refresh_token: &str) -> GoogleAdsConnector {
    GoogleAdsConnector::new(
        &settings("100-000-0001"),
        &server.url("google_ads"),
        Secret::new(credentials::GOOGLE_ADS_DEVELOPER_TOKEN),
        Secret::new(credentials::GOOGLE_ADS_CLIENT_ID),
        Secret::new(credentials::GOOGLE_ADS_CLIENT_SECRET),
        Secret::new(refresh_token),
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
            budget: SourceBudget::load(lake, "google_ads", CallBudget::default())
                .await
                .unwrap(),
            history: StreamState::default(),
        }
    }

    async fn pull(&self, c: &GoogleAdsConnector, d: NaiveDate) -> Result<Pulled, PullError> {
        let ctx = PullContext {
            client: &self.client,
            budget: self.budget.clone(),
            policy: quick(),
            timeout: std::time::Duration::from_secs(30),
            history: &self.history,
            pulled_at: Utc::now(),
        };
        c.pull(&ctx, &c.streams()[0], d).await
    }
}

/// Sums of the world's Google Ads delivery on `d`: spend, impressions, clicks, installs,
/// view installs, and the campaigns with delivery.
async fn world_day(lake: &Lake, d: NaiveDate) -> (i64, i64, i64, i64, i64, usize) {
    let t = Registry::embedded().unwrap().get("sim.ad_daily").unwrap();
    let df = lake
        .scan(t, DateRange::day(d))
        .await
        .unwrap()
        .filter(col("channel").eq(lit("google_ads")))
        .collect()
        .unwrap();
    let sum = |c: &str| df.column(c).unwrap().i64().unwrap().sum().unwrap_or(0);
    let campaigns = df.column("campaign_id").unwrap().n_unique().unwrap();
    (
        sum("spend_micros"),
        sum("impressions"),
        sum("clicks"),
        sum("installs"),
        sum("view_installs"),
        campaigns,
    )
}

fn pulled_day(p: &Pulled) -> (i64, i64, i64, i64, i64, usize) {
    let df = concat_frames(p);
    let sum = |c: &str| df.column(c).unwrap().i64().unwrap().sum().unwrap_or(0);
    let conversions = df
        .column("conversions")
        .unwrap()
        .f64()
        .unwrap()
        .sum()
        .unwrap_or(0.0);
    (
        sum("cost_micros"),
        sum("impressions"),
        sum("clicks"),
        conversions.round() as i64,
        sum("view_through_conversions"),
        df.height(),
    )
}

fn concat_frames(p: &Pulled) -> DataFrame {
    let mut frames = p.frames.iter();
    let mut df = frames.next().unwrap().clone();
    for f in frames {
        df.vstack_mut(f).unwrap();
    }
    df
}

fn assert_no_secrets(message: &str) {
    for s in SECRETS {
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
    let c = connector(&server, credentials::GOOGLE_ADS_REFRESH_TOKEN);
    let started = Instant::now();
    let pulled = h.pull(&c, day()).await.unwrap();
    // Google named a one-second retryDelay; our own backoff alone would wait ~5 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (pulled.calls, pulled.retries),
        (4, 2),
        "a token, then 429, 503 and the stream"
    );
    let world = world_day(&lake, day()).await;
    assert!(
        world.5 >= 2 && world.0 > 0,
        "the world buys on Google Ads: {world:?}"
    );
    assert_eq!(pulled_day(&pulled), world);

    let df = concat_frames(&pulled);
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(&df, "dt=2026-01-02")
        .unwrap();
    let keys: HashSet<(String, String)> = df
        .column("customer_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(df.column("campaign_id").unwrap().str().unwrap().iter())
        .map(|(a, b)| (a.unwrap().to_string(), b.unwrap().to_string()))
        .collect();
    assert_eq!(keys.len(), df.height(), "unique primary keys");
    assert!(keys.iter().all(|(customer, _)| customer == "1000000001"));
    let currencies = df.column("currency").unwrap().str().unwrap();
    assert!(currencies.iter().all(|c| c == Some("KRW")));

    // The other days reuse the token.
    for d in [day().pred_opt().unwrap(), day().succ_opt().unwrap()] {
        let p = h.pull(&c, d).await.unwrap();
        assert_eq!(pulled_day(&p), world_day(&lake, d).await, "{d}");
    }
    assert_eq!(c.tokens_fetched(), 1);
    assert_eq!(server.requests("google_ads/"), 5);
    assert_eq!(c.streams()[0].name, STREAM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_broken_streams_end_in_the_same_rows_or_a_clean_error() {
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
    let c = connector(&server, credentials::GOOGLE_ADS_REFRESH_TOKEN);
    // The cut body is pulled again; the broken one that follows fails the pull, naming it.
    let err = h.pull(&c, day()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PullError::Parse(ref e) if !e.retryable),
        "{msg}"
    );
    assert!(
        msg.contains("google_ads.campaign_daily dt=2026-01-02"),
        "{msg}"
    );
    assert_no_secrets(&msg);
    assert_eq!(server.requests("google_ads/"), 2);
    // The next run gets the whole day.
    let pulled = h.pull(&c, day()).await.unwrap();
    assert_eq!(pulled_day(&pulled), world_day(&lake, day()).await);

    // Cut bodies alone are pulled again within the same pull and end in the same rows.
    let cut = start(
        &lake,
        Faults {
            truncated: 2,
            ..Faults::default()
        },
    )
    .await;
    let c = connector(&cut, credentials::GOOGLE_ADS_REFRESH_TOKEN);
    let pulled = h.pull(&c, day()).await.unwrap();
    assert_eq!(pulled.retries, 2);
    assert_eq!(pulled_day(&pulled), world_day(&lake, day()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once() {
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
    let c = connector(&server, credentials::GOOGLE_ADS_REFRESH_TOKEN);
    h.pull(&c, day()).await.unwrap();
    assert_eq!(c.tokens_fetched(), 1);
    // The token claims an hour but the server stops taking it early: a 401, one new token,
    // and the day.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pulled = h.pull(&c, day()).await.unwrap();
    assert_eq!(c.tokens_fetched(), 2);
    assert_eq!((pulled.calls, pulled.retries), (3, 1));
    assert_eq!(pulled_day(&pulled), world_day(&lake, day()).await);

    // Tokens that never work: one refresh, then a clean error, not a loop.
    let dead = start(
        &lake,
        Faults {
            token_lifetime: Some(Duration::ZERO),
            ..Faults::default()
        },
    )
    .await;
    let c = connector(&dead, credentials::GOOGLE_ADS_REFRESH_TOKEN);
    let err = h.pull(&c, day()).await.unwrap_err();
    assert_eq!(c.tokens_fetched(), 2);
    let msg = err.to_string();
    assert!(msg.contains("UNAUTHENTICATED"), "{msg}");
    assert_no_secrets(&msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_spent_quotas_fail_cleanly() {
    let lake = world().await;
    let server = start(&lake, Faults::default()).await;
    let h = Harness::new(&lake).await;
    let wrong = "wrong-refresh-token-value";
    let err = h.pull(&connector(&server, wrong), day()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("invalid_grant") && !msg.contains(wrong),
        "{msg}"
    );
    assert!(!err.is_deferral());
    assert_no_secrets(&msg);

    // A customer the credentials cannot reach.
    let other = GoogleAdsConnector::new(
        &settings("2000000002"),
        &server.url("google_ads"),
        Secret::new(credentials::GOOGLE_ADS_DEVELOPER_TOKEN),
        Secret::new(credentials::GOOGLE_ADS_CLIENT_ID),
        Secret::new(credentials::GOOGLE_ADS_CLIENT_SECRET),
        Secret::new(credentials::GOOGLE_ADS_REFRESH_TOKEN),
    )
    .unwrap();
    let err = h.pull(&other, day()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("USER_PERMISSION_DENIED") && msg.contains("2000000002"),
        "{msg}"
    );
    assert_no_secrets(&msg);

    // Google's daily operations quota: a twelve-hour retryDelay defers instead of sleeping.
    let spent = start(
        &lake,
        Faults {
            daily_quota: Some(0),
            ..Faults::default()
        },
    )
    .await;
    let started = Instant::now();
    let err = h
        .pull(
            &connector(&spent, credentials::GOOGLE_ADS_REFRESH_TOKEN),
            day(),
        )
        .await
        .unwrap_err();
    assert!(err.is_deferral(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_no_secrets(&err.to_string());
}
