//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a
//! customer buys at Poisson rate `lambda`; after each repeat purchase they die with probability
//! `p`. Across customers `lambda ~ Gamma(r, rate alpha)` and `p ~ Beta(a, b)`.
//!
//! The likelihood of a customer's history depends only on `x` (repeat purchases), `t_x`
//! (recency) and `T` (age), which is why the model is fitted on those summaries. `alpha` is in
//! the unit of `t_x` and `T` (days or weeks), and so are the horizons of the predictions.

use serde::{Deserialize, Serialize};

use super::{BtydError, FitDiagnostics};
use crate::model::ModelError;
use crate::model::information::standard_errors;
use crate::model::optimise::NelderMead;
use crate::model::special::{hyp2f1, ln_gamma};

/// The four BG/NBD parameters: `r` and `alpha` shape and rate of the purchase rates,
/// `a` and `b` of the dropout probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// One customer's calibration-window history, in periods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerHistory {
    /// Repeat purchases `x`.
    pub frequency: u32,
    /// Time from the first to the last purchase, `t_x` (0 when `x = 0`).
    pub recency: f64,
    /// Time from the first purchase to the end of the window, `T`.
    pub age: f64,
}

impl CustomerHistory {
    /// Why the history is impossible, if it is.
    fn problem(&self) -> Option<String> {
        let CustomerHistory {
            frequency,
            recency,
            age,
        } = *self;
        if !(recency.is_finite() && age.is_finite()) {
            Some(format!("recency {recency} and age {age} must be finite"))
        } else if recency < 0.0 || recency > age {
            Some(format!(
                "recency {recency} must lie between 0 and the age {age}"
            ))
        } else if frequency == 0 && recency != 0.0 {
            Some(format!(
                "recency {recency} must be 0 without repeat purchases"
            ))
        } else {
            None
        }
    }
}

impl BgNbdParams {
    fn from_logs(z: &[f64]) -> Self {
        Self {
            r: z[0].exp(),
            alpha: z[1].exp(),
            a: z[2].exp(),
            b: z[3].exp(),
        }
    }

    /// Log-likelihood of one history (FHL 2005, equation 6):
    /// `ln L = A1 + A2 + ln(e^A3 + [x > 0] e^A4)` with
    /// `A1 = lnG(r+x) - lnG(r) + r ln(alpha)`,
    /// `A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)`,
    /// `A3 = -(r+x) ln(alpha+T)`,
    /// `A4 = ln(a) - ln(b+x-1) - (r+x) ln(alpha+t_x)`.
    pub fn log_likelihood(&self, c: &CustomerHistory) -> f64 {
        let x = f64::from(c.frequency);
        let by_x = ByFrequency::new(self, x);
        by_x.log_likelihood(
            self.r,
            (self.alpha + c.recency).ln(),
            (self.alpha + c.age).ln(),
        )
    }

    /// Probability the customer is still alive at the end of their window (FHL 2005,
    /// equation 11). Always 1 without repeat purchases: the model lets customers die only
    /// after a repeat purchase.
    pub fn p_alive(&self, c: &CustomerHistory) -> f64 {
        if c.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(c.frequency);
        let odds = self.a / (self.b + x - 1.0)
            * ((self.alpha + c.age) / (self.alpha + c.recency)).powf(self.r + x);
        1.0 / (1.0 + odds)
    }

    /// Expected repeat purchases of a new customer in their first `t` periods (FHL 2005,
    /// equation 7): `(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]`.
    pub fn expected_repeats(&self, t: f64) -> Result<f64, ModelError> {
        let BgNbdParams { r, alpha, a, b } = *self;
        check_horizon(t, a)?;
        let h = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))?;
        Ok((a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * h))
    }

    /// Expected repeat purchases in the next `t` periods of a customer with this history (FHL
    /// 2005, equation 10):
    /// `(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]`
    /// divided by `1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)`.
    pub fn conditional_expected_repeats(
        &self,
        c: &CustomerHistory,
        t: f64,
    ) -> Result<f64, ModelError> {
        let BgNbdParams { r, alpha, a, b } = *self;
        check_horizon(t, a)?;
        let x = f64::from(c.frequency);
        let z = t / (alpha + c.age + t);
        let h = hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let shrink = ((alpha + c.age) / (alpha + c.age + t)).powf(r + x);
        let unconditional = (a + b + x - 1.0) / (a - 1.0) * (1.0 - shrink * h);
        Ok(unconditional * self.p_alive(c))
    }
}

