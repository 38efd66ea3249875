//! The simulated world in Mixpanel's wire formats, for the local Mixpanel server: the Raw
//! Event Export (JSON Lines) from `sim.events` and Engage pages from `sim.profiles`.
//!
//! Ids are integers in the world and rendered with [`crate::sim::ids`]; `distinct_id` follows
//! Mixpanel's simplified ID merge (`$device:<uuid>` before sign-up, the user id after). Lines
//! are written by hand into one `String` (no JSON tree per event) because a day of a large
//! world is millions of events.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate};
use polars::prelude::*;

use super::table;
use crate::ingest::mixpanel::{
    ExportOptions, utc_ms_to_project_time, write_json_str, write_micros_decimal,
};
use crate::lake::{DateRange, Lake, LakeError};
use crate::sim::{Garble, ids};

/// How long after install the app's AppsFlyer SDK hands it the AppsFlyer ID, which the app
/// then registers as the Mixpanel super property `appsflyer_id` (the usual AppsFlyer-Mixpanel
/// setup). Events before that, such as the first `app_open`, go out without it.
pub const APPSFLYER_ID_DELAY_MS: i64 = 10_000;

/// The world's events of the UTC days `from..=to` as a lazy plan over `sim.events`, in the
/// order the export renders them (by time, then row): line numbers of a re-pulled day are
/// then stable. Adds `appsflyer_id`: the install's AppsFlyer ID once the SDK has it.
/// `all_installs` is every install of the world ([`super::world_installs`]).
pub async fn world_events(
    lake: &Lake,
    all_installs: LazyFrame,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<LazyFrame, LakeError> {
    let events = table("sim.events")?;
    let lf = lake.scan(events, DateRange::new(from, to)).await?;
    let installs = all_installs.select([
        col("user_id"),
        col("appsflyer_id").alias("_appsflyer_id"),
        col("install_time").alias("_install_time"),
    ]);
    let sdk_ready = (col("time").cast(DataType::Int64)
        - col("_install_time").cast(DataType::Int64))
    .gt_eq(lit(APPSFLYER_ID_DELAY_MS));
    Ok(lf
        .join(
            installs,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            when(sdk_ready)
                .then(col("_appsflyer_id"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("appsflyer_id"),
        )
        .drop(cols(["_appsflyer_id", "_install_time"]))
        .sort(["time", "row_id"], SortMultipleOptions::default()))
}

/// What a garbled resend ([`Garble::TimeText`]) sends as its time.
pub const GARBLED_TIME: &str = "yesterday";
/// What a garbled resend ([`Garble::RevenueText`]) sends as its revenue.
pub const GARBLED_REVENUE: &str = "lots";
/// The currency of a garbled resend [`Garble::CurrencyUnknown`]: ISO 4217's "no currency".
pub const GARBLED_CURRENCY: &str = "XXX";

/// Renders events (columns of `sim.events`; `dt` and `user_id` are ignored) as an export
/// body: one `{"event": ..., "properties": {...}}` per line, `time` in seconds (truncated) or
/// ms, shifted into project time when `project_timezone` is set. `mp_processing_time_ms` is
/// the true UTC time plus a deterministic delay of 0.2-60 s, as Mixpanel's ingestion adds.
/// A garbled resend (`malformed` set) goes out broken as its [`Garble`] kind says: `time` as
/// the string [`GARBLED_TIME`], `revenue` as the string [`GARBLED_REVENUE`] (added to an event
/// without revenue), the revenue negated, or the currency [`GARBLED_CURRENCY`].
pub fn render_export(events: DataFrame, opts: &ExportOptions) -> Result<Vec<u8>, PolarsError> {
    let row_id = events.column("row_id")?.u64()?;
    let time = events.column("time")?.datetime()?.physical();
    let event = events.column("event")?.str()?;
    let device_id = events.column("device_id")?.u64()?;
    let login_id = events.column("login_id")?.u64()?;
    let insert_id = events.column("insert_id")?.u64()?;
    let platform = events.column("platform")?.str()?;
    let country = events.column("country")?.str()?;
    let revenue = events.column("revenue_micros")?.i64()?;
    let currency = events.column("currency")?.str()?;
    let malformed = events.column("malformed")?.str()?;
    // Only frames from `world_events` carry it; other callers render without it.
    let appsflyer_ids: Vec<Option<&str>> = match events.column("appsflyer_id") {
        Ok(c) => c.str()?.iter().collect(),
        Err(_) => vec![None; events.height()],
    };

    let mut out = String::with_capacity(events.height() * 360);
    let rows = row_id
        .iter()
        .zip(time.iter())
        .zip(event.iter())
        .zip(device_id.iter())
        .zip(login_id.iter())
        .zip(insert_id.iter())
        .zip(platform.iter())
        .zip(country.iter())
        .zip(revenue.iter())
        .zip(currency.iter())
        .zip(malformed.iter())
        .zip(appsflyer_ids);
    for (
        (
            (
                ((((((((row, t), name), device), login), insert), platform), country), revenue),
                currency,
            ),
            malformed,
        ),
        appsflyer_id,
    ) in rows
    {
        let (Some(row), Some(t), Some(name), Some(device), Some(insert)) =
            (row, t, name, device, insert)
        else {
            return Err(PolarsError::ComputeError(
                "sim.events has a null in a non-nullable column".into(),
            ));
        };
        let garble = match malformed {
            None => None,
            Some(label) => match Garble::from_label(label) {
                Some(g) if !g.needs_revenue() || revenue.is_some() => Some(g),
                _ => {
                    return Err(PolarsError::ComputeError(
                        format!(
                            "sim.events row {row}: malformed {label:?} is not a kind of garbled \
                             resend for an event {} revenue",
                            if revenue.is_some() { "with" } else { "without" }
                        )
                        .into(),
                    ));
                }
            },
        };
        let wire_ms = match opts.project_timezone {
            Some(tz) => utc_ms_to_project_time(t, tz),
            None => t,
        };
        let wire_time = if opts.time_in_ms {
            wire_ms
        } else {
            wire_ms.div_euclid(1000)
        };
        let device = ids::device_uuid(device);
        out.push_str("{\"event\":");
        write_json_str(&mut out, name);
        out.push_str(",\"properties\":{\"time\":");
        if garble == Some(Garble::TimeText) {
            let _ = write!(out, "\"{GARBLED_TIME}\"");
        } else {
            let _ = write!(out, "{wire_time}");
        }
        out.push_str(",\"distinct_id\":");
        let user = login.map(ids::customer_user_id);
        match &user {
            Some(u) => write_json_str(&mut out, u),
            None => {
                out.push_str("\"$device:");
                out.push_str(&device);
                out.push('"');
            }
        }
        out.push_str(",\"$device_id\":\"");
        out.push_str(&device);
        out.push('"');
        if let Some(u) = &user {
            out.push_str(",\"$user_id\":");
            write_json_str(&mut out, u);
        }
        let _ = write!(
            out,
            ",\"$insert_id\":\"{}\",\"mp_processing_time_ms\":{}",
            ids::insert_id(insert),
            t + 200 + (ids::mix(row) % 59_800) as i64
        );
        let (os, lib) = match platform {
            Some("ios") => ("iOS", "swift"),
            _ => ("Android", "android"),
        };
        let _ = write!(out, ",\"$os\":\"{os}\",\"mp_lib\":\"{lib}\"");
        if let Some(c) = country {
            out.push_str(",\"mp_country_code\":");
            write_json_str(&mut out, c);
        }
        if let Some(p) = platform {
            out.push_str(",\"platform\":");
            write_json_str(&mut out, p);
        }
        if let Some(a) = appsflyer_id {
            out.push_str(",\"appsflyer_id\":");
            write_json_str(&mut out, a);
        }
        if garble == Some(Garble::RevenueText) {
            let _ = write!(out, ",\"revenue\":\"{GARBLED_REVENUE}\"");
        } else if let Some(r) = revenue {
            out.push_str(",\"revenue\":");
            let r = if garble == Some(Garble::RevenueNegative) {
                r.saturating_neg()
            } else {
                r
            };
            write_micros_decimal(&mut out, r);
        }
        if revenue.is_some() {
            let currency = if garble == Some(Garble::CurrencyUnknown) {
                Some(GARBLED_CURRENCY)
            } else {
                currency
            };
            if let Some(c) = currency {
                out.push_str(",\"currency\":");
                write_json_str(&mut out, c);
            }
        }
        out.push_str("}}\n");
    }
    Ok(out.into_bytes())
}

/// Every profile of the world (`sim.profiles`), ordered by account so Engage pages are
/// stable across requests of one session.
pub async fn world_profiles(lake: &Lake) -> Result<LazyFrame, LakeError> {
    let profiles = table("sim.profiles")?;
    let lf = lake.scan(profiles, DateRange::all()).await?;
    Ok(lf.sort(["login_id"], SortMultipleOptions::default()))
}

/// Renders page `page` (0-based) of `profiles` (columns of `sim.profiles`, in a stable
/// order) as an Engage answer: `$distinct_id` is the customer user id; `$properties` holds
/// `$created` (`YYYY-MM-DDTHH:MM:SS`, UTC), `$email`, `$name`, `appsflyer_id`, `adid` (only
/// when the device shares one), `platform` and `country`. `total` is given on every page; a
/// page past the end has empty `results`, which ends the query.
pub fn render_engage_page(
    profiles: &DataFrame,
    page: u64,
    page_size: usize,
    session_id: &str,
) -> Result<Vec<u8>, PolarsError> {
    let total = profiles.height();
    let start = usize::try_from(page)
        .ok()
        .and_then(|p| p.checked_mul(page_size))
        .unwrap_or(usize::MAX)
        .min(total);
    let slice = profiles.slice(start as i64, page_size.min(total - start));

    let login_id = slice.column("login_id")?.u64()?;
    let created = slice.column("created_at")?.datetime()?.physical();
    let email = slice.column("email")?.str()?;
    let name = slice.column("name")?.str()?;
    let af = slice.column("appsflyer_id")?.str()?;
    let adid = slice.column("advertising_id")?.str()?;
    let platform = slice.column("platform")?.str()?;
    let country = slice.column("country")?.str()?;

    let mut out = String::with_capacity(200 + slice.height() * 360);
    let _ = write!(
        out,
        "{{\"page\":{page},\"page_size\":{page_size},\"session_id\":"
    );
    write_json_str(&mut out, session_id);
    let _ = write!(out, ",\"status\":\"ok\",\"total\":{total},\"results\":[");
    let rows = login_id
        .iter()
        .zip(created.iter())
        .zip(email.iter())
        .zip(name.iter())
        .zip(af.iter())
        .zip(adid.iter())
        .zip(platform.iter())
        .zip(country.iter());
    for (i, (((((((login, created), email), name), af), adid), platform), country)) in
        rows.enumerate()
    {
        let Some(login) = login else {
            return Err(PolarsError::ComputeError(
                "sim.profiles has a null login_id".into(),
            ));
        };
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"$distinct_id\":");
        write_json_str(&mut out, &ids::customer_user_id(login));
        out.push_str(",\"$properties\":{");
        let mut first = true;
        let mut field = |out: &mut String, key: &str, value: Option<&str>| {
            if let Some(v) = value {
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_str(out, key);
                out.push(':');
                write_json_str(out, v);
            }
        };
        let created = created
            .and_then(DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string());
        field(&mut out, "$created", created.as_deref());
        field(&mut out, "$email", email);
        field(&mut out, "$name", name);
        field(&mut out, "appsflyer_id", af);
        field(&mut out, "adid", adid);
        field(&mut out, "platform", platform);
        field(&mut out, "country", country);
        out.push_str("}}");
    }
    out.push_str("]}");
    Ok(out.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::Write as _;

    use chrono::Utc;

    use super::*;
    use crate::cleanse::mixpanel::reject_malformed_events;
    use crate::cleanse::reject::{REJECT, with_reject};
    use crate::ingest::mixpanel::{parse_engage_page, parse_export};

    /// `df` (columns of `sim.events`, `time` in ms) with `time` as the table types it.
    fn with_utc_time(df: DataFrame) -> DataFrame {
        df.lazy()
            .with_column(col("time").cast(DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )))
            .collect()
            .unwrap()
    }

    async fn small_world() -> (Lake, NaiveDate) {
        let (lake, sim) = crate::test_support::small_world(2, 300).await;
        (lake, sim.start_date)
    }

    fn validate(table: &str, df: &DataFrame) {
        crate::schema::Registry::embedded()
            .unwrap()
            .get(table)
            .unwrap()
            .validate(df, "dt=2026-01-03")
            .unwrap();
    }

    fn col_i64(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
        let c = df.column(name).unwrap();
        match c.dtype() {
            DataType::Datetime(..) => c.datetime().unwrap().physical().iter().collect(),
            _ => c.i64().unwrap().iter().collect(),
        }
    }

    fn col_str(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_world_round_trips_through_the_export_format() {
        let (lake, start) = small_world().await;
        let to = start.succ_opt().unwrap();
        let installs = super::super::world_installs(&lake).await.unwrap();
        let events = world_events(&lake, installs, start, to)
            .await
            .unwrap()
            .collect()
            .unwrap();
        assert!(
            events.height() > 1000,
            "a world of 2 days x 300 users has events"
        );
        assert!(events.column("revenue_micros").unwrap().null_count() < events.height());

        let seoul = ExportOptions {
            time_in_ms: true,
            project_timezone: Some(chrono_tz::Asia::Seoul),
        };
        let body = render_export(events.clone(), &seoul).unwrap();
        // Through gzip too, as the connector may hand the body over still compressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        for wire in [&body, &gz] {
            let parsed = parse_export(wire, &seoul, Utc::now(), "dt=2026-01-01").unwrap();
            validate("raw.mixpanel_export", &parsed);
            // Line n is row n-1 of the world: every event exactly once, in order, garbled
            // resends broken as their kind says.
            assert_eq!(parsed.height(), events.height());
            let wire = Wire::of(&events, |t| t);
            assert_eq!(col_i64(&parsed, "time"), wire.time);
            assert_eq!(col_i64(&parsed, "revenue_micros"), wire.revenue);
            assert_eq!(col_str(&parsed, "currency"), wire.currency);
            let reasons = col_str(&parsed, "malformed");
            for (reason, prefix) in reasons.iter().zip(&wire.reason) {
                match (reason, prefix) {
                    (None, None) => {}
                    (Some(r), Some(p)) => assert!(r.starts_with(p), "{r:?} for {p:?}"),
                    _ => panic!("reason {reason:?}, expected one starting {prefix:?}"),
                }
            }
            assert_eq!(col_str(&parsed, "event"), col_str(&events, "event"));
            let inserts: Vec<Option<String>> = events
                .column("insert_id")
                .unwrap()
                .u64()
                .unwrap()
                .iter()
                .map(|i| i.map(ids::insert_id))
                .collect();
            assert_eq!(col_str(&parsed, "insert_id"), inserts);
            let logins = events.column("login_id").unwrap().u64().unwrap();
            let devices = events.column("device_id").unwrap().u64().unwrap();
            let distinct = col_str(&parsed, "distinct_id");
            let users = col_str(&parsed, "user_id");
            for (i, (login, device)) in logins.iter().zip(devices.iter()).enumerate() {
                let device = ids::device_uuid(device.unwrap());
                let expected = match login {
                    Some(l) => ids::customer_user_id(l),
                    None => format!("$device:{device}"),
                };
                assert_eq!(distinct[i].as_deref(), Some(expected.as_str()));
                assert_eq!(users[i], login.map(ids::customer_user_id));
            }
        }

        // In seconds the instant is truncated to the second, nothing else changes.
        let seconds = ExportOptions {
            time_in_ms: false,
            project_timezone: Some(chrono_tz::America::Los_Angeles),
        };
        let body = render_export(events.clone(), &seconds).unwrap();
        let parsed = parse_export(&body, &seconds, Utc::now(), "dt=2026-01-01").unwrap();
        let truncated = Wire::of(&events, |t| t.div_euclid(1000) * 1000);
        assert_eq!(col_i64(&parsed, "time"), truncated.time);
    }

    /// What the connector should read of each row of `events`: `time` through `instant`,
    /// the garbled resends' broken fields as their kind says, and the start of the row's
    /// `malformed` reason.
    struct Wire {
        time: Vec<Option<i64>>,
        revenue: Vec<Option<i64>>,
        currency: Vec<Option<String>>,
        reason: Vec<Option<&'static str>>,
    }

    impl Wire {
        fn of(events: &DataFrame, instant: fn(i64) -> i64) -> Wire {
            let kinds: Vec<Option<Garble>> = col_str(events, "malformed")
                .into_iter()
                .map(|k| k.map(|k| Garble::from_label(&k).unwrap()))
                .collect();
            assert!(
                kinds.iter().any(Option::is_some),
                "the world has garbled resends"
            );
            let mut wire = Wire {
                time: col_i64(events, "time"),
                revenue: col_i64(events, "revenue_micros"),
                currency: col_str(events, "currency"),
                reason: vec![None; events.height()],
            };
            for (i, kind) in kinds.iter().enumerate() {
                wire.time[i] = wire.time[i].map(instant);
                match kind {
                    Some(Garble::TimeText) => {
                        wire.time[i] = None;
                        wire.reason[i] = Some("time: must be a number of ");
                    }
                    Some(Garble::RevenueText) => {
                        wire.revenue[i] = None;
                        wire.reason[i] = Some("revenue: must be a decimal number");
                    }
                    Some(Garble::RevenueNegative) => wire.revenue[i] = wire.revenue[i].map(|r| -r),
                    Some(Garble::CurrencyUnknown) => wire.currency[i] = Some("XXX".into()),
                    None => {}
                }
            }
            wire
        }
    }

    /// One line per kind of garbled resend, and a sound purchase: the connector lands each
    /// line, and the cleanse's malformed rule rejects exactly the garbled ones, each with the
    /// reason its kind should give.
    #[test]
    fn garbled_resends_land_and_are_rejected_as_malformed() {
        let kinds: [Option<&str>; 6] = [
            None,
            Some("time_text"),
            Some("revenue_text"),
            Some("revenue_text"),
            Some("revenue_negative"),
            Some("currency_unknown"),
        ];
        let n = kinds.len();
        let df = df!(
            "row_id" => (0..n as u64).collect::<Vec<_>>(),
            "time" => vec![1_767_312_000_123i64; n],
            "event" => ["purchase", "purchase", "app_open", "purchase", "purchase", "purchase"],
            "device_id" => vec![7u64; n],
            "login_id" => vec![Some(42u64); n],
            "insert_id" => vec![255u64; n],
            "platform" => vec!["ios"; n],
            "country" => vec!["KR"; n],
            "revenue_micros" => [Some(1_200_000_000i64), Some(1_200_000_000), None,
                Some(1_200_000_000), Some(1_200_000_000), Some(1_200_000_000)],
            "currency" => [Some("KRW"), Some("KRW"), None, Some("KRW"), Some("KRW"), Some("KRW")],
            "malformed" => kinds,
        )
        .unwrap();
        let df = with_utc_time(df);
        let opts = ExportOptions::default();
        let body = render_export(df, &opts).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains(r#""time":"yesterday""#), "{}", lines[1]);
        assert!(lines[2].contains(r#""revenue":"lots""#), "{}", lines[2]);
        assert!(!lines[2].contains("currency"), "{}", lines[2]);
        assert!(lines[4].contains(r#""revenue":-1200,"#), "{}", lines[4]);
        assert!(lines[5].contains(r#""currency":"XXX""#), "{}", lines[5]);

        let raw = parse_export(&body, &opts, Utc::now(), "dt=2026-01-02").unwrap();
        validate("raw.mixpanel_export", &raw);
        assert_eq!(raw.height(), n, "every garbled line lands");
        assert_eq!(
            col_str(&raw, "malformed"),
            [
                None,
                Some(
                    r#"time: must be a number of seconds since the epoch, found "yesterday""#
                        .into()
                ),
                Some("revenue: must be a decimal number that fits in micros, found lots".into()),
                Some("revenue: must be a decimal number that fits in micros, found lots".into()),
                None,
                None,
            ]
        );
        assert_eq!(
            col_i64(&raw, "revenue_micros"),
            [
                Some(1_200_000_000),
                Some(1_200_000_000),
                None,
                None,
                Some(-1_200_000_000),
                Some(1_200_000_000)
            ]
        );

        // KRW priced on the day; XXX is not.
        let fx = df!(
            "date" => [20_455i32],
            "currency" => ["KRW"],
            "usd_per_unit" => [0.00075f64],
        )
        .unwrap()
        .lazy()
        .with_column(col("date").cast(DataType::Date));
        let marked = reject_malformed_events(with_reject(raw.lazy()), fx)
            .collect()
            .unwrap();
        assert_eq!(
            col_str(&marked, REJECT),
            [
                None,
                Some(r#"malformed: time: must be a number of seconds since the epoch, found "yesterday""#.into()),
                Some("malformed: revenue: must be a decimal number that fits in micros, found lots".into()),
                Some("malformed: revenue: must be a decimal number that fits in micros, found lots".into()),
                Some("malformed: revenue: negative (-1200000000 micros)".into()),
                Some("malformed: currency=XXX has no FX rate on 2026-01-02".into()),
            ]
        );
    }

    #[test]
    fn a_garbled_kind_needs_what_it_breaks() {
        for (kind, revenue) in [("revenue_negative", None), ("no_such_kind", Some(5i64))] {
            let df = df!(
                "row_id" => [9u64],
                "time" => [1_767_312_000_123i64],
                "event" => ["app_open"],
                "device_id" => [7u64],
                "login_id" => [None::<u64>],
                "insert_id" => [255u64],
                "platform" => ["ios"],
                "country" => ["KR"],
                "revenue_micros" => [revenue],
                "currency" => [revenue.map(|_| "KRW")],
                "malformed" => [Some(kind)],
            )
            .unwrap();
            let df = with_utc_time(df);
            let e = render_export(df, &ExportOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("sim.events row 9") && e.contains(kind), "{e}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_world_round_trips_through_engage_pages() {
        let (lake, _) = small_world().await;
        let profiles = world_profiles(&lake).await.unwrap().collect().unwrap();
        assert!(profiles.height() > 50);
        let page_size = 64;
        let mut landed = Vec::new();
        let mut page = 0;
        loop {
            let body = render_engage_page(&profiles, page, page_size, "S1").unwrap();
            let parsed = parse_engage_page(&body, Utc::now(), "dt=2026-01-03").unwrap();
            validate("raw.mixpanel_engage", &parsed.frame);
            assert_eq!(parsed.page, page);
            assert_eq!(parsed.session_id, "S1");
            assert_eq!(parsed.total, Some(profiles.height() as u64));
            if parsed.frame.height() == 0 {
                break;
            }
            landed.push(parsed.frame);
            page += 1;
            assert!(page < 1000, "paging never ends");
        }
        assert_eq!(page as usize, profiles.height().div_ceil(page_size));
        let mut all = landed.remove(0);
        for f in landed {
            all.vstack_mut(&f).unwrap();
        }
        assert_eq!(all.height(), profiles.height());
        let expected: Vec<Option<String>> = profiles
            .column("login_id")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .map(|l| l.map(ids::customer_user_id))
            .collect();
        assert_eq!(col_str(&all, "distinct_id"), expected);
        assert_eq!(col_str(&all, "user_id"), expected);
        assert_eq!(col_str(&all, "email"), col_str(&profiles, "email"));
        assert_eq!(col_str(&all, "adid"), col_str(&profiles, "advertising_id"));
        assert_eq!(
            col_str(&all, "appsflyer_id"),
            col_str(&profiles, "appsflyer_id")
        );
        let created: Vec<Option<i64>> = col_i64(&profiles, "created_at")
            .into_iter()
            .map(|t| t.map(|t| t.div_euclid(1000) * 1000))
            .collect();
        assert_eq!(col_i64(&all, "created"), created);
    }

    #[test]
    fn rendered_lines_look_like_mixpanel_and_escape_names() {
        let df = df!(
            "row_id" => [1u64, 2],
            "time" => [1_767_312_000_123i64, 1_767_312_001_000],
            "event" => ["purchase", "odd \"name\""],
            "device_id" => [7u64, 8],
            "login_id" => [Some(42u64), None],
            "insert_id" => [255u64, 256],
            "platform" => ["ios", "android"],
            "country" => ["KR", "JP"],
            "revenue_micros" => [Some(9_990_000i64), None],
            "currency" => [Some("USD"), None],
            "malformed" => [None::<&str>, None],
        )
        .unwrap();
        let df = with_utc_time(df);
        let body =
            String::from_utf8(render_export(df, &ExportOptions::default()).unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let p = &lines[0]["properties"];
        assert_eq!(lines[0]["event"], "purchase");
        assert_eq!(p["time"], 1_767_312_000);
        assert_eq!(p["distinct_id"], "U000000042");
        assert_eq!(p["$user_id"], "U000000042");
        assert_eq!(p["$insert_id"], "00000000000000ff");
        assert_eq!(p["$os"], "iOS");
        assert_eq!(p["mp_country_code"], "KR");
        assert_eq!(p["currency"], "USD");
        assert!(body.contains("\"revenue\":9.99,"));
        assert!(p["mp_processing_time_ms"].as_i64().unwrap() > 1_767_312_000_123);
        assert_eq!(lines[1]["event"], "odd \"name\"");
        assert!(
            lines[1]["properties"]["distinct_id"]
                .as_str()
                .unwrap()
                .starts_with("$device:")
        );
        assert!(lines[1]["properties"].get("$user_id").is_none());
        assert_eq!(lines[1]["properties"]["$os"], "Android");
    }
}
