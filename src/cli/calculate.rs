//! `ltv backtest` and `ltv predict`: the models over the lake's clean layer.

use anyhow::bail;
use chrono::NaiveDate;
use clap::Args;

use super::cleanse::new_run_id;
use super::{GlobalArgs, load_config, open_lake};
use crate::calculate::{run_backtest, run_predict};
use crate::features::FeatureParams;
use crate::model::evaluate::EvaluationParams;
use crate::model::hurdle::HurdleParams;
use crate::model::predict::PredictParams;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Earliest cutoff, YYYY-MM-DD (default: the earliest the history can score).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Latest cutoff, YYYY-MM-DD (default: the latest the history can score).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Horizon H in days; repeat for several (default: the config's `[analysis] horizons`).
    #[arg(long = "horizon")]
    pub horizons: Vec<u32>,
    /// Observation window K in days (default: `[analysis] primary_observation_days`).
    #[arg(long)]
    pub window: Option<u32>,
    /// Days between cutoffs.
    #[arg(long, default_value_t = 7)]
    pub every: u32,
    /// At most this many cutoffs per horizon, the latest.
    #[arg(long, default_value_t = 8)]
    pub max_cutoffs: usize,
    /// Width of the scored install cohort, days.
    #[arg(long, default_value_t = 7)]
    pub cohort_days: u32,
    /// Campaigns with fewer scored users are left out of the campaign-level error.
    #[arg(long, default_value_t = 100)]
    pub min_campaign_users: usize,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A horizon needs this many mature users to train its own model; below it, it is
    /// extrapolated (and flagged).
    #[arg(long, default_value_t = 500)]
    pub min_training_users: usize,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn backtest(global: &GlobalArgs, args: BacktestArgs) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && to < from
    {
        bail!("--to {to} is before --from {from}");
    }
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let mut features = FeatureParams::from_analysis(&config.analysis);
    if let Some(k) = args.window {
        features.window_days = k;
    }
    if !args.horizons.is_empty() {
        let mut h = args.horizons.clone();
        h.sort_unstable();
        h.dedup();
        features.horizons = h;
    }
    features.validate()?;
    let params = EvaluationParams {
        window_days: features.window_days,
        horizons: features.horizons,
        cohort_days: args.cohort_days.max(1),
        every_days: args.every.max(1),
        max_cutoffs: args.max_cutoffs.max(1),
        min_campaign_users: args.min_campaign_users,
        hurdle: HurdleParams::default(),
        from: args.from,
        to: args.to,
    };
    let output = run_backtest(&lake, &params, &new_run_id()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print!("{output}");
    }
    Ok(())
}

pub async fn predict(global: &GlobalArgs, args: PredictArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    let features = FeatureParams::from_analysis(&config.analysis);
    features.validate()?;
    let params = PredictParams {
        min_training_users: args.min_training_users,
        ..PredictParams::new(features)
    };
    let output = run_predict(&lake, params).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print!("{output}");
    }
    Ok(())
}
