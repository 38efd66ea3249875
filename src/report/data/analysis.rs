//! The model-side reads: the latest critical-path analysis, the latest backtest, and the
//! calibration of the predictions against matured revenue.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use super::{collect, polars, scan};
use crate::lake::DateRange;
use crate::lake::Lake;
use crate::report::ReportError;
use crate::report::frame::{bools, dates, floats, ints, keys};

#[derive(Debug, Clone, PartialEq)]
pub struct PathRow {
    pub kind: String,
    pub path: String,
    pub support: i64,
    pub conversions: i64,
    pub conversion_rate: f64,
    pub lift: Option<f64>,
    pub median_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event: String,
    pub support: i64,
    pub conversion_rate: f64,
    pub conversion_rate_without: Option<f64>,
    pub lift: Option<f64>,
    pub lift_vs_without: Option<f64>,
    pub median_hours: f64,
}

/// The latest critical-path analysis, overall cohort.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paths {
    pub as_of: Option<NaiveDate>,
    pub target: String,
    pub window_hours: i64,
    pub cohort_users: i64,
    pub base_rate: f64,
    pub prefixes: Vec<PathRow>,
    pub whole_paths: Vec<PathRow>,
    pub events: Vec<EventRow>,
}

/// One model's backtest, averaged over the cutoffs of the latest backtest run.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRow {
    pub model: String,
    pub window_days: i64,
    pub horizon_days: i64,
    pub cutoffs: i64,
    pub scored_users: i64,
    pub campaign_mape: Option<f64>,
    pub bias: Option<f64>,
    pub gini: Option<f64>,
    pub decile_mape: Option<f64>,
    pub spearman: Option<f64>,
    pub chosen: bool,
}

/// Predicted against actual revenue per user, by decile of the prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub horizon: u32,
    /// Which model predicted the horizon (`mart.user_ltv`'s `model`).
    pub model: String,
    pub users: usize,
    /// (mean predicted, mean actual, users) per decile, lowest prediction first, micros.
    pub deciles: Vec<(f64, f64, usize)>,
}

/// The latest critical-path analysis of the overall cohort: ranked prefixes and whole
/// paths, and events by lift.
pub(super) async fn paths(lake: &Lake) -> Result<Paths, ReportError> {
    let overall = |lf: LazyFrame| {
        lf.filter(col("cohort_kind").eq(lit("overall")))
            .filter(col("dt").eq(col("dt").max()))
    };
    let df = collect(
        overall(scan(lake, "mart.critical_path", DateRange::all()).await?)
            .filter(col("rank").is_not_null())
            .sort(["kind", "rank"], SortMultipleOptions::default()),
        "mart.critical_path",
    )?;
    let p = polars("reading mart.critical_path");
    let mut out = Paths::default();
    if df.height() > 0 {
        out.as_of = dates(&df, "dt").map_err(&p)?.into_iter().flatten().next();
        out.target = keys(&df, "target").map_err(&p)?.swap_remove(0);
        out.window_hours = ints(&df, "window_hours").map_err(&p)?[0].unwrap_or(0);
        out.cohort_users = ints(&df, "cohort_users").map_err(&p)?[0].unwrap_or(0);
        out.base_rate = floats(&df, "base_rate").map_err(&p)?[0].unwrap_or(0.0);
    }
    let kind = keys(&df, "kind").map_err(&p)?;
    let path = keys(&df, "path").map_err(&p)?;
    let support = ints(&df, "support").map_err(&p)?;
    let conversions = ints(&df, "conversions").map_err(&p)?;
    let rate = floats(&df, "conversion_rate").map_err(&p)?;
    let lift = floats(&df, "lift").map_err(&p)?;
    let hours = floats(&df, "median_hours_to_convert").map_err(&p)?;
    for k in 0..df.height() {
        let row = PathRow {
            kind: kind[k].clone(),
            path: path[k].clone(),
            support: support[k].unwrap_or(0),
            conversions: conversions[k].unwrap_or(0),
            conversion_rate: rate[k].unwrap_or(0.0),
            lift: lift[k],
            median_hours: hours[k],
        };
        let list = if row.kind == "prefix" {
            &mut out.prefixes
        } else {
            &mut out.whole_paths
        };
        if list.len() < 10 {
            list.push(row);
        }
    }

    let df = collect(
        overall(scan(lake, "mart.critical_event_lift", DateRange::all()).await?)
            .filter(col("rank").is_not_null())
            .sort(["rank"], SortMultipleOptions::default())
            .limit(10),
        "mart.critical_event_lift",
    )?;
    let p = polars("reading mart.critical_event_lift");
    let event = keys(&df, "event").map_err(&p)?;
    let support = ints(&df, "support").map_err(&p)?;
    let rate = floats(&df, "conversion_rate").map_err(&p)?;
    let without = floats(&df, "conversion_rate_without").map_err(&p)?;
    let lift = floats(&df, "lift").map_err(&p)?;
    let vs = floats(&df, "lift_vs_without").map_err(&p)?;
    let hours = floats(&df, "median_hours_to_event").map_err(&p)?;
    out.events = (0..df.height())
        .map(|k| EventRow {
            event: event[k].clone(),
            support: support[k].unwrap_or(0),
            conversion_rate: rate[k].unwrap_or(0.0),
            conversion_rate_without: without[k],
            lift: lift[k],
            lift_vs_without: vs[k],
            median_hours: hours[k].unwrap_or(0.0),
        })
        .collect();
    Ok(out)
}

