//! Evaluation metrics for backtests: how far predicted values (LTV, revenue by a horizon) are
//! from what happened, on slices of `f64` paired item by item (`predicted[i]` with `actual[i]`).
//!
//! Definitions, chosen to be unambiguous where the literature varies:
//! - **MAPE**: the mean over items of `|p - a| / |a|`, skipping items whose actual value is
//!   exactly zero (their relative error is undefined). Used at campaign level, where a zero
//!   actual is rare; the skipped items still count in `bias`.
//! - **Bias**: `sum(predicted) / sum(actual)`; 1 is unbiased, above 1 over-predicts.
//! - **Normalized Gini**: order items by prediction, highest first; the Gini of the cumulative
//!   actual share along that order, divided by the Gini of the perfect order (by actual). 1 is a
//!   perfect ranking, 0 a random one.
//! - **Decile MAPE**: order items by prediction, highest first, cut them into 10 groups of equal
//!   size (the first `n % 10` groups take one item more), and take the MAPE of the groups' sums.
//! - **Spearman**: Pearson's correlation of the ranks, tied values sharing their average rank.
//!
//! Ties in the prediction: where several items have the same prediction, any order among them
//! is as good as another, yet the Gini and the decile sums depend on it. Each tied block counts
//! with its mean actual value for every member, which equals the average over all orders of
//! the block (both metrics are linear in the running sums). The result is deterministic and
//! does not depend on the input order.

use super::ModelError;

/// Mean absolute percentage error, skipping items whose actual value is zero.
pub fn mape(predicted: &[f64], actual: &[f64]) -> Result<f64, ModelError> {
    check("MAPE", predicted, actual, 1)?;
    mape_unchecked(
        "MAPE",
        predicted.iter().copied().zip(actual.iter().copied()),
    )
}

/// `sum(predicted) / sum(actual)`.
pub fn bias(predicted: &[f64], actual: &[f64]) -> Result<f64, ModelError> {
    check("bias", predicted, actual, 1)?;
    let total: f64 = actual.iter().sum();
    if total == 0.0 {
        return Err(ModelError::Undefined {
            metric: "bias",
            reason: "the actual values sum to zero",
        });
    }
    Ok(predicted.iter().sum::<f64>() / total)
}

/// Gini of the ranking by prediction over the Gini of the perfect ranking by actual value.
pub fn normalized_gini(predicted: &[f64], actual: &[f64]) -> Result<f64, ModelError> {
    const METRIC: &str = "normalized Gini";
    check(METRIC, predicted, actual, 2)?;
    let total: f64 = actual.iter().sum();
    if total == 0.0 {
        return Err(ModelError::Undefined {
            metric: METRIC,
            reason: "the actual values sum to zero",
        });
    }
    let by_prediction = actual_in_prediction_order(predicted, actual);
    let mut perfect = actual.to_vec();
    perfect.sort_by(|a, b| b.total_cmp(a));
    let best = gini(&perfect, total);
    if best == 0.0 {
        return Err(ModelError::Undefined {
            metric: METRIC,
            reason: "all actual values are equal, so no ordering beats another",
        });
    }
    Ok(gini(&by_prediction, total) / best)
}

/// MAPE of the sums of ten equal groups of items ordered by prediction.
pub fn decile_mape(predicted: &[f64], actual: &[f64]) -> Result<f64, ModelError> {
    const METRIC: &str = "decile MAPE";
    check(METRIC, predicted, actual, 10)?;
    let order = prediction_order(predicted);
    let actual_sorted = tie_means(predicted, &order, actual);
    let n = order.len();
    let (size, extra) = (n / 10, n % 10);
    let mut groups = Vec::with_capacity(10);
    let mut start = 0;
    for g in 0..10 {
        let end = start + size + usize::from(g < extra);
        let p: f64 = order[start..end].iter().map(|&i| predicted[i]).sum();
        let a: f64 = actual_sorted[start..end].iter().sum();
        groups.push((p, a));
        start = end;
    }
    mape_unchecked(METRIC, groups.into_iter())
}

