//! Call budgets: how many API calls each source may still make. Per-second and per-minute
//! limits pace calls inside one run (a `governor` limiter); per-hour and per-day quotas are
//! counted in a ledger under `_state/budgets/`, so two runs on the same day share one budget.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::CallBudget;
use crate::lake::{Lake, LakeError};

/// A quota window the ledger counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
}

impl Window {
    /// The key of the window that holds `t` (UTC).
    fn key(self, t: DateTime<Utc>) -> String {
        match self {
            Window::Hour => t.format("%Y-%m-%dT%H").to_string(),
            Window::Day => t.format("%Y-%m-%d").to_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }
}

/// A call the budget does not allow now: the pull is deferred, not failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scope}: {used} of {limit} calls per {window} already spent (window {key})")]
pub struct OverBudget {
    pub scope: String,
    pub window: &'static str,
    pub key: String,
    pub used: u32,
    pub limit: u32,
}

/// Calls counted per scope and window, as stored in the lake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LedgerDoc {
    /// scope → window key (e.g. `2026-01-03`, `2026-01-03T07`) → calls.
    scopes: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The budgets of one source. A scope is the unit a quota applies to: the source itself,
/// or e.g. `appsflyer/<app>/<report>` for AppsFlyer's per-report daily quota.
pub struct SourceBudget {
    source: String,
    limits: CallBudget,
    pacer: Option<DefaultDirectRateLimiter>,
    ledger: Mutex<LedgerDoc>,
    lake: Lake,
    /// Calls taken by this process (every scope), for the run's summary.
    spent: AtomicU32,
}

impl std::fmt::Debug for SourceBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceBudget")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .finish()
    }
}

impl SourceBudget {
    /// Loads the source's ledger from the lake.
    pub async fn load(
        lake: &Lake,
        source: &str,
        limits: CallBudget,
    ) -> Result<Arc<Self>, LakeError> {
        let ledger = lake
            .read_state::<LedgerDoc>(&ledger_key(source))
            .await?
            .unwrap_or_default();
        Ok(Arc::new(SourceBudget {
            source: source.to_string(),
            limits,
            pacer: pacer(&limits),
            ledger: Mutex::new(ledger),
            lake: lake.clone(),
            spent: AtomicU32::new(0),
        }))
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Calls this process has taken from the budget so far (all scopes).
    pub fn spent(&self) -> u32 {
        self.spent.load(Ordering::Relaxed)
    }

    /// Calls still allowed in `scope` at `now` under the hour and day quotas (`None` when
    /// the source has neither). Planning uses it to avoid starting pulls that could not
    /// finish.
    pub async fn remaining(&self, scope: &str, now: DateTime<Utc>) -> Option<u32> {
        let ledger = self.ledger.lock().await;
        self.quotas()
            .map(|(w, limit)| limit.saturating_sub(used(&ledger, scope, w, now)))
            .min()
    }

    /// Takes one call from the budget: waits for the per-second/minute pace, and counts the
    /// call in the ledger (persisted before the call is made, so a crash never under-counts).
    pub async fn acquire(
        &self,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), OverBudget>, LakeError> {
        {
            let mut ledger = self.ledger.lock().await;
            for (window, limit) in self.quotas() {
                let n = used(&ledger, scope, window, now);
                if n >= limit {
                    return Ok(Err(OverBudget {
                        scope: scope.to_string(),
                        window: window.name(),
                        key: window.key(now),
                        used: n,
                        limit,
                    }));
                }
            }
            let counts = ledger.scopes.entry(scope.to_string()).or_default();
            // Only the current windows matter; older ones are dropped as the ledger moves on.
            let current: Vec<String> = self.quotas().map(|(w, _)| w.key(now)).collect();
            counts.retain(|k, _| current.contains(k));
            for key in current {
                *counts.entry(key).or_default() += 1;
            }
            self.lake
                .write_state(&ledger_key(&self.source), &*ledger)
                .await?;
            self.spent.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(pacer) = &self.pacer {
            pacer.until_ready().await;
        }
        Ok(Ok(()))
    }

    fn quotas(&self) -> impl Iterator<Item = (Window, u32)> + '_ {
        [
            (Window::Hour, self.limits.per_hour),
            (Window::Day, self.limits.per_day),
        ]
        .into_iter()
        .filter_map(|(w, l)| l.map(|l| (w, l.get())))
    }
}

fn used(ledger: &LedgerDoc, scope: &str, window: Window, now: DateTime<Utc>) -> u32 {
    ledger
        .scopes
        .get(scope)
        .and_then(|c| c.get(&window.key(now)))
        .copied()
        .unwrap_or(0)
}

fn ledger_key(source: &str) -> String {
    format!("budgets/{source}")
}

/// The in-run pace: the tighter of the per-second and per-minute limits.
fn pacer(limits: &CallBudget) -> Option<DefaultDirectRateLimiter> {
    let quota = match (limits.per_second, limits.per_minute) {
        (Some(s), _) => Quota::per_second(s),
        (None, Some(m)) => Quota::per_minute(m),
        (None, None) => return None,
    };
    // A burst of one: calls are spread out evenly rather than fired together.
    Some(RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)))
}

