//! Buy-till-you-die models: BG/NBD for how many purchases a customer makes and when they stop
//! (Fader, Hardie & Lee 2005), Gamma-Gamma for how much they spend per purchase (Fader &
//! Hardie 2013). They are the baseline the LTV models are judged against, and `ltv btyd` fits
//! them on any transaction file as an analyst would with a BTYD library.
//!
//! The flow: `input` reads and validates a transaction file into a frame of
//! `customer, date, amount`; `summary` turns it into each customer's frequency, recency and age
//! in a calibration window (one lazy plan); `bgnbd` and `gamma_gamma` fit by maximum likelihood
//! and predict; `report` runs the lot for the command line. `simulate` draws customers from
//! known parameters, for tests and benchmarks.
//!
//! Definitions (as in the BTYD literature and its R and Python libraries):
//! - a *purchase day* is a day with at least one transaction of the customer; transactions on
//!   the same day count once, their amounts summed;
//! - *frequency* `x`: purchase days after the first one, up to the calibration end;
//! - *recency* `t_x`: time from the first to the last purchase day, in periods;
//! - *age* `T`: time from the first purchase day to the calibration end, in periods;
//! - *mean repeat spend* `m`: the mean amount of the repeat purchase days (the first day is left
//!   out, since it is often atypical and says nothing about repeat behaviour).

pub mod bgnbd;
pub mod error;
pub mod gamma_gamma;
pub mod input;
pub mod report;
pub mod simulate;
pub mod summary;

use serde::{Deserialize, Serialize};

pub use bgnbd::{BgNbdModel, BgNbdParams, CustomerHistory};
pub use error::BtydError;
pub use gamma_gamma::{GammaGammaModel, GammaGammaParams, RepeatSpend};
pub use report::{BtydReport, analyse};

/// The unit recency and age are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
}

impl Period {
    /// Days in one period. Weeks are exactly seven days, so a recency of 30.43 weeks is 213
    /// days: the fractional weeks of the published CDNOW summaries.
    pub fn days(self) -> f64 {
        match self {
            Period::Day => 1.0,
            Period::Week => 7.0,
        }
    }
}

/// How the models are fitted, shared by both: maximum likelihood over log-parameters with
/// Nelder–Mead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitDiagnostics {
    /// Log-likelihood evaluations the optimiser spent.
    pub evaluations: usize,
    /// Fresh simplices built around the best point after the first convergence.
    pub restarts: usize,
    /// Whether the optimiser met its tolerances. A fit that did not is reported, not hidden,
    /// and its parameters should not be trusted.
    pub converged: bool,
}