/// The closed forms divide by `a - 1` (their limit at `a = 1` exists, but not the formula).
fn check_horizon(t: f64, a: f64) -> Result<(), ModelError> {
    const METRIC: &str = "BG/NBD expected purchases";
    if !(t.is_finite() && t >= 0.0) {
        return Err(ModelError::Undefined {
            metric: METRIC,
            reason: "the horizon must be a finite, non-negative number of periods",
        });
    }
    if a == 1.0 {
        return Err(ModelError::Undefined {
            metric: METRIC,
            reason: "the closed form divides by a - 1 and a is exactly 1",
        });
    }
    Ok(())
}

/// The parts of the likelihood that depend on `x` but not on `t_x` or `T`; the fit computes
/// them once per distinct purchase count.
struct ByFrequency {
    x: f64,
    a1_a2: f64,
    ln_dropout: f64,
}

impl ByFrequency {
    fn new(p: &BgNbdParams, x: f64) -> Self {
        let BgNbdParams { r, alpha, a, b } = *p;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        Self {
            x,
            a1_a2: a1 + a2,
            ln_dropout: if x > 0.0 {
                a.ln() - (b + x - 1.0).ln()
            } else {
                0.0
            },
        }
    }

    /// Takes `ln(alpha + t_x)` and `ln(alpha + T)`, which the fit looks up rather than
    /// recomputes.
    fn log_likelihood(&self, r: f64, ln_alpha_recency: f64, ln_alpha_age: f64) -> f64 {
        let rx = r + self.x;
        let a3 = -rx * ln_alpha_age;
        if self.x > 0.0 {
            let a4 = self.ln_dropout - rx * ln_alpha_recency;
            self.a1_a2 + log_add_exp(a3, a4)
        } else {
            self.a1_a2 + a3
        }
    }
}

fn log_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((u - m).exp() + (v - m).exp()).ln()
}

/// Histories with the same `(x, t_x, T)` contribute the same likelihood; with recency and age
/// counted in whole days there are far fewer distinct triples than customers, so the fit sums
/// over triples with their counts. Rows are sorted by `x`, so the per-`x` terms are computed
/// once per evaluation, and recency and age point into a table of their distinct values, so
/// `ln(alpha + t)` is computed once per distinct time rather than once per row.
struct Compressed {
    /// Distinct recency and age values, ascending.
    times: Vec<f64>,
    /// `(x, index of t_x in times, index of T in times, count)`.
    rows: Vec<(u32, usize, usize, f64)>,
}

impl Compressed {
    fn new(customers: &[CustomerHistory]) -> Self {
        let mut keys: Vec<(u32, u64, u64)> = customers
            .iter()
            .map(|c| (c.frequency, c.recency.to_bits(), c.age.to_bits()))
            .collect();
        // Non-negative finite floats order like their bit patterns.
        keys.sort_unstable();
        let mut times: Vec<u64> = keys.iter().flat_map(|k| [k.1, k.2]).collect();
        times.sort_unstable();
        times.dedup();
        let index = |bits: u64| times.binary_search(&bits).unwrap_or_default();
        let mut rows: Vec<(u32, usize, usize, f64)> = Vec::new();
        for (x, tx, t) in keys {
            let (tx, t) = (index(tx), index(t));
            match rows.last_mut() {
                Some(last) if last.0 == x && last.1 == tx && last.2 == t => last.3 += 1.0,
                _ => rows.push((x, tx, t, 1.0)),
            }
        }
        Self {
            times: times.into_iter().map(f64::from_bits).collect(),
            rows,
        }
    }

