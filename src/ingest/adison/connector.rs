//! The Adison connector: reads the day's dropped report file from object storage. There is no
//! API to call, but the pull has the same contract as the others: one read counted against the
//! source's budget, a typed frame of `raw.adison_report`, and a file that is not there yet is a
//! deferral (the next run looks again), never an empty day.

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};

use super::{STREAM, TABLE, parse_report};
use crate::config::{AdisonSource, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, partition_label,
};
use crate::ingest::http::CallError;
use crate::ingest::state::StreamState;
use crate::lake::Lake;
use crate::schema::SchemaError;

/// Where the simulated world's files are dropped, under the lake's root.
pub const SIM_DROP_PREFIX: &str = "_drops/adison";

/// Adison's daily files in a drop folder.
#[derive(Debug)]
pub struct AdisonConnector {
    /// The drop folder, opened as a store.
    drop: Lake,
    /// Path inside `drop` the files sit under (empty: its root).
    prefix: String,
    settings: AdisonSource,
    streams: Vec<StreamSpec>,
}

impl AdisonConnector {
    /// `drop` is the store the files are dropped into and `prefix` the folder inside it.
    pub fn new(settings: &AdisonSource, drop: Lake, prefix: &str) -> Result<Self, SchemaError> {
        Ok(AdisonConnector {
            drop,
            prefix: prefix.trim_matches('/').to_string(),
            settings: settings.clone(),
            streams: vec![StreamSpec::new(STREAM, TABLE, Cursor::ReportDay)?],
        })
    }

    fn object(&self, day: NaiveDate) -> String {
        let name = self.settings.file_name(day);
        if self.prefix.is_empty() {
            name
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

const SCOPE: &str = "adison";

#[async_trait]
impl Connector for AdisonConnector {
    fn source(&self) -> SourceKind {
        SourceKind::Adison
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn plan(
        &self,
        _stream: &StreamSpec,
        _day: NaiveDate,
        _history: &StreamState,
    ) -> Vec<PlannedCalls> {
        vec![PlannedCalls {
            scope: SCOPE.into(),
            calls: 1,
        }]
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        if let Err(over) = ctx.budget.acquire(SCOPE, Utc::now()).await? {
            return Err(CallError::OverBudget(over, SCOPE.into()).into());
        }
        let object = self.object(day);
        let Some(body) = self.drop.read_object(&object).await? else {
            return Err(PullError::deferred(
                &stream.name,
                day,
                format!("{object} has not been dropped in {} yet", self.drop.url()),
            ));
        };
        let name = self.settings.file_name(day);
        let frame = parse_report(&body, &name, ctx.pulled_at, &partition_label(day))?;
        Ok(Pulled {
            frames: vec![frame],
            calls: 1,
            retries: 0,
        })
    }
}