/// Spearman's rank correlation, ties sharing their average rank.
pub fn spearman(predicted: &[f64], actual: &[f64]) -> Result<f64, ModelError> {
    const METRIC: &str = "Spearman correlation";
    check(METRIC, predicted, actual, 2)?;
    let (rp, ra) = (average_ranks(predicted), average_ranks(actual));
    let n = rp.len() as f64;
    let (mp, ma) = (rp.iter().sum::<f64>() / n, ra.iter().sum::<f64>() / n);
    let (mut cov, mut vp, mut va) = (0.0, 0.0, 0.0);
    for (p, a) in rp.iter().zip(&ra) {
        cov += (p - mp) * (a - ma);
        vp += (p - mp) * (p - mp);
        va += (a - ma) * (a - ma);
    }
    if vp == 0.0 || va == 0.0 {
        return Err(ModelError::Undefined {
            metric: METRIC,
            reason: "one side is constant, so its ranks do not vary",
        });
    }
    Ok(cov / (vp * va).sqrt())
}

/// Equal lengths, at least `min` items, every value finite.
fn check(
    metric: &'static str,
    predicted: &[f64],
    actual: &[f64],
    min: usize,
) -> Result<(), ModelError> {
    if predicted.len() != actual.len() {
        return Err(ModelError::LengthMismatch {
            metric,
            predicted: predicted.len(),
            actual: actual.len(),
        });
    }
    if predicted.len() < min {
        return Err(ModelError::TooFew {
            metric,
            needed: min,
            found: predicted.len(),
        });
    }
    for (what, values) in [("predicted value", predicted), ("actual value", actual)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::NotFinite { what, index, value });
        }
    }
    Ok(())
}

fn mape_unchecked(
    metric: &'static str,
    pairs: impl Iterator<Item = (f64, f64)>,
) -> Result<f64, ModelError> {
    let (sum, count) = pairs
        .filter(|&(_, a)| a != 0.0)
        .fold((0.0, 0usize), |(s, c), (p, a)| {
            (s + (p - a).abs() / a.abs(), c + 1)
        });
    if count == 0 {
        return Err(ModelError::Undefined {
            metric,
            reason: "every actual value is zero",
        });
    }
    Ok(sum / count as f64)
}

/// Gini of values in a given order: the mean cumulative share minus its value for an order
/// with no signal, `(n + 1) / 2n`.
fn gini(ordered: &[f64], total: f64) -> f64 {
    let n = ordered.len() as f64;
    let mut running = 0.0;
    let mut area = 0.0;
    for v in ordered {
        running += v;
        area += running / total;
    }
    area / n - (n + 1.0) / (2.0 * n)
}

/// Item indices by prediction, highest first; equal predictions keep their input order (which
/// `tie_means` then makes irrelevant).
fn prediction_order(predicted: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|&i, &j| predicted[j].total_cmp(&predicted[i]));
    order
}

/// Actual values in prediction order, each block of equal predictions replaced by its mean.
fn tie_means(predicted: &[f64], order: &[usize], actual: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(order.len());
    let mut start = 0;
    while start < order.len() {
        let p = predicted[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| predicted[i] == p)
                .count();
        let mean = order[start..end].iter().map(|&i| actual[i]).sum::<f64>() / (end - start) as f64;
        out.extend(std::iter::repeat_n(mean, end - start));
        start = end;
    }
    out
}

fn actual_in_prediction_order(predicted: &[f64], actual: &[f64]) -> Vec<f64> {
    tie_means(predicted, &prediction_order(predicted), actual)
}

