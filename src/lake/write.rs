//! Writing partitions: validate, encode to zstd Parquet, put the part files under a fresh
//! version, then swap the manifest in with one put.

use chrono::{NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use polars::prelude::*;

use super::manifest::MANIFEST_NAME;
use super::{Lake, LakeError, Manifest, ManifestFile, partition_dir, unique_suffix};
use crate::schema::TableSchema;

/// zstd level of every Parquet file: level 1 keeps writing cheap (the simulator and ingest
/// are write-bound) for a few percent more bytes than the default level 3.
const ZSTD_LEVEL: i32 = 1;
/// Rows per Parquet row group: large enough for good compression, small enough that a
/// streaming scan holds little at a time.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Writes one partition as one or more part files; nothing is visible to readers until
/// [`PartitionWriter::commit`]. Dropping the writer without committing leaves the previous
/// version in place (its files become orphans for [`Lake::sweep`]).
#[derive(Debug)]
pub struct PartitionWriter {
    lake: Lake,
    table: TableSchema,
    dt: NaiveDate,
    version: String,
    files: Vec<ManifestFile>,
    rows: u64,
}

impl Lake {
    /// Starts a new version of a partition.
    pub fn partition_writer(&self, table: &TableSchema, dt: NaiveDate) -> PartitionWriter {
        PartitionWriter {
            lake: self.clone(),
            table: table.clone(),
            dt,
            version: unique_suffix(),
            files: Vec::new(),
            rows: 0,
        }
    }

    /// Replaces a partition with `df` (one part file), atomically.
    #[tracing::instrument(level = "debug", skip_all, fields(table = %table.qualified_name(), %dt, rows = df.height()))]
    pub async fn write_partition(
        &self,
        table: &TableSchema,
        dt: NaiveDate,
        df: DataFrame,
    ) -> Result<Manifest, LakeError> {
        let mut writer = self.partition_writer(table, dt);
        writer.write(df).await?;
        writer.commit().await
    }
}

impl PartitionWriter {
    /// Validates `df` against the table schema and lands it as the next part file.
    pub async fn write(&mut self, mut df: DataFrame) -> Result<(), LakeError> {
        let label = format!("dt={}", self.dt.format("%Y-%m-%d"));
        self.table
            .validate(&df, &label)
            .map_err(|source| LakeError::Schema {
                table: self.table.qualified_name(),
                partition: self.dt,
                source,
            })?;
        if let Some(part_col) = self.table.partition.clone()
            && df.get_column_index(&part_col).is_some()
        {
            self.check_partition_column(&df, &part_col)?;
            df = df
                .drop(&part_col)
                .map_err(|source| self.encode_error(source))?;
        }
        if df.height() == 0 {
            return Ok(());
        }
        // Column order follows the schema, so every file of a table looks the same.
        let order: Vec<PlSmallStr> = self.table.file_schema().iter_names().cloned().collect();
        let mut df = df
            .select(order)
            .map_err(|source| self.encode_error(source))?;
        let rows = df.height() as u64;
        // Encoding a large frame takes a while: do it off the async runtime's threads.
        let buf = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf)
                .with_compression(ParquetCompression::Zstd(
                    polars::polars_utils::compression::ZstdLevel::try_new(ZSTD_LEVEL).ok(),
                ))
                .with_row_group_size(Some(ROW_GROUP_ROWS))
                .finish(&mut df)
                .map(|_| buf)
        })
        .await
        .map_err(|e| {
            self.encode_error(PolarsError::ComputeError(
                format!("the Parquet encoder stopped: {e}").into(),
            ))
        })?
        .map_err(|source| self.encode_error(source))?;
        let rel = format!(
            "{}/part-{:05}-{}.parquet",
            partition_dir(&self.table, self.dt),
            self.files.len(),
            self.version
        );
        let bytes = buf.len() as u64;
        self.lake
            .store
            .put(&self.lake.path(&rel), PutPayload::from(buf))
            .await
            .map_err(|e| self.lake.store_error("write", &rel, e))?;
        self.rows += rows;
        self.files.push(ManifestFile {
            path: rel,
            rows,
            bytes,
        });
        Ok(())
    }

    /// Makes this version the partition's current one with a single put.
    pub async fn commit(self) -> Result<Manifest, LakeError> {
        let manifest = Manifest {
            table: self.table.qualified_name(),
            partition: self.dt,
            version: self.version,
            schema_version: self.table.version,
            written_at: Utc::now(),
            rows: self.rows,
            files: self.files,
        };
        let rel = format!("{}/{}", partition_dir(&self.table, self.dt), MANIFEST_NAME);
        let body =
            serde_json::to_vec_pretty(&manifest).map_err(|source| LakeError::BadManifest {
                path: rel.clone(),
                source,
            })?;
        self.lake
            .store
            .put(&self.lake.path(&rel), PutPayload::from(body))
            .await
            .map_err(|e| self.lake.store_error("write", &rel, e))?;
        tracing::debug!(
            table = %manifest.table,
            partition = %manifest.partition,
            rows = manifest.rows,
            files = manifest.files.len(),
            "Committed partition."
        );
        Ok(manifest)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// A frame may carry the partition column; then every value must be the partition date.
    fn check_partition_column(&self, df: &DataFrame, name: &str) -> Result<(), LakeError> {
        let days = (self.dt - NaiveDate::default()).num_days();
        let physical = df
            .column(name)
            .and_then(|c| c.cast(&DataType::Int32))
            .map_err(|source| self.encode_error(source))?;
        let values = physical.i32().map_err(|source| self.encode_error(source))?;
        let (min, max) = (values.min(), values.max());
        let ok = [min, max]
            .iter()
            .all(|v| v.is_none_or(|d| i64::from(d) == days));
        if ok {
            return Ok(());
        }
        let show = |v: Option<i32>| {
            v.and_then(|d| {
                NaiveDate::default().checked_add_signed(chrono::Duration::days(d.into()))
            })
            .map(|d| d.to_string())
            .unwrap_or_default()
        };
        Err(LakeError::PartitionMismatch {
            table: self.table.qualified_name(),
            partition: self.dt,
            found: format!("{}..{}", show(min), show(max)),
        })
    }

    fn encode_error(&self, source: PolarsError) -> LakeError {
        LakeError::Encode {
            table: self.table.qualified_name(),
            partition: self.dt,
            source,
        }
    }
}
