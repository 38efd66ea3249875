//! `[sim]`: the simulated world that feeds the demo and the tests.

use std::num::NonZeroU32;

use chrono::NaiveDate;
use serde::Deserialize;

use super::types::de_date;

macro_rules! defaults {
    ($($fn:ident: $ty:ty = $v:expr;)*) => { $(fn $fn() -> $ty { $v })* };
}

defaults! {
    d_seed: u64 = 42;
    d_start: NaiveDate = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    d_days: NonZeroU32 = NonZeroU32::MIN.saturating_add(89);
    d_users: u32 = 2000;
    d_campaigns: NonZeroU32 = NonZeroU32::MIN.saturating_add(3);
    d_organic: f64 = 0.3;
    d_ios: f64 = 0.45;
    d_att: f64 = 0.25;
    d_horizon: NonZeroU32 = NonZeroU32::MIN.saturating_add(179);
    r_duplicate: f64 = 0.02;
    r_malformed: f64 = 0.002;
    r_test_user: f64 = 0.01;
    r_test_campaign: f64 = 0.02;
    r_p360_blocked: f64 = 0.03;
    r_p360_detection: f64 = 0.01;
    r_fraud_small: f64 = 0.01;
    r_missing: f64 = 0.05;
    r_restatement: f64 = 0.10;
}

/// Settings of the simulated world. Same seed and settings give the same data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Random seed (default 42).
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// First simulated install date, in the reporting time zone (default 2026-01-01).
    #[serde(default = "d_start", deserialize_with = "de_date")]
    pub start_date: NaiveDate,
    /// Number of install days simulated, in days (default 90).
    #[serde(default = "d_days")]
    pub days: NonZeroU32,
    /// Installs per day across all channels, in users (default 2000; 100..=1,000,000).
    #[serde(default = "d_users")]
    pub users_per_day: u32,
    /// Campaigns per paid channel (default 4).
    #[serde(default = "d_campaigns")]
    pub campaigns_per_channel: NonZeroU32,
    /// Share of installs that are organic, in [0, 1) (default 0.3).
    #[serde(default = "d_organic")]
    pub organic_share: f64,
    /// Share of installs on iOS, in [0, 1] (default 0.45).
    #[serde(default = "d_ios")]
    pub ios_share: f64,
    /// Share of iOS users who opt in to ATT and share their IDFA, in [0, 1] (default 0.25).
    #[serde(default = "d_att")]
    pub att_opt_in_rate: f64,
    /// How far each user's life is simulated after install, in days (default 180). The truth
    /// covers it even past the last simulated day; must be ≥ the largest analysis horizon.
    #[serde(default = "d_horizon")]
    pub horizon_days: NonZeroU32,
    /// Rates of dirty data.
    #[serde(default)]
    pub rates: SimRates,
}

impl SimConfig {
    /// The last simulated install date (inclusive).
    pub fn end_date(&self) -> NaiveDate {
        self.start_date + chrono::Days::new(u64::from(self.days.get()) - 1)
    }
}

/// `[sim.rates]`: how dirty the simulated data is. Each value is a share in [0, 1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimRates {
    /// Events sent twice with the same `$insert_id` (default 0.02).
    #[serde(default = "r_duplicate")]
    pub duplicate_event: f64,
    /// Events followed by a garbled resend: the same `$insert_id` again, broken on the wire
    /// (a time that is not a number, a revenue that is not one or is negative, a currency
    /// with no exchange rate), which the cleanse must quarantine (default 0.002).
    #[serde(default = "r_malformed")]
    pub malformed_event: f64,
    /// QA devices and QA accounts among users (default 0.01).
    #[serde(default = "r_test_user")]
    pub test_user: f64,
    /// Share of paid installs in test campaigns (default 0.02).
    #[serde(default = "r_test_campaign")]
    pub test_campaign_share: f64,
    /// Installs Protect360 blocked (default 0.03).
    #[serde(default = "r_p360_blocked")]
    pub fraud_p360_blocked: f64,
    /// Installs Protect360 flagged after attribution (default 0.01).
    #[serde(default = "r_p360_detection")]
    pub fraud_p360_detection: f64,
    /// Installs with a click injected just before install (default 0.01).
    #[serde(default = "r_fraud_small")]
    pub fraud_click_injection: f64,
    /// Installs attributed to a very old click (default 0.01).
    #[serde(default = "r_fraud_small")]
    pub fraud_click_flooding: f64,
    /// Installs in bursts from one IP / device (default 0.01).
    #[serde(default = "r_fraud_small")]
    pub fraud_burst: f64,
    /// Installs with no event afterwards (default 0.01).
    #[serde(default = "r_fraud_small")]
    pub fraud_no_activity: f64,
    /// AppsFlyer rows whose advertising id was dropped although known (default 0.05).
    #[serde(default = "r_missing")]
    pub missing_adid: f64,
    /// Mixpanel events after login that lack `$user_id` (default 0.05).
    #[serde(default = "r_missing")]
    pub missing_user_id: f64,
    /// Channel-day rows whose spend is revised later (default 0.10).
    #[serde(default = "r_restatement")]
    pub restatement: f64,
}

impl Default for SimRates {
    fn default() -> Self {
        SimRates {
            duplicate_event: r_duplicate(),
            malformed_event: r_malformed(),
            test_user: r_test_user(),
            test_campaign_share: r_test_campaign(),
            fraud_p360_blocked: r_p360_blocked(),
            fraud_p360_detection: r_p360_detection(),
            fraud_click_injection: r_fraud_small(),
            fraud_click_flooding: r_fraud_small(),
            fraud_burst: r_fraud_small(),
            fraud_no_activity: r_fraud_small(),
            missing_adid: r_missing(),
            missing_user_id: r_missing(),
            restatement: r_restatement(),
        }
    }
}

impl SimRates {
    /// `(key, value)` of every rate, for validation and reporting.
    pub fn all(&self) -> [(&'static str, f64); 13] {
        [
            ("duplicate_event", self.duplicate_event),
            ("malformed_event", self.malformed_event),
            ("test_user", self.test_user),
            ("test_campaign_share", self.test_campaign_share),
            ("fraud_p360_blocked", self.fraud_p360_blocked),
            ("fraud_p360_detection", self.fraud_p360_detection),
            ("fraud_click_injection", self.fraud_click_injection),
            ("fraud_click_flooding", self.fraud_click_flooding),
            ("fraud_burst", self.fraud_burst),
            ("fraud_no_activity", self.fraud_no_activity),
            ("missing_adid", self.missing_adid),
            ("missing_user_id", self.missing_user_id),
            ("restatement", self.restatement),
        ]
    }

    /// Sum of the fraud rates (must stay below 0.5).
    pub fn fraud_total(&self) -> f64 {
        self.fraud_p360_blocked
            + self.fraud_p360_detection
            + self.fraud_click_injection
            + self.fraud_click_flooding
            + self.fraud_burst
            + self.fraud_no_activity
    }
}
