//! Ingest: collecting each source's data within its API limits and landing it losslessly as
//! Parquet in the lake's `raw` layer.

pub mod adison;
pub mod appsflyer;
pub mod budget;
pub mod connector;
mod error;
pub mod http;
pub mod meta;
pub mod mixpanel;
pub mod money;
pub mod naver;
pub mod sheets;
pub mod state;

pub use error::ParseError;
