//! `ltv ingest` end to end against the local server: every row of the simulated world lands
//! once, window splitting and paging lose nothing, injected faults end in identical
//! partitions or a clean failure of one stream, and budgets hold across runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::NaiveDate;
use ltv::config::{PipelineConfig, SourceKind, std_env};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::schedule::{Mode, Progress, RunSummary};
use ltv::ingest::sources::{drop_simulated_adison_files, world_days};
use ltv::ingest::state::StreamState;
use ltv::ingest::{IngestRequest, run_ingest};
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::server::{Faults, ServerOptions};
use polars::prelude::*;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The demo config with `edit` applied to its text: tests change budgets and sizes.
fn config_with(edit: impl Fn(String) -> String) -> PipelineConfig {
    let text = edit(ltv::config::EMBEDDED_DEMO.to_string());
    PipelineConfig::from_toml(&text, "test", &std_env).unwrap()
}

/// A three-day world (2026-01-01..03) in a fresh in-memory lake, with Adison's files dropped.
async fn world(config: &PipelineConfig) -> Lake {
    world_of(config, 400).await
}

async fn world_of(config: &PipelineConfig, users_per_day: u32) -> Lake {
    world_of_days(config, 3, users_per_day).await
}

async fn world_of_days(config: &PipelineConfig, days: u32, users_per_day: u32) -> Lake {
    let mut sim = config.sim.clone().unwrap();
    sim.days = NonZeroU32::new(days).unwrap();
    sim.users_per_day = users_per_day;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    let days = world_days(&lake).await.unwrap().unwrap();
    drop_simulated_adison_files(config, &lake, days)
        .await
        .unwrap();
    lake
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn backfill() -> Mode {
    Mode::Range {
        from: d("2026-01-01"),
        to: d("2026-01-03"),
        today: d("2026-01-04"),
    }
}

async fn ingest(config: &PipelineConfig, lake: &Lake, mode: Mode, faults: Faults) -> RunSummary {
    let request = IngestRequest {
        retry: quick(),
        local_server: ServerOptions {
            faults,
            ..ServerOptions::default()
        },
        ..IngestRequest::new(mode)
    };
    run_ingest(config, lake, request, &std_env, &Progress::hidden())
        .await
        .unwrap()
}

async fn scan(lake: &Lake, table: &str, range: DateRange) -> LazyFrame {
    let t = Registry::embedded().unwrap().get(table).unwrap();
    lake.scan(t, range).await.unwrap()
}

async fn rows(lake: &Lake, table: &str, day: NaiveDate) -> usize {
    scan(lake, table, DateRange::day(day))
        .await
        .collect()
        .unwrap()
        .height()
}

/// A partition's rows without `pulled_at` and `dt`, sorted: two pulls of the same data
/// compare equal.
async fn content(lake: &Lake, table: &str, day: NaiveDate) -> DataFrame {
    let t = Registry::embedded().unwrap().get(table).unwrap();
    let key: Vec<PlSmallStr> = t
        .primary_key
        .iter()
        .filter(|k| *k != "dt")
        .map(|k| k.as_str().into())
        .collect();
    scan(lake, table, DateRange::day(day))
        .await
        .drop(cols(["pulled_at", "dt"]))
        .sort(key, SortMultipleOptions::default())
        .collect()
        .unwrap()
}

const ISSUE3_TABLES: [&str; 13] = [
    "raw.mixpanel_export",
    "raw.appsflyer_installs_report",
    "raw.appsflyer_in_app_events_report",
    "raw.appsflyer_organic_installs_report",
    "raw.appsflyer_organic_in_app_events_report",
    "raw.appsflyer_blocked_installs_report",
    "raw.appsflyer_detection",
    "raw.appsflyer_fraud_post_inapps",
    "raw.adison_report",
    "raw.sheets_campaign_overrides",
    "raw.sheets_manual_costs",
    "raw.sheets_test_devices",
    "raw.sheets_fx_rates",
];

/// Runs `request` and checks no stream failed or deferred.
async fn ingest_clean(config: &PipelineConfig, lake: &Lake, request: IngestRequest) -> RunSummary {
    let summary = run_ingest(config, lake, request, &std_env, &Progress::hidden())
        .await
        .unwrap();
    assert_clean(&summary);
    summary
}

/// [`content`] of each table's first `days` days from 2026-01-01, table by table.
async fn contents(lake: &Lake, tables: &[&str], days: u32) -> Vec<DataFrame> {
    let mut out = Vec::new();
    for table in tables {
        for day in d("2026-01-01").iter_days().take(days as usize) {
            out.push(content(lake, table, day).await);
        }
    }
    out
}

fn assert_clean(summary: &RunSummary) {
    for (name, s) in &summary.streams {
        assert!(s.failure.is_none(), "{name}: {:?}", s.failure);
        assert!(s.deferral.is_none(), "{name}: {:?}", s.deferral);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_lands_every_row_of_the_world_once() {
    let config = config_with(|t| t);
    // Enough users for several Engage pages.
    let lake = world_of(&config, 1000).await;
    let summary = ingest(&config, &lake, backfill(), Faults::default()).await;
    assert_clean(&summary);

    for day in ["2026-01-01", "2026-01-02", "2026-01-03"].map(d) {
        // Mixpanel: the export is not deduplicated, so every world event row comes back.
        let events = scan(&lake, "sim.events", DateRange::day(day))
            .await
            .collect()
            .unwrap()
            .height();
        assert!(events > 1000);
        assert_eq!(
            rows(&lake, "raw.mixpanel_export", day).await,
            events,
            "{day}"
        );

        // AppsFlyer: every attributed, unblocked install, both apps, keys unique.
        let installs = scan(&lake, "sim.installs", DateRange::day(day))
            .await
            .filter(
                col("channel").neq(lit("organic")).and(
                    col("af_fraud_report")
                        .neq(lit("blocked"))
                        .or(col("af_fraud_report").is_null()),
                ),
            )
            .collect()
            .unwrap()
            .height();
        let landed = content(&lake, "raw.appsflyer_installs_report", day).await;
        assert_eq!(landed.height(), installs, "{day}");
        let keys = landed
            .select(["app_id", "appsflyer_id", "install_time"])
            .unwrap()
            .is_unique()
            .unwrap();
        assert!(keys.all(), "duplicate install keys on {day}");

        // Adison: the dropped file's spend is the world's Adison spend.
        let world_spend: i64 = scan(&lake, "sim.ad_daily", DateRange::day(day))
            .await
            .filter(col("channel").eq(lit("adison")))
            .select([col("spend_micros").sum()])
            .collect()
            .unwrap()
            .column("spend_micros")
            .unwrap()
            .i64()
            .unwrap()
            .get(0)
            .unwrap();
        let landed_spend: i64 = scan(&lake, "raw.adison_report", DateRange::day(day))
            .await
            .select([col("spend_micros").sum()])
            .collect()
            .unwrap()
            .column("spend_micros")
            .unwrap()
            .i64()
            .unwrap()
            .get(0)
            .unwrap();
        assert!(world_spend > 0);
        assert_eq!(landed_spend, world_spend, "{day}");
    }
    // Snapshots land once, on the run's day: every profile (Engage pages of 1,000).
    let today = d("2026-01-04");
    let profiles = scan(&lake, "sim.profiles", DateRange::all())
        .await
        .collect()
        .unwrap()
        .height();
    assert!(profiles > 1000, "needs more than one Engage page");
    assert_eq!(rows(&lake, "raw.mixpanel_engage", today).await, profiles);
    let devices = scan(&lake, "sim.test_devices", DateRange::all())
        .await
        .collect()
        .unwrap()
        .height();
    assert_eq!(rows(&lake, "raw.sheets_test_devices", today).await, devices);
    assert!(rows(&lake, "raw.sheets_fx_rates", today).await > 0);

    // Every stream's state records exactly the partitions that landed.
    for (name, s) in &summary.streams {
        let state = StreamState::load(&lake, name).await.unwrap();
        assert_eq!(state.partitions.len() as u32, s.landed, "{name}");
    }
    let mp = &summary.streams["mixpanel.export"];
    assert_eq!((mp.landed, mp.calls), (3, 3));
    assert_eq!(
        summary.streams["mixpanel.engage"].calls as usize,
        profiles / 1000 + 1
    );

    // A second run the same day pulls only what it was asked to again, replacing (never
    // duplicating) the partitions.
    let before = content(&lake, "raw.appsflyer_in_app_events_report", d("2026-01-02")).await;
    let again = ingest(&config, &lake, backfill(), Faults::default()).await;
    assert_clean(&again);
    assert_eq!(
        again.streams["mixpanel.engage"].landed, 0,
        "one snapshot a day"
    );
    let after = content(&lake, "raw.appsflyer_in_app_events_report", d("2026-01-02")).await;
    assert!(before.equals_missing(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_appsflyer_windows_are_split_and_lose_nothing() {
    // 40 rows a body: the in-app event days hold hundreds, so windows are cut and split.
    let config = config_with(|t| {
        t.replace(
            "[sources.appsflyer]\n",
            "[sources.appsflyer]\nmaximum_rows = 40\n",
        )
        // Splitting, not the quota, is under test: hundreds of calls a day.
        .replace("budget = { per_day = 24 }", "budget = { per_day = 2000 }")
    });
    let lake = world(&config).await;
    let request = IngestRequest {
        only: Some(SourceKind::AppsFlyer),
        retry: quick(),
        ..IngestRequest::new(backfill())
    };
    let summary = ingest_clean(&config, &lake, request.clone()).await;
    let events = &summary.streams["appsflyer.in_app_events_report"];
    assert!(
        events.calls > 6,
        "windows were split: {} calls",
        events.calls
    );
    let mut split = Vec::new();
    for day in ["2026-01-01", "2026-01-02", "2026-01-03"].map(d) {
        let landed = content(&lake, "raw.appsflyer_in_app_events_report", day).await;
        assert!(landed.height() > 100);
        split.push(landed);
    }
    // The state kept each day's cost; the planner reads the volume from it.
    let state = StreamState::load(&lake, "appsflyer.in_app_events_report")
        .await
        .unwrap();
    assert!(
        state
            .partitions
            .values()
            .all(|p| p.calls > 2 && p.rows > 100)
    );
    // Pulled again whole (one window a day, the default cap): the same rows.
    let whole =
        config_with(|t| t.replace("budget = { per_day = 24 }", "budget = { per_day = 2000 }"));
    ingest_clean(&whole, &lake, request.clone()).await;
    for (day, rows) in ["2026-01-01", "2026-01-02", "2026-01-03"]
        .map(d)
        .into_iter()
        .zip(split)
    {
        let landed = content(&lake, "raw.appsflyer_in_app_events_report", day).await;
        assert!(
            landed.equals_missing(&rows),
            "{day}: split and whole pulls differ"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appsflyer_backfill_takes_many_days_a_call_and_lands_each_day_as_a_day_pull_would() {
    // The demo's quota, AppsFlyer's real one (24 calls a day per app and report), and a
    // report zone nine hours off UTC, so splitting rows into days by their time is tested
    // across midnight.
    let days = 12;
    let with = |per_call: u32| {
        config_with(move |t| {
            t.replace(
                "[sources.appsflyer]\n",
                &format!(
                    "[sources.appsflyer]\ntimezone = \"Asia/Seoul\"\nbackfill_days_per_call = {per_call}\n"
                ),
            )
            .replace("concurrency = 4", "concurrency = 1")
        })
    };
    let lake = world_of_days(&with(1), days, 150).await;
    let request = IngestRequest {
        only: Some(SourceKind::AppsFlyer),
        retry: quick(),
        ..IngestRequest::new(Mode::Range {
            from: d("2026-01-01"),
            to: d("2026-01-12"),
            today: d("2026-01-13"),
        })
    };
    let tables = [
        "raw.appsflyer_installs_report",
        "raw.appsflyer_in_app_events_report",
        "raw.appsflyer_organic_in_app_events_report",
        "raw.appsflyer_detection",
    ];
    // Day by day first: a call per app, report and day.
    let daily = ingest_clean(&with(1), &lake, request.clone()).await;
    let events = &daily.streams["appsflyer.in_app_events_report"];
    assert_eq!((events.landed, events.calls), (days, 2 * days), "{daily}");
    let by_day = contents(&lake, &tables, days).await;
    assert!(by_day.iter().map(DataFrame::height).sum::<usize>() > 1000);

    // Again, many days a call: with the days above landed, their volume says how many fit.
    let spans = ingest_clean(&with(30), &lake, request).await;
    for (name, s) in &spans.streams {
        assert_eq!(s.landed, days, "{name}: {spans}");
        // The yesterday of the range is its own pull; the other eleven days take one.
        assert_eq!(s.calls, 2 * 2, "{name}: two calls per app: {spans}");
    }
    let again = contents(&lake, &tables, days).await;
    for (i, (a, b)) in by_day.iter().zip(&again).enumerate() {
        assert!(
            a.equals_missing(b),
            "{} day {}: a multi-day pull landed other rows than the day's own pull",
            tables[i / days as usize],
            i % days as usize + 1
        );
    }
    // Each day's state: its own rows; the pull's calls on its first day.
    let state = StreamState::load(&lake, "appsflyer.in_app_events_report")
        .await
        .unwrap();
    let first = &state.partitions[&d("2026-01-01")];
    assert_eq!(first.calls, 2);
    assert_eq!(state.partitions[&d("2026-01-02")].calls, 0);
    for (i, day) in d("2026-01-01").iter_days().take(days as usize).enumerate() {
        let want = by_day[days as usize + i].height() as u64;
        assert_eq!(state.partitions[&day].rows, want, "{day}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_the_quota_cannot_pay_for_is_deferred_before_spending_it() {
    // Four calls a day per app and report, 40 rows a body: a day needs more than that.
    let config = config_with(|t| {
        t.replace(
            "[sources.appsflyer]\n",
            "[sources.appsflyer]\nmaximum_rows = 40\nreports = [\"in_app_events_report\"]\n",
        )
        .replace("budget = { per_day = 24 }", "budget = { per_day = 4 }")
    });
    let lake = world(&config).await;
    let request = IngestRequest {
        only: Some(SourceKind::AppsFlyer),
        retry: quick(),
        ..IngestRequest::new(backfill())
    };
    let summary = run_ingest(&config, &lake, request, &std_env, &Progress::hidden())
        .await
        .unwrap();
    let s = &summary.streams["appsflyer.in_app_events_report"];
    assert!(s.failure.is_none(), "{:?}", s.failure);
    assert!(s.deferred >= 1, "{s:?}");
    assert!(s.deferral.as_deref().unwrap().contains("left"), "{s:?}");
    // Never over the quota: 4 per app per day, two apps.
    assert!(summary.calls_by_source["appsflyer"] <= 8, "{summary}");
    let state = StreamState::load(&lake, "appsflyer.in_app_events_report")
        .await
        .unwrap();
    assert_eq!(state.partitions.len() as u32, s.landed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_identical_partitions() {
    // The ad channels' connectors have fault tests of their own with shortened waits (a
    // Meta block is waited out for real minutes here).
    let config = config_with(|t| {
        ["meta", "google_ads", "apple_search_ads", "naver"]
            .iter()
            .fold(t, |t, s| {
                t.replace(
                    &format!("[sources.{s}]\n"),
                    &format!("[sources.{s}]\nenabled = false\n"),
                )
            })
    });
    let lake = world(&config).await;
    let clean = ingest(&config, &lake, backfill(), Faults::default()).await;
    assert_clean(&clean);
    let mut before = Vec::new();
    for table in ISSUE3_TABLES {
        let day = if table.starts_with("raw.sheets") {
            d("2026-01-04")
        } else {
            d("2026-01-02")
        };
        before.push(content(&lake, table, day).await);
    }
    // Every route: a throttle, a 5xx, a cut body and a broken one, then service. Snapshots
    // were taken today already, so pull them again on another day.
    let faults = Faults {
        throttle: 1,
        server_errors: 1,
        truncated: 1,
        malformed: 1,
        ..Faults::default()
    };
    let mode = Mode::Range {
        from: d("2026-01-01"),
        to: d("2026-01-03"),
        today: d("2026-01-05"),
    };
    let faulty = ingest(&config, &lake, mode, faults).await;
    assert_clean(&faulty);
    assert!(faulty.streams["mixpanel.export"].retries >= 4, "{faulty}");
    for (table, old) in ISSUE3_TABLES.iter().zip(before) {
        let day = if table.starts_with("raw.sheets") {
            d("2026-01-05")
        } else {
            d("2026-01-02")
        };
        let new = content(&lake, table, day).await;
        assert!(old.equals_missing(&new), "{table} changed under faults");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stream_keeps_what_landed_and_the_next_run_completes_it() {
    // One export in flight (the demo runs two), so "the first failure stops the stream" means
    // exactly one failed call and every later pull skipped.
    let config = config_with(|t| {
        t.replace(
            "[sources.mixpanel]\n",
            "[sources.mixpanel]\nconcurrency = 1\n",
        )
        .replacen("concurrency = 2\n", "", 1)
    });
    let lake = world(&config).await;
    let first = Mode::Range {
        from: d("2026-01-01"),
        to: d("2026-01-02"),
        today: d("2026-01-04"),
    };
    assert_clean(&ingest(&config, &lake, first, Faults::default()).await);
    let landed = content(&lake, "raw.mixpanel_export", d("2026-01-02")).await;

    // The server fails every call (more 5xx than attempts): streams fail, cleanly.
    let down = Faults {
        server_errors: 1000,
        ..Faults::default()
    };
    let summary = ingest(&config, &lake, backfill(), down).await;
    let mp = &summary.streams["mixpanel.export"];
    let failure = mp.failure.as_deref().expect("the export stream fails");
    assert!(
        failure.contains("mixpanel") && failure.contains("gave up after 5 attempts"),
        "{failure}"
    );
    assert_eq!(
        (mp.landed, mp.skipped),
        (0, 2),
        "the first failure stops the stream"
    );
    // Adison reads files, not the API: a failed API never fails another source.
    assert!(summary.streams["adison.report"].failure.is_none());
    assert_eq!(summary.streams["adison.report"].landed, 3);

    // What landed before is intact, and the state still ends at the last complete day.
    assert!(landed.equals_missing(&content(&lake, "raw.mixpanel_export", d("2026-01-02")).await));
    let state = StreamState::load(&lake, "mixpanel.export").await.unwrap();
    assert_eq!(state.last_complete(d("2026-01-01")), Some(d("2026-01-02")));

    // The next nightly run completes the job.
    let next = ingest(
        &config,
        &lake,
        Mode::Nightly {
            today: d("2026-01-04"),
        },
        Faults::default(),
    )
    .await;
    assert_clean(&next);
    let state = StreamState::load(&lake, "mixpanel.export").await.unwrap();
    assert_eq!(state.last_complete(d("2026-01-01")), Some(d("2026-01-03")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_on_one_day_share_one_budget() {
    // Mixpanel: 4 calls an hour. Run one takes them; run two, the same hour, defers.
    let config = config_with(|t| {
        t.replace(
            "budget = { per_second = 200, per_hour = 2000 }",
            "budget = { per_second = 200, per_hour = 4 }",
        )
    });
    let lake = world(&config).await;
    let request = |mode| IngestRequest {
        only: Some(SourceKind::Mixpanel),
        retry: quick(),
        ..IngestRequest::new(mode)
    };
    let one = run_ingest(
        &config,
        &lake,
        request(backfill()),
        &std_env,
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let two = run_ingest(
        &config,
        &lake,
        request(Mode::Range {
            from: d("2025-12-20"),
            to: d("2026-01-03"),
            today: d("2026-01-04"),
        }),
        &std_env,
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let spent = one.calls() + two.calls();
    assert!(spent <= 4, "{spent} calls over a budget of 4\n{one}\n{two}");
    assert!(two.deferred() > 0, "{two}");
    assert!(
        two.streams["mixpanel.export"]
            .deferral
            .as_deref()
            .unwrap()
            .contains("quota"),
        "{two}"
    );
    assert!(!two.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_land_and_answers_past_the_timeout_fail_the_stream_clearly() {
    let config = config_with(|t| {
        t.replace(
            "[sources.google_sheets]\n",
            "[sources.google_sheets]\ntimeout_seconds = 1\n",
        )
    });
    let lake = world(&config).await;
    let request = |faults: Faults, today: &str| IngestRequest {
        only: Some(SourceKind::GoogleSheets),
        retry: RetryPolicy {
            max_attempts: 2,
            ..quick()
        },
        local_server: ServerOptions {
            faults,
            ..ServerOptions::default()
        },
        ..IngestRequest::new(Mode::Nightly { today: d(today) })
    };
    // 300 ms per answer: slow, but within the one-second timeout.
    let slow = Faults {
        delay: Duration::from_millis(300),
        ..Faults::default()
    };
    let summary = run_ingest(
        &config,
        &lake,
        request(slow, "2026-01-04"),
        &std_env,
        &Progress::hidden(),
    )
    .await
    .unwrap();
    assert_clean(&summary);
    assert_eq!(summary.streams["google_sheets.fx_rates"].landed, 1);
    // 1.5 s per answer: every attempt times out; the stream fails and says why.
    let stuck = Faults {
        delay: Duration::from_millis(1500),
        ..Faults::default()
    };
    let summary = run_ingest(
        &config,
        &lake,
        request(stuck, "2026-01-05"),
        &std_env,
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let failure = summary.streams["google_sheets.fx_rates"].failure.clone();
    let failure = failure.unwrap_or_else(|| panic!("no failure:\n{summary}"));
    assert!(
        failure.contains("timed out") && failure.contains("google_sheets"),
        "{failure}"
    );
    // Yesterday's snapshot is still there; today's is not.
    let state = StreamState::load(&lake, "google_sheets.fx_rates")
        .await
        .unwrap();
    assert_eq!(
        state.partitions.keys().copied().collect::<Vec<_>>(),
        [d("2026-01-04")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_day_backfill_of_all_eight_sources_fits_one_run_within_budgets() {
    let config = config_with(|t| t);
    let mut sim = config.sim.clone().unwrap();
    sim.days = NonZeroU32::new(30).unwrap();
    sim.users_per_day = 100;
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(&sim, &lake).await.unwrap();
    let days = world_days(&lake).await.unwrap().unwrap();
    drop_simulated_adison_files(&config, &lake, days)
        .await
        .unwrap();
    let mode = Mode::Range {
        from: d("2026-01-01"),
        to: d("2026-01-30"),
        today: d("2026-01-31"),
    };
    let summary = ingest(&config, &lake, mode, Faults::default()).await;
    assert_clean(&summary);
    let sources: std::collections::BTreeSet<&str> = summary
        .streams
        .values()
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(sources.len(), 8, "{summary}");
    for (name, s) in &summary.streams {
        let expected = if name.starts_with("google_sheets.") || name == "mixpanel.engage" {
            1
        } else {
            30
        };
        assert_eq!(s.landed, expected, "{name}");
    }
    // Within each source's budget (the demo's, which lifts Mixpanel's). AppsFlyer's is
    // its real quota, per app and report: the backfill takes many days a call.
    for kind in SourceKind::ALL {
        let settings = config.sources.get(kind).unwrap();
        let spent = summary.calls_by_source[kind.name()];
        let budget = settings.common().budget;
        for limit in [budget.per_hour, budget.per_day].into_iter().flatten() {
            if kind == SourceKind::AppsFlyer {
                for (name, s) in summary
                    .streams
                    .iter()
                    .filter(|(n, _)| n.starts_with("appsflyer."))
                {
                    // Two apps, so two scopes a report.
                    assert!(s.calls <= 2 * limit.get(), "{name}: {} calls", s.calls);
                    assert!(s.calls < 30, "{name}: {} calls for 30 days", s.calls);
                }
                continue;
            }
            assert!(spent <= limit.get(), "{kind}: {spent} calls over {limit}");
        }
    }
    eprintln!("{summary}");
}
