//! The simulated world: a seeded, deterministic app-marketing world that the tests, the
//! demo and the benchmarks use in place of real accounts.
//!
//! Campaigns on five paid channels (plus organic installs) each have a true quality;
//! users install, walk an onboarding path, come back by a retention curve and buy, and
//! one early path ([`plan::PLANTED_PATHS`]) truly raises the chance of paying. Every source
//! sees the world its own way: Mixpanel events and profiles, AppsFlyer installs and in-app
//! events, channel delivery and spend. Dirty data is injected at the configured rates and
//! labelled. The world goes to the lake's `sim/` tables, its ground truth to `truth/`,
//! streaming day by day so a large world never has to fit in memory.

pub mod clean_view;
mod columns;
pub mod fx;
pub mod ids;
mod life;
pub mod plan;
pub mod serve;
pub mod server;
mod sink;
mod tables;

use std::collections::HashMap;
use std::time::Instant;

use chrono::NaiveDate;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::config::SimConfig;
use crate::lake::{Lake, LakeError};
use crate::schema::{Registry, SchemaError};
use fx::FxSeries;
use life::{Conversions, FraudKind, Install, Life, Sinks, TestKind};
use plan::{Campaign, WorldPlan};
use sink::TableSink;

pub use life::{DAY_MS, GARBLED_ROW_BASE, Garble, expected_purchase_usd, expected_revenue};

/// Horizons (days since install) at which the truth records revenue.
pub const HORIZONS: [u32; 4] = [7, 30, 90, 180];

/// Users generated between two checks of the buffers' size: bounds memory at any scale.
const USERS_PER_CHUNK: u32 = 20_000;
/// Size of the QA device pool: the same few devices are reinstalled again and again.
const QA_DEVICES: usize = 24;
/// Mixed with the seed into [`Life::garble_salt`].
const GARBLE_SALT: u64 = 0x6761_7262_6C65_6421;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("building a frame of {table}")]
    Frame {
        table: String,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("world day {day} is outside the calendar")]
    DateOutOfRange { day: i64 },
}

/// What a simulation wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SimReport {
    pub days: u32,
    pub users: u64,
    pub installs_rows: u64,
    pub event_rows: u64,
    pub af_event_rows: u64,
    pub profile_rows: u64,
    pub ad_daily_rows: u64,
    pub dirty_rows: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Generates the world described by `cfg` into `lake`, replacing any earlier world's
