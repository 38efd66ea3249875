//! Removing files that no manifest names: the leftovers of rewritten partitions and of
//! writers that died before their commit.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::manifest::MANIFEST_NAME;
use super::{Lake, LakeError, Manifest};

/// What a sweep removed and kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub files_removed: u64,
    pub bytes_removed: u64,
    /// Orphans younger than the grace period: a writer may still be about to commit them,
    /// or a reader still be reading them.
    pub files_kept_young: u64,
}

impl Lake {
    /// Deletes Parquet files under the data layers that the current manifest of their
    /// partition does not name and that are older than `grace`.
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport, LakeError> {
        let cutoff = Utc::now() - grace;
        let objects: Vec<_> = self
            .store
            .list(if self.prefix.as_ref().is_empty() {
                None
            } else {
                Some(&self.prefix)
            })
            .try_collect()
            .await
            .map_err(|e| self.store_error("list", "", e))?;
        // Parquet files per partition folder.
        let mut by_dir: BTreeMap<String, Vec<(String, object_store::ObjectMeta)>> = BTreeMap::new();
        for meta in objects {
            let rel = self.relative(&meta.location).to_string();
            if !rel.ends_with(".parquet") || rel.starts_with("_state/") {
                continue;
            }
            if let Some((dir, _)) = rel.rsplit_once('/') {
                by_dir
                    .entry(dir.to_string())
                    .or_default()
                    .push((rel.clone(), meta));
            }
        }
        let mut report = SweepReport::default();
        for (dir, files) in by_dir {
            let manifest_rel = format!("{dir}/{MANIFEST_NAME}");
            let live: BTreeSet<String> = match self.get_optional(&manifest_rel).await? {
                Some(bytes) => serde_json::from_slice::<Manifest>(&bytes)
                    .map_err(|source| LakeError::BadManifest {
                        path: manifest_rel.clone(),
                        source,
                    })?
                    .files
                    .into_iter()
                    .map(|f| f.path)
                    .collect(),
                None => BTreeSet::new(),
            };
            for (rel, meta) in files {
                if live.contains(&rel) {
                    continue;
                }
                if meta.last_modified > cutoff {
                    report.files_kept_young += 1;
                    continue;
                }
                self.store
                    .delete(&meta.location)
                    .await
                    .map_err(|e| self.store_error("delete", &rel, e))?;
                report.files_removed += 1;
                report.bytes_removed += meta.size;
            }
        }
        Ok(report)
    }
}

impl Lake {
    /// Whether the lake holds no object at all.
    pub async fn is_empty(&self) -> Result<bool, LakeError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let first = self
            .store
            .list(prefix)
            .try_next()
            .await
            .map_err(|e| self.store_error("list", "", e))?;
        Ok(first.is_none())
    }

    /// Deletes every object of the lake (`ltv demo --overwrite`); returns how many.
    pub async fn clear(&self) -> Result<u64, LakeError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let objects: Vec<_> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.store_error("list", "", e))?;
        let mut removed = 0;
        for meta in objects {
            let rel = self.relative(&meta.location).to_string();
            self.store
                .delete(&meta.location)
                .await
                .map_err(|e| self.store_error("delete", &rel, e))?;
            removed += 1;
        }
        Ok(removed)
    }
}
