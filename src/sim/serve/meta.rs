//! The world's Facebook delivery as Meta insights rows: `sim.ad_daily` (channel
//! `facebook`) named from `sim.campaigns`, summed to the requested level per account day,
//! with metrics as decimal strings, spend rounded to the account currency's minor unit as
//! Meta reports it, and installs and purchases as `actions` / `action_values` per
//! attribution window.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::{Map, Value, json};

use crate::config::MetaLevel;
use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};

/// The world's channel key for Meta.
pub const CHANNEL: &str = "facebook";
/// Meta's action type for app installs.
pub const INSTALL: &str = "mobile_app_install";
/// Meta's action type for in-app purchases reported by the SDK.
pub const PURCHASE: &str = "app_custom_event.fb_mobile_purchase";
/// The windows the world reports, in `sim.ad_daily`'s order.
pub const WINDOWS: [&str; 4] = ["1d_click", "7d_click", "28d_click", "1d_view"];

#[derive(Debug, thiserror::Error)]
pub enum MetaServeError {
    #[error(transparent)]
    World(#[from] super::campaign_days::CampaignDaysError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("reading the world's Facebook delivery: {0}")]
    Polars(#[from] PolarsError),
}

/// One ad's day in the world, as Meta would total it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdDay {
    pub day: NaiveDate,
    pub account_id: String,
    pub currency: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub adset_id: String,
    pub adset_name: String,
    pub ad_id: String,
    pub ad_name: String,
    pub impressions: i64,
    pub clicks: i64,
    pub spend_micros: i64,
    pub installs: i64,
    pub view_installs: i64,
    /// Purchases per window of [`WINDOWS`].
    pub purchases: [i64; 4],
    /// Purchase value (micros of `currency`) per window of [`WINDOWS`].
    pub values: [i64; 4],
}

/// The ad accounts (`act_<digits>`) that have Facebook campaigns in the world.
pub async fn world_accounts(lake: &Lake) -> Result<Vec<String>, MetaServeError> {
    Ok(super::campaign_days::channel_accounts(lake, CHANNEL).await?)
}

/// Every ad day of `account_id` (`act_<digits>`) from `since` to `until` (account days).
pub async fn world_ad_days(
    lake: &Lake,
    account_id: &str,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<AdDay>, MetaServeError> {
    let registry = Registry::embedded()?;
    let daily = lake
        .scan(registry.get("sim.ad_daily")?, DateRange::new(since, until))
        .await?
        .filter(
            col("channel")
                .eq(lit(CHANNEL))
                .and(col("account_id").eq(lit(account_id.to_string()))),
        );
    let names = lake
        .scan(registry.get("sim.campaigns")?, DateRange::all())
        .await?
        .filter(col("channel").eq(lit(CHANNEL)))
        .select([
            col("ad_id"),
            col("campaign_name"),
            col("adset_name"),
            col("ad_name"),
        ]);
    let df = daily
        .left_join(names, col("ad_id"), col("ad_id"))
        .sort(["dt", "ad_id"], SortMultipleOptions::default())
        .collect()?;
    let text = |name: &str| -> Result<Vec<String>, MetaServeError> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let int = |name: &str| -> Result<Vec<i64>, MetaServeError> {
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
    let (account, currency, campaign, campaign_name, adset, adset_name, ad, ad_name) = (
        text("account_id")?,
        text("currency")?,
        text("campaign_id")?,
        text("campaign_name")?,
        text("adset_id")?,
        text("adset_name")?,
        text("ad_id")?,
        text("ad_name")?,
    );
    let (impressions, clicks, spend, installs, view_installs) = (
        int("impressions")?,
        int("clicks")?,
        int("spend_micros")?,
        int("installs")?,
        int("view_installs")?,
    );
    let purchases = WINDOWS
        .iter()
        .map(|w| int(&format!("purchases_{w}")))
        .collect::<Result<Vec<_>, _>>()?;
    let values = WINDOWS
        .iter()
        .map(|w| int(&format!("purchase_value_{w}_micros")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(AdDay {
            day: NaiveDate::default() + chrono::Duration::days(i64::from(days[i])),
            account_id: account[i].clone(),
            currency: currency[i].clone(),
            campaign_id: campaign[i].clone(),
            campaign_name: campaign_name[i].clone(),
            adset_id: adset[i].clone(),
            adset_name: adset_name[i].clone(),
            ad_id: ad[i].clone(),
            ad_name: ad_name[i].clone(),
            impressions: impressions[i],
            clicks: clicks[i],
            spend_micros: spend[i],
            installs: installs[i],
            view_installs: view_installs[i],
            purchases: std::array::from_fn(|w| purchases[w][i]),
            values: std::array::from_fn(|w| values[w][i]),
        });
    }
    Ok(out)
}

/// Decimal digits Meta shows for a currency (zero-decimal currencies have none).
fn minor_digits(currency: &str) -> u32 {
    match currency {
        "KRW" | "JPY" | "VND" | "CLP" | "ISK" | "HUF" | "TWD" | "IDR" | "COP" => 0,
        _ => 2,
    }
}

/// Micros rounded (half away from zero) to the currency's minor unit, as Meta reports money.
pub fn round_to_minor(micros: i64, currency: &str) -> i64 {
    let unit = 10_i64.pow(6 - minor_digits(currency));
    let half = unit / 2;
    let q = if micros >= 0 {
        (micros + half) / unit
    } else {
        (micros - half) / unit
    };
    q * unit
}

/// Money as Meta writes it: a decimal string in the minor unit, trailing zeros dropped
/// (`"412.57"`, `"3.1"`, `"80"`).
pub fn money_text(micros: i64, currency: &str) -> String {
    let r = round_to_minor(micros, currency);
    let sign = if r < 0 { "-" } else { "" };
    let a = r.unsigned_abs();
    let whole = a / 1_000_000;
    let frac = format!("{:06}", a % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// The level's key of an ad day: the ids a row of that level is keyed by.
fn key(level: MetaLevel, a: &AdDay) -> (NaiveDate, String) {
    let id = match level {
        MetaLevel::Account => String::new(),
        MetaLevel::Campaign => a.campaign_id.clone(),
        MetaLevel::Adset => a.adset_id.clone(),
        MetaLevel::Ad => a.ad_id.clone(),
    };
    (a.day, id)
}

/// Sums ad days to `level`, one total per (day, id), in day then id order.
pub fn totals(level: MetaLevel, ad_days: &[AdDay]) -> Vec<AdDay> {
    let mut by: BTreeMap<(NaiveDate, String), AdDay> = BTreeMap::new();
    for a in ad_days {
        let t = by.entry(key(level, a)).or_insert_with(|| AdDay {
            impressions: 0,
            clicks: 0,
            spend_micros: 0,
            installs: 0,
            view_installs: 0,
            purchases: [0; 4],
            values: [0; 4],
            ..a.clone()
        });
        t.impressions += a.impressions;
        t.clicks += a.clicks;
        t.spend_micros += a.spend_micros;
        t.installs += a.installs;
        t.view_installs += a.view_installs;
        for w in 0..4 {
            t.purchases[w] += a.purchases[w];
            t.values[w] += a.values[w];
        }
    }
    by.into_values().collect()
}

/// One action entry: `value` (Meta's default attribution, 7d click + 1d view) and a key per
/// requested window, zero windows left out as Meta does; `None` when every figure is zero.
fn action(
    action_type: &str,
    per_window: [String; 4],
    default: String,
    windows: &[&str],
) -> Option<Value> {
    let mut o = Map::new();
    o.insert("action_type".into(), json!(action_type));
    o.insert("value".into(), json!(default));
    for (w, v) in WINDOWS.iter().zip(per_window) {
        if windows.contains(w) && v != "0" {
            o.insert((*w).into(), json!(v));
        }
    }
    (default != "0" || o.len() > 2).then_some(Value::Object(o))
}

/// Insights rows of `level` (already summed with [`totals`]) with only the requested
/// `fields` (plus `date_start` / `date_stop`, which Meta always sends).
pub fn insight_rows(
    level: MetaLevel,
    totals: &[AdDay],
    windows: &[&str],
    fields: &[&str],
) -> Vec<Value> {
    totals
        .iter()
        .map(|t| {
            let cur = t.currency.as_str();
            let mut row = Map::new();
            let mut put = |k: &str, v: Value| {
                if fields.contains(&k) || k == "date_start" || k == "date_stop" {
                    row.insert(k.to_string(), v);
                }
            };
            put("account_id", json!(t.account_id.trim_start_matches("act_")));
            put("account_currency", json!(cur));
            if level != MetaLevel::Account {
                put("campaign_id", json!(t.campaign_id));
                put("campaign_name", json!(t.campaign_name));
            }
            if matches!(level, MetaLevel::Adset | MetaLevel::Ad) {
                put("adset_id", json!(t.adset_id));
                put("adset_name", json!(t.adset_name));
            }
            if level == MetaLevel::Ad {
                put("ad_id", json!(t.ad_id));
                put("ad_name", json!(t.ad_name));
            }
            put("impressions", json!(t.impressions.to_string()));
            put("clicks", json!(t.clicks.to_string()));
            put("spend", json!(money_text(t.spend_micros, cur)));
            let installs = action(
                INSTALL,
                [t.installs, t.installs, t.installs, t.view_installs].map(|n| n.to_string()),
                (t.installs + t.view_installs).to_string(),
                windows,
            );
            let purchases = action(
                PURCHASE,
                t.purchases.map(|n| n.to_string()),
                (t.purchases[1] + t.purchases[3]).to_string(),
                windows,
            );
            let actions: Vec<Value> = [installs, purchases].into_iter().flatten().collect();
            if !actions.is_empty() {
                put("actions", Value::Array(actions));
            }
            if let Some(v) = action(
                PURCHASE,
                t.values.map(|m| money_text(m, cur)),
                money_text(
                    round_to_minor(t.values[1], cur) + round_to_minor(t.values[3], cur),
                    cur,
                ),
                windows,
            ) {
                put("action_values", Value::Array(vec![v]));
            }
            put("date_start", json!(t.day.to_string()));
            put("date_stop", json!(t.day.to_string()));
            Value::Object(row)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn money_is_rounded_to_the_minor_unit_and_written_short() {
        assert_eq!(money_text(412_574_999, "USD"), "412.57");
        assert_eq!(money_text(412_575_000, "USD"), "412.58");
        assert_eq!(money_text(3_100_000, "USD"), "3.1");
        assert_eq!(money_text(80_000_000, "USD"), "80");
        assert_eq!(money_text(1_234_500_000, "KRW"), "1235");
        assert_eq!(round_to_minor(-5_000, "USD"), -10_000);
    }

    #[test]
    fn rows_sum_to_the_level_and_keep_only_asked_fields() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let ad = |id: &str, spend: i64| AdDay {
            day,
            account_id: "act_1".into(),
            currency: "USD".into(),
            campaign_id: "c1".into(),
            adset_id: "s1".into(),
            ad_id: id.into(),
            impressions: 10,
            clicks: 2,
            spend_micros: spend,
            installs: 1,
            purchases: [0, 1, 1, 0],
            values: [0, 4_990_000, 4_990_000, 0],
            ..AdDay::default()
        };
        let t = totals(
            MetaLevel::Campaign,
            &[ad("a1", 1_004_000), ad("a2", 1_004_000)],
        );
        assert_eq!(t.len(), 1);
        let rows = insight_rows(
            MetaLevel::Campaign,
            &t,
            &["1d_click", "7d_click"],
            &["campaign_id", "spend", "actions", "action_values"],
        );
        let r = &rows[0];
        assert_eq!(r["spend"], "2.01");
        assert!(r.get("impressions").is_none());
        assert_eq!(r["actions"][0]["action_type"], INSTALL);
        assert_eq!(r["actions"][0]["1d_click"], "2");
        assert!(r["actions"][0].get("28d_click").is_none());
        assert_eq!(r["actions"][1]["7d_click"], "2");
        assert!(
            r["actions"][1].get("1d_click").is_none(),
            "zero windows are left out"
        );
        assert_eq!(r["action_values"][0]["7d_click"], "9.98");
        assert_eq!(r["date_start"], "2026-01-02");
    }
}
