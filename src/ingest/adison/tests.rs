use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::lake::DateRange;
use crate::schema::Registry;
use crate::sim::serve::adison::render_report;
use crate::test_support::strs;

const PART: &str = "dt=2026-01-03";

fn fixture(name: &str) -> Vec<u8> {
    crate::test_support::fixture("adison", name)
}

fn pulled() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 4, 1, 0, 0).unwrap()
}

fn validate(df: &DataFrame) {
    Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .validate(df, PART)
        .unwrap();
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
fn a_good_day_parses_exactly() {
    let df = parse_report(
        &fixture("adison_2026-01-03.csv"),
        "adison_2026-01-03.csv",
        pulled(),
        PART,
    )
    .unwrap();
    validate(&df);
    assert_eq!(df.height(), 3);
    assert_eq!(
        ints(&df, "spend_micros"),
        [1_234_000_000_000, 987_654_500_000, 0]
    );
    assert_eq!(ints(&df, "impressions"), [12_345, 8_000, 0]);
    let name = Some("reward_wall_kr, 보상형".to_string());
    assert_eq!(strs(&df, "campaign_name"), [name.clone(), name, None]);
    assert_eq!(
        strs(&df, "ad_name")[1].as_deref(),
        Some("say \"hi\" creative")
    );
    assert_eq!(
        strs(&df, "source_file")[0].as_deref(),
        Some("adison_2026-01-03.csv")
    );
    let day = df.column("date").unwrap().date().unwrap().physical().get(0);
    assert_eq!(
        day,
        Some(epoch_days(NaiveDate::from_ymd_opt(2026, 1, 3).unwrap()))
    );
}

#[test]
fn a_header_only_day_is_an_empty_typed_frame() {
    let df = parse_report(
        &fixture("adison_2026-01-04.csv"),
        "adison_2026-01-04.csv",
        pulled(),
        PART,
    )
    .unwrap();
    validate(&df);
    assert_eq!(df.height(), 0);
    let schema = Registry::embedded()
        .unwrap()
        .get(TABLE)
        .unwrap()
        .file_schema();
    assert_eq!(df.schema().as_ref(), &schema);
}

#[test]
fn bad_files_fail_naming_row_and_column() {
    let e = parse_report(
        &fixture("adison_bad_spend.csv"),
        "adison_bad_spend.csv",
        pulled(),
        PART,
    )
    .unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(2), Some("spend")),
        "{e}"
    );
    assert_eq!(e.stream, "adison.report");
    assert!(e.to_string().contains("N/A"), "{e}");

    let e = parse_report(
        &fixture("adison_missing_installs.csv"),
        "x.csv",
        pulled(),
        PART,
    )
    .unwrap_err();
    assert_eq!(e.column.as_deref(), Some("installs"), "{e}");

    let dup = "date,campaign_id,campaign_name,ad_id,ad_name,impressions,clicks,installs,spend,currency\n\
               2026-01-03,1,a,9,x,1,1,1,1,KRW\n2026-01-03,1,a,9,x,1,1,1,1,KRW\n";
    let e = parse_report(dup.as_bytes(), "x.csv", pulled(), PART).unwrap_err();
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(2), Some("ad_id")),
        "{e}"
    );

    let cut = "date,campaign_id,campaign_name,ad_id,ad_name,impressions,clicks,installs,spend,currency\n\
               2026-01-03,1,a,9,x,1,1,1,\"1,2";
    let e = parse_report(cut.as_bytes(), "x.csv", pulled(), PART).unwrap_err();
    assert!(e.retryable, "{e}");

    let e = parse_report(b"\xff\xfe", "x.csv", pulled(), PART).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn csv_records_follow_rfc_4180() {
    let recs = csv_records("a,\"b,\"\"c\"\"\"\r\n\"multi\nline\",d\n\ne").unwrap();
    let fields: Vec<Vec<String>> = recs.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        fields,
        [
            vec!["a".to_string(), "b,\"c\"".to_string()],
            vec!["multi\nline".to_string(), "d".to_string()],
            vec![String::new()],
            vec!["e".to_string()],
        ]
    );
    assert_eq!(
        recs.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        [1, 2, 4, 5]
    );
}

type DeliveryRow = (i32, String, i64, i64, i64, i64);

/// (day, ad, spend, impressions, clicks, installs) per row, for comparing report and world.
fn rows(df: &DataFrame, days: Vec<i32>) -> Vec<DeliveryRow> {
    let ads = strs(df, "ad_id");
    let [spend, impressions, clicks, installs] =
        ["spend_micros", "impressions", "clicks", "installs"].map(|c| ints(df, c));
    (0..df.height())
        .map(|i| {
            (
                days[i],
                ads[i].clone().unwrap(),
                spend[i],
                impressions[i],
                clicks[i],
                installs[i],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worlds_adison_spend_round_trips_exactly() {
    let (lake, sim) = crate::test_support::small_world(3, 300).await;

    let registry = Registry::embedded().unwrap();
    let mut got: Vec<DeliveryRow> = Vec::new();
    for date in DateRange::new(sim.start_date, sim.start_date + chrono::TimeDelta::days(2)).days() {
        let body = render_report(&lake, date).await.unwrap();
        assert!(body.starts_with(b"\xEF\xBB\xBFdate,campaign_id,"));
        let name = format!("adison_{date}.csv");
        let df = parse_report(&body, &name, pulled(), &format!("dt={date}")).unwrap();
        validate(&df);
        let dates: Vec<i32> = df
            .column("date")
            .unwrap()
            .date()
            .unwrap()
            .physical()
            .iter()
            .flatten()
            .collect();
        assert!(dates.iter().all(|d| *d == epoch_days(date)));
        got.extend(rows(&df, dates));
        assert!(strs(&df, "campaign_name").iter().all(Option::is_some));
    }
    got.sort();

    let world = lake
        .scan(registry.get("sim.ad_daily").unwrap(), DateRange::all())
        .await
        .unwrap()
        .filter(col("channel").eq(lit("adison")))
        .collect()
        .unwrap();
    let dts: Vec<i32> = world
        .column("dt")
        .unwrap()
        .date()
        .unwrap()
        .physical()
        .iter()
        .flatten()
        .collect();
    let mut want = rows(&world, dts);
    want.sort();
    assert!(!want.is_empty(), "the small world has no Adison delivery");
    assert_eq!(got, want);
    // KRW spend is not whole won in the world: the fractional micros must survive too.
    assert!(want.iter().any(|r| r.2 % 1_000_000 != 0));
}
