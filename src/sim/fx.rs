//! Currencies of the simulated world: price tiers per currency and a daily FX walk.
//! Money is integer micros (millionths of the currency unit) everywhere.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// Currencies the world uses, with their nominal US dollars per unit.
pub const CURRENCIES: [(&str, f64); 3] =
    [("USD", 1.0), ("KRW", 1.0 / 1350.0), ("JPY", 1.0 / 150.0)];

/// In-app price tiers in US dollars; each currency has its own round price per tier.
pub const TIER_USD: [f64; 6] = [0.99, 4.99, 9.99, 19.99, 49.99, 99.99];
const TIER_KRW: [i64; 6] = [1_200, 6_500, 13_000, 26_000, 65_000, 129_000];
const TIER_JPY: [i64; 6] = [160, 800, 1_600, 3_000, 8_000, 16_000];

/// The price of a tier in a currency, in micros of that currency.
pub fn tier_price_micros(currency: &str, tier: usize) -> i64 {
    let tier = tier.min(TIER_USD.len() - 1);
    match currency {
        "KRW" => TIER_KRW[tier] * 1_000_000,
        "JPY" => TIER_JPY[tier] * 1_000_000,
        _ => (TIER_USD[tier] * 1_000_000.0).round() as i64,
    }
}

/// Converts micros of a currency into US dollar micros at `usd_per_unit`. The one formula
/// the simulator's truth and every test use, so sums agree to the micro.
pub fn to_usd_micros(amount_micros: i64, usd_per_unit: f64) -> i64 {
    (amount_micros as f64 * usd_per_unit).round() as i64
}

/// Daily US dollars per unit for each currency: a small random walk around the nominal
/// rate (±0.3% a day), one value per day from the world's first day.
#[derive(Debug, Clone)]
pub struct FxSeries {
    /// `rates[day][currency index]`.
    rates: Vec<[f64; 3]>,
}

impl FxSeries {
    pub fn generate(seed: u64, days: usize) -> FxSeries {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xF0F0_1234_5678_9ABC);
        let mut level = [1.0f64; 3];
        let mut rates = Vec::with_capacity(days);
        for _ in 0..days {
            let mut day = [0.0; 3];
            for (i, (code, nominal)) in CURRENCIES.iter().enumerate() {
                if *code != "USD" {
                    let step: f64 = rng.random_range(-0.003..0.003);
                    // Mean-reverting, so the rate stays near its nominal value.
                    level[i] = (level[i] * (1.0 + step)) * 0.98 + 0.02;
                }
                day[i] = nominal * level[i];
            }
            rates.push(day);
        }
        FxSeries { rates }
    }

    /// US dollars per unit of `currency` on world day `day` (clamped to the series).
    pub fn usd_per_unit(&self, day: usize, currency: &str) -> f64 {
        let idx = CURRENCIES
            .iter()
            .position(|(c, _)| *c == currency)
            .unwrap_or(0);
        let day = day.min(self.rates.len().saturating_sub(1));
        self.rates.get(day).map(|r| r[idx]).unwrap_or(1.0)
    }

    pub fn days(&self) -> usize {
        self.rates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_tier_prices_are_whole_cents() {
        assert_eq!(tier_price_micros("USD", 0), 990_000);
        assert_eq!(tier_price_micros("KRW", 1), 6_500_000_000);
        assert_eq!(to_usd_micros(1_350_000_000, 1.0 / 1350.0), 1_000_000);
    }

    #[test]
    fn fx_stays_near_nominal() {
        let fx = FxSeries::generate(7, 400);
        for day in 0..400 {
            let krw = fx.usd_per_unit(day, "KRW") * 1350.0;
            assert!((0.9..1.1).contains(&krw), "day {day}: {krw}");
            assert_eq!(fx.usd_per_unit(day, "USD"), 1.0);
        }
    }
}
