//! Standard errors of maximum-likelihood estimates from the observed information: the Hessian
//! of the negative log-likelihood at the optimum, by central differences, inverted.
//!
//! Why: a fitted parameter without its uncertainty invites over-reading (BG/NBD's `a` and `b`
//! are often loosely pinned down), and the parameter-recovery tests judge their tolerance by it.
//! The fits optimise over log-parameters, so the Hessian is taken there and mapped back with the
//! delta method: `se(theta) = theta * se(ln theta)`.

/// Step of the central differences in log-parameter space: small enough for the quadratic
/// approximation, large enough that rounding in the log-likelihood (summed over thousands of
/// customers) does not swamp the second differences.
const STEP: f64 = 1e-4;

/// Standard errors of `exp(point)` given `negative_ll`, the negative log-likelihood (a sum over
/// customers, not a mean) as a function of log-parameters, minimised at `point`.
///
/// `None` when the Hessian is not positive definite there (a flat or saddle direction: the
/// estimate is not identified by the data) or the function cannot be evaluated nearby.
pub fn standard_errors<F>(mut negative_ll: F, point: &[f64]) -> Option<Vec<f64>>
where
    F: FnMut(&[f64]) -> f64,
{
    let n = point.len();
    let mut at = |di: (usize, f64), dj: (usize, f64)| {
        let mut x = point.to_vec();
        x[di.0] += di.1;
        x[dj.0] += dj.1;
        negative_ll(&x)
    };
    let h = STEP;
    let mut hessian = vec![vec![0.0; n]; n];
    let upper: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
    for (i, j) in upper {
        let value = (at((i, h), (j, h)) - at((i, h), (j, -h)) - at((i, -h), (j, h))
            + at((i, -h), (j, -h)))
            / (4.0 * h * h);
        hessian[i][j] = value;
        hessian[j][i] = value;
    }
    if hessian.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let covariance = invert(hessian)?;
    (0..n)
        .map(|i| {
            let variance = covariance[i][i];
            (variance > 0.0).then(|| point[i].exp() * variance.sqrt())
        })
        .collect()
}

/// Gauss–Jordan inversion with partial pivoting; `None` for a singular matrix.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let scale = m.iter().flatten().fold(0.0_f64, |a, v| a.max(v.abs()));
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() <= 1e-14 * scale {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let p = m[col][col];
        for j in 0..n {
            m[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let factor = m[row][col];
                if factor != 0.0 {
                    for j in 0..n {
                        m[row][j] -= factor * m[col][j];
                        inv[row][j] -= factor * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use super::*;

    #[test]
    fn recovers_the_standard_error_of_an_exponential_rate() {
        // n draws with mean 1/lambda: the MLE is lambda = n / sum, with standard error
        // lambda / sqrt(n). Negative log-likelihood in u = ln lambda: -(n u - e^u sum).
        let (n, sum) = (400.0, 250.0);
        let nll = |x: &[f64]| -(n * x[0] - x[0].exp() * sum);
        let lambda: f64 = n / sum;
        let se = standard_errors(nll, &[lambda.ln()]).unwrap();
        assert!((se[0] - lambda / n.sqrt()).abs() < 1e-6, "{se:?}");
    }

    #[test]
    fn inverts_and_refuses_singular_matrices() {
        let inv = invert(vec![vec![4.0, 2.0], vec![2.0, 3.0]]).unwrap();
        // [[4,2],[2,3]]^-1 = 1/8 [[3,-2],[-2,4]]
        let want = [[0.375, -0.25], [-0.25, 0.5]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-15);
            }
        }
        assert!(invert(vec![vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
        // A flat direction has no standard error.
        assert!(standard_errors(|x: &[f64]| x[0] * x[0], &[0.0, 0.0]).is_none());
    }
}
