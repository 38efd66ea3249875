//! The world's Naver delivery as Naver Search Ad answers: the customer's campaigns as
//! `GET /ncc/campaigns` lists them, and per campaign and day the `/stats` row (`impCnt`,
//! `clkCnt`, `salesAmt`, `ccnt`, `convAmt`). Money is whole won, as Naver reports it; the
//! world's spend stands for what Naver bills, VAT included. `ccnt` counts the channel's
//! installs and 7-day-click purchases, `convAmt` the purchases' value.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::{Map, Value, json};

use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// The world's channel key for Naver.
pub const CHANNEL: &str = "naver";

#[derive(Debug, thiserror::Error)]
pub enum NaverServeError {
    #[error(transparent)]
    World(#[from] super::campaign_days::CampaignDaysError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the world's Naver delivery: {0}")]
    Polars(#[from] PolarsError),
}

/// One campaign's day, summed over its ads (money in micros of KRW, unrounded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignDay {
    pub day: NaiveDate,
    pub campaign_id: String,
    pub impressions: i64,
    pub clicks: i64,
    pub spend_micros: i64,
    pub conversions: i64,
    pub conversion_value_micros: i64,
}

/// The Naver customers (account ids) of the world.
pub async fn world_customers(lake: &Lake) -> Result<Vec<String>, NaverServeError> {
    Ok(super::campaign_days::channel_accounts(lake, CHANNEL).await?)
}

/// The customer's campaigns as `(nccCampaignId, name)`, in id order.
pub async fn world_campaigns(
    lake: &Lake,
    customer: &str,
) -> Result<Vec<(String, String)>, NaverServeError> {
    let registry = Registry::embedded()?;
    let df = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(
            col("channel")
                .eq(lit(CHANNEL))
                .and(col("account_id").eq(lit(customer.to_string()))),
        )
        .select([col("campaign_id"), col("campaign_name")])
        .unique_stable_generic(Some(vec![col("campaign_id")]), UniqueKeepStrategy::First)
        .sort(["campaign_id"], SortMultipleOptions::default())
        .collect()?;
    let ids = df.column("campaign_id")?.str()?.clone();
    let names = df.column("campaign_name")?.str()?.clone();
    Ok(ids
        .iter()
        .zip(names.iter())
        .filter_map(|(i, n)| Some((i?.to_string(), n.unwrap_or_default().to_string())))
        .collect())
}

/// The customer's campaign days from `since` to `until`, in (day, campaign) order.
pub async fn world_campaign_days(
    lake: &Lake,
    customer: &str,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<CampaignDay>, NaverServeError> {
    let registry = Registry::embedded()?;
    let df = lake
        .scan(registry.get("sim.ad_daily")?, DateRange::new(since, until))
        .await?
        .filter(
            col("channel")
                .eq(lit(CHANNEL))
                .and(col("account_id").eq(lit(customer.to_string()))),
        )
        .select([
            col("dt"),
            col("campaign_id"),
            col("impressions"),
            col("clicks"),
            col("spend_micros"),
            (col("installs") + col("purchases_7d_click")).alias("conversions"),
            col("purchase_value_7d_click_micros").alias("conversion_value_micros"),
        ])
        .collect()?;
    let int = |name: &str| -> Result<Vec<i64>, NaverServeError> {
        Ok(df
            .column(name)?
            .i64()?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let days: Vec<i32> = df
        .column("dt")?
        .date()?
        .physical()
        .iter()
        .map(Option::unwrap_or_default)
        .collect();
    let ids: Vec<String> = df
        .column("campaign_id")?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    let (imp, clk, spend, conv, value) = (
        int("impressions")?,
        int("clicks")?,
        int("spend_micros")?,
        int("conversions")?,
        int("conversion_value_micros")?,
    );
    let mut by: BTreeMap<(i32, String), CampaignDay> = BTreeMap::new();
    for i in 0..df.height() {
        let t = by
            .entry((days[i], ids[i].clone()))
            .or_insert_with(|| CampaignDay {
                day: NaiveDate::default() + chrono::Duration::days(i64::from(days[i])),
                campaign_id: ids[i].clone(),
                ..CampaignDay::default()
            });
        t.impressions += imp[i];
        t.clicks += clk[i];
        t.spend_micros += spend[i];
        t.conversions += conv[i];
        t.conversion_value_micros += value[i];
    }
    Ok(by.into_values().collect())
}

/// Micros of KRW rounded half away from zero to whole won, as Naver reports money.
pub fn whole_won(micros: i64) -> i64 {
    let won = if micros >= 0 {
        (micros + 500_000) / 1_000_000
    } else {
        (micros - 500_000) / 1_000_000
    };
    won * 1_000_000
}

/// The `/ncc/campaigns` answer for a customer.
pub fn render_campaigns(customer: &str, campaigns: &[(String, String)]) -> String {
    let customer_id: i64 = customer.parse().unwrap_or_default();
    let items: Vec<Value> = campaigns
        .iter()
        .map(|(id, name)| {
            json!({
                "nccCampaignId": id,
                "customerId": customer_id,
                "name": name,
                "userLock": false,
                "campaignTp": "WEB_SITE",
                "deliveryMethod": "STANDARD",
                "trackingMode": "TRACKING_DISABLED",
                "usePeriod": false,
                "dailyBudget": 0,
                "useDailyBudget": false,
                "status": "ELIGIBLE",
                "statusReason": "ELIGIBLE",
                "expectCost": 0,
                "migType": 0,
                "delFlag": false,
                "regTm": "2025-12-01T00:00:00.000Z",
                "editTm": "2025-12-01T00:00:00.000Z",
            })
        })
        .collect();
    Value::Array(items).to_string()
}

/// The `/stats` answer: a row per requested campaign with delivery on each day, with the
/// requested `fields` only (plus `id`, `dateStart`, `dateEnd`).
pub fn render_stats(days: &[CampaignDay], ids: &[&str], fields: &[&str]) -> String {
    let rows: Vec<Value> = days
        .iter()
        .filter(|d| ids.contains(&d.campaign_id.as_str()))
        .map(|d| {
            let mut o = Map::new();
            o.insert("id".into(), json!(d.campaign_id));
            let values = [
                ("impCnt", d.impressions),
                ("clkCnt", d.clicks),
                ("salesAmt", whole_won(d.spend_micros) / 1_000_000),
                ("ccnt", d.conversions),
                ("convAmt", whole_won(d.conversion_value_micros) / 1_000_000),
            ];
            for (k, v) in values {
                if fields.contains(&k) {
                    o.insert(k.into(), json!(v));
                }
            }
            o.insert("dateStart".into(), json!(d.day.to_string()));
            o.insert("dateEnd".into(), json!(d.day.to_string()));
            Value::Object(o)
        })
        .collect();
    json!({ "data": rows }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_whole_won() {
        assert_eq!(whole_won(1_499_999), 1_000_000);
        assert_eq!(whole_won(1_500_000), 2_000_000);
        assert_eq!(whole_won(-1_500_000), -2_000_000);
    }
}
