//! The world's small tables: channel delivery per ad and day (aggregated from the installs
//! as they are generated), campaigns, the QA device sheet, FX rates, and the campaign-level
//! ground truth.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone};
use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

use super::SimError;
use super::columns::{
    AdDailyCols, CampaignCols, Columns, FxCols, PathCols, TestDeviceCols, TruthCampaignCols,
};
use super::fx::{CURRENCIES, FxSeries};
use super::life::{Conversions, Install, expected_revenue, payer_probability_of, walk_probability};
use super::plan::{Campaign, ENGAGEMENT_SHAPE, PLANTED_PATHS, Quality, WorldPlan};
use super::sink::TableSink;
use crate::config::{SimConfig, SimRates};
use crate::lake::Lake;
use crate::schema::Registry;

/// What a channel knows of one ad on one day of its account's calendar.
#[derive(Debug, Default, Clone)]
pub struct AdDay {
    pub installs: i64,
    /// Micros of the account currency.
    pub spend_micros: i64,
    pub purchases: [i64; 4],
    /// Micros of the account currency.
    pub value_micros: [i64; 4],
}

/// Adds one paid install (and the purchases it led to) to its ad's day, cut in the
/// account's time zone.
#[allow(clippy::too_many_arguments)]
pub fn add_delivery(
    delivery: &mut HashMap<(usize, usize, i64), AdDay>,
    campaign: &Campaign,
    ad_index: usize,
    inst: &Install<'_>,
    conv: &Conversions,
    fx: &FxSeries,
    start_ms: i64,
    rng: &mut Xoshiro256PlusPlus,
) {
    let Some(ad) = campaign.ads.get(ad_index) else {
        return;
    };
    let local_day = local_world_day(inst.install_ms, start_ms, campaign.channel.account_timezone);
    let usd_per_unit = fx.usd_per_unit(inst.day as usize, campaign.channel.account_currency);
    let entry = delivery
        .entry((campaign.index, ad_index, local_day))
        .or_default();
    entry.installs += 1;
    entry.spend_micros += (ad.cpi_micros as f64 * rng.random_range(0.9..1.1)).round() as i64;
    for i in 0..4 {
        entry.purchases[i] += conv.purchases[i];
        entry.value_micros[i] += (conv.value_usd_micros[i] as f64 / usd_per_unit).round() as i64;
    }
}

/// World day of an instant as seen in `zone` (the account's report day).
fn local_world_day(t_ms: i64, start_ms: i64, zone: &str) -> i64 {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let local = |ms: i64| {
        tz.timestamp_millis_opt(ms)
            .single()
            .map(|d| d.date_naive())
            .unwrap_or_default()
    };
    // The world's first day is a UTC date; report days are counted from the same date.
    let start_date = chrono::DateTime::from_timestamp_millis(start_ms)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    (local(t_ms) - start_date).num_days()
}

