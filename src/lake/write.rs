//! Writing partitions: validate, encode to Parquet (zstd, or LZ4 for small files), put the
//! part files under a fresh version, then swap the manifest in with one put.

use chrono::{NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::manifest::MANIFEST_NAME;
use super::{Lake, LakeError, Manifest, ManifestFile, partition_dir, unique_suffix};
use crate::schema::TableSchema;

/// zstd level of every Parquet file: level 1 keeps writing cheap (the simulator and ingest
/// are write-bound) for a few percent more bytes than the default level 3.
const ZSTD_LEVEL: i32 = 1;
/// Part files with fewer rows are written with LZ4 instead of zstd. Polars' Parquet codec
/// makes a fresh zstd context for every page it compresses or decompresses, and setting one
/// up (allocating and clearing its tables) costs more than a small page's compression saves.
/// A long history is hundreds of small daily files (installs, the channels' daily rows, data
/// quality, every mart) that a night reads or rewrites: at 180 days of history a profile of
/// the night put 5% of its CPU in creating zstd contexts, plus the kernel clearing their
/// fresh pages. LZ4's context is free to set up; the bytes it gives up are a few kilobytes a
/// file. Large files (a day of events) keep zstd's better ratio.
const SMALL_PART_ROWS: usize = 16 * 1024;
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
    ///
    /// When the encoded file is byte for byte the partition's current one (same SHA-256,
    /// same schema version), nothing is put and the current manifest is returned: a rerun on
    /// unchanged input keeps the partition's version. That is what lets the readers that key
    /// on versions (the saved folds, the incremental MySQL publish) skip what did not change,
    /// and it saves the puts of a nightly run's restated days and of the marts' old days.
    #[tracing::instrument(level = "debug", skip_all, fields(table = %table.qualified_name(), %dt, rows = df.height()))]
    pub async fn write_partition(
        &self,
        table: &TableSchema,
        dt: NaiveDate,
        df: DataFrame,
    ) -> Result<Manifest, LakeError> {
        Ok(self.replace_partition(table, dt, df).await?.manifest)
    }

    /// [`Lake::write_partition`], also telling whether the partition was left as it was.
    pub async fn replace_partition(
        &self,
        table: &TableSchema,
        dt: NaiveDate,
        df: DataFrame,
    ) -> Result<Replaced, LakeError> {
        let mut writer = self.partition_writer(table, dt);
        let part = writer.encode(df).await?;
        if let Some(current) = self.manifest(table, dt).await?
            && writer.holds_already(&current, part.as_ref())
        {
            tracing::debug!(version = %current.version, "Partition unchanged: kept its version.");
            return Ok(Replaced {
                manifest: current,
                unchanged: true,
            });
        }
        if let Some(part) = part {
            writer.put(part).await?;
        }
        Ok(Replaced {
            manifest: writer.commit().await?,
            unchanged: false,
        })
    }
}

/// What [`Lake::replace_partition`] left: the partition's manifest, and whether it is the one
/// that was already there (the new content was byte for byte the old).
#[derive(Debug, Clone)]
pub struct Replaced {
    pub manifest: Manifest,
    pub unchanged: bool,
}

/// One part file, encoded and not yet put.
#[derive(Debug)]
struct EncodedPart {
    bytes: Vec<u8>,
    rows: u64,
    sha256: String,
}

impl PartitionWriter {
    /// Validates `df` against the table schema and lands it as the next part file.
    pub async fn write(&mut self, df: DataFrame) -> Result<(), LakeError> {
        if let Some(part) = self.encode(df).await? {
            self.put(part).await?;
        }
        Ok(())
    }