/// 1-based ranks, ascending; tied values share the average of the ranks they span.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let v = values[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| values[i] == v)
                .count();
        // Ranks start+1 ..= end, averaged.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
    use super::*;

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
    }

    #[test]
    fn mape_and_bias_by_hand() {
        let p = [110.0, 90.0, 50.0, 7.0];
        let a = [100.0, 100.0, 0.0, 10.0];
        // The zero actual is skipped: (10/100 + 10/100 + 3/10) / 3 = 0.5 / 3.
        close(mape(&p, &a).unwrap(), 0.5 / 3.0);
        // (110 + 90 + 50 + 7) / (100 + 100 + 0 + 10) = 257 / 210.
        close(bias(&p, &a).unwrap(), 257.0 / 210.0);
        assert!(mape(&[1.0], &[0.0]).is_err());
        assert!(bias(&[1.0, 2.0], &[1.0]).is_err());
        assert!(mape(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn normalized_gini_by_hand() {
        // By prediction: actual order 0, 2, 1, 1 (total 4): cumulative shares 0, .5, .75, 1,
        // mean 2.25 / 4 = .5625, minus 5/8 gives -0.0625. Perfect order 2, 1, 1, 0: shares
        // .5, .75, 1, 1, mean .8125, Gini .1875. Normalized: -0.0625 / 0.1875 = -1/3.
        close(
            normalized_gini(&[4.0, 3.0, 2.0, 1.0], &[0.0, 2.0, 1.0, 1.0]).unwrap(),
            -1.0 / 3.0,
        );
        // A perfect ranking scores 1 whatever the scale of the predictions.
        close(
            normalized_gini(&[0.3, 0.1, 0.2], &[30.0, 10.0, 20.0]).unwrap(),
            1.0,
        );
    }

    #[test]
    fn tied_predictions_count_with_their_mean_whatever_the_input_order() {
        // Predictions 1, 1, 0 with actual 3, 0, 1: the tied block {3, 0} counts as 1.5, 1.5.
        // Shares .375, .75, 1: mean 2.125 / 3 minus 4/6 = 1/24. Perfect 3, 1, 0: shares .75,
        // 1, 1: mean 2.75 / 3 minus 4/6 = 1/4. Normalized: (1/24) / (1/4) = 1/6.
        close(
            normalized_gini(&[1.0, 1.0, 0.0], &[3.0, 0.0, 1.0]).unwrap(),
            1.0 / 6.0,
        );
        close(
            normalized_gini(&[1.0, 1.0, 0.0], &[0.0, 3.0, 1.0]).unwrap(),
            1.0 / 6.0,
        );
        assert!(normalized_gini(&[1.0, 2.0], &[5.0, 5.0]).is_err());
    }

    #[test]
    fn decile_mape_by_hand() {
        // 20 items, predictions 20 down to 1: groups of two. Actual equals the prediction
        // except in the top group, whose actual sum is 10 + 9 = 19 against 39 predicted:
        // error 20/19 there, 0 in the nine others, mean (20/19) / 10 = 2/19.
        let p: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        let mut a = p.clone();
        a[0] = 10.0;
        a[1] = 9.0;
        close(decile_mape(&p, &a).unwrap(), 2.0 / 19.0);
        // The input order does not matter, only the predictions do.
        let (mut pr, mut ar) = (p.clone(), a.clone());
        pr.reverse();
        ar.reverse();
        close(decile_mape(&pr, &ar).unwrap(), 2.0 / 19.0);
        // 12 items: two groups of two, then eight of one. Only the first group is off:
        // predicted 12 + 11 = 23, actual 11.5 + 11 = 22.5, error 0.5 / 22.5; mean over ten.
        let p: Vec<f64> = (1..=12).rev().map(f64::from).collect();
        let mut a = p.clone();
        a[0] = 11.5;
        close(decile_mape(&p, &a).unwrap(), (0.5 / 22.5) / 10.0);
        assert!(decile_mape(&[1.0; 9], &[1.0; 9]).is_err());
    }

    #[test]
    fn spearman_by_hand() {
        // Ranks of the actual 5, 6, 7, 8, 7: 1, 2, 3.5, 5, 3.5. Deviations from 3 against
        // -2..2: covariance 4 + 1 + 0 + 2 + 1 = 8, variances 10 and 9.5: 8 / sqrt(95).
        close(
            spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap(),
            8.0 / 95.0f64.sqrt(),
        );
        close(
            spearman(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]).unwrap(),
            -1.0,
        );
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_err());
    }
}
