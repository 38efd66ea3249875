//! The Google Ads connector: one `searchStream` call per customer and report day, behind an
//! access token from the refresh-token grant that is fetched once and reused.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use polars::prelude::DataFrame;

use super::wire::{STREAM, TABLE, is_token_refusal, parse_search_stream, query, verdict};
use crate::config::{GoogleAdsSource, Secret, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
    partition_label,
};
use crate::ingest::oauth::{AccessToken, TokenCache, parse_token_response, token_verdict};
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// The real API root.
pub const API_ROOT: &str = "https://googleads.googleapis.com";

/// Google's OAuth 2.0 token endpoint.
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Budget scope of API calls: the developer token's daily operations.
const SCOPE: &str = "google_ads";

/// Budget scope of token requests, which do not count against the API quota.
const TOKEN_SCOPE: &str = "google_ads/oauth";

/// The token endpoint that goes with an API root: Google's own for the real API, and
/// `<root>/token` for any other root (the local simulated server serves both).
pub fn token_url_for(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let is_google = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "googleads.googleapis.com"))
        .unwrap_or(false);
    if is_google {
        TOKEN_URL.to_string()
    } else {
        format!("{base}/token")
    }
}

/// Collects `google_ads.campaign_daily`.
pub struct GoogleAdsConnector {
    customer_ids: Vec<String>,
    login_customer_id: Option<String>,
    api_version: String,
    base_url: String,
    token_url: String,
    developer_token: Secret,
    client_id: Secret,
    client_secret: Secret,
    refresh_token: Secret,
    streams: Vec<StreamSpec>,
    tokens: TokenCache,
}

