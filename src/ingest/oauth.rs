//! OAuth access tokens for sources that trade a long-lived credential for a short-lived
//! bearer token (Google Ads: the refresh-token grant; Apple Search Ads: the client-credentials
//! grant with a signed client secret). A token is fetched once, shared by every pull of the
//! connector and reused until shortly before it expires; a request the API refuses with 401 is
//! answered by refreshing the token once (it may have been revoked or expired early), and a
//! second refusal is a real credential problem.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::ParseError;
use super::connector::PullError;
use super::http::{Verdict, default_verdict, snippet};
use crate::config::Secret;

/// A token is not used in its last minute, so it cannot expire in flight.
const EXPIRY_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A bearer token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: Secret,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// Usable at `now`: not within the last minute of its life.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now + EXPIRY_MARGIN < self.expires_at
    }
}

/// The standard OAuth 2.0 token response (RFC 6749 §5.1), as both Google and Apple send it.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<f64>,
    #[serde(default)]
    token_type: Option<String>,
}

/// Reads a token response. `stream` labels errors (`google_ads.oauth`); the body is never
/// quoted in them since it holds the token.
pub fn parse_token_response(
    body: &[u8],
    stream: &str,
    now: DateTime<Utc>,
) -> Result<AccessToken, ParseError> {
    let fail = |m: &str| ParseError::new(stream, "token", m);
    let resp: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        let err = fail(&format!(
            "the token response is not the expected JSON object ({})",
            json_problem(&e)
        ));
        if e.is_eof() { err.truncated() } else { err }
    })?;
    if let Some(t) = &resp.token_type
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(fail(&format!("token_type is {t:?}, not Bearer")).in_column("token_type"));
    }
    if resp.access_token.trim().is_empty() {
        return Err(fail("access_token is empty").in_column("access_token"));
    }
    // RFC 6749 makes expires_in optional; both sources document an hour.
    let secs = resp.expires_in.unwrap_or(3600.0);
    if !secs.is_finite() || secs <= 0.0 {
        return Err(fail(&format!("expires_in is {secs}")).in_column("expires_in"));
    }
    let life = chrono::TimeDelta::milliseconds((secs.min(1e9) * 1000.0) as i64);
    Ok(AccessToken {
        value: Secret::new(resp.access_token),
        expires_at: now + life,
    })
}

/// What kind of JSON problem `e` is, for messages that must not quote the body.
pub(crate) fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected fields or types",
        serde_json::error::Category::Eof => "body ends early",
    }
}

/// How a token endpoint's answer reads: 2xx done, 429/5xx retried, and the OAuth error codes
/// (`invalid_client`, `invalid_grant`...) fatal with the code and description, which name the
/// problem without revealing any credential.
pub fn token_verdict(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Verdict {
    if status.is_success() || status.as_u16() == 429 || status.is_server_error() {
        return default_verdict(status, headers, body);
    }
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => Verdict::Fatal(format!(
            "token endpoint refused the credentials (HTTP {}): {}{}",
            status.as_u16(),
            e.error,
            e.error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )),
        Err(_) => Verdict::Fatal(format!(
            "token endpoint answered HTTP {}: {}",
            status.as_u16(),
            snippet(body)
        )),
    }
}

/// The connector's current token, fetched when missing or stale. Pulls running at once wait
/// for one fetch instead of each making their own.
#[derive(Debug, Default)]
pub struct TokenCache {
    slot: Mutex<Option<AccessToken>>,
    fetches: std::sync::atomic::AtomicU32,
}

impl TokenCache {
    pub fn new() -> Self {
        TokenCache::default()
    }

    /// A fresh token: the cached one, or a new one from `fetch` (which returns the token and
    /// the calls it cost). Returns the token and the calls spent here (0 when cached).
    pub async fn get<F, Fut>(
        &self,
        now: DateTime<Utc>,
        fetch: F,
    ) -> Result<(Secret, u32), PullError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(AccessToken, u32), PullError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(t) = slot.as_ref()
            && t.is_fresh(now)
        {
            return Ok((t.value.clone(), 0));
        }
        let (token, calls) = fetch().await?;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = token.value.clone();
        *slot = Some(token);
        Ok((value, calls))
    }

    /// Forgets `refused` (the API answered 401 to it), unless another pull already replaced it.
    pub async fn invalidate(&self, refused: &Secret) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|t| &t.value == refused) {
            *slot = None;
        }
    }

    /// Whether a fresh token is cached now (planning: no token call needed). `None` when
    /// another task holds the cache.
    pub fn has_fresh(&self, now: DateTime<Utc>) -> Option<bool> {
        self.slot
            .try_lock()
            .ok()
            .map(|s| s.as_ref().is_some_and(|t| t.is_fresh(now)))
    }

    /// Tokens fetched so far by this cache.
    pub fn fetches(&self) -> u32 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Parses a protobuf `Duration` as JSON writes it (`"30s"`, `"1.500s"`), as Google sends
