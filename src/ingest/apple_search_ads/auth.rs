//! Apple's OAuth client-credentials flow: a fresh ES256 client secret (see [`super::jwt`]) is
//! traded at `POST https://appleid.apple.com/auth/oauth2/token` (`grant_type=
//! client_credentials`, `client_id`, `client_secret`, `scope=searchadsorg`) for an access
//! token valid an hour, which is cached and shared by every request. When the API root is
//! not Apple's (the local simulated server), the token endpoint is `<root>/auth/oauth2/token`.

use chrono::Utc;

use super::jwt::ClientSecretSigner;
use crate::config::Secret;
use crate::ingest::connector::{PullContext, PullError};
use crate::ingest::oauth::{AccessToken, TokenCache, parse_token_response, token_verdict};

/// The real API root.
pub const API_ROOT: &str = "https://api.searchads.apple.com";

/// Apple's token endpoint.
pub const TOKEN_URL: &str = "https://appleid.apple.com/auth/oauth2/token";

/// Budget scope of token requests.
pub(crate) const TOKEN_SCOPE: &str = "apple_search_ads/oauth";

/// The token endpoint that goes with an API root.
pub fn token_url_for(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let is_apple = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "api.searchads.apple.com"))
        .unwrap_or(false);
    if is_apple {
        TOKEN_URL.to_string()
    } else {
        format!("{base}/auth/oauth2/token")
    }
}

/// The credentials of one API client and its current access token.
pub struct AppleAuth {
    client_id: Secret,
    /// The key, or why it could not be read (reported by every pull rather than panicking
    /// at construction, which cannot fail for key reasons).
    signer: Result<ClientSecretSigner, String>,
    token_url: String,
    tokens: TokenCache,
}

impl std::fmt::Debug for AppleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleAuth")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl AppleAuth {
    pub fn new(
        base_url: &str,
        client_id: Secret,
        team_id: Secret,
        key_id: Secret,
        private_key_pem: Secret,
    ) -> Self {
        let signer = ClientSecretSigner::new(
            private_key_pem.expose(),
            client_id.expose(),
            team_id.expose(),
            key_id.expose(),
        )
        .map_err(|e| format!("the private key cannot be used: {e}"));
        AppleAuth {
            client_id,
            signer,
            token_url: token_url_for(base_url),
            tokens: TokenCache::new(),
        }
    }

    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Why the private key cannot sign, if it cannot (for config checks).
    pub fn key_problem(&self) -> Option<&str> {
        self.signer.as_ref().err().map(String::as_str)
    }

    /// Access tokens fetched so far.
    pub fn tokens_fetched(&self) -> u32 {
        self.tokens.fetches()
    }

    /// Whether a fresh token is held (planning).
    pub fn has_fresh_token(&self) -> bool {
        self.tokens.has_fresh(Utc::now()) == Some(true)
    }

    /// A fresh access token and the calls spent getting it (0 when cached).
    pub async fn token(
        &self,
        ctx: &PullContext<'_>,
        stream: &str,
        partition: &str,
    ) -> Result<(Secret, u32), PullError> {
        self.tokens
            .get(Utc::now(), || self.fetch(ctx, stream, partition))
            .await
    }

    /// Forgets a token the API refused.
    pub async fn invalidate(&self, refused: &Secret) {
        self.tokens.invalidate(refused).await;
    }

    async fn fetch(
        &self,
        ctx: &PullContext<'_>,
        stream: &str,
        partition: &str,
    ) -> Result<(AccessToken, u32), PullError> {
        let signer = self.signer.as_ref().map_err(|m| PullError::Source {
            stream: stream.to_string(),
            partition: partition.to_string(),
            message: m.clone(),
        })?;
        let now = Utc::now();
        let secret = signer.client_secret(now).map_err(|e| PullError::Source {
            stream: stream.to_string(),
            partition: partition.to_string(),
            message: e.to_string(),
        })?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.expose()),
            ("client_secret", secret.as_str()),
            ("scope", "searchadsorg"),
        ];
        let (token, calls, _) = crate::ingest::connector::fetch_parsed(
            ctx,
            TOKEN_SCOPE,
            || ctx.client.post(&self.token_url).form(&form),
            token_verdict,
            |b| parse_token_response(b, "apple_search_ads.oauth", now),
        )
        .await?;
        tracing::info!(source = "apple_search_ads", expires_at = %token.expires_at, "Fetched an access token.");
        Ok((token, calls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_endpoint_follows_the_api_root() {
        assert_eq!(token_url_for(API_ROOT), TOKEN_URL);
        assert_eq!(
            token_url_for("http://127.0.0.1:4000/apple_search_ads"),
            "http://127.0.0.1:4000/apple_search_ads/auth/oauth2/token"
        );
    }

    #[test]
    fn a_bad_key_is_reported_without_its_text() {
        let auth = AppleAuth::new(
            API_ROOT,
            Secret::new("SEARCHADS.c"),
            Secret::new("SEARCHADS.t"),
            Secret::new("k"),
            Secret::new(
                "-----BEGIN EC PRIVATE KEY-----\nAAAAsecretish\n-----END EC PRIVATE KEY-----",
            ),
        );
        let problem = auth.key_problem().unwrap_or_default().to_string();
        assert!(problem.contains("EC PRIVATE KEY"), "{problem}");
        assert!(!problem.contains("secretish"), "{problem}");
    }
}
