//! Naver Search Ad: daily statistics per campaign (`naver.stats` into `raw.naver_stats`).
//! A pull lists the customer's campaigns (`GET /ncc/campaigns`) and asks `GET /stats` for
//! their day in batches of ids, every request signed with the secret key (see [`sign`]).
//! `salesAmt` is spend in KRW including VAT and lands unchanged as `spend_micros`.

mod connector;
mod parse;
pub mod sign;

pub use connector::{NaverConnector, STATS_BATCH, verdict};
pub use parse::{
    FIELDS, NaverCampaign, NaverError, StatsSpec, parse_campaigns, parse_error, parse_stats,
};

/// Stream name in errors and logs.
pub const STREAM: &str = "naver.stats";

/// The raw table the stream lands in.
pub const TABLE: &str = "raw.naver_stats";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
