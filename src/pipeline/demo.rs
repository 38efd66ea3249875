//! `ltv demo`: simulate a world, serve it through the local API servers, run the nightly job
//! over it, and hold the predictions against what the world's users really spent.
//!
//! The simulator knows each user's revenue to day 180 (`truth.users`), far past the data the
//! pipeline sees, so the demo can say how far off each campaign's predicted D90 is. Users
//! are matched through `sim.installs` (the AppsFlyer id of a person's first install is their
//! `user_key`).

use std::fmt;

use chrono::Duration;
use polars::prelude::*;
use serde::Serialize;

use super::run::{PipelineError, RunKind, RunReport, RunRequest, run_pipeline};
use crate::config::{PipelineConfig, SimConfig};
use crate::ingest::sources::drop_simulated_adison_files;
use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};
use crate::sim::SimError;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    pub sim: SimConfig,
}

/// What the demo can fail on besides a stage (which is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("simulating the world: {0}")]
    Sim(#[from] SimError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("comparing with the truth: {0}")]
    Polars(#[from] PolarsError),
    #[error(
        "the demo compares D30, D90 or D180 predictions with the truth, but the pipeline's horizons are {0:?}"
    )]
    NoComparableHorizon(Vec<u32>),
}

/// One campaign's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoCampaign {
    pub channel: String,
    pub campaign_id: String,
    /// Over the whole world, reporting-currency micros.
    pub spend_micros: i64,
    /// Attributed first installs, fraud and test excluded.
    pub installs: i64,
    /// Users with a prediction (their window closed before the data's end).
    pub predicted_users: i64,
    /// Sum of the predicted users' predicted revenue at the horizon.
    pub predicted_micros: i64,
    /// Sum of the same users' true revenue at the horizon (the simulator's).
    pub true_micros: i64,
    /// predicted / true - 1; null when the true value is zero.
    pub error: Option<f64>,
}

/// The demo's result.
#[derive(Debug, Serialize)]
pub struct DemoOutput {
    pub horizon_days: u32,
    pub currency: String,
    pub run: RunReport,
    pub campaigns: Vec<DemoCampaign>,
    /// |predicted - true| / true over campaigns with at least 100 predicted users.
    pub mean_abs_error: Option<f64>,
    /// Sum predicted / sum true over every predicted user.
    pub total_ratio: Option<f64>,
}

