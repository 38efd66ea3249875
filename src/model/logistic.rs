//! The hurdle's payer regression: L2-penalised logistic regression, minimised by smartcore's
//! L-BFGS over an objective written here.
//!
//! It is the objective smartcore's `LogisticRegression` minimises (the log-loss summed over
//! users plus `alpha / 2 · |w|²`, the intercept unpenalised), with two differences that made
//! it the larger half of the demo's calculate stage:
//! - smartcore reads the design one cell at a time through its matrix trait (with a bounds
//!   check per cell); here the design is one row-major slice read in order;
//! - smartcore runs its L-BFGS until the gradient is below 1e-8 in absolute terms or the
//!   loss stops changing in the last bit, which on a sum over tens of thousands of users is
//!   hundreds of steps past any difference a prediction can show. Here it stops when the
//!   gradient per user is below [`GRADIENT_PER_USER`].

use smartcore::optimization::FunctionOrder;
use smartcore::optimization::first_order::FirstOrderOptimizer;
use smartcore::optimization::first_order::lbfgs::LBFGS;
use smartcore::optimization::line_search::Backtracking;

/// The fit stops when every component of the gradient, divided by the users, is below this:
/// the weights are then within about this over the curvature per user (a few hundredths for
/// standardised features and a payer rate of a few percent) of the optimum.
const GRADIENT_PER_USER: f64 = 1e-7;
/// A cap on L-BFGS steps; the demo's fits (28 features) converge in 84 to 123.
const MAX_STEPS: usize = 1000;

/// A fitted regression: `P(y = 1) = sigmoid(intercept + coefficients · x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// L-BFGS steps taken.
    pub steps: usize,
}

/// `ln(1 + e^z)` without overflow.
fn log1p_exp(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// `1 / (1 + e^-z)`: the chance of paying at margin `z`, in training and in
/// [`super::hurdle::PayerModel::probability`] alike. Far out it rounds to 0 or 1, never NaN.
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The design (`rows` of `width` values each, row after row), the labels and the penalty.
struct Problem<'a> {
    x: &'a [f64],
    y: &'a [bool],
    width: usize,
    alpha: f64,
}

impl Problem<'_> {
    /// Each user's `intercept + coefficients · x`, for weights `w` (coefficients, then the
    /// intercept).
    fn margins(&self, w: &[f64]) -> impl Iterator<Item = f64> + '_ {
        let (coefficients, intercept) = w.split_at(self.width);
        let intercept = intercept.first().copied().unwrap_or(0.0);
        let coefficients = coefficients.to_vec();
        self.x.chunks_exact(self.width.max(1)).map(move |row| {
            intercept
                + row
                    .iter()
                    .zip(&coefficients)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
        })
    }

    fn penalty(&self, w: &[f64]) -> f64 {
        0.5 * self.alpha * w[..self.width].iter().map(|v| v * v).sum::<f64>()
    }

    fn loss(&self, w: &[f64]) -> f64 {
        self.margins(w)
            .zip(self.y)
            .map(|(z, &y)| log1p_exp(z) - if y { z } else { 0.0 })
            .sum::<f64>()
            + self.penalty(w)
    }

    fn gradient(&self, g: &mut [f64], w: &[f64]) {
        g.fill(0.0);
        let width = self.width;
        for ((z, &y), row) in self
            .margins(w)
            .zip(self.y)
            .zip(self.x.chunks_exact(width.max(1)))
        {
            let r = sigmoid(z) - if y { 1.0 } else { 0.0 };
            for (gj, xj) in g[..width].iter_mut().zip(row) {
                *gj += r * xj;
            }
            g[width] += r;
        }
        for (gj, wj) in g[..width].iter_mut().zip(&w[..width]) {
            *gj += self.alpha * wj;
        }
    }
}

