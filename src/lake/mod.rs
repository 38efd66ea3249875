//! The Parquet lake: Hive-style date partitions on any `object_store` backend, written
//! atomically through a per-partition manifest and read back as lazy Polars plans.
//!
//! Layout: `<layer>/<table>/dt=YYYY-MM-DD/part-NNNNN-<version>.parquet` plus
//! `<layer>/<table>/dt=YYYY-MM-DD/_manifest.json`. Object stores cannot rename a folder, so
//! a partition version becomes visible only when its manifest is put (one atomic put);
//! files carry their version in their name so a rewrite never touches the files a reader
//! may be reading. Files no manifest names any more are removed by [`Lake::sweep`].

mod fold;
mod manifest;
mod scan;
mod state;
mod sweep;
mod update;
mod write;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use polars::prelude::{DataType, Expr, lit};

use crate::config::StoreLocation;

pub use fold::{ADVANCE_DAYS, FOLD_CHUNK_ROWS, FoldKey, Folding, SettledFold, unfolded_from};
pub use manifest::{Manifest, ManifestFile};
pub use sweep::SweepReport;
pub use write::{PartitionWriter, Replaced};

/// Errors of the lake. Each names the table, partition or object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open lake {url}")]
    Open {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot create lake folder {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path} in lake {lake}")]
    Store {
        op: &'static str,
        lake: String,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{table}, partition dt={partition}: {source}")]
    Schema {
        table: String,
        partition: NaiveDate,
        #[source]
        source: crate::schema::SchemaError,
    },
    #[error(
        "{table}, partition dt={partition}: the frame's dt column holds {found}, not the partition date"
    )]
    PartitionMismatch {
        table: String,
        partition: NaiveDate,
        found: String,
    },
    #[error("{table}, partition dt={partition}: cannot encode Parquet")]
    Encode {
        table: String,
        partition: NaiveDate,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error(
        "{table}, partition dt={partition}: written in layout version {found}, older than this \
         build reads (from {oldest}); write the partition again (for sim tables: simulate the \
         world again)"
    )]
    OldLayout {
        table: String,
        partition: NaiveDate,
        found: u32,
        oldest: u32,
    },
    #[error("{table}: cannot plan a scan")]
    Scan {
        table: String,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("manifest {path} is not valid JSON")]
    BadManifest {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("state {key}: still contended after {attempts} conditional writes")]
    Contended { key: String, attempts: u32 },
    #[error("state {key} is not valid JSON")]
    BadState {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write cache file {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state {key} was changed by another process since it was read")]
    StateConflict { key: String },
    #[error("saved fold {key}: cannot build or encode it")]
    Fold {
        key: String,
        #[source]
        source: polars::error::PolarsError,
    },
}

/// An inclusive range of partition dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        Self { from, to }
    }

    pub fn day(d: NaiveDate) -> Self {
        Self { from: d, to: d }
    }

    /// Every date of the history: for reads that want a whole table.
    pub fn all() -> Self {
        Self {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
        }
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }

    /// The dates of the range in order when it holds at most `max` of them (an empty
    /// range holds none), else `None`.
    pub fn days_if_at_most(&self, max: u32) -> Option<Vec<NaiveDate>> {
        let span = self.to.signed_duration_since(self.from).num_days();
        (span < i64::from(max)).then(|| self.days().collect())
    }

    /// The dates of the range in order (bounded ranges only).
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }
}

/// Where a lake's bytes live, and how scans reach them.
#[derive(Debug, Clone)]
enum Backend {
    /// A local folder: Polars scans the files in place.
    Local { root: PathBuf },
    /// Any other store: files are copied once into a local cache, keyed by their
    /// immutable, versioned names, and scanned from there.
    Remote { cache_dir: PathBuf },
}

/// A Parquet lake. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// Prefix inside the store under which this lake lives (S3 `s3://bucket/prefix`).
    prefix: StorePath,
    backend: Backend,
    /// The URL the lake was opened with, for messages (never holds credentials).
    url: String,
}

impl Lake {
    /// Opens a lake from a path or URL: a plain path or `file://` (local folder, created if
    /// missing), `s3://bucket/prefix` (credentials, region and endpoint from the standard
    /// AWS environment variables), or `memory://` (a fresh in-process store, for tests).
    pub fn open(url: &str) -> Result<Lake, LakeError> {
        let location: StoreLocation = url.parse().map_err(|reason| LakeError::BadUrl {
            url: url.to_string(),
            reason,
        })?;
        Lake::open_location(&location)
    }