/// Simulates `request.sim` into `lake` (which should be empty), runs the nightly job as of
/// the day after the world's last, and compares its predictions with the truth.
pub async fn run_demo(
    config: &PipelineConfig,
    lake: &Lake,
    request: DemoRequest,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<DemoOutput, DemoError> {
    let horizon = [90, 30, 180]
        .into_iter()
        .find(|h| config.analysis.horizons.contains(h))
        .ok_or_else(|| DemoError::NoComparableHorizon(config.analysis.horizons.clone()))?;
    let mut config = config.clone();
    config.sim = Some(request.sim.clone());
    let report = crate::sim::simulate(&request.sim, lake).await?;
    tracing::info!(?report, "World simulated.");
    let first = request.sim.start_date;
    let last = first + Duration::days(i64::from(request.sim.days.get()) - 1);
    drop_simulated_adison_files(&config, lake, DateRange::new(first, last)).await?;
    let mut run = RunRequest::new(
        RunKind::Nightly {
            date: last + Duration::days(1),
        },
        env,
    );
    run.progress = true;
    let run = run_pipeline(&config, lake, run).await?;
    let campaigns = if run.failed().is_some() {
        Vec::new()
    } else {
        compare(lake, horizon).await?
    };
    let scored: Vec<f64> = campaigns
        .iter()
        .filter(|c| c.predicted_users >= 100)
        .filter_map(|c| c.error.map(f64::abs))
        .collect();
    let predicted: i64 = campaigns.iter().map(|c| c.predicted_micros).sum();
    let truth: i64 = campaigns.iter().map(|c| c.true_micros).sum();
    Ok(DemoOutput {
        horizon_days: horizon,
        currency: config.pipeline.reporting_currency.code().to_string(),
        run,
        mean_abs_error: (!scored.is_empty())
            .then(|| scored.iter().sum::<f64>() / scored.len() as f64),
        total_ratio: (truth > 0).then(|| predicted as f64 / truth as f64),
        campaigns,
    })
}

async fn scan(lake: &Lake, name: &str) -> Result<LazyFrame, DemoError> {
    let registry = Registry::embedded()?;
    Ok(lake.scan(registry.get(name)?, DateRange::all()).await?)
}

/// Per campaign: spend and installs from `mart.campaign_daily`, predictions from
/// `mart.user_ltv`, truth from `truth.users` through `sim.installs`, in one plan.
async fn compare(lake: &Lake, horizon: u32) -> Result<Vec<DemoCampaign>, DemoError> {
    let keys = [col("channel"), col("campaign_id")];
    let totals = scan(lake, "mart.campaign_daily")
        .await?
        .group_by(keys.clone())
        .agg([col("spend_micros").sum(), col("installs").sum()]);
    let truth = scan(lake, "sim.installs")
        .await?
        .select([col("appsflyer_id").alias("user_key"), col("user_id")])
        .join(
            scan(lake, "truth.users").await?.select([
                col("user_id"),
                col(format!("revenue_d{horizon}_micros")).alias("_true"),
            ]),
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([col("user_key"), col("_true")]);
    let predicted = scan(lake, "mart.user_ltv")
        .await?
        .join(
            truth,
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by(keys.clone())
        .agg([
            len().cast(DataType::Int64).alias("predicted_users"),
            col(format!("pred_d{horizon}_micros")).sum().alias("_pred"),
            col("_true").fill_null(lit(0i64)).sum().alias("_true"),
        ]);
    let zero = |name: &str| col(name).fill_null(lit(0i64)).cast(DataType::Int64);
    let rows = totals
        .join(
            predicted,
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .select([
            col("channel"),
            col("campaign_id"),
            zero("spend_micros"),
            zero("installs"),
            zero("predicted_users"),
            zero("_pred"),
            zero("_true"),
        ])
        // Campaigns that only ever had test traffic have neither installs nor predictions.
        .filter(
            col("installs")
                .gt(lit(0i64))
                .or(col("predicted_users").gt(lit(0i64)))
                .or(col("spend_micros").gt(lit(0i64))),
        )
        .sort(["channel", "campaign_id"], SortMultipleOptions::default())
        .collect()?;

    let text = |name: &str| -> Result<Vec<String>, PolarsError> {
        Ok(rows
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let int = |name: &str| -> Result<Vec<i64>, PolarsError> {
        Ok(rows
            .column(name)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let (channel, campaign) = (text("channel")?, text("campaign_id")?);
    let (spend, installs) = (int("spend_micros")?, int("installs")?);
    let (users, pred, truth) = (int("predicted_users")?, int("_pred")?, int("_true")?);
    Ok((0..rows.height())
        .map(|k| DemoCampaign {
            channel: channel[k].clone(),
            campaign_id: campaign[k].clone(),
            spend_micros: spend[k],
            installs: installs[k],
            predicted_users: users[k],
            predicted_micros: pred[k],
            true_micros: truth[k],
            error: (truth[k] > 0).then(|| pred[k] as f64 / truth[k] as f64 - 1.0),
        })
        .collect())
}

impl fmt::Display for DemoOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.run)?;
        if self.run.failed().is_some() {
            return Ok(());
        }
        let money = |m: i64| format_money(m);
        let h = self.horizon_days;
        writeln!(f)?;
        writeln!(
            f,
            "predicted vs true D{h} revenue per campaign ({}; predicted users are those whose \
             observation window closed)",
            self.currency
        )?;
        writeln!(
            f,
            "{:<18} {:<22} {:>12} {:>8} {:>9} {:>14} {:>14} {:>8}",
            "channel",
            "campaign",
            "spend",
            "installs",
            "predicted",
            &format!("pred D{h}"),
            &format!("true D{h}"),
            "error"
        )?;
        for c in &self.campaigns {
            writeln!(
                f,
                "{:<18} {:<22} {:>12} {:>8} {:>9} {:>14} {:>14} {:>8}",
                c.channel,
                c.campaign_id,
                money(c.spend_micros),
                c.installs,
                c.predicted_users,
                money(c.predicted_micros),
                money(c.true_micros),
                c.error
                    .map_or("-".to_string(), |e| format!("{:+.1}%", e * 100.0)),
            )?;
        }
        if let Some(mae) = self.mean_abs_error {
            writeln!(
                f,
                "mean |error| over campaigns with >= 100 predicted users: {:.1}%",
                mae * 100.0
            )?;
        }
        if let Some(r) = self.total_ratio {
            writeln!(f, "all campaigns: predicted / true = {r:.3}")?;
        }
        Ok(())
    }
}

/// Micros as money with thousands separators and cents: 1234567890 -> 1,234.57.
pub fn format_money(micros: i64) -> String {
    let cents = (micros as f64 / 10_000.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (k, ch) in whole.chars().enumerate() {
        if k > 0 && (whole.len() - k) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::format_money;

    #[test]
    fn money_reads_like_money() {
        assert_eq!(format_money(0), "0.00");
        assert_eq!(format_money(1_234_567_890), "1,234.57");
        assert_eq!(format_money(-5_000_000), "-5.00");
        assert_eq!(format_money(999_995_000_000), "999,995.00");
    }
}
