//! The fixed part of a simulated world: channels, accounts, campaigns, ads and the true
//! quality of each, drawn once from the seed.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// A paid channel of the world and the facts of its ad accounts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channel {
    /// Our canonical key, used across every layer.
    pub key: &'static str,
    /// AppsFlyer's `media_source` for this channel.
    pub media_source: &'static str,
    pub account_currency: &'static str,
    /// The zone in which the channel's reports cut days.
    pub account_timezone: &'static str,
    /// Typical cost per install, in US dollars.
    pub base_cpi_usd: f64,
    /// Only iOS users (Apple Search Ads).
    pub ios_only: bool,
    /// Only users in Korea (the Korean networks).
    pub korea_only: bool,
    /// How good its users are, relative to the average channel.
    pub quality: f64,
}

pub const CHANNELS: [Channel; 5] = [
    Channel {
        key: "facebook",
        media_source: "Facebook Ads",
        account_currency: "USD",
        account_timezone: "America/Los_Angeles",
        base_cpi_usd: 3.2,
        ios_only: false,
        korea_only: false,
        quality: 1.0,
    },
    Channel {
        key: "google_ads",
        media_source: "googleadwords_int",
        account_currency: "KRW",
        account_timezone: "Asia/Seoul",
        base_cpi_usd: 2.6,
        ios_only: false,
        korea_only: false,
        quality: 0.9,
    },
    Channel {
        key: "apple_search_ads",
        media_source: "Apple Search Ads",
        account_currency: "USD",
        account_timezone: "UTC",
        base_cpi_usd: 4.1,
        ios_only: true,
        korea_only: false,
        quality: 1.25,
    },
    Channel {
        key: "naver",
        media_source: "naver_int",
        account_currency: "KRW",
        account_timezone: "Asia/Seoul",
        base_cpi_usd: 2.2,
        ios_only: false,
        korea_only: true,
        quality: 0.95,
    },
    Channel {
        key: "adison",
        media_source: "adison_int",
        account_currency: "KRW",
        account_timezone: "Asia/Seoul",
        base_cpi_usd: 0.7,
        ios_only: false,
        korea_only: true,
        quality: 0.35,
    },
];

/// Organic installs behave like a campaign with no cost.
pub const ORGANIC: &str = "organic";

/// The behaviour a campaign's users truly have. Retention is given at D1, D7 and D30 and
/// interpolated log-log between (and beyond) them.
#[derive(Debug, Clone)]
pub struct Quality {
    pub retention_d1: f64,
    pub retention_d7: f64,
    pub retention_d30: f64,
    /// Share of users who would ever pay, before the planted path's lift.
    pub base_payer_rate: f64,
    /// Chance that a paying user buys on a day they are active.
    pub purchase_rate: f64,
    /// Median purchase in US dollars (log-normal, snapped to price tiers).
    pub purchase_median_usd: f64,
    /// Chance of finishing the tutorial on the install day, for an average user.
    pub tutorial_rate: f64,
    /// Chance of joining a guild on the install day, for an average tutorial finisher.
    pub guild_rate: f64,
    /// Per-day activity hazards `h[k]` for day k since install (k = 0 unused), such that a
    /// user of engagement `e` is active on day k with chance `1 - exp(-e h[k])`, and the
    /// average user follows the retention curve exactly.
    pub hazard: Vec<f64>,
    /// Mean purchase in US dollars (the log-normal snapped to price tiers).
    pub mean_purchase_usd: f64,
    /// Expected active days in the first H days for each of [`super::HORIZONS`], tabulated
    /// over engagement (see [`ActiveDays`]).
    pub active_days: ActiveDays,
}

/// Expected active days `A_H(e) = 1 + sum_{k=1}^{H-1} (1 - exp(-e h_k))` on a grid of
/// engagement values, so a user's expected revenue costs a lookup instead of 180 `exp`s.
/// The grid is dense near zero (`e_i = E_MAX (i/N)^2`), where most users are.
#[derive(Debug, Clone, Default)]
pub struct ActiveDays {
    /// `values[h][i]`: horizon index h, grid point i.
    values: [Vec<f64>; 4],
}

const GRID_POINTS: usize = 600;
/// Engagement beyond this is treated as this (the Gamma(1.5) tail there is ~1e-19).
const E_MAX: f64 = 30.0;

