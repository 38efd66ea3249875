//! Reading: partitions pruned by date through their manifests, then one lazy Parquet scan
//! per partition with the partition date added back as a column.

use std::path::PathBuf;

use object_store::ObjectStoreExt;
use polars::prelude::*;

use super::{Backend, DateRange, Lake, LakeError};
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
        let mut parts = Vec::new();
        for dt in self.partitions(table).await? {
            if !range.contains(dt) {
                continue;
            }
            let Some(manifest) = self.manifest(table, dt).await? else {
                continue;
            };
            let mut paths = Vec::with_capacity(manifest.files.len());
            for file in &manifest.files {
                paths.push(self.local_copy(&file.path).await?);
            }
            if !paths.is_empty() {
                parts.push((dt, paths));
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
        if parts.is_empty() {
            return Ok(DataFrame::empty_with_schema(&table.polars_schema()).lazy());
        }
        let mut frames = Vec::with_capacity(parts.len());
        for (dt, paths) in parts {
            let paths: Vec<PlRefPath> = paths
                .iter()
                .map(|p| PlRefPath::new(p.to_string_lossy().as_ref()))
                .collect();
            let mut lf = LazyFrame::scan_parquet_files(paths.into(), ScanArgsParquet::default())
                .map_err(scan_error)?;
            if let Some(part_col) = &table.partition {
                // A `NaiveDate` literal becomes a datetime in Polars: build the date from
                // its day number instead.
                let days = (dt - chrono::NaiveDate::default()).num_days() as i32;
                lf = lf.with_column(lit(days).cast(DataType::Date).alias(part_col.as_str()));
            }
            frames.push(lf.select(columns.clone()));
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
