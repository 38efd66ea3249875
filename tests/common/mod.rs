//! Shared test support: an object store that fails on demand, a simulated world ingested
//! into a lake (`world`), and the test MySQL server (`mysql`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod mysql;
pub mod world;

/// Whether the run is CI's: there a missing server (MySQL, S3, a browser) is a failure, never
/// a skip.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The sum of an integer column, as i64 (0 when empty).
pub fn sum_i64(df: &polars::prelude::DataFrame, name: &str) -> i64 {
    use polars::prelude::*;
    df.column(name)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .sum()
        .unwrap_or(0)
}

use std::fmt;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// An in-memory store whose puts fail while their path contains the armed pattern: a
/// writer that dies at that put.
#[derive(Debug, Default)]
pub struct FailingStore {
    inner: InMemory,
    fail_put_containing: Mutex<Option<String>>,
}

impl FailingStore {
    pub fn arm(&self, pattern: &str) {
        *self.fail_put_containing.lock().unwrap() = Some(pattern.to_string());
    }
    pub fn disarm(&self) {
        *self.fail_put_containing.lock().unwrap() = None;
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore")
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let armed = self.fail_put_containing.lock().unwrap().clone();
        if let Some(p) = armed
            && location.as_ref().contains(&p)
        {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: format!("injected failure writing {location}").into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
