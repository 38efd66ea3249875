//! The shared call path against a real loopback server: retries on 429 and 5xx honour the
//! server's wait, fatal statuses stop at once, budgets defer calls, and secrets in URLs never
//! reach an error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ltv::config::CallBudget;
use ltv::ingest::budget::SourceBudget;
use ltv::ingest::http::{CallError, RetryPolicy, call, default_verdict};
use ltv::lake::Lake;

/// A server whose `/flaky` answers 429 (Retry-After: 1) then 503 then 200; `/down` always
/// 500; `/denied` 401.
async fn server() -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let app = Router::new()
        .route(
            "/flaky",
            get(move || {
                let h = h.clone();
                async move {
                    let mut headers = HeaderMap::new();
                    match h.fetch_add(1, Ordering::SeqCst) {
                        0 => {
                            headers.insert("retry-after", "1".parse().unwrap());
                            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down")
                        }
                        1 => (StatusCode::SERVICE_UNAVAILABLE, headers, "busy"),
                        _ => (StatusCode::OK, headers, "data"),
                    }
                }
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/denied",
            get(|| async { (StatusCode::UNAUTHORIZED, "bad token") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_with_the_servers_wait() {
    let (base, hits) = server().await;
    let lake = Lake::open("memory://").unwrap();
    let budget = SourceBudget::load(&lake, "test", CallBudget::default())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let reply = call(
        &client,
        &budget,
        "test",
        &quick(),
        || client.get(format!("{base}/flaky?api_token=SECRET")),
        default_verdict,
    )
    .await
    .unwrap();
    assert_eq!(&reply.body[..], b"data");
    assert_eq!((reply.calls, reply.retries), (3, 2));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // The server asked for a second; our own backoff alone would have waited ~10 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_failures_give_up_and_fatal_ones_stop_at_once() {
    let (base, _) = server().await;
    let lake = Lake::open("memory://").unwrap();
    let budget = SourceBudget::load(&lake, "test", CallBudget::default())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let err = call(
        &client,
        &budget,
        "test",
        &quick(),
        || client.get(format!("{base}/down?api_token=SECRET")),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CallError::Exhausted { attempts: 4, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("/down") && !msg.contains("SECRET"), "{msg}");
    let err = call(
        &client,
        &budget,
        "test",
        &quick(),
        || client.get(format!("{base}/denied?api_token=SECRET")),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CallError::Fatal { .. }), "{err}");
    assert!(err.to_string().contains("bad token") && !err.to_string().contains("SECRET"));
    // Connection refused (nothing listens) is retried, then reported without secrets.
    let err = call(
        &client,
        &budget,
        "test",
        &quick(),
        || client.get("http://127.0.0.1:9/x?api_token=SECRET"),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_defers_the_call_without_sending_it() {
    let (base, hits) = server().await;
    let lake = Lake::open("memory://").unwrap();
    let limits = CallBudget {
        per_day: NonZeroU32::new(2),
        ..CallBudget::default()
    };
    let budget = SourceBudget::load(&lake, "test", limits).await.unwrap();
    let client = reqwest::Client::new();
    // Two attempts fit the budget (429, then 503); the third is deferred, unsent.
    let err = call(
        &client,
        &budget,
        "test",
        &quick(),
        || client.get(format!("{base}/flaky")),
        default_verdict,
    )
    .await
    .unwrap_err();
    assert!(err.is_deferral(), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}
