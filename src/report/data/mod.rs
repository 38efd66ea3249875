//! What the page shows, read from the lake: the marts (and, for the data-quality lists, the
//! clean layer's `unmapped_campaigns` and `new_events`) collected into small Rust structs.
//!
//! Every read is a lazy plan that aggregates before it collects, except the campaign-day
//! and cohort rows, which are small by nature (days x campaigns, x checkpoints for the
//! cohorts) and are kept row by row because the page's filters re-aggregate them.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use tracing::debug;

mod analysis;
mod quality;

pub use analysis::{BacktestRow, Calibration, PathRow, Paths};
pub use quality::{NewEventRow, QualityDay, QualityRow, UnmappedRow};

use super::ReportError;
use super::frame::{bools, dates, floats, ints, keys, strings};
use crate::lake::{DateRange, Lake};
use crate::schema::Registry;

/// The horizons the marts carry predictions for (`pltv_d<H>_micros`, `pred_d<H>_micros`).
pub const HORIZONS: [u32; 3] = [30, 90, 180];

/// An inclusive range of install dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The period of equal length that ends the day before this one starts.
    pub fn previous(&self) -> Period {
        let to = self.from - Duration::days(1);
        Period {
            from: to - Duration::days(self.days() - 1),
            to,
        }
    }

    fn range(&self) -> DateRange {
        DateRange::new(self.from, self.to)
    }
}

/// Sums over one campaign-day's predicted users at one horizon (from `mart.user_ltv`): what
/// an interval of the mean needs, and what adds up over any subset of days.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserStat {
    pub n: i64,
    pub sum: f64,
    pub sumsq: f64,
}

/// One row of `mart.campaign_daily`, with its users' prediction sums.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyFact {
    pub dt: NaiveDate,
    pub channel: String,
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub spend: i64,
    pub installs: i64,
    pub fraud: i64,
    pub revenue: i64,
    /// D1 and D7 retention shares.
    pub retention: [Option<f64>; 2],
    /// pLTV totals at [`HORIZONS`]; null until every install of the day is predicted.
    pub pltv: [Option<i64>; 3],
    /// Some horizon's prediction is extrapolated beyond the mature history.
    pub extrapolated: bool,
    /// The day's predicted users at [`HORIZONS`].
    pub users: [UserStat; 3],
}

/// One observed point of `mart.cohort_ltv` (actual cumulative revenue of a cohort at day N).
#[derive(Debug, Clone, PartialEq)]
pub struct CohortPoint {
    pub dt: NaiveDate,
    pub channel: String,
    pub campaign_id: String,
    pub day_n: u32,
    pub users: i64,
    pub revenue: i64,
}

/// Where a campaign's predicted users are (`mart.user_ltv` over the period): users per
/// platform and per country. `mart.campaign_daily` has neither, so the filters use this.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mix {
    pub platforms: BTreeMap<String, i64>,
    pub countries: BTreeMap<String, i64>,
}

/// Everything the page is made of.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub currency: String,
    pub period: Period,
    pub previous: Period,
    /// First and last install date `mart.campaign_daily` holds at all.
    pub extent: Option<(NaiveDate, NaiveDate)>,
    pub daily: Vec<DailyFact>,
    pub previous_daily: Vec<DailyFact>,
    pub cohorts: Vec<CohortPoint>,
    pub mix: BTreeMap<(String, String), Mix>,
    pub paths: Paths,
    pub backtest: Vec<BacktestRow>,
    pub calibration: Option<Calibration>,
    pub calibration_note: String,
    pub quality: Vec<QualityRow>,
    pub quality_days: Vec<QualityDay>,
    pub unmapped: Vec<UnmappedRow>,
    pub unmapped_as_of: Option<NaiveDate>,
    pub new_events: Vec<NewEventRow>,
    pub new_events_as_of: Option<NaiveDate>,
}

impl ReportData {
    /// The horizon the campaign table and the scatter show: D90 when the period has D90
    /// predictions, else D30, else D180; `None` when nothing in the period is predicted.
    pub fn headline(&self) -> Option<usize> {
        [1usize, 0, 2]
            .into_iter()
            .find(|&h| self.daily.iter().any(|d| d.pltv[h].is_some()))
    }
}

/// Days a report covers when no range is given: four weeks, so the previous period of
/// equal length is there to compare with in any history of two months.
pub const DEFAULT_DAYS: i64 = 28;

pub(super) async fn scan(
    lake: &Lake,
    name: &str,
    range: DateRange,
) -> Result<LazyFrame, ReportError> {
    let registry = Registry::embedded()?;
    Ok(lake.scan(registry.get(name)?, range).await?)
}

pub(super) fn collect(lf: LazyFrame, what: &'static str) -> Result<DataFrame, ReportError> {
    lf.collect()
        .map_err(|source| ReportError::Polars { what, source })
}