/// The latest backtest run of `mart.model_evaluation`, averaged over its cutoffs.
pub(super) async fn backtest(lake: &Lake) -> Result<Vec<BacktestRow>, ReportError> {
    let mean = |name: &str| col(name).mean().alias(name);
    let df = collect(
        scan(lake, "mart.model_evaluation", DateRange::all())
            .await?
            .filter(col("evaluated_at").eq(col("evaluated_at").max()))
            .group_by([col("model"), col("window_days"), col("horizon_days")])
            .agg([
                len().cast(DataType::Int64).alias("cutoffs"),
                col("scored_users").cast(DataType::Int64).sum(),
                mean("campaign_mape"),
                mean("bias"),
                mean("normalized_gini"),
                mean("decile_mape"),
                mean("spearman"),
                col("chosen").any(true),
            ])
            .sort(
                ["horizon_days", "window_days", "model"],
                SortMultipleOptions::default(),
            ),
        "mart.model_evaluation",
    )?;
    let p = polars("reading mart.model_evaluation");
    let model = keys(&df, "model").map_err(&p)?;
    let window = ints(&df, "window_days").map_err(&p)?;
    let horizon = ints(&df, "horizon_days").map_err(&p)?;
    let cutoffs = ints(&df, "cutoffs").map_err(&p)?;
    let scored = ints(&df, "scored_users").map_err(&p)?;
    let mape = floats(&df, "campaign_mape").map_err(&p)?;
    let bias = floats(&df, "bias").map_err(&p)?;
    let gini = floats(&df, "normalized_gini").map_err(&p)?;
    let decile = floats(&df, "decile_mape").map_err(&p)?;
    let spearman = floats(&df, "spearman").map_err(&p)?;
    let chosen = bools(&df, "chosen").map_err(&p)?;
    Ok((0..df.height())
        .map(|k| BacktestRow {
            model: model[k].clone(),
            window_days: window[k].unwrap_or(0),
            horizon_days: horizon[k].unwrap_or(0),
            cutoffs: cutoffs[k].unwrap_or(0),
            scored_users: scored[k].unwrap_or(0),
            campaign_mape: mape[k],
            bias: bias[k],
            gini: gini[k],
            decile_mape: decile[k],
            spearman: spearman[k],
            chosen: chosen[k].unwrap_or(false),
        })
        .collect())
}

/// Users a calibration plot needs before it means anything.
const MIN_CALIBRATION_USERS: usize = 100;