impl ActiveDays {
    fn tabulate(hazard: &[f64]) -> ActiveDays {
        let mut values: [Vec<f64>; 4] = Default::default();
        for i in 0..=GRID_POINTS {
            let e = Self::grid(i);
            let mut active = 1.0;
            let mut k = 1usize;
            for (hi, h) in super::HORIZONS.iter().enumerate() {
                while k < *h as usize {
                    active += 1.0 - (-e * hazard.get(k).copied().unwrap_or(0.0)).exp();
                    k += 1;
                }
                values[hi].push(active);
            }
        }
        ActiveDays { values }
    }

    fn grid(i: usize) -> f64 {
        let x = i as f64 / GRID_POINTS as f64;
        E_MAX * x * x
    }

    /// Expected active days at horizon index `h` for engagement `e` (linear interpolation).
    pub fn at(&self, h: usize, e: f64) -> f64 {
        let v = &self.values[h.min(3)];
        let x = (e.clamp(0.0, E_MAX) / E_MAX).sqrt() * GRID_POINTS as f64;
        let i = (x.floor() as usize).min(GRID_POINTS - 1);
        let (e0, e1) = (Self::grid(i), Self::grid(i + 1));
        let w = if e1 > e0 {
            (e.clamp(0.0, E_MAX) - e0) / (e1 - e0)
        } else {
            0.0
        };
        v[i] * (1.0 - w) + v[i + 1] * w
    }
}

/// Shape of the Gamma distribution of user engagement (mean 1).
pub const ENGAGEMENT_SHAPE: f64 = 1.5;

impl Quality {
    /// Retention at day k (k >= 1) by log-log interpolation of the three anchors.
    pub fn retention(&self, k: u32) -> f64 {
        let k = f64::from(k.max(1));
        let (k0, r0, k1, r1): (f64, f64, f64, f64) = if k <= 7.0 {
            (1.0, self.retention_d1, 7.0, self.retention_d7)
        } else {
            (7.0, self.retention_d7, 30.0, self.retention_d30)
        };
        let slope = (r1.ln() - r0.ln()) / (k1.ln() - k0.ln());
        (r0.ln() + slope * (k.ln() - k0.ln())).exp().clamp(0.0, 1.0)
    }

    /// Derives what the generator needs from the drawn parameters: daily hazards, the mean
    /// purchase and the expected-active-days table.
    fn finish(mut self, horizon_days: u32) -> Self {
        // E_e[1 - exp(-e h)] = 1 - (1 + h/s)^-s for e ~ Gamma(s, 1/s): solve for h.
        let s = ENGAGEMENT_SHAPE;
        self.hazard = (0..horizon_days)
            .map(|k| {
                if k == 0 {
                    0.0
                } else {
                    let r = self.retention(k).min(0.999);
                    s * ((1.0 - r).powf(-1.0 / s) - 1.0)
                }
            })
            .collect();
        self.mean_purchase_usd = super::life::expected_purchase_usd(self.purchase_median_usd);
        self.active_days = ActiveDays::tabulate(&self.hazard);
        self
    }
}

#[derive(Debug, Clone)]
pub struct Ad {
    pub ad_id: String,
    pub ad_name: String,
    pub adset_id: String,
    pub adset_name: String,
    /// Cost per install of this ad, in micros of the account currency.
    pub cpi_micros: i64,
    /// Installs per click and clicks per impression: delivery funnel of the ad.
    pub install_per_click: f64,
    pub click_through: f64,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub index: usize,
    pub channel: Channel,
    pub account_id: String,
    pub campaign_id: String,
    pub campaign_name: String,
    /// "ios", "android" or "all".
    pub platform: &'static str,
    pub is_test: bool,
    /// Relative install volume.
    pub weight: f64,
    /// First and last world day (inclusive) on which it buys installs.
    pub first_day: u32,
    pub last_day: u32,
    pub quality: Quality,
    pub ads: Vec<Ad>,
}

impl Campaign {
    pub fn runs_on(&self, day: u32) -> bool {
        self.first_day <= day && day <= self.last_day
    }
}

