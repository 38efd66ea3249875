//! `ltv bench`: the whole job over a simulated history, stage by stage, with rows, seconds,
//! rows per second and peak memory per stage; optionally the next night's incremental run.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Duration;
use clap::Args;
use serde::Serialize;

use super::{GlobalArgs, load_config, open_lake, peak_memory_bytes};
use crate::config::std_env;
use crate::lake::Lake;
use crate::pipeline::{BacktestPolicy, RunKind, RunRequest, Stage, StageStatus, run_pipeline};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Days of simulated history.
    #[arg(long, default_value_t = NonZeroU32::MIN.saturating_add(29))]
    pub days: NonZeroU32,
    /// Days the simulated world runs; the lake's history is its last `--days` (default: as
    /// long as `--days`). With `--nightly`, `--days 30 --world-days 180` and `--days 180` time the
    /// same next night, over the same world, on top of 30 and of 180 days of history: the fair
    /// test of whether the nightly run's cost follows the history or the new data.
    #[arg(long)]
    pub world_days: Option<NonZeroU32>,
    /// Installs per day (events per day grow with it, about 60 per install over the world).
    #[arg(long, default_value_t = 2000)]
    pub users_per_day: u32,
    /// Seed of the world.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also time the following night's run (one new day on top of the history).
    #[arg(long)]
    pub nightly: bool,
    /// Write the result as JSON here (default: benches/results/pipeline-<days>d-<users>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct StageRow {
    run: String,
    stage: String,
    rows: u64,
    seconds: f64,
    rows_per_second: f64,
    peak_memory_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct BenchOutput {
    /// Days of history in the lake, the last of the world's days.
    days: u32,
    world_days: u32,
    users_per_day: u32,
    seed: u64,
    events: u64,
    events_per_day: f64,
    stages: Vec<StageRow>,
    /// Seconds of the whole run over the history, and of the next night's.
    history_run_seconds: f64,
    nightly_run_seconds: Option<f64>,
}

/// Resets the process's peak resident memory (Linux: `5 > /proc/self/clear_refs`), so that
/// the next reading is the peak of what follows.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let mut sim = config
        .sim
        .clone()
        .context("the pipeline has no [sim] section: nothing to simulate")?;
    let world_days = args.world_days.unwrap_or(args.days);
    if world_days < args.days {
        bail!(
            "--world-days {world_days} is shorter than --days {}: the history is part of the world",
            args.days
        );
    }
    sim.days = if args.nightly {
        world_days.saturating_add(1)
    } else {
        world_days
    };
    sim.users_per_day = args.users_per_day;
    sim.seed = args.seed;
    let lake = match &global.lake {
        Some(_) => open_lake(global, &config)?,
        None => Lake::open("memory://")?,
    };
    if !lake.is_empty().await? {
        bail!(
            "lake {} is not empty; ltv bench needs an empty lake (or none: memory)",
            lake.url()
        );
    }
    let mut config = config.clone();
    config.sim = Some(sim.clone());
    let history_start =
        sim.start_date + Duration::days(i64::from(world_days.get() - args.days.get()));
    if world_days > args.days {
        // The lake starts with the world's last `days`: what a team that began collecting then
        // would hold.
        config.pipeline.history_start = Some(history_start);
    }
    let mut stages = Vec::new();

    reset_peak_memory();
    let started = Instant::now();
    let report = crate::sim::simulate(&sim, &lake).await?;
    let world = crate::ingest::sources::world_days(&lake)
        .await?
        .context("the simulated world has no days")?;
    crate::ingest::sources::drop_simulated_adison_files(&config, &lake, world).await?;
    let seconds = started.elapsed().as_secs_f64();
    stages.push(StageRow {
        run: "world".into(),
        stage: "simulate".into(),
        rows: report.event_rows,
        seconds,
        rows_per_second: report.event_rows as f64 / seconds.max(1e-9),
        peak_memory_bytes: peak_memory_bytes(),
    });

    let history_date = history_start + Duration::days(i64::from(args.days.get()));
    let history = run_stages(&config, &lake, history_date, "history", &mut stages).await?;
    let nightly = if args.nightly {
        Some(
            run_stages(
                &config,
                &lake,
                history_date + Duration::days(1),
                "nightly",
                &mut stages,
            )
            .await?,
        )
    } else {
        None
    };
    let days = args.days.get();
    let output = BenchOutput {
        days,
        world_days: world_days.get(),
        users_per_day: args.users_per_day,
        seed: args.seed,
        events: report.event_rows,
        events_per_day: report.event_rows as f64 / f64::from(sim.days.get()),
        stages,
        history_run_seconds: history,
        nightly_run_seconds: nightly,
    };
    println!(
        "{:<8} {:<10} {:>12} {:>9} {:>12} {:>10}",
        "run", "stage", "rows", "seconds", "rows/s", "peak MiB"
    );
    for s in &output.stages {
        println!(
            "{:<8} {:<10} {:>12} {:>9.2} {:>12.0} {:>10}",
            s.run,
            s.stage,
            s.rows,
            s.seconds,
            s.rows_per_second,
            s.peak_memory_bytes.map_or("-".to_string(), |b| format!(
                "{:.0}",
                b as f64 / 1_048_576.0
            ))
        );
    }
    println!(
        "events per day: {:.0}; history run {:.1} s{}",
        output.events_per_day,
        output.history_run_seconds,
        output
            .nightly_run_seconds
            .map_or(String::new(), |s| format!("; next night's run {s:.1} s"))
    );
    let path = args.out.unwrap_or_else(|| {
        let world = if world_days == args.days {
            String::new()
        } else {
            format!("-of-{world_days}d")
        };
        PathBuf::from(format!(
            "benches/results/pipeline-{days}d{world}-{}.json",
            args.users_per_day
        ))
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&output)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("written: {}", path.display());
    Ok(())
}

/// Runs every stage of the nightly run as of `date`, one at a time, recording each.
async fn run_stages(
    config: &crate::config::PipelineConfig,
    lake: &Lake,
    date: chrono::NaiveDate,
    label: &str,
    rows: &mut Vec<StageRow>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for stage in Stage::ALL {
        let mut request = RunRequest::new(RunKind::Nightly { date }, &std_env);
        request.stages = vec![stage];
        request.backtest = BacktestPolicy::Never;
        reset_peak_memory();
        let report = run_pipeline(config, lake, request).await?;
        if let Some((stage, error)) = report.failed() {
            bail!("{label} run, stage {stage}: {error}");
        }
        if let Some(StageStatus::Done(r)) = report.status(stage) {
            rows.push(StageRow {
                run: label.to_string(),
                stage: stage.name().to_string(),
                rows: r.rows,
                seconds: r.seconds,
                rows_per_second: r.rows as f64 / r.seconds.max(1e-9),
                peak_memory_bytes: peak_memory_bytes(),
            });
        }
    }
    Ok(started.elapsed().as_secs_f64())
}