    /// Validates `df` against the table schema and encodes it as zstd Parquet; `None` for a
    /// frame without rows (a partition may be known to hold none).
    async fn encode(&self, mut df: DataFrame) -> Result<Option<EncodedPart>, LakeError> {
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
            return Ok(None);
        }
        // Column order follows the schema, so every file of a table looks the same.
        let order: Vec<PlSmallStr> = self.table.file_schema().iter_names().cloned().collect();
        let mut df = df
            .select(order)
            .map_err(|source| self.encode_error(source))?;
        let rows = df.height() as u64;
        let compression = if df.height() < SMALL_PART_ROWS {
            ParquetCompression::Lz4Raw
        } else {
            ParquetCompression::Zstd(
                polars::polars_utils::compression::ZstdLevel::try_new(ZSTD_LEVEL).ok(),
            )
        };
        // Encoding a large frame takes a while: do it off the async runtime's threads.
        let (bytes, sha256) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf)
                .with_compression(compression)
                .with_row_group_size(Some(ROW_GROUP_ROWS))
                .finish(&mut df)
                .map(|_| {
                    let sha256 = hex(&Sha256::digest(&buf));
                    (buf, sha256)
                })
        })
        .await
        .map_err(|e| {
            self.encode_error(PolarsError::ComputeError(
                format!("the Parquet encoder stopped: {e}").into(),
            ))
        })?
        .map_err(|source| self.encode_error(source))?;
        Ok(Some(EncodedPart {
            bytes,
            rows,
            sha256,
        }))
    }

    /// Puts an encoded part file under this version.
    async fn put(&mut self, part: EncodedPart) -> Result<(), LakeError> {
        let rel = format!(
            "{}/part-{:05}-{}.parquet",
            partition_dir(&self.table, self.dt),
            self.files.len(),
            self.version
        );
        let bytes = part.bytes.len() as u64;
        self.lake
            .store
            .put(&self.lake.path(&rel), PutPayload::from(part.bytes))
            .await
            .map_err(|e| self.lake.store_error("write", &rel, e))?;
        self.rows += part.rows;
        self.files.push(ManifestFile {
            path: rel,
            rows: part.rows,
            bytes,
            sha256: Some(part.sha256),
        });
        Ok(())
    }

    /// Whether `current` (the partition's manifest) already holds exactly `part` (or, for
    /// `None`, no rows), written with this schema version.
    fn holds_already(&self, current: &Manifest, part: Option<&EncodedPart>) -> bool {
        let parts: Vec<(u64, &str)> = part
            .map(|p| (p.rows, p.sha256.as_str()))
            .into_iter()
            .collect();
        self.holds(current, &parts)
    }

    /// Commits this version, unless the partition's current one holds the same part files
    /// byte for byte (same rows and SHA-256, in order, same schema version): then this
    /// version's files are deleted and the current version stays, as
    /// [`Lake::replace_partition`] keeps it for a partition of one part.
    pub async fn commit_or_keep(self) -> Result<Replaced, LakeError> {
        if let Some(current) = self.lake.manifest(&self.table, self.dt).await?
            && self.holds_same_parts(&current)
        {
            for file in &self.files {
                self.lake.delete_object(&file.path).await?;
            }
            tracing::debug!(version = %current.version, "Partition unchanged: kept its version.");
            return Ok(Replaced {
                manifest: current,
                unchanged: true,
            });
        }
        Ok(Replaced {
            manifest: self.commit().await?,
            unchanged: false,
        })
    }

    /// Whether `current` has exactly this version's part files.
    fn holds_same_parts(&self, current: &Manifest) -> bool {
        let parts: Vec<(u64, &str)> = self
            .files
            .iter()
            .map(|f| (f.rows, f.sha256.as_deref().unwrap_or_default()))
            .collect();
        self.holds(current, &parts)
    }

    /// Whether `current` is written with this schema version and holds exactly `parts`
    /// (rows and SHA-256 of each file, in order): a manifest without digests vouches for
    /// nothing.
    fn holds(&self, current: &Manifest, parts: &[(u64, &str)]) -> bool {
        current.schema_version == self.table.version
            && current.rows == parts.iter().map(|(rows, _)| rows).sum::<u64>()
            && current.files.len() == parts.len()
            && current
                .files
                .iter()
                .zip(parts)
                .all(|(file, (rows, sha256))| {
                    file.rows == *rows && file.sha256.as_deref() == Some(*sha256)
                })
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

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
