//! Normalisation shared by every source: report dates in the reporting time zone, canonical
//! platform and channel names. Times are UTC from the raw layer on (each connector converts
//! its source's zone); only the report date depends on where the marketer sits.

use polars::prelude::*;

/// The polars zone of the configured reporting time zone.
pub fn polars_zone(tz: chrono_tz::Tz) -> PolarsResult<TimeZone> {
    Ok(TimeZone::opt_try_new(Some(tz.name()))?.unwrap_or(TimeZone::UTC))
}

/// The calendar date of a UTC time in `zone` (an event at 23:30 UTC is the next day in
/// Seoul).
pub fn local_date(time: Expr, zone: &TimeZone) -> Expr {
    time.dt().convert_time_zone(zone.clone()).dt().date()
}

/// The UTC calendar date of a time: the day whose FX rate prices money moved at that time.
pub fn utc_date(time: Expr) -> Expr {
    time.dt().date()
}

/// `ios` / `android` from a Mixpanel `$os` or an AppsFlyer platform; other values lower-cased.
pub fn platform(os: Expr) -> Expr {
    let lower = os.str().to_lowercase();
    when(
        lower
            .clone()
            .eq(lit("ios"))
            .or(lower.clone().eq(lit("ipados"))),
    )
    .then(lit("ios"))
    .otherwise(lower)
}

/// AppsFlyer media sources and the canonical channel key of each; anything else keeps its
/// media source as channel (and shows up in `clean.unmapped_campaigns` if it spends).
pub const MEDIA_SOURCE_CHANNELS: [(&str, &str); 7] = [
    ("Facebook Ads", "facebook"),
    ("googleadwords_int", "google_ads"),
    ("Apple Search Ads", "apple_search_ads"),
    ("naver_int", "naver"),
    ("adison_int", "adison"),
    ("organic", "organic"),
    ("Organic", "organic"),
];

/// The canonical channel of an AppsFlyer media source.
pub fn channel_of_media_source(media_source: Expr) -> Expr {
    let mut e = media_source.clone();
    for (source, channel) in MEDIA_SOURCE_CHANNELS.iter().rev() {
        e = when(media_source.clone().eq(lit(*source)))
            .then(lit(*channel))
            .otherwise(e);
    }
    when(media_source.clone().is_null().or(media_source.eq(lit(""))))
        .then(lit("organic"))
        .otherwise(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_late_utc_evening_is_the_next_day_in_seoul() {
        let ms = [
            // 2026-01-01 23:30 UTC: 2026-01-02 08:30 in Seoul.
            1_767_310_200_000i64,
            // 2026-01-01 14:59:59 UTC: still 2026-01-01 23:59:59 in Seoul.
            1_767_279_599_000,
        ];
        let df = DataFrame::new_infer_height(vec![
            Column::new("time".into(), ms)
                .cast(&DataType::Datetime(
                    TimeUnit::Milliseconds,
                    Some(TimeZone::UTC),
                ))
                .unwrap(),
        ])
        .unwrap();
        let zone = polars_zone(chrono_tz::Asia::Seoul).unwrap();
        let out = df
            .lazy()
            .select([
                local_date(col("time"), &zone).alias("seoul"),
                utc_date(col("time")).alias("utc"),
            ])
            .collect()
            .unwrap();
        let days = |c: &str| -> Vec<String> {
            out.column(c)
                .unwrap()
                .date()
                .unwrap()
                .as_date_iter()
                .map(|d| d.unwrap().to_string())
                .collect()
        };
        assert_eq!(days("seoul"), ["2026-01-02", "2026-01-01"]);
        assert_eq!(days("utc"), ["2026-01-01", "2026-01-01"]);
    }

    #[test]
    fn media_sources_map_to_channels() {
        let df = DataFrame::new_infer_height(vec![Column::new(
            "m".into(),
            [
                Some("Facebook Ads"),
                Some("organic"),
                None,
                Some("tiktok_int"),
            ],
        )])
        .unwrap();
        let out = df
            .lazy()
            .select([channel_of_media_source(col("m")).alias("m")])
            .collect()
            .unwrap();
        let v: Vec<Option<&str>> = out.column("m").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            v,
            [
                Some("facebook"),
                Some("organic"),
                Some("organic"),
                Some("tiktok_int")
            ]
        );
    }
}
