//! Access tokens of the simulated OAuth endpoints (Google Ads, Apple Search Ads). A token
//! carries the instant it was issued (`<prefix><millis>`), so checking one needs no state:
//! it works for the server's token lifetime ([`super::Faults::token_lifetime`]),
//! which may be shorter than the hour the token response claims, to test tokens that stop
//! working early.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use chrono::Utc;

/// What the token responses claim: an hour.
pub(crate) const CLAIMED_LIFE: Duration = Duration::from_secs(3600);

/// A new token with `prefix` (e.g. `ya29.sim-`).
pub(crate) fn issue(prefix: &str) -> String {
    format!("{prefix}{}", Utc::now().timestamp_millis())
}

/// Whether the request's `Authorization: Bearer` token is one of ours and still alive.
pub(crate) fn bearer_alive(headers: &HeaderMap, prefix: &str, lifetime: Option<Duration>) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Some(issued) = token
        .strip_prefix(prefix)
        .and_then(|ms| ms.parse::<i64>().ok())
    else {
        return false;
    };
    let age = Utc::now().timestamp_millis() - issued;
    let life = lifetime.unwrap_or(CLAIMED_LIFE).as_millis() as i64;
    (0..life).contains(&age)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_live_for_the_servers_lifetime() {
        let t = issue("p-");
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        assert!(bearer_alive(&h, "p-", None));
        assert!(!bearer_alive(&h, "q-", None));
        assert!(!bearer_alive(&h, "p-", Some(Duration::ZERO)));
        h.insert(header::AUTHORIZATION, "Bearer p-0".parse().unwrap());
        assert!(!bearer_alive(&h, "p-", None));
    }
}