pub(super) fn polars(what: &'static str) -> impl Fn(PolarsError) -> ReportError {
    move |source| ReportError::Polars { what, source }
}

/// Reads everything for `from..=to` (defaults: the last [`DEFAULT_DAYS`] days the marts
/// hold), with `fallback_currency` for a lake whose marts are empty.
pub async fn load(
    lake: &Lake,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    fallback_currency: &str,
    today: NaiveDate,
) -> Result<ReportData, ReportError> {
    let extent = extent(lake).await?;
    let to = to.or(extent.map(|e| e.1)).unwrap_or(today);
    let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
    if to < from {
        return Err(ReportError::BadRange { from, to });
    }
    let period = Period { from, to };
    let previous = period.previous();
    let daily = daily_facts(lake, period).await?;
    let previous_daily = daily_facts(lake, previous).await?;
    let currency = currency(lake, period)
        .await?
        .unwrap_or_else(|| fallback_currency.to_string());
    let cohorts = cohort_points(lake, period).await?;
    let mix = mix(lake, period).await?;
    let paths = analysis::paths(lake).await?;
    let backtest = analysis::backtest(lake).await?;
    let (calibration, calibration_note) = analysis::calibration(lake).await?;
    let (quality, quality_days) = quality::quality(lake, period).await?;
    let (unmapped_as_of, unmapped) = quality::unmapped(lake).await?;
    let (new_events_as_of, new_events) = quality::new_events(lake).await?;
    debug!(
        days = daily.len(),
        cohorts = cohorts.len(),
        "Report data read."
    );
    Ok(ReportData {
        currency,
        period,
        previous,
        extent,
        daily,
        previous_daily,
        cohorts,
        mix,
        paths,
        backtest,
        calibration,
        calibration_note,
        quality,
        quality_days,
        unmapped,
        unmapped_as_of,
        new_events,
        new_events_as_of,
    })
}

