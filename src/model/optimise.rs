//! Derivative-free minimisation by Nelder–Mead, for maximum-likelihood fits on a handful of
//! parameters.
//!
//! Why Nelder–Mead: the BTYD likelihoods are smooth but their gradients are long expressions in
//! digamma functions; with three or four parameters, optimised over their logarithms (so they
//! stay positive without constraints), a simplex search converges reliably in a few hundred
//! evaluations. It uses the dimension-adaptive coefficients of Gao & Han (2012), which behave
//! better than the textbook ones beyond two dimensions, and restarts from the best point with a
//! fresh simplex until a restart no longer improves the value: a simplex can collapse onto a
//! ridge before reaching the minimum, and a restart is the standard remedy. Everything is
//! deterministic: the same start gives the same result.

use super::ModelError;

/// Settings of a minimisation. The defaults suit negative mean log-likelihoods over
/// log-parameters (values of order 1, parameters of order 1).
#[derive(Debug, Clone, PartialEq)]
pub struct NelderMead {
    /// Edge length of the initial simplex (and of each restart's simplex).
    pub initial_step: f64,
    /// Converged when the simplex's values differ by at most this much...
    pub value_tolerance: f64,
    /// ...and its vertices lie within this distance of the best one, coordinate-wise.
    pub point_tolerance: f64,
    /// Budget of function evaluations over all restarts.
    pub max_evaluations: usize,
    /// Fresh simplices built around the best point after the first convergence.
    pub max_restarts: usize,
}

impl Default for NelderMead {
    fn default() -> Self {
        Self {
            initial_step: 0.5,
            value_tolerance: 1e-12,
            point_tolerance: 1e-8,
            max_evaluations: 20_000,
            max_restarts: 10,
        }
    }
}

/// Where a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The best point found.
    pub point: Vec<f64>,
    /// The function's value there.
    pub value: f64,
    /// Function evaluations spent.
    pub evaluations: usize,
    /// Restarts performed after the first convergence.
    pub restarts: usize,
    /// Whether the last simplex met both tolerances (rather than running out of budget).
    pub converged: bool,
}

impl NelderMead {
    /// Minimises `f` from `start`. A NaN value counts as `+inf`, so the search simply moves
    /// away from points where the function cannot be evaluated.
    pub fn minimise<F>(&self, mut f: F, start: &[f64]) -> Result<Minimum, ModelError>
    where
        F: FnMut(&[f64]) -> f64,
    {
        if start.is_empty() {
            return Err(ModelError::Optimiser {
                reason: "the starting point has no coordinates",
            });
        }
        if let Some((index, &value)) = start.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NotFinite {
                what: "optimiser start",
                index,
                value,
            });
        }
        let mut evaluations = 0;
        let mut eval = |x: &[f64]| {
            evaluations += 1;
            let v = f(x);
            if v.is_nan() { f64::INFINITY } else { v }
        };
        let mut best = self.run(&mut eval, start.to_vec(), usize::MAX)?;
        let mut restarts = 0;
        while best.converged && restarts < self.max_restarts {
            let budget = self.max_evaluations.saturating_sub(best.evaluations);
            if budget == 0 {
                break;
            }
            let again = self.run(&mut eval, best.point.clone(), budget)?;
            restarts += 1;
            let improved = best.value - again.value > self.value_tolerance;
            let spent = best.evaluations + again.evaluations;
            if again.value <= best.value {
                best = Simplex {
                    evaluations: spent,
                    ..again
                };
            } else {
                best.evaluations = spent;
            }
            if !improved {
                break;
            }
        }
        Ok(Minimum {
            point: best.point,
            value: best.value,
            evaluations,
            restarts,
            converged: best.converged,
        })
    }

    /// One simplex run from `start`, within `budget` evaluations (capped by the total budget).
    fn run<F>(&self, f: &mut F, start: Vec<f64>, budget: usize) -> Result<Simplex, ModelError>
    where
        F: FnMut(&[f64]) -> f64,
    {
        let budget = budget.min(self.max_evaluations);
        let n = start.len();
        let dim = n as f64;
        // Gao & Han's adaptive coefficients: reflection, expansion, contraction, shrink.
        let (reflect, expand, contract, shrink) = (
            1.0,
            1.0 + 2.0 / dim,
            0.75 - 1.0 / (2.0 * dim),
            1.0 - 1.0 / dim,
        );

        let mut used = 0;
        let mut vertices: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
        let v0 = f(&start);
        used += 1;
        vertices.push((start.clone(), v0));
        for i in 0..n {
            let mut x = start.clone();
            x[i] += self.initial_step;
            let v = f(&x);
            used += 1;
            vertices.push((x, v));
        }

        loop {
            // Stable sort: equal values keep their order, so runs are reproducible.
            vertices.sort_by(|l, r| l.1.total_cmp(&r.1));
            let (best, worst) = (vertices[0].1, vertices[n].1);
            let spread = vertices[1..]
                .iter()
                .flat_map(|(x, _)| x.iter().zip(&vertices[0].0).map(|(a, b)| (a - b).abs()))
                .fold(0.0, f64::max);
            let converged = worst - best <= self.value_tolerance && spread <= self.point_tolerance;
            if converged || used >= budget {
                let (point, value) = vertices.swap_remove(0);
                return Ok(Simplex {
                    point,
                    value,
                    evaluations: used,
                    converged,
                });
            }

            let centroid: Vec<f64> = (0..n)
                .map(|j| vertices[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / dim)
                .collect();
            let towards = |coef: f64, from: &[f64]| -> Vec<f64> {
                centroid
                    .iter()
                    .zip(from)
                    .map(|(c, x)| c + coef * (c - x))
                    .collect()
            };
            let worst_point = vertices[n].0.clone();
            let reflected = towards(reflect, &worst_point);
            let fr = f(&reflected);
            used += 1;

            if fr < best {
                let expanded = towards(reflect * expand, &worst_point);
                let fe = f(&expanded);
                used += 1;
                vertices[n] = if fe < fr {
                    (expanded, fe)
                } else {
                    (reflected, fr)
                };
                continue;
            }
            if fr < vertices[n - 1].1 {
                vertices[n] = (reflected, fr);
                continue;
            }
            let (candidate, threshold) = if fr < worst {
                (towards(reflect * contract, &worst_point), fr)
            } else {
                (towards(-contract, &worst_point), worst)
            };
            let fc = f(&candidate);
            used += 1;
            if fc < threshold || (fr < worst && fc <= threshold) {
                vertices[n] = (candidate, fc);
                continue;
            }
            // Shrink every vertex towards the best one.
            let anchor = vertices[0].0.clone();
            for (x, v) in vertices.iter_mut().skip(1) {
                for (xi, ai) in x.iter_mut().zip(&anchor) {
                    *xi = ai + shrink * (*xi - ai);
                }
                *v = f(x);
                used += 1;
            }
        }
    }
}

