//! The world's Adison delivery as the daily CSV file the team would find in the drop, so
//! the Adison connector is tested on the same bytes it reads in production: UTF-8 with a BOM,
//! CRLF lines, spend in KRW with thousands separators, quoted.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::ingest::adison::HEADER;
use crate::ingest::sheets::cells::format_micros_grouped;
use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// The channel key of Adison in the world.
const CHANNEL: &str = "adison";

/// Why the world's report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum AdisonServeError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the world's Adison delivery for {date}: {source}")]
    Polars {
        date: NaiveDate,
        #[source]
        source: PolarsError,
    },
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The world's Adison delivery (`sim.ad_daily` where channel = "adison", joined with
/// `sim.campaigns` for names) for one report day, as the CSV file the team would drop. Spend
/// is the final (restated) amount: Adison re-drops a day's file when it revises it. A day with
/// no delivery gives a header-only file, as the network's export does.
pub async fn render_report(lake: &Lake, date: NaiveDate) -> Result<Vec<u8>, AdisonServeError> {
    let registry = Registry::embedded()?;
    let daily = lake
        .scan(registry.get("sim.ad_daily")?, DateRange::day(date))
        .await?
        .filter(col("channel").eq(lit(CHANNEL)))
        .select([
            col("campaign_id"),
            col("ad_id"),
            col("impressions"),
            col("clicks"),
            col("installs"),
            col("spend_micros"),
            col("currency"),
        ]);
    let names = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(col("channel").eq(lit(CHANNEL)))
        .select([col("ad_id"), col("campaign_name"), col("ad_name")]);
    let polars = |source| AdisonServeError::Polars { date, source };
    let df = daily
        .left_join(names, col("ad_id"), col("ad_id"))
        .sort(["campaign_id", "ad_id"], SortMultipleOptions::default())
        .collect()
        .map_err(polars)?;

    let text = |name: &str| -> Result<Vec<String>, AdisonServeError> {
        Ok(df
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(polars)?
            .iter()
            .map(|v| field(v.unwrap_or_default()))
            .collect())
    };
    let int = |name: &str| -> Result<Vec<i64>, AdisonServeError> {
        Ok(df
            .column(name)
            .and_then(|c| c.i64().cloned())
            .map_err(polars)?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let day = date.format("%Y-%m-%d").to_string();
    let (campaign_ids, campaign_names, ad_ids, ad_names, currencies) = (
        text("campaign_id")?,
        text("campaign_name")?,
        text("ad_id")?,
        text("ad_name")?,
        text("currency")?,
    );
    let (impressions, clicks, installs, spend) = (
        int("impressions")?,
        int("clicks")?,
        int("installs")?,
        int("spend_micros")?,
    );

    let mut out = String::from("\u{feff}");
    out.push_str(&HEADER.join(","));
    out.push_str("\r\n");
    for i in 0..df.height() {
        let cells = [
            day.clone(),
            campaign_ids[i].clone(),
            campaign_names[i].clone(),
            ad_ids[i].clone(),
            ad_names[i].clone(),
            impressions[i].to_string(),
            clicks[i].to_string(),
            installs[i].to_string(),
            // Always quoted, as the export writes every formatted amount.
            format!("\"{}\"", format_micros_grouped(spend[i])),
            currencies[i].clone(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
