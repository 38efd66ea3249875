//! Streaming a table of the world into date partitions. Users of one install day write
//! rows into many later days, so each day keeps a buffer; a full buffer becomes a part file
//! at once, and a day's partition is committed as soon as no later cohort can add to it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::SimError;
use super::columns::Columns;
use crate::lake::{Lake, PartitionWriter};
use crate::schema::TableSchema;

/// Rows a day's buffer holds before it is written out as a part file.
const FLUSH_ROWS: usize = 1 << 20;
/// Rows all buffers of one table may hold together before the largest are written out.
const TABLE_BUDGET_ROWS: usize = 6 << 20;

pub struct TableSink<C: Columns> {
    table: TableSchema,
    /// The world's first day: buffers are keyed by days since it (may be negative for
    /// tables cut in a zone west of UTC).
    start: NaiveDate,
    buffers: BTreeMap<i64, C>,
    writers: BTreeMap<i64, PartitionWriter>,
    /// Rows written so far.
    pub rows: u64,
    pub partitions: u64,
}

impl<C: Columns> TableSink<C> {
    pub fn new(table: TableSchema, start: NaiveDate) -> Self {
        TableSink {
            table,
            start,
            buffers: BTreeMap::new(),
            writers: BTreeMap::new(),
            rows: 0,
            partitions: 0,
        }
    }

    /// The buffer of world day `day`. Call [`TableSink::settle`] every so often, so large
    /// buffers get written out.
    pub fn day(&mut self, day: i64) -> &mut C {
        self.buffers.entry(day).or_default()
    }

    fn buffered(&self) -> usize {
        self.buffers.values().map(Columns::len).sum()
    }

    /// Writes out the largest buffers while the table holds too many rows.
    pub async fn settle(&mut self, lake: &Lake) -> Result<(), SimError> {
        let mut buffered = self.buffered();
        if buffered < TABLE_BUDGET_ROWS {
            return Ok(());
        }
        let mut sizes: Vec<(usize, i64)> =
            self.buffers.iter().map(|(d, b)| (b.len(), *d)).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        for (len, day) in sizes {
            if buffered < TABLE_BUDGET_ROWS / 2 && len < FLUSH_ROWS {
                break;
            }
            self.flush_day(lake, day).await?;
            buffered -= len;
        }
        Ok(())
    }

    /// Commits every partition up to and including `day`, creating empty ones for days
    /// that received no rows (a day with no rows is a fact, not a gap).
    pub async fn complete_through(
        &mut self,
        lake: &Lake,
        first: i64,
        day: i64,
    ) -> Result<(), SimError> {
        for d in first..=day {
            self.flush_day(lake, d).await?;
            let writer = match self.writers.remove(&d) {
                Some(w) => w,
                None => lake.partition_writer(&self.table, self.date(d)?),
            };
            writer.commit().await?;
            self.partitions += 1;
        }
        Ok(())
    }

    async fn flush_day(&mut self, lake: &Lake, day: i64) -> Result<(), SimError> {
        let Some(buf) = self.buffers.remove(&day) else {
            return Ok(());
        };
        let n = buf.len();
        if n == 0 {
            return Ok(());
        }
        let date = self.date(day)?;
        let frame = buf.into_frame().map_err(|source| SimError::Frame {
            table: self.table.qualified_name(),
            source,
        })?;
        let writer = match self.writers.entry(day) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(lake.partition_writer(&self.table, date))
            }
        };
        writer.write(frame).await?;
        self.rows += n as u64;
        Ok(())
    }

    fn date(&self, day: i64) -> Result<NaiveDate, SimError> {
        self.start
            .checked_add_signed(chrono::Duration::days(day))
            .ok_or(SimError::DateOutOfRange { day })
    }
}