/// Writes `sim.ad_daily` from the aggregated delivery and returns its row count. A restated
/// row is labelled by the table itself: `restated_on` says when the channel revised it and
/// `spend_first_reported_micros` what it said before.
#[allow(clippy::too_many_arguments)]
pub async fn write_ad_daily(
    lake: &Lake,
    registry: &Registry,
    plan: &WorldPlan,
    delivery: HashMap<(usize, usize, i64), AdDay>,
    rates: &SimRates,
    start: NaiveDate,
    days: u32,
    seed: u64,
) -> Result<u64, SimError> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xAD_DA11_0000_0001);
    let mut keys: Vec<_> = delivery.keys().copied().collect();
    keys.sort_unstable();
    let mut sink = TableSink::<AdDailyCols>::new(registry.get("sim.ad_daily")?.clone(), start);
    let last_day = i64::from(days) - 1;
    for (row, key) in keys.iter().enumerate() {
        let (ci, ai, day) = *key;
        let (Some(c), Some(d)) = (plan.campaigns.get(ci), delivery.get(key)) else {
            continue;
        };
        // Days at the world's edges that its UTC days only partly cover are left out.
        if day < 0 || day > last_day {
            continue;
        }
        let Some(ad) = c.ads.get(ai) else { continue };
        let row = row as u64;
        let clicks =
            (d.installs as f64 / ad.install_per_click * rng.random_range(0.9..1.1)).round() as i64;
        let restated = rng.random_bool(rates.restatement);
        let first_reported = if restated {
            (d.spend_micros as f64 * rng.random_range(0.85..0.98)).round() as i64
        } else {
            d.spend_micros
        };
        let restated_on =
            restated.then(|| epoch_days(start) + day as i32 + rng.random_range(1..=3));
        let cols = sink.day(day);
        cols.row_id.push(row);
        cols.channel.push(c.channel.key);
        cols.account_id.push(c.account_id.clone());
        cols.campaign_id.push(c.campaign_id.clone());
        cols.adset_id.push(ad.adset_id.clone());
        cols.ad_id.push(ad.ad_id.clone());
        cols.currency.push(c.channel.account_currency);
        cols.spend_micros.push(d.spend_micros);
        cols.spend_first_reported_micros.push(first_reported);
        cols.restated_on.push(restated_on);
        cols.impressions
            .push((clicks as f64 / ad.click_through).round() as i64);
        cols.clicks.push(clicks);
        // Channels count their own installs generously (self-attribution).
        cols.installs
            .push((d.installs as f64 * rng.random_range(1.0..1.1)).round() as i64);
        cols.view_installs.push(if c.channel.ios_only {
            (d.installs as f64 * 0.12).round() as i64
        } else {
            0
        });
        cols.purchases_1d_click.push(d.purchases[0]);
        cols.purchases_7d_click.push(d.purchases[1]);
        cols.purchases_28d_click.push(d.purchases[2]);
        cols.purchases_1d_view.push(d.purchases[3]);
        cols.purchase_value_1d_click_micros.push(d.value_micros[0]);
        cols.purchase_value_7d_click_micros.push(d.value_micros[1]);
        cols.purchase_value_28d_click_micros.push(d.value_micros[2]);
        cols.purchase_value_1d_view_micros.push(d.value_micros[3]);
    }
    sink.complete_through(lake, 0, last_day).await?;
    Ok(sink.rows)
}

