use super::*;
use crate::schema::Registry;
use crate::test_support::{fixture, strs};

fn pulled() -> DateTime<Utc> {
    "2026-01-03T01:00:00Z".parse().unwrap()
}

fn page(name: &str, offset: u64) -> Result<Page, ParseError> {
    parse_page(
        &fixture("apple_search_ads", name),
        "1000001",
        pulled(),
        "2026-01-01..2026-01-02",
        offset,
    )
}

fn ints(df: &DataFrame, c: &str) -> Vec<i64> {
    df.column(c)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect()
}

#[test]
fn a_daily_report_page_becomes_one_row_per_campaign_and_day() {
    let p = page("report_page1.json", 0).unwrap();
    assert_eq!((p.campaigns, p.total_results), (2, 3));
    let df = &p.frame;
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(df, "dt=2026-01-01")
        .unwrap();
    assert_eq!(df.height(), 4);
    assert_eq!(
        ints(df, "local_spend_micros"),
        [188_340_000, 176_100_000, 402_725_000, 391_000_000]
    );
    assert_eq!(ints(df, "tap_installs"), [61, 58, 70, 66]);
    assert_eq!(ints(df, "view_installs"), [7, 4, 12, 9]);
    assert_eq!(ints(df, "total_installs"), [68, 62, 82, 75]);
    assert_eq!(ints(df, "taps"), [402, 377, 515, 498]);
    assert_eq!(
        strs(df, "campaign_id"),
        ["1234567001", "1234567001", "1234567002", "1234567002"].map(|s| Some(s.to_string()))
    );
    assert_eq!(strs(df, "adam_id")[0].as_deref(), Some("1000000001"));
    assert_eq!(strs(df, "org_id")[0].as_deref(), Some("1000001"));
    // Nothing is lost: the whole metadata and the metrics without a column are kept.
    let meta: serde_json::Value =
        serde_json::from_str(strs(df, "metadata")[0].as_deref().unwrap()).unwrap();
    assert_eq!(meta["dailyBudget"]["amount"], "1500");
    let extra: serde_json::Value =
        serde_json::from_str(strs(df, "extra")[0].as_deref().unwrap()).unwrap();
    assert_eq!(extra["avgCPT"]["currency"], "USD");
    assert_eq!(extra["tapNewDownloads"], 60);
    assert_eq!(extra["row.other"], false);
}

#[test]
fn the_last_page_numbers_rows_after_the_offset() {
    let p = page("report_page2.json", 2).unwrap();
    assert_eq!((p.campaigns, p.total_results, p.frame.height()), (1, 3, 1));
    assert_eq!(
        strs(&p.frame, "campaign_status")[0].as_deref(),
        Some("PAUSED")
    );
    let bad = page("report_bad_spend.json", 2).unwrap_err();
    assert_eq!(bad.row, Some(3));
    assert_eq!(
        bad.column.as_deref(),
        Some("granularity[0].localSpend.amount")
    );
    assert!(bad.to_string().contains("9,50"), "{bad}");
    assert!(!bad.retryable);
}

#[test]
fn cut_and_error_bodies_fail_the_page() {
    let cut = page("report_cut.json", 0).unwrap_err();
    assert!(cut.retryable, "{cut}");
    let e = page("error_date_range.json", 0).unwrap_err();
    assert!(
        e.message.contains("INVALID_DATE_RANGE") && e.message.contains("field endTime"),
        "{e}"
    );
    let no_granularity = r#"{"data":{"reportingDataResponse":{"row":[{"metadata":{"campaignId":1}}]}},"pagination":{"totalResults":1,"startIndex":0,"itemsPerPage":1},"error":null}"#;
    let e = parse_page(no_granularity.as_bytes(), "1", pulled(), "p", 0).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("granularity"));
    let empty = r#"{"data":{"reportingDataResponse":{"row":[]}},"pagination":{"totalResults":0,"startIndex":0,"itemsPerPage":0},"error":null}"#;
    let p = parse_page(empty.as_bytes(), "1", pulled(), "p", 0).unwrap();
    assert_eq!((p.frame.height(), p.total_results), (0, 0));
}

#[test]
fn verdicts_follow_apples_statuses() {
    let h = reqwest::header::HeaderMap::new();
    let v = verdict(
        reqwest::StatusCode::UNAUTHORIZED,
        &h,
        &fixture("apple_search_ads", "error_unauthorized.json"),
    );
    assert!(
        matches!(&v, Verdict::Fatal(m) if m.contains("UNAUTHORIZED: Invalid token")),
        "{v:?}"
    );
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("retry-after", "2".parse().unwrap());
    let v = verdict(
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        &h,
        &fixture("apple_search_ads", "error_rate_limit.json"),
    );
    assert!(
        matches!(&v, Verdict::Retry { after: Some(d), reason } if d.as_secs() == 2 && reason.contains("TOO_MANY_REQUESTS")),
        "{v:?}"
    );
}

#[test]
fn the_request_pages_in_campaign_order() {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let body = request_body(
        d("2026-01-01"),
        d("2026-03-31"),
        1000,
        1000,
        ReportZone::Ortz,
    );
    assert_eq!(body["startTime"], "2026-01-01");
    assert_eq!(body["endTime"], "2026-03-31");
    assert_eq!(body["granularity"], "DAILY");
    assert_eq!(body["timeZone"], "ORTZ");
    assert_eq!(body["selector"]["pagination"]["offset"], 1000);
    assert_eq!(body["selector"]["orderBy"][0]["field"], "campaignId");
}
