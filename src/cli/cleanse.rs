//! `ltv cleanse` and `ltv process`: rebuild the clean layer for a range of days.

use anyhow::bail;
use chrono::NaiveDate;
use clap::Args;

use super::{GlobalArgs, load_config, open_lake};
use crate::cleanse::{PlanMode, StageOutput, run_cleanse_with};
use crate::lake::DateRange;
use crate::process::run_process_with;

#[derive(Debug, Args)]
pub struct RangeArgs {
    /// First day to rebuild, YYYY-MM-DD.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day to rebuild, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub to: NaiveDate,
    /// Print the summary as JSON (with the run's seconds and peak memory) instead of a
    /// table.
    #[arg(long)]
    pub json: bool,
    /// For benchmarks: collect after every rule instead of once per partition.
    #[arg(long, hide = true)]
    pub eager: bool,
}

/// Which stage a command runs.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Cleanse,
    Process,
}

/// A fresh id for one stage run, carried by its quarantine and data-quality rows.
pub fn new_run_id() -> String {
    crate::lake::unique_suffix()
}

pub async fn run(global: &GlobalArgs, stage: Stage, args: RangeArgs) -> anyhow::Result<()> {
    if args.to < args.from {
        bail!("--to {} is before --from {}", args.to, args.from);
    }
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let range = DateRange::new(args.from, args.to);
    let run_id = new_run_id();
    let started = std::time::Instant::now();
    let mode = if args.eager {
        PlanMode::Eager
    } else {
        PlanMode::Lazy
    };
    let output = match stage {
        Stage::Cleanse => run_cleanse_with(&config, &lake, range, &run_id, mode).await?,
        Stage::Process => run_process_with(&config, &lake, range, &run_id, mode).await?,
    };
    print_output(&output, args.json, started.elapsed().as_secs_f64())?;
    if output.failed() {
        bail!(
            "{} failed for some partitions (see above); their previous clean partitions are untouched",
            output.stage
        );
    }
    Ok(())
}

fn print_output(output: &StageOutput, json: bool, seconds: f64) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(output)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("seconds".into(), seconds.into());
            obj.insert(
                "peak_memory_bytes".into(),
                super::peak_memory_bytes().into(),
            );
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{output}");
        println!("seconds: {seconds:.2}");
        if let Some(peak) = super::peak_memory_bytes() {
            println!("peak memory: {:.0} MiB", peak as f64 / 1_048_576.0);
        }
    }
    Ok(())
}
