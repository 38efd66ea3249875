//! The local API server: serves the simulated world on loopback through each source's real
//! API (paths, auth, paging, truncation, errors), so the real connectors run end to end in
//! the demo, the tests and the benchmarks. Faults are injected on request, deterministically:
//! the first requests of each route are throttled, fail, or come back cut short or malformed.

mod apple_search_ads;
mod appsflyer;
mod google_ads;
mod meta;
mod mixpanel;
mod naver;
mod sheets;
mod tokens;

pub use meta::MetaOptions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use polars::prelude::{DataFrame, IntoLazy as _, LazyFrame};

use crate::lake::{Lake, LakeError};

/// Credentials the simulated APIs accept; simulated sources need no configured secrets.
pub mod credentials {
    pub const MIXPANEL_USER: &str = "sim-service-account";
    pub const MIXPANEL_SECRET: &str = "sim-mixpanel-secret";
    pub const APPSFLYER_TOKEN: &str = "sim-appsflyer-token";
    pub const SHEETS_API_KEY: &str = "sim-sheets-key";
    pub const GOOGLE_ADS_DEVELOPER_TOKEN: &str = "sim-google-ads-developer-token";
    pub const GOOGLE_ADS_CLIENT_ID: &str = "sim-google-ads.apps.googleusercontent.com";
    pub const GOOGLE_ADS_CLIENT_SECRET: &str = "sim-google-ads-client-secret";
    pub const GOOGLE_ADS_REFRESH_TOKEN: &str = "sim-google-ads-refresh-token";
    pub const APPLE_CLIENT_ID: &str = "SEARCHADS.sim-client-0001";
    pub const APPLE_TEAM_ID: &str = "SEARCHADS.sim-team-0001";
    pub const APPLE_KEY_ID: &str = "sim-key-0001";
    /// The simulated Apple Ads API client's P-256 private key, made for the simulation only,
    /// in the SEC 1 PEM form Apple's instructions produce. The connector signs its client
    /// secret with it; the local token endpoint verifies with [`APPLE_PUBLIC_KEY_PEM`].
    pub const APPLE_PRIVATE_KEY_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIOuck15zYDWk821w05mdzmO3nL8d7TOPo8/vLOif1UqxoAoGCCqGSM49\n\
AwEHoUQDQgAECACNBEZJD9a2EWxIezFlQb+bjq+gxOwCx0GprmIlk0qXJ+Zei4Uf\n\
F3uLOaCNVeRNJ/jn0FJGCc7qtqM/SUqQVg==\n\
-----END EC PRIVATE KEY-----";
    /// The public half of [`APPLE_PRIVATE_KEY_PEM`], as uploaded to Apple Ads.
    pub const APPLE_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECACNBEZJD9a2EWxIezFlQb+bjq+g\n\
xOwCx0GprmIlk0qXJ+Zei4UfF3uLOaCNVeRNJ/jn0FJGCc7qtqM/SUqQVg==\n\
-----END PUBLIC KEY-----";
    pub const META_ACCESS_TOKEN: &str = "sim-meta-access-token";
    pub const NAVER_API_KEY: &str = "sim-naver-api-key";
    pub const NAVER_SECRET_KEY: &str = "sim-naver-secret-key";
}

/// Faults to inject. Counted per route (AppsFlyer: per app and report): request `n` (from 0)
/// meets, in order, `throttle` throttled answers, then `server_errors` HTTP 5xx, then
/// `truncated` bodies cut short, then `malformed` broken bodies, then normal service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub throttle: u32,
    pub server_errors: u32,
    pub truncated: u32,
    pub malformed: u32,
    /// Every answer waits this long first (a slow API).
    pub delay: Duration,
    /// Calls a route answers per UTC day before it says its quota is spent.
    pub daily_quota: Option<u32>,
    /// How long access tokens of the simulated OAuth endpoints really work (default: the
    /// hour they claim); shorter makes tokens stop working before their client expects.
    pub token_lifetime: Option<Duration>,
}

/// What request number `n` of a route gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Throttle,
    ServerError,
    Truncate,
    Malform,
    QuotaSpent,
    None,
}

impl Faults {
    fn fault(&self, n: u32) -> Fault {
        if self.daily_quota.is_some_and(|q| n >= q) {
            return Fault::QuotaSpent;
        }
        let mut edge = self.throttle;
        if n < edge {
            return Fault::Throttle;
        }
        edge += self.server_errors;
        if n < edge {
            return Fault::ServerError;
        }
        edge += self.truncated;
        if n < edge {
            return Fault::Truncate;
        }
        edge += self.malformed;
        if n < edge {
            return Fault::Malform;
        }
        Fault::None
    }
}

/// How the local server behaves.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub faults: Faults,
    /// The simulated Mixpanel project is an old one that exports `time` in this zone's
    /// wall-clock time (the connector's `project_timezone` must match).
    pub mixpanel_project_timezone: Option<chrono_tz::Tz>,
    /// Meta's usage metering and report runs.
    pub meta: MetaOptions,
}

/// The `sim.installs` manifest stamps a cached frame was read under.
type InstallsVersion = Vec<(NaiveDate, String)>;

