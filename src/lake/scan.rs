//! Reading: partitions pruned by date through their manifests, then one lazy Parquet scan
//! over their files, the partition date read back from each file's `dt=` folder.

use std::path::PathBuf;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use polars::prelude::*;

use super::manifest::MANIFESTS_AT_ONCE;
use super::{Backend, DateRange, Lake, LakeError, PARTITION_FOLDER_KEY, date_lit};
use crate::schema::TableSchema;

impl Lake {
    /// A lazy frame over the committed partitions of `table` within `range`, with the
    /// table's columns in schema order (the partition column included). Partitions outside
    /// the range are never opened; a range with no data gives an empty frame of the right
    /// schema.
    pub async fn scan(
        &self,
        table: &TableSchema,
        range: DateRange,
    ) -> Result<LazyFrame, LakeError> {
        let manifests = self.manifests_in(table, range).await?;
        if let Some((dt, m)) = manifests
            .iter()
            .find(|(_, m)| m.schema_version < table.oldest_readable_version)
        {
            return Err(LakeError::OldLayout {
                table: table.qualified_name(),
                partition: *dt,
                found: m.schema_version,
                oldest: table.oldest_readable_version,
            });
        }
        let wanted: Vec<(NaiveDate, u32, String)> = manifests
            .into_iter()
            .flat_map(|(dt, m)| {
                let version = m.schema_version;
                m.files.into_iter().map(move |f| (dt, version, f.path))
            })
            .collect();
        // Remote files are copied a few at a time too: a round trip each.
        let files: Vec<(NaiveDate, u32, PathBuf)> = futures::stream::iter(wanted)
            .map(|(dt, version, rel)| async move {
                Ok::<_, LakeError>((dt, version, self.local_copy(&rel).await?))
            })
            .buffered(MANIFESTS_AT_ONCE)
            .try_collect()
            .await?;
        // Consecutive partitions written with the same schema version share one scan:
        // a scan node per partition made the plan, and its reading, grow with the history
        // (2.5 times slower over 180 daily files than one scan of them all).
        let mut runs: Vec<FileRun> = Vec::new();
        for (dt, schema_version, path) in files {
            match runs.last_mut() {
                Some(run) if run.schema_version == schema_version => run.files.push((dt, path)),
                _ => runs.push(FileRun {
                    schema_version,
                    files: vec![(dt, path)],
                }),
            }
        }
        let scan_error = |source| LakeError::Scan {
            table: table.qualified_name(),
            source,
        };
        let columns: Vec<Expr> = table
            .polars_schema()
            .iter_names()
            .map(|n| col(n.clone()))
            .collect();
        if runs.is_empty() {
            return Ok(DataFrame::empty_with_schema(&table.polars_schema()).lazy());
        }
        let mut frames = Vec::with_capacity(runs.len());
        for run in runs {
            for lf in run.scans(table).map_err(scan_error)? {
                frames.push(lf.select(columns.clone()));
            }
        }
        if frames.len() == 1
            && let Some(lf) = frames.pop()
        {
            return Ok(lf);
        }
        concat(frames, UnionArgs::default()).map_err(scan_error)
    }

    /// Total committed rows of `table` within `range`, from the manifests alone.
    pub async fn row_count(&self, table: &TableSchema, range: DateRange) -> Result<u64, LakeError> {
        let mut rows = 0;
        for dt in self.partitions(table).await? {
            if range.contains(dt)
                && let Some(m) = self.manifest(table, dt).await?
            {
                rows += m.rows;
            }
        }
        Ok(rows)
    }

    /// A local file path Polars can scan for a lake-relative object. Local lakes answer
    /// with the file itself; other stores copy the object into the cache once (its name
    /// holds its version, so a cached copy never goes stale).
    async fn local_copy(&self, rel: &str) -> Result<PathBuf, LakeError> {
        match &self.backend {
            Backend::Local { root } => Ok(root.join(rel)),
            Backend::Remote { cache_dir } => {
                let target = cache_dir.join(rel);
                if target.exists() {
                    return Ok(target);
                }
                let bytes = self
                    .store
                    .get(&self.path(rel))
                    .await
                    .map_err(|e| self.store_error("read", rel, e))?
                    .bytes()
                    .await
                    .map_err(|e| self.store_error("read", rel, e))?;
                let cache_error = |source| LakeError::Cache {
                    path: target.clone(),
                    source,
                };
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(cache_error)?;
                }
                // Write beside, then rename: a concurrent scan never sees a half copy.
                let tmp = target.with_extension(format!("tmp-{}", super::unique_suffix()));
                tokio::fs::write(&tmp, &bytes).await.map_err(cache_error)?;
                tokio::fs::rename(&tmp, &target)
                    .await
                    .map_err(cache_error)?;
                Ok(target)
            }
        }
    }
}

/// Files of consecutive partitions written with one schema version, in partition and part
/// order.
struct FileRun {
    schema_version: u32,
    files: Vec<(NaiveDate, PathBuf)>,
}

impl FileRun {
    /// One scan of every file, the partition column parsed from the `dt=` folders (Hive
    /// style, typed by the table schema). Polars reads every `key=value` folder of a path
    /// as a Hive column, so where a folder above the table holds an `=` of its own (a lake
    /// root such as `/data/run=3`), each file gets its own scan with the date as a literal
    /// instead (as does a table whose partition column were not the folders' `dt`).
    fn scans(self, table: &TableSchema) -> PolarsResult<Vec<LazyFrame>> {
        let Some(part_col) = table.partition.as_deref() else {
            return Ok(vec![LazyFrame::scan_parquet_files(
                self.paths().into(),
                ScanArgsParquet::default(),
            )?]);
        };
        let hive_safe = part_col == PARTITION_FOLDER_KEY
            && self.files.iter().all(|(_, p)| {
                p.parent()
                    .and_then(|dir| dir.parent())
                    .is_some_and(|table_dir| !table_dir.to_string_lossy().contains('='))
            });
        if hive_safe {
            let dtype = table
                .polars_schema()
                .get(part_col)
                .cloned()
                .unwrap_or(DataType::Date);
            let mut args = ScanArgsParquet::default();
            args.hive_options.enabled = Some(true);
            args.hive_options.try_parse_dates = true;
            args.hive_options.schema = Some(Arc::new(Schema::from_iter([Field::new(
                part_col.into(),
                dtype,
            )])));
            return Ok(vec![LazyFrame::scan_parquet_files(
                self.paths().into(),
                args,
            )?]);
        }
        let mut frames = Vec::new();
        for (dt, path) in &self.files {
            frames.push(
                LazyFrame::scan_parquet_files(
                    vec![ref_path(path)].into(),
                    ScanArgsParquet::default(),
                )?
                .with_column(date_lit(*dt).alias(part_col)),
            );
        }
        Ok(frames)
    }

    fn paths(&self) -> Vec<PlRefPath> {
        self.files.iter().map(|(_, p)| ref_path(p)).collect()
    }
}

fn ref_path(path: &std::path::Path) -> PlRefPath {
    PlRefPath::new(path.to_string_lossy().as_ref())
}