/// partitions of the same dates.
pub async fn simulate(cfg: &SimConfig, lake: &Lake) -> Result<SimReport, SimError> {
    let started = Instant::now();
    let registry = Registry::embedded()?;
    let days = cfg.days.get();
    let horizon = cfg.horizon_days.get();
    let start = cfg.start_date;
    let start_ms = start
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or_default();
    let plan = WorldPlan::generate(cfg.seed, days, cfg.campaigns_per_channel.get(), horizon);
    let fx = FxSeries::generate(cfg.seed, (days + horizon + 2) as usize);
    let qa_pool = qa_devices(cfg.seed);

    let table = |name: &str| registry.get(name).cloned();
    let mut sinks = Sinks {
        events: TableSink::new(table("sim.events")?, start),
        installs: TableSink::new(table("sim.installs")?, start),
        af_events: TableSink::new(table("sim.af_events")?, start),
        profiles: TableSink::new(table("sim.profiles")?, start),
        dirty: TableSink::new(table("truth.dirty_rows")?, start),
        truth: TableSink::new(table("truth.users")?, start),
    };

    let mut life = Life {
        rates: &cfg.rates,
        fx: &fx,
        last_day: days - 1,
        start_ms,
        next_event_row: 0,
        next_af_row: 0,
        next_insert_id: 0,
        next_garbled_row: 0,
        garble_salt: ids::mix(cfg.seed ^ GARBLE_SALT),
        garble_below: life::garble_threshold(cfg.rates.malformed_event),
    };
    let mut delivery: HashMap<(usize, usize, i64), tables::AdDay> = HashMap::new();
    let mut next_user: u64 = 1;
    let mut next_install_row: u64 = 0;
    let mut report = SimReport {
        days,
        ..SimReport::default()
    };

    for day in 0..days {
        let mut rng =
            Xoshiro256PlusPlus::seed_from_u64(ids::mix(cfg.seed ^ (u64::from(day) << 32)));
        let live: Vec<&Campaign> = plan.live_paid(day).collect();
        let tests: Vec<&Campaign> = plan.test_campaigns().collect();
        let weights = day_weights(&live, &mut rng);
        let mut burst: Option<Burst> = None;
        let mut remaining = cfg.users_per_day;
        while remaining > 0 {
            let chunk = remaining.min(USERS_PER_CHUNK);
            remaining -= chunk;
            for _ in 0..chunk {
                let user_id = next_user;
                next_user += 1;
                let inst = draw_install(
                    cfg, &plan, &live, &weights, &tests, &qa_pool, &mut burst, day, start_ms,
                    user_id, &mut rng,
                );
                let mut conv = Conversions::default();
                life.live(&inst, horizon, &mut rng, &mut sinks, &mut conv);
                let row = next_install_row;
                next_install_row += 1;
                push_install(&inst, row, cfg.rates.missing_adid, &mut rng, &mut sinks);
                if let Some(c) = inst.campaign {
                    tables::add_delivery(
                        &mut delivery,
                        c,
                        inst.ad_index,
                        &inst,
                        &conv,
                        &fx,
                        start_ms,
                        &mut rng,
                    );
                }
            }
            report.users += u64::from(chunk);
            sinks.settle(lake).await?;
        }
        // No later cohort writes into this day: its partitions are final.
        let d = i64::from(day);
        sinks.complete(lake, d).await?;
        tracing::debug!(day = %(start + chrono::Duration::days(d)), users = report.users, events = sinks.events.rows, "Simulated day.");
    }

    report.ad_daily_rows = tables::write_ad_daily(
        lake, registry, &plan, delivery, &cfg.rates, start, days, cfg.seed,
    )
    .await?;
    tables::write_static(lake, registry, &plan, &fx, &qa_pool, cfg).await?;

    report.installs_rows = sinks.installs.rows;
    report.event_rows = sinks.events.rows;
    report.af_event_rows = sinks.af_events.rows;
    report.profile_rows = sinks.profiles.rows;
    report.dirty_rows = sinks.dirty.rows;
    report.seconds = started.elapsed().as_secs_f64();
    report.events_per_second = report.event_rows as f64 / report.seconds.max(1e-9);
    Ok(report)
}

/// A fraud farm's install burst: many installs of one campaign within minutes, from one
/// IP address or (a farm that resets only the app) one advertising id.
struct Burst {
    campaign: usize,
    ip: String,
    advertising_id: Option<String>,
    base_ms: i64,
    left: u32,
}

