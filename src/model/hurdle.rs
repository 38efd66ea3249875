//! The hurdle model, ltv's main LTV model: a user's cumulative revenue at a horizon is
//! `P(paying by then) × E[revenue | paying]`.
//!
//! Revenue per user is mostly zero with a long tail: one regression on it would be pulled
//! between the two. The hurdle splits them:
//! - **Whether**: a user who has paid inside the observation window has crossed the hurdle
//!   (probability 1); for the others a logistic regression on the window's behaviour gives
//!   the chance of paying before the horizon, fitted on mature users who had not paid by the
//!   window's end.
//! - **How much**: gradient-boosted trees (smartcore's `XGRegressor`) on log revenue at the
//!   horizon of the mature users who paid, so one whale does not set the scale. Exponentiating
//!   a mean of logs gives the geometric mean, below the arithmetic one; the log-normal bias
//!   correction `exp(σ²/2)`, with σ² the training residual variance, puts it back.
//!
//! A prediction never falls below the revenue already seen in the window: cumulative revenue
//! does not shrink.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::xgboost::xgb_regressor::{XGRegressor, XGRegressorParameters};

use super::ModelError;
use super::design::Design;
use super::forest::Forest;
use super::logistic::{fit_logistic, sigmoid};

/// Tuning of the hurdle model. The defaults suit tens of thousands of users on two cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HurdleParams {
    /// Boosting rounds of the value model.
    pub trees: usize,
    /// Depth of each tree.
    pub depth: u16,
    pub learning_rate: f64,
    /// Minimum users in a leaf (squared loss: the hessian is 1 per user).
    pub min_leaf: usize,
    /// L2 penalty of the payer regression.
    pub payer_penalty: f64,
    /// At most this many users train the payer regression and this many payers the value
    /// trees (a seeded sample beyond): smartcore's exact tree search sorts every node's
    /// users per feature, so its cost grows faster than linearly.
    pub max_payer_rows: usize,
    pub max_value_rows: usize,
    pub seed: u64,
}

impl Default for HurdleParams {
    fn default() -> Self {
        HurdleParams {
            trees: 60,
            depth: 3,
            learning_rate: 0.1,
            min_leaf: 20,
            payer_penalty: 1.0,
            max_payer_rows: 200_000,
            max_value_rows: 20_000,
            seed: 7,
        }
    }
}

/// One training (or prediction) set: encoded features, revenue seen in the window and,
/// for training, revenue at the horizon. Money in micros of the reporting currency.
#[derive(Debug, Clone)]
pub struct Rows {
    pub x: Vec<Vec<f64>>,
    pub window_revenue_micros: Vec<f64>,
    pub horizon_revenue_micros: Vec<f64>,
}

/// The payer regression: `P = sigmoid(intercept + coefficients · x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayerModel {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
}

impl PayerModel {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z = self.intercept
            + self
                .coefficients
                .iter()
                .zip(x)
                .map(|(c, v)| c * v)
                .sum::<f64>();
        sigmoid(z)
    }
}

type Trees = XGRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A fitted hurdle model.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hurdle {
    pub design: Design,
    pub params: HurdleParams,
    pub payer: PayerModel,
    /// Share of window non-payers who paid by the horizon, in training.
    pub late_payer_rate: f64,
    /// Trees on ln(revenue at the horizon, micros) of payers; `None` when training had no
    /// payers, and the model then predicts the window's revenue.
    pub value: Option<Trees>,
    /// Variance of the value model's log residuals on its training rows.
    pub log_residual_variance: f64,
    pub training_users: usize,
    pub training_payers: usize,
}

