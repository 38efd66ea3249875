//! The simulated world: deterministic for a seed, dirty data at the configured rates, a
//! ground truth consistent with the events, and campaign LTV that converges to the truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;

use ltv::config::{PipelineConfig, SimConfig, std_env};
use ltv::lake::{DateRange, Lake};
use ltv::schema::Registry;
use ltv::sim::{fx::to_usd_micros, simulate};
use polars::prelude::*;

fn demo_sim() -> SimConfig {
    let config = PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "demo", &std_env).unwrap();
    config.sim.unwrap()
}

fn small(seed: u64, days: u32, users: u32) -> SimConfig {
    let mut sim = demo_sim();
    sim.seed = seed;
    sim.days = NonZeroU32::new(days).unwrap();
    sim.users_per_day = users;
    sim
}

async fn table(lake: &Lake, name: &str) -> LazyFrame {
    let t = Registry::embedded().unwrap().get(name).unwrap();
    lake.scan(t, DateRange::all()).await.unwrap()
}

async fn frame(lake: &Lake, name: &str, sort: &[&str]) -> DataFrame {
    table(lake, name)
        .await
        .sort(
            sort.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Default::default(),
        )
        .collect()
        .unwrap()
}

/// A date literal (a `NaiveDate` literal would become a datetime).
fn date_lit(d: chrono::NaiveDate) -> Expr {
    lit((d - chrono::NaiveDate::default()).num_days() as i32).cast(DataType::Date)
}

fn count(df: &DataFrame) -> f64 {
    df.height() as f64
}

