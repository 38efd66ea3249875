//! `ltv btyd`: fit BG/NBD and, with amounts, Gamma-Gamma on any transaction file (CSV or
//! Parquet), as an analyst would with a BTYD library, and print the fit as JSON.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use crate::model::btyd::input::{DEFAULT_DATE_FORMAT, TransactionSource};
use crate::model::btyd::summary::Calibration;
use crate::model::btyd::{Period, analyse};

#[derive(Debug, Args)]
pub struct BtydArgs {
    /// Transactions: a .csv with a header row, or a .parquet file.
    #[arg(long)]
    pub transactions: PathBuf,
    /// Column identifying the customer.
    #[arg(long)]
    pub customer_col: String,
    /// Column with the transaction's date (a date, a datetime, or text).
    #[arg(long)]
    pub date_col: String,
    /// strftime format of text dates, e.g. %d/%m/%Y; a time of day after the date is ignored.
    #[arg(long, default_value = DEFAULT_DATE_FORMAT)]
    pub date_format: String,
    /// Column with the amount spent (non-negative); enables the Gamma-Gamma spend model.
    #[arg(long)]
    pub amount_col: Option<String>,
    /// Last day of the calibration window, YYYY-MM-DD (inclusive); later transactions are
    /// left out of the fit.
    #[arg(long)]
    pub calibration_end: NaiveDate,
    /// Unit of recency, age and the rate parameter alpha.
    #[arg(long, value_enum, default_value_t = PeriodArg::Week)]
    pub period: PeriodArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeriodArg {
    Day,
    Week,
}

pub fn run(args: BtydArgs) -> anyhow::Result<()> {
    let source = TransactionSource {
        path: args.transactions,
        customer_col: args.customer_col,
        date_col: args.date_col,
        date_format: args.date_format,
        amount_col: args.amount_col,
    };
    let window = Calibration {
        end: args.calibration_end,
        period: match args.period {
            PeriodArg::Day => Period::Day,
            PeriodArg::Week => Period::Week,
        },
    };
    let report = analyse(&source, &window)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
