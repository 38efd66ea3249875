//! The simulated world as a perfect cleanse would leave it: `clean.events` and
//! `clean.installs` shaped frames built from the `sim/` tables and the ground truth, without
//! the connectors, the wire formats or the cleansing rules.
//!
//! Why: the model evaluation on simulated worlds (`tests/backtest_sim.rs`,
//! `benches/backtest.rs`) must measure the models, not the cleanse; the cleanse has its own
//! ground-truth tests. Going through the real pipeline would also cost minutes per world
//! where this costs seconds, and the figures need five worlds of several months each.
//!
//! What "perfect" means here: garbled resends (`malformed` set) and duplicate sends dropped
//! (one sound row per user and `$insert_id`), test and fraudulent users flagged from the
//! truth, every event carrying the true person as `user_key`, revenue in US dollars at each
//! day's simulated FX rate (the truth's own currency, so predictions compare with
//! `truth.users` directly).

use polars::prelude::*;

use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// Why the view could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CleanViewError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// The perfectly cleaned world.
pub struct CleanView {
    /// `user_key`, `event`, `time`, `revenue_reporting_micros` (USD micros): the columns the
    /// features and models read from `clean.events`.
    pub events: LazyFrame,
    /// `user_key`, `install_time`, `report_date`, `platform`, `country`, `channel`,
    /// `campaign_id`, `is_first_install`, `is_fraud`, `is_test`: as `clean.installs`.
    pub installs: LazyFrame,
}

/// Builds the view over every simulated day in the lake.
pub async fn clean_view(lake: &Lake) -> Result<CleanView, CleanViewError> {
    let registry = Registry::embedded()?;
    let all = DateRange::all();
    let events = lake.scan(registry.get("sim.events")?, all).await?;
    let installs = lake.scan(registry.get("sim.installs")?, all).await?;
    let users = lake.scan(registry.get("truth.users")?, all).await?;
    let fx = lake.scan(registry.get("sim.fx_rates")?, all).await?;
    Ok(CleanView {
        events: clean_events(real_sends(events), fx),
        installs: clean_installs(installs, users),
    })
}

/// One row per event the app really had: garbled resends out (they repeat a send's
/// `$insert_id` but carry no event of their own, and their money is not real), then one row
/// of each `$insert_id` a duplicate send repeats.
pub fn real_sends(events: LazyFrame) -> LazyFrame {
    events.filter(col("malformed").is_null()).unique_stable(
        Some(cols(["user_id", "insert_id"])),
        UniqueKeepStrategy::First,
    )
}

/// Events keyed by the true person, revenue converted to USD micros at the day's rate.
pub fn clean_events(events: LazyFrame, fx: LazyFrame) -> LazyFrame {
    events
        .join(
            fx.select([col("dt"), col("currency"), col("usd_per_unit")]),
            [col("dt"), col("currency")],
            [col("dt"), col("currency")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            user_key(col("user_id")),
            col("event"),
            col("time"),
            (col("revenue_micros").cast(DataType::Float64) * col("usd_per_unit"))
                .round(0, RoundMode::HalfAwayFromZero)
                .cast(DataType::Int64)
                .alias("revenue_reporting_micros"),
        ])
}

/// Each person's first install, flagged from the truth; later installs of the same person
/// (QA devices reinstalling) are kept and marked as not first.
pub fn clean_installs(installs: LazyFrame, users: LazyFrame) -> LazyFrame {
    let truth = users.select([
        col("user_id"),
        col("is_test"),
        col("fraud_kind").is_not_null().alias("is_fraud"),
    ]);
    installs
        .join(
            truth,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["user_id", "install_time"], SortMultipleOptions::default())
        .select([
            user_key(col("user_id")),
            col("install_time"),
            col("dt").alias("report_date"),
            col("platform"),
            col("country"),
            col("channel"),
            col("campaign_id"),
            col("user_id").is_first_distinct().alias("is_first_install"),
            col("is_fraud").fill_null(lit(false)),
            col("is_test").fill_null(lit(false)),
        ])
}

fn user_key(user_id: Expr) -> Expr {
    (lit("u") + user_id.cast(DataType::String)).alias("user_key")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{EMBEDDED_DEMO, PipelineConfig, std_env};

    /// The view's events of the demo world shrunk, garbled resends at `rate`.
    async fn view_events(rate: f64) -> (DataFrame, usize) {
        let config = PipelineConfig::from_toml(EMBEDDED_DEMO, "demo", &std_env).unwrap();
        let mut sim = config.sim.unwrap();
        sim.days = std::num::NonZeroU32::new(2).unwrap();
        sim.users_per_day = 300;
        sim.rates.malformed_event = rate;
        let lake = Lake::open("memory://").unwrap();
        crate::sim::simulate(&sim, &lake).await.unwrap();
        let sim_events = lake
            .scan(
                Registry::embedded().unwrap().get("sim.events").unwrap(),
                DateRange::all(),
            )
            .await
            .unwrap();
        let garbled = sim_events
            .clone()
            .filter(col("malformed").is_not_null())
            .collect()
            .unwrap()
            .height();
        // Whatever the order of the sends, the real ones are kept: one per $insert_id, and
        // never a garbled resend in place of its original.
        let real = real_sends(sim_events.clone().reverse()).collect().unwrap();
        let ids = sim_events
            .select([col("insert_id").n_unique()])
            .collect()
            .unwrap();
        assert_eq!(
            real.height() as u64,
            ids.column("insert_id")
                .unwrap()
                .u32()
                .unwrap()
                .get(0)
                .unwrap() as u64
        );
        assert_eq!(
            real.column("malformed").unwrap().null_count(),
            real.height()
        );
        // The FX join does not keep the row order: compare in one order.
        let events = clean_view(&lake)
            .await
            .unwrap()
            .events
            .sort(
                ["user_key", "time", "event", "revenue_reporting_micros"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .collect()
            .unwrap();
        (events, garbled)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbled_resends_never_reach_the_perfect_view() {
        let (without, none) = view_events(0.0).await;
        let (with, garbled) = view_events(0.05).await;
        assert_eq!(none, 0);
        assert!(garbled > 100, "too few garbled resends: {garbled}");
        assert!(
            with.equals_missing(&without),
            "garbled resends changed the view"
        );
    }
}