/// Fits the regression on `x` (`y.len()` rows of `width` values, row-major) and labels `y`,
/// with L2 penalty `alpha` on the coefficients. Both classes must be present (the caller
/// handles a single class: there is nothing to fit).
pub fn fit_logistic(x: &[f64], y: &[bool], width: usize, alpha: f64) -> Logistic {
    let problem = Problem { x, y, width, alpha };
    let f = |w: &Vec<f64>| problem.loss(w);
    let df = |g: &mut Vec<f64>, w: &Vec<f64>| problem.gradient(g, w);
    let search: Backtracking<f64> = Backtracking {
        order: FunctionOrder::THIRD,
        ..Default::default()
    };
    let optimiser = LBFGS {
        max_iter: MAX_STEPS,
        g_atol: GRADIENT_PER_USER * y.len().max(1) as f64,
        ..Default::default()
    };
    let result = optimiser.optimize(&f, &df, &vec![0.0; width + 1], &search);
    let mut weights = result.x;
    let intercept = weights.pop().unwrap_or(0.0);
    Logistic {
        intercept,
        coefficients: weights,
        steps: result.iterations,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use smartcore::linalg::basic::arrays::Array;
    use smartcore::linalg::basic::matrix::DenseMatrix;
    use smartcore::linear::logistic_regression::{
        LogisticRegression, LogisticRegressionParameters,
    };

    /// Standardised features and a payer rate of a few percent, as the hurdle sees them.
    fn users(n: usize, width: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let truth: Vec<f64> = (0..width).map(|j| 0.8 / (j as f64 + 1.0)).collect();
        let mut x = Vec::with_capacity(n * width);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..width).map(|_| rng.random_range(-1.7..1.7)).collect();
            let z = -3.2 + row.iter().zip(&truth).map(|(a, b)| a * b).sum::<f64>();
            y.push(rng.random_bool(sigmoid(z)));
            x.extend(row);
        }
        (x, y)
    }

    #[test]
    fn it_finds_the_optimum_smartcore_finds_in_far_fewer_steps() {
        let (n, width) = (20_000, 8);
        let (x, y) = users(n, width, 11);
        let ours = fit_logistic(&x, &y, width, 1.0);

        let m = DenseMatrix::new(n, width, x.clone(), false).unwrap();
        let labels: Vec<u32> = y.iter().map(|&v| u32::from(v)).collect();
        let theirs = LogisticRegression::fit(
            &m,
            &labels,
            LogisticRegressionParameters::default().with_alpha(1.0),
        )
        .unwrap();
        let their_intercept = *theirs.intercept().get((0, 0));
        assert!(
            (ours.intercept - their_intercept).abs() < 1e-4,
            "{} vs {their_intercept}",
            ours.intercept
        );
        for (j, ours_j) in ours.coefficients.iter().enumerate() {
            let theirs_j = *theirs.coefficients().get((0, j));
            assert!(
                (ours_j - theirs_j).abs() < 1e-4,
                "w{j}: {ours_j} vs {theirs_j}"
            );
        }
        // The chance of paying it gives any user differs by far less than a basis point.
        let problem = Problem {
            x: &x,
            y: &y,
            width,
            alpha: 1.0,
        };
        let mut theirs_w: Vec<f64> = (0..width)
            .map(|j| *theirs.coefficients().get((0, j)))
            .collect();
        theirs_w.push(their_intercept);
        let mut ours_w = ours.coefficients.clone();
        ours_w.push(ours.intercept);
        let worst = problem
            .margins(&ours_w)
            .zip(problem.margins(&theirs_w))
            .map(|(a, b)| (sigmoid(a) - sigmoid(b)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "probabilities differ by up to {worst}");
        assert!(ours.steps < 100, "{} steps", ours.steps);
    }

    #[test]
    fn the_gradient_is_the_loss_s_slope() {
        let (x, y) = users(500, 3, 5);
        let problem = Problem {
            x: &x,
            y: &y,
            width: 3,
            alpha: 0.7,
        };
        let w = vec![0.3, -0.2, 0.1, -1.5];
        let mut g = vec![0.0; 4];
        problem.gradient(&mut g, &w);
        for j in 0..4 {
            let h = 1e-6;
            let mut up = w.clone();
            up[j] += h;
            let mut down = w.clone();
            down[j] -= h;
            let slope = (problem.loss(&up) - problem.loss(&down)) / (2.0 * h);
            assert!((slope - g[j]).abs() < 1e-4 * slope.abs().max(1.0), "{j}");
        }
    }

    #[test]
    fn extreme_margins_stay_finite() {
        assert_eq!(log1p_exp(800.0), 800.0);
        assert!(log1p_exp(-800.0) >= 0.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }
}
