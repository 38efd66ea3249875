use super::*;
use crate::schema::Registry;
use crate::test_support::{fixture, strs};

fn pulled() -> DateTime<Utc> {
    "2026-01-03T01:00:00Z".parse().unwrap()
}

fn day() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 1, 2)
}

fn parse(name: &str) -> Result<DataFrame, ParseError> {
    parse_search_stream(
        &fixture("google_ads", name),
        pulled(),
        "dt=2026-01-02",
        day(),
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
fn a_stream_of_batches_becomes_typed_rows_with_missing_metrics_as_zero() {
    let df = parse("search_stream.json").unwrap();
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(&df, "dt=2026-01-02")
        .unwrap();
    assert_eq!(df.height(), 3, "rows of both batches");
    assert_eq!(
        ints(&df, "cost_micros"),
        [618_250_000_000, 1_204_000_000_000, 0]
    );
    assert_eq!(ints(&df, "clicks"), [412, 980, 0]);
    assert_eq!(ints(&df, "impressions"), [30512, 88120, 15]);
    assert_eq!(ints(&df, "view_through_conversions"), [6, 0, 0]);
    let conv: Vec<f64> = df
        .column("conversions")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(conv, [37.5, 102.0, 0.0]);
    assert_eq!(strs(&df, "currency"), vec![Some("KRW".to_string()); 3]);
    assert_eq!(
        strs(&df, "campaign_name")[1].as_deref(),
        Some("ACi_AOS_KR_install \"broad\"")
    );
    assert_eq!(strs(&df, "campaign_status")[2].as_deref(), Some("PAUSED"));
    // Nothing is lost: the resource names the pipeline does not read are kept.
    let extra: serde_json::Value =
        serde_json::from_str(strs(&df, "extra")[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        extra["campaign.resourceName"],
        "customers/1000000001/campaigns/2345678901"
    );
    assert_eq!(extra["customer.resourceName"], "customers/1000000001");
    assert_eq!(
        strs(&df, "request_id")[2].as_deref(),
        Some("S4n9Ql2xVf0bq1Zc7Hk3Aw")
    );
}

#[test]
fn a_day_without_delivery_is_an_empty_frame() {
    let df = parse("search_stream_no_rows.json").unwrap();
    assert_eq!(df.height(), 0);
    assert_eq!(df.width(), 16);
}

#[test]
fn a_cut_body_is_retryable_and_a_bad_field_names_row_and_path() {
    let cut = parse("search_stream_cut.json").unwrap_err();
    assert!(cut.retryable, "{cut}");
    assert!(
        cut.to_string()
            .contains("google_ads.campaign_daily dt=2026-01-02")
    );
    let bad = parse("search_stream_bad_cost.json").unwrap_err();
    assert!(!bad.retryable);
    assert_eq!(bad.row, Some(2));
    assert_eq!(bad.column.as_deref(), Some("metrics.costMicros"));
    assert!(bad.to_string().contains("1204000000.5"), "{bad}");
}

#[test]
fn an_error_inside_the_stream_fails_the_whole_body() {
    // INTERNAL is transient: the whole stream is pulled again, the first batch never lands.
    let e = parse("error_in_stream.json").unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("INTERNAL"), "{e}");
    assert!(e.message.contains("internalError=INTERNAL_ERROR"), "{e}");
    let text = String::from_utf8(fixture("google_ads", "error_in_stream.json")).unwrap();
    let denied = text.replace("\"INTERNAL\"", "\"PERMISSION_DENIED\"");
    let e = parse_search_stream(denied.as_bytes(), pulled(), "dt=2026-01-02", day()).unwrap_err();
    assert!(!e.retryable, "{e}");
}

#[test]
fn rows_of_another_day_or_repeated_are_refused() {
    let body = fixture("google_ads", "search_stream.json");
    let other = NaiveDate::from_ymd_opt(2026, 1, 3);
    let e = parse_search_stream(&body, pulled(), "dt=2026-01-03", other).unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(1), Some("segments.date"))
    );
    let text = String::from_utf8(body).unwrap();
    let twice = text.replace("2345678902", "2345678901");
    let e = parse_search_stream(twice.as_bytes(), pulled(), "dt=2026-01-02", day()).unwrap_err();
    assert!(e.message.contains("appears twice"), "{e}");
    let no_currency = text.replace("\"currencyCode\": \"KRW\",", "");
    let e =
        parse_search_stream(no_currency.as_bytes(), pulled(), "dt=2026-01-02", day()).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("customer.currencyCode"));
}

#[test]
fn throttling_waits_googles_retry_delay_and_a_long_one_is_a_spent_quota() {
    let h = reqwest::header::HeaderMap::new();
    let v = verdict(
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        &h,
        &fixture("google_ads", "error_resource_exhausted.json"),
    );
    match v {
        Verdict::Retry { after, reason } => {
            assert_eq!(after, Some(Duration::from_secs(30)));
            assert!(
                reason.contains("RESOURCE_TEMPORARILY_EXHAUSTED"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let v = verdict(
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        &h,
        &fixture("google_ads", "error_daily_quota.json"),
    );
    assert!(
        matches!(&v, Verdict::QuotaSpent(m) if m.contains("42300")),
        "{v:?}"
    );
    let v = verdict(
        reqwest::StatusCode::UNAUTHORIZED,
        &h,
        &fixture("google_ads", "error_unauthenticated.json"),
    );
    assert!(
        matches!(&v, Verdict::Fatal(m) if m.contains("UNAUTHENTICATED")),
        "{v:?}"
    );
    assert!(is_token_refusal(
        reqwest::StatusCode::UNAUTHORIZED,
        &fixture("google_ads", "error_unauthenticated.json")
    ));
    assert!(matches!(
        verdict(reqwest::StatusCode::SERVICE_UNAVAILABLE, &h, b"{}"),
        Verdict::Retry { .. }
    ));
    assert_eq!(verdict(reqwest::StatusCode::OK, &h, b"[]"), Verdict::Done);
}

#[test]
fn the_query_selects_every_field_we_read() {
    let q = query(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap());
    assert!(q.starts_with("SELECT customer.id, customer.currency_code"));
    assert!(q.contains("FROM campaign WHERE segments.date BETWEEN '2026-01-02' AND '2026-01-02'"));
    for (gaql, path) in FIELDS {
        assert_eq!(json_path(gaql), path);
    }
}
