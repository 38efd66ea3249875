//! `ltv run` (the nightly job), `ltv recompute` (an analyst's rebuild of a range) and
//! `ltv demo` (a simulated world through the whole job).

use anyhow::bail;
use chrono::{NaiveDate, Utc};
use clap::Args;

use super::{GlobalArgs, load_config, open_lake, peak_memory_bytes};
use crate::config::std_env;
use crate::pipeline::{
    BacktestPolicy, DemoRequest, RunKind, RunReport, RunRequest, Stage, run_demo, run_pipeline,
};

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        format!("unknown stage {s:?}; stages: {}", names.join(", "))
    })
}

fn parse_backtest(s: &str) -> Result<BacktestPolicy, String> {
    match s {
        "auto" => Ok(BacktestPolicy::Auto),
        "always" => Ok(BacktestPolicy::Always),
        "never" => Ok(BacktestPolicy::Never),
        _ => Err(format!("{s:?}: expected auto, always or never")),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run as of this day (UTC), YYYY-MM-DD: data through the day before. Default: today.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Run every stage again, even those this date's earlier run finished.
    #[arg(long)]
    pub fresh: bool,
    /// When to backtest before predicting: auto (weekly), always, never.
    #[arg(long, default_value = "auto", value_parser = parse_backtest)]
    pub backtest: BacktestPolicy,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecomputeArgs {
    /// First day to rebuild, YYYY-MM-DD.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day to rebuild, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub to: NaiveDate,
    /// Run only this stage; repeat for several (default: cleanse, process, calculate,
    /// marts, publish; `ingest` re-pulls the range from the sources).
    #[arg(long = "stage", value_parser = parse_stage)]
    pub stages: Vec<Stage>,
    /// Run the stages again even if this range's earlier recompute finished them.
    #[arg(long)]
    pub fresh: bool,
    /// When to backtest before predicting: auto (weekly), always, never.
    #[arg(long, default_value = "never", value_parser = parse_backtest)]
    pub backtest: BacktestPolicy,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The world (default: the config's `[sim]`, 90 days x 2,000 installs in the demo).
    #[command(flatten)]
    pub world: super::simulate::WorldArgs,
    /// Clear the lake first when it is not empty (everything in it is deleted).
    #[arg(long)]
    pub overwrite: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Folder the demo writes its report.html into (as `ltv report --out`).
    #[arg(long, default_value = "report")]
    pub report_out: std::path::PathBuf,
}

pub async fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let date = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let mut request = RunRequest::new(RunKind::Nightly { date }, &std_env);
    request.fresh = args.fresh;
    request.backtest = args.backtest;
    request.progress = !args.json;
    let report = run_pipeline(&config, &lake, request).await?;
    finish(&report, args.json)
}

pub async fn recompute(global: &GlobalArgs, args: RecomputeArgs) -> anyhow::Result<()> {
    if args.to < args.from {
        bail!("--to {} is before --from {}", args.to, args.from);
    }
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let mut request = RunRequest::new(
        RunKind::Recompute {
            from: args.from,
            to: args.to,
        },
        &std_env,
    );
    request.stages = if args.stages.is_empty() {
        Stage::ALL
            .into_iter()
            .filter(|s| *s != Stage::Ingest)
            .collect()
    } else {
        args.stages
    };
    request.fresh = args.fresh;
    request.backtest = args.backtest;
    request.progress = !args.json;
    let report = run_pipeline(&config, &lake, request).await?;
    finish(&report, args.json)
}

fn finish(report: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(report)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("peak_memory_bytes".into(), peak_memory_bytes().into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{report}");
    }
    if let Some((stage, error)) = report.failed() {
        bail!(
            "stage {stage} failed: {error}\nthe stages before it stay done; run the same command again to resume from {stage}"
        );
    }
    Ok(())
}

pub async fn demo(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let sim = super::simulate::sim_config(global, &config, &args.world)?;
    let lake = open_lake(global, &config)?;
    if !lake.is_empty().await? {
        if !args.overwrite {
            bail!(
                "lake {} is not empty; the demo simulates a new world into an empty lake: pass \
                 --overwrite to clear it, or --lake to choose another",
                lake.url()
            );
        }
        let removed = lake.clear().await?;
        tracing::info!(lake = %lake.url(), removed, "Cleared the lake.");
    }
    let started = std::time::Instant::now();
    let output = run_demo(&config, &lake, DemoRequest { sim }, &std_env).await?;
    // The marketer's page over the demo's marts (the last four weeks of installs).
    let report = if output.run.failed().is_none() {
        let request = crate::report::ReportRequest {
            from: None,
            to: None,
            out_dir: args.report_out.clone(),
            fallback_currency: config.pipeline.reporting_currency.code().to_string(),
        };
        Some(crate::report::write_report(&lake, &request).await?)
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&output)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("seconds".into(), started.elapsed().as_secs_f64().into());
            obj.insert("peak_memory_bytes".into(), peak_memory_bytes().into());
            obj.insert("report".into(), serde_json::to_value(&report)?);
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{output}");
        println!("lake: {}", lake.url());
        if let Some(r) = &report {
            println!("report: {}", r.path.display());
        }
        println!("demo seconds: {:.1}", started.elapsed().as_secs_f64());
    }
    if let Some((stage, error)) = output.run.failed() {
        bail!("the demo's nightly run failed at {stage}: {error}");
    }
    Ok(())
}