impl std::fmt::Debug for GoogleAdsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAdsConnector")
            .field("customer_ids", &self.customer_ids)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl GoogleAdsConnector {
    /// A connector for the customers of `settings`, calling the API at `base_url` (e.g.
    /// `https://googleads.googleapis.com`, or `http://127.0.0.1:PORT/google_ads` for the local
    /// server; see [`token_url_for`]).
    pub fn new(
        settings: &GoogleAdsSource,
        base_url: &str,
        developer_token: Secret,
        client_id: Secret,
        client_secret: Secret,
        refresh_token: Secret,
    ) -> Result<Self, SchemaError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        // Customer ids are written with dashes in the UI; the API wants the bare digits.
        let bare = |id: &str| id.chars().filter(|c| *c != '-').collect::<String>();
        Ok(GoogleAdsConnector {
            customer_ids: settings.customer_ids.iter().map(|c| bare(c)).collect(),
            login_customer_id: settings.login_customer_id.as_deref().map(bare),
            api_version: settings.api_version.clone(),
            token_url: token_url_for(&base_url),
            base_url,
            developer_token,
            client_id,
            client_secret,
            refresh_token,
            streams: vec![StreamSpec::new(STREAM, TABLE, Cursor::ReportDay)?],
            tokens: TokenCache::new(),
        })
    }

    /// Where access tokens come from.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Access tokens fetched by this connector so far.
    pub fn tokens_fetched(&self) -> u32 {
        self.tokens.fetches()
    }

    async fn fetch_token(&self, ctx: &PullContext<'_>) -> Result<(AccessToken, u32), PullError> {
        let now = Utc::now();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
            ("refresh_token", self.refresh_token.expose()),
        ];
        let (token, calls, _) = fetch_parsed(
            ctx,
            TOKEN_SCOPE,
            || ctx.client.post(&self.token_url).form(&form),
            token_verdict,
            |b| parse_token_response(b, "google_ads.oauth", now),
        )
        .await?;
        tracing::info!(source = "google_ads", expires_at = %token.expires_at, "Fetched an access token.");
        Ok((token, calls))
    }

    /// One customer's day. A 401 that refuses the token (expired early or revoked) gets one
    /// new token and one more try.
    async fn customer_day(
        &self,
        ctx: &PullContext<'_>,
        customer: &str,
        day: NaiveDate,
        pulled: &mut Pulled,
    ) -> Result<DataFrame, PullError> {
        let partition = partition_label(day);
        let url = format!(
            "{}/{}/customers/{customer}/googleAds:searchStream",
            self.base_url, self.api_version
        );
        let body = serde_json::json!({ "query": query(day) });
        let mut refreshed = false;
        loop {
            let (token, calls) = self
                .tokens
                .get(Utc::now(), || self.fetch_token(ctx))
                .await?;
            pulled.calls += calls;
            let refused = AtomicBool::new(false);
            let result = fetch_parsed(
                ctx,
                SCOPE,
                || {
                    let mut request = ctx
                        .client
                        .post(&url)
                        .bearer_auth(token.expose())
                        .header("developer-token", self.developer_token.expose())
                        .json(&body);
                    if let Some(login) = &self.login_customer_id {
                        request = request.header("login-customer-id", login);
                    }
                    request
                },
                |status, headers, bytes| {
                    if is_token_refusal(status, bytes) {
                        refused.store(true, Ordering::Relaxed);
                    }
                    verdict(status, headers, bytes)
                },
                |bytes| parse_search_stream(bytes, ctx.pulled_at, &partition, Some(day)),
            )
            .await;
            match result {
                Ok((frame, calls, retries)) => {
                    pulled.calls += calls;
                    pulled.retries += retries;
                    tracing::info!(stream = STREAM, customer, %day, rows = frame.height(), "Pulled a customer's day.");
                    return Ok(frame);
                }
                Err(_) if !refreshed && refused.load(Ordering::Relaxed) => {
                    tracing::warn!(stream = STREAM, customer, %day, "Access token refused; fetching a new one.");
                    // The refused call was made and charged.
                    pulled.calls += 1;
                    pulled.retries += 1;
                    refreshed = true;
                    self.tokens.invalidate(&token).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Connector for GoogleAdsConnector {
    fn source(&self) -> SourceKind {
        SourceKind::GoogleAds
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    /// One `searchStream` call per customer whatever the volume (the stream carries every
    /// row), plus a token request when no fresh token is held.
    fn plan(
        &self,
        _stream: &StreamSpec,
        _day: NaiveDate,
        _history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let mut calls = vec![PlannedCalls {
            scope: SCOPE.to_string(),
            calls: u32::try_from(self.customer_ids.len()).unwrap_or(u32::MAX),
        }];
        if self.tokens.has_fresh(Utc::now()) != Some(true) {
            calls.push(PlannedCalls {
                scope: TOKEN_SCOPE.to_string(),
                calls: 1,
            });
        }
        calls
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        if stream.name != STREAM {
            return Err(PullError::Source {
                stream: stream.name.clone(),
                partition: partition_label(day),
                message: format!("google_ads has no stream {}", stream.name),
            });
        }
        let mut pulled = Pulled::default();
        for customer in &self.customer_ids {
            let frame = self.customer_day(ctx, customer, day, &mut pulled).await?;
            pulled.frames.push(frame);
        }
        Ok(pulled)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_day_costs_one_call_per_customer_and_a_token() {
        let settings: GoogleAdsSource = toml::from_str(
            "customer_ids = [\"123-456-7890\", \"1000000001\"]\nlogin_customer_id = \"999-000-1111\"\n",
        )
        .unwrap();
        let s = || Secret::new("x");
        let c = GoogleAdsConnector::new(&settings, API_ROOT, s(), s(), s(), s()).unwrap();
        assert_eq!(c.customer_ids, ["1234567890", "1000000001"]);
        assert_eq!(c.login_customer_id.as_deref(), Some("9990001111"));
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let plan = c.plan(&c.streams()[0], day, &StreamState::default());
        assert_eq!(
            plan,
            [
                PlannedCalls {
                    scope: SCOPE.into(),
                    calls: 2
                },
                PlannedCalls {
                    scope: TOKEN_SCOPE.into(),
                    calls: 1
                }
            ]
        );
        assert_eq!(c.token_url(), TOKEN_URL);
        assert!(!format!("{c:?}").contains('x'), "no secret in Debug");
    }

    #[test]
    fn the_token_endpoint_follows_the_api_root() {
        assert_eq!(token_url_for(API_ROOT), TOKEN_URL);
        assert_eq!(
            token_url_for("https://googleads.googleapis.com/"),
            TOKEN_URL
        );
        assert_eq!(
            token_url_for("http://127.0.0.1:4000/google_ads/"),
            "http://127.0.0.1:4000/google_ads/token"
        );
    }
}