async fn extent(lake: &Lake) -> Result<Option<(NaiveDate, NaiveDate)>, ReportError> {
    let df = collect(
        scan(lake, "mart.campaign_daily", DateRange::all())
            .await?
            .select([
                col("dt").min().alias("first"),
                col("dt").max().alias("last"),
            ]),
        "the marts' first and last day",
    )?;
    let first = dates(&df, "first").map_err(polars("reading the first day"))?;
    let last = dates(&df, "last").map_err(polars("reading the last day"))?;
    Ok(
        match (
            first.first().copied().flatten(),
            last.first().copied().flatten(),
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
    )
}

async fn currency(lake: &Lake, period: Period) -> Result<Option<String>, ReportError> {
    let df = collect(
        scan(lake, "mart.campaign_daily", period.range())
            .await?
            .select([col("currency")])
            .limit(1),
        "the reporting currency",
    )?;
    Ok(strings(&df, "currency")
        .map_err(polars("reading the currency"))?
        .into_iter()
        .flatten()
        .next())
}

/// `mart.campaign_daily` of the period, with each day's predicted users' sums from
/// `mart.user_ltv`, sorted by day, channel and campaign.
async fn daily_facts(lake: &Lake, period: Period) -> Result<Vec<DailyFact>, ReportError> {
    let keys_cols = [col("dt"), col("channel"), col("campaign_id")];
    let mut aggs = Vec::new();
    for h in HORIZONS {
        let p = col(format!("pred_d{h}_micros")).cast(DataType::Float64);
        aggs.push(
            p.clone()
                .count()
                .cast(DataType::Int64)
                .alias(format!("_n{h}")),
        );
        aggs.push(p.clone().sum().alias(format!("_s{h}")));
        aggs.push((p.clone() * p).sum().alias(format!("_q{h}")));
    }
    let users = scan(lake, "mart.user_ltv", period.range())
        .await?
        .group_by(keys_cols.clone())
        .agg(aggs);
    let df = collect(
        scan(lake, "mart.campaign_daily", period.range())
            .await?
            .join(
                users,
                keys_cols.clone(),
                keys_cols,
                JoinArgs::new(JoinType::Left),
            )
            .sort(
                ["dt", "channel", "campaign_id"],
                SortMultipleOptions::default(),
            ),
        "mart.campaign_daily with its users' predictions",
    )?;
    let p = polars("reading mart.campaign_daily");
    let dt = dates(&df, "dt").map_err(&p)?;
    let channel = keys(&df, "channel").map_err(&p)?;
    let campaign = keys(&df, "campaign_id").map_err(&p)?;
    let name = strings(&df, "campaign_name").map_err(&p)?;
    let spend = ints(&df, "spend_micros").map_err(&p)?;
    let installs = ints(&df, "installs").map_err(&p)?;
    let fraud = ints(&df, "fraud_installs").map_err(&p)?;
    let revenue = ints(&df, "revenue_to_date_micros").map_err(&p)?;
    let r1 = floats(&df, "retention_d1").map_err(&p)?;
    let r7 = floats(&df, "retention_d7").map_err(&p)?;
    let extrapolated = bools(&df, "extrapolated").map_err(&p)?;
    let mut pltv = Vec::new();
    let mut stats = Vec::new();
    for h in HORIZONS {
        pltv.push(ints(&df, &format!("pltv_d{h}_micros")).map_err(&p)?);
        stats.push((
            ints(&df, &format!("_n{h}")).map_err(&p)?,
            floats(&df, &format!("_s{h}")).map_err(&p)?,
            floats(&df, &format!("_q{h}")).map_err(&p)?,
        ));
    }
    let mut out = Vec::with_capacity(df.height());
    for k in 0..df.height() {
        let Some(day) = dt[k] else { continue };
        let stat = |h: usize| UserStat {
            n: stats[h].0[k].unwrap_or(0),
            sum: stats[h].1[k].unwrap_or(0.0),
            sumsq: stats[h].2[k].unwrap_or(0.0),
        };
        out.push(DailyFact {
            dt: day,
            channel: channel[k].clone(),
            campaign_id: campaign[k].clone(),
            campaign_name: name[k].clone(),
            spend: spend[k].unwrap_or(0),
            installs: installs[k].unwrap_or(0),
            fraud: fraud[k].unwrap_or(0),
            revenue: revenue[k].unwrap_or(0),
            retention: [r1[k], r7[k]],
            pltv: [pltv[0][k], pltv[1][k], pltv[2][k]],
            extrapolated: extrapolated[k].unwrap_or(false),
            users: [stat(0), stat(1), stat(2)],
        });
    }
    Ok(out)
}

/// Observed points of `mart.cohort_ltv` for the period's cohorts.
async fn cohort_points(lake: &Lake, period: Period) -> Result<Vec<CohortPoint>, ReportError> {
    let df = collect(
        scan(lake, "mart.cohort_ltv", period.range())
            .await?
            .filter(col("observed").and(col("actual_revenue_micros").is_not_null()))
            .select([
                col("dt"),
                col("channel"),
                col("campaign_id"),
                col("day_n"),
                col("users"),
                col("actual_revenue_micros"),
            ])
            .sort(
                ["dt", "channel", "campaign_id", "day_n"],
                SortMultipleOptions::default(),
            ),
        "mart.cohort_ltv",
    )?;
    let p = polars("reading mart.cohort_ltv");
    let dt = dates(&df, "dt").map_err(&p)?;
    let channel = keys(&df, "channel").map_err(&p)?;
    let campaign = keys(&df, "campaign_id").map_err(&p)?;
    let day_n = ints(&df, "day_n").map_err(&p)?;
    let users = ints(&df, "users").map_err(&p)?;
    let revenue = ints(&df, "actual_revenue_micros").map_err(&p)?;
    Ok((0..df.height())
        .filter_map(|k| {
            Some(CohortPoint {
                dt: dt[k]?,
                channel: channel[k].clone(),
                campaign_id: campaign[k].clone(),
                day_n: u32::try_from(day_n[k]?).ok()?,
                users: users[k]?,
                revenue: revenue[k]?,
            })
        })
        .collect())
}

/// Users per platform and per country of each campaign in the period.
async fn mix(lake: &Lake, period: Period) -> Result<BTreeMap<(String, String), Mix>, ReportError> {
    let users = scan(lake, "mart.user_ltv", period.range()).await?;
    let mut out: BTreeMap<(String, String), Mix> = BTreeMap::new();
    for (column, what) in [
        ("platform", "platforms of mart.user_ltv"),
        ("country", "countries of mart.user_ltv"),
    ] {
        let df = collect(
            users
                .clone()
                .group_by([
                    col("channel"),
                    col("campaign_id"),
                    col(column).fill_null(lit("unknown")).alias("_value"),
                ])
                .agg([len().cast(DataType::Int64).alias("n")]),
            what,
        )?;
        let p = polars(what);
        let channel = keys(&df, "channel").map_err(&p)?;
        let campaign = keys(&df, "campaign_id").map_err(&p)?;
        let value = keys(&df, "_value").map_err(&p)?;
        let n = ints(&df, "n").map_err(&p)?;
        for k in 0..df.height() {
            let m = out
                .entry((channel[k].clone(), campaign[k].clone()))
                .or_default();
            let map = if column == "platform" {
                &mut m.platforms
            } else {
                &mut m.countries
            };
            map.insert(value[k].clone(), n[k].unwrap_or(0));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_period_has_the_same_length_and_ends_the_day_before() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let p = Period {
            from: d("2026-03-01"),
            to: d("2026-03-28"),
        };
        assert_eq!(p.days(), 28);
        let q = p.previous();
        assert_eq!((q.from, q.to), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(q.days(), 28);
    }
}
