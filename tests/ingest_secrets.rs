//! No credential reaches a log line, an error or the summary: a run against the local server,
//! configured as a real deployment (base URLs and credentials from environment variables),
//! under faults and with one wrong token, with every log line of every crate captured at
//! TRACE. This file holds one test because it installs the process-wide log subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::NaiveDate;
use ltv::config::PipelineConfig;
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::schedule::{Mode, Progress};
use ltv::ingest::{IngestRequest, run_ingest};
use ltv::lake::Lake;
use ltv::sim::server::{Faults, ServerOptions, SimServer, credentials};
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const WRONG_TOKEN: &str = "af-token-that-is-wrong-7f3a9c";

fn env(appsflyer_token: &'static str) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        Some(
            match name {
                "MIXPANEL_SERVICE_ACCOUNT_USER" => credentials::MIXPANEL_USER,
                "MIXPANEL_SERVICE_ACCOUNT_SECRET" => credentials::MIXPANEL_SECRET,
                "APPSFLYER_API_TOKEN" => appsflyer_token,
                "GOOGLE_SHEETS_API_KEY" => credentials::SHEETS_API_KEY,
                _ => return None,
            }
            .to_string(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_logs_errors_or_the_summary() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // `try_init` also routes the `log` records of reqwest and hyper into the capture.
    subscriber.try_init().unwrap();

    // The world, and a server the config treats as the real APIs.
    let demo = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &|_| None).unwrap();
    let mut sim = demo.sim.clone().unwrap();
    sim.days = NonZeroU32::new(2).unwrap();
    sim.users_per_day = 200;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    let faults = Faults {
        throttle: 1,
        server_errors: 1,
        truncated: 1,
        ..Faults::default()
    };
    let server = SimServer::start(
        lake.clone(),
        ServerOptions {
            faults,
            mixpanel_project_timezone: Some(chrono_tz::Asia::Seoul),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let text = ltv::config::EMBEDDED_DEMO
        .replace(
            "[sources.mixpanel]\n",
            &format!(
                "[sources.mixpanel]\nbase_url = \"{}\"\n",
                server.url("mixpanel")
            ),
        )
        .replace(
            "[sources.appsflyer]\n",
            &format!(
                "[sources.appsflyer]\nbase_url = \"{}\"\n",
                server.url("appsflyer")
            ),
        )
        .replace(
            "[sources.google_sheets]\n",
            &format!(
                "[sources.google_sheets]\nbase_url = \"{}\"\n",
                server.url("sheets")
            ),
        );
    let mode = Mode::Range {
        from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        today: NaiveDate::from_ymd_opt(2026, 1, 3).unwrap(),
    };
    let request = IngestRequest {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..IngestRequest::new(mode)
    };

    let mut shown = String::new();
    // Good credentials, faults on every route.
    let config =
        PipelineConfig::from_toml(&text, "real", &env(credentials::APPSFLYER_TOKEN)).unwrap();
    let summary = run_ingest(
        &config,
        &lake,
        request.clone(),
        &env(credentials::APPSFLYER_TOKEN),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    assert!(!summary.failed(), "{summary}");
    assert!(
        summary.streams["mixpanel.export"].retries > 0,
        "faults were met"
    );
    shown.push_str(&summary.to_string());
    // A wrong token: AppsFlyer refuses, the streams fail with a message.
    let config = PipelineConfig::from_toml(&text, "real", &env(WRONG_TOKEN)).unwrap();
    let summary = run_ingest(
        &config,
        &lake,
        request,
        &env(WRONG_TOKEN),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let failure = summary.streams["appsflyer.installs_report"]
        .failure
        .clone()
        .unwrap();
    assert!(failure.contains("401"), "{failure}");
    shown.push_str(&summary.to_string());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Retrying call."), "logs were captured");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials::MIXPANEL_USER,
        credentials::MIXPANEL_SECRET
    ));
    // The base64 body of the Apple private key (its second line).
    let apple_key_body = credentials::APPLE_PRIVATE_KEY_PEM
        .lines()
        .nth(1)
        .unwrap()
        .trim();
    assert!(apple_key_body.len() > 40);
    for secret in [
        credentials::MIXPANEL_SECRET,
        credentials::APPSFLYER_TOKEN,
        credentials::SHEETS_API_KEY,
        WRONG_TOKEN,
        basic.as_str(),
        credentials::GOOGLE_ADS_DEVELOPER_TOKEN,
        credentials::GOOGLE_ADS_CLIENT_SECRET,
        credentials::GOOGLE_ADS_REFRESH_TOKEN,
        credentials::META_ACCESS_TOKEN,
        credentials::NAVER_SECRET_KEY,
        apple_key_body,
    ] {
        assert!(!logs.contains(secret), "a credential is in the logs");
        assert!(
            !shown.contains(secret),
            "a credential is in the summary: {shown}"
        );
    }
}
