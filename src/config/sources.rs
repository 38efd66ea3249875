//! `[sources.<name>]`: one table per data source. Credentials are given as the NAMES of
//! environment variables (`*_env`), never as values.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use url::Url;

use super::types::{Currency, StoreLocation, de_opt_http_url, de_opt_store, de_opt_tz, de_tz};

/// Which source a table describes. The TOML key is [`SourceKind::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Mixpanel raw event export.
    Mixpanel,
    /// AppsFlyer Pull API raw-data reports.
    AppsFlyer,
    /// Google Sheets with manual inputs (campaign overrides, manual costs, test devices, FX).
    GoogleSheets,
    /// Adison offerwall: a CSV report dropped into object storage per day.
    Adison,
    /// Meta (Facebook) Marketing API insights.
    Meta,
    /// Google Ads API.
    GoogleAds,
    /// Apple Search Ads Campaign Management API.
    AppleSearchAds,
    /// Naver Search Ad API.
    Naver,
}

impl SourceKind {
    /// Every source, in the order sources are listed and fetched.
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Mixpanel,
        SourceKind::AppsFlyer,
        SourceKind::GoogleSheets,
        SourceKind::Adison,
        SourceKind::Meta,
        SourceKind::GoogleAds,
        SourceKind::AppleSearchAds,
        SourceKind::Naver,
    ];

    /// The key under `[sources]`, e.g. `google_ads`.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Mixpanel => "mixpanel",
            SourceKind::AppsFlyer => "appsflyer",
            SourceKind::GoogleSheets => "google_sheets",
            SourceKind::Adison => "adison",
            SourceKind::Meta => "meta",
            SourceKind::GoogleAds => "google_ads",
            SourceKind::AppleSearchAds => "apple_search_ads",
            SourceKind::Naver => "naver",
        }
    }

    /// Parses a `[sources]` key.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The call limits that match the real API, applied to any limit the config leaves unset.
    pub fn default_budget(self) -> CallBudget {
        let n = NonZeroU32::new;
        let none = CallBudget::default();
        match self {
            // Export API: 60 queries per hour and 3 per second.
            SourceKind::Mixpanel => CallBudget {
                per_second: n(3),
                per_hour: n(60),
                ..none
            },
            // Pull API raw data: 24 calls per day for each (app, report type) pair.
            SourceKind::AppsFlyer => CallBudget {
                per_day: n(24),
                ..none
            },
            // Sheets API: 60 read requests per minute per user per project.
            SourceKind::GoogleSheets => CallBudget {
                per_minute: n(60),
                ..none
            },
            // Files in object storage: no API limit.
            SourceKind::Adison => none,
            // Soft ceiling; the X-Business-Use-Case-Usage headers drive real throttling.
            SourceKind::Meta => CallBudget {
                per_hour: n(200),
                ..none
            },
            // Basic access: 15,000 operations per day per developer token.
            SourceKind::GoogleAds => CallBudget {
                per_day: n(15_000),
                ..none
            },
            // Apple publishes no number (it answers 429); one call a second is conservative.
            SourceKind::AppleSearchAds => CallBudget {
                per_minute: n(60),
                ..none
            },
            // A guess: Naver documents throttling (HTTP 429 / code 1016) but no figure.
            SourceKind::Naver => CallBudget {
                per_second: n(5),
                ..none
            },
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Call limits for one source. Each limit is a number of API calls per window; `None` means no
/// limit for that window. Unset limits take the source's default ([`SourceKind::default_budget`]),
/// so after loading, this is the effective budget. For AppsFlyer the budget applies to each
/// (app, report) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBudget {
    /// Maximum calls per second.
    #[serde(default)]
    pub per_second: Option<NonZeroU32>,
    /// Maximum calls per minute.
    #[serde(default)]
    pub per_minute: Option<NonZeroU32>,
    /// Maximum calls per hour.
    #[serde(default)]
    pub per_hour: Option<NonZeroU32>,
    /// Maximum calls per day (UTC day).
    #[serde(default)]
    pub per_day: Option<NonZeroU32>,
}

impl CallBudget {
    /// Fills the limits this budget leaves unset from `defaults`.
    pub fn or(self, defaults: CallBudget) -> CallBudget {
        CallBudget {
            per_second: self.per_second.or(defaults.per_second),
            per_minute: self.per_minute.or(defaults.per_minute),
            per_hour: self.per_hour.or(defaults.per_hour),
            per_day: self.per_day.or(defaults.per_day),
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}
fn default_timeout() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(59)
}

/// Settings every source has (flattened into each `[sources.<name>]` table).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceCommon {
    /// Whether the pipeline fetches this source at all (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Base URL of the real API (http/https). Absent means the local simulated server, which is
    /// only allowed when the config has a `[sim]` section.
    #[serde(default, deserialize_with = "de_opt_http_url")]
    pub base_url: Option<Url>,
    /// Timeout of one HTTP request, in seconds (default 60).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: NonZeroU32,
    /// Maximum requests in flight at once (default 1).
    #[serde(default = "one")]
    pub concurrency: NonZeroU32,
    /// Call limits; unset limits take the source's real-API defaults.
    #[serde(default)]
    pub budget: CallBudget,
}

impl SourceCommon {
    /// True when served by the local simulated server (no `base_url`).
    pub fn is_simulated(&self) -> bool {
        self.base_url.is_none()
    }

    /// [`SourceCommon::timeout_seconds`] as a `Duration`.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_seconds.get()))
    }
}