#[derive(Debug)]
pub(crate) struct ServerState {
    pub lake: Lake,
    pub faults: Faults,
    pub options: ServerOptions,
    /// Requests seen per route key.
    counts: Mutex<HashMap<String, u32>>,
    /// The profiles of the open Engage session, loaded by its page 0: later pages slice this
    /// snapshot instead of rescanning and resorting every profile of the world per page
    /// (which made a full Engage pull quadratic in the world's users).
    engage_session: Mutex<Option<Arc<DataFrame>>>,
    /// Every install of the world, read once per set of `sim.installs` versions.
    installs: Mutex<Option<(InstallsVersion, DataFrame)>>,
}

impl ServerState {
    fn new(lake: Lake, options: ServerOptions) -> Self {
        ServerState {
            lake,
            faults: options.faults.clone(),
            options,
            counts: Mutex::new(HashMap::new()),
            engage_session: Mutex::new(None),
            installs: Mutex::new(None),
        }
    }

    /// Every install of the world ([`crate::sim::serve::world_installs`]), cached: each
    /// export and in-app report call joins its events to their installs, and rescanning
    /// every install partition per call was most of those calls' cost. The cache is keyed
    /// by the partitions' manifest stamps (one listing, no manifest read), so a world
    /// rewritten under a running server is read afresh.
    pub(crate) async fn world_installs(&self) -> Result<LazyFrame, LakeError> {
        let table = crate::sim::serve::table("sim.installs")?;
        let key = self.lake.manifest_stamps(table).await?;
        if let Some((cached, frame)) = &*self.installs.lock().unwrap_or_else(|p| p.into_inner())
            && *cached == key
        {
            return Ok(frame.clone().lazy());
        }
        let frame = crate::sim::serve::world_installs(&self.lake)
            .await?
            .collect()
            .map_err(|source| LakeError::Scan {
                table: table.qualified_name(),
                source,
            })?;
        *self.installs.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, frame.clone()));
        Ok(frame.lazy())
    }

    /// Counts a request on `route` and says which fault (if any) it meets.
    pub(crate) async fn admit(&self, route: &str) -> Fault {
        let n = {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let c = counts.entry(route.to_string()).or_default();
            *c += 1;
            *c - 1
        };
        if !self.faults.delay.is_zero() {
            tokio::time::sleep(self.faults.delay).await;
        }
        self.faults.fault(n)
    }
}

/// A running local server.
#[derive(Debug)]
pub struct SimServer {
    pub base_url: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl SimServer {
    /// Starts the server on an ephemeral loopback port, serving the world in `lake`.
    pub async fn start(lake: Lake, options: ServerOptions) -> std::io::Result<SimServer> {
        let state = Arc::new(ServerState::new(lake, options));
        let app = Router::new()
            .nest("/mixpanel", mixpanel::routes())
            .nest("/appsflyer", appsflyer::routes())
            .nest("/sheets", sheets::routes())
            .nest("/google_ads", google_ads::routes())
            .nest("/apple_search_ads", apple_search_ads::routes())
            .nest("/meta", meta::routes())
            .nest("/naver", naver::routes())
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Local API server stopped.");
            }
        });
        Ok(SimServer {
            base_url: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// Base URL of one source's API on this server, e.g. `http://127.0.0.1:4321/mixpanel`.
    pub fn url(&self, source: &str) -> String {
        format!("{}/{source}", self.base_url)
    }

    /// Requests the server has seen on routes whose key starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> u32 {
        let counts = self.state.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| *v)
            .sum()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An error answer with a body.
pub(crate) fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<String>,
) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        body.into(),
    )
        .into_response()
}

/// The world could not be read: a bug or a broken lake, answered as a 500 naming it.
pub(crate) fn world_error(e: impl std::fmt::Display) -> Response {
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain",
        format!("simulated world unavailable: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::unwrap_used)]
    async fn the_installs_cache_follows_a_rewritten_world() {
        let (lake, sim) = crate::test_support::small_world(2, 200).await;
        let state = ServerState::new(lake.clone(), ServerOptions::default());
        let rows = |lf: LazyFrame| lf.collect().unwrap().height();
        let first = rows(state.world_installs().await.unwrap());
        assert_eq!(first, 400);
        assert_eq!(rows(state.world_installs().await.unwrap()), first);
        // A new version of the first day with half its installs: the next call sees it.
        let table = crate::sim::serve::table("sim.installs").unwrap();
        let day = lake
            .scan(table, crate::lake::DateRange::day(sim.start_date))
            .await
            .unwrap()
            .limit(100)
            .collect()
            .unwrap();
        lake.write_partition(table, sim.start_date, day)
            .await
            .unwrap();
        assert_eq!(rows(state.world_installs().await.unwrap()), 300);
    }

    #[test]
    fn faults_come_in_order_then_service() {
        let f = Faults {
            throttle: 1,
            server_errors: 2,
            truncated: 1,
            malformed: 1,
            ..Faults::default()
        };
        let got: Vec<Fault> = (0..7).map(|n| f.fault(n)).collect();
        assert_eq!(
            got,
            [
                Fault::Throttle,
                Fault::ServerError,
                Fault::ServerError,
                Fault::Truncate,
                Fault::Malform,
                Fault::None,
                Fault::None
            ]
        );
        let q = Faults {
            daily_quota: Some(2),
            ..Faults::default()
        };
        assert_eq!(q.fault(1), Fault::None);
        assert_eq!(q.fault(2), Fault::QuotaSpent);
    }
}
