//! Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"):
//! a customer's purchase amounts are `Gamma(p, rate nu)` around their own mean `p / nu`, and
//! across customers `nu ~ Gamma(q, rate gamma)`. Fitted on repeat buyers' number of repeat
//! purchases `x` and mean repeat spend `m`; it assumes spend is independent of purchase
//! frequency, which is why it pairs with BG/NBD.

use serde::{Deserialize, Serialize};

use super::{BtydError, FitDiagnostics};
use crate::model::information::standard_errors;
use crate::model::optimise::NelderMead;
use crate::model::special::ln_gamma;

/// The three Gamma-Gamma parameters: `p` the shape of a customer's amounts, `q` and `gamma`
/// the shape and rate of the customers' rate parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A repeat buyer's spend: `frequency` repeat purchase days with mean amount `mean_spend`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepeatSpend {
    pub frequency: u32,
    pub mean_spend: f64,
}

impl GammaGammaParams {
    fn from_logs(z: &[f64]) -> Self {
        Self {
            p: z[0].exp(),
            q: z[1].exp(),
            gamma: z[2].exp(),
        }
    }

    /// Log density of the mean of `x` amounts (Fader & Hardie 2013, equation 3):
    /// `lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x)
    ///  - (px+q) ln(gamma + m x)`.
    pub fn log_likelihood(&self, s: &RepeatSpend) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let (x, m) = (f64::from(s.frequency), s.mean_spend);
        let px = p * x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * gamma.ln()
            + (px - 1.0) * m.ln()
            + px * x.ln()
            - (px + q) * (gamma + m * x).ln()
    }

    /// Expected mean spend of a customer given their history (equation 5):
    /// `p (gamma + x m) / (p x + q - 1)`, a weighted mean of the population mean and the
    /// customer's own mean that leans on the customer more the more they bought.
    pub fn conditional_expected_spend(&self, s: &RepeatSpend) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let x = f64::from(s.frequency);
        p * (gamma + x * s.mean_spend) / (p * x + q - 1.0)
    }

    /// The population's mean spend per purchase, `p gamma / (q - 1)`; infinite (none) unless
    /// `q > 1`.
    pub fn mean_spend(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }
}

/// Repeat buyers grouped by purchase count: the Gamma-function terms depend only on `x`, so
/// they are computed once per distinct `x` and evaluation, and `ln m` once per customer for the
/// whole fit. Leaves one logarithm per customer and evaluation.
struct Grouped {
    groups: Vec<Group>,
}

struct Group {
    x: f64,
    count: f64,
    x_ln_x: f64,
    sum_ln_m: f64,
    /// `m x` of each customer in the group.
    totals: Vec<f64>,
}

impl Grouped {
    fn new(spends: &[RepeatSpend]) -> Self {
        let mut sorted = spends.to_vec();
        sorted.sort_by_key(|s| s.frequency);
        let mut groups: Vec<Group> = Vec::new();
        for s in sorted {
            let x = f64::from(s.frequency);
            if groups.last().is_none_or(|g| g.x != x) {
                groups.push(Group {
                    x,
                    count: 0.0,
                    x_ln_x: x * x.ln(),
                    sum_ln_m: 0.0,
                    totals: Vec::new(),
                });
            }
            if let Some(g) = groups.last_mut() {
                g.count += 1.0;
                g.sum_ln_m += s.mean_spend.ln();
                g.totals.push(s.mean_spend * x);
            }
        }
        Self { groups }
    }

