use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::lake::{DateRange, Lake};
use crate::schema::Registry;
use crate::sim::serve::sheets::render_values;
use crate::test_support::strs;

const PART: &str = "dt=2026-01-05";

fn fixture(name: &str) -> Vec<u8> {
    crate::test_support::fixture("google_sheets", name)
}

fn pulled() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 3, 0, 0).unwrap()
}

fn parse(name: &str, range: SheetRange) -> Result<DataFrame, ParseError> {
    parse_values(&fixture(name), range, pulled(), PART)
}

/// Parses and checks the frame against the range's raw schema, as the lake write would.
fn parse_valid(name: &str, range: SheetRange) -> DataFrame {
    let df = parse(name, range).unwrap();
    Registry::embedded()
        .unwrap()
        .get(range.table())
        .unwrap()
        .validate(&df, PART)
        .unwrap();
    df
}

fn days(df: &DataFrame, name: &str) -> Vec<Option<NaiveDate>> {
    df.column(name)
        .unwrap()
        .date()
        .unwrap()
        .physical()
        .iter()
        .map(|d| d.map(|d| NaiveDate::default() + chrono::TimeDelta::days(d.into())))
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

#[test]
fn every_range_has_a_schema_with_the_frame_it_parses() {
    let registry = Registry::embedded().unwrap();
    for range in SheetRange::ALL {
        let t = registry.get(range.table()).unwrap();
        assert_eq!(t.partition.as_deref(), Some("dt"));
        assert_eq!(t.primary_key, ["dt", "row"]);
        assert_eq!(t.columns[0].name, "dt");
        // A header-only sheet parses to the schema's exact columns and types.
        let header: Vec<String> = range.headers().iter().map(|h| h.to_string()).collect();
        let body = serde_json::json!({ "range": "x!A1:F", "values": [header] }).to_string();
        let df = parse_values(body.as_bytes(), range, pulled(), PART).unwrap();
        assert_eq!(df.height(), 0);
        assert_eq!(df.schema().as_ref(), &t.file_schema(), "{range:?}");
    }
}

#[test]
fn campaign_overrides_keep_rows_extras_and_ragged_cells() {
    let df = parse_valid("campaign_overrides.json", SheetRange::CampaignOverrides);
    // Row 4 is blank and skipped; rows keep their sheet numbers.
    let rows: Vec<u64> = df
        .column("row")
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(rows, [2, 3, 5]);
    assert_eq!(
        strs(&df, "channel"),
        [s("facebook"), s("naver"), s("adison")]
    );
    assert_eq!(
        strs(&df, "attribution_campaign_id"),
        [s("23851001234567"), s("naver_brand_kr"), s("457781001")]
    );
    // An empty cell and omitted trailing cells are both nulls.
    assert_eq!(
        strs(&df, "campaign_name"),
        [None, None, s("reward_wall_kr")]
    );
    assert_eq!(strs(&df, "note")[1], None);
    assert_eq!(strs(&df, "extra"), [None, None, s(r#"{"owner":"jiwoo"}"#)]);
    let pulled_at = df
        .column("pulled_at")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .get(0);
    assert_eq!(pulled_at, Some(pulled().timestamp_millis()));
}

#[test]
fn manual_costs_parse_formatted_money_exactly() {
    let df = parse_valid("manual_costs.json", SheetRange::ManualCosts);
    let micros: Vec<Option<i64>> = df
        .column("cost_micros")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        micros,
        [
            Some(1_234_000_000_000),
            Some(1_234_500_000),
            Some(-12_000_000_000)
        ]
    );
    // A blank currency cell is filled from the amount's symbol.
    assert_eq!(strs(&df, "currency"), [s("KRW"), s("USD"), s("KRW")]);
    assert_eq!(
        days(&df, "date"),
        [ymd(2026, 1, 3), ymd(2026, 1, 4), ymd(2026, 1, 5)]
    );
    assert_eq!(
        strs(&df, "note"),
        [s("invoice 2026-001"), None, s("refund")]
    );
}

#[test]
fn header_only_and_absent_values_give_empty_typed_frames() {
    let df = parse_valid("manual_costs_header_only.json", SheetRange::ManualCosts);
    assert_eq!(df.height(), 0);
    let df = parse_valid("test_devices_empty.json", SheetRange::TestDevices);
    assert_eq!(df.height(), 0);
    assert_eq!(df.width(), 6);
}

#[test]
fn test_devices_ragged_rows_become_nulls() {
    let df = parse_valid("test_devices.json", SheetRange::TestDevices);
    assert_eq!(df.height(), 3);
    assert_eq!(
        strs(&df, "label"),
        [s("QA Galaxy #01"), s("QA iPhone #02"), None]
    );
    assert_eq!(strs(&df, "platform"), [s("android"), None, None]);
}

#[test]
fn fx_rates_parse_both_date_forms_and_percentages() {
    let df = parse_valid("fx_rates.json", SheetRange::FxRates);
    assert_eq!(
        days(&df, "date"),
        [
            ymd(2026, 1, 3),
            ymd(2026, 1, 3),
            ymd(2026, 1, 3),
            ymd(2026, 1, 4)
        ]
    );
    assert_eq!(
        strs(&df, "currency"),
        [s("KRW"), s("JPY"), s("USD"), s("KRW")]
    );
    let rates: Vec<f64> = df
        .column("usd_per_unit")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(rates, [0.000741, 0.006667, 1.0, 0.000741]);
}

#[test]
fn bad_cells_and_headers_fail_naming_row_and_column() {
    let e = parse("manual_costs_bad_cost.json", SheetRange::ManualCosts).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(3), Some("cost")), "{e}");
    assert!(e.to_string().contains("D3"), "{e}");
    assert_eq!(e.stream, "google_sheets.manual_costs");
    assert!(!e.retryable);

    let e = parse("fx_rates_bad_date.json", SheetRange::FxRates).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(3), Some("date")), "{e}");

    let e = parse("test_devices_missing_header.json", SheetRange::TestDevices).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("advertising_id"), "{e}");
    assert!(e.to_string().contains("advertising_id"), "{e}");

    // A required cell left blank, and a currency contradicting the amount's symbol.
    let body = r#"{"range":"fx_rates!A1:C","values":[["date","currency","usd_per_unit"],["2026-01-03","KRW"]]}"#;
    let e = parse_values(body.as_bytes(), SheetRange::FxRates, pulled(), PART).unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(2), Some("usd_per_unit")),
        "{e}"
    );
    let body = r#"{"values":[["date","channel","campaign_id","cost","currency"],["2026-01-03","tv","x","$5","KRW"]]}"#;
    let e = parse_values(body.as_bytes(), SheetRange::ManualCosts, pulled(), PART).unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(2), Some("currency")),
        "{e}"
    );
}

