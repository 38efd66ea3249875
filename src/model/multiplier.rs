//! The observed-revenue multiplier, the baseline most teams use: a user's revenue at the
//! horizon is their revenue at day K times the mature cohorts' ratio of revenue at the
//! horizon to revenue at day K, per channel.
//!
//! Its known flaw is kept on purpose, as the thing the hurdle model must beat: a user who
//! has not paid by day K is predicted to be worth nothing, ever.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A channel needs this much revenue at day K, in payers, for its own ratio; below it the
/// overall ratio stands in.
pub const MIN_CHANNEL_PAYERS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multiplier {
    /// Σ revenue at the horizon / Σ revenue at day K, per channel with enough payers.
    pub by_channel: BTreeMap<String, f64>,
    /// The same over every mature user.
    pub overall: f64,
}

impl Multiplier {
    /// Fits on mature users: `(channel, revenue at K, revenue at the horizon)`, micros.
    pub fn fit<'a>(users: impl IntoIterator<Item = (&'a str, f64, f64)>) -> Multiplier {
        // (Σ at K, Σ at H, payers at K)
        let mut sums: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
        let (mut k_all, mut h_all) = (0.0, 0.0);
        for (channel, at_k, at_h) in users {
            let s = sums.entry(channel.to_string()).or_default();
            s.0 += at_k;
            s.1 += at_h;
            s.2 += usize::from(at_k > 0.0);
            k_all += at_k;
            h_all += at_h;
        }
        let overall = if k_all > 0.0 { h_all / k_all } else { 1.0 };
        let by_channel = sums
            .into_iter()
            .filter(|(_, (k, _, payers))| *payers >= MIN_CHANNEL_PAYERS && *k > 0.0)
            .map(|(c, (k, h, _))| (c, h / k))
            .collect();
        Multiplier {
            by_channel,
            overall,
        }
    }

    pub fn ratio(&self, channel: &str) -> f64 {
        self.by_channel
            .get(channel)
            .copied()
            .unwrap_or(self.overall)
    }

    pub fn predict(&self, channel: &str, revenue_at_k: f64) -> f64 {
        revenue_at_k * self.ratio(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_per_channel_with_the_overall_one_for_thin_channels() {
        let mut users = Vec::new();
        for _ in 0..30 {
            users.push(("meta", 2.0, 6.0));
            users.push(("meta", 0.0, 1.0));
        }
        users.push(("naver", 1.0, 10.0));
        let m = Multiplier::fit(users.iter().map(|(c, k, h)| (*c, *k, *h)));
        // meta: (30 × 7) / (30 × 2) = 3.5; naver has one payer and takes the overall ratio.
        assert!((m.ratio("meta") - 3.5).abs() < 1e-12);
        assert!((m.ratio("naver") - 220.0 / 61.0).abs() < 1e-12);
        assert!((m.predict("tiktok", 2.0) - 440.0 / 61.0).abs() < 1e-12);
        assert_eq!(m.predict("meta", 0.0), 0.0);
    }

    #[test]
    fn no_revenue_at_k_means_a_ratio_of_one() {
        let m = Multiplier::fit([("meta", 0.0, 0.0)]);
        assert_eq!(m.overall, 1.0);
    }
}
