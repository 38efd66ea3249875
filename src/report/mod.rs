//! `ltv report`: the marketer's page, one self-contained HTML file built from the marts.
//!
//! The people who buy ads read results rather than query them; this page gives them the
//! overview, the campaign table, LTV curves, spend against value, the critical paths, how
//! far to trust the models and what the data cleaning did, from the lake's `mart/` layer
//! (and the clean layer's lists of unmapped campaigns and new events).
//!
//! - data/: the marts read into small structs (every plan aggregates before collecting):
//!   campaign-day facts and cohorts (mod.rs), paths, backtest and calibration (analysis.rs),
//!   data quality and the clean layer's lists (quality.rs).
//! - campaigns.rs: the campaign table's aggregation, payback, and its facts for the script.
//! - charts.rs: plotters charts rendered to SVG strings.
//! - page.rs: the HTML; assets/ holds its stylesheet and script, inlined at build time.
//! - format.rs: money, counts and percentages for people; HTML escaping.
//! - frame.rs: frame columns to vectors.
//!
//! The file needs no network: no fonts, images, scripts or styles are fetched, so it can be
//! mailed or opened from a shared folder.

mod campaigns;
mod charts;
mod data;
mod format;
mod frame;
mod page;

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use tracing::info;

use crate::lake::{Lake, LakeError};
use crate::schema::SchemaError;

pub use data::{DEFAULT_DAYS, Period};
pub use format::{count, money, pct};
pub use page::SECTIONS;

/// Name of the page inside the output folder.
pub const REPORT_FILE: &str = "report.html";

/// Errors of the report. Each names what was being read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the marts: {0}")]
    Lake(#[from] LakeError),
    #[error("{what}: {source}")]
    Polars {
        what: &'static str,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error("drawing the {chart} chart: {message}")]
    Chart {
        chart: &'static str,
        message: String,
    },
    #[error("--to {to} is before --from {from}")]
    BadRange { from: NaiveDate, to: NaiveDate },
    #[error("cannot create the report folder {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the report {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to report on and where to put it.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// First install date (default: [`DEFAULT_DAYS`] days before `to`).
    pub from: Option<NaiveDate>,
    /// Last install date (default: the last day `mart.campaign_daily` holds).
    pub to: Option<NaiveDate>,
    /// Folder the page is written to (created when missing).
    pub out_dir: PathBuf,
    /// Currency named when the marts are empty (normally the config's reporting currency).
    pub fallback_currency: String,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportOutput {
    pub path: PathBuf,
    pub bytes: usize,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub campaigns: usize,
}

/// Builds the page for `request`'s dates as a string (nothing written).
pub async fn build_report(
    lake: &Lake,
    request: &ReportRequest,
) -> Result<(String, ReportOutput), ReportError> {
    let today = Utc::now().date_naive();
    let data = data::load(
        lake,
        request.from,
        request.to,
        &request.fallback_currency,
        today,
    )
    .await?;
    let generated = Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let html = page::render(&data, &generated, lake.url())?;
    let output = ReportOutput {
        path: request.out_dir.join(REPORT_FILE),
        bytes: html.len(),
        from: data.period.from,
        to: data.period.to,
        campaigns: campaigns::campaign_rows(&data).len(),
    };
    Ok((html, output))
}

/// Builds the page and writes it to `<out_dir>/report.html` (through a temporary file
/// renamed into place, so a reader never opens half a page).
pub async fn write_report(
    lake: &Lake,
    request: &ReportRequest,
) -> Result<ReportOutput, ReportError> {
    let (html, output) = build_report(lake, request).await?;
    write_atomically(&request.out_dir, &output.path, html.as_bytes())?;
    info!(
        path = %output.path.display(),
        bytes = output.bytes,
        campaigns = output.campaigns,
        "Report written."
    );
    Ok(output)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(".{REPORT_FILE}.{}.tmp", std::process::id()));
    let write_err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}
