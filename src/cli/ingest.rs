//! `ltv ingest`: pull the sources into the lake's raw layer: the nightly pull by default, or a
//! backfill of `--from`..`--to`.

use anyhow::bail;
use chrono::{NaiveDate, Utc};
use clap::Args;

use super::{GlobalArgs, load_config, open_lake};
use crate::config::{SourceKind, std_env};
use crate::ingest::schedule::{Mode, Progress};
use crate::ingest::{IngestRequest, run_ingest};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// First day of a backfill, YYYY-MM-DD (with --to). Without a range: the nightly pull
    /// (new days, the restatement window and gaps since `history_start`).
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last day of a backfill, YYYY-MM-DD (inclusive).
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Run as if today were this day (UTC), YYYY-MM-DD: "yesterday" and snapshot days
    /// follow it. Default: today.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Pull only this source (e.g. mixpanel, appsflyer, google_sheets, adison).
    #[arg(long, value_parser = parse_source)]
    pub source: Option<SourceKind>,
    /// Print the summary as JSON (with the run's seconds) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_source(s: &str) -> Result<SourceKind, String> {
    SourceKind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown source {s:?}; known: {}", names.join(", "))
    })
}

pub async fn run(global: &GlobalArgs, args: IngestArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let today = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let mode = match (args.from, args.to) {
        (Some(from), Some(to)) => {
            if to < from {
                bail!("--to {to} is before --from {from}");
            }
            Mode::Range { from, to, today }
        }
        _ => Mode::Nightly { today },
    };
    let request = IngestRequest {
        only: args.source,
        ..IngestRequest::new(mode)
    };
    let started = std::time::Instant::now();
    let summary = run_ingest(&config, &lake, request, &std_env, &Progress::for_terminal()).await?;
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("seconds".into(), started.elapsed().as_secs_f64().into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{summary}");
        println!("seconds: {:.2}", started.elapsed().as_secs_f64());
    }
    if summary.failed() {
        bail!(
            "some streams failed (see the table above); landed partitions stay, the next run retries the rest"
        );
    }
    Ok(())
}
