use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use polars::prelude::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;
use crate::config::{AttributionWindow, MetaLevel};
use crate::ingest::http::Verdict;
use crate::schema::Registry;
use crate::test_support::strs;

const PART: &str = "dt=2026-01-02";
const WINDOWS: [AttributionWindow; 4] = [
    AttributionWindow::Click1d,
    AttributionWindow::Click7d,
    AttributionWindow::Click28d,
    AttributionWindow::View1d,
];

fn fixture(name: &str) -> Vec<u8> {
    crate::test_support::fixture("meta", name)
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()
}

fn spec(level: MetaLevel) -> PageSpec<'static> {
    PageSpec {
        level,
        windows: &WINDOWS,
        since: day(),
        until: day(),
    }
}

fn pulled() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 3, 9, 0, 0).unwrap()
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

fn validate(df: &DataFrame, level: MetaLevel) {
    Registry::embedded()
        .unwrap()
        .get(table(level))
        .unwrap()
        .validate(df, PART)
        .unwrap();
}

#[test]
fn a_page_parses_exactly_and_keeps_everything() {
    let page = parse_insights_page(
        &fixture("insights_ad_page1.json"),
        &spec(MetaLevel::Ad),
        pulled(),
        PART,
    )
    .unwrap();
    validate(&page.frame, MetaLevel::Ad);
    assert!(page.has_next);
    assert_eq!(page.after.as_deref(), Some("MQZDZD"));
    let df = &page.frame;
    assert_eq!(df.height(), 2);
    assert_eq!(ints(df, "spend_micros"), [412_570_000, 3_100_000]);
    assert_eq!(ints(df, "impressions"), [48_211, 1_022]);
    assert_eq!(ints(df, "clicks"), [731, 9]);
    assert_eq!(strs(df, "ad_id")[1].as_deref(), Some("2385000141234567801"));
    assert_eq!(strs(df, "account_id")[0].as_deref(), Some("451278390012"));
    // Actions are kept whole, every window included; a row without them has none.
    let actions = strs(df, "actions");
    let a: serde_json::Value = serde_json::from_str(actions[0].as_deref().unwrap()).unwrap();
    assert_eq!(a[0]["action_type"], "mobile_app_install");
    assert_eq!(a[0]["1d_view"], "3");
    assert_eq!(a[1]["28d_click"], "5");
    assert_eq!(actions[1], None);
    assert_eq!(strs(df, "action_values")[1], None);
    // An unknown field survives in extra.
    assert_eq!(
        strs(df, "extra")[1].as_deref(),
        Some(r#"{"quality_ranking":"UNKNOWN"}"#)
    );
    assert_eq!(strs(df, "extra")[0], None);
    assert_eq!(
        strs(df, "attribution_windows")[0].as_deref(),
        Some("1d_click,7d_click,28d_click,1d_view")
    );
}

#[test]
fn the_last_page_has_no_next_and_an_empty_page_is_a_typed_frame() {
    let last = parse_insights_page(
        &fixture("insights_ad_last.json"),
        &spec(MetaLevel::Ad),
        pulled(),
        PART,
    )
    .unwrap();
    assert!(!last.has_next);
    assert_eq!(ints(&last.frame, "spend_micros"), [80_000_000]);
    validate(&last.frame, MetaLevel::Ad);
    for level in [
        MetaLevel::Account,
        MetaLevel::Campaign,
        MetaLevel::Adset,
        MetaLevel::Ad,
    ] {
        let empty = parse_insights_page(
            &fixture("insights_empty.json"),
            &spec(level),
            pulled(),
            PART,
        )
        .unwrap();
        assert_eq!(empty.frame.height(), 0);
        assert!(!empty.has_next);
        validate(&empty.frame, level);
    }
}

#[test]
fn a_campaign_page_needs_only_campaign_ids() {
    let page = parse_insights_page(
        &fixture("insights_ad_last.json"),
        &spec(MetaLevel::Campaign),
        pulled(),
        PART,
    )
    .unwrap();
    validate(&page.frame, MetaLevel::Campaign);
    // Fields of a lower level than asked for are not dropped: they land in extra.
    let extra = strs(&page.frame, "extra")[0].clone().unwrap();
    assert!(extra.contains("\"ad_id\""), "{extra}");
}

#[test]
fn bad_values_name_row_and_field_and_cut_bodies_are_retryable() {
    let e = parse_insights_page(
        &fixture("insights_bad_spend.json"),
        &spec(MetaLevel::Campaign),
        pulled(),
        PART,
    )
    .unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref(), e.retryable),
        (Some(1), Some("spend"), false)
    );
    assert_eq!(e.stream, "meta.insights_campaign");
    let e = parse_insights_page(
        &fixture("insights_cut.json"),
        &spec(MetaLevel::Campaign),
        pulled(),
        PART,
    )
    .unwrap_err();
    assert!(e.retryable, "{e}");
    // A row of another day than asked for is refused.
    let mut other = spec(MetaLevel::Ad);
    other.since = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
    other.until = other.since;
    let e =
        parse_insights_page(&fixture("insights_ad_last.json"), &other, pulled(), PART).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("date_start"));
    // An error body is not a page.
    let e = parse_insights_page(
        &fixture("error_rate_limit.json"),
        &spec(MetaLevel::Ad),
        pulled(),
        PART,
    )
    .unwrap_err();
    assert!(e.message.contains("Graph error"), "{e}");
}

