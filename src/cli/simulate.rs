//! `ltv simulate`: generate the simulated world into the lake.

use std::num::NonZeroU32;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;

use super::{GlobalArgs, load_config, open_lake, peak_memory_bytes};

/// The size and seed of a simulated world, over the config's `[sim]` (`ltv simulate`,
/// `ltv demo`).
#[derive(Debug, Args)]
pub struct WorldArgs {
    /// Days of the world (overrides `sim.days`).
    #[arg(long)]
    pub days: Option<NonZeroU32>,
    /// Installs per day, 100 to 1,000,000 (overrides `sim.users_per_day`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub users_per_day: Option<u32>,
    /// Seed of the world (overrides `sim.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub world: WorldArgs,
    /// First day of the world, YYYY-MM-DD (overrides `sim.start_date`).
    #[arg(long)]
    pub start: Option<NaiveDate>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The config's `[sim]` with the command line's overrides.
pub(super) fn sim_config(
    global: &GlobalArgs,
    config: &crate::config::PipelineConfig,
    world: &WorldArgs,
) -> anyhow::Result<crate::config::SimConfig> {
    let mut sim = config.sim.clone().with_context(|| {
        format!(
            "pipeline {} has no [sim] section: nothing to simulate",
            global.pipeline.display()
        )
    })?;
    if let Some(d) = world.days {
        sim.days = d;
    }
    if let Some(u) = world.users_per_day {
        sim.users_per_day = u;
    }
    if let Some(s) = world.seed {
        sim.seed = s;
    }
    Ok(sim)
}

pub async fn run(global: &GlobalArgs, args: SimulateArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let mut sim = sim_config(global, &config, &args.world)?;
    if let Some(s) = args.start {
        sim.start_date = s;
    }
    let lake = open_lake(global, &config)?;
    tracing::info!(lake = %lake.url(), days = sim.days.get(), users_per_day = sim.users_per_day, seed = sim.seed, "Simulating world.");
    let report = crate::sim::simulate(&sim, &lake).await?;
    // The partner's daily files, where the simulated Adison source looks for them.
    if let Some(days) = crate::ingest::sources::world_days(&lake).await? {
        crate::ingest::sources::drop_simulated_adison_files(&config, &lake, days).await?;
    }
    let peak = peak_memory_bytes().unwrap_or(0);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("peak_memory_bytes".into(), peak.into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "world          {} days x {} installs/day, seed {}",
            report.days, sim.users_per_day, sim.seed
        );
        println!("users          {:>14}", report.users);
        println!("events         {:>14}", report.event_rows);
        println!("installs       {:>14}", report.installs_rows);
        println!("af_events      {:>14}", report.af_event_rows);
        println!("profiles       {:>14}", report.profile_rows);
        println!("ad_daily       {:>14}", report.ad_daily_rows);
        println!("dirty rows     {:>14}", report.dirty_rows);
        println!("seconds        {:>14.2}", report.seconds);
        println!("events/s       {:>14.0}", report.events_per_second);
        println!(
            "peak memory    {:>11.1} MiB",
            peak as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
