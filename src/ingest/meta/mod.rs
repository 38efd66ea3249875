//! Meta (Facebook) Marketing API insights: one stream per level (`meta.insights_campaign`,
//! `meta.insights_adset`, `meta.insights_ad`, and `meta.insights_account` when configured),
//! each landing every configured ad account's day in `raw.meta_insights_<level>`.
//!
//! Wire facts honoured: metrics arrive as decimal strings; `actions` / `action_values` are
//! arrays keyed by attribution window (kept whole as JSON text, so no window or action type is
//! lost); sync reads page with `paging.cursors.after` until `paging.next` is absent; long
//! ranges go through async report runs (POST, poll `async_status`, read the run's pages);
//! usage headers (`X-Business-Use-Case-Usage`, `X-FB-Ads-Insights-Throttle`, ...) slow the
//! connector down before Meta blocks it, and a block waits `estimated_time_to_regain_access`.

mod connector;
mod parse;
mod throttle;
mod wire;

pub use connector::{MetaConnector, MetaTuning, RangePull};
pub use parse::{InsightsPage, PageSpec, parse_insights_page};
pub use throttle::{Usage, is_rate_limit_code, pause_for, verdict};
pub use wire::{GraphError, ReportRun, parse_graph_error, parse_report_run, parse_run_id};

use crate::config::MetaLevel;

/// The stream of a level, e.g. `meta.insights_ad`.
pub fn stream_name(level: MetaLevel) -> String {
    format!("meta.insights_{}", level.name())
}

/// The raw table of a level, e.g. `raw.meta_insights_ad`.
pub fn table(level: MetaLevel) -> &'static str {
    match level {
        MetaLevel::Account => "raw.meta_insights_account",
        MetaLevel::Campaign => "raw.meta_insights_campaign",
        MetaLevel::Adset => "raw.meta_insights_adset",
        MetaLevel::Ad => "raw.meta_insights_ad",
    }
}

/// The id and name fields a level's rows carry (besides the account's), in table order; the
/// last id is the row's key within an account and day.
pub fn level_fields(level: MetaLevel) -> &'static [&'static str] {
    match level {
        MetaLevel::Account => &[],
        MetaLevel::Campaign => &["campaign_id", "campaign_name"],
        MetaLevel::Adset => &["campaign_id", "campaign_name", "adset_id", "adset_name"],
        MetaLevel::Ad => &[
            "campaign_id",
            "campaign_name",
            "adset_id",
            "adset_name",
            "ad_id",
            "ad_name",
        ],
    }
}

/// The id that keys a level's rows within an account and day (`None` at account level).
pub fn key_field(level: MetaLevel) -> Option<&'static str> {
    match level {
        MetaLevel::Account => None,
        MetaLevel::Campaign => Some("campaign_id"),
        MetaLevel::Adset => Some("adset_id"),
        MetaLevel::Ad => Some("ad_id"),
    }
}

/// The insights `fields` the connector asks for at a level.
pub fn request_fields(level: MetaLevel) -> String {
    let mut f: Vec<&str> = vec!["account_id", "account_currency"];
    f.extend(level_fields(level));
    f.extend([
        "impressions",
        "clicks",
        "spend",
        "actions",
        "action_values",
        "date_start",
        "date_stop",
    ]);
    f.join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
