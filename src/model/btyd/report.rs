//! `ltv btyd` without the command line: read a transaction file, summarise it in a calibration
//! window, fit BG/NBD (and Gamma-Gamma with amounts), and account for every row left out.

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;
use tracing::{info, warn};

use super::gamma_gamma::{self, GammaGammaModel, RepeatSpend};
use super::input::{self, TransactionSource};
use super::summary::{self, Calibration};
use super::{BgNbdModel, BtydError, Period, bgnbd};

/// What `ltv btyd` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BtydReport {
    pub file: String,
    /// Unit of recency, age and `alpha`.
    pub period: Period,
    /// Last day of the calibration window (inclusive).
    pub calibration_end: NaiveDate,
    /// Customers with a first purchase in the window: those the models are fitted on.
    pub customers: usize,
    /// Customers with at least one repeat purchase day in the window.
    pub repeat_buyers: usize,
    pub transactions: TransactionCounts,
    /// Rows and customers left out, by reason.
    pub dropped: Dropped,
    pub bg_nbd: BgNbdModel,
    /// Present when the source names an amount column.
    pub gamma_gamma: Option<GammaGammaModel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransactionCounts {
    /// Data rows in the file.
    pub read: u64,
    /// Rows dated on or before the calibration end.
    pub in_calibration: u64,
    /// Distinct (customer, day) pairs among those: what the models count.
    pub purchase_days: u64,
}

/// Every reason a row or customer does not reach a fit, with its count.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// Transactions after the calibration end: outside the window (they are what a holdout
    /// check would compare predictions with).
    pub transactions_after_calibration: u64,
    /// Transactions on a day the customer already bought: merged into that purchase day, their
    /// amounts summed.
    pub transactions_merged_into_purchase_days: u64,
    /// Customers whose every transaction is after the calibration end: they have no history in
    /// the window, so they are left out of the fit (their first purchase is not even known to
    /// have happened yet at the calibration end).
    pub customers_after_calibration: u64,
    /// Repeat buyers left out of Gamma-Gamma because their mean repeat spend is zero (free
    /// orders): the model needs positive amounts. Absent without an amount column.
    pub repeat_buyers_without_spend: Option<u64>,
}

/// Reads `source`, fits the models on the window, and reports.
pub fn analyse(source: &TransactionSource, window: &Calibration) -> Result<BtydReport, BtydError> {
    let transactions = input::read(source)?;
    let amounts = source.amount_col.is_some();
    let plan = |step: &'static str| move |source: PolarsError| BtydError::Plan { step, source };
    let summaries = summary::customer_summaries(transactions.clone().lazy(), window, amounts)
        .collect()
        .map_err(plan("summarising customers"))?;
    let counts = summary::counts(transactions.lazy(), window.end)
        .collect()
        .map_err(plan("counting transactions"))?;
    let count = |name: &str| -> Result<u64, BtydError> {
        counts
            .column(name)
            .and_then(|c| c.u64().map(|c| c.get(0).unwrap_or(0)))
            .map_err(plan("counting transactions"))
    };
    let (histories, spends) =
        summary::histories(&summaries).map_err(plan("reading customer summaries"))?;
    if histories.is_empty() {
        return Err(BtydError::NothingToCalibrate {
            file: source.path.clone(),
            calibration_end: window.end,
        });
    }

    let read = count("rows")?;
    let after = count("rows_after_window")?;
    let purchase_days: u64 = histories.iter().map(|h| u64::from(h.frequency) + 1).sum();
    let repeat_buyers = histories.iter().filter(|h| h.frequency > 0).count();

    let bg_nbd = bgnbd::fit(&histories)?;
    info!(
        customers = bg_nbd.customers,
        repeat_buyers,
        log_likelihood = bg_nbd.log_likelihood,
        evaluations = bg_nbd.fit.evaluations,
        "Fitted BG/NBD."
    );
    if !bg_nbd.fit.converged {
        warn!(
            evaluations = bg_nbd.fit.evaluations,
            "BG/NBD did not converge; its parameters are the best found, not a maximum."
        );
    }

    let (gamma_gamma, without_spend) = if amounts {
        let repeat: Vec<RepeatSpend> = histories
            .iter()
            .zip(&spends)
            .filter(|(h, _)| h.frequency > 0)
            .filter_map(|(h, m)| {
                m.filter(|m| *m > 0.0).map(|mean_spend| RepeatSpend {
                    frequency: h.frequency,
                    mean_spend,
                })
            })
            .collect();
        let without = (repeat_buyers - repeat.len()) as u64;
        let model = gamma_gamma::fit(&repeat)?;
        info!(
            customers = model.customers,
            log_likelihood = model.log_likelihood,
            "Fitted Gamma-Gamma."
        );
        if !model.fit.converged {
            warn!(
                evaluations = model.fit.evaluations,
                "Gamma-Gamma did not converge; its parameters are the best found, not a maximum."
            );
        }
        (Some(model), Some(without))
    } else {
        (None, None)
    };

    Ok(BtydReport {
        file: source.path.display().to_string(),
        period: window.period,
        calibration_end: window.end,
        customers: histories.len(),
        repeat_buyers,
        transactions: TransactionCounts {
            read,
            in_calibration: read - after,
            purchase_days,
        },
        dropped: Dropped {
            transactions_after_calibration: after,
            transactions_merged_into_purchase_days: read - after - purchase_days,
            customers_after_calibration: count("customers_after_window")?,
            repeat_buyers_without_spend: without_spend,
        },
        bg_nbd,
        gamma_gamma,
    })
}
