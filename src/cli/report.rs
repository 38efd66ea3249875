//! `ltv report`: the marketer's page from the lake's marts.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;

use super::{GlobalArgs, load_config, open_lake};
use crate::report::{ReportRequest, write_report};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First install date, YYYY-MM-DD (default: 27 days before --to).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last install date, YYYY-MM-DD (default: the last day the marts hold).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Folder to write report.html into (created when missing).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let request = ReportRequest {
        from: args.from,
        to: args.to,
        out_dir: args.out,
        fallback_currency: config.pipeline.reporting_currency.code().to_string(),
    };
    let output = write_report(&lake, &request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!(
            "report: {} (install dates {} to {}, {} campaigns, {} bytes)",
            output.path.display(),
            output.from,
            output.to,
            output.campaigns,
            output.bytes
        );
    }
    Ok(())
}
