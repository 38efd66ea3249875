//! The world's Apple Search Ads delivery as Campaign Management API v5 campaign reports:
//! DAILY granularity, one row per campaign with its metadata and one metrics object per day,
//! v5 field names, money as `{amount, currency}` with the amount an exact decimal string,
//! paged by offset and limit over campaigns in campaign id order.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::campaign_days::CampaignDay;
use crate::ingest::mixpanel::write_micros_decimal;

/// The world's channel key.
pub const CHANNEL: &str = "apple_search_ads";

/// The organization id the simulated account answers to (the demo config's); its world
/// account id is accepted too.
pub const ORG_ID: u64 = 1000001;

/// The App Store id of the simulated app.
pub const ADAM_ID: u64 = 1000000001;

fn money(micros: i64, currency: &str) -> Value {
    let mut amount = String::new();
    write_micros_decimal(&mut amount, micros);
    json!({ "amount": amount, "currency": currency })
}

/// A per-unit price in whole cents (Apple shows averages rounded to cents).
fn per(micros: i64, n: i64, currency: &str) -> Value {
    let cents = if n == 0 {
        0
    } else {
        (micros / n + 5_000) / 10_000
    };
    money(cents * 10_000, currency)
}

/// Campaign ids sort as numbers, as Apple orders `campaignId`.
fn id_key(id: &str) -> (usize, String) {
    (id.len(), id.to_string())
}

fn id_value(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn metrics(d: &CampaignDay) -> Value {
    let rate = |a: i64, b: i64| {
        if b == 0 {
            0.0
        } else {
            (a as f64 / b as f64 * 10_000.0).round() / 10_000.0
        }
    };
    let total = d.installs + d.view_installs;
    json!({
        "impressions": d.impressions,
        "taps": d.clicks,
        "tapInstalls": d.installs,
        "viewInstalls": d.view_installs,
        "totalInstalls": total,
        "ttr": rate(d.clicks, d.impressions),
        "tapInstallRate": rate(d.installs, d.clicks),
        "totalInstallRate": rate(total, d.clicks),
        "avgCPT": per(d.spend_micros, d.clicks, &d.currency),
        "avgCPM": per(d.spend_micros.saturating_mul(1000), d.impressions, &d.currency),
        "tapInstallCPI": per(d.spend_micros, d.installs, &d.currency),
        "totalAvgCPI": per(d.spend_micros, total, &d.currency),
        "localSpend": money(d.spend_micros, &d.currency),
        "date": d.date.format("%Y-%m-%d").to_string(),
    })
}

fn metadata(first: &CampaignDay, org_id: u64) -> Value {
    json!({
        "campaignId": id_value(&first.campaign_id),
        "campaignName": first.campaign_name,
        "deleted": false,
        "campaignStatus": "ENABLED",
        "app": { "appName": "LTV Demo", "adamId": ADAM_ID },
        "servingStatus": "RUNNING",
        "servingStateReasons": null,
        "countriesOrRegions": ["US"],
        "modificationTime": "2025-12-20T08:00:00.000",
        "totalBudget": null,
        "dailyBudget": money(2_000_000_000, &first.currency),
        "displayStatus": "RUNNING",
        "supplySources": ["APPSTORE_SEARCH_RESULTS"],
        "adChannelType": "SEARCH",
        "orgId": org_id,
        "billingEvent": "TAPS",
        "countryOrRegionServingStateReasons": {},
    })
}

/// One page of the campaign report over `days` (already filtered to the requested range):
/// campaign rows `offset..offset+limit` and the pagination block.
pub fn render_report_page(
    days: &[CampaignDay],
    org_id: u64,
    offset: usize,
    limit: usize,
) -> String {
    let mut campaigns: BTreeMap<(usize, String), Vec<&CampaignDay>> = BTreeMap::new();
    for d in days {
        campaigns.entry(id_key(&d.campaign_id)).or_default().push(d);
    }
    let total = campaigns.len();
    let rows: Vec<Value> = campaigns
        .values()
        .skip(offset)
        .take(limit)
        .filter_map(|ds| {
            let first = ds.first()?;
            let mut ds = ds.clone();
            ds.sort_by_key(|d| d.date);
            Some(json!({
                "other": false,
                "granularity": ds.iter().map(|d| metrics(d)).collect::<Vec<_>>(),
                "metadata": metadata(first, org_id),
            }))
        })
        .collect();
    let body = json!({
        "data": { "reportingDataResponse": { "row": rows } },
        "pagination": { "totalResults": total, "startIndex": offset, "itemsPerPage": rows.len() },
        "error": null,
    });
    body.to_string()
}

/// Apple's error body: `{"data": null, "pagination": null, "error": {"errors": [...]}}`.
pub fn error_body(message_code: &str, message: &str, field: &str) -> String {
    json!({
        "data": null,
        "pagination": null,
        "error": { "errors": [{ "messageCode": message_code, "message": message, "field": field }] },
    })
    .to_string()
}

/// Days from `start` to `end` inclusive, or `None` when `end` comes first.
pub fn range_days(start: NaiveDate, end: NaiveDate) -> Option<i64> {
    (end >= start).then(|| (end - start).num_days() + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use polars::prelude::ChunkAgg;

    use super::*;
    use crate::ingest::apple_search_ads::parse_page;

    fn day(id: &str, date: &str, spend: i64) -> CampaignDay {
        CampaignDay {
            date: date.parse().unwrap(),
            account_id: "4821930".into(),
            currency: "USD".into(),
            time_zone: "UTC".into(),
            campaign_id: id.into(),
            campaign_name: format!("c{id}"),
            spend_micros: spend,
            impressions: 1000,
            clicks: 40,
            installs: 9,
            view_installs: 2,
        }
    }

    #[test]
    fn pages_cover_every_campaign_once_and_parse_back_exactly() {
        let days = vec![
            day("900", "2026-01-01", 1_234_567),
            day("1000", "2026-01-01", 5_000_000),
            day("900", "2026-01-02", 10),
            day("20000", "2026-01-02", 7_777_777_777),
        ];
        let mut spend = 0;
        let mut ids = Vec::new();
        for offset in [0, 2] {
            let body = render_report_page(&days, ORG_ID, offset, 2);
            let page =
                parse_page(body.as_bytes(), "1000001", Utc::now(), "p", offset as u64).unwrap();
            assert_eq!(page.total_results, 3);
            spend += page
                .frame
                .column("local_spend_micros")
                .unwrap()
                .i64()
                .unwrap()
                .sum()
                .unwrap();
            ids.extend(crate::test_support::strs(&page.frame, "campaign_id"));
        }
        assert_eq!(spend, 1_234_567 + 5_000_000 + 10 + 7_777_777_777);
        let ids: Vec<String> = ids.into_iter().map(Option::unwrap).collect();
        assert_eq!(ids, ["900", "900", "1000", "20000"], "numeric id order");
        assert_eq!(
            range_days("2026-01-01".parse().unwrap(), "2026-03-31".parse().unwrap()),
            Some(90)
        );
    }
}
