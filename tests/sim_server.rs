//! The local API server serves the simulated world in each source's wire format: the shared
//! call path and the parsers get every row back, auth is checked, and injected faults
//! (throttling, 5xx, cut and broken bodies, spent quotas) look as the real APIs make them look.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;

use chrono::{NaiveDate, Utc};
use ltv::config::{CallBudget, PipelineConfig, std_env};
use ltv::ingest::appsflyer::{Report, count_rows, parse_report};
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::http::{CallError, RetryPolicy, Verdict, call, default_verdict};
use ltv::ingest::mixpanel::{ExportOptions, parse_export};
use ltv::ingest::sheets::{SheetRange, parse_values};
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::serve::appsflyer::{ANDROID_APP_ID, IOS_APP_ID};
use ltv::sim::server::{Faults, ServerOptions, SimServer, credentials};
use polars::prelude::*;

const DAY: &str = "2026-01-02";

async fn world() -> Lake {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &std_env).unwrap();
    let mut sim = config.sim.unwrap();
    sim.days = NonZeroU32::new(3).unwrap();
    sim.users_per_day = 400;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    lake
}

fn seoul() -> chrono_tz::Tz {
    "Asia/Seoul".parse().unwrap()
}

async fn start(lake: &Lake, faults: Faults) -> SimServer {
    SimServer::start(
        lake.clone(),
        ServerOptions {
            faults,
            mixpanel_project_timezone: Some(seoul()),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(20),
    }
}

async fn budget(lake: &Lake, source: &str) -> std::sync::Arc<SourceBudget> {
    SourceBudget::load(lake, source, CallBudget::default())
        .await
        .unwrap()
}

async fn world_count(lake: &Lake, table: &str, filter: Expr) -> usize {
    let t = Registry::embedded().unwrap().get(table).unwrap();
    let day: NaiveDate = DAY.parse().unwrap();
    lake.scan(t, DateRange::day(day))
        .await
        .unwrap()
        .filter(filter)
        .collect()
        .unwrap()
        .height()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixpanel_export_returns_every_event_of_the_day_through_faults() {
    let lake = world().await;
    let faults = Faults {
        throttle: 1,
        server_errors: 1,
        ..Faults::default()
    };
    let server = start(&lake, faults).await;
    let client = reqwest::Client::new();
    let b = budget(&lake, "mixpanel").await;
    let url = format!("{}/api/2.0/export", server.url("mixpanel"));
    let reply = call(
        &client,
        &b,
        "mixpanel",
        &quick(),
        || {
            client
                .get(&url)
                .query(&[("from_date", DAY), ("to_date", DAY)])
                .basic_auth(
                    credentials::MIXPANEL_USER,
                    Some(credentials::MIXPANEL_SECRET),
                )
        },
        default_verdict,
    )
    .await
    .unwrap();
    assert_eq!(
        (reply.calls, reply.retries),
        (3, 2),
        "429 then 502 then the data"
    );
    let opts = ExportOptions {
        time_in_ms: false,
        project_timezone: Some(seoul()),
    };
    let frame = parse_export(&reply.body, &opts, Utc::now(), "dt=2026-01-02").unwrap();
    let expected = world_count(&lake, "sim.events", lit(true)).await;
    assert_eq!(frame.height(), expected);
    // Project time was undone: every event lies on the requested UTC day (garbled resends
    // sent without a readable time aside).
    let days = frame
        .lazy()
        .filter(col("time").is_not_null())
        .select([
            col("time").dt().date().n_unique().alias("n"),
            col("time").dt().date().min().alias("d"),
        ])
        .collect()
        .unwrap();
    assert_eq!(
        days.column("n").unwrap().get(0).unwrap(),
        AnyValue::UInt32(1)
    );

    // Wrong credentials are refused.
    let denied = client
        .get(&url)
        .query(&[("from_date", DAY), ("to_date", DAY)])
        .basic_auth("someone", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_or_broken_export_is_a_retryable_failure_never_data() {
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
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/2.0/export?from_date={DAY}&to_date={DAY}",
        server.url("mixpanel")
    );
    let opts = ExportOptions {
        time_in_ms: false,
        project_timezone: Some(seoul()),
    };
    for _ in 0..2 {
        let body = client
            .get(&url)
            .basic_auth(
                credentials::MIXPANEL_USER,
                Some(credentials::MIXPANEL_SECRET),
            )
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let err = parse_export(&body, &opts, Utc::now(), "dt=2026-01-02").unwrap_err();
        assert!(err.to_string().contains("mixpanel.export"), "{err}");
    }
    // The third pull is whole.
    let body = client
        .get(&url)
        .basic_auth(
            credentials::MIXPANEL_USER,
            Some(credentials::MIXPANEL_SECRET),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(parse_export(&body, &opts, Utc::now(), "dt=2026-01-02").is_ok());
}

/// AppsFlyer answers a spent daily quota with HTTP 400 and a text body.
fn appsflyer_verdict(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Verdict {
    if status == 400 && String::from_utf8_lossy(body).contains("Limit reached") {
        return Verdict::QuotaSpent(String::from_utf8_lossy(body).into_owned());
    }
    default_verdict(status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appsflyer_reports_come_back_whole_truncated_at_maximum_rows_and_within_quota() {
    let lake = world().await;
    let server = start(
        &lake,
        Faults {
            daily_quota: Some(3),
            ..Faults::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let b = budget(&lake, "appsflyer").await;
    let get = |app: &'static str, report: Report, max_rows: usize| {
        let url = format!(
            "{}/api/raw-data/export/app/{app}/{}/v5",
            server.url("appsflyer"),
            report.path()
        );
        let client = client.clone();
        move || {
            client
                .get(&url)
                .query(&[("from", DAY), ("to", DAY), ("timezone", "UTC")])
                .query(&[("maximum_rows", max_rows)])
                .bearer_auth(credentials::APPSFLYER_TOKEN)
        }
    };
    let scope = "appsflyer/android/installs_report";
    let reply = call(
        &client,
        &b,
        scope,
        &quick(),
        get(ANDROID_APP_ID, Report::InstallsReport, 1_000_000),
        appsflyer_verdict,
    )
    .await
    .unwrap();
    let frame = parse_report(
        &reply.body,
        Report::InstallsReport,
        ANDROID_APP_ID,
        chrono_tz::UTC,
        Utc::now(),
        "dt=2026-01-02",
    )
    .unwrap();
    let expected = world_count(
        &lake,
        "sim.installs",
        col("platform")
            .eq(lit("android"))
            .and(col("channel").neq(lit("organic")))
            .and(
                col("af_fraud_report")
                    .neq(lit("blocked"))
                    .or(col("af_fraud_report").is_null()),
            ),
    )
    .await;
    assert!(expected > 20);
    assert_eq!(frame.height(), expected);

    // A window with more rows than maximum_rows is cut to exactly that many.
    let reply = call(
        &client,
        &b,
        scope,
        &quick(),
        get(ANDROID_APP_ID, Report::InstallsReport, 10),
        appsflyer_verdict,
    )
    .await
    .unwrap();
    assert_eq!(count_rows(&reply.body), 10);

    // The fourth call of the day on this report meets the quota answer: deferred, not failed.
    let _ = call(
        &client,
        &b,
        scope,
        &quick(),
        get(ANDROID_APP_ID, Report::InstallsReport, 10),
        appsflyer_verdict,
    )
    .await
    .unwrap();
    let err = call(
        &client,
        &b,
        scope,
        &quick(),
        get(ANDROID_APP_ID, Report::InstallsReport, 10),
        appsflyer_verdict,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CallError::QuotaSpent { .. }) && err.is_deferral(),
        "{err}"
    );
    // Another report has its own quota.
    let ios = call(
        &client,
        &b,
        "appsflyer/ios/installs_report",
        &quick(),
        get(IOS_APP_ID, Report::InstallsReport, 1000),
        appsflyer_verdict,
    )
    .await;
    assert!(ios.is_ok());

    // A wrong token is refused.
    let denied = client
        .get(format!(
            "{}/api/raw-data/export/app/{ANDROID_APP_ID}/installs_report/v5?from={DAY}&to={DAY}",
            server.url("appsflyer")
        ))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheets_serve_the_teams_ranges() {
    let lake = world().await;
    let server = start(
        &lake,
        Faults {
            throttle: 1,
            ..Faults::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let b = budget(&lake, "google_sheets").await;
    let url = format!(
        "{}/v4/spreadsheets/demo-spreadsheet/values/test_devices!A1:C",
        server.url("sheets")
    );
    let reply = call(
        &client,
        &b,
        "google_sheets",
        &quick(),
        || {
            client
                .get(&url)
                .query(&[("key", credentials::SHEETS_API_KEY)])
        },
        default_verdict,
    )
    .await
    .unwrap();
    assert_eq!(
        reply.retries, 1,
        "the 429 RESOURCE_EXHAUSTED answer was retried"
    );
    let frame = parse_values(
        &reply.body,
        SheetRange::TestDevices,
        Utc::now(),
        "dt=2026-01-02",
    )
    .unwrap();
    let t = Registry::embedded()
        .unwrap()
        .get("sim.test_devices")
        .unwrap();
    let world = lake
        .scan(t, DateRange::all())
        .await
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(frame.height(), world.height());
    let denied = client
        .get(&url)
        .query(&[("key", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}
