//! Customers drawn from known BG/NBD and Gamma-Gamma parameters: the ground truth for the
//! parameter-recovery tests and the benchmarks. Seeded generators make every draw reproducible.

use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use super::{BgNbdParams, BtydError, CustomerHistory, GammaGammaParams};

/// A simulated customer: first purchase at time 0, observed until `age`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedCustomer {
    pub age: f64,
    /// Times of the repeat purchases in `(0, age]`, increasing.
    pub repeat_times: Vec<f64>,
}

impl SimulatedCustomer {
    /// The `(x, t_x, T)` summary the models are fitted on.
    pub fn history(&self) -> CustomerHistory {
        CustomerHistory {
            frequency: self.repeat_times.len() as u32,
            recency: self.repeat_times.last().copied().unwrap_or(0.0),
            age: self.age,
        }
    }
}

fn invalid(model: &'static str) -> BtydError {
    BtydError::InvalidParams {
        model,
        reason: "must be positive and finite",
    }
}

/// Draws one customer per entry of `ages` from BG/NBD: a purchase rate from
/// `Gamma(r, rate alpha)`, a dropout probability from `Beta(a, b)`, then exponential gaps
/// between purchases, with a chance `p` of dying after each repeat purchase.
pub fn simulate_bgnbd<R: Rng>(
    params: &BgNbdParams,
    ages: &[f64],
    rng: &mut R,
) -> Result<Vec<SimulatedCustomer>, BtydError> {
    let BgNbdParams { r, alpha, a, b } = *params;
    let rates = Gamma::new(r, 1.0 / alpha).map_err(|_| invalid("BG/NBD"))?;
    let dropouts = Beta::new(a, b).map_err(|_| invalid("BG/NBD"))?;
    let mut customers = Vec::with_capacity(ages.len());
    for &age in ages {
        let lambda: f64 = rates.sample(rng);
        let p: f64 = dropouts.sample(rng);
        let mut repeat_times = Vec::new();
        // A rate that underflows to zero means no purchases at all.
        if let Ok(gaps) = Exp::new(lambda) {
            let mut t = 0.0;
            loop {
                t += gaps.sample(rng);
                if t > age {
                    break;
                }
                repeat_times.push(t);
                if rng.random::<f64>() < p {
                    break;
                }
            }
        }
        customers.push(SimulatedCustomer { age, repeat_times });
    }
    Ok(customers)
}

/// Draws `count` purchase amounts of one customer from Gamma-Gamma: the customer's rate
/// `nu ~ Gamma(q, rate gamma)`, then each amount `~ Gamma(p, rate nu)`.
pub fn simulate_spends<R: Rng>(
    params: &GammaGammaParams,
    count: usize,
    rng: &mut R,
) -> Result<Vec<f64>, BtydError> {
    let GammaGammaParams { p, q, gamma } = *params;
    let rates = Gamma::new(q, 1.0 / gamma).map_err(|_| invalid("Gamma-Gamma"))?;
    let nu: f64 = rates.sample(rng);
    let amounts = Gamma::new(p, 1.0 / nu).map_err(|_| invalid("Gamma-Gamma"))?;
    Ok((0..count).map(|_| amounts.sample(rng)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn simulated_purchases_average_to_the_models_expectation() {
        // E[X(t)] in closed form against the mean repeat count of 50,000 simulated customers
        // (Monte-Carlo error about 1.5% at these parameters; 5% tolerance).
        let params = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let customers = simulate_bgnbd(&params, &[39.0; 50_000], &mut rng).unwrap();
        let mean = customers
            .iter()
            .map(|c| f64::from(c.history().frequency))
            .sum::<f64>()
            / customers.len() as f64;
        let want = params.expected_repeats(39.0).unwrap();
        assert!((mean - want).abs() < 0.05 * want, "{mean} vs {want}");
        for c in &customers {
            let h = c.history();
            assert!(h.recency <= h.age && c.repeat_times.windows(2).all(|w| w[0] < w[1]));
        }
        // Same seed, same customers.
        let mut again = Xoshiro256PlusPlus::seed_from_u64(1);
        assert_eq!(
            simulate_bgnbd(&params, &[39.0; 100], &mut again).unwrap()[..],
            customers[..100]
        );
    }

    #[test]
    fn simulated_spend_has_the_models_mean() {
        // E[amount] = p gamma / (q - 1) = 6 * 15 / 3 = 30.
        let params = GammaGammaParams {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut total = 0.0;
        let customers = 20_000;
        for _ in 0..customers {
            total += simulate_spends(&params, 1, &mut rng).unwrap()[0];
        }
        let mean = total / f64::from(customers);
        assert!((mean - 30.0).abs() < 1.0, "{mean}");
        assert!(simulate_spends(&GammaGammaParams { q: -1.0, ..params }, 1, &mut rng).is_err());
    }
}
