//! What a run leaves under `_state/`: its record (`runs/<key>`), read back to resume it, and
//! the nightly run's watermarks (`pipeline/…`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Stage;
use crate::lake::{Lake, LakeError};

/// The state key of the last day the clean layer was rebuilt through by a nightly run.
pub(super) const CLEANED_THROUGH_KEY: &str = "pipeline/cleaned_through";
/// The state key of the last backtest a run made.
pub(super) const LAST_BACKTEST_KEY: &str = "pipeline/last_backtest";

/// One finished stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub finished_at: DateTime<Utc>,
    pub seconds: f64,
    /// Rows the stage wrote (landed, cleaned, predicted, built or published).
    pub rows: u64,
    /// One line on what it did.
    pub detail: String,
}

/// A run's record: the days its cleanse and process cover and the stages that finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub key: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub stages: BTreeMap<Stage, StageRecord>,
    /// The last failure, cleared when the run completes.
    pub failure: Option<String>,
}

impl RunRecord {
    pub fn state_key(key: &str) -> String {
        format!("runs/{key}")
    }

    pub async fn load(lake: &Lake, key: &str) -> Result<Option<RunRecord>, LakeError> {
        lake.read_state(&RunRecord::state_key(key)).await
    }

    pub async fn save(&self, lake: &Lake) -> Result<(), LakeError> {
        lake.write_state(&RunRecord::state_key(&self.key), self)
            .await
    }
}

/// A date watermark (`{"date": "YYYY-MM-DD"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Watermark {
    pub date: NaiveDate,
}

pub(super) async fn read_watermark(lake: &Lake, key: &str) -> Result<Option<NaiveDate>, LakeError> {
    Ok(lake.read_state::<Watermark>(key).await?.map(|w| w.date))
}

/// Moves a watermark forward to `date`, never back, with a conditional write: two runs
/// advancing it at once both count.
pub(super) async fn advance_watermark(
    lake: &Lake,
    key: &str,
    date: NaiveDate,
) -> Result<(), LakeError> {
    lake.update_state::<Watermark, _>(key, |current| match current {
        Some(w) if w.date >= date => w,
        _ => Watermark { date },
    })
    .await?;
    Ok(())
}