fn usage_headers(insights: &str, buc: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-fb-ads-insights-throttle",
        HeaderValue::from_str(insights).unwrap(),
    );
    h.insert(
        "x-business-use-case-usage",
        HeaderValue::from_str(buc).unwrap(),
    );
    h
}

fn tuning() -> MetaTuning {
    MetaTuning {
        slow_down: Duration::from_millis(100),
        minute: Duration::from_millis(1000),
        max_block_wait: Duration::from_secs(5),
        ..MetaTuning::default()
    }
}

#[test]
fn usage_headers_are_read_and_slow_the_connector_down() {
    let h = usage_headers(
        r#"{"app_id_util_pct":12.5,"acc_id_util_pct":80,"ads_api_access_tier":"standard_access"}"#,
        r#"{"451278390012":[{"type":"ads_insights","call_count":31,"total_cputime":9,"total_time":40,"estimated_time_to_regain_access":0,"ads_api_access_tier":"standard_access"}]}"#,
    );
    let u = Usage::from_headers(&h).unwrap();
    assert_eq!((u.max_pct, u.regain_minutes), (80.0, 0));
    let t = tuning();
    let pause = pause_for(&u, &t).unwrap();
    assert!(pause > t.slow_down && pause < t.slow_down * 4, "{pause:?}");
    assert_eq!(
        pause_for(
            &Usage {
                max_pct: 74.0,
                regain_minutes: 0
            },
            &t
        ),
        None
    );
    let full = pause_for(
        &Usage {
            max_pct: 100.0,
            regain_minutes: 0,
        },
        &t,
    )
    .unwrap();
    assert!(
        full.abs_diff(t.slow_down * 4) < Duration::from_millis(1),
        "{full:?}"
    );
    assert_eq!(
        pause_for(
            &Usage {
                max_pct: 100.0,
                regain_minutes: 3
            },
            &t
        ),
        Some(t.minute * 3)
    );
    let never = MetaTuning {
        slow_down_above_pct: None,
        ..t
    };
    assert_eq!(
        pause_for(
            &Usage {
                max_pct: 99.0,
                regain_minutes: 0
            },
            &never
        ),
        None
    );
    assert_eq!(Usage::from_headers(&HeaderMap::new()), None);
}

#[test]
fn verdicts_follow_metas_error_codes() {
    let t = tuning();
    let blocked = usage_headers(
        r#"{"app_id_util_pct":100,"acc_id_util_pct":100}"#,
        r#"{"451278390012":[{"type":"ads_insights","call_count":100,"total_cputime":20,"total_time":100,"estimated_time_to_regain_access":2}]}"#,
    );
    // A block waits exactly the named regain time (2 of Meta's minutes).
    match verdict(
        StatusCode::BAD_REQUEST,
        &blocked,
        &fixture("error_rate_limit.json"),
        &t,
    ) {
        Verdict::Retry { after, reason } => {
            assert_eq!(after, Some(t.minute * 2));
            assert!(reason.contains("80000"), "{reason}");
        }
        v => panic!("{v:?}"),
    }
    // Longer than the run may wait: deferred.
    let short = MetaTuning {
        max_block_wait: Duration::from_millis(500),
        ..t
    };
    assert!(matches!(
        verdict(
            StatusCode::BAD_REQUEST,
            &blocked,
            &fixture("error_rate_limit.json"),
            &short
        ),
        Verdict::QuotaSpent(_)
    ));
    assert!(matches!(
        verdict(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            &fixture("error_transient.json"),
            &t
        ),
        Verdict::Retry { after: None, .. }
    ));
    match verdict(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        &fixture("error_invalid_token.json"),
        &t,
    ) {
        Verdict::Fatal(m) => assert!(m.contains("190") && m.contains("BmX1tFixtureTrace2"), "{m}"),
        v => panic!("{v:?}"),
    }
    assert_eq!(verdict(StatusCode::OK, &blocked, b"{}", &t), Verdict::Done);
    for code in [4, 17, 613, 80_000, 80_004] {
        assert!(is_rate_limit_code(code));
    }
    assert!(!is_rate_limit_code(100));
}

#[test]
fn report_runs_parse() {
    assert_eq!(
        parse_run_id(&fixture("report_run_created.json")).unwrap(),
        "6211389271834"
    );
    let running = parse_report_run(&fixture("report_run_running.json")).unwrap();
    assert!(!running.completed() && !running.dead());
    assert_eq!(running.async_percent_completion, 42.0);
    assert!(
        parse_report_run(&fixture("report_run_completed.json"))
            .unwrap()
            .completed()
    );
    let e = parse_graph_error(&fixture("error_invalid_token.json")).unwrap();
    assert_eq!((e.code, e.error_subcode), (190, Some(463)));
    assert!(parse_graph_error(&fixture("report_run_created.json")).is_none());
}
