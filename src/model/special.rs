//! Special functions the BTYD likelihoods and predictions need: ln Gamma (Lanczos) and Gauss's
//! hypergeometric function 2F1 for real arguments with `z` in `[0, 1)`.
//!
//! Why 2F1 takes some care: BG/NBD's conditional expectation evaluates
//! `2F1(r+x, b+x; a+b+x-1; z)` with `z = t / (alpha + T + t)`, which approaches 1 for long
//! horizons or young customers, and whose parameters grow with the purchase count `x`. The plain
//! series then needs thousands of terms; past `z = 0.9` we use the linear transformation to
//! `1 - z` (Abramowitz & Stegun 15.3.6), whose two series converge in a few dozen terms.

use std::f64::consts::PI;

use super::ModelError;

/// Lanczos approximation, g = 7, nine coefficients: about 15 significant digits of Gamma for
/// positive arguments, which is what the likelihoods need.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln |Gamma(x)|`. Below 0.5 by the reflection formula, so negative non-integers work too;
/// at the poles (0, -1, -2, ...) the result is `+inf`.
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        let s = (PI * x).sin();
        if s == 0.0 {
            return f64::INFINITY;
        }
        (PI / s.abs()).ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let t = x + LANCZOS_G + 0.5;
        let mut sum = LANCZOS[0];
        for (i, c) in LANCZOS.iter().enumerate().skip(1) {
            sum += c / (x + i as f64);
        }
        0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
    }
}

/// The sign of `Gamma(x)`: positive for `x > 0`, alternating between the negative poles.
/// Zero at the poles, where `1 / Gamma` vanishes.
fn gamma_sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x == x.floor() {
        0.0
    } else if (x.floor() as i64) % 2 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// `Gamma(n1) Gamma(n2) / (Gamma(d1) Gamma(d2))`, in logs so large arguments do not overflow.
/// A pole in the denominator makes the ratio zero (the connection formula relies on this when
/// `c - a` or `c - b` is a non-positive integer).
fn gamma_ratio(n1: f64, n2: f64, d1: f64, d2: f64) -> f64 {
    let sign_d = gamma_sign(d1) * gamma_sign(d2);
    if sign_d == 0.0 {
        return 0.0;
    }
    let sign = gamma_sign(n1) * gamma_sign(n2) * sign_d;
    sign * (ln_gamma(n1) + ln_gamma(n2) - ln_gamma(d1) - ln_gamma(d2)).exp()
}

/// Past this `z` the series is slow; switch to the transformation to `1 - z`.
const NEAR_ONE: f64 = 0.9;
/// The `1 - z` transformation divides by `Gamma` of `c - a - b` and its negative; too close to
/// an integer its two terms cancel catastrophically, so there we stay with the series.
const INTEGER_GAP: f64 = 1e-2;
/// Convergence guard: enough for the series at `z = 1 - 1e-5`, where terms shrink like `z^n`.
const MAX_TERMS: usize = 5_000_000;

/// Gauss's hypergeometric function `2F1(a, b; c; z)` for real `a`, `b`, `c` and `-1 < z < 1`.
///
/// Errors when `c` is a non-positive integer (the function is undefined), `z` is outside the
/// range, or the series does not settle within its term budget (which only happens for `z`
/// within about `1e-5` of 1 when `c - a - b` is near an integer).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, ModelError> {
    let fail = |reason| ModelError::Hypergeometric { a, b, c, z, reason };
    if ![a, b, c, z].iter().all(|v| v.is_finite()) {
        return Err(fail("arguments must be finite"));
    }
    if c <= 0.0 && c == c.floor() {
        return Err(fail("c is a non-positive integer"));
    }
    if !(z > -1.0 && z < 1.0) {
        return Err(fail("z must lie in (-1, 1)"));
    }
    let s = c - a - b;
    let value = if z > NEAR_ONE && (s - s.round()).abs() > INTEGER_GAP {
        one_minus_z(a, b, c, z)
    } else if s < 0.0 && z > 0.0 {
        // Euler's transformation: same z, but the terms decay like n^(s-1) instead of growing
        // like n^(-s-1), so large purchase counts do not need thousands of terms.
        series(c - a, c - b, c, z).map(|v| (1.0 - z).powf(s) * v)
    } else {
        series(a, b, c, z)
    };
    let value = value.map_err(fail)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(fail("the value overflows f64"))
    }
}

/// Abramowitz & Stegun 15.3.6, valid when `c - a - b` is not an integer:
/// `2F1(a,b;c;z) = G(c)G(s)/(G(c-a)G(c-b)) 2F1(a,b;1-s;1-z)
///               + (1-z)^s G(c)G(-s)/(G(a)G(b)) 2F1(c-a,c-b;1+s;1-z)`, `s = c - a - b`.
fn one_minus_z(a: f64, b: f64, c: f64, z: f64) -> Result<f64, &'static str> {
    let s = c - a - b;
    let w = 1.0 - z;
    let first = gamma_ratio(c, s, c - a, c - b);
    let second = gamma_ratio(c, -s, a, b);
    let mut value = 0.0;
    if first != 0.0 {
        value += first * series(a, b, 1.0 - s, w)?;
    }
    if second != 0.0 {
        value += w.powf(s) * second * series(c - a, c - b, 1.0 + s, w)?;
    }
    Ok(value)
}