    /// The sum of `GammaGammaParams::log_likelihood` over the customers, rearranged by group.
    fn log_likelihood(&self, params: &GammaGammaParams) -> f64 {
        let GammaGammaParams { p, q, gamma } = *params;
        let shared = q * gamma.ln() - ln_gamma(q);
        let mut total = 0.0;
        for g in &self.groups {
            let px = p * g.x;
            let per_customer = ln_gamma(px + q) - ln_gamma(px) + shared + p * g.x_ln_x;
            let denominators: f64 = g.totals.iter().map(|mx| (gamma + mx).ln()).sum();
            total += g.count * per_customer + (px - 1.0) * g.sum_ln_m - (px + q) * denominators;
        }
        total
    }
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaModel {
    pub params: GammaGammaParams,
    /// Standard errors from the observed information, when the optimum is well defined.
    pub standard_errors: Option<GammaGammaParams>,
    pub log_likelihood: f64,
    /// Repeat buyers the model was fitted on.
    pub customers: usize,
    pub fit: FitDiagnostics,
}

/// Fewer repeat buyers than parameters leave the maximum undefined.
const MIN_CUSTOMERS: usize = 3;

/// Fits Gamma-Gamma by maximum likelihood on repeat buyers with positive mean spend.
pub fn fit(spends: &[RepeatSpend]) -> Result<GammaGammaModel, BtydError> {
    const MODEL: &str = "Gamma-Gamma";
    for (index, s) in spends.iter().enumerate() {
        if s.frequency == 0 {
            return Err(BtydError::InvalidSummary {
                index,
                reason: "Gamma-Gamma needs repeat buyers (frequency of at least 1)".into(),
            });
        }
        if !(s.mean_spend.is_finite() && s.mean_spend > 0.0) {
            return Err(BtydError::InvalidSummary {
                index,
                reason: format!(
                    "mean repeat spend {} must be a positive number",
                    s.mean_spend
                ),
            });
        }
    }
    if spends.len() < MIN_CUSTOMERS {
        return Err(BtydError::CannotFit {
            model: MODEL,
            reason: "needs at least 3 repeat buyers with positive spend",
        });
    }
    let n = spends.len() as f64;
    let data = Grouped::new(spends);
    let total = |params: &GammaGammaParams| data.log_likelihood(params);
    // Start at p = 1, q = 2 and gamma = the mean spend, where the population mean spend
    // p gamma / (q - 1) equals the observed one.
    let mean = spends.iter().map(|s| s.mean_spend).sum::<f64>() / n;
    let start = [0.0, 2f64.ln(), mean.ln()];
    let mean_nll = |z: &[f64]| -total(&GammaGammaParams::from_logs(z)) / n;
    let minimum = NelderMead::default().minimise(mean_nll, &start)?;
    let params = GammaGammaParams::from_logs(&minimum.point);
    let log_likelihood: f64 = total(&params);
    if !log_likelihood.is_finite() {
        return Err(BtydError::CannotFit {
            model: MODEL,
            reason: "the log-likelihood is not finite at the optimum",
        });
    }
    let standard_errors = standard_errors(
        |z: &[f64]| -total(&GammaGammaParams::from_logs(z)),
        &minimum.point,
    )
    .map(|se| GammaGammaParams {
        p: se[0],
        q: se[1],
        gamma: se[2],
    });
    Ok(GammaGammaModel {
        params,
        standard_errors,
        log_likelihood,
        customers: spends.len(),
        fit: FitDiagnostics {
            evaluations: minimum.evaluations,
            restarts: minimum.restarts,
            converged: minimum.converged,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;
    use crate::model::btyd::BgNbdParams;
    use crate::model::btyd::simulate::{simulate_bgnbd, simulate_spends};

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs();
        assert!(err <= rel, "got {got}, want {want}, relative error {err:e}");
    }

    fn spend(frequency: u32, mean_spend: f64) -> RepeatSpend {
        RepeatSpend {
            frequency,
            mean_spend,
        }
    }

    #[test]
    fn log_likelihood_matches_hand_computed_values() {
        // f(m | x) = G(px+q) / (G(px) G(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q).
        let params = GammaGammaParams {
            p: 2.0,
            q: 3.0,
            gamma: 4.0,
        };
        // x = 1, m = 5: G(5)/(G(2)G(3)) = 24/2 = 12; 4^3 = 64; 5^1; 1^2; 9^5 = 59049.
        // f = 12 * 64 * 5 / 59049 = 3840 / 59049.
        close(
            params.log_likelihood(&spend(1, 5.0)),
            (3840.0f64 / 59049.0).ln(),
            1e-14,
        );
        // x = 2, m = 3: px = 4; G(7)/(G(4)G(3)) = 720/12 = 60; 64; 3^3 = 27; 2^4 = 16;
        // (4 + 6)^7 = 1e7. f = 60 * 64 * 27 * 16 / 1e7 = 0.165888.
        close(
            params.log_likelihood(&spend(2, 3.0)),
            0.165_888f64.ln(),
            1e-14,
        );
        // Conditional mean: 2 (4 + 2 * 3) / (4 + 3 - 1) = 20/6, which is also
        // (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * m = 2/6 * 4 + 4/6 * 3.
        close(
            params.conditional_expected_spend(&spend(2, 3.0)),
            20.0 / 6.0,
            1e-15,
        );
        close(params.mean_spend().unwrap(), 4.0, 1e-15);
    }

    #[test]
    fn grouped_likelihood_equals_the_plain_sum() {
        let params = GammaGammaParams {
            p: 2.5,
            q: 3.5,
            gamma: 12.0,
        };
        let spends = [spend(3, 20.0), spend(1, 7.5), spend(3, 41.0), spend(2, 9.0)];
        let plain: f64 = spends.iter().map(|s| params.log_likelihood(s)).sum();
        let grouped = Grouped::new(&spends);
        assert_eq!(grouped.groups.len(), 3);
        close(grouped.log_likelihood(&params), plain, 1e-13);
    }

    #[test]
    fn rejects_what_it_cannot_fit() {
        assert!(matches!(
            fit(&[spend(0, 5.0)]),
            Err(BtydError::InvalidSummary { .. })
        ));
        assert!(matches!(
            fit(&[spend(1, 0.0)]),
            Err(BtydError::InvalidSummary { .. })
        ));
        assert!(matches!(
            fit(&[spend(1, 5.0), spend(2, 6.0)]),
            Err(BtydError::CannotFit { .. })
        ));
    }

    #[test]
    fn recovers_known_parameters_from_simulated_spend() {
        // Repeat buyers of a BG/NBD population (as in the model's use), spend drawn from the
        // brief's (p, q, gamma) = (6, 4, 15). Tolerance: within 3 standard errors of the truth
        // (observed information), the standard errors under 40% of the value. q and gamma
        // trade off against each other (their ratio sets the mean), so their errors are wide.
        let truth = GammaGammaParams {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        let purchases = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2013);
        let ages: Vec<f64> = (0..10_000)
            .map(|i| 26.0 + 52.0 * i as f64 / 10_000.0)
            .collect();
        let mut spends = Vec::new();
        for c in simulate_bgnbd(&purchases, &ages, &mut rng).unwrap() {
            let x = c.history().frequency;
            if x > 0 {
                // The first purchase's amount is drawn too but, as in real data, not used.
                let amounts = simulate_spends(&truth, x as usize + 1, &mut rng).unwrap();
                let mean_spend = amounts[1..].iter().sum::<f64>() / f64::from(x);
                spends.push(spend(x, mean_spend));
            }
        }
        let model = fit(&spends).unwrap();
        println!("{} repeat buyers: {model:#?}", spends.len());
        assert!(model.fit.converged);
        let se = model.standard_errors.unwrap();
        for (name, got, want, se) in [
            ("p", model.params.p, truth.p, se.p),
            ("q", model.params.q, truth.q, se.q),
            ("gamma", model.params.gamma, truth.gamma, se.gamma),
        ] {
            assert!(se < 0.4 * want, "{name}: standard error {se} too large");
            assert!(
                (got - want).abs() <= 3.0 * se,
                "{name}: estimate {got}, truth {want}, standard error {se}"
            );
        }
        let at_truth: f64 = spends.iter().map(|s| truth.log_likelihood(s)).sum();
        assert!(model.log_likelihood >= at_truth);
    }
}
