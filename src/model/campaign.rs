//! From users to campaigns: campaign pLTV is the mean of its users' predictions, with a
//! bootstrap interval over users, and predicted ROAS = pLTV × installs / spend.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// Bootstrap resamples per campaign.
pub const RESAMPLES: usize = 200;
/// Two-sided coverage of the interval.
pub const COVERAGE: f64 = 0.9;

/// One campaign's predicted value per user, micros of the reporting currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignLtv {
    pub users: usize,
    pub pltv_micros: f64,
    pub low_micros: f64,
    pub high_micros: f64,
}

impl CampaignLtv {
    /// Mean and percentile-bootstrap interval of `predictions` (one campaign's users).
    /// The seed makes a recompute give the same interval.
    pub fn of(predictions: &[f64], seed: u64) -> Option<CampaignLtv> {
        let n = predictions.len();
        if n == 0 {
            return None;
        }
        let mean = predictions.iter().sum::<f64>() / n as f64;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut means: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                (0..n)
                    .map(|_| predictions[rng.random_range(0..n)])
                    .sum::<f64>()
                    / n as f64
            })
            .collect();
        means.sort_by(f64::total_cmp);
        let tail = (1.0 - COVERAGE) / 2.0;
        let at = |q: f64| means[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
        Some(CampaignLtv {
            users: n,
            pltv_micros: mean,
            low_micros: at(tail),
            high_micros: at(1.0 - tail),
        })
    }

    /// Predicted return on ad spend: value of all the campaign's installs over its spend;
    /// `None` without spend (organic, or a campaign whose costs are unknown).
    pub fn roas(&self, installs: u64, spend_micros: i64) -> Option<f64> {
        (spend_micros > 0).then(|| self.pltv_micros * installs as f64 / spend_micros as f64)
    }
}

/// A stable seed per campaign key, so intervals do not move between runs.
pub fn seed_of(key: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_holds_the_mean_and_narrows_with_more_users() {
        let few: Vec<f64> = (0..50).map(|i| f64::from(i % 10)).collect();
        let many: Vec<f64> = (0..5000).map(|i| f64::from(i % 10)).collect();
        let a = CampaignLtv::of(&few, 1).unwrap();
        let b = CampaignLtv::of(&many, 1).unwrap();
        assert_eq!(a.pltv_micros, 4.5);
        assert!(a.low_micros < 4.5 && 4.5 < a.high_micros);
        assert!(b.high_micros - b.low_micros < (a.high_micros - a.low_micros) / 5.0);
        assert_eq!(CampaignLtv::of(&few, 1), CampaignLtv::of(&few, 1));
        assert!(CampaignLtv::of(&[], 1).is_none());
    }

    #[test]
    fn roas_needs_spend() {
        let c = CampaignLtv::of(&[2_000_000.0, 4_000_000.0], 1).unwrap();
        assert_eq!(c.roas(100, 200_000_000), Some(1.5));
        assert_eq!(c.roas(100, 0), None);
        assert_ne!(seed_of("meta/1"), seed_of("meta/2"));
    }
}
