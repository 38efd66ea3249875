//! The simulated world as AppsFlyer Pull API raw-data bodies, for the local test server:
//! which world rows each report holds ([`world_rows`]) and the CSV AppsFlyer would send
//! for them ([`render_csv`]). The column knowledge is shared with the parser
//! ([`crate::ingest::appsflyer::columns`]), so a render always parses back.

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::table;
use crate::ingest::appsflyer::Report;
use crate::ingest::appsflyer::columns::{self, Kind};
use crate::ingest::appsflyer::parse::TIME_FORMAT;
use crate::lake::{DateRange, Lake, LakeError};

/// The demo config's iOS app: iOS installs belong to it.
pub const IOS_APP_ID: &str = "id1000000001";
/// The demo config's Android app: Android installs belong to it.
pub const ANDROID_APP_ID: &str = "com.example.ltvdemo";

const MICROS: i64 = 1_000_000;

fn platform_of(app_id: &str) -> Option<&'static str> {
    match app_id {
        IOS_APP_ID => Some("ios"),
        ANDROID_APP_ID => Some("android"),
        _ => None,
    }
}

fn ms_lit(t: DateTime<Utc>) -> Expr {
    lit(t.timestamp_millis()).cast(DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    ))
}

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// Micros as the decimal text AppsFlyer sends (`4.99`, `6500`): exact, no float.
pub fn micros_text(e: Expr) -> Expr {
    let abs = e.clone().abs();
    let int = abs.clone().floor_div(lit(MICROS)).cast(DataType::String);
    let frac = (abs % lit(MICROS))
        .cast(DataType::String)
        .str()
        .zfill(lit(6))
        .str()
        .strip_chars_end(lit("0"));
    let body = when(frac.clone().eq(lit("")))
        .then(int.clone())
        .otherwise(concat_str([int, lit("."), frac], "", false));
    let sign = when(e.clone().lt(lit(0i64)))
        .then(lit("-"))
        .otherwise(lit(""));
    when(e.is_null())
        .then(null_str())
        .otherwise(concat_str([sign, body], "", false))
}

/// The install columns every report shows (attribution, device, app), from `sim.installs`.
fn install_columns(app_id: &str, platform: &str) -> Vec<Expr> {
    let paid = col("channel").neq(lit("organic"));
    let ios = platform == "ios";
    vec![
        when(paid.clone().and(col("click_time").is_not_null()))
            .then(lit("click"))
            .otherwise(null_str())
            .alias("attributed_touch_type"),
        col("click_time").alias("attributed_touch_time"),
        col("install_time"),
        col("media_source"),
        col("campaign_name").alias("campaign"),
        col("campaign_id"),
        col("adset_name").alias("adset"),
        col("adset_id"),
        col("ad_name").alias("ad"),
        col("ad_id"),
        col("country").alias("country_code"),
        col("ip"),
        col("appsflyer_id"),
        if ios {
            null_str().alias("advertising_id")
        } else {
            col("advertising_id")
        },
        if ios {
            col("advertising_id").alias("idfa")
        } else {
            null_str().alias("idfa")
        },
        col("platform"),
        col("device_model").alias("device_type"),
        col("app_version"),
        lit(app_id.to_string()).alias("af_app_id"),
        lit(false).alias("is_retargeting"),
        lit(true).alias("is_primary_attribution"),
    ]
}

