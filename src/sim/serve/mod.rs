//! Rendering the simulated world in each source's wire format, for the local API servers.

pub mod adison;
pub mod apple_search_ads;
pub mod appsflyer;
pub mod campaign_days;
pub mod google_ads;
pub mod meta;
pub mod mixpanel;
pub mod naver;
pub mod sheets;

use polars::prelude::*;

use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::Registry;

/// The embedded schema of a `sim.*` table, its lookup failure as a lake error naming it.
pub(crate) fn table(name: &str) -> Result<&'static crate::schema::TableSchema, LakeError> {
    Registry::embedded()
        .and_then(|r| r.get(name))
        .map_err(|e| LakeError::Scan {
            table: name.to_string(),
            source: PolarsError::ComputeError(e.to_string().into()),
        })
}

/// Every install of the world (with `dt`, the install day) as a lazy plan: events join it
/// for their install's attribution (an install is never later than its events, so no day
/// bound is needed). The local server passes a cached frame instead.
pub async fn world_installs(lake: &Lake) -> Result<LazyFrame, LakeError> {
    lake.scan(table("sim.installs")?, DateRange::all()).await
}