/// Every source's budget, loaded once per run.
#[derive(Debug, Default, Clone)]
pub struct Budgets {
    by_source: HashMap<String, Arc<SourceBudget>>,
}

impl Budgets {
    pub async fn load<'a>(
        lake: &Lake,
        sources: impl IntoIterator<Item = (&'a str, CallBudget)>,
    ) -> Result<Budgets, LakeError> {
        let mut by_source = HashMap::new();
        for (name, limits) in sources {
            by_source.insert(
                name.to_string(),
                SourceBudget::load(lake, name, limits).await?,
            );
        }
        Ok(Budgets { by_source })
    }

    pub fn source(&self, name: &str) -> Option<Arc<SourceBudget>> {
        self.by_source.get(name).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day_quota(n: u32) -> CallBudget {
        CallBudget {
            per_day: NonZeroU32::new(n),
            ..CallBudget::default()
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn two_runs_on_one_day_share_the_quota() {
        let lake = Lake::open("memory://").unwrap();
        let now = at("2026-01-03T10:00:00Z");
        let first = SourceBudget::load(&lake, "appsflyer", day_quota(3))
            .await
            .unwrap();
        assert!(
            first
                .acquire("appsflyer/app/installs_report", now)
                .await
                .unwrap()
                .is_ok()
        );
        assert!(
            first
                .acquire("appsflyer/app/installs_report", now)
                .await
                .unwrap()
                .is_ok()
        );
        // A second run, later the same day, loads the ledger the first one left.
        let second = SourceBudget::load(&lake, "appsflyer", day_quota(3))
            .await
            .unwrap();
        assert_eq!(
            second.remaining("appsflyer/app/installs_report", now).await,
            Some(1)
        );
        assert!(
            second
                .acquire("appsflyer/app/installs_report", now)
                .await
                .unwrap()
                .is_ok()
        );
        let over = second
            .acquire("appsflyer/app/installs_report", now)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((over.used, over.limit, over.window), (3, 3, "day"));
        // Another report has its own quota; the next day starts afresh.
        assert!(
            second
                .acquire("appsflyer/app/detection", now)
                .await
                .unwrap()
                .is_ok()
        );
        let tomorrow = at("2026-01-04T00:00:01Z");
        assert_eq!(
            second
                .remaining("appsflyer/app/installs_report", tomorrow)
                .await,
            Some(3)
        );
    }

    #[tokio::test]
    async fn hourly_quotas_roll_over_each_hour() {
        let lake = Lake::open("memory://").unwrap();
        let limits = CallBudget {
            per_hour: NonZeroU32::new(2),
            ..CallBudget::default()
        };
        let b = SourceBudget::load(&lake, "mixpanel", limits).await.unwrap();
        let t = at("2026-01-03T10:59:00Z");
        assert!(b.acquire("mixpanel", t).await.unwrap().is_ok());
        assert!(b.acquire("mixpanel", t).await.unwrap().is_ok());
        assert!(b.acquire("mixpanel", t).await.unwrap().is_err());
        assert!(
            b.acquire("mixpanel", at("2026-01-03T11:00:00Z"))
                .await
                .unwrap()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn no_quota_means_no_limit() {
        let lake = Lake::open("memory://").unwrap();
        let b = SourceBudget::load(&lake, "adison", CallBudget::default())
            .await
            .unwrap();
        assert_eq!(b.remaining("adison", Utc::now()).await, None);
        for _ in 0..50 {
            assert!(b.acquire("adison", Utc::now()).await.unwrap().is_ok());
        }
    }
}
