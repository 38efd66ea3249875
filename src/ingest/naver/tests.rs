use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use polars::prelude::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;
use crate::ingest::http::Verdict;
use crate::schema::Registry;
use crate::test_support::strs;

const PART: &str = "dt=2026-01-02";

fn fixture(name: &str) -> Vec<u8> {
    crate::test_support::fixture("naver", name)
}

fn pulled() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 3, 1, 0, 0).unwrap()
}

fn names() -> HashMap<String, Option<String>> {
    parse_campaigns(&fixture("campaigns.json"), PART)
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect()
}

fn spec(names: &HashMap<String, Option<String>>) -> StatsSpec<'_> {
    let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    StatsSpec {
        customer_id: 2_481_537,
        since: day,
        until: day,
        names,
    }
}

fn ints(df: &DataFrame, name: &str) -> Vec<i64> {
    df.column(name)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect()
}

#[test]
fn the_campaign_list_gives_ids_and_names() {
    let c = parse_campaigns(&fixture("campaigns.json"), PART).unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].id, "cmp-a001-01-000000004312345");
    assert_eq!(c[1].name.as_deref(), Some("naver_android_lookalike_02"));
    let e = parse_campaigns(br#"[{"name":"x"}]"#, PART).unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(1), Some("nccCampaignId"))
    );
}

#[test]
fn a_day_of_stats_parses_exactly() {
    let names = names();
    let df = parse_stats(&fixture("stats_day.json"), &spec(&names), pulled(), PART).unwrap();
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(&df, PART)
        .unwrap();
    assert_eq!(df.height(), 2);
    assert_eq!(ints(&df, "spend_micros"), [245_300_000_000, 0]);
    assert_eq!(ints(&df, "conversion_value_micros"), [129_000_000_000, 0]);
    assert_eq!(ints(&df, "impressions"), [18_234, 0]);
    assert_eq!(ints(&df, "clicks"), [412, 0]);
    assert_eq!(ints(&df, "conversions"), [37, 0]);
    assert_eq!(
        strs(&df, "campaign_name")[0].as_deref(),
        Some("naver_all_brand_01")
    );
    assert_eq!(strs(&df, "currency")[0].as_deref(), Some("KRW"));
    assert_eq!(strs(&df, "customer_id")[0].as_deref(), Some("2481537"));
    assert_eq!(strs(&df, "extra")[1].as_deref(), Some(r#"{"ctr":0.0}"#));
    let empty = parse_stats(&fixture("stats_empty.json"), &spec(&names), pulled(), PART).unwrap();
    assert_eq!(empty.height(), 0);
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(&empty, PART)
        .unwrap();
}

#[test]
fn bad_and_cut_answers_fail_clearly() {
    let names = names();
    let e = parse_stats(
        &fixture("stats_bad_sales.json"),
        &spec(&names),
        pulled(),
        PART,
    )
    .unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref(), e.retryable),
        (Some(1), Some("salesAmt"), false)
    );
    assert_eq!(e.stream, STREAM);
    let e = parse_stats(&fixture("stats_cut.json"), &spec(&names), pulled(), PART).unwrap_err();
    assert!(e.retryable, "{e}");
    // A row for a campaign nobody asked about is refused.
    let other = HashMap::new();
    let e = parse_stats(&fixture("stats_day.json"), &spec(&other), pulled(), PART).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("id"));
}

#[test]
fn throttling_is_retried_and_refusals_are_fatal() {
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("2"));
    match verdict(
        StatusCode::TOO_MANY_REQUESTS,
        &h,
        &fixture("error_throttle.json"),
    ) {
        Verdict::Retry { after, reason } => {
            assert_eq!(after, Some(std::time::Duration::from_secs(2)));
            assert!(reason.contains("1016"), "{reason}");
        }
        v => panic!("{v:?}"),
    }
    // Code 1016 is throttling whatever the status.
    assert!(matches!(
        verdict(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &fixture("error_throttle.json")
        ),
        Verdict::Retry { .. }
    ));
    match verdict(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        &fixture("error_no_permission.json"),
    ) {
        Verdict::Fatal(m) => assert!(m.contains("1018") && m.contains("refused"), "{m}"),
        v => panic!("{v:?}"),
    }
    assert_eq!(
        verdict(StatusCode::OK, &HeaderMap::new(), b"[]"),
        Verdict::Done
    );
}
