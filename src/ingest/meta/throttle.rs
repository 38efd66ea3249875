//! Meta's rate limiting, read from its own signals. Every answer carries usage headers
//! (percentages of the app's, the ad account's and the business use case's allowance);
//! Meta blocks calls once one reaches 100% and then names, in minutes, when access comes
//! back. The connector slows down from 75% so it is rarely blocked at all, and when it is,
//! it waits exactly as long as Meta says (or defers the pull if that is too long).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::connector::MetaTuning;
use super::wire::parse_graph_error;
use crate::ingest::http::{Verdict, default_verdict, retry_after, snippet};

/// What the last answer's headers said about our allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// The highest percentage any header reported (0–100, may exceed 100).
    pub max_pct: f64,
    /// `estimated_time_to_regain_access` (minutes), the largest any use case named.
    pub regain_minutes: u32,
}

/// Rate-limit error codes: 4 (app), 17 (user), 32 (page), 613 (API-specific), and the
/// business-use-case codes 80000–80014 (80000: ads insights).
pub fn is_rate_limit_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613 | 80_000..=80_014)
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn header_json(headers: &HeaderMap, name: &str) -> Option<Value> {
    let text = headers.get(name)?.to_str().ok()?;
    serde_json::from_str(text).ok()
}

impl Usage {
    /// Reads `X-FB-Ads-Insights-Throttle` (`app_id_util_pct`, `acc_id_util_pct`),
    /// `X-Business-Use-Case-Usage` (per business: `call_count`, `total_cputime`,
    /// `total_time`, `estimated_time_to_regain_access`), `X-Ad-Account-Usage`
    /// (`acc_id_util_pct`) and `X-App-Usage` (`call_count`, `total_cputime`, `total_time`).
    /// `None` when the answer carried none of them.
    pub fn from_headers(headers: &HeaderMap) -> Option<Usage> {
        let mut seen = false;
        let mut usage = Usage::default();
        let mut take = |obj: &serde_json::Map<String, Value>, keys: &[&str]| {
            for k in keys {
                if let Some(p) = obj.get(*k).and_then(num) {
                    usage.max_pct = usage.max_pct.max(p);
                }
            }
            if let Some(m) = obj.get("estimated_time_to_regain_access").and_then(num) {
                usage.regain_minutes = usage.regain_minutes.max(m.max(0.0).ceil() as u32);
            }
        };
        if let Some(Value::Object(o)) = header_json(headers, "x-fb-ads-insights-throttle") {
            seen = true;
            take(&o, &["app_id_util_pct", "acc_id_util_pct"]);
        }
        if let Some(Value::Object(o)) = header_json(headers, "x-ad-account-usage") {
            seen = true;
            take(&o, &["acc_id_util_pct"]);
        }
        if let Some(Value::Object(o)) = header_json(headers, "x-app-usage") {
            seen = true;
            take(&o, &["call_count", "total_cputime", "total_time"]);
        }
        if let Some(Value::Object(by_business)) = header_json(headers, "x-business-use-case-usage")
        {
            seen = true;
            for cases in by_business.values() {
                for case in cases.as_array().into_iter().flatten() {
                    if let Value::Object(o) = case {
                        take(o, &["call_count", "total_cputime", "total_time"]);
                    }
                }
            }
        }
        seen.then_some(usage)
    }
}

/// How long to pause before the next call, given the last usage: the named regain time
/// while blocked; from `slow_down_above_pct` a pause growing linearly from `slow_down` to
/// four times that at 100%; otherwise none.
pub fn pause_for(usage: &Usage, tuning: &MetaTuning) -> Option<Duration> {
    if usage.regain_minutes > 0 {
        return Some(tuning.minute.saturating_mul(usage.regain_minutes));
    }
    let from = tuning.slow_down_above_pct?;
    if usage.max_pct < from {
        return None;
    }
    let span = (100.0 - from).max(1.0);
    let factor = (1.0 + 3.0 * (usage.max_pct - from) / span).clamp(1.0, 4.0);
    Some(tuning.slow_down.mul_f64(factor))
}

/// Reads a Graph answer. Rate limits retry after Meta's named regain time (or
/// `Retry-After`, or our backoff), and become a deferral when that is longer than the
/// tuning allows; transient errors and 5xx retry; anything else is fatal, with Meta's code,
/// message and trace id.
pub fn verdict(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    tuning: &MetaTuning,
) -> Verdict {
    if status.is_success() {
        return Verdict::Done;
    }
    let Some(err) = parse_graph_error(body) else {
        return default_verdict(status, headers, body);
    };
    if is_rate_limit_code(err.code) {
        let regain = Usage::from_headers(headers).map_or(0, |u| u.regain_minutes);
        let after = if regain > 0 {
            Some(tuning.minute.saturating_mul(regain))
        } else {
            retry_after(headers)
        };
        if let Some(wait) = after
            && wait > tuning.max_block_wait
        {
            return Verdict::QuotaSpent(format!(
                "{err}; access returns in about {regain} minutes, longer than this run waits"
            ));
        }
        return Verdict::Retry {
            after,
            reason: format!("rate limited: {err}"),
        };
    }
    if err.is_transient || matches!(err.code, 1 | 2) || status.is_server_error() {
        return Verdict::Retry {
            after: retry_after(headers),
            reason: format!("HTTP {}: {err}", status.as_u16()),
        };
    }
    if err.code == 190 {
        return Verdict::Fatal(format!(
            "HTTP {}: the access token was rejected (expired or revoked): {err}",
            status.as_u16()
        ));
    }
    if err.message.is_empty() {
        return Verdict::Fatal(format!("HTTP {}: {}", status.as_u16(), snippet(body)));
    }
    Verdict::Fatal(format!("HTTP {}: {err}", status.as_u16()))
}