/// Each live campaign's share of the day's paid installs: its weight with day-to-day noise.
fn day_weights(live: &[&Campaign], rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let noise = LogNormal::new(0.0, 0.15).ok();
    let mut acc = 0.0;
    live.iter()
        .map(|c| {
            acc += c.weight * noise.map_or(1.0, |n| n.sample(rng));
            acc
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn draw_install<'a>(
    cfg: &SimConfig,
    plan: &'a WorldPlan,
    live: &[&'a Campaign],
    cumulative: &[f64],
    tests: &[&'a Campaign],
    qa_pool: &[(String, &'static str)],
    burst: &mut Option<Burst>,
    day: u32,
    start_ms: i64,
    user_id: u64,
    rng: &mut Xoshiro256PlusPlus,
) -> Install<'a> {
    let rates = &cfg.rates;
    let mut test = None;
    let mut campaign: Option<&Campaign> = None;
    let mut fraud = None;
    if let Some(b) = burst.as_ref().filter(|b| b.left > 0) {
        campaign = live.get(b.campaign).copied();
        fraud = Some(FraudKind::Burst);
    } else {
        let u: f64 = rng.random();
        if u < rates.test_user {
            test = Some(match rng.random_range(0..5) {
                0 | 1 => TestKind::QaDevice,
                2 | 3 => TestKind::QaAccount,
                _ => TestKind::InternalBuild,
            });
        } else if u >= rates.test_user + cfg.organic_share && !live.is_empty() {
            if rng.random_bool(rates.test_campaign_share) && !tests.is_empty() {
                campaign = Some(tests[rng.random_range(0..tests.len())]);
                test = Some(TestKind::TestCampaign);
            } else {
                let total = cumulative.last().copied().unwrap_or(1.0);
                let x = rng.random_range(0.0..total);
                let i = cumulative.partition_point(|c| *c <= x).min(live.len() - 1);
                campaign = Some(live[i]);
                fraud = FraudKind::draw(rates, rng);
                if fraud == Some(FraudKind::Burst) {
                    *burst = Some(Burst {
                        campaign: i,
                        ip: random_ip(rng),
                        advertising_id: rng
                            .random_bool(0.5)
                            .then(|| ids::advertising_uuid(rng.random(), false)),
                        base_ms: start_ms
                            + i64::from(day) * DAY_MS
                            + rng.random_range(0..DAY_MS - 20 * 60_000),
                        left: rng.random_range(life::BURST_SIZE),
                    });
                }
            }
        }
    }
    let platform = match campaign.map(|c| c.platform) {
        Some("ios") => "ios",
        Some("android") => "android",
        _ if rng.random_bool(cfg.ios_share) => "ios",
        _ => "android",
    };
    let country = if campaign.is_some_and(|c| c.channel.korea_only) {
        "KR"
    } else {
        ["KR", "KR", "KR", "KR", "KR", "KR", "US", "US", "US", "JP"][rng.random_range(0..10)]
    };
    let currency = match country {
        "KR" => "KRW",
        "JP" => "JPY",
        _ => "USD",
    };
    // Stolen attribution takes real organic users; genuine paid users follow their campaign.
    let quality = match (campaign, fraud) {
        (Some(_), Some(FraudKind::ClickInjection | FraudKind::ClickFlooding)) | (None, _) => {
            &plan.organic
        }
        (Some(c), _) => &c.quality,
    };
    let mut install_ms = start_ms + i64::from(day) * DAY_MS + rng.random_range(0..DAY_MS);
    let mut ip = random_ip(rng);
    let mut farm_adid = None;
    if let Some(b) = burst.as_mut().filter(|_| fraud == Some(FraudKind::Burst)) {
        b.left = b.left.saturating_sub(1);
        ip = b.ip.clone();
        farm_adid = b.advertising_id.clone();
        install_ms = b.base_ms + rng.random_range(0..15 * 60_000);
    }
    let click_ms = campaign.map(|_| {
        let ctit_ms = match fraud {
            Some(FraudKind::ClickInjection) => rng.random_range(1_000..9_900),
            Some(FraudKind::ClickFlooding) => rng.random_range(80 * 3_600_000..7 * DAY_MS),
            _ => {
                let secs = LogNormal::new((240f64).ln(), 1.2)
                    .map(|d| d.sample(rng))
                    .unwrap_or(240.0)
                    .clamp(12.0, 70.0 * 3600.0);
                (secs * 1000.0) as i64
            }
        };
        install_ms - ctit_ms
    });
    let device_id: u64 = rng.random();
    let mut advertising_id = match platform {
        "android" => Some(ids::advertising_uuid(rng.random(), false)),
        _ if rng.random_bool(cfg.att_opt_in_rate) => {
            Some(ids::advertising_uuid(rng.random(), true))
        }
        _ => None,
    };
    let mut platform = platform;
    if farm_adid.is_some() {
        advertising_id = farm_adid;
        platform = "android";
    }
    if test == Some(TestKind::QaDevice) {
        let (adid, p) = &qa_pool[rng.random_range(0..qa_pool.len())];
        advertising_id = Some(adid.clone());
        platform = p;
    }
    let appsflyer_id = format!(
        "{}-{:019}",
        install_ms,
        rng.random::<u64>() % 10_000_000_000_000_000_000
    );
    let app_version = if test == Some(TestKind::InternalBuild) {
        "5.3.0-internal"
    } else if day % 30 < 12 {
        "5.2.1"
    } else {
        "5.3.0"
    };
    let ad_index = campaign.map_or(0, |c| rng.random_range(0..c.ads.len()));
    Install {
        user_id,
        day,
        install_ms,
        click_ms,
        campaign,
        ad_index,
        quality,
        platform,
        country,
        currency,
        device_id,
        advertising_id,
        appsflyer_id,
        ip,
        app_version,
        test,
        fraud,
    }
}

fn random_ip(rng: &mut Xoshiro256PlusPlus) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.random_range(11..223),
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    )
}

/// The QA devices the team keeps in its sheet: advertising id and platform.
fn qa_devices(seed: u64) -> Vec<(String, &'static str)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x0A0A_DE71_CE00_0000);
    (0..QA_DEVICES)
        .map(|i| {
            let ios = i % 2 == 0;
            (
                ids::advertising_uuid(rng.random(), ios),
                if ios { "ios" } else { "android" },
            )
        })
        .collect()
}

fn push_install(
    inst: &Install<'_>,
    row: u64,
    missing_adid: f64,
    rng: &mut Xoshiro256PlusPlus,
    rows: &mut Sinks,
) {
    let drop_adid = inst.advertising_id.is_some() && rng.random_bool(missing_adid);
    if drop_adid {
        rows.dirty
            .day(i64::from(inst.day))
            .push("sim.installs", row, "missing_adid");
    }
    let c = rows.installs.day(i64::from(inst.day));
    let ad = inst.campaign.and_then(|cp| cp.ads.get(inst.ad_index));
    c.row_id.push(row);
    c.user_id.push(inst.user_id);
    c.appsflyer_id.push(inst.appsflyer_id.clone());
    c.advertising_id.push(if drop_adid {
        None
    } else {
        inst.advertising_id.clone()
    });
    c.customer_user_id.push(None);
    c.platform.push(inst.platform);
    c.country.push(inst.country);
    c.app_version.push(inst.app_version);
    c.media_source.push(
        inst.campaign
            .map_or("organic", |cp| cp.channel.media_source),
    );
    c.channel
        .push(inst.campaign.map_or(plan::ORGANIC, |cp| cp.channel.key));
    c.campaign_id
        .push(inst.campaign.map(|cp| cp.campaign_id.clone()));
    c.campaign_name
        .push(inst.campaign.map(|cp| cp.campaign_name.clone()));
    c.adset_id.push(ad.map(|a| a.adset_id.clone()));
    c.adset_name.push(ad.map(|a| a.adset_name.clone()));
    c.ad_id.push(ad.map(|a| a.ad_id.clone()));
    c.ad_name.push(ad.map(|a| a.ad_name.clone()));
    c.install_time.push(inst.install_ms);
    c.click_time.push(inst.click_ms);
    c.ip.push(inst.ip.clone());
    c.device_model
        .push(device_model(inst.platform, inst.device_id));
    c.af_fraud_report.push(match inst.fraud {
        Some(FraudKind::P360Blocked) => Some("blocked"),
        Some(FraudKind::P360Detection) => Some("detection"),
        _ => None,
    });
}

fn device_model(platform: &str, device_id: u64) -> &'static str {
    const IOS: [&str; 4] = ["iPhone15,2", "iPhone14,5", "iPhone16,1", "iPhone13,4"];
    const ANDROID: [&str; 4] = ["SM-S918N", "SM-A546N", "Pixel 8", "SM-G991N"];
    let i = (device_id % 4) as usize;
    if platform == "ios" {
        IOS[i]
    } else {
        ANDROID[i]
    }
}

/// The date of a world day.
pub fn world_date(start: NaiveDate, day: i64) -> Option<NaiveDate> {
    start.checked_add_signed(chrono::Duration::days(day))
}