/// What every source table offers, for code that treats sources uniformly.
pub trait SourceSettings: fmt::Debug {
    /// Which source this is.
    fn kind(&self) -> SourceKind;
    /// The shared settings.
    fn common(&self) -> &SourceCommon;
    /// Mutable shared settings (used to apply budget defaults).
    fn common_mut(&mut self) -> &mut SourceCommon;
    /// `(setting, environment variable name)` for each credential, e.g.
    /// `("access_token_env", "META_ACCESS_TOKEN")`.
    fn credential_envs(&self) -> Vec<(&'static str, &str)>;
    /// True when the data comes from the simulated world rather than the real service.
    fn is_simulated(&self) -> bool {
        self.common().is_simulated()
    }
}

macro_rules! source_settings {
    ($ty:ty, $kind:expr, [$($field:ident),*]) => {
        impl SourceSettings for $ty {
            fn kind(&self) -> SourceKind {
                $kind
            }
            fn common(&self) -> &SourceCommon {
                &self.common
            }
            fn common_mut(&mut self) -> &mut SourceCommon {
                &mut self.common
            }
            fn credential_envs(&self) -> Vec<(&'static str, &str)> {
                vec![$((stringify!($field), self.$field.as_str())),*]
            }
        }
    };
}

macro_rules! env_default {
    ($($fn:ident => $name:expr),* $(,)?) => {
        $(fn $fn() -> String { $name.to_owned() })*
    };
}

env_default! {
    mixpanel_user_env => "MIXPANEL_SERVICE_ACCOUNT_USER",
    mixpanel_secret_env => "MIXPANEL_SERVICE_ACCOUNT_SECRET",
    appsflyer_token_env => "APPSFLYER_API_TOKEN",
    sheets_key_env => "GOOGLE_SHEETS_API_KEY",
    meta_token_env => "META_ACCESS_TOKEN",
    gads_dev_env => "GOOGLE_ADS_DEVELOPER_TOKEN",
    gads_client_id_env => "GOOGLE_ADS_CLIENT_ID",
    gads_client_secret_env => "GOOGLE_ADS_CLIENT_SECRET",
    gads_refresh_env => "GOOGLE_ADS_REFRESH_TOKEN",
    asa_client_id_env => "APPLE_SEARCH_ADS_CLIENT_ID",
    asa_team_id_env => "APPLE_SEARCH_ADS_TEAM_ID",
    asa_key_id_env => "APPLE_SEARCH_ADS_KEY_ID",
    asa_pem_env => "APPLE_SEARCH_ADS_PRIVATE_KEY_PEM",
    naver_key_env => "NAVER_API_KEY",
    naver_secret_env => "NAVER_SECRET_KEY",
}

// ---------------------------------------------------------------------------------------------
// Mixpanel
// ---------------------------------------------------------------------------------------------

/// Mixpanel data residency: which API host serves the project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataResidency {
    /// data.mixpanel.com
    #[default]
    Us,
    /// data-eu.mixpanel.com
    Eu,
    /// data-in.mixpanel.com
    In,
}

