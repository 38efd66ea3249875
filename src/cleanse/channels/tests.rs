//! Tests of the channel plans: each rule on small frames built to the raw schemas, every
//! channel's output against `clean.channel_daily`, and wire fixtures through the real parsers.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};

use super::*;
use crate::cleanse::fx::{FX_CURRENCY, FX_DATE, FX_RATE, fx_table};
use crate::config::Pattern;
use crate::ingest::sheets::cells::epoch_days;
use crate::sim::fx::to_usd_micros;
use crate::test_support::{fixture, strs};

const KRW: f64 = 1.0 / 1350.0;
const ALL_WINDOWS: &str = "1d_click,7d_click,28d_click,1d_view";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

fn rules() -> TestUserRules {
    TestUserRules {
        name_patterns: Vec::new(),
        email_domains: Vec::new(),
        campaign_patterns: vec![Pattern::new("(?i)\\[test\\]").unwrap()],
        internal_build_patterns: Vec::new(),
    }
}

fn dates(name: &str, days: Vec<u32>) -> Column {
    let v: Vec<i32> = days.into_iter().map(|d| epoch_days(day(d))).collect();
    Column::new(name.into(), v).cast(&DataType::Date).unwrap()
}

fn times(name: &str, ms: Vec<i64>) -> Column {
    Column::new(name.into(), ms)
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap()
}

/// `n` rows of raw `table` on 2026-01-02, every column typed as its schema says: `overrides`
/// where given, otherwise a plain value (USD currencies, all Meta windows requested, one of
/// each count, nulls in nullable text). Built to the schema, so checked against it unless a
/// test breaks a rule the schema itself enforces.
fn raw_frame(table: &str, n: usize, overrides: Vec<Column>) -> DataFrame {
    let t = Registry::embedded().unwrap().get(table).unwrap();
    let cols: Vec<Column> = t
        .columns
        .iter()
        .map(|c| {
            if let Some(o) = overrides.iter().find(|o| o.name() == c.name.as_str()) {
                return o.clone();
            }
            let name = c.name.as_str();
            match &c.dtype {
                DataType::Date => dates(name, vec![2; n]),
                DataType::Datetime(..) => times(name, vec![1_000; n]),
                DataType::Int64 => Column::new(name.into(), vec![1i64; n]),
                DataType::UInt64 => Column::new(name.into(), (1..=n as u64).collect::<Vec<_>>()),
                DataType::Float64 => Column::new(name.into(), vec![1.0f64; n]),
                _ if name.ends_with("currency") => Column::new(name.into(), vec!["USD"; n]),
                _ if name == "attribution_windows" => {
                    Column::new(name.into(), vec![ALL_WINDOWS; n])
                }
                _ if c.nullable => Column::new(name.into(), vec![None::<&str>; n]),
                _ => Column::new(
                    name.into(),
                    (0..n).map(|i| format!("{name}-{i}")).collect::<Vec<_>>(),
                ),
            }
        })
        .collect();
    DataFrame::new_infer_height(cols).unwrap()
}

fn checked(table: &str, df: DataFrame) -> DataFrame {
    Registry::embedded()
        .unwrap()
        .get(table)
        .unwrap()
        .validate(&df, "dt=2026-01-02")
        .unwrap();
    df
}

