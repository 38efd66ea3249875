//! The per-partition manifest: the one object whose put makes a partition version visible.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::{DateRange, Lake, LakeError, PARTITION_FOLDER_KEY, partition_dir};
use crate::schema::TableSchema;

pub(crate) const MANIFEST_NAME: &str = "_manifest.json";

/// Manifests read at once when listing a table's partitions with their manifests.
pub(super) const MANIFESTS_AT_ONCE: usize = 16;

/// The longest range whose manifests are read by name rather than found by listing the
/// table (see [`Lake::manifests_in`]): a month, an ad-hoc recompute's usual span.
const READ_DIRECTLY_DAYS: u32 = 31;

/// Which files make up a partition's current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Qualified table name, e.g. `sim.events`.
    pub table: String,
    pub partition: NaiveDate,
    /// Unique id of this version; part of every file name.
    pub version: String,
    /// The table schema's `version` the files were written with; manifests from before
    /// versions were recorded read as 1.
    #[serde(default = "first_schema_version")]
    pub schema_version: u32,
    pub written_at: DateTime<Utc>,
    /// Rows over all files.
    pub rows: u64,
    /// Lake-relative paths, in part order. Empty for a partition known to hold no rows.
    pub files: Vec<ManifestFile>,
}

fn first_schema_version() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file's bytes, hex: a rewrite with the same bytes keeps the version
    /// (see [`Lake::write_partition`]). Absent in manifests written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Lake {
    /// The current manifest of a partition, or `None` when the partition was never
    /// committed (files without a manifest are invisible).
    pub async fn manifest(
        &self,
        table: &TableSchema,
        dt: NaiveDate,
    ) -> Result<Option<Manifest>, LakeError> {
        let rel = format!("{}/{}", partition_dir(table, dt), MANIFEST_NAME);
        let Some(bytes) = self.get_optional(&rel).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LakeError::BadManifest { path: rel, source })
    }

    /// The current manifest of every committed partition of `table`.
    pub async fn partition_manifests(
        &self,
        table: &TableSchema,
    ) -> Result<BTreeMap<NaiveDate, Manifest>, LakeError> {
        Ok(self
            .manifests_in(table, DateRange::all())
            .await?
            .into_iter()
            .collect())
    }

    /// The current manifests of `table`'s committed partitions within `range`, by date, read
    /// [`MANIFESTS_AT_ONCE`] at a time (each is a round trip on S3, and a scan of the history
    /// asks for hundreds).
    ///
    /// A range of at most [`READ_DIRECTLY_DAYS`] days asks for its days' manifests by name;
    /// a longer one lists the table first. Listing reads the whole history's folder (on
    /// disk, a `stat` of every file of every partition), and a night asks for single days
    /// of a score of tables: at 180 days the cleanse stage made 210,000 `stat` calls
    /// against 44,000 at 30. A day without a partition is simply not found either way.
    pub(super) async fn manifests_in(
        &self,
        table: &TableSchema,
        range: DateRange,
    ) -> Result<Vec<(NaiveDate, Manifest)>, LakeError> {
        let days: Vec<NaiveDate> = match range.days_if_at_most(READ_DIRECTLY_DAYS) {
            Some(days) => days,
            None => self
                .partitions(table)
                .await?
                .into_iter()
                .filter(|dt| range.contains(*dt))
                .collect(),
        };
        futures::stream::iter(days)
            .map(|dt| async move {
                Ok::<_, LakeError>(self.manifest(table, dt).await?.map(|m| (dt, m)))
            })
            .buffered(MANIFESTS_AT_ONCE)
            .try_filter_map(|found| async move { Ok(found) })
            .try_collect()
            .await
    }

    /// Partition dates of a table that have a committed manifest, sorted.
    pub async fn partitions(&self, table: &TableSchema) -> Result<Vec<NaiveDate>, LakeError> {
        Ok(self
            .listed_manifests(table)
            .await?
            .into_iter()
            .map(|(dt, _)| dt)
            .collect())
    }

    /// A stamp per committed partition of `table` that changes whenever its manifest is
    /// put again (the store's entity tag, else its modification time and size), from the
    /// same single listing as [`Lake::partitions`]: enough to tell whether a table changed
    /// without reading a manifest.
    pub async fn manifest_stamps(
        &self,
        table: &TableSchema,
    ) -> Result<Vec<(NaiveDate, String)>, LakeError> {
        Ok(self
            .listed_manifests(table)
            .await?
            .into_iter()
            .map(|(dt, meta)| {
                let stamp = meta.e_tag.unwrap_or_else(|| {
                    format!(
                        "{}-{}",
                        meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                        meta.size
                    )
                });
                (dt, stamp)
            })
            .collect())
    }

    /// The manifests of `table`'s committed partitions, sorted by date, from one listing of
    /// the table's folder. Asking for each partition's manifest (a round trip each on S3,
    /// a blocking-pool hop each on disk) made every scan cost a call per partition of the
    /// whole history, whatever its date range.
    async fn listed_manifests(
        &self,
        table: &TableSchema,
    ) -> Result<Vec<(NaiveDate, ObjectMeta)>, LakeError> {
        let dir = super::table_dir(table);
        let objects: Vec<ObjectMeta> = self
            .store
            .list(Some(&self.path(&dir)))
            .try_collect()
            .await
            .map_err(|e| self.store_error("list", &dir, e))?;
        let mut found: Vec<(NaiveDate, ObjectMeta)> = objects
            .into_iter()
            .filter_map(|meta| {
                let rel = self.relative(&meta.location);
                let (folder, name) = rel
                    .strip_prefix(dir.as_str())?
                    .trim_start_matches('/')
                    .split_once('/')?;
                let day = folder
                    .strip_prefix(PARTITION_FOLDER_KEY)?
                    .strip_prefix('=')?;
                let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
                (name == MANIFEST_NAME).then_some((date, meta))
            })
            .collect();
        found.sort_by_key(|(dt, _)| *dt);
        Ok(found)
    }

    pub(crate) async fn get_optional(&self, rel: &str) -> Result<Option<bytes::Bytes>, LakeError> {
        match self.store.get(&self.path(rel)).await {
            Ok(res) => res
                .bytes()
                .await
                .map(Some)
                .map_err(|e| self.store_error("read", rel, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error("read", rel, e)),
        }
    }
}