/// `[sources.mixpanel]`: raw event export.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixpanelSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Numeric Mixpanel project id.
    pub project_id: u64,
    /// Env var holding the service-account user name (default MIXPANEL_SERVICE_ACCOUNT_USER).
    #[serde(default = "mixpanel_user_env")]
    pub service_account_user_env: String,
    /// Env var holding the service-account secret (default MIXPANEL_SERVICE_ACCOUNT_SECRET).
    #[serde(default = "mixpanel_secret_env")]
    pub service_account_secret_env: String,
    /// Where the project's data lives: "us" (default), "eu" or "in".
    #[serde(default)]
    pub data_residency: DataResidency,
    /// IANA zone the export's `time` is in (old projects export project-local time);
    /// absent means UTC.
    #[serde(default, deserialize_with = "de_opt_tz")]
    pub project_timezone: Option<Tz>,
    /// Whether `time` is in milliseconds rather than seconds since the epoch (default false).
    #[serde(default)]
    pub time_in_ms: bool,
}
source_settings!(
    MixpanelSource,
    SourceKind::Mixpanel,
    [service_account_user_env, service_account_secret_env]
);

// ---------------------------------------------------------------------------------------------
// AppsFlyer
// ---------------------------------------------------------------------------------------------

/// An AppsFlyer Pull API raw-data report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppsFlyerReport {
    /// Non-organic installs.
    InstallsReport,
    /// In-app events of non-organic users.
    InAppEventsReport,
    /// Organic installs.
    OrganicInstallsReport,
    /// In-app events of organic users.
    OrganicInAppEventsReport,
    /// Installs Protect360 blocked in real time.
    BlockedInstallsReport,
    /// Installs Protect360 flagged after attribution.
    Detection,
    /// In-app events Protect360 flagged as fraud.
    FraudPostInapps,
}

impl AppsFlyerReport {
    /// Every report, in fetch order.
    pub const ALL: [AppsFlyerReport; 7] = [
        AppsFlyerReport::InstallsReport,
        AppsFlyerReport::InAppEventsReport,
        AppsFlyerReport::OrganicInstallsReport,
        AppsFlyerReport::OrganicInAppEventsReport,
        AppsFlyerReport::BlockedInstallsReport,
        AppsFlyerReport::Detection,
        AppsFlyerReport::FraudPostInapps,
    ];

    /// The report's name in the Pull API path (`installs_report`).
    pub fn name(self) -> &'static str {
        match self {
            AppsFlyerReport::InstallsReport => "installs_report",
            AppsFlyerReport::InAppEventsReport => "in_app_events_report",
            AppsFlyerReport::OrganicInstallsReport => "organic_installs_report",
            AppsFlyerReport::OrganicInAppEventsReport => "organic_in_app_events_report",
            AppsFlyerReport::BlockedInstallsReport => "blocked_installs_report",
            AppsFlyerReport::Detection => "detection",
            AppsFlyerReport::FraudPostInapps => "fraud_post_inapps",
        }
    }
}

impl fmt::Display for AppsFlyerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn all_reports() -> Vec<AppsFlyerReport> {
    AppsFlyerReport::ALL.to_vec()
}
fn utc() -> Tz {
    Tz::UTC
}
fn thirty() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(29)
}
fn million() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(999_999)
}

/// `[sources.appsflyer]`: Pull API raw-data reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsFlyerSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// App ids to pull (`id123456789` for iOS, package name for Android); at least one.
    pub app_ids: Vec<String>,
    /// Env var holding the Pull API V2 token (default APPSFLYER_API_TOKEN).
    #[serde(default = "appsflyer_token_env")]
    pub api_token_env: String,
    /// IANA zone requested from the Pull API for report timestamps (default UTC).
    #[serde(default = "utc", deserialize_with = "de_tz")]
    pub timezone: Tz,
    /// `maximum_rows` per request, in rows (default 1,000,000, the API's maximum).
    #[serde(default = "million")]
    pub maximum_rows: NonZeroU32,
    /// Which reports to pull (default all of them); unknown names are rejected.
    #[serde(default = "all_reports")]
    pub reports: Vec<AppsFlyerReport>,
    /// Most report days one backfill call may cover (default 30; the Pull API takes up to
    /// 90). A call costs one unit of the daily quota whatever its range, so a backfill pulls
    /// many days per call, as many as the volume of the days before allows.
    #[serde(default = "thirty")]
    pub backfill_days_per_call: NonZeroU32,
}
source_settings!(AppsFlyerSource, SourceKind::AppsFlyer, [api_token_env]);

// ---------------------------------------------------------------------------------------------
// Google Sheets
// ---------------------------------------------------------------------------------------------

fn r_overrides() -> String {
    "campaign_overrides!A1:E".to_owned()
}
fn r_costs() -> String {
    "manual_costs!A1:F".to_owned()
}
fn r_devices() -> String {
    "test_devices!A1:C".to_owned()
}
fn r_fx() -> String {
    "fx_rates!A1:C".to_owned()
}