impl Hurdle {
    pub fn fit(design: Design, rows: &Rows, params: HurdleParams) -> Result<Hurdle, ModelError> {
        let n = rows.x.len();
        if n == 0 {
            return Err(ModelError::NoTrainingData(
                "no mature users to train the hurdle model on".into(),
            ));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);

        let mut unpaid: Vec<usize> = (0..n)
            .filter(|&i| rows.window_revenue_micros[i] <= 0.0)
            .collect();
        let late = unpaid
            .iter()
            .filter(|&&i| rows.horizon_revenue_micros[i] > 0.0)
            .count();
        let late_payer_rate = late as f64 / unpaid.len().max(1) as f64;
        sample(&mut unpaid, params.max_payer_rows, &mut rng);
        let mut payers: Vec<usize> = (0..n)
            .filter(|&i| rows.horizon_revenue_micros[i] > 0.0)
            .collect();
        let training_payers = payers.len();
        sample(&mut payers, params.max_value_rows, &mut rng);

        // The two parts are independent and each of smartcore's fits runs on one thread:
        // side by side they take the longer one's time rather than the sum. The samples are
        // drawn above, in a fixed order, so the fit is the same either way.
        let (payer, value) = std::thread::scope(|scope| {
            let value = scope.spawn(|| fit_value(rows, &payers, &params));
            let payer = fit_payer(rows, &unpaid, late_payer_rate, &params);
            (payer, value.join())
        });
        let payer = payer?;
        let (value, log_residual_variance) = match value {
            Ok(fitted) => fitted?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok(Hurdle {
            design,
            params,
            payer,
            late_payer_rate,
            value,
            log_residual_variance,
            training_users: n,
            training_payers,
        })
    }

    /// Probability of having paid by the horizon per row: 1 for users who paid in the
    /// window, the payer regression's for the others.
    pub fn pay_probability(&self, rows: &Rows) -> Vec<f64> {
        rows.x
            .iter()
            .zip(&rows.window_revenue_micros)
            .map(|(x, seen)| {
                if *seen > 0.0 {
                    1.0
                } else {
                    self.payer.probability(x)
                }
            })
            .collect()
    }

    /// Expected cumulative revenue at the horizon per row, micros.
    pub fn predict(&self, rows: &Rows) -> Result<Vec<f64>, ModelError> {
        let n = rows.x.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let spend = match &self.value {
            Some(trees) => {
                let logs = Forest::of(trees)?.predict(&rows.x)?;
                let correction = (self.log_residual_variance / 2.0).exp();
                logs.into_iter().map(|l| l.exp() * correction).collect()
            }
            None => rows.window_revenue_micros.clone(),
        };
        Ok(self
            .pay_probability(rows)
            .into_iter()
            .zip(spend)
            .zip(&rows.window_revenue_micros)
            .map(|((p, spend), seen)| (p * spend).max(*seen))
            .collect())
    }
}

/// Keeps a seeded random `max` of `idx` (all of them when there are fewer).
fn sample(idx: &mut Vec<usize>, max: usize, rng: &mut Xoshiro256PlusPlus) {
    if idx.len() > max {
        idx.shuffle(rng);
        idx.truncate(max);
        idx.sort_unstable();
    }
}

/// The rows `idx` of `x` as smartcore's matrix, column by column: smartcore's trees sort
/// and scan one feature at a time.
fn matrix(x: &[Vec<f64>], idx: &[usize]) -> Result<DenseMatrix<f64>, ModelError> {
    let width = x.first().map_or(0, Vec::len);
    let values: Vec<f64> = (0..width)
        .flat_map(|c| idx.iter().map(move |&i| x[i][c]))
        .collect();
    DenseMatrix::new(idx.len(), width, values, true).map_err(ModelError::fit("design matrix"))
}

fn fit_payer(
    rows: &Rows,
    idx: &[usize],
    rate: f64,
    params: &HurdleParams,
) -> Result<PayerModel, ModelError> {
    let width = rows.x.first().map_or(0, Vec::len);
    let y: Vec<bool> = idx
        .iter()
        .map(|&i| rows.horizon_revenue_micros[i] > 0.0)
        .collect();
    let positives = y.iter().filter(|&&paid| paid).count();
    // One class only (nobody or everybody paid late): the rate is all there is to learn.
    if positives == 0 || positives == y.len() || width == 0 {
        let p = rate.clamp(1e-6, 1.0 - 1e-6);
        return Ok(PayerModel {
            intercept: (p / (1.0 - p)).ln(),
            coefficients: vec![0.0; width],
        });
    }
    let x: Vec<f64> = idx
        .iter()
        .flat_map(|&i| rows.x[i].iter().copied())
        .collect();
    if x.len() != idx.len() * width {
        return Err(ModelError::fit("payer regression")(
            "the design's rows differ in width",
        ));
    }
    let fitted = fit_logistic(&x, &y, width, params.payer_penalty);
    tracing::debug!(
        users = idx.len(),
        features = width,
        steps = fitted.steps,
        "payer regression fitted"
    );
    Ok(PayerModel {
        intercept: fitted.intercept,
        coefficients: fitted.coefficients,
    })
}

fn fit_value(
    rows: &Rows,
    idx: &[usize],
    params: &HurdleParams,
) -> Result<(Option<Trees>, f64), ModelError> {
    if idx.is_empty() {
        return Ok((None, 0.0));
    }
    let m = matrix(&rows.x, idx)?;
    let y: Vec<f64> = idx
        .iter()
        .map(|&i| rows.horizon_revenue_micros[i].ln())
        .collect();
    let base = y.iter().sum::<f64>() / y.len() as f64;
    let trees = XGRegressor::fit(
        &m,
        &y,
        XGRegressorParameters::default()
            .with_n_estimators(params.trees)
            .with_max_depth(params.depth)
            .with_learning_rate(params.learning_rate)
            .with_min_child_weight(params.min_leaf)
            .with_base_score(base)
            .with_seed(params.seed),
    )
    .map_err(ModelError::fit("value trees"))?;
    let fitted = trees.predict(&m).map_err(ModelError::fit("value trees"))?;
    let residuals: Vec<f64> = y.iter().zip(&fitted).map(|(a, b)| a - b).collect();
    let mean = residuals.iter().sum::<f64>() / residuals.len() as f64;
    let var = residuals.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
        / (residuals.len().saturating_sub(1).max(1)) as f64;
    Ok((Some(trees), var))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, LogNormal};

