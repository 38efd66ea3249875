//! The world's delivery of one channel summed per campaign and report day, which the
//! campaign-level reports (Google Ads, Apple Search Ads) serve in their own wire formats.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// One campaign's day as the channel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignDay {
    pub date: NaiveDate,
    pub account_id: String,
    pub currency: String,
    pub time_zone: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub spend_micros: i64,
    pub impressions: i64,
    pub clicks: i64,
    pub installs: i64,
    pub view_installs: i64,
}

/// Why the world could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CampaignDaysError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the world's {channel} delivery: {source}")]
    Polars {
        channel: String,
        #[source]
        source: PolarsError,
    },
}

/// Every campaign day of `channel` in `[from, to]`, ordered by day then campaign id. Spend is
/// the final (restated) amount.
pub async fn campaign_days(
    lake: &Lake,
    channel: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CampaignDay>, CampaignDaysError> {
    let registry = Registry::embedded()?;
    let polars = |source| CampaignDaysError::Polars {
        channel: channel.to_string(),
        source,
    };
    let daily = lake
        .scan(registry.get("sim.ad_daily")?, DateRange::new(from, to))
        .await?
        .filter(col("channel").eq(lit(channel)))
        .group_by([col("dt"), col("campaign_id")])
        .agg([
            col("account_id").first(),
            col("currency").first(),
            col("spend_micros").sum(),
            col("impressions").sum(),
            col("clicks").sum(),
            col("installs").sum(),
            col("view_installs").sum(),
        ]);
    let names = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(col("channel").eq(lit(channel)))
        .group_by([col("campaign_id")])
        .agg([
            col("campaign_name").first(),
            col("account_timezone").first(),
        ]);
    let df = daily
        .left_join(names, col("campaign_id"), col("campaign_id"))
        .with_column(col("dt").cast(DataType::Int32).alias("day"))
        .sort(["day", "campaign_id"], SortMultipleOptions::default())
        .collect()
        .map_err(polars)?;

    let text = |name: &str| -> Result<Vec<String>, CampaignDaysError> {
        Ok(df
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(polars)?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let int = |name: &str| -> Result<Vec<i64>, CampaignDaysError> {
        Ok(df
            .column(name)
            .and_then(|c| c.cast(&DataType::Int64))
            .and_then(|c| c.i64().cloned())
            .map_err(polars)?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let days = int("day")?;
    let (accounts, currencies, zones, campaigns, names) = (
        text("account_id")?,
        text("currency")?,
        text("account_timezone")?,
        text("campaign_id")?,
        text("campaign_name")?,
    );
    let (spend, impressions, clicks, installs, view_installs) = (
        int("spend_micros")?,
        int("impressions")?,
        int("clicks")?,
        int("installs")?,
        int("view_installs")?,
    );
    let epoch = NaiveDate::default();
    Ok((0..df.height())
        .map(|i| CampaignDay {
            date: epoch + chrono::Days::new(u64::try_from(days[i]).unwrap_or_default()),
            account_id: accounts[i].clone(),
            currency: currencies[i].clone(),
            time_zone: zones[i].clone(),
            campaign_id: campaigns[i].clone(),
            campaign_name: names[i].clone(),
            spend_micros: spend[i],
            impressions: impressions[i],
            clicks: clicks[i],
            installs: installs[i],
            view_installs: view_installs[i],
        })
        .collect())
}

/// The channel's account: (account id, currency, time zone) from `sim.campaigns`, or `None`
/// when the world has no campaign of the channel.
pub async fn account(
    lake: &Lake,
    channel: &str,
) -> Result<Option<(String, String, String)>, CampaignDaysError> {
    let registry = Registry::embedded()?;
    let df = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(col("channel").eq(lit(channel)))
        .select([
            col("account_id"),
            col("account_currency"),
            col("account_timezone"),
        ])
        .limit(1)
        .collect()
        .map_err(|source| CampaignDaysError::Polars {
            channel: channel.to_string(),
            source,
        })?;
    if df.height() == 0 {
        return Ok(None);
    }
    let get = |name: &str| -> Option<String> {
        df.column(name).ok()?.str().ok()?.get(0).map(str::to_string)
    };
    Ok(
        match (
            get("account_id"),
            get("account_currency"),
            get("account_timezone"),
        ) {
            (Some(a), Some(c), Some(z)) => Some((a, c, z)),
            _ => None,
        },
    )
}

/// The channel's ad accounts in the world (`sim.campaigns`), in first-seen order.
pub async fn channel_accounts(
    lake: &Lake,
    channel: &str,
) -> Result<Vec<String>, CampaignDaysError> {
    let registry = Registry::embedded()?;
    let polars = |source| CampaignDaysError::Polars {
        channel: channel.to_string(),
        source,
    };
    let df = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(col("channel").eq(lit(channel)))
        .select([col("account_id")])
        .unique_stable(None, UniqueKeepStrategy::First)
        .collect()
        .map_err(polars)?;
    Ok(df
        .column("account_id")
        .and_then(|c| c.str().cloned())
        .map_err(polars)?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect())
}
