//! Calling a source's API: every attempt is taken from the source's budget, throttling and
//! server errors are retried with exponential backoff and jitter, and the server's own wait
//! (`Retry-After`, or a source-specific hint) wins over our guess. URLs in messages lose their
//! query strings: some APIs take credentials there.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use super::budget::{OverBudget, SourceBudget};
use crate::lake::LakeError;

/// What a response means for the pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Throttled or a transient server failure: try again, after `after` if the server said.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The source's quota is spent (e.g. AppsFlyer's daily limit, answered as HTTP 400):
    /// defer the pull, do not retry.
    QuotaSpent(String),
    /// A request the server will never accept (bad credentials, bad parameters).
    Fatal(String),
}

/// The default reading of a response: 2xx done; 408, 429 and 5xx retried (honouring
/// `Retry-After`); any other status fatal.
pub fn default_verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: format!("HTTP {code}"),
        };
    }
    Verdict::Fatal(format!("HTTP {code}: {}", snippet(body)))
}

/// `Retry-After` in seconds (HTTP dates are rare from APIs and read as "no hint").
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The first 300 characters of a body, for messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s.replace('\n', " ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for attempt `n` (1-based), unless the server
    /// named its own wait.
    fn delay(&self, attempt: u32, server: Option<Duration>) -> Duration {
        if let Some(d) = server {
            return d;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.max_delay);
        let jitter: f64 = rand::rng().random_range(0.5..1.0);
        cap.mul_f64(jitter)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{source_name} {url}: {reason}")]
    Fatal {
        source_name: String,
        url: String,
        reason: String,
    },
    #[error("{source_name} {url}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        source_name: String,
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{source_name}: budget spent, call deferred: {0}", source_name = .1)]
    OverBudget(OverBudget, String),
    #[error("{source_name} {url}: daily quota spent: {reason}")]
    QuotaSpent {
        source_name: String,
        url: String,
        reason: String,
    },
    #[error("{source_name}: cannot build the request: {reason}")]
    Build { source_name: String, reason: String },
    #[error(transparent)]
    Ledger(#[from] LakeError),
}

impl CallError {
    /// A deferral (budget or quota) rather than a failure: the pull is retried next run.
    pub fn is_deferral(&self) -> bool {
        matches!(
            self,
            CallError::OverBudget(..) | CallError::QuotaSpent { .. }
        )
    }
}

/// A response body with what it cost.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub calls: u32,
    pub retries: u32,
}

/// Makes one logical call: builds a request per attempt with `make`, spends budget per
/// attempt, and reads each response with `verdict`.
pub async fn call(
    client: &reqwest::Client,
    budget: &SourceBudget,
    scope: &str,
    policy: &RetryPolicy,
    make: impl Fn() -> RequestBuilder,
    verdict: impl Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict,
) -> Result<Reply, CallError> {
    let source_name = budget.source().to_string();
    let mut retries = 0;
    let mut last = String::new();
    for attempt in 1..=policy.max_attempts {
        let request = make().build().map_err(|e| CallError::Build {
            source_name: source_name.clone(),
            reason: redact(&e.to_string()),
        })?;
        let url = display_url(request.url());
        if let Err(over) = budget.acquire(scope, Utc::now()).await? {
            return Err(CallError::OverBudget(over, source_name));
        }
        let outcome = match client.execute(request).await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match resp.bytes().await {
                    Ok(body) => match verdict(status, &headers, &body) {
                        Verdict::Done => {
                            return Ok(Reply {
                                status,
                                headers,
                                body,
                                calls: attempt,
                                retries,
                            });
                        }
                        v => v,
                    },
                    Err(e) => Verdict::Retry {
                        after: None,
                        reason: format!("body cut short: {}", redact(&e.to_string())),
                    },
                }
            }
            Err(e) => Verdict::Retry {
                after: None,
                reason: transport_reason(e),
            },
        };
        match outcome {
            Verdict::Retry { after, reason } => {
                last = reason;
                if attempt < policy.max_attempts {
                    let wait = policy.delay(attempt, after);
                    tracing::warn!(source = %source_name, %url, attempt, wait_ms = wait.as_millis() as u64, reason = %last, "Retrying call.");
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                if attempt == policy.max_attempts {
                    return Err(CallError::Exhausted {
                        source_name,
                        url,
                        attempts: attempt,
                        last,
                    });
                }
            }
            Verdict::QuotaSpent(reason) => {
                return Err(CallError::QuotaSpent {
                    source_name,
                    url,
                    reason,
                });
            }
            Verdict::Fatal(reason) => {
                return Err(CallError::Fatal {
                    source_name,
                    url,
                    reason,
                });
            }
            Verdict::Done => {}
        }
    }
    Err(CallError::Exhausted {
        source_name,
        url: String::new(),
        attempts: policy.max_attempts,
        last,
    })
}

/// Why a request got no answer: a timeout said plainly, else the error with its causes
/// (reqwest's own message is only "error sending request"), URLs redacted.
fn transport_reason(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out waiting for the server".to_string();
    }
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        reason.push_str(": ");
        reason.push_str(&c.to_string());
        cause = c.source();
    }
    redact(&reason)
}

/// A URL for messages: scheme, host and path; query parameter names without their values.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut s = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    );
    if let Some(port) = url.port() {
        s = format!(
            "{}://{}:{port}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.path()
        );
    }
    let names: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=…")).collect();
    if !names.is_empty() {
        s.push('?');
        s.push_str(&names.join("&"));
    }
    s
}

/// Removes query strings from URLs inside a message (reqwest errors quote the URL).
fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| match w.split_once('?') {
            Some((head, _)) if head.contains("://") => format!("{head}?…"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_lose_their_query_values() {
        let url = reqwest::Url::parse("https://hq1.appsflyer.com/api/raw-data/export/app/x/installs_report/v5?from=2026-01-01&api_token=SECRET").unwrap();
        let shown = display_url(&url);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("api_token=…"), "{shown}");
        let msg = redact("error sending request for url (https://a.b/c?token=SECRET&x=1)");
        assert!(!msg.contains("SECRET"), "{msg}");
    }

    #[test]
    fn servers_wait_wins_and_backoff_grows() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        let d1 = p.delay(1, None);
        let d4 = p.delay(4, None);
        assert!(d1 <= Duration::from_millis(500) && d1 >= Duration::from_millis(250));
        assert!(d4 >= Duration::from_secs(2) && d4 <= Duration::from_secs(4));
        assert!(p.delay(30, None) <= p.max_delay);
    }

    #[test]
    fn default_verdicts() {
        let h = HeaderMap::new();
        assert_eq!(default_verdict(StatusCode::OK, &h, b""), Verdict::Done);
        assert!(matches!(
            default_verdict(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            default_verdict(StatusCode::BAD_GATEWAY, &h, b""),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            default_verdict(StatusCode::UNAUTHORIZED, &h, b"no"),
            Verdict::Fatal(_)
        ));
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(
            default_verdict(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Verdict::Retry {
                after: Some(Duration::from_secs(3)),
                reason: "HTTP 429".into()
            }
        );
    }
}