    /// Users with one informative feature: `engaged` raises both the chance of paying late
    /// and the amount. Revenue at the horizon is drawn so the truth is known in closed form.
    fn world(n: usize, seed: u64) -> (Rows, Vec<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut rows = Rows {
            x: Vec::new(),
            window_revenue_micros: Vec::new(),
            horizon_revenue_micros: Vec::new(),
        };
        let mut truth = Vec::new();
        for _ in 0..n {
            let engaged = rng.random_bool(0.3);
            let e = f64::from(u8::from(engaged));
            let early = rng.random_bool(0.02 + 0.08 * e);
            let p_late = 0.03 + 0.12 * e;
            let median = 5_000_000.0 * (1.0 + 2.0 * e);
            let amount = LogNormal::new(median.ln(), 0.8).unwrap();
            let window = if early { amount.sample(&mut rng) } else { 0.0 };
            let paid = early || rng.random_bool(p_late);
            let horizon = if paid {
                window + amount.sample(&mut rng)
            } else {
                0.0
            };
            let mean_amount = median * (0.8f64 * 0.8 / 2.0).exp();
            truth.push(if early {
                window + mean_amount
            } else {
                p_late * mean_amount
            });
            rows.x.push(vec![e, window / 1e6]);
            rows.window_revenue_micros.push(window);
            rows.horizon_revenue_micros.push(horizon);
        }
        (rows, truth)
    }

    fn design() -> Design {
        Design {
            numeric: Vec::new(),
            categorical: Vec::new(),
        }
    }

    #[test]
    fn the_flat_trees_predict_exactly_what_smartcore_predicts() {
        let (train, _) = world(5_000, 3);
        let model = Hurdle::fit(design(), &train, HurdleParams::default()).unwrap();
        let trees = model.value.as_ref().unwrap();
        let (test, _) = world(2_000, 4);
        let all: Vec<usize> = (0..test.x.len()).collect();
        let smartcore = trees.predict(&matrix(&test.x, &all).unwrap()).unwrap();
        let forest = Forest::of(trees).unwrap();
        assert_eq!(forest.predict(&test.x).unwrap(), smartcore);
        assert!(
            smartcore.iter().any(|v| (v - smartcore[0]).abs() > 1e-9),
            "the trees split"
        );
        // A row narrower than the splits need is an error naming it, not a panic.
        let mut narrow = test.x.clone();
        narrow[7].clear();
        let error = forest.predict(&narrow).unwrap_err().to_string();
        assert!(error.contains("row 7 has 0 features"), "{error}");
    }

    #[test]
    fn the_hurdle_recovers_group_means_and_never_predicts_below_the_window() {
        let (train, _) = world(20_000, 1);
        let model = Hurdle::fit(design(), &train, HurdleParams::default()).unwrap();
        let (test, truth) = world(20_000, 2);
        let predicted = model.predict(&test).unwrap();
        for (p, w) in predicted.iter().zip(&test.window_revenue_micros) {
            assert!(p >= w);
        }
        // Mean over engaged non-payers and over the rest, against the closed form.
        for engaged in [0.0, 1.0] {
            let idx: Vec<usize> = (0..test.x.len())
                .filter(|&i| test.x[i][0] == engaged && test.window_revenue_micros[i] == 0.0)
                .collect();
            let mean = |v: &[f64]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
            let (p, t) = (mean(&predicted), mean(&truth));
            assert!((p - t).abs() / t < 0.15, "engaged {engaged}: {p} vs {t}");
        }
        let total: f64 = predicted.iter().sum();
        let actual: f64 = test.horizon_revenue_micros.iter().sum();
        assert!((total / actual - 1.0).abs() < 0.1, "{total} vs {actual}");
        assert!(model.payer.coefficients[0] > 0.5, "{:?}", model.payer);
    }

    #[test]
    fn one_class_training_falls_back_to_the_rate_and_no_payers_to_the_window() {
        let rows = Rows {
            x: vec![vec![0.0], vec![1.0]],
            window_revenue_micros: vec![0.0, 0.0],
            horizon_revenue_micros: vec![0.0, 0.0],
        };
        let model = Hurdle::fit(design(), &rows, HurdleParams::default()).unwrap();
        assert!(model.value.is_none());
        assert_eq!(model.predict(&rows).unwrap(), [0.0, 0.0]);
        let err = Hurdle::fit(
            design(),
            &Rows {
                x: vec![],
                window_revenue_micros: vec![],
                horizon_revenue_micros: vec![],
            },
            HurdleParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no mature users"), "{err}");
    }

    #[test]
    fn a_fitted_model_survives_its_json_artifact() {
        let (train, _) = world(2_000, 3);
        let model = Hurdle::fit(design(), &train, HurdleParams::default()).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: Hurdle = serde_json::from_str(&json).unwrap();
        // JSON keeps 17 significant digits, not every last bit of a float.
        let (a, b) = (
            model.predict(&train).unwrap(),
            back.predict(&train).unwrap(),
        );
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            .fold(0.0, f64::max);
        assert!(worst < 1e-9, "relative difference {worst}");
    }
}