#[test]
fn rows_are_numbered_from_the_ranges_first_row() {
    let body = r#"{"range":"'QA list'!B5:D9","values":[["advertising_id","label","platform"],["x","y","ios"]]}"#;
    let df = parse_values(body.as_bytes(), SheetRange::TestDevices, pulled(), PART).unwrap();
    assert_eq!(df.column("row").unwrap().u64().unwrap().get(0), Some(6));
    assert_eq!(a1_start("'QA list'!B5:D9"), (1, 5));
    assert_eq!(column_letters(0), "A");
    assert_eq!(column_letters(27), "AB");
}

#[test]
fn a_cut_short_body_is_retryable() {
    let body = fixture("fx_rates.json");
    let e = parse_values(&body[..body.len() / 2], SheetRange::FxRates, pulled(), PART).unwrap_err();
    assert!(e.retryable, "{e}");
}

async fn small_world() -> Lake {
    crate::test_support::small_world(3, 300).await.0
}

async fn world(lake: &Lake, table: &str, sort: &[&str]) -> DataFrame {
    let t = Registry::embedded().unwrap().get(table).unwrap();
    let lf = lake.scan(t, DateRange::all()).await.unwrap();
    let lf = if sort.is_empty() {
        lf
    } else {
        lf.sort(
            sort.iter()
                .map(|s| PlSmallStr::from(*s))
                .collect::<Vec<_>>(),
            Default::default(),
        )
    };
    lf.collect().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worlds_sheets_round_trip_exactly() {
    let lake = small_world().await;
    let ranges = crate::config::SheetRanges::default();
    let mut parsed = HashMap::new();
    for range in SheetRange::ALL {
        let body = render_values(&lake, range, range.a1_range(&ranges))
            .await
            .unwrap();
        let df = parse_values(&body, range, pulled(), PART).unwrap();
        Registry::embedded()
            .unwrap()
            .get(range.table())
            .unwrap()
            .validate(&df, PART)
            .unwrap();
        parsed.insert(range, (body, df));
    }

    let devices = world(&lake, "sim.test_devices", &[]).await;
    let got = &parsed[&SheetRange::TestDevices].1;
    assert!(devices.height() > 0);
    for c in ["advertising_id", "label", "platform"] {
        assert_eq!(strs(got, c), strs(&devices, c), "{c}");
    }

    let fx = world(&lake, "sim.fx_rates", &["dt", "currency"]).await;
    let got = &parsed[&SheetRange::FxRates].1;
    assert_eq!(fx.height(), 9);
    assert_eq!(days(got, "date"), days(&fx, "dt"));
    assert_eq!(strs(got, "currency"), strs(&fx, "currency"));
    let bits = |df: &DataFrame| -> Vec<u64> {
        df.column("usd_per_unit")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_bits())
            .collect()
    };
    assert_eq!(bits(got), bits(&fx));

    // Overrides point at campaigns that exist; the world keeps no manual costs.
    let campaigns = world(&lake, "sim.campaigns", &[]).await;
    let ids: std::collections::HashSet<Option<String>> =
        strs(&campaigns, "campaign_id").into_iter().collect();
    let got = &parsed[&SheetRange::CampaignOverrides].1;
    assert_eq!(got.height(), 4);
    for id in strs(got, "attribution_campaign_id") {
        assert!(ids.contains(&id), "{id:?}");
    }
    assert_eq!(strs(got, "campaign_name").iter().flatten().count(), 1);
    let (body, costs) = &parsed[&SheetRange::ManualCosts];
    assert_eq!(costs.height(), 0);
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["values"].as_array().unwrap().len(), 1);
    assert_eq!(body["range"], "manual_costs!A1:F");

    // A window the world leaves empty omits `values`, as the API does.
    let body = render_values(&lake, SheetRange::ManualCosts, "manual_costs!A2:F")
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body.get("values").is_none(), "{body}");
}
