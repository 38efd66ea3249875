//! Ingest: collecting each source's data within its API limits and landing it losslessly as
//! Parquet in the lake's `raw` layer.

pub mod adison;
pub mod apple_search_ads;
pub mod appsflyer;
pub mod budget;
pub mod connector;
mod error;
pub mod google_ads;
pub mod http;
pub mod meta;
pub mod mixpanel;
pub mod money;
pub mod naver;
pub mod oauth;
pub mod schedule;
pub mod sheets;
pub mod sources;
pub mod state;

pub use error::{ParseError, json_body};
pub use sources::{IngestError, IngestRequest, run_ingest};