/// A1 ranges (`sheet!A1:E`) of the tabs the pipeline reads; row 1 is the header.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetRanges {
    /// Manual campaign metadata (channel, objective...) keyed by campaign id.
    #[serde(default = "r_overrides")]
    pub campaign_overrides: String,
    /// Costs of channels without an API (per day and campaign).
    #[serde(default = "r_costs")]
    pub manual_costs: String,
    /// Device / advertising ids of QA devices.
    #[serde(default = "r_devices")]
    pub test_devices: String,
    /// Daily FX rates to the reporting currency.
    #[serde(default = "r_fx")]
    pub fx_rates: String,
}

impl Default for SheetRanges {
    fn default() -> Self {
        SheetRanges {
            campaign_overrides: r_overrides(),
            manual_costs: r_costs(),
            test_devices: r_devices(),
            fx_rates: r_fx(),
        }
    }
}

/// `[sources.google_sheets]`: manual inputs kept in a spreadsheet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSheetsSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// The spreadsheet's id (from its URL).
    pub spreadsheet_id: String,
    /// Env var holding the API key (default GOOGLE_SHEETS_API_KEY).
    #[serde(default = "sheets_key_env")]
    pub api_key_env: String,
    /// A1 ranges of each tab.
    #[serde(default)]
    pub ranges: SheetRanges,
}
source_settings!(GoogleSheetsSource, SourceKind::GoogleSheets, [api_key_env]);

// ---------------------------------------------------------------------------------------------
// Adison
// ---------------------------------------------------------------------------------------------

fn adison_pattern() -> String {
    "adison_{date}.csv".to_owned()
}
fn krw() -> Currency {
    Currency::KRW
}

/// `[sources.adison]`: a CSV report dropped into object storage once per day. Adison has no
/// HTTP API, so `base_url` is not allowed; it is simulated when `drop_url` is absent.
/// Object-store credentials come from the store's usual environment (AWS_* for S3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdisonSource {
    /// Shared source settings (`base_url` must stay unset).
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Object-store prefix the daily files are dropped into (`s3://bucket/adison/`, a path or
    /// `file://`). Absent means the simulated world provides the files.
    #[serde(default, deserialize_with = "de_opt_store")]
    pub drop_url: Option<StoreLocation>,
    /// File name per day; `{date}` becomes the report date as YYYY-MM-DD
    /// (default `adison_{date}.csv`).
    #[serde(default = "adison_pattern")]
    pub file_pattern: String,
    /// Currency of the report's amounts (default KRW).
    #[serde(default = "krw")]
    pub currency: Currency,
}

impl AdisonSource {
    /// File name for one report date.
    pub fn file_name(&self, date: chrono::NaiveDate) -> String {
        self.file_pattern
            .replace("{date}", &date.format("%Y-%m-%d").to_string())
    }
}

impl SourceSettings for AdisonSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Adison
    }
    fn common(&self) -> &SourceCommon {
        &self.common
    }
    fn common_mut(&mut self) -> &mut SourceCommon {
        &mut self.common
    }
    fn credential_envs(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
    fn is_simulated(&self) -> bool {
        self.drop_url.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------------

/// A Meta insights level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaLevel {
    /// Ad account totals.
    Account,
    /// Campaigns.
    Campaign,
    /// Ad sets.
    Adset,
    /// Ads.
    Ad,
}

impl MetaLevel {
    /// The API's `level` value.
    pub fn name(self) -> &'static str {
        match self {
            MetaLevel::Account => "account",
            MetaLevel::Campaign => "campaign",
            MetaLevel::Adset => "adset",
            MetaLevel::Ad => "ad",
        }
    }
}

/// A Meta `action_attribution_windows` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum AttributionWindow {
    /// 1 day after click.
    #[serde(rename = "1d_click")]
    Click1d,
    /// 7 days after click.
    #[serde(rename = "7d_click")]
    Click7d,
    /// 28 days after click.
    #[serde(rename = "28d_click")]
    Click28d,
    /// 1 day after view.
    #[serde(rename = "1d_view")]
    View1d,
    /// 1 day after engaged view (video).
    #[serde(rename = "1d_ev")]
    EngagedView1d,
}

impl AttributionWindow {
    /// The API value, e.g. `7d_click`.
    pub fn name(self) -> &'static str {
        match self {
            AttributionWindow::Click1d => "1d_click",
            AttributionWindow::Click7d => "7d_click",
            AttributionWindow::Click28d => "28d_click",
            AttributionWindow::View1d => "1d_view",
            AttributionWindow::EngagedView1d => "1d_ev",
        }
    }
}