/// |observed share - rate| within `sigmas` binomial standard errors over `n` trials.
fn assert_share(what: &str, hits: f64, n: f64, rate: f64, sigmas: f64) {
    assert!(n > 0.0, "{what}: no trials");
    let share = hits / n;
    let se = (rate * (1.0 - rate) / n).sqrt();
    assert!(
        (share - rate).abs() <= sigmas * se + 1e-12,
        "{what}: share {share:.5} over {n} trials, configured {rate} (±{:.5})",
        sigmas * se
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_world_is_deterministic_for_a_seed() {
    let (a, b, c) = (
        Lake::open("memory://").unwrap(),
        Lake::open("memory://").unwrap(),
        Lake::open("memory://").unwrap(),
    );
    simulate(&small(7, 3, 300), &a).await.unwrap();
    simulate(&small(7, 3, 300), &b).await.unwrap();
    simulate(&small(8, 3, 300), &c).await.unwrap();
    for (name, key) in [
        ("sim.events", vec!["row_id"]),
        ("sim.installs", vec!["row_id"]),
        ("sim.af_events", vec!["row_id"]),
        ("sim.profiles", vec!["login_id"]),
        ("sim.ad_daily", vec!["row_id"]),
        ("sim.fx_rates", vec!["dt", "currency"]),
        ("truth.users", vec!["user_id"]),
        ("truth.campaigns", vec!["campaign_id"]),
        ("truth.dirty_rows", vec!["table", "row_id", "label"]),
    ] {
        let fa = frame(&a, name, &key).await;
        let fb = frame(&b, name, &key).await;
        assert!(fa.height() > 0, "{name} is empty");
        assert!(
            fa.equals_missing(&fb),
            "{name} differs between two runs of one seed"
        );
        if name != "sim.fx_rates" {
            let fc = frame(&c, name, &key).await;
            assert!(
                !fa.equals_missing(&fc),
                "{name} is the same for another seed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_shares_match_the_configured_rates() {
    let mut sim = small(11, 4, 4000);
    let r = &mut sim.rates;
    r.duplicate_event = 0.03;
    r.malformed_event = 0.01;
    r.missing_user_id = 0.08;
    r.missing_adid = 0.06;
    r.test_user = 0.03;
    r.test_campaign_share = 0.03;
    r.fraud_p360_blocked = 0.04;
    r.fraud_p360_detection = 0.02;
    r.fraud_click_injection = 0.02;
    r.fraud_click_flooding = 0.02;
    r.fraud_burst = 0.03;
    r.fraud_no_activity = 0.02;
    r.restatement = 0.2;
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let r = &sim.rates;

    let events = frame(&lake, "sim.events", &["row_id"]).await;
    let dirty = frame(&lake, "truth.dirty_rows", &["row_id"]).await;
    let labels = |table: &str, label: &str| {
        dirty
            .clone()
            .lazy()
            .filter(col("table").eq(lit(table)).and(col("label").eq(lit(label))))
            .collect()
            .unwrap()
    };
    // Duplicates and garbled resends: at most one of each per original, with chance
    // `duplicate_event` and `malformed_event`.
    let dups = count(&labels("sim.events", "duplicate_event"));
    let garbled = labels("sim.events", "malformed_event");
    let originals = count(&events) - dups - count(&garbled);
    assert_share("duplicate_event", dups, originals, r.duplicate_event, 4.0);
    assert_share(
        "malformed_event",
        count(&garbled),
        originals,
        r.malformed_event,
        4.0,
    );
    // Every duplicate and garbled resend repeats an original's $insert_id, and no two
    // originals share one.
    let distinct_ids = events.column("insert_id").unwrap().n_unique().unwrap() as f64;
    assert_eq!(distinct_ids, originals);
    // The rows labelled malformed_event are the rows that name how they are broken, each
    // kind where it makes sense: revenue is negated or mispriced only where there is some.
    let named = events
        .clone()
        .lazy()
        .filter(col("malformed").is_not_null())
        .collect()
        .unwrap();
    let sorted_row_ids = |df: &DataFrame| {
        let mut ids: Vec<u64> = df
            .column("row_id")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(sorted_row_ids(&named), sorted_row_ids(&garbled));
    let kinds = named
        .clone()
        .lazy()
        .group_by([col("malformed")])
        .agg([
            len().alias("n"),
            col("revenue_micros").is_null().sum().alias("no_revenue"),
        ])
        .collect()
        .unwrap();
    let kind = |name: &str| -> (u32, u32) {
        let k = kinds
            .clone()
            .lazy()
            .filter(col("malformed").eq(lit(name)))
            .collect()
            .unwrap();
        let get = |c: &str| -> u32 {
            let v = k.column(c).unwrap().cast(&DataType::UInt32).unwrap();
            v.u32().unwrap().iter().next().flatten().unwrap_or(0)
        };
        (get("n"), get("no_revenue"))
    };
    // Purchases are a few in a thousand events, so the kinds only they can have are rare.
    for name in ["time_text", "revenue_text"] {
        assert!(
            kind(name).0 > 0,
            "no garbled resend of kind {name}: {kinds}"
        );
    }
    for name in ["revenue_negative", "currency_unknown"] {
        assert_eq!(
            kind(name).1,
            0,
            "{name} on an event without revenue: {kinds}"
        );
    }
    for k in kinds.column("malformed").unwrap().str().unwrap().iter() {
        assert!(
            k.and_then(ltv::sim::Garble::from_label).is_some(),
            "{kinds}"
        );
    }

    // Missing $user_id: among events sent after sign-up.
    let missing_uid = count(&labels("sim.events", "missing_user_id"));
    let logged_in =
        events.column("login_id").unwrap().len() - events.column("login_id").unwrap().null_count();
    assert_share(
        "missing_user_id",
        missing_uid,
        logged_in as f64 + missing_uid,
        r.missing_user_id,
        4.0,
    );

    // Missing ADID: among AppsFlyer rows whose device has one.
    let af = frame(&lake, "sim.af_events", &["row_id"]).await;
    let missing_adid = count(&labels("sim.af_events", "missing_adid"));
    let with_adid = (af.height() - af.column("advertising_id").unwrap().null_count()) as f64;
    assert_share(
        "missing_adid (af_events)",
        missing_adid,
        with_adid + missing_adid,
        r.missing_adid,
        4.0,
    );

    // Test users among all installs; fraud kinds among paid, non-test installs.
    let users = frame(&lake, "truth.users", &["user_id"]).await;
    let n_users = count(&users);
    let qa = users
        .clone()
        .lazy()
        .filter(
            col("test_kind").is_in(
                lit(Series::new(
                    "k".into(),
                    ["qa_device", "qa_account", "internal_build"],
                ))
                .implode(false),
                false,
            ),
        )
        .collect()
        .unwrap();
    assert_share("test_user", count(&qa), n_users, r.test_user, 4.0);
    let paid = users
        .clone()
        .lazy()
        .filter(col("campaign_id").is_not_null())
        .collect()
        .unwrap();
    let test_campaign = paid
        .column("test_kind")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .filter(|k| *k == Some("test_campaign"))
        .count();
    assert_share(
        "test_campaign_share",
        test_campaign as f64,
        count(&paid),
        r.test_campaign_share,
        4.0,
    );
    let genuine_paid = count(&paid) - test_campaign as f64;
    let kinds = paid.column("fraud_kind").unwrap().str().unwrap().clone();
    for (label, rate) in [
        ("p360_blocked", r.fraud_p360_blocked),
        ("p360_detection", r.fraud_p360_detection),
        ("click_injection", r.fraud_click_injection),
        ("click_flooding", r.fraud_click_flooding),
        ("no_activity", r.fraud_no_activity),
    ] {
        let hits = kinds.iter().filter(|k| *k == Some(label)).count() as f64;
        assert_share(label, hits, genuine_paid, rate, 4.5);
    }
    // Bursts arrive in farms of ~32 installs, so their share varies by whole farms.
    let bursts = kinds.iter().filter(|k| *k == Some("burst")).count() as f64;
    let share = bursts / genuine_paid;
    assert!(
        (share - r.fraud_burst).abs() < 0.4 * r.fraud_burst + 0.01,
        "burst share {share}"
    );

    // Restated spend rows.
    let ad = frame(&lake, "sim.ad_daily", &["row_id"]).await;
    let restated = (ad.height() - ad.column("restated_on").unwrap().null_count()) as f64;
    assert_share("restatement", restated, count(&ad), r.restatement, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_resends_are_extra_rows_that_change_nothing_else() {
    let mut clean = small(13, 3, 600);
    clean.rates.malformed_event = 0.0;
    let mut garbled = clean.clone();
    garbled.rates.malformed_event = 0.05;
    let (a, b) = (
        Lake::open("memory://").unwrap(),
        Lake::open("memory://").unwrap(),
    );
    simulate(&clean, &a).await.unwrap();
    simulate(&garbled, &b).await.unwrap();

    // Every real row, its id and its values, as without garbled resends.
    let events_a = frame(&a, "sim.events", &["row_id"]).await;
    let events_b = frame(&b, "sim.events", &["row_id"]).await;
    assert_eq!(
        events_a.column("malformed").unwrap().null_count(),
        events_a.height()
    );
    let sound_b = events_b
        .clone()
        .lazy()
        .filter(col("malformed").is_null())
        .collect()
        .unwrap();
    assert!(sound_b.equals_missing(&events_a), "a real event changed");
    let extra = events_b.height() - events_a.height();
    assert!(extra > 50, "too few garbled resends: {extra}");

    // Each garbled resend repeats a real send: its user, event, time, ids and money.
    let send = [
        "user_id",
        "event",
        "time",
        "device_id",
        "login_id",
        "insert_id",
    ];
    let resends = events_b
        .clone()
        .lazy()
        .filter(col("malformed").is_not_null())
        .join(
            // The original send of each $insert_id: its duplicate, if any, comes later.
            events_a
                .clone()
                .lazy()
                .unique_stable(Some(cols(["insert_id"])), UniqueKeepStrategy::First),
            send.map(col),
            send.map(col),
            // Sends before sign-up have no login_id.
            JoinArgs {
                nulls_equal: true,
                ..JoinArgs::new(JoinType::Inner)
            },
        )
        .filter(
            col("revenue_micros")
                .eq_missing(col("revenue_micros_right"))
                .and(col("currency").eq_missing(col("currency_right")))
                .and(col("row_id").gt_eq(lit(ltv::sim::GARBLED_ROW_BASE))),
        )
        .collect()
        .unwrap();
    assert_eq!(resends.height(), extra, "a garbled resend of no real send");

    // The truth and the other tables are the same; the dirty rows gain only the resends'.
    for (name, key) in [
        ("truth.users", vec!["user_id"]),
        ("sim.installs", vec!["row_id"]),
        ("sim.af_events", vec!["row_id"]),
        ("sim.profiles", vec!["login_id"]),
        ("sim.ad_daily", vec!["row_id"]),
    ] {
        assert!(
            frame(&a, name, &key)
                .await
                .equals_missing(&frame(&b, name, &key).await),
            "{name} changed"
        );
    }
    let key = ["table", "row_id", "label"];
    let dirty_a = frame(&a, "truth.dirty_rows", &key).await;
    let dirty_b = table(&b, "truth.dirty_rows")
        .await
        .filter(col("row_id").lt(lit(ltv::sim::GARBLED_ROW_BASE)))
        .sort(key, Default::default())
        .collect()
        .unwrap();
    assert!(
        dirty_a.equals_missing(&dirty_b),
        "a real row's labels changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_patterns_are_visible_in_the_installs() {
    let mut sim = small(5, 3, 3000);
    sim.rates.fraud_click_injection = 0.03;
    sim.rates.fraud_burst = 0.05;
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let installs = table(&lake, "sim.installs").await;
    let users = table(&lake, "truth.users")
        .await
        .select([col("user_id"), col("fraud_kind")]);
    let joined = installs
        .join(
            users,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_column(
            (col("install_time").cast(DataType::Int64) - col("click_time").cast(DataType::Int64))
                .alias("ctit_ms"),
        );
    // Click injection: under 10 s from click to install; nobody else is that fast.
    let fast = joined
        .clone()
        .filter(col("ctit_ms").lt(lit(10_000)))
        .select([col("fraud_kind")])
        .collect()
        .unwrap();
    assert!(fast.height() > 0);
    assert!(
        fast.column("fraud_kind")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .all(|k| k == Some("click_injection"))
    );
    // Bursts: many installs from one IP or one advertising id within minutes.
    let by_ip = joined
        .clone()
        .filter(col("fraud_kind").eq(lit("burst")))
        .group_by([col("ip")])
        .agg([len().alias("n")])
        .collect()
        .unwrap();
    let by_adid = joined
        .filter(col("fraud_kind").eq(lit("burst")))
        .group_by([col("advertising_id")])
        .agg([len().alias("n")])
        .collect()
        .unwrap();
    let max_ip = by_ip.column("n").unwrap().u32().unwrap().max().unwrap();
    let max_adid = by_adid.column("n").unwrap().u32().unwrap().max().unwrap();
    assert!(
        max_ip.max(max_adid) >= 25,
        "bursts are too small: ip {max_ip}, adid {max_adid}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realised_revenue_is_the_sum_of_purchase_events() {
    let sim = small(21, 12, 800);
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let dups = table(&lake, "truth.dirty_rows")
        .await
        .filter(col("label").eq(lit("duplicate_event")))
        .select([col("row_id")]);
    let fx = table(&lake, "sim.fx_rates").await;
    let installs = table(&lake, "sim.installs")
        .await
        .select([col("user_id"), col("install_time")]);
    // Purchases of the first 7 days, at each day's rate, duplicates and garbled resends
    // left out.
    let purchases = table(&lake, "sim.events")
        .await
        .filter(
            col("event")
                .eq(lit("purchase"))
                .and(col("malformed").is_null()),
        )
        .join(
            dups,
            [col("row_id")],
            [col("row_id")],
            JoinArgs::new(JoinType::Anti),
        )
        .join(
            fx,
            [col("dt"), col("currency")],
            [col("dt"), col("currency")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            installs,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            (col("time").cast(DataType::Int64) - col("install_time").cast(DataType::Int64))
                .lt(lit(7 * 86_400_000i64)),
        )
        .select([col("user_id"), col("revenue_micros"), col("usd_per_unit")])
        .collect()
        .unwrap();
    let mut by_user = std::collections::HashMap::<u64, i64>::new();
    let ids = purchases.column("user_id").unwrap().u64().unwrap();
    let amounts = purchases.column("revenue_micros").unwrap().i64().unwrap();
    let rates = purchases.column("usd_per_unit").unwrap().f64().unwrap();
    for ((id, amount), rate) in ids.iter().zip(amounts.iter()).zip(rates.iter()) {
        *by_user.entry(id.unwrap()).or_default() += to_usd_micros(amount.unwrap(), rate.unwrap());
    }
    // Users whose first week lies inside the world (the truth also covers the future).
    let truth = table(&lake, "truth.users")
        .await
        .filter(col("dt").lt_eq(date_lit(sim.start_date + chrono::Duration::days(4))))
        .select([col("user_id"), col("revenue_d7_micros")])
        .collect()
        .unwrap();
    let mut payers = 0;
    for (id, revenue) in truth.column("user_id").unwrap().u64().unwrap().iter().zip(
        truth
            .column("revenue_d7_micros")
            .unwrap()
            .i64()
            .unwrap()
            .iter(),
    ) {
        let (id, revenue) = (id.unwrap(), revenue.unwrap());
        assert_eq!(by_user.get(&id).copied().unwrap_or(0), revenue, "user {id}");
        payers += usize::from(revenue > 0);
    }
    assert!(payers > 20, "too few payers to test: {payers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_ltv_converges_to_the_truth() {
    let mut sim = small(33, 6, 12_000);
    sim.campaigns_per_channel = NonZeroU32::new(2).unwrap();
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let users = table(&lake, "truth.users")
        .await
        .filter(col("is_test").not().and(col("fraud_kind").is_null()))
        .group_by([col("campaign_id")])
        .agg([
            len().alias("n"),
            col("revenue_d30_micros")
                .cast(DataType::Float64)
                .mean()
                .alias("mean"),
            col("revenue_d30_micros")
                .cast(DataType::Float64)
                .std(1)
                .alias("sd"),
            col("expected_revenue_d30_micros")
                .cast(DataType::Float64)
                .mean()
                .alias("expected"),
        ]);
    let truth = table(&lake, "truth.campaigns")
        .await
        .select([col("campaign_id"), col("ltv_d30_micros")]);
    let organic = lit("organic");
    let joined = users
        .with_column(col("campaign_id").fill_null(organic))
        .join(
            truth,
            [col("campaign_id")],
            [col("campaign_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("n").gt(lit(1500)))
        .collect()
        .unwrap();
    assert!(joined.height() >= 5, "too few large campaigns: {joined}");
    let get = |c: &str| {
        joined
            .column(c)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .clone()
    };
    let (n, mean, sd, expected, ltv) = (
        get("n"),
        get("mean"),
        get("sd"),
        get("expected"),
        get("ltv_d30_micros"),
    );
    for i in 0..joined.height() {
        let (n, mean, sd, expected, ltv) = (
            n.get(i).unwrap(),
            mean.get(i).unwrap(),
            sd.get(i).unwrap(),
            expected.get(i).unwrap(),
            ltv.get(i).unwrap(),
        );
        let se = sd / n.sqrt();
        // Realised means scatter around the users' expected values by sampling error...
        assert!(
            (mean - expected).abs() < 4.5 * se + 0.03 * expected,
            "realised {mean} vs expected {expected} ± {se}"
        );
        // ...and the users' expected values around the campaign's population LTV.
        assert!(
            (expected - ltv).abs() < 0.12 * ltv,
            "users' expected {expected} vs campaign truth {ltv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planted_path_truly_raises_paying() {
    let sim = small(3, 4, 5000);
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let rates = table(&lake, "truth.users")
        .await
        .filter(col("is_test").not().and(col("fraud_kind").is_null()))
        .group_by([col("walked_planted_path")])
        .agg([
            len().alias("n"),
            (col("revenue_d180_micros").gt(lit(0)))
                .cast(DataType::Float64)
                .mean()
                .alias("payer_share"),
        ])
        .sort(["walked_planted_path"], Default::default())
        .collect()
        .unwrap();
    let share = rates.column("payer_share").unwrap().f64().unwrap();
    let (not_walked, walked) = (share.get(0).unwrap(), share.get(1).unwrap());
    assert!(
        walked > 2.0 * not_walked,
        "walked {walked} vs not {not_walked}"
    );
    let paths = frame(&lake, "truth.planted_paths", &["path"]).await;
    assert_eq!(
        paths.column("path").unwrap().str().unwrap().get(0),
        Some("tutorial_complete > join_guild")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_is_reported_per_ad_and_account_day() {
    let sim = small(9, 5, 2000);
    let lake = Lake::open("memory://").unwrap();
    simulate(&sim, &lake).await.unwrap();
    let spend = table(&lake, "sim.ad_daily")
        .await
        .group_by([col("channel"), col("currency")])
        .agg([col("spend_micros").sum(), col("installs").sum()])
        .collect()
        .unwrap();
    assert_eq!(spend.height(), 5, "every channel reports: {spend}");
    let currencies: Vec<_> = spend
        .column("currency")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(currencies.contains(&"KRW") && currencies.contains(&"USD"));
    assert!(
        spend
            .column("spend_micros")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .all(|s| s > 0)
    );
    // Partition pruning reaches the simulated tables too: a day holds only its own dt.
    let day = sim.start_date + chrono::Duration::days(2);
    let one = lake
        .scan(
            Registry::embedded().unwrap().get("sim.events").unwrap(),
            DateRange::day(day),
        )
        .await
        .unwrap()
        .select([
            col("dt").min().alias("lo"),
            col("dt").max().alias("hi"),
            col("time").dt().date().min().alias("t"),
        ])
        .collect()
        .unwrap();
    assert_eq!(
        one.column("lo").unwrap().get(0).unwrap(),
        one.column("t").unwrap().get(0).unwrap()
    );
}
