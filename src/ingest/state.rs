//! Incremental state per stream: which partitions have landed and when they were pulled.
//! It moves forward only after the data it describes has landed, so an interrupted run
//! resumes where it stopped and never skips a partition.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError};

/// What a stream has landed, as stored in `_state/ingest/<stream>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Every landed partition and its pull.
    pub partitions: BTreeMap<NaiveDate, LandedPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandedPartition {
    pub pulled_at: DateTime<Utc>,
    pub rows: u64,
    pub calls: u32,
}

impl StreamState {
    pub async fn load(lake: &Lake, stream: &str) -> Result<StreamState, LakeError> {
        Ok(lake.read_state(&key(stream)).await?.unwrap_or_default())
    }

    pub async fn save(&self, lake: &Lake, stream: &str) -> Result<(), LakeError> {
        lake.write_state(&key(stream), self).await
    }

    /// The last day up to which every partition since `from` has landed.
    pub fn last_complete(&self, from: NaiveDate) -> Option<NaiveDate> {
        let mut last = None;
        for day in from.iter_days() {
            if !self.partitions.contains_key(&day) {
                break;
            }
            last = Some(day);
        }
        last
    }

    /// Rows of the busiest of the last `days` partitions landed before `day` (0 without
    /// history): what connectors plan pages and windows from.
    pub fn busiest_recent(&self, day: NaiveDate, days: usize) -> u64 {
        self.partitions
            .range(..day)
            .rev()
            .take(days)
            .map(|(_, p)| p.rows)
            .max()
            .unwrap_or(0)
    }

    /// Rows of the busiest of the last `days` partitions landed before `day`, or when none
    /// landed before it (a re-pull from the history's start), of the first `days` from it
    /// on. `None` when nothing has landed: the volume is unknown.
    pub fn busiest_near(&self, day: NaiveDate, days: usize) -> Option<u64> {
        if self.partitions.range(..day).next().is_some() {
            return Some(self.busiest_recent(day, days));
        }
        self.partitions
            .range(day..)
            .take(days)
            .map(|(_, p)| p.rows)
            .max()
    }

    /// Records a landed partition. Call only after the partition's commit.
    pub fn landed(&mut self, day: NaiveDate, pulled_at: DateTime<Utc>, rows: u64, calls: u32) {
        self.partitions.insert(
            day,
            LandedPartition {
                pulled_at,
                rows,
                calls,
            },
        );
    }
}

fn key(stream: &str) -> String {
    format!("ingest/{}", stream.replace('.', "/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn state_round_trips_and_finds_the_last_complete_day() {
        let lake = Lake::open("memory://").unwrap();
        let mut s = StreamState::load(&lake, "mixpanel.export").await.unwrap();
        assert_eq!(s.last_complete(d("2026-01-01")), None);
        let now = Utc::now();
        s.landed(d("2026-01-01"), now, 10, 1);
        s.landed(d("2026-01-02"), now, 12, 1);
        s.landed(d("2026-01-04"), now, 9, 1);
        s.save(&lake, "mixpanel.export").await.unwrap();
        let back = StreamState::load(&lake, "mixpanel.export").await.unwrap();
        assert_eq!(back, s);
        assert_eq!(back.last_complete(d("2026-01-01")), Some(d("2026-01-02")));
        assert_eq!(back.busiest_recent(d("2026-01-04"), 7), 12);
        assert_eq!(back.busiest_recent(d("2026-01-04"), 1), 12);
        assert_eq!(back.busiest_recent(d("2026-01-02"), 7), 10);
        assert_eq!(back.busiest_recent(d("2026-01-01"), 7), 0);
    }
}
