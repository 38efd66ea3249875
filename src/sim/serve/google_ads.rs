//! The world's Google Ads delivery as `googleAds:searchStream` answers: a pretty-printed JSON
//! array of batches, only the selected fields, int64 values as strings, zero metrics left out
//! (proto3 JSON), and Google's error bodies.

use serde_json::{Map, Value, json};

use super::campaign_days::CampaignDay;
use crate::ingest::google_ads::json_path;

/// The world's channel key.
pub const CHANNEL: &str = "google_ads";

/// The customer id the simulated account answers to (the one the demo config names); its
/// world id from `sim.campaigns` is accepted too.
pub const CUSTOMER_ID: &str = "1000000001";

/// The simulated manager (MCC) account, accepted as `login-customer-id`.
pub const MANAGER_CUSTOMER_ID: &str = "1000000000";

/// Rows per batch. Google fills batches of up to 10,000 rows; the simulation uses small ones
/// so that every pull reads several.
pub const BATCH_ROWS: usize = 3;

/// The GAQL fields the simulated `campaign` resource can answer.
pub const SUPPORTED_FIELDS: [&str; 15] = [
    "customer.id",
    "customer.currency_code",
    "customer.time_zone",
    "customer.resource_name",
    "campaign.id",
    "campaign.name",
    "campaign.status",
    "campaign.advertising_channel_type",
    "campaign.resource_name",
    "segments.date",
    "metrics.cost_micros",
    "metrics.impressions",
    "metrics.clicks",
    "metrics.conversions",
    "metrics.view_through_conversions",
];

/// Sets `value` at a dotted JSON path, creating objects on the way.
fn set(row: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut node = row;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_string(), value);
            return;
        }
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        node = next;
    }
}

/// One result row with the selected `fields` (GAQL names). Resource names come with every
/// resource that has a selected field, as Google returns them.
fn result_row(day: &CampaignDay, customer_id: &str, fields: &[String]) -> Value {
    let mut row = Map::new();
    let int = |n: i64| (n != 0).then(|| Value::String(n.to_string()));
    for field in fields {
        let value = match field.as_str() {
            "customer.id" => Some(json!(customer_id)),
            "customer.currency_code" => Some(json!(day.currency)),
            "customer.time_zone" => Some(json!(day.time_zone)),
            "campaign.id" => Some(json!(day.campaign_id)),
            "campaign.name" => Some(json!(day.campaign_name)),
            "campaign.status" => Some(json!("ENABLED")),
            "campaign.advertising_channel_type" => Some(json!("MULTI_CHANNEL")),
            "segments.date" => Some(json!(day.date.format("%Y-%m-%d").to_string())),
            "metrics.cost_micros" => int(day.spend_micros),
            "metrics.impressions" => int(day.impressions),
            "metrics.clicks" => int(day.clicks),
            "metrics.conversions" => (day.installs != 0).then(|| json!(day.installs as f64)),
            "metrics.view_through_conversions" => int(day.view_installs),
            _ => None,
        };
        if let Some(v) = value {
            set(&mut row, &json_path(field), v);
        }
    }
    if fields.iter().any(|f| f.starts_with("customer.")) {
        set(
            &mut row,
            "customer.resourceName",
            json!(format!("customers/{customer_id}")),
        );
    }
    if fields.iter().any(|f| f.starts_with("campaign.")) {
        set(
            &mut row,
            "campaign.resourceName",
            json!(format!(
                "customers/{customer_id}/campaigns/{}",
                day.campaign_id
            )),
        );
    }
    Value::Object(row)
}

