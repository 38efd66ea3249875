//! Apple Search Ads: the campaign-level report (DAILY granularity, v5 field names) of one
//! organization, landed in `raw.apple_search_ads_campaign_daily`.
//!
//! Requests go to the Campaign Management API v5 (`POST /api/v5/reports/campaigns`, with
//! `Authorization: Bearer <token>` and `X-AP-Context: orgId=<org>`), paged with
//! `selector.pagination {offset, limit}` and split into windows of at most 90 days. The access
//! token comes from Apple's OAuth client-credentials flow with an ES256-signed JWT as the
//! client secret ([`jwt`], [`auth`]).
//!
//! Apple closes the Campaign Management API on 2027-01-26 in favour of the Apple Ads Platform
//! API. The report client therefore sits behind [`CampaignReports`]: a Platform API client
//! replaces [`CampaignManagementV5`] without touching the connector or the raw table.

mod auth;
mod connector;
pub mod jwt;
mod report;
mod wire;

pub use auth::{API_ROOT, AppleAuth, TOKEN_URL, token_url_for};
pub use connector::AppleSearchAdsConnector;
pub use report::{CampaignManagementV5, CampaignReports};
pub use wire::{
    LARGEST_PAGE, LONGEST_RANGE_DAYS, Page, ReportZone, STREAM, TABLE, error_summary, parse_page,
    request_body, verdict,
};
