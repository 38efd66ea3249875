//! AppsFlyer Pull API raw-data reports (CSV), as the connector pulls them and the local
//! server renders them: which reports exist, their documented columns ([`columns`]) and the
//! parser that turns a body into a frame of the report's `raw.appsflyer_*` schema ([`parse`]).

pub mod columns;
pub mod connector;

pub use connector::AppsFlyerConnector;
pub mod parse;

pub use parse::{count_rows, parse_report};

/// One Pull API raw-data report: the config's own type, so a report named in the pipeline
/// config is the report the connector pulls. The attribution reports give the installs and
/// in-app events the pipeline values; the Protect360 ones say which of them were fraud.
pub use crate::config::AppsFlyerReport as Report;

impl Report {
    /// The report's URL segment: `.../raw-data/export/app/<app>/<path>/v5`. Only the
    /// post-attribution in-app report is spelled with dashes, as AppsFlyer spells it.
    pub fn path(self) -> &'static str {
        match self {
            Report::InstallsReport => "installs_report",
            Report::InAppEventsReport => "in_app_events_report",
            Report::OrganicInstallsReport => "organic_installs_report",
            Report::OrganicInAppEventsReport => "organic_in_app_events_report",
            Report::BlockedInstallsReport => "blocked_installs_report",
            Report::Detection => "detection",
            Report::FraudPostInapps => "fraud-post-inapps",
        }
    }

    /// The name the pipeline config uses: the path with `_` for `-`, a valid identifier.
    pub fn config_name(self) -> &'static str {
        self.name()
    }

    /// The raw table the report lands in, e.g. `raw.appsflyer_installs_report`.
    pub fn table(self) -> &'static str {
        match self {
            Report::InstallsReport => "raw.appsflyer_installs_report",
            Report::InAppEventsReport => "raw.appsflyer_in_app_events_report",
            Report::OrganicInstallsReport => "raw.appsflyer_organic_installs_report",
            Report::OrganicInAppEventsReport => "raw.appsflyer_organic_in_app_events_report",
            Report::BlockedInstallsReport => "raw.appsflyer_blocked_installs_report",
            Report::Detection => "raw.appsflyer_detection",
            Report::FraudPostInapps => "raw.appsflyer_fraud_post_inapps",
        }
    }

    /// The stream label of errors and logs, e.g. `appsflyer.installs_report`.
    pub fn stream(self) -> String {
        format!("appsflyer.{}", self.config_name())
    }

    /// Parses a config name (`installs_report`, ..., `fraud_post_inapps`). The URL spelling
    /// `fraud-post-inapps` is accepted too, since people copy it from AppsFlyer's docs.
    pub fn from_config_name(name: &str) -> Option<Report> {
        let name = name.trim();
        Report::ALL
            .into_iter()
            .find(|r| r.config_name() == name || r.path() == name)
    }

    /// Whether rows are in-app events (keyed and windowed by `Event Time`) rather than
    /// installs (keyed and windowed by `Install Time`).
    pub fn is_event_report(self) -> bool {
        matches!(
            self,
            Report::InAppEventsReport | Report::OrganicInAppEventsReport | Report::FraudPostInapps
        )
    }

    /// The column rows are ordered and windowed by: `install_time` or `event_time`.
    pub fn time_column(self) -> &'static str {
        if self.is_event_report() {
            "event_time"
        } else {
            "install_time"
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tables_exist() {
        let registry = crate::schema::Registry::embedded().unwrap();
        for r in Report::ALL {
            assert_eq!(Report::from_config_name(r.config_name()), Some(r));
            assert_eq!(Report::from_config_name(r.path()), Some(r));
            registry.get(r.table()).unwrap();
        }
        assert_eq!(Report::FraudPostInapps.path(), "fraud-post-inapps");
        assert_eq!(
            Report::from_config_name("fraud_post_inapps"),
            Some(Report::FraudPostInapps)
        );
        assert_eq!(Report::from_config_name("uninstall_events_report"), None);
        assert!(Report::InAppEventsReport.is_event_report());
        assert!(!Report::Detection.is_event_report());
    }
}