fn meta_version() -> String {
    "v23.0".to_owned()
}
fn meta_levels() -> Vec<MetaLevel> {
    vec![MetaLevel::Campaign, MetaLevel::Adset, MetaLevel::Ad]
}
fn meta_windows() -> Vec<AttributionWindow> {
    vec![
        AttributionWindow::Click1d,
        AttributionWindow::Click7d,
        AttributionWindow::Click28d,
        AttributionWindow::View1d,
    ]
}
fn seven() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(6)
}

/// `[sources.meta]`: Marketing API insights.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Ad accounts, each `act_<digits>`; at least one.
    pub ad_account_ids: Vec<String>,
    /// Env var holding the (system-user) access token (default META_ACCESS_TOKEN).
    #[serde(default = "meta_token_env")]
    pub access_token_env: String,
    /// Graph API version, `vNN.N` (default v23.0).
    #[serde(default = "meta_version")]
    pub api_version: String,
    /// Insight levels to pull (default campaign, adset, ad).
    #[serde(default = "meta_levels")]
    pub levels: Vec<MetaLevel>,
    /// Attribution windows to request (default 1d_click, 7d_click, 28d_click, 1d_view).
    #[serde(default = "meta_windows")]
    pub attribution_windows: Vec<AttributionWindow>,
    /// Date ranges longer than this many days use async report runs (default 7).
    #[serde(default = "seven")]
    pub async_threshold_days: NonZeroU32,
}
source_settings!(MetaSource, SourceKind::Meta, [access_token_env]);

// ---------------------------------------------------------------------------------------------
// Google Ads
// ---------------------------------------------------------------------------------------------

fn gads_version() -> String {
    "v21".to_owned()
}

/// `[sources.google_ads]`: Google Ads API (GAQL search).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Customer ids to query: 10 digits, no dashes; at least one.
    pub customer_ids: Vec<String>,
    /// Manager (MCC) account id sent as `login-customer-id`: 10 digits, no dashes.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// Env var holding the developer token (default GOOGLE_ADS_DEVELOPER_TOKEN).
    #[serde(default = "gads_dev_env")]
    pub developer_token_env: String,
    /// Env var holding the OAuth client id (default GOOGLE_ADS_CLIENT_ID).
    #[serde(default = "gads_client_id_env")]
    pub client_id_env: String,
    /// Env var holding the OAuth client secret (default GOOGLE_ADS_CLIENT_SECRET).
    #[serde(default = "gads_client_secret_env")]
    pub client_secret_env: String,
    /// Env var holding the OAuth refresh token (default GOOGLE_ADS_REFRESH_TOKEN).
    #[serde(default = "gads_refresh_env")]
    pub refresh_token_env: String,
    /// API version, `vNN` (default v21).
    #[serde(default = "gads_version")]
    pub api_version: String,
}
source_settings!(
    GoogleAdsSource,
    SourceKind::GoogleAds,
    [
        developer_token_env,
        client_id_env,
        client_secret_env,
        refresh_token_env
    ]
);

// ---------------------------------------------------------------------------------------------
// Apple Search Ads
// ---------------------------------------------------------------------------------------------

/// `[sources.apple_search_ads]`: Campaign Management API (OAuth with a signed client secret).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleSearchAdsSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Organization id (sent as `X-AP-Context: orgId=...`).
    pub org_id: u64,
    /// Env var holding the API client id (default APPLE_SEARCH_ADS_CLIENT_ID).
    #[serde(default = "asa_client_id_env")]
    pub client_id_env: String,
    /// Env var holding the team id (default APPLE_SEARCH_ADS_TEAM_ID).
    #[serde(default = "asa_team_id_env")]
    pub team_id_env: String,
    /// Env var holding the key id (default APPLE_SEARCH_ADS_KEY_ID).
    #[serde(default = "asa_key_id_env")]
    pub key_id_env: String,
    /// Env var holding the EC private key, PEM text (default APPLE_SEARCH_ADS_PRIVATE_KEY_PEM).
    #[serde(default = "asa_pem_env")]
    pub private_key_pem_env: String,
}
source_settings!(
    AppleSearchAdsSource,
    SourceKind::AppleSearchAds,
    [client_id_env, team_id_env, key_id_env, private_key_pem_env]
);

// ---------------------------------------------------------------------------------------------
// Naver
// ---------------------------------------------------------------------------------------------