/// The dense FX table of `rows` (day, currency, usd per unit).
fn fx(rows: &[(u32, &str, f64)]) -> LazyFrame {
    DataFrame::new_infer_height(vec![
        dates(FX_DATE, rows.iter().map(|r| r.0).collect()),
        Column::new(
            FX_CURRENCY.into(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ),
        Column::new(FX_RATE.into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
    ])
    .unwrap()
    .lazy()
}

fn clean(table: &str, raw: DataFrame, fx: LazyFrame, reporting: &str) -> DataFrame {
    let rules = rules();
    let ctx = ChannelContext {
        reporting_currency: reporting,
        test_rules: &rules,
    };
    clean_channel_partition(table, raw.lazy(), fx, &ctx)
        .unwrap()
        .collect()
        .unwrap()
}

/// Kept rows, sorted by `by`, checked against `clean.channel_daily` (without [`REJECT`]).
fn kept(df: &DataFrame, by: &str) -> DataFrame {
    let out = df
        .clone()
        .lazy()
        .filter(col(REJECT).is_null())
        .drop(cols([REJECT]))
        .sort([by], SortMultipleOptions::default())
        .collect()
        .unwrap();
    checked(CLEAN_TABLE, out)
}

fn reasons(df: &DataFrame, by: &str) -> Vec<Option<String>> {
    strs(
        &df.sort([by], SortMultipleOptions::default()).unwrap(),
        REJECT,
    )
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

fn meta(n: usize, overrides: Vec<Column>) -> DataFrame {
    raw_frame("raw.meta_insights_ad", n, overrides)
}

const META: &str = "raw.meta_insights_ad";

#[test]
fn a_restated_meta_row_keeps_the_latest_pull() {
    let raw = checked(
        META,
        meta(
            3,
            vec![
                Column::new("account_id".into(), ["451", "451", "451"]),
                Column::new("ad_id".into(), ["a1", "a1", "a2"]),
                Column::new("spend_micros".into(), [100_000_000i64, 120_000_000, 7]),
                times("pulled_at", vec![1_000, 2_000, 1_000]),
            ],
        ),
    );
    let out = clean(META, raw, fx(&[]), "USD");
    assert_eq!(out.height(), 3, "a rule never drops a row");
    let dup = out
        .clone()
        .lazy()
        .filter(col(REJECT).is_not_null())
        .collect()
        .unwrap();
    assert_eq!(ints(&dup, "spend_micros"), [Some(100_000_000)]);
    assert_eq!(
        strs(&dup, REJECT)[0].as_deref(),
        Some("duplicate: a later pull of the same dt, account_id, ad_id exists")
    );
    let k = kept(&out, "ad_id");
    assert_eq!(ints(&k, "spend_micros"), [Some(120_000_000), Some(7)]);
    assert_eq!(
        ints(&k, "spend_reporting_micros"),
        [Some(120_000_000), Some(7)]
    );
}

#[test]
fn meta_windows_left_out_are_null_not_zero() {
    let actions = r#"[{"action_type":"mobile_app_install","value":"12","1d_click":"5","7d_click":"12"},
        {"action_type":"app_custom_event.fb_mobile_purchase","value":"1","1d_view":"1"}]"#;
    let raw = checked(
        META,
        meta(
            2,
            vec![
                Column::new("ad_id".into(), ["a1", "a2"]),
                Column::new("actions".into(), [Some(actions), None]),
                Column::new(
                    "attribution_windows".into(),
                    [ALL_WINDOWS, "1d_click,7d_click"],
                ),
            ],
        ),
    );
    let k = kept(&clean(META, raw, fx(&[]), "USD"), "ad_id");
    assert_eq!(ints(&k, "installs_1d_click"), [Some(5), None]);
    assert_eq!(ints(&k, "installs_7d_click"), [Some(12), None]);
    assert_eq!(ints(&k, "installs_28d_click"), [None, None]);
    assert_eq!(ints(&k, "installs_1d_view"), [None, None]);
    assert_eq!(ints(&k, "purchases_1d_view"), [Some(1), None]);
    assert_eq!(ints(&k, "purchases_7d_click"), [None, None]);
    // 7d click + 1d view, a window left out counting zero; unknown without 1d_view asked.
    assert_eq!(ints(&k, "installs"), [Some(12), None]);
    assert_eq!(ints(&k, "purchases"), [Some(1), None]);
    assert_eq!(ints(&k, "purchase_value_micros"), [Some(0), None]);
    assert_eq!(ints(&k, "purchase_value_reporting_micros"), [Some(0), None]);
}

#[test]
fn a_krw_purchase_value_converts_to_usd_to_the_micro() {
    let values = r#"[{"action_type":"app_custom_event.fb_mobile_purchase","value":"19500","7d_click":"13000","1d_view":"6500"}]"#;
    let raw = checked(
        META,
        meta(
            1,
            vec![
                Column::new("account_currency".into(), ["KRW"]),
                Column::new("spend_micros".into(), [1_234_567_000_000i64]),
                Column::new("action_values".into(), [Some(values)]),
            ],
        ),
    );
    let k = kept(&clean(META, raw, fx(&[(2, "KRW", KRW)]), "USD"), "ad_id");
    assert_eq!(
        ints(&k, "purchase_value_7d_click_micros"),
        [Some(13_000_000_000)]
    );
    assert_eq!(ints(&k, "purchase_value_micros"), [Some(19_500_000_000)]);
    assert_eq!(
        ints(&k, "purchase_value_reporting_micros"),
        [Some(to_usd_micros(19_500_000_000, KRW))]
    );
    assert_eq!(
        ints(&k, "spend_reporting_micros"),
        [Some(to_usd_micros(1_234_567_000_000, KRW))]
    );
    assert_eq!(strs(&k, "reporting_currency")[0].as_deref(), Some("USD"));
    assert_eq!(strs(&k, "currency")[0].as_deref(), Some("KRW"));
}

#[test]
fn a_negative_spend_is_rejected_naming_spend() {
    let raw = checked(
        META,
        meta(
            2,
            vec![
                Column::new("ad_id".into(), ["a1", "a2"]),
                Column::new("spend_micros".into(), [-5_000_000i64, 5_000_000]),
            ],
        ),
    );
    let out = clean(META, raw, fx(&[]), "USD");
    assert_eq!(
        reasons(&out, "ad_id"),
        [
            Some("malformed: spend_micros is negative (-5000000)".into()),
            None
        ]
    );
}

#[test]
fn negative_delivery_and_missing_campaigns_are_rejected_naming_the_column() {
    let raw = raw_frame(
        "raw.google_ads_campaign_daily",
        3,
        vec![
            Column::new("campaign_id".into(), [Some("c1"), None, Some("c3")]),
            Column::new("clicks".into(), [1i64, 1, -2]),
        ],
    );
    let out = clean("raw.google_ads_campaign_daily", raw, fx(&[]), "USD");
    let mut got = strs(&out, REJECT);
    got.sort();
    assert_eq!(
        got,
        [
            None,
            Some("malformed: campaign_id is null".into()),
            Some("malformed: clicks is negative (-2)".into()),
        ]
    );
}

#[test]
fn malformed_actions_json_is_rejected_naming_the_column() {
    let raw = checked(
        META,
        meta(
            2,
            vec![
                Column::new("ad_id".into(), ["a1", "a2"]),
                Column::new(
                    "action_values".into(),
                    [Some(r#"[{"action_type":"#), Some("[]")],
                ),
            ],
        ),
    );
    let out = clean(META, raw, fx(&[]), "USD");
    let r = reasons(&out, "ad_id");
    assert!(
        r[0].as_deref()
            .is_some_and(|r| r.starts_with("malformed: action_values is not valid JSON")),
        "{r:?}"
    );
    assert_eq!(r[1], None);
}

#[test]
fn an_unknown_currency_or_a_day_without_rates_is_rejected() {
    let raw = checked(
        META,
        meta(
            3,
            vec![
                Column::new("ad_id".into(), ["a1", "a2", "a3"]),
                Column::new("account_currency".into(), ["XYZ", "KRW", "USD"]),
            ],
        ),
    );
    let out = clean(META, raw.clone(), fx(&[(2, "KRW", KRW)]), "USD");
    assert_eq!(
        reasons(&out, "ad_id"),
        [
            Some("malformed: currency=XYZ has no FX rate on 2026-01-02".into()),
            None,
            None
        ]
    );
    // Reporting in KRW on a day the sheet has no KRW rate: nothing can be converted.
    let out = clean(META, raw, fx(&[(1, "KRW", KRW)]), "KRW");
    assert_eq!(
        reasons(&out, "ad_id")[2].as_deref(),
        Some("malformed: reporting_currency=KRW has no FX rate on 2026-01-02")
    );
}

#[test]
fn test_campaigns_are_flagged_and_kept() {
    let raw = checked(
        META,
        meta(
            2,
            vec![
                Column::new("ad_id".into(), ["a1", "a2"]),
                Column::new(
                    "campaign_name".into(),
                    [Some("[TEST] new creative"), Some("kr_rpg_01")],
                ),
            ],
        ),
    );
    let k = kept(&clean(META, raw, fx(&[]), "USD"), "ad_id");
    assert_eq!(
        strs(&k, "test_reason"),
        [Some("test campaign".into()), None]
    );
}

#[test]
fn every_channel_table_maps_into_the_clean_schema() {
    let expect = [
        ("raw.meta_insights_ad", "facebook", "account_id-0", None),
        (
            "raw.google_ads_campaign_daily",
            "google_ads",
            "customer_id-0",
            None,
        ),
        (
            "raw.apple_search_ads_campaign_daily",
            "apple_search_ads",
            "org_id-0",
            None,
        ),
        (
            "raw.naver_stats",
            "naver",
            "customer_id-0",
            Some("Asia/Seoul"),
        ),
        ("raw.adison_report", "adison", "adison", None),
    ];
    assert_eq!(CHANNEL_TABLES.len(), expect.len());
    for (table, channel, account, zone) in expect {
        assert!(CHANNEL_TABLES.contains(&table));
        let raw = checked(table, raw_frame(table, 1, Vec::new()));
        let out = clean(table, raw, fx(&[]), "USD");
        let names: Vec<&str> = out.get_column_names().iter().map(|n| n.as_str()).collect();
        let clean = Registry::embedded().unwrap().get(CLEAN_TABLE).unwrap();
        let mut want: Vec<&str> = clean.columns.iter().map(|c| c.name.as_str()).collect();
        want.push(REJECT);
        assert_eq!(names, want, "{table}: schema order plus {REJECT}");
        let k = kept(&out, "campaign_id");
        assert_eq!(k.height(), 1, "{table}: {:?}", strs(&out, REJECT));
        assert_eq!(strs(&k, "channel")[0].as_deref(), Some(channel));
        assert_eq!(strs(&k, "account_id")[0].as_deref(), Some(account));
        assert_eq!(strs(&k, "account_timezone")[0].as_deref(), zone);
        assert_eq!(strs(&k, "source_table")[0].as_deref(), Some(table));
    }
}

#[test]
fn an_unknown_table_is_an_error_naming_it() {
    let rules = rules();
    let ctx = ChannelContext {
        reporting_currency: "USD",
        test_rules: &rules,
    };
    let e = clean_channel_partition(
        "raw.meta_insights_campaign",
        DataFrame::empty().lazy(),
        fx(&[]),
        &ctx,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("raw.meta_insights_campaign"), "{e}");
    assert!(e.contains("raw.meta_insights_ad"), "{e}");
}

#[test]
fn manual_costs_take_the_latest_snapshot_and_land_on_their_date() {
    let table = "raw.sheets_manual_costs";
    let raw = checked(
        table,
        raw_frame(
            table,
            3,
            vec![
                dates("dt", vec![4, 5, 5]),
                dates("date", vec![1, 1, 3]),
                Column::new("channel".into(), ["tv", " TV ", "Influencer"]),
                Column::new("campaign_id".into(), ["old", "tv-01", "inf-01"]),
                Column::new("cost_micros".into(), [5i64, 1_350_000_000, -1_350_000_000]),
                Column::new("currency".into(), ["KRW", "KRW", "KRW"]),
            ],
        ),
    );
    let rules = rules();
    let ctx = ChannelContext {
        reporting_currency: "USD",
        test_rules: &rules,
    };
    let table_fx = fx(&[(1, "KRW", KRW), (2, "KRW", KRW), (3, "KRW", KRW)]);
    let out = clean_manual_costs(raw.lazy(), table_fx, &ctx)
        .collect()
        .unwrap();
    let k = kept(&out, "dt");
    assert_eq!(
        strs(&k, "campaign_id"),
        [Some("tv-01".into()), Some("inf-01".into())]
    );
    assert_eq!(
        strs(&k, "channel"),
        [Some("tv".into()), Some("influencer".into())]
    );
    assert_eq!(strs(&k, "account_id")[0].as_deref(), Some("manual"));
    // A refund is a negative cost, not an error.
    assert_eq!(
        ints(&k, "spend_reporting_micros"),
        [Some(1_000_000), Some(-1_000_000)]
    );
    let days: Vec<Option<i32>> = k
        .column("dt")
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap()
        .i32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(days, [Some(epoch_days(day(1))), Some(epoch_days(day(3)))]);
}

#[test]
fn a_failing_plan_fails_when_collected_with_its_message() {
    let e = failing_plan("the schema is broken".into())
        .collect()
        .unwrap_err()
        .to_string();
    assert!(e.contains("the schema is broken"), "{e}");
}

// ---------- wire data through the real parsers ----------

fn pulled() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 4, 9, 0, 0).unwrap()
}

/// A parsed frame (which has no `dt`: the lake keeps it in the path) as a partition scan.
fn as_partition(df: DataFrame, d: u32) -> DataFrame {
    df.lazy()
        .with_column(lit(epoch_days(day(d))).cast(DataType::Date).alias("dt"))
        .collect()
        .unwrap()
}

/// The team's FX sheet fixture, parsed as the Sheets connector does, made dense to `through`.
fn sheet_fx(through: u32) -> LazyFrame {
    use crate::ingest::sheets::{SheetRange, parse_values};
    let df = parse_values(
        &fixture("google_sheets", "fx_rates.json"),
        SheetRange::FxRates,
        pulled(),
        "dt=2026-01-04",
    )
    .unwrap();
    fx_table(as_partition(df, 4), day(through)).unwrap().lazy()
}

#[test]
fn wire_meta_insights_and_adison_reports_clean_with_the_sheets_rates() {
    use crate::config::{AttributionWindow, MetaLevel};
    use crate::ingest::meta::{PageSpec, parse_insights_page};
    let windows = [
        AttributionWindow::Click1d,
        AttributionWindow::Click7d,
        AttributionWindow::Click28d,
        AttributionWindow::View1d,
    ];
    let spec = PageSpec {
        level: MetaLevel::Ad,
        windows: &windows,
        since: day(2),
        until: day(2),
    };
    let page = parse_insights_page(
        &fixture("meta", "insights_ad_page1.json"),
        &spec,
        pulled(),
        "dt=2026-01-02",
    )
    .unwrap();
    let raw = checked(META, as_partition(page.frame, 2));
    let k = kept(&clean(META, raw, sheet_fx(4), "USD"), "ad_id");
    assert_eq!(k.height(), 2);
    assert_eq!(
        ints(&k, "spend_reporting_micros"),
        [Some(412_570_000), Some(3_100_000)]
    );
    assert_eq!(
        ints(&k, "installs"),
        [Some(131), Some(0)],
        "Meta's value: 128 + 3"
    );
    assert_eq!(ints(&k, "installs_1d_view"), [Some(3), None]);
    assert_eq!(ints(&k, "purchases"), [Some(4), Some(0)]);
    assert_eq!(ints(&k, "purchases_28d_click"), [Some(5), None]);
    assert_eq!(
        ints(&k, "purchase_value_micros"),
        [Some(39_960_000), Some(0)]
    );
    assert_eq!(
        ints(&k, "purchase_value_28d_click_micros"),
        [Some(49_950_000), None]
    );
    assert_eq!(
        strs(&k, "adset_name")[0].as_deref(),
        Some("rpg_hero_audience_1")
    );

    let adison = crate::ingest::adison::parse_report(
        &fixture("adison", "adison_2026-01-03.csv"),
        "adison_2026-01-03.csv",
        pulled(),
        "dt=2026-01-03",
    )
    .unwrap();
    let table = "raw.adison_report";
    let raw = checked(table, as_partition(adison, 3));
    let k = kept(&clean(table, raw, sheet_fx(4), "USD"), "ad_id");
    let spend = ints(&k, "spend_micros");
    assert_eq!(spend[1], Some(987_654_500_000), "\"987,654.5\" won");
    let usd: Vec<Option<i64>> = spend
        .iter()
        .map(|s| s.map(|s| to_usd_micros(s, 0.000741)))
        .collect();
    assert_eq!(ints(&k, "spend_reporting_micros"), usd);
    assert_eq!(
        strs(&k, "campaign_name")[0].as_deref(),
        Some("reward_wall_kr, 보상형")
    );
}
