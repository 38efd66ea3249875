//! What users will be worth: the LTV models and what they stand on. `hurdle` is the main
//! model (whether a user pays, times how much), on the features encoded by `design`;
//! `multiplier` and `btyd` (BG/NBD and Gamma-Gamma) are the baselines it is judged against;
//! `campaign` turns users' predictions into campaign pLTV with an interval; `metrics` scores any model's
//! predictions in backtests; `special`, `optimise` and `information` are the numerical pieces
//! the maximum-likelihood fits share (ln Gamma, Gauss's hypergeometric function, Nelder–Mead,
//! standard errors from the observed information).
//!
//! The numerics are written here rather than taken from a crate: they are a few hundred
//! lines, tested against reference values, and pulling a scientific-computing crate would
//! rebuild much of the dependency tree.

pub mod backtest;
pub mod btyd;
pub mod campaign;
pub mod curve;
pub mod design;
pub mod evaluate;
pub mod fit;
pub mod forest;
pub mod hurdle;
pub mod information;
pub mod logistic;
pub mod metrics;
pub mod multiplier;
pub mod optimise;
pub mod predict;
pub mod special;

/// Errors of the model-independent numerics and of the evaluation metrics.
///
/// Each variant names what was being computed, so a failed backtest or prediction says which
/// metric or function gave up and on what input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// Predictions and actual values must pair up one to one.
    #[error("{metric}: {predicted} predictions but {actual} actual values")]
    LengthMismatch {
        metric: &'static str,
        predicted: usize,
        actual: usize,
    },

    /// The metric needs more items than it was given.
    #[error("{metric}: needs at least {needed} items, got {found}")]
    TooFew {
        metric: &'static str,
        needed: usize,
        found: usize,
    },

    /// The inputs are valid but the metric has no value for them (a zero denominator).
    #[error("{metric} is undefined here: {reason}")]
    Undefined {
        metric: &'static str,
        reason: &'static str,
    },

    /// A value that must be a finite number was not.
    #[error("{what}: item {index} is {value}, expected a finite number")]
    NotFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },

    /// Gauss's hypergeometric function could not be evaluated at these arguments.
    #[error("hypergeometric 2F1({a}, {b}; {c}; {z}): {reason}")]
    Hypergeometric {
        a: f64,
        b: f64,
        c: f64,
        z: f64,
        reason: &'static str,
    },

    /// The optimiser was asked to start from nowhere.
    #[error("optimiser: {reason}")]
    Optimiser { reason: &'static str },

    /// A feature column is missing or cannot be read as the model needs it.
    #[error("feature column {column}: {error}")]
    Column { column: String, error: String },

    /// Nothing to learn from (no mature users at the horizon, say).
    #[error("{0}")]
    NoTrainingData(String),

    /// smartcore gave up fitting or applying a model.
    #[error("fitting the {what}: {error}")]
    Fit { what: &'static str, error: String },
}

impl ModelError {
    pub fn column(name: &str, error: impl std::fmt::Display) -> Self {
        ModelError::Column {
            column: name.to_string(),
            error: error.to_string(),
        }
    }

    /// Wraps a smartcore failure, naming what was being fitted.
    pub fn fit<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ModelError {
        move |e| ModelError::Fit {
            what,
            error: e.to_string(),
        }
    }
}