/// The world's rows for one report, app and time window `[from, to)` (by install time for
/// install reports, event time for event reports) as a lazy plan over the sim tables,
/// ordered by that time. Columns carry the raw tables' names and types; columns the world
/// does not have are absent (rendered empty). `all_installs` is every install of the world
/// ([`super::world_installs`]).
///
/// Routing, as AppsFlyer does it: paid installs go to `installs_report`, organic ones to
/// `organic_installs_report`; Protect360-blocked installs ONLY to `blocked_installs_report`
/// (their attribution is blocked, and their events go to the blocked in-app report we do
/// not pull); detected ones to `installs_report` AND `detection`. Events of paid / organic
/// installs go to the in-app / organic in-app report; `post_inapp` events also go to
/// `fraud-post-inapps`.
pub async fn world_rows(
    lake: &Lake,
    all_installs: LazyFrame,
    report: Report,
    app_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<LazyFrame, LakeError> {
    let from_day = from.date_naive();
    let last_day = (to - chrono::Duration::milliseconds(1)).date_naive();
    let window = DateRange::new(from_day, last_day.max(from_day));
    let platform = platform_of(app_id);
    let (Some(platform), true) = (platform, from < to) else {
        let empty = lake
            .scan(table("sim.installs")?, DateRange::day(from_day))
            .await?;
        return Ok(empty.filter(lit(false)));
    };
    let in_window = |c: &str| col(c).gt_eq(ms_lit(from)).and(col(c).lt(ms_lit(to)));
    let fraud = col("af_fraud_report");
    let not_blocked = fraud
        .clone()
        .is_null()
        .or(fraud.clone().neq(lit("blocked")));
    let organic = col("channel").eq(lit("organic"));

    if !report.is_event_report() {
        let installs = lake.scan(table("sim.installs")?, window).await?;
        let which = match report {
            Report::InstallsReport => organic.clone().not().and(not_blocked),
            Report::OrganicInstallsReport => organic.and(not_blocked),
            Report::BlockedInstallsReport => fraud.eq(lit("blocked")),
            _ => fraud.eq(lit("detection")),
        };
        let mut cols = install_columns(app_id, platform);
        cols.push(col("install_time").alias("event_time"));
        cols.push(lit("install").alias("event_name"));
        return Ok(installs
            .filter(
                in_window("install_time")
                    .and(col("platform").eq(lit(platform)))
                    .and(which),
            )
            .select(cols)
            .sort(["install_time"], SortMultipleOptions::default()));
    }

    // An event's attribution is its install's, which may be from any earlier day.
    let installs = all_installs.select([
        col("appsflyer_id"),
        col("channel"),
        col("media_source"),
        col("campaign_name"),
        col("campaign_id"),
        col("adset_name"),
        col("adset_id"),
        col("ad_name"),
        col("ad_id"),
        col("click_time"),
        col("install_time"),
        col("country"),
        col("ip"),
        col("platform"),
        col("device_model"),
        col("app_version"),
        col("af_fraud_report").alias("install_fraud"),
    ]);
    let fx = lake.scan(table("sim.fx_rates")?, window).await?;
    let events = lake
        .scan(table("sim.af_events")?, window)
        .await?
        .filter(in_window("event_time"))
        .select([
            col("dt"),
            col("appsflyer_id"),
            col("advertising_id").alias("event_adid"),
            col("customer_user_id"),
            col("event_time"),
            col("event_name"),
            col("revenue_micros"),
            col("currency"),
            col("af_fraud_report"),
        ]);
    let install_fraud = col("install_fraud");
    let install_ok = install_fraud
        .clone()
        .is_null()
        .or(install_fraud.neq(lit("blocked")));
    let which = match report {
        Report::InAppEventsReport => organic.not(),
        Report::OrganicInAppEventsReport => organic,
        _ => fraud.eq(lit("post_inapp")),
    };
    let joined = events
        .join(
            installs,
            [col("appsflyer_id")],
            [col("appsflyer_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("platform").eq(lit(platform)).and(install_ok).and(which))
        .join(
            fx,
            [col("dt"), col("currency")],
            [col("dt"), col("currency")],
            JoinArgs::new(JoinType::Left),
        )
        // The event's own advertising id (dropped ones included) replaces the install's.
        .with_column(col("event_adid").alias("advertising_id"));
    let mut cols = install_columns(app_id, platform);
    cols.extend([
        col("event_time"),
        col("event_name"),
        when(col("revenue_micros").is_null())
            .then(lit(""))
            .otherwise(concat_str(
                [
                    lit("{\"af_revenue\":\""),
                    micros_text(col("revenue_micros")),
                    lit("\",\"af_currency\":\""),
                    col("currency"),
                    lit("\"}"),
                ],
                "",
                false,
            ))
            .alias("event_value"),
        col("revenue_micros").alias("event_revenue"),
        col("currency").alias("event_revenue_currency"),
        (col("revenue_micros").cast(DataType::Float64) * col("usd_per_unit"))
            .round(0, RoundMode::HalfAwayFromZero)
            .cast(DataType::Int64)
            .alias("event_revenue_usd"),
        col("customer_user_id"),
        when(col("revenue_micros").is_null())
            .then(lit(NULL).cast(DataType::Boolean))
            .otherwise(lit(false))
            .alias("is_receipt_validated"),
        lit("SDK").alias("event_source"),
    ]);
    Ok(joined
        .select(cols)
        .sort(["event_time"], SortMultipleOptions::default()))
}

/// Renders rows (of [`world_rows`]' shape) as the CSV body AppsFlyer would send: a header of
/// the report's documented columns in order, times as `YYYY-MM-DD HH:MM:SS` in `zone`,
/// money as exact decimals, booleans as `true`/`false`, absent columns and nulls empty,
/// fields quoted only when they hold a comma, quote or newline. No rows gives the header
/// alone, which is how AppsFlyer says "nothing in this window". Additional fields
/// ([`columns::additional_fields`]) appear only when `additional` names them, as the API
/// sends them only on request.
pub fn render_csv(
    rows: DataFrame,
    report: Report,
    zone: chrono_tz::Tz,
    additional: &[&str],
) -> Result<String, PolarsError> {
    let zone = TimeZone::opt_try_new(Some(zone.name()))?.unwrap_or(TimeZone::UTC);
    let mut exprs = Vec::new();
    let optional = columns::additional_fields(report);
    for c in columns::wire_columns(report) {
        if optional.contains(&c.name) && !additional.contains(&c.name) {
            continue;
        }
        let e = if rows.column(c.name).is_err() {
            null_str()
        } else {
            let v = col(c.name);
            match c.kind {
                Kind::Text => v.cast(DataType::String),
                Kind::Time => v
                    .dt()
                    .convert_time_zone(zone.clone())
                    .dt()
                    .to_string(TIME_FORMAT),
                Kind::Money { .. } => micros_text(v),
                Kind::Bool => when(v.clone().is_null())
                    .then(null_str())
                    .when(v)
                    .then(lit("true"))
                    .otherwise(lit("false")),
            }
        };
        exprs.push(e.alias(c.raw));
    }
    let mut out = rows.lazy().select(exprs).collect()?;
    let mut buf: Vec<u8> = Vec::new();
    CsvWriter::new(&mut buf)
        .include_header(true)
        .with_quote_style(QuoteStyle::Necessary)
        .with_null_value("".into())
        .finish(&mut out)?;
    String::from_utf8(buf).map_err(|e| PolarsError::ComputeError(e.to_string().into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone as _;

    use super::*;
    use crate::ingest::appsflyer::parse_report;

    type Keys = BTreeSet<(String, i64)>;

    /// `(appsflyer_id, time)` with the time cut to whole seconds: the wire format has no
    /// milliseconds, so that is all a round trip can keep.
    fn keys(df: &DataFrame, time: &str) -> Keys {
        let ids = df.column("appsflyer_id").unwrap().str().unwrap().clone();
        let t = df
            .column(time)
            .unwrap()
            .as_materialized_series()
            .cast(&DataType::Int64)
            .unwrap();
        let t = t.i64().unwrap();
        ids.iter()
            .zip(t.iter())
            .map(|(a, b)| (a.unwrap().to_string(), b.unwrap().div_euclid(1000) * 1000))
            .collect()
    }

    #[test]
    fn micros_render_as_exact_decimals() {
        let df =
            df!("m" => [Some(4_990_000i64), Some(6_500_000_000), Some(-500_000), Some(1), None])
                .unwrap();
        let out = df
            .lazy()
            .select([micros_text(col("m")).alias("m")])
            .collect()
            .unwrap();
        let v: Vec<_> = out
            .column("m")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect();
        assert_eq!(
            v,
            [
                Some("4.99".into()),
                Some("6500".into()),
                Some("-0.5".into()),
                Some("0.000001".into()),
                None
            ]
        );
    }

    /// world -> render -> parse gives back every row exactly once, times through a zone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_through_the_wire_format() {
        let (lake, sim) = crate::test_support::small_world(2, 300).await;

        let registry = crate::schema::Registry::embedded().unwrap();
        let installs = lake
            .scan(registry.get("sim.installs").unwrap(), DateRange::all())
            .await
            .unwrap()
            .collect()
            .unwrap();
        let events = lake
            .scan(registry.get("sim.af_events").unwrap(), DateRange::all())
            .await
            .unwrap()
            .collect()
            .unwrap();
        let start = sim.start_date.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let from = start - chrono::Duration::days(1);
        let to = start + chrono::Duration::days(4);
        let zone = chrono_tz::Asia::Seoul;
        let pulled = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();

        let fraud = col("af_fraud_report");
        let blocked = fraud.clone().eq(lit("blocked")).fill_null(lit(false));
        let organic = col("channel").eq(lit("organic"));
        let paid_installs = installs.clone().lazy().filter(organic.clone().not());
        let events_of = |which: Expr| {
            events
                .clone()
                .lazy()
                .join(
                    installs.clone().lazy().select([
                        col("appsflyer_id"),
                        col("channel"),
                        col("platform"),
                        col("af_fraud_report").alias("install_fraud"),
                    ]),
                    [col("appsflyer_id")],
                    [col("appsflyer_id")],
                    JoinArgs::new(JoinType::Inner),
                )
                .filter(
                    col("install_fraud")
                        .eq(lit("blocked"))
                        .fill_null(lit(false))
                        .not()
                        .and(which),
                )
        };
        let cases = [
            (
                Report::InstallsReport,
                paid_installs.filter(blocked.clone().not()),
            ),
            (
                Report::BlockedInstallsReport,
                installs.clone().lazy().filter(blocked.clone()),
            ),
            (Report::InAppEventsReport, events_of(organic.clone().not())),
            (Report::OrganicInAppEventsReport, events_of(organic.clone())),
        ];
        for (report, expected) in cases {
            let time = report.time_column();
            let mut total = 0;
            for (app, platform) in [(IOS_APP_ID, "ios"), (ANDROID_APP_ID, "android")] {
                let want = expected
                    .clone()
                    .filter(col("platform").eq(lit(platform)))
                    .collect()
                    .unwrap();
                let installs = super::super::world_installs(&lake).await.unwrap();
                let rows = world_rows(&lake, installs, report, app, from, to)
                    .await
                    .unwrap()
                    .collect()
                    .unwrap();
                let body = render_csv(
                    rows.clone(),
                    report,
                    zone,
                    columns::additional_fields(report),
                )
                .unwrap();
                assert_eq!(count_rows_of(&body), rows.height());
                let parsed =
                    parse_report(body.as_bytes(), report, app, zone, pulled, "dt=test").unwrap();
                registry
                    .get(report.table())
                    .unwrap()
                    .validate(&parsed, "dt=test")
                    .unwrap();
                assert_eq!(parsed.height(), want.height(), "{report} {app}");
                assert_eq!(keys(&parsed, time), keys(&want, time), "{report} {app}");
                total += parsed.height();
                if report == Report::InAppEventsReport {
                    let got: i64 = parsed
                        .column("event_revenue")
                        .unwrap()
                        .i64()
                        .unwrap()
                        .sum()
                        .unwrap_or(0);
                    let exp: i64 = want
                        .column("revenue_micros")
                        .unwrap()
                        .i64()
                        .unwrap()
                        .sum()
                        .unwrap_or(0);
                    assert_eq!(got, exp);
                }
            }
            assert!(total > 0, "{report}: the world has rows for it");
        }
    }

    fn count_rows_of(body: &str) -> usize {
        crate::ingest::appsflyer::count_rows(body.as_bytes())
    }
}
