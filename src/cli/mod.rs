//! The command line: clap types in one place, one file per command. Commands print data to
//! stdout; logs and progress go to stderr.
#![allow(clippy::print_stdout)]

mod bench;
mod btyd;
mod calculate;
mod cleanse;
mod ingest;
mod lake;
mod logging;
mod report;
mod run;
mod schema;
mod simulate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::PipelineConfig;
use crate::lake::Lake;

pub use logging::init_logging;

/// ltv: what each ad campaign's users will be worth.
#[derive(Debug, Parser)]
#[command(name = "ltv", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Pipeline config (TOML). The demo config is built in, so the default works anywhere.
    #[arg(long, global = true, default_value = crate::config::DEMO_PATH, env = "LTV_PIPELINE")]
    pub pipeline: PathBuf,
    /// Lake URL or path; overrides the config's `pipeline.lake`.
    #[arg(long, global = true, env = "LTV_LAKE")]
    pub lake: Option<String>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log detail (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the simulated world into the lake's sim/ and truth/ tables.
    Simulate(simulate::SimulateArgs),
    /// Pull the sources into the lake's raw layer (nightly, or a --from/--to backfill).
    Ingest(ingest::IngestArgs),
    /// Rebuild the clean per-source tables of a range from the raw layer (dedup, malformed
    /// rows, normalisation); idempotent.
    Cleanse(cleanse::RangeArgs),
    /// Rebuild the joined clean tables of a range (identity, installs, events, campaigns);
    /// run after `cleanse`; idempotent.
    Process(cleanse::RangeArgs),
    /// Show table schemas and the MySQL DDL of the marts.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Look after the lake itself.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
    /// Fit BG/NBD and Gamma-Gamma on a transaction file (CSV or Parquet) and print them as
    /// JSON.
    Btyd(btyd::BtydArgs),
    /// Score every model at cutoffs across the history (train on what was known, predict
    /// the cohort that had K days, compare with what happened by the horizon); writes
    /// mart.model_evaluation and records the best model per horizon.
    Backtest(calculate::BacktestArgs),
    /// Fit the models on every mature cohort, predict each user with a complete window at
    /// every horizon, save the models under _state/models/ and print campaign pLTV.
    Predict(calculate::PredictArgs),
    /// The nightly job: ingest (new days, restatement window), cleanse, process, calculate,
    /// marts to the lake and MySQL. Resumes a failed run of the same date at the stage that
    /// failed.
    Run(run::RunArgs),
    /// Rebuild a range of days: cleanse, process, calculate, marts, publish (or the stages
    /// named with --stage).
    Recompute(run::RecomputeArgs),
    /// Simulate a world (90 days by default), serve it through the local API servers, run the
    /// nightly job over it and print each campaign's predicted and true D90 revenue.
    Demo(run::DemoArgs),
    /// Simulate a history and run the nightly job over it stage by stage: rows, seconds,
    /// rows/s and peak memory per stage, written as JSON under benches/results/.
    Bench(bench::BenchArgs),
    /// Write the marketer's report: one self-contained HTML page (overview, campaigns, LTV
    /// curves, spend vs value, critical paths, model quality, data quality) from the marts.
    Report(report::ReportArgs),
}

/// Runs a parsed command line. Errors carry their whole cause chain for `main` to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate::run(&cli.global, args).await,
        Command::Ingest(args) => ingest::run(&cli.global, args).await,
        Command::Cleanse(args) => cleanse::run(&cli.global, cleanse::Stage::Cleanse, args).await,
        Command::Process(args) => cleanse::run(&cli.global, cleanse::Stage::Process, args).await,
        Command::Schema(cmd) => schema::run(cmd),
        Command::Lake(cmd) => lake::run(&cli.global, cmd).await,
        Command::Btyd(args) => btyd::run(args),
        Command::Backtest(args) => calculate::backtest(&cli.global, args).await,
        Command::Predict(args) => calculate::predict(&cli.global, args).await,
        Command::Run(args) => run::run(&cli.global, args).await,
        Command::Recompute(args) => run::recompute(&cli.global, args).await,
        Command::Demo(args) => run::demo(&cli.global, args).await,
        Command::Bench(args) => bench::run(&cli.global, args).await,
        Command::Report(args) => report::run(&cli.global, args).await,
    }
}

/// Loads the pipeline config named on the command line (the embedded demo by default).
fn load_config(global: &GlobalArgs) -> anyhow::Result<PipelineConfig> {
    Ok(PipelineConfig::load_or_embedded_demo(&global.pipeline)?)
}

/// Opens the lake: `--lake` wins over the config.
fn open_lake(global: &GlobalArgs, config: &PipelineConfig) -> anyhow::Result<Lake> {
    Ok(match &global.lake {
        Some(url) => Lake::open(url)?,
        None => Lake::open_location(&config.pipeline.lake)?,
    })
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