/// Predicted against actual revenue by decile of the prediction, at the first of D90, D30,
/// D180 with enough mature users. The marts hold no per-user actual revenue past the
/// window, so the actual side is summed from `clean.events` (revenue in the first H x 24
/// hours after install) for users of `mart.user_ltv` installed at least H + 1 days before
/// the data's last event.
pub(super) async fn calibration(lake: &Lake) -> Result<(Option<Calibration>, String), ReportError> {
    let events = scan(lake, "clean.events", DateRange::all()).await?;
    let end = collect(
        events.clone().select([col("time").max().alias("end")]),
        "the last event time",
    )?;
    let end = dates(
        &end.lazy()
            .select([col("end").cast(DataType::Date)])
            .collect()
            .map_err(polars("the last event day"))?,
        "end",
    )
    .map_err(polars("the last event day"))?
    .into_iter()
    .flatten()
    .next();
    let Some(end) = end else {
        return Ok((
            None,
            "No events in the clean layer, so no prediction has an actual value to compare with."
                .into(),
        ));
    };
    for h in [90u32, 30, 180] {
        let last_install = end - Duration::days(i64::from(h) + 1);
        let users = scan(
            lake,
            "mart.user_ltv",
            DateRange::new(NaiveDate::MIN, last_install),
        )
        .await?
        .filter(col(format!("pred_d{h}_micros")).is_not_null());
        let actual = events
            .clone()
            .filter(
                col("user_key")
                    .is_not_null()
                    .and(col("revenue_reporting_micros").is_not_null())
                    .and(
                        col("days_since_install")
                            .cast(DataType::Int64)
                            .lt(lit(i64::from(h))),
                    ),
            )
            .group_by([col("user_key")])
            .agg([col("revenue_reporting_micros").sum().alias("_actual")]);
        let df = collect(
            users
                .join(
                    actual,
                    [col("user_key")],
                    [col("user_key")],
                    JoinArgs::new(JoinType::Left),
                )
                .select([
                    col(format!("pred_d{h}_micros"))
                        .cast(DataType::Float64)
                        .alias("pred"),
                    col("_actual")
                        .fill_null(lit(0i64))
                        .cast(DataType::Float64)
                        .alias("actual"),
                    col("model"),
                ]),
            "predictions against matured revenue",
        )?;
        if df.height() < MIN_CALIBRATION_USERS {
            continue;
        }
        let p = polars("reading the calibration frame");
        let pred = floats(&df, "pred").map_err(&p)?;
        let actual = floats(&df, "actual").map_err(&p)?;
        let models = keys(&df, "model").map_err(&p)?;
        let mut pairs: Vec<(f64, f64)> = pred
            .iter()
            .zip(&actual)
            .map(|(p, a)| (p.unwrap_or(0.0), a.unwrap_or(0.0)))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = pairs.len();
        let deciles = (0..10)
            .filter_map(|d| {
                let slice = &pairs[d * n / 10..(d + 1) * n / 10];
                (!slice.is_empty()).then(|| {
                    let len = slice.len() as f64;
                    (
                        slice.iter().map(|p| p.0).sum::<f64>() / len,
                        slice.iter().map(|p| p.1).sum::<f64>() / len,
                        slice.len(),
                    )
                })
            })
            .collect();
        let model = most_common(&models)
            .and_then(|m| {
                m.split_whitespace()
                    .find_map(|part| part.strip_prefix(&format!("d{h}=")).map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".into());
        let note = format!(
            "Computed here, not read from a mart: mart.user_ltv's D{h} predictions of the {n} users \
             installed by {last_install} (mature at D{h} by the last event, {end}) against their \
             revenue in the first {h} days from clean.events. These users are old enough to have \
             been in the training set, so this is an in-sample check; the backtest table above \
             is the out-of-sample one."
        );
        return Ok((
            Some(Calibration {
                horizon: h,
                model,
                users: n,
                deciles,
            }),
            note,
        ));
    }
    Ok((
        None,
        format!(
            "Fewer than {MIN_CALIBRATION_USERS} predicted users are old enough to have a \
             D30, D90 or D180 actual value (the data ends {end}), so there is nothing to \
             calibrate against yet."
        ),
    ))
}

fn most_common(values: &[String]) -> Option<&str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_common_value_wins() {
        let v: Vec<String> = ["a", "b", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(most_common(&v), Some("b"));
        assert_eq!(most_common(&[]), None);
    }
}
