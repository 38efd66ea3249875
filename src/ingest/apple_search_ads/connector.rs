//! The Apple Search Ads connector: one report day per pull, through whichever
//! [`CampaignReports`] client it holds (the Campaign Management API v5 by default).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::auth::AppleAuth;
use super::report::{CampaignManagementV5, CampaignReports};
use super::wire::{STREAM, TABLE};
use crate::config::{AppleSearchAdsSource, Secret, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, partition_label,
};
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// How many landed partitions planning looks back over for the campaign count.
const HISTORY_DAYS: usize = 7;

/// Collects `apple_search_ads.campaign_daily`.
pub struct AppleSearchAdsConnector {
    reports: Arc<dyn CampaignReports>,
    auth: Option<Arc<AppleAuth>>,
    streams: Vec<StreamSpec>,
}

impl std::fmt::Debug for AppleSearchAdsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleSearchAdsConnector")
            .finish_non_exhaustive()
    }
}

impl AppleSearchAdsConnector {
    /// A connector for the org of `settings` on the Campaign Management API at `base_url`
    /// (`https://api.searchads.apple.com`, or `http://127.0.0.1:PORT/apple_search_ads` for
    /// the local server, whose token endpoint is `<base_url>/auth/oauth2/token`).
    pub fn new(
        settings: &AppleSearchAdsSource,
        base_url: &str,
        client_id: Secret,
        team_id: Secret,
        key_id: Secret,
        private_key_pem: Secret,
    ) -> Result<Self, SchemaError> {
        let auth = Arc::new(AppleAuth::new(
            base_url,
            client_id,
            team_id,
            key_id,
            private_key_pem,
        ));
        let reports = Arc::new(CampaignManagementV5::new(
            base_url,
            settings.org_id,
            auth.clone(),
        ));
        let mut connector = Self::with_reports(reports)?;
        connector.auth = Some(auth);
        Ok(connector)
    }

    /// A connector over another report client (a tuned [`CampaignManagementV5`], or the
    /// Apple Ads Platform API once it replaces v5).
    pub fn with_reports(reports: Arc<dyn CampaignReports>) -> Result<Self, SchemaError> {
        Ok(AppleSearchAdsConnector {
            reports,
            auth: None,
            streams: vec![StreamSpec::new(STREAM, TABLE, Cursor::ReportDay)?],
        })
    }

    /// Access tokens fetched so far (0 for a connector over another client).
    pub fn tokens_fetched(&self) -> u32 {
        self.auth.as_deref().map_or(0, AppleAuth::tokens_fetched)
    }

    /// Why the configured private key cannot sign, if it cannot.
    pub fn key_problem(&self) -> Option<&str> {
        self.auth.as_deref().and_then(AppleAuth::key_problem)
    }
}

#[async_trait]
impl Connector for AppleSearchAdsConnector {
    fn source(&self) -> SourceKind {
        SourceKind::AppleSearchAds
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    /// Pages expected from the most campaigns a recent day had (one page of up to 1000
    /// campaigns for most orgs), plus a token request when none is held.
    fn plan(
        &self,
        _stream: &StreamSpec,
        day: NaiveDate,
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let campaigns = history.busiest_recent(day, HISTORY_DAYS);
        self.reports.planned_calls(1, campaigns)
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
                message: format!("apple_search_ads has no stream {}", stream.name),
            });
        }
        self.reports.campaign_days(ctx, day, day).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::sim::server::credentials;

    #[test]
    fn pages_are_planned_from_the_campaigns_of_recent_days() {
        let settings: AppleSearchAdsSource = toml::from_str("org_id = 1000001\n").unwrap();
        let c = AppleSearchAdsConnector::new(
            &settings,
            super::super::API_ROOT,
            Secret::new(credentials::APPLE_CLIENT_ID),
            Secret::new(credentials::APPLE_TEAM_ID),
            Secret::new(credentials::APPLE_KEY_ID),
            Secret::new(credentials::APPLE_PRIVATE_KEY_PEM),
        )
        .unwrap();
        assert_eq!(c.key_problem(), None);
        let day = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        let mut history = StreamState::default();
        let plan = c.plan(&c.streams()[0], day, &history);
        assert_eq!(
            (plan[0].scope.as_str(), plan[0].calls),
            ("apple_search_ads", 1)
        );
        assert_eq!(plan[1].calls, 1, "a token first");
        // An org that ran 2,400 campaigns on a recent day needs three pages of 1,000.
        for (d, rows) in [(1, 300), (5, 2400), (8, 900)] {
            history.landed(
                NaiveDate::from_ymd_opt(2026, 1, d).unwrap(),
                Utc::now(),
                rows,
                1,
            );
        }
        assert_eq!(c.plan(&c.streams()[0], day, &history)[0].calls, 3);
    }
}