/// The defining series `sum_n (a)_n (b)_n / (c)_n z^n / n!`, summed until a term is below
/// 1e-16 of the sum while the terms are shrinking (ratio below one), or it terminates because
/// `a` or `b` is a non-positive integer.
fn series(a: f64, b: f64, c: f64, z: f64) -> Result<f64, &'static str> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for n in 0..MAX_TERMS {
        let n = n as f64;
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        if term == 0.0 {
            return Ok(sum);
        }
        if !sum.is_finite() {
            return Err("the series overflows f64");
        }
        if ratio.abs() < 1.0 && term.abs() <= 1e-16 * sum.abs() {
            return Ok(sum);
        }
    }
    Err("the series did not converge within its term budget")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs().max(1e-300);
        assert!(err <= rel, "got {got}, want {want}, relative error {err:e}");
    }

    #[test]
    fn ln_gamma_matches_reference_values() {
        // Reference values from mpmath.loggamma at 30 digits.
        for (x, want) in [
            (0.5, 0.5723649429247001),
            (0.1, 2.252712651734206),
            (1e-3, 6.907178885383853),
            (3.7, 1.428072326665388),
            (10.0, 12.801827480081469),
            (100.0, 359.134_205_369_575_4),
            (1000.5, 5_908.674_175_848_677),
        ] {
            close(ln_gamma(x), want, 1e-13);
        }
        assert!(ln_gamma(1.0).abs() < 1e-14 && ln_gamma(2.0).abs() < 1e-14);
        // Reflection: Gamma(-0.5) = -2 sqrt(pi).
        close(ln_gamma(-0.5), (2.0 * PI.sqrt()).ln(), 1e-13);
        assert_eq!(gamma_sign(-0.5), -1.0);
        assert_eq!(gamma_sign(-1.5), 1.0);
        assert_eq!(gamma_sign(-2.0), 0.0);
    }

    #[test]
    fn hyp2f1_matches_closed_forms_and_reference_values() {
        // Closed forms: 2F1(1,1;2;z) = -ln(1-z)/z; 2F1(a,b;b;z) = (1-z)^-a;
        // 2F1(1/2,1/2;3/2;z) = asin(sqrt z)/sqrt z; a terminating polynomial.
        close(
            hyp2f1(1.0, 1.0, 2.0, 0.5).unwrap(),
            -(0.5f64).ln() / 0.5,
            1e-14,
        );
        close(
            hyp2f1(1.0, 1.0, 2.0, 0.99).unwrap(),
            -(0.01f64).ln() / 0.99,
            1e-12,
        );
        close(
            hyp2f1(0.5, 2.3, 2.3, 0.95).unwrap(),
            0.05f64.powf(-0.5),
            1e-12,
        );
        close(
            hyp2f1(0.5, 0.5, 1.5, 0.9).unwrap(),
            0.9f64.sqrt().asin() / 0.9f64.sqrt(),
            1e-12,
        );
        // 1 + (1.5)(-2)/(0.5) 0.7 + (1.5)(2.5)(-2)(-1)/((0.5)(1.5) 2!) 0.49 = -0.75
        close(hyp2f1(1.5, -2.0, 0.5, 0.7).unwrap(), -0.75, 1e-14);
        // Reference values from mpmath.hyp2f1 at 30 digits, covering both transformations,
        // c - a - b near an integer, and BG/NBD-shaped arguments at CDNOW's estimates
        // (r, alpha, a, b) = (0.243, 4.414, 0.793, 2.426).
        for ((a, b, c, z), want) in [
            ((0.75, 1.25, 3.0, 0.3), 1.110_696_419_426_672_6),
            ((0.3, 0.7, 2.5, 0.98), 1.140_299_062_669_252_3),
            ((2.1, 3.35, 1.4, 0.97), 2781783.269747316),
            ((3.5, 1.2, 0.7, 0.95), 398742.991550869),
            (
                (0.243, 2.426, 2.219, 0.474_025_816_175_219_4),
                1.190_251_232_548_978_5,
            ),
            (
                (2.243, 4.426, 4.219, 0.474_025_816_175_219_4),
                4.575315897643689,
            ),
            (
                (5.243, 7.426, 7.219, 0.985_790_811_246_690_2),
                10_924_301_250.599_674,
            ),
            (
                (30.243, 32.426, 32.219, 0.921_805_115_649_669_8),
                4.982_264_841_918_664_4e33,
            ),
        ] {
            close(hyp2f1(a, b, c, z).unwrap(), want, 1e-9);
        }
    }

    #[test]
    fn the_series_and_the_one_minus_z_transformation_agree() {
        // Both methods at the same z, on both sides of the switch, for BG/NBD-shaped
        // arguments (c - a - b from +1.5 to -5.45).
        for (a, b, c) in [
            (0.3, 0.7, 2.5),
            (2.243, 4.426, 4.219),
            (5.243, 7.426, 7.219),
        ] {
            let s = c - a - b;
            for z in [0.6f64, 0.85, 0.95] {
                let by_series = if s < 0.0 {
                    (1.0 - z).powf(s) * series(c - a, c - b, c, z).unwrap()
                } else {
                    series(a, b, c, z).unwrap()
                };
                close(one_minus_z(a, b, c, z).unwrap(), by_series, 1e-11);
            }
        }
    }

    #[test]
    fn hyp2f1_rejects_what_it_cannot_evaluate() {
        assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_err());
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_err());
        assert!(hyp2f1(1.0, f64::NAN, 2.0, 0.5).is_err());
    }
}
