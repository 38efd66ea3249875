//! `ltv lake`: upkeep of the lake.

use clap::Subcommand;

use super::{GlobalArgs, load_config, open_lake};

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Delete Parquet files that no partition manifest names (left by rewrites and by
    /// writers that died before committing).
    Sweep {
        /// Keep orphans younger than this many minutes: a writer may be about to commit
        /// them or a reader still be reading them.
        #[arg(long, default_value_t = 60)]
        grace_minutes: i64,
    },
}

pub async fn run(global: &GlobalArgs, cmd: LakeCommand) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let lake = open_lake(global, &config)?;
    match cmd {
        LakeCommand::Sweep { grace_minutes } => {
            let report = lake.sweep(chrono::Duration::minutes(grace_minutes)).await?;
            println!(
                "removed {} files ({} bytes); kept {} orphans younger than {grace_minutes} min",
                report.files_removed, report.bytes_removed, report.files_kept_young
            );
        }
    }
    Ok(())
}