/// The state a simplex run ends in.
struct Simplex {
    point: Vec<f64>,
    value: f64,
    evaluations: usize,
    converged: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use super::*;

    fn rosenbrock(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
            .sum()
    }

    #[test]
    fn finds_the_rosenbrock_minimum_in_two_and_four_dimensions() {
        let nm = NelderMead::default();
        let m = nm.minimise(rosenbrock, &[-1.2, 1.0]).unwrap();
        assert!(m.converged, "{m:?}");
        assert!(m.value < 1e-14, "{m:?}");
        for x in &m.point {
            assert!((x - 1.0).abs() < 1e-6, "{m:?}");
        }
        // The banana valley in four dimensions is the harder case the restarts are for.
        let m = nm.minimise(rosenbrock, &[-1.2, 1.0, -1.2, 1.0]).unwrap();
        assert!(m.converged, "{m:?}");
        assert!(m.value < 1e-12, "{m:?}");
        for x in &m.point {
            assert!((x - 1.0).abs() < 1e-5, "{m:?}");
        }
    }

    #[test]
    fn is_deterministic_and_reports_its_budget() {
        let nm = NelderMead::default();
        let a = nm.minimise(rosenbrock, &[0.5, -0.5, 2.0]).unwrap();
        let b = nm.minimise(rosenbrock, &[0.5, -0.5, 2.0]).unwrap();
        assert_eq!(a, b);
        let tight = NelderMead {
            max_evaluations: 30,
            ..NelderMead::default()
        };
        let m = tight.minimise(rosenbrock, &[-1.2, 1.0]).unwrap();
        assert!(!m.converged);
        // The budget is checked once per iteration, which costs at most n + 2 evaluations.
        assert!(m.evaluations <= 30 + 4, "{m:?}");
    }

    #[test]
    fn moves_away_from_undefined_values() {
        // x - ln(x) has its minimum at x = 1 and is NaN for x < 0, where the simplex may
        // reflect to.
        let f = |x: &[f64]| x[0] - x[0].ln();
        let m = NelderMead::default().minimise(f, &[0.2]).unwrap();
        assert!((m.point[0] - 1.0).abs() < 1e-6, "{m:?}");
        assert!(NelderMead::default().minimise(f, &[]).is_err());
        assert!(NelderMead::default().minimise(f, &[f64::NAN]).is_err());
    }
}