/// A path of early events that truly raises the chance of paying.
#[derive(Debug, Clone)]
pub struct PlantedPath {
    pub steps: &'static [&'static str],
    /// Multiplier on the payer chance of users who walk the path on their install day.
    pub payer_lift: f64,
}

/// The planted critical path: finishing the tutorial and then joining a guild on the
/// install day triples the chance of paying.
pub const PLANTED_PATHS: [PlantedPath; 1] = [PlantedPath {
    steps: &["tutorial_complete", "join_guild"],
    payer_lift: 3.0,
}];

#[derive(Debug, Clone)]
pub struct WorldPlan {
    /// Paid campaigns (test campaigns included), in a fixed order.
    pub campaigns: Vec<Campaign>,
    /// The organic pseudo-campaign (no ads, no cost).
    pub organic: Quality,
}

impl WorldPlan {
    pub fn generate(seed: u64, days: u32, campaigns_per_channel: u32, horizon_days: u32) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5EED_CA3A_1A16_0001);
        let mut campaigns = Vec::new();
        for (ci, channel) in CHANNELS.iter().enumerate() {
            let account_id = account_id(channel, &mut rng);
            for k in 0..=campaigns_per_channel {
                // The extra campaign of each channel is the team's test campaign.
                let is_test = k == campaigns_per_channel;
                let index = campaigns.len();
                let quality = draw_quality(channel.quality, &mut rng).finish(horizon_days);
                let platform = if channel.ios_only {
                    "ios"
                } else {
                    ["all", "all", "ios", "android"][rng.random_range(0..4)]
                };
                let late_start = !is_test && k > 0 && rng.random_bool(0.3);
                let first_day = if late_start {
                    rng.random_range(0..(days / 3).max(1))
                } else {
                    0
                };
                let early_stop = !is_test && rng.random_bool(0.15);
                let last_day = if early_stop {
                    rng.random_range(first_day..days.max(first_day + 1))
                        .max(first_day + days / 4)
                } else {
                    days.saturating_sub(1)
                };
                let campaign_id = campaign_id(channel, ci, k, &mut rng);
                let theme = THEMES[rng.random_range(0..THEMES.len())];
                let campaign_name = if is_test {
                    format!("[TEST] {} {} creative check", channel.key, theme)
                } else {
                    format!("{}_{}_{}_{:02}", channel.key, platform, theme, k + 1)
                };
                let cpi_usd = channel.base_cpi_usd
                    * LogNormal::new(0.0, 0.3)
                        .map(|d| d.sample(&mut rng))
                        .unwrap_or(1.0);
                let usd_per_unit = super::fx::CURRENCIES
                    .iter()
                    .find(|(c, _)| *c == channel.account_currency)
                    .map(|(_, r)| *r)
                    .unwrap_or(1.0);
                let ads = (0..2)
                    .flat_map(|s| (0..2).map(move |a| (s, a)))
                    .map(|(s, a)| {
                        let adset_id = format!("{campaign_id}{s}");
                        Ad {
                            ad_id: format!("{adset_id}{a}"),
                            ad_name: format!("{theme}_creative_{}", a + 1),
                            adset_id,
                            adset_name: format!("{theme}_audience_{}", s + 1),
                            cpi_micros: ((cpi_usd * rng.random_range(0.85..1.15)) / usd_per_unit
                                * 1_000_000.0)
                                .round() as i64,
                            install_per_click: rng.random_range(0.05..0.25),
                            click_through: rng.random_range(0.005..0.03),
                        }
                    })
                    .collect();
                campaigns.push(Campaign {
                    index,
                    channel: *channel,
                    account_id: account_id.clone(),
                    campaign_id,
                    campaign_name,
                    platform,
                    is_test,
                    weight: LogNormal::new(0.0, 0.6)
                        .map(|d| d.sample(&mut rng))
                        .unwrap_or(1.0),
                    first_day,
                    last_day,
                    quality,
                    ads,
                });
            }
        }
        let organic = draw_quality(1.15, &mut rng).finish(horizon_days);
        WorldPlan { campaigns, organic }
    }

    /// Paid, non-test campaigns running on `day`.
    pub fn live_paid(&self, day: u32) -> impl Iterator<Item = &Campaign> {
        self.campaigns
            .iter()
            .filter(move |c| !c.is_test && c.runs_on(day))
    }

    pub fn test_campaigns(&self) -> impl Iterator<Item = &Campaign> {
        self.campaigns.iter().filter(|c| c.is_test)
    }
}