/// `retryDelay`.
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn token_responses_are_read_and_bad_ones_named() {
        let now = at("2026-01-03T10:00:00Z");
        let t = parse_token_response(
            br#"{"access_token":"ya29.abc","expires_in":3599,"scope":"https://www.googleapis.com/auth/adwords","token_type":"Bearer"}"#,
            "google_ads.oauth",
            now,
        )
        .unwrap();
        assert_eq!(t.value.expose(), "ya29.abc");
        assert_eq!(t.expires_at, at("2026-01-03T10:59:59Z"));
        assert!(t.is_fresh(at("2026-01-03T10:58:00Z")));
        assert!(!t.is_fresh(at("2026-01-03T10:59:30Z")));
        let apple = parse_token_response(
            &crate::test_support::fixture("apple_search_ads", "token.json"),
            "apple_search_ads.oauth",
            now,
        )
        .unwrap();
        assert_eq!(apple.expires_at, at("2026-01-03T11:00:00Z"));
        let cut =
            parse_token_response(br#"{"access_token":"ya29.abc","expi"#, "x", now).unwrap_err();
        assert!(cut.retryable, "{cut}");
        let mac = parse_token_response(br#"{"access_token":"a","token_type":"MAC"}"#, "x", now)
            .unwrap_err();
        assert_eq!(mac.column.as_deref(), Some("token_type"));
        assert!(!mac.to_string().contains("\"a\""));
    }

    #[test]
    fn oauth_errors_are_fatal_and_name_the_code() {
        let h = reqwest::header::HeaderMap::new();
        let v = token_verdict(
            reqwest::StatusCode::BAD_REQUEST,
            &h,
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        );
        assert!(
            matches!(&v, Verdict::Fatal(m) if m.contains("invalid_grant") && m.contains("revoked")),
            "{v:?}"
        );
        assert!(matches!(
            token_verdict(reqwest::StatusCode::SERVICE_UNAVAILABLE, &h, b""),
            Verdict::Retry { .. }
        ));
    }

    #[tokio::test]
    async fn the_cache_fetches_once_until_stale_or_refused() {
        let cache = TokenCache::new();
        let t0 = at("2026-01-03T10:00:00Z");
        let token = |v: &str, exp: DateTime<Utc>| AccessToken {
            value: Secret::new(v),
            expires_at: exp,
        };
        let hour = t0 + chrono::TimeDelta::hours(1);
        let (a, calls) = cache
            .get(t0, || async { Ok((token("a", hour), 1)) })
            .await
            .unwrap();
        assert_eq!((a.expose(), calls), ("a", 1));
        // Reused while fresh: the fetch is not called.
        let (a2, calls) = cache
            .get(t0 + chrono::TimeDelta::minutes(30), || async {
                Err(PullError::Source {
                    stream: "x".into(),
                    partition: "p".into(),
                    message: "must not fetch".into(),
                })
            })
            .await
            .unwrap();
        assert_eq!((a2.expose(), calls), ("a", 0));
        // Stale near the end of its life: fetched again.
        let late = hour - chrono::TimeDelta::seconds(30);
        let (b, _) = cache
            .get(late, || async {
                Ok((token("b", late + chrono::TimeDelta::hours(1)), 1))
            })
            .await
            .unwrap();
        assert_eq!(b.expose(), "b");
        // Invalidating an older token leaves the new one; invalidating the current one drops it.
        cache.invalidate(&Secret::new("a")).await;
        assert_eq!(cache.has_fresh(late), Some(true));
        cache.invalidate(&b).await;
        assert_eq!(cache.has_fresh(late), Some(false));
        assert_eq!(cache.fetches(), 2);
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_proto_duration("1.5s"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_proto_duration("30"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
    }
}