    pub fn open_location(location: &StoreLocation) -> Result<Lake, LakeError> {
        let url = location.to_string();
        match location {
            StoreLocation::Memory => {
                let cache_dir = cache_root().join(format!("memory-{}", unique_suffix()));
                Ok(Lake::from_store(Arc::new(InMemory::new()), &url, cache_dir))
            }
            StoreLocation::S3 { bucket, prefix } => {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|source| LakeError::Open {
                        url: url.clone(),
                        source,
                    })?;
                let cache_dir = cache_root().join("s3").join(bucket).join(prefix);
                let mut lake = Lake::from_store(Arc::new(store), &url, cache_dir);
                lake.prefix = StorePath::from(prefix.as_str());
                Ok(lake)
            }
            StoreLocation::Local(path) => {
                let dir_error = |source| LakeError::CreateDir {
                    path: path.clone(),
                    source,
                };
                std::fs::create_dir_all(path).map_err(dir_error)?;
                let root = path.canonicalize().map_err(dir_error)?;
                let store =
                    LocalFileSystem::new_with_prefix(&root).map_err(|source| LakeError::Open {
                        url: url.clone(),
                        source,
                    })?;
                Ok(Lake {
                    store: Arc::new(store),
                    prefix: StorePath::default(),
                    backend: Backend::Local { root },
                    url,
                })
            }
        }
    }

    /// Wraps an existing store (tests inject faults this way). Scans copy files into
    /// `cache_dir`.
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str, cache_dir: PathBuf) -> Lake {
        Lake {
            store,
            prefix: StorePath::default(),
            backend: Backend::Remote { cache_dir },
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store path of a lake-relative path.
    fn path(&self, relative: &str) -> StorePath {
        if self.prefix.as_ref().is_empty() {
            StorePath::from(relative)
        } else {
            StorePath::from(format!("{}/{}", self.prefix.as_ref(), relative))
        }
    }

    /// The lake-relative form of a store path.
    fn relative<'a>(&self, path: &'a StorePath) -> &'a str {
        let p = path.as_ref();
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            p
        } else {
            p.strip_prefix(prefix)
                .map(|s| s.trim_start_matches('/'))
                .unwrap_or(p)
        }
    }

    fn store_error(&self, op: &'static str, path: &str, source: object_store::Error) -> LakeError {
        LakeError::Store {
            op,
            lake: self.url.clone(),
            path: path.to_string(),
            source,
        }
    }
}

/// The `dt` of a frame's first row: the partition of one part of `partition_by(["dt"])`.
pub fn partition_day(df: &polars::prelude::DataFrame) -> Option<NaiveDate> {
    df.column("dt")
        .ok()?
        .date()
        .ok()?
        .as_date_iter()
        .next()
        .flatten()
}

/// Folder of one table: `<layer>/<table>`.
pub(crate) fn table_dir(table: &crate::schema::TableSchema) -> String {
    format!("{}/{}", table.layer, table.name)
}

/// The key of a partition's folder name, `dt=YYYY-MM-DD` (Hive style).
pub(crate) const PARTITION_FOLDER_KEY: &str = "dt";

/// Folder of one partition: `<layer>/<table>/dt=YYYY-MM-DD`.
pub(crate) fn partition_dir(table: &crate::schema::TableSchema, dt: NaiveDate) -> String {
    format!(
        "{}/{PARTITION_FOLDER_KEY}={}",
        table_dir(table),
        dt.format("%Y-%m-%d")
    )
}

/// A Polars `Date` literal: `lit(NaiveDate)` would make a datetime, a day number cast to
/// `Date` does not.
pub fn date_lit(day: NaiveDate) -> Expr {
    lit((day - NaiveDate::default()).num_days() as i32).cast(DataType::Date)
}

fn cache_root() -> PathBuf {
    std::env::var_os("LTV_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ltv-cache"))
}

/// A suffix unique to this process and moment: makes file versions and cache folders
/// distinct without coordination.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (now.timestamp_nanos_opt().unwrap_or_default() as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{}-{:016x}", now.format("%Y%m%dT%H%M%S%3f"), mixed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_range_lists_its_days_only_when_it_is_short() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let week = DateRange::new(d("2026-01-01"), d("2026-01-07"));
        assert_eq!(week.days_if_at_most(7).unwrap().len(), 7);
        assert_eq!(week.days_if_at_most(6), None);
        assert_eq!(
            DateRange::day(d("2026-03-01")).days_if_at_most(1),
            Some(vec![d("2026-03-01")])
        );
        assert_eq!(
            DateRange::new(d("2026-01-07"), d("2026-01-01")).days_if_at_most(1),
            Some(vec![])
        );
        assert_eq!(DateRange::all().days_if_at_most(366), None);
        assert_eq!(
            DateRange::new(d("2026-01-01"), NaiveDate::MAX).days_if_at_most(31),
            None
        );
    }
}