/// Writes the tables that do not grow with users: campaigns, QA devices, FX rates, the
/// campaign truth and the planted paths.
pub async fn write_static(
    lake: &Lake,
    registry: &Registry,
    plan: &WorldPlan,
    fx: &FxSeries,
    qa_pool: &[(String, &'static str)],
    cfg: &SimConfig,
) -> Result<(), SimError> {
    let start = cfg.start_date;
    let days = cfg.days.get();
    let start_days = epoch_days(start);

    let mut campaigns = CampaignCols::default();
    for c in &plan.campaigns {
        for ad in &c.ads {
            campaigns.channel.push(c.channel.key);
            campaigns.account_id.push(c.account_id.clone());
            campaigns.account_currency.push(c.channel.account_currency);
            campaigns.account_timezone.push(c.channel.account_timezone);
            campaigns.campaign_id.push(c.campaign_id.clone());
            campaigns.campaign_name.push(c.campaign_name.clone());
            campaigns.adset_id.push(ad.adset_id.clone());
            campaigns.adset_name.push(ad.adset_name.clone());
            campaigns.ad_id.push(ad.ad_id.clone());
            campaigns.ad_name.push(ad.ad_name.clone());
            campaigns.platform.push(c.platform);
            campaigns.is_test.push(c.is_test);
            campaigns.first_day.push(start_days + c.first_day as i32);
            campaigns.last_day.push(start_days + c.last_day as i32);
        }
    }
    write_one(lake, registry, "sim.campaigns", start, campaigns).await?;

    let mut devices = TestDeviceCols::default();
    for (i, (adid, platform)) in qa_pool.iter().enumerate() {
        devices.advertising_id.push(adid.clone());
        devices.label.push(format!(
            "QA {} #{:02}",
            if *platform == "ios" {
                "iPhone"
            } else {
                "Galaxy"
            },
            i + 1
        ));
        devices.platform.push(platform);
    }
    write_one(lake, registry, "sim.test_devices", start, devices).await?;

    let fx_table = registry.get("sim.fx_rates")?;
    for day in 0..days {
        let mut rates = FxCols::default();
        for (code, _) in CURRENCIES {
            rates.currency.push(code);
            rates.usd_per_unit.push(fx.usd_per_unit(day as usize, code));
        }
        let date = super::world_date(start, i64::from(day))
            .ok_or(SimError::DateOutOfRange { day: day.into() })?;
        lake.write_partition(fx_table, date, frame(fx_table.qualified_name(), rates)?)
            .await?;
    }

    let mut truth = TruthCampaignCols::default();
    let organic = organic_campaign_row(plan);
    for (c_channel, c_id, c_name, is_test, q) in plan
        .campaigns
        .iter()
        .map(|c| {
            (
                c.channel.key,
                c.campaign_id.clone(),
                c.campaign_name.clone(),
                c.is_test,
                &c.quality,
            )
        })
        .chain(std::iter::once(organic))
    {
        let ltv = population_ltv(q);
        truth.channel.push(c_channel);
        truth.campaign_id.push(c_id);
        truth.campaign_name.push(c_name);
        truth.is_test.push(is_test);
        truth.retention_d1.push(q.retention_d1);
        truth.retention_d7.push(q.retention_d7);
        truth.retention_d30.push(q.retention_d30);
        truth.base_payer_rate.push(q.base_payer_rate);
        truth.purchase_rate.push(q.purchase_rate);
        truth.currency.push("USD");
        truth.ltv_d7_micros.push(ltv[0]);
        truth.ltv_d30_micros.push(ltv[1]);
        truth.ltv_d90_micros.push(ltv[2]);
        truth.ltv_d180_micros.push(ltv[3]);
    }
    write_one(lake, registry, "truth.campaigns", start, truth).await?;

    let mut paths = PathCols::default();
    for p in &PLANTED_PATHS {
        paths.path.push(p.steps.join(" > "));
        paths.payer_lift.push(p.payer_lift);
    }
    write_one(lake, registry, "truth.planted_paths", start, paths).await?;
    Ok(())
}

fn organic_campaign_row(plan: &WorldPlan) -> (&'static str, String, String, bool, &Quality) {
    (
        super::plan::ORGANIC,
        "organic".into(),
        "Organic".into(),
        false,
        &plan.organic,
    )
}

/// Expected revenue per genuine user of a quality at each horizon (US dollar micros):
/// exact over the planted path (revenue is linear in the payer chance) and integrated over
/// engagement `e ~ Gamma(1.5, 1/1.5)` numerically. With `e = u^2` the integrand is smooth:
/// the density becomes `2 C u^2 exp(-1.5 u^2)`, integrated by Simpson's rule.
fn population_ltv(q: &Quality) -> [i64; 4] {
    const STEPS: usize = 2000; // even, for Simpson
    const U_MAX: f64 = 5.4; // e up to ~29: the tail beyond is negligible
    let s = ENGAGEMENT_SHAPE;
    let h = U_MAX / STEPS as f64;
    let mut total = [0f64; 4];
    let mut mass = 0.0;
    for i in 0..=STEPS {
        let u = i as f64 * h;
        let e = u * u;
        let weight = if i == 0 || i == STEPS {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        // Unnormalised density of u; normalised by `mass` below.
        let density = 2.0 * u.powf(2.0 * s - 1.0) * (-s * e).exp();
        let pw = walk_probability(q, e);
        let payer =
            pw * payer_probability_of(q, true) + (1.0 - pw) * payer_probability_of(q, false);
        let rev = expected_revenue(q, e, payer);
        mass += weight * density;
        for k in 0..4 {
            total[k] += weight * density * rev[k] as f64;
        }
    }
    total.map(|t| (t / mass).round() as i64)
}

async fn write_one<C: Columns>(
    lake: &Lake,
    registry: &Registry,
    table: &str,
    date: NaiveDate,
    cols: C,
) -> Result<(), SimError> {
    let schema = registry.get(table)?;
    lake.write_partition(schema, date, frame(schema.qualified_name(), cols)?)
        .await?;
    Ok(())
}

fn frame<C: Columns>(table: String, cols: C) -> Result<polars::prelude::DataFrame, SimError> {
    cols.into_frame()
        .map_err(|source| SimError::Frame { table, source })
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}
