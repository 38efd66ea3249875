//! The channel half of the cleanse stage: each ad channel's raw report (and the manual-cost
//! sheet) mapped into `clean.channel_daily`, as one lazy plan per raw partition.
//!
//! Every plan runs the same steps, each a function from `LazyFrame` to `LazyFrame`:
//! duplicates by the raw table's primary key (the latest pull of a restated day wins), the
//! channel's own preparation (Meta's actions JSON flattened), the mapping onto the clean
//! columns (one small file per channel), then the shared rules: required values present,
//! no negative delivery, known currencies, money in the reporting currency, test campaigns
//! flagged. Removing rules only write [`REJECT`]; the stage runner collects once and splits.

mod adison;
mod apple_search_ads;
mod google_ads;
mod manual_costs;
mod meta;
pub mod meta_actions;
mod naver;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use polars::prelude::*;

pub use manual_costs::clean_manual_costs;

use super::dedup::{DUPLICATE, mark_key_duplicates};
use super::fx::{reject_unknown_currency, with_reporting_amount};
use super::reject::{REJECT, reject_where, reject_where_with, with_reject};
use super::test_data::{TEST_REASON, mark_test_campaigns};
use crate::config::TestUserRules;
use crate::schema::{Registry, SchemaError, TableSchema};

/// The clean table every plan here produces.
pub const CLEAN_TABLE: &str = "clean.channel_daily";

/// What the plans need from the pipeline config.
#[derive(Debug, Clone, Copy)]
pub struct ChannelContext<'a> {
    /// ISO code of `pipeline.reporting_currency` (`Currency::code()`).
    pub reporting_currency: &'a str,
    pub test_rules: &'a TestUserRules,
}

/// The raw channel tables [`clean_channel_partition`] cleans. Meta is read at ad level, the
/// finest: its campaign, adset and account tables repeat the same spend.
pub const CHANNEL_TABLES: [&str; 5] = [
    meta::TABLE,
    google_ads::TABLE,
    apple_search_ads::TABLE,
    naver::TABLE,
    adison::TABLE,
];

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{table} is not a channel table the cleanse stage knows; it cleans {}", CHANNEL_TABLES.join(", "))]
    UnknownTable { table: String },
    #[error("the schema of {table}: {source}")]
    Schema {
        table: String,
        #[source]
        source: SchemaError,
    },
}

/// Preparation on raw columns, after duplicates are marked (Meta flattens its actions).
type Prepare = fn(LazyFrame) -> LazyFrame;
/// Clean column -> expression over the (prepared) raw columns. Clean columns left out are
/// null; `source_table` and the computed columns are filled by this module.
type Mapping = fn() -> Vec<(&'static str, Expr)>;

/// How one raw table becomes clean rows.
struct Channel {
    /// Qualified raw table.
    table: &'static str,
    prepare: Prepare,
    columns: Mapping,
}

fn channel(table: &str) -> Option<Channel> {
    let (table, prepare, columns): (&'static str, Prepare, Mapping) = match table {
        meta::TABLE => (meta::TABLE, meta::prepare, meta::columns),
        google_ads::TABLE => (google_ads::TABLE, identity, google_ads::columns),
        apple_search_ads::TABLE => (apple_search_ads::TABLE, identity, apple_search_ads::columns),
        naver::TABLE => (naver::TABLE, identity, naver::columns),
        adison::TABLE => (adison::TABLE, identity, adison::columns),
        _ => return None,
    };
    Some(Channel {
        table,
        prepare,
        columns,
    })
}

fn identity(lf: LazyFrame) -> LazyFrame {
    lf
}

fn schema(table: &str) -> Result<&'static TableSchema, ChannelError> {
    let wrap = |source| ChannelError::Schema {
        table: table.to_string(),
        source,
    };
    Registry::embedded().map_err(wrap)?.get(table).map_err(wrap)
}

/// A plan that fails with `message` when collected: how a function that returns a plan (not a
/// `Result`) reports an error met while building it.
fn failing_plan(message: String) -> LazyFrame {
    DataFrame::empty().lazy().select([lit(NULL).map(
        move |_| Err(polars_err!(ComputeError: "{message}")),
        |_, f| Ok(f.clone()),
    )])
}

/// Clean columns computed after the mapping, never taken from a raw column.
const COMPUTED: [&str; 4] = [
    "reporting_currency",
    "spend_reporting_micros",
    "purchase_value_reporting_micros",
    "test_reason",
];

/// Maps one raw partition of `table` (with its `dt` column, as a lake scan yields it) into
/// the columns of `clean.channel_daily` in schema order, plus [`REJECT`]. `fx` is
/// [`super::fx::fx_table`]'s output covering the partition's days. Errors only on a table
/// this module does not clean (naming it) or an unreadable embedded schema.
pub fn clean_channel_partition(
    table: &str,
    raw: LazyFrame,
    fx: LazyFrame,
    ctx: &ChannelContext,
) -> Result<LazyFrame, ChannelError> {
    let Some(ch) = channel(table) else {
        return Err(ChannelError::UnknownTable {
            table: table.to_string(),
        });
    };
    let raw_schema = schema(ch.table)?;
    let clean = schema(CLEAN_TABLE)?;
    let key: Vec<&str> = raw_schema.primary_key.iter().map(String::as_str).collect();

    let lf = reject_duplicates(with_reject(raw), &key);
    let lf = (ch.prepare)(lf);
    let lf = to_clean_columns(lf, (ch.columns)(), ch.table, clean);
    let lf = reject_missing(lf, clean);
    let lf = reject_negative(lf, &["spend_micros", "impressions", "clicks"]);
    Ok(finish(lf, fx, ctx, clean))
}

