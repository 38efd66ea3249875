//! Costs typed by hand into the team's sheet (`raw.sheets_manual_costs`) as clean rows. A
//! snapshot partition holds the whole sheet, so only the latest snapshot counts, and each
//! row lands on its own `date` (the runner routes rows to partitions by `dt`). Rows are not
//! deduplicated (two rows of one campaign day are two invoices) and a negative cost is a
//! refund, not an error.

use polars::prelude::*;

use super::{
    CLEAN_TABLE, ChannelContext, failing_plan, finish, reject_missing, schema, to_clean_columns,
};
use crate::cleanse::reject::with_reject;

pub(super) const TABLE: &str = "raw.sheets_manual_costs";

/// The account of every manual cost.
pub const ACCOUNT: &str = "manual";

fn columns() -> Vec<(&'static str, Expr)> {
    vec![
        ("dt", col("date")),
        (
            "channel",
            col("channel")
                .str()
                .strip_chars(lit(NULL))
                .str()
                .to_lowercase(),
        ),
        ("account_id", lit(ACCOUNT)),
        ("campaign_id", col("campaign_id")),
        ("currency", col("currency")),
        ("spend_micros", col("cost_micros")),
        ("impressions", lit(0i64)),
        ("clicks", lit(0i64)),
        ("pulled_at", col("pulled_at")),
    ]
}

/// Only the rows of the latest snapshot (`dt`) of the sheet.
fn latest_snapshot(lf: LazyFrame) -> LazyFrame {
    lf.filter(col("dt").eq(col("dt").max()))
}

/// Maps the latest snapshot of `raw.sheets_manual_costs` (any number of snapshot partitions)
/// into the columns of `clean.channel_daily` plus [`crate::cleanse::reject::REJECT`], with
/// the row's own `date` as `dt`. `fx` must cover the rows' dates. An unreadable embedded
/// schema (a broken build) surfaces when the plan is collected.
pub fn clean_manual_costs(raw: LazyFrame, fx: LazyFrame, ctx: &ChannelContext) -> LazyFrame {
    let clean = match schema(CLEAN_TABLE) {
        Ok(c) => c,
        Err(e) => return failing_plan(e.to_string()),
    };
    let lf = with_reject(latest_snapshot(raw));
    let lf = to_clean_columns(lf, columns(), TABLE, clean);
    let lf = reject_missing(lf, clean);
    finish(lf, fx, ctx, clean)
}