const THEMES: [&str; 8] = [
    "rpg_hero",
    "guild_wars",
    "summer_event",
    "retarget_lapsed",
    "lookalike",
    "broad",
    "brand",
    "reward_wall",
];

fn draw_quality(channel_quality: f64, rng: &mut Xoshiro256PlusPlus) -> Quality {
    let q = channel_quality * rng.random_range(0.75..1.3);
    let retention_d1 = (0.22 + 0.18 * q.min(1.6)).min(0.6) * rng.random_range(0.85..1.15);
    let retention_d7 = retention_d1 * rng.random_range(0.35..0.55);
    let retention_d30 = retention_d7 * rng.random_range(0.35..0.6);
    Quality {
        retention_d1,
        retention_d7,
        retention_d30,
        base_payer_rate: (0.012 * q * rng.random_range(0.6..1.6)).min(0.2),
        purchase_rate: rng.random_range(0.12..0.3),
        purchase_median_usd: rng.random_range(3.0..12.0) * q.sqrt(),
        tutorial_rate: rng.random_range(0.45..0.85),
        guild_rate: rng.random_range(0.15..0.45),
        hazard: Vec::new(),
        mean_purchase_usd: 0.0,
        active_days: ActiveDays::default(),
    }
}

/// The channel's ad account: the ids `pipelines/demo.toml` names, so the local server answers
/// for the accounts the demo config asks about. The draw is kept so the rest of the world
/// does not shift.
fn account_id(channel: &Channel, rng: &mut Xoshiro256PlusPlus) -> String {
    let _ = rng.random_range(1_000_000u64..9_999_999);
    match channel.key {
        "facebook" => "act_1000000001",
        "google_ads" => "1000000001",
        "apple_search_ads" => "1000001",
        "naver" => "1000001",
        _ => "adison-1000001",
    }
    .to_string()
}

fn campaign_id(channel: &Channel, ci: usize, k: u32, rng: &mut Xoshiro256PlusPlus) -> String {
    // Each channel's own id style; unique because channel and campaign index are in it.
    match channel.key {
        "facebook" => format!(
            "2385{ci}{k:03}{}",
            rng.random_range(10_000_000u64..99_999_999)
        ),
        "naver" => format!(
            "cmp-a001-01-{ci}{k:03}{}",
            rng.random_range(100_000u64..999_999)
        ),
        _ => format!("{}{ci}{k:03}", rng.random_range(10_000u64..99_999)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_curve_hits_its_anchors_and_decays() {
        let plan = WorldPlan::generate(1, 90, 3, 180);
        for c in &plan.campaigns {
            let q = &c.quality;
            assert!((q.retention(1) - q.retention_d1).abs() < 1e-9);
            assert!((q.retention(7) - q.retention_d7).abs() < 1e-9);
            assert!((q.retention(30) - q.retention_d30).abs() < 1e-9);
            assert!(q.retention(90) < q.retention(30));
            assert_eq!(q.hazard.len(), 180);
            // The table agrees with the sum it replaces, on and between grid points.
            for e in [0.0, 0.013, 0.4, 1.0, 2.7, 9.5] {
                let direct: f64 =
                    1.0 + (1..30).map(|k| 1.0 - (-e * q.hazard[k]).exp()).sum::<f64>();
                let table = q.active_days.at(1, e);
                assert!(
                    (direct - table).abs() < 1e-3 * direct,
                    "e {e}: {direct} vs {table}"
                );
            }
        }
    }

    #[test]
    fn ids_are_unique_and_every_channel_has_a_test_campaign() {
        let plan = WorldPlan::generate(9, 90, 4, 180);
        let mut ids: Vec<_> = plan
            .campaigns
            .iter()
            .map(|c| c.campaign_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), plan.campaigns.len());
        assert_eq!(plan.test_campaigns().count(), CHANNELS.len());
        let mut ads: Vec<_> = plan
            .campaigns
            .iter()
            .flat_map(|c| c.ads.iter().map(|a| a.ad_id.clone()))
            .collect();
        let n = ads.len();
        ads.sort();
        ads.dedup();
        assert_eq!(ads.len(), n);
    }
}