/// The rules every source shares once its rows have the clean columns: known currencies,
/// money in the reporting currency, test campaigns flagged, columns in schema order.
fn finish(lf: LazyFrame, fx: LazyFrame, ctx: &ChannelContext, clean: &TableSchema) -> LazyFrame {
    let lf = lf.with_column(lit(ctx.reporting_currency.to_string()).alias("reporting_currency"));
    let lf = reject_unknown_currency(lf, "currency", "dt", fx.clone());
    let lf = reject_unknown_currency(lf, "reporting_currency", "dt", fx.clone());
    let lf = to_reporting_currency(lf, fx, ctx.reporting_currency);
    let lf = flag_test_campaigns(lf, ctx.test_rules);
    in_schema_order(lf, clean)
}

/// Rejects every repeat of the raw table's primary `key` but its latest pull (`pulled_at`):
/// a restated day is pulled again, and the newest figures are the channel's final word.
fn reject_duplicates(lf: LazyFrame, key: &[&str]) -> LazyFrame {
    let detail = format!("a later pull of the same {} exists", key.join(", "));
    reject_where(
        mark_key_duplicates(lf, key, "pulled_at"),
        col(DUPLICATE),
        "duplicate",
        &detail,
    )
    .drop(cols([DUPLICATE]))
}

/// Selects the clean columns from the channel's `mapped` expressions, typed as the schema
/// says; clean columns a channel does not report are typed nulls.
fn to_clean_columns(
    lf: LazyFrame,
    mapped: Vec<(&'static str, Expr)>,
    source_table: &str,
    clean: &TableSchema,
) -> LazyFrame {
    let mut exprs: Vec<Expr> = clean
        .columns
        .iter()
        .map(|c| {
            let e = if c.name == "source_table" {
                lit(source_table.to_string())
            } else {
                mapped
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(|| lit(NULL))
            };
            e.cast(c.dtype.clone()).alias(c.name.as_str())
        })
        .collect();
    exprs.push(col(REJECT));
    lf.select(exprs)
}

/// Rejects rows missing a value the clean table requires (a null `campaign_id`, currency,
/// spend...), naming the column; the computed columns are filled later.
fn reject_missing(lf: LazyFrame, clean: &TableSchema) -> LazyFrame {
    clean
        .columns
        .iter()
        .filter(|c| !c.nullable && !COMPUTED.contains(&c.name.as_str()))
        .fold(lf, |lf, c| {
            reject_where(
                lf,
                col(c.name.as_str()).is_null(),
                "malformed",
                &format!("{} is null", c.name),
            )
        })
}

/// Rejects negative delivery or spend, naming the column and the value: a channel never
/// reports them, so the row is corrupt rather than a refund.
fn reject_negative(lf: LazyFrame, columns: &[&str]) -> LazyFrame {
    columns.iter().fold(lf, |lf, c| {
        let detail = concat_str(
            [
                lit(format!("{c} is negative (")),
                col(*c).cast(DataType::String),
                lit(")"),
            ],
            "",
            true,
        );
        reject_where_with(lf, col(*c).lt(lit(0)), "malformed", detail)
    })
}

/// Spend and purchase value in the reporting currency at the report day's rates.
fn to_reporting_currency(lf: LazyFrame, fx: LazyFrame, reporting: &str) -> LazyFrame {
    let lf = with_reporting_amount(
        lf,
        "spend_micros",
        "currency",
        "dt",
        fx.clone(),
        reporting,
        "spend_reporting_micros",
    );
    with_reporting_amount(
        lf,
        "purchase_value_micros",
        "currency",
        "dt",
        fx,
        reporting,
        "purchase_value_reporting_micros",
    )
}

/// Flags (never rejects) campaigns named like a test campaign: their spend is real money,
/// so the process stage decides whether to report it.
fn flag_test_campaigns(lf: LazyFrame, rules: &TestUserRules) -> LazyFrame {
    mark_test_campaigns(lf, rules, "campaign_name")
        .with_column(col(TEST_REASON).alias("test_reason"))
        .drop(cols([TEST_REASON]))
}

/// The clean columns in schema order, typed, then [`REJECT`].
fn in_schema_order(lf: LazyFrame, clean: &TableSchema) -> LazyFrame {
    let mut exprs: Vec<Expr> = clean
        .columns
        .iter()
        .map(|c| col(c.name.as_str()).cast(c.dtype.clone()))
        .collect();
    exprs.push(col(REJECT));
    lf.select(exprs)
}