/// `[sources.naver]`: Naver Search Ad API (HMAC-signed requests).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaverSource {
    /// Shared source settings.
    #[serde(flatten)]
    pub common: SourceCommon,
    /// Advertiser customer id (sent as `X-Customer`).
    pub customer_id: u64,
    /// Env var holding the API (access) license key (default NAVER_API_KEY).
    #[serde(default = "naver_key_env")]
    pub api_key_env: String,
    /// Env var holding the secret key used to sign requests (default NAVER_SECRET_KEY).
    #[serde(default = "naver_secret_env")]
    pub secret_key_env: String,
}
source_settings!(
    NaverSource,
    SourceKind::Naver,
    [api_key_env, secret_key_env]
);

// ---------------------------------------------------------------------------------------------
// [sources]
// ---------------------------------------------------------------------------------------------

/// `[sources]`: at most one table per known source; an absent table means the source is not used.
/// Unknown tables are rejected with a message listing the known names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// `[sources.mixpanel]`
    pub mixpanel: Option<MixpanelSource>,
    /// `[sources.appsflyer]`
    pub appsflyer: Option<AppsFlyerSource>,
    /// `[sources.google_sheets]`
    pub google_sheets: Option<GoogleSheetsSource>,
    /// `[sources.adison]`
    pub adison: Option<AdisonSource>,
    /// `[sources.meta]`
    pub meta: Option<MetaSource>,
    /// `[sources.google_ads]`
    pub google_ads: Option<GoogleAdsSource>,
    /// `[sources.apple_search_ads]`
    pub apple_search_ads: Option<AppleSearchAdsSource>,
    /// `[sources.naver]`
    pub naver: Option<NaverSource>,
}

impl Sources {
    /// Every configured source (enabled or not), in [`SourceKind::ALL`] order.
    pub fn configured(&self) -> Vec<&dyn SourceSettings> {
        let mut out: Vec<&dyn SourceSettings> = Vec::new();
        macro_rules! push {
            ($($f:ident),*) => { $(if let Some(s) = &self.$f { out.push(s); })* };
        }
        push!(
            mixpanel,
            appsflyer,
            google_sheets,
            adison,
            meta,
            google_ads,
            apple_search_ads,
            naver
        );
        out
    }

    /// Configured sources with `enabled = true`.
    pub fn enabled(&self) -> Vec<&dyn SourceSettings> {
        self.configured()
            .into_iter()
            .filter(|s| s.common().enabled)
            .collect()
    }

    /// The source of a kind, if configured.
    pub fn get(&self, kind: SourceKind) -> Option<&dyn SourceSettings> {
        self.configured().into_iter().find(|s| s.kind() == kind)
    }

    pub(crate) fn configured_mut(&mut self) -> Vec<&mut dyn SourceSettings> {
        let mut out: Vec<&mut dyn SourceSettings> = Vec::new();
        macro_rules! push {
            ($($f:ident),*) => { $(if let Some(s) = &mut self.$f { out.push(s); })* };
        }
        push!(
            mixpanel,
            appsflyer,
            google_sheets,
            adison,
            meta,
            google_ads,
            apple_search_ads,
            naver
        );
        out
    }
}

fn known_sources() -> String {
    SourceKind::ALL.map(SourceKind::name).join(", ")
}

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sources;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a table of sources ({})", known_sources())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sources, A::Error> {
                let mut out = Sources::default();
                macro_rules! take {
                    ($slot:expr, $name:expr) => {{
                        if $slot.is_some() {
                            return Err(de::Error::custom(format!("duplicate source `{}`", $name)));
                        }
                        $slot = Some(map.next_value()?);
                    }};
                }
                while let Some(key) = map.next_key::<String>()? {
                    match SourceKind::from_name(&key) {
                        Some(SourceKind::Mixpanel) => take!(out.mixpanel, key),
                        Some(SourceKind::AppsFlyer) => take!(out.appsflyer, key),
                        Some(SourceKind::GoogleSheets) => take!(out.google_sheets, key),
                        Some(SourceKind::Adison) => take!(out.adison, key),
                        Some(SourceKind::Meta) => take!(out.meta, key),
                        Some(SourceKind::GoogleAds) => take!(out.google_ads, key),
                        Some(SourceKind::AppleSearchAds) => take!(out.apple_search_ads, key),
                        Some(SourceKind::Naver) => take!(out.naver, key),
                        None => {
                            return Err(de::Error::custom(format!(
                                "unknown source `{key}`; known sources: {}",
                                known_sources()
                            )));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}