/// The whole `searchStream` body for `days` (already filtered to the query's dates).
pub fn render_search_stream(
    days: &[CampaignDay],
    customer_id: &str,
    fields: &[String],
    request_id: &str,
) -> String {
    let mask = fields
        .iter()
        .map(|f| json_path(f))
        .collect::<Vec<_>>()
        .join(",");
    let mut batches: Vec<Value> = days
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            json!({
                "results": chunk.iter().map(|d| result_row(d, customer_id, fields)).collect::<Vec<_>>(),
                "fieldMask": mask,
                "requestId": request_id,
            })
        })
        .collect();
    if batches.is_empty() {
        batches.push(json!({ "fieldMask": mask, "requestId": request_id }));
    }
    if let Some(Value::Object(last)) = batches.last_mut() {
        last.insert(
            "queryResourceConsumption".into(),
            json!((days.len() * 4 + 40).to_string()),
        );
    }
    serde_json::to_string_pretty(&Value::Array(batches)).unwrap_or_else(|_| "[]".into())
}

/// Google's error body with one GoogleAdsError, as searchStream sends it (an array of one
/// element). `retry_delay` adds `quotaErrorDetails` for quota errors.
pub fn error_body(
    code: u16,
    status: &str,
    message: &str,
    error_code: (&str, &str),
    detail: &str,
    retry_delay_secs: Option<u64>,
) -> String {
    let mut kind = Map::new();
    kind.insert(error_code.0.to_string(), json!(error_code.1));
    let mut error = json!({
        "errorCode": kind,
        "message": detail,
    });
    if let Some(secs) = retry_delay_secs {
        error["details"] = json!({
            "quotaErrorDetails": {
                "rateScope": if secs > 3600 { "DEVELOPER" } else { "ACCOUNT" },
                "rateName": if secs > 3600 { "Number of operations for basic access" } else { "Requests per account" },
                "retryDelay": format!("{secs}s"),
            }
        });
    }
    let body = json!([{
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "details": [{
                "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
                "errors": [error],
                "requestId": "sim-error",
            }],
        }
    }]);
    serde_json::to_string_pretty(&body).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{DateTime, NaiveDate, Utc};
    use polars::prelude::ChunkAgg;

    use super::*;
    use crate::ingest::google_ads::{FIELDS, parse_search_stream};

    fn day(id: &str, spend: i64) -> CampaignDay {
        CampaignDay {
            date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            account_id: "4821930475".into(),
            currency: "KRW".into(),
            time_zone: "Asia/Seoul".into(),
            campaign_id: id.into(),
            campaign_name: format!("campaign \"{id}\""),
            spend_micros: spend,
            impressions: 100,
            clicks: 0,
            installs: 3,
            view_installs: 1,
        }
    }

    #[test]
    fn rendered_streams_parse_back_to_the_same_numbers() {
        let fields: Vec<String> = FIELDS.iter().map(|(f, _)| f.to_string()).collect();
        let days: Vec<CampaignDay> = (0..7)
            .map(|i| day(&format!("9{i}"), i * 1_500_000))
            .collect();
        let body = render_search_stream(&days, CUSTOMER_ID, &fields, "r1");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc.as_array().unwrap().len(), 3, "batches of {BATCH_ROWS}");
        assert!(body.contains("\n  {"), "pretty-printed over lines");
        // Zero metrics are left out, as proto3 JSON does.
        assert!(doc[0]["results"][0]["metrics"].get("costMicros").is_none());
        assert!(doc[0]["results"][0]["metrics"].get("clicks").is_none());
        let pulled: DateTime<Utc> = Utc::now();
        let df = parse_search_stream(body.as_bytes(), pulled, "dt=2026-01-02", None).unwrap();
        assert_eq!(df.height(), 7);
        let spend: i64 = df
            .column("cost_micros")
            .unwrap()
            .i64()
            .unwrap()
            .sum()
            .unwrap();
        assert_eq!(spend, (0..7).map(|i| i * 1_500_000).sum::<i64>());
        let empty = render_search_stream(&[], CUSTOMER_ID, &fields, "r2");
        assert_eq!(
            parse_search_stream(empty.as_bytes(), pulled, "dt=2026-01-02", None)
                .unwrap()
                .height(),
            0
        );
    }
}
