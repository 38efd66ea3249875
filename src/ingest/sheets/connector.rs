//! The Google Sheets connector: one `spreadsheets.values.get` call per hand-kept range, taken
//! as a daily snapshot (people edit the sheet; history is what we landed on earlier days).

use async_trait::async_trait;
use chrono::NaiveDate;

use super::{SheetRange, parse_values};
use crate::config::{GoogleSheetsSource, Secret, SheetRanges, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
    partition_label,
};
use crate::ingest::http::default_verdict;
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// The team's spreadsheet.
#[derive(Debug)]
pub struct SheetsConnector {
    base: String,
    spreadsheet_id: String,
    key: Secret,
    ranges: SheetRanges,
    streams: Vec<StreamSpec>,
}

impl SheetsConnector {
    /// `base_url` is the API root: `https://sheets.googleapis.com`, or the local server's
    /// `/sheets`.
    pub fn new(
        settings: &GoogleSheetsSource,
        base_url: &str,
        key: Secret,
    ) -> Result<Self, SchemaError> {
        let streams = SheetRange::ALL
            .into_iter()
            .map(|r| StreamSpec::new(r.stream(), r.table(), Cursor::Snapshot))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SheetsConnector {
            base: base_url.trim_end_matches('/').to_string(),
            spreadsheet_id: settings.spreadsheet_id.clone(),
            key,
            ranges: settings.ranges.clone(),
            streams,
        })
    }

    fn range_of(stream: &StreamSpec) -> Option<SheetRange> {
        SheetRange::ALL
            .into_iter()
            .find(|r| r.stream() == stream.name)
    }
}

/// The API's per-user read quota is what the budget counts.
const SCOPE: &str = "google_sheets";

#[async_trait]
impl Connector for SheetsConnector {
    fn source(&self) -> SourceKind {
        SourceKind::GoogleSheets
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
        let partition = partition_label(day);
        let range = Self::range_of(stream).ok_or_else(|| PullError::Source {
            stream: stream.name.clone(),
            partition: partition.clone(),
            message: "not a range this connector reads".into(),
        })?;
        // The A1 range is one path segment, percent-encoded (tab names may hold spaces).
        let mut url = reqwest::Url::parse(&format!(
            "{}/v4/spreadsheets/{}/values/",
            self.base, self.spreadsheet_id
        ))
        .map_err(|e| PullError::Source {
            stream: stream.name.clone(),
            partition: partition.clone(),
            message: format!("bad base URL: {e}"),
        })?;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(range.a1_range(&self.ranges));
        }
        let (frame, calls, retries) = fetch_parsed(
            ctx,
            SCOPE,
            || {
                ctx.client.get(url.clone()).query(&[
                    ("majorDimension", "ROWS"),
                    ("valueRenderOption", "FORMATTED_VALUE"),
                    ("key", self.key.expose()),
                ])
            },
            default_verdict,
            |body| parse_values(body, range, ctx.pulled_at, &partition),
        )
        .await?;
        Ok(Pulled {
            frames: vec![frame],
            calls,
            retries,
        })
    }
}