    fn log_likelihood(&self, p: &BgNbdParams) -> f64 {
        let ln_alpha_plus: Vec<f64> = self.times.iter().map(|t| (p.alpha + t).ln()).collect();
        let mut total = 0.0;
        let mut current_x = None;
        let mut by_x = ByFrequency::new(p, 0.0);
        for &(x, tx, t, count) in &self.rows {
            if current_x != Some(x) {
                by_x = ByFrequency::new(p, f64::from(x));
                current_x = Some(x);
            }
            total += count * by_x.log_likelihood(p.r, ln_alpha_plus[tx], ln_alpha_plus[t]);
        }
        total
    }
}

/// A fitted BG/NBD model: what `ltv btyd` prints and what a model artifact stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgNbdModel {
    pub params: BgNbdParams,
    /// Standard errors from the observed information; absent when the likelihood is flat in
    /// some direction at the optimum (a parameter the data does not pin down).
    pub standard_errors: Option<BgNbdParams>,
    /// Total log-likelihood at the estimates, comparable with the BTYD literature's.
    pub log_likelihood: f64,
    pub customers: usize,
    pub repeat_buyers: usize,
    pub fit: FitDiagnostics,
}

/// Fits BG/NBD by maximum likelihood.
///
/// Needs at least one repeat buyer: without one, purchase rates and dropout cannot be told
/// apart and the likelihood has no maximum.
pub fn fit(customers: &[CustomerHistory]) -> Result<BgNbdModel, BtydError> {
    const MODEL: &str = "BG/NBD";
    for (index, c) in customers.iter().enumerate() {
        if let Some(reason) = c.problem() {
            return Err(BtydError::InvalidSummary { index, reason });
        }
    }
    let repeat_buyers = customers.iter().filter(|c| c.frequency > 0).count();
    if repeat_buyers == 0 {
        return Err(BtydError::CannotFit {
            model: MODEL,
            reason: "no customer made a repeat purchase in the calibration window",
        });
    }
    let data = Compressed::new(customers);
    let n = customers.len() as f64;
    // Start where a Poisson rate would put it: r = 1 and alpha so that r / alpha is the mean
    // repeat rate; a = b = 1 (uniform dropout probability).
    let mean_x = customers
        .iter()
        .map(|c| f64::from(c.frequency))
        .sum::<f64>()
        / n;
    let mean_age = customers.iter().map(|c| c.age).sum::<f64>() / n;
    let alpha0 = (mean_age / mean_x).max(1e-3);
    let start = [0.0, alpha0.ln(), 0.0, 0.0];
    let mean_nll = |z: &[f64]| -data.log_likelihood(&BgNbdParams::from_logs(z)) / n;
    let minimum = NelderMead::default().minimise(mean_nll, &start)?;
    let params = BgNbdParams::from_logs(&minimum.point);
    let log_likelihood = data.log_likelihood(&params);
    if !log_likelihood.is_finite() {
        return Err(BtydError::CannotFit {
            model: MODEL,
            reason: "the log-likelihood is not finite at the optimum",
        });
    }
    let standard_errors = standard_errors(
        |z: &[f64]| -data.log_likelihood(&BgNbdParams::from_logs(z)),
        &minimum.point,
    )
    .map(|se| BgNbdParams {
        r: se[0],
        alpha: se[1],
        a: se[2],
        b: se[3],
    });
    Ok(BgNbdModel {
        params,
        standard_errors,
        log_likelihood,
        customers: customers.len(),
        repeat_buyers,
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
    use crate::model::btyd::simulate::simulate_bgnbd;

    fn history(frequency: u32, recency: f64, age: f64) -> CustomerHistory {
        CustomerHistory {
            frequency,
            recency,
            age,
        }
    }

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs();
        assert!(err <= rel, "got {got}, want {want}, relative error {err:e}");
    }

    #[test]
    fn log_likelihood_matches_hand_computed_values() {
        // L = G(r+x) alpha^r / G(r) * B(a, b+x) / B(a, b)
        //     * [ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ].
        let p = BgNbdParams {
            r: 1.0,
            alpha: 2.0,
            a: 1.0,
            b: 2.0,
        };
        // x = 0, T = 3: only the first bracket term: (2 / 5)^1 = 0.4.
        close(p.log_likelihood(&history(0, 0.0, 3.0)), 0.4f64.ln(), 1e-14);
        // x = 1, t_x = 1, T = 3: G(2)/G(1) * 2 = 2; G(3)G(3)/(G(2)G(4)) = 4/6;
        // bracket 1/5^2 + (1/2)/3^2 = 1/25 + 1/18 = 43/450. L = 2 * 2/3 * 43/450 = 172/1350.
        close(
            p.log_likelihood(&history(1, 1.0, 3.0)),
            (172.0f64 / 1350.0).ln(),
            1e-14,
        );
        // r = 0.5, alpha = 1, a = 2, b = 3; x = 2, t_x = 2.5, T = 4:
        // G(2.5)/G(0.5) = 1.5 * 0.5 = 0.75, alpha^r = 1; G(5)G(5)/(G(3)G(7)) = 576/1440 = 0.4;
        // bracket 5^-2.5 + (2/4) 3.5^-2.5.
        let q = BgNbdParams {
            r: 0.5,
            alpha: 1.0,
            a: 2.0,
            b: 3.0,
        };
        let want = 0.75 * 0.4 * (5f64.powf(-2.5) + 0.5 * 3.5f64.powf(-2.5));
        close(q.log_likelihood(&history(2, 2.5, 4.0)), want.ln(), 1e-13);
    }

    #[test]
    fn predictions_match_the_published_cdnow_example() {
        // Fader, Hardie & Lee's CDNOW estimates; customer 1 of the sample: x = 2,
        // t_x = 30.43, T = 38.86 weeks. Reference values from mpmath at 30 digits (the
        // 1.226 is the figure in Fader & Hardie's note on the conditional expectation).
        let p = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let c = history(2, 30.43, 38.86);
        close(
            p.conditional_expected_repeats(&c, 39.0).unwrap(),
            1.226_028_174_767_14,
            1e-10,
        );
        close(p.p_alive(&c), 0.726_578_570_080_673, 1e-12);
        close(
            p.conditional_expected_repeats(&history(0, 0.0, 38.86), 39.0)
                .unwrap(),
            0.195_098_052_011_263,
            1e-10,
        );
        close(
            p.conditional_expected_repeats(&history(7, 29.43, 38.86), 52.0)
                .unwrap(),
            4.198_855_584_925_04,
            1e-10,
        );
        close(
            p.expected_repeats(39.0).unwrap(),
            1.196_723_193_320_82,
            1e-10,
        );
        close(
            p.expected_repeats(78.0).unwrap(),
            1.860_519_057_942_77,
            1e-10,
        );
        assert_eq!(p.expected_repeats(0.0).unwrap(), 0.0);
        // P(alive) by hand: 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) with
        // (r, alpha, a, b) = (1, 2, 1, 2), x = 1, t_x = 1, T = 3: 1 / (1 + 1/2 (5/3)^2) = 18/43.
        let q = BgNbdParams {
            r: 1.0,
            alpha: 2.0,
            a: 1.5,
            b: 2.0,
        };
        let q1 = BgNbdParams { a: 1.0, ..q };
        close(q1.p_alive(&history(1, 1.0, 3.0)), 18.0 / 43.0, 1e-15);
        assert!(q1.expected_repeats(1.0).is_err());
        assert!(q.expected_repeats(-1.0).is_err());
    }

    #[test]
    fn conditional_expectations_average_to_the_unconditional_increment() {
        // Law of total expectation over a simulated population of common age T: the mean of
        // E[purchases in (T, T+t] | history] must equal E[X(T+t)] - E[X(T)]. Checks the
        // conditional formula, P(alive) and the 2F1 evaluation against the simple one.
        let p = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let (age, t) = (40.0, 60.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let population = simulate_bgnbd(&p, &vec![age; 40_000], &mut rng).unwrap();
        let mean = population
            .iter()
            .map(|c| p.conditional_expected_repeats(&c.history(), t).unwrap())
            .sum::<f64>()
            / population.len() as f64;
        let want = p.expected_repeats(age + t).unwrap() - p.expected_repeats(age).unwrap();
        // Monte-Carlo error of the mean is about 1% here; 3% leaves room without hiding a
        // wrong formula (a missing P(alive) factor is off by 30%).
        close(mean, want, 0.03);
    }

    #[test]
    fn rejects_impossible_histories() {
        assert!(matches!(
            fit(&[history(1, 5.0, 3.0)]),
            Err(BtydError::InvalidSummary { index: 0, .. })
        ));
        assert!(matches!(
            fit(&[history(0, 0.0, 3.0), history(0, 1.0, 3.0)]),
            Err(BtydError::InvalidSummary { index: 1, .. })
        ));
        assert!(matches!(
            fit(&[history(0, 0.0, 3.0)]),
            Err(BtydError::CannotFit { .. })
        ));
    }

    #[test]
    fn compressed_likelihood_equals_the_plain_sum() {
        let p = BgNbdParams {
            r: 0.3,
            alpha: 5.0,
            a: 0.7,
            b: 2.0,
        };
        let cs = [
            history(0, 0.0, 10.0),
            history(2, 4.0, 10.0),
            history(0, 0.0, 10.0),
            history(2, 4.0, 10.0),
            history(1, 3.0, 8.0),
            history(2, 5.0, 10.0),
        ];
        let plain: f64 = cs.iter().map(|c| p.log_likelihood(c)).sum();
        close(Compressed::new(&cs).log_likelihood(&p), plain, 1e-14);
        assert_eq!(Compressed::new(&cs).rows.len(), 4);
        // Distinct times: recencies 0, 3, 4, 5 and ages 8, 10.
        assert_eq!(Compressed::new(&cs).times, [0.0, 3.0, 4.0, 5.0, 8.0, 10.0]);
    }

    #[test]
    fn recovers_known_parameters_from_simulated_customers() {
        // 5,000 customers from the brief's parameters, ages spread over 26 to 78 periods.
        // Tolerance: each estimate within 3 standard errors (from the observed information at
        // the optimum) of the truth, and the standard errors small enough (under 35% of the
        // value; b is the least determined) that this is a real test.
        let truth = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let ages: Vec<f64> = (0..5_000)
            .map(|i| 26.0 + 52.0 * i as f64 / 5_000.0)
            .collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2005);
        let customers: Vec<CustomerHistory> = simulate_bgnbd(&truth, &ages, &mut rng)
            .unwrap()
            .iter()
            .map(|c| c.history())
            .collect();
        let model = fit(&customers).unwrap();
        println!("{model:#?}");
        assert!(model.fit.converged);
        let se = model.standard_errors.unwrap();
        for (name, got, want, se) in [
            ("r", model.params.r, truth.r, se.r),
            ("alpha", model.params.alpha, truth.alpha, se.alpha),
            ("a", model.params.a, truth.a, se.a),
            ("b", model.params.b, truth.b, se.b),
        ] {
            assert!(se < 0.35 * want, "{name}: standard error {se} too large");
            assert!(
                (got - want).abs() <= 3.0 * se,
                "{name}: estimate {got}, truth {want}, standard error {se}"
            );
        }
        // The truth cannot fit the sample better than the maximum does.
        let at_truth: f64 = customers.iter().map(|c| truth.log_likelihood(c)).sum();
        assert!(model.log_likelihood >= at_truth);
    }
}
