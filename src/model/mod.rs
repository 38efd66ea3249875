//! LTV models: the features as a design matrix, the hurdle model (the main one), the
//! baselines it is judged against, and their evaluation.

pub mod campaign;
pub mod design;
pub mod hurdle;
pub mod multiplier;

/// What can go wrong fitting or applying a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("feature column {column}: {error}")]
    Column { column: String, error: String },
    #[error("{0}")]
    NoTrainingData(String),
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
