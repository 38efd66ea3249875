//! The revenue curve that carries a prediction past the longest horizon the history covers:
//! daily revenue per install on day `d` after install is `retention(d) × revenue per active
//! user`, with retention a fitted power law `a · d^(−b)` (the shape mobile retention takes)
//! and revenue per active user the mean over days from the observation window on, when the
//! early-days burst is over.
//!
//! A young app (or a 90-day lake asked for D180) has no user mature at the horizon, so no
//! model can be trained on it. What the data does show is how many users are still active and
//! what an active user spends, day by day, as far as it reaches; the power law extends the
//! first past the data, and the ratio
//! `(C(H*) + Σ_{d=H*}^{H−1} retention(d) · arpdau) / C(H*)`, with `C(H*)` the observed mean
//! revenue per install at the longest mature horizon `H*`, lifts a prediction at `H*` to `H`.
//! Such predictions are flagged as extrapolated wherever they appear.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::features::{DAY_MS, epoch_ms, real_first_installs};

/// Days with fewer observed users than this are too noisy to fit retention on.
pub const MIN_OBSERVED_USERS: u32 = 50;

/// Days since install, users observed that whole day, users active on it and their revenue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyActivity {
    pub day: u32,
    pub observed_users: u32,
    pub active_users: u32,
    pub revenue_micros: f64,
}

/// A fitted retention × revenue-per-active-user curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueCurve {
    /// Retention on day `d ≥ 1` is `retention_scale · d^(−retention_decay)`, capped at 1.
    pub retention_scale: f64,
    pub retention_decay: f64,
    /// Mean revenue per active user and day, from day `arpdau_from_day` on, micros.
    pub revenue_per_active_user_micros: f64,
    pub arpdau_from_day: u32,
    /// The last day since install with enough observed users: the fit's reach.
    pub observed_days: u32,
}

impl RevenueCurve {
    /// Expected revenue per install on day `d` after install, micros.
    pub fn daily_revenue_micros(&self, day: u32) -> f64 {
        let d = f64::from(day.max(1));
        (self.retention_scale * d.powf(-self.retention_decay)).min(1.0)
            * self.revenue_per_active_user_micros
    }

    /// The factor that lifts mean cumulative revenue per install `at_from` (micros, observed
    /// at `from_days`) to `to_days`.
    pub fn ratio(&self, at_from: f64, from_days: u32, to_days: u32) -> Result<f64, ModelError> {
        if !(at_from.is_finite() && at_from > 0.0) {
            return Err(ModelError::Undefined {
                metric: "revenue curve ratio",
                reason: "no revenue per install at the longest mature horizon to scale from",
            });
        }
        let added: f64 = (from_days..to_days)
            .map(|d| self.daily_revenue_micros(d))
            .sum();
        Ok((at_from + added) / at_from)
    }

    /// Fits the curve on per-day activity (from [`daily_activity`]).
    pub fn fit(days: &[DailyActivity], arpdau_from_day: u32) -> Result<RevenueCurve, ModelError> {
        let usable: Vec<&DailyActivity> = days
            .iter()
            .filter(|d| d.day >= 1 && d.observed_users >= MIN_OBSERVED_USERS)
            .collect();
        // Weighted least squares of ln retention on ln day over days with anyone active.
        let points: Vec<(f64, f64, f64)> = usable
            .iter()
            .filter(|d| d.active_users > 0)
            .map(|d| {
                let r = f64::from(d.active_users) / f64::from(d.observed_users);
                (f64::from(d.day).ln(), r.ln(), f64::from(d.observed_users))
            })
            .collect();
        if points.len() < 3 {
            return Err(ModelError::TooFew {
                metric: "retention curve (days with active users)",
                needed: 3,
                found: points.len(),
            });
        }
        let w: f64 = points.iter().map(|p| p.2).sum();
        let mx = points.iter().map(|p| p.0 * p.2).sum::<f64>() / w;
        let my = points.iter().map(|p| p.1 * p.2).sum::<f64>() / w;
        let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
        if sxx <= 0.0 {
            return Err(ModelError::Undefined {
                metric: "retention curve",
                reason: "all observed days are the same day",
            });
        }
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        let late: Vec<&&DailyActivity> =
            usable.iter().filter(|d| d.day >= arpdau_from_day).collect();
        let active: f64 = late.iter().map(|d| f64::from(d.active_users)).sum();
        let revenue: f64 = late.iter().map(|d| d.revenue_micros).sum();
        if active <= 0.0 {
            return Err(ModelError::Undefined {
                metric: "revenue per active user",
                reason: "no active user observed after the observation window",
            });
        }
        Ok(RevenueCurve {
            retention_scale: intercept.exp(),
            // Retention that grows with time is noise; never extrapolate growth.
            retention_decay: (-slope).max(0.0),
            revenue_per_active_user_micros: revenue / active,
            arpdau_from_day,
            observed_days: usable.last().map_or(0, |d| d.day),
        })
    }
}

/// The two plans behind [`daily_activity`], over real first installs: per day since install,
/// the users active on it (any event) and their revenue, counting only whole days the data
/// covers, so the last, partial day does not read as churn (`day`, `active_users`,
/// `revenue_micros`); and how many users have each age in whole days at the data's end
/// (`age_days`, `users`).
pub fn daily_activity_plans(events: LazyFrame, installs: LazyFrame) -> (LazyFrame, LazyFrame) {
    let users = real_first_installs(installs).select([col("user_key"), col("install_ms")]);
    let end = events
        .clone()
        .select([epoch_ms(col("time")).max().alias("_end_ms")]);
    let ages = users.cross_join(end, None).select([
        col("user_key"),
        col("install_ms"),
        (col("_end_ms") - col("install_ms"))
            .floor_div(lit(DAY_MS))
            .alias("age_days"),
    ]);
    let active = events
        .select([
            col("user_key"),
            epoch_ms(col("time")).alias("_t"),
            col("revenue_reporting_micros")
                .cast(DataType::Float64)
                .fill_null(lit(0.0))
                .alias("_rev"),
        ])
        .join(
            ages.clone(),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_column(
            (col("_t") - col("install_ms"))
                .floor_div(lit(DAY_MS))
                .alias("day"),
        )
        .filter(col("day").gt_eq(lit(0)).and(col("day").lt(col("age_days"))))
        .group_by([col("day"), col("user_key")])
        .agg([col("_rev").sum()])
        .group_by([col("day")])
        .agg([
            len().alias("active_users"),
            col("_rev").sum().alias("revenue_micros"),
        ])
        .sort(["day"], SortMultipleOptions::default());
    let by_age = ages
        .filter(col("age_days").gt(lit(0)))
        .group_by([col("age_days")])
        .agg([len().alias("users")])
        .sort(["age_days"], SortMultipleOptions::default());
    (active, by_age)
}

/// Collects both plans of [`daily_activity_plans`] and combines them: one entry per day
/// from 0 to the oldest user's last whole day. A user of age `a` days is observed on days
/// `0..a`.
pub fn daily_activity(
    events: LazyFrame,
    installs: LazyFrame,
) -> Result<Vec<DailyActivity>, ModelError> {
    let (active, by_age) = daily_activity_plans(events, installs);
    let collect = |lf: LazyFrame| {
        lf.collect()
            .map_err(|e| ModelError::column("daily activity", e))
    };
    let (active, by_age) = (collect(active)?, collect(by_age)?);
    let ints = |df: &DataFrame, name: &str| -> Result<Vec<i64>, ModelError> {
        let c = df
            .column(name)
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(|e| ModelError::column(name, e))?;
        let a = c.i64().map_err(|e| ModelError::column(name, e))?;
        Ok(a.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let ages = ints(&by_age, "age_days")?;
    let counts = ints(&by_age, "users")?;
    let Some(&oldest) = ages.last() else {
        return Ok(Vec::new());
    };
    // observed[d] = users older than d days: a reverse cumulative count over ages.
    let mut observed = vec![0u32; usize::try_from(oldest).unwrap_or(0)];
    for (age, n) in ages.iter().zip(&counts) {
        if let Some(slot) = usize::try_from(*age - 1)
            .ok()
            .and_then(|i| observed.get_mut(i))
        {
            *slot += u32::try_from(*n).unwrap_or(u32::MAX);
        }
    }
    for d in (0..observed.len().saturating_sub(1)).rev() {
        observed[d] += observed[d + 1];
    }
    let mut out: Vec<DailyActivity> = observed
        .iter()
        .enumerate()
        .map(|(d, &observed_users)| DailyActivity {
            day: d as u32,
            observed_users,
            active_users: 0,
            revenue_micros: 0.0,
        })
        .collect();
    let days = ints(&active, "day")?;
    let users = ints(&active, "active_users")?;
    let revenue = active
        .column("revenue_micros")
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| ModelError::column("revenue_micros", e))?;
    let revenue = revenue
        .f64()
        .map_err(|e| ModelError::column("revenue_micros", e))?;
    for ((d, n), r) in days.iter().zip(&users).zip(revenue.iter()) {
        if let Some(slot) = usize::try_from(*d).ok().and_then(|i| out.get_mut(i)) {
            slot.active_users = u32::try_from(*n).unwrap_or(u32::MAX);
            slot.revenue_micros = r.unwrap_or(0.0);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::features::fixtures::{T0, events, installs};

    #[test]
    fn the_plan_counts_whole_observed_days_only() {
        // Data ends 10.5 days after u1's install: u1 is observed on days 0..=9, u2 (installed
        // on day 5) on days 0..=4.
        let inst = installs(&[
            ("u1", T0, "meta", Some("c"), false, false, true),
            ("u2", T0 + 5 * DAY_MS, "meta", Some("c"), false, false, true),
        ]);
        let ev = events(&[
            ("u1", "app_open", 1_000, None),
            ("u1", "purchase", DAY_MS + 5, Some(3_000_000)),
            ("u1", "app_open", DAY_MS + 7, None),
            ("u2", "app_open", 5 * DAY_MS + 10, None),
            ("u2", "app_open", 9 * DAY_MS + 10, None),
            ("u1", "app_open", 10 * DAY_MS + DAY_MS / 2, None),
        ]);
        let days = daily_activity(ev, inst).unwrap();
        assert_eq!(days.len(), 10);
        let at = |d: usize| &days[d];
        assert_eq!((at(0).observed_users, at(0).active_users), (2, 2));
        assert_eq!(at(1).active_users, 1);
        assert_eq!(at(1).revenue_micros, 3_000_000.0);
        assert_eq!((at(4).observed_users, at(4).active_users), (2, 1));
        assert_eq!((at(5).observed_users, at(5).active_users), (1, 0));
        // u1's event on day 10 is in the partial last day: not counted.
        assert_eq!(at(9).active_users, 0);
    }

    #[test]
    fn a_power_law_is_recovered_and_lifts_a_horizon() {
        let days: Vec<DailyActivity> = (0..90)
            .map(|d| {
                let r = if d == 0 {
                    1.0
                } else {
                    0.4 * f64::from(d).powf(-0.5)
                };
                let active = (10_000.0 * r).round() as u32;
                DailyActivity {
                    day: d,
                    observed_users: 10_000,
                    active_users: active,
                    revenue_micros: f64::from(active) * 200_000.0,
                }
            })
            .collect();
        let c = RevenueCurve::fit(&days, 7).unwrap();
        assert!((c.retention_scale - 0.4).abs() < 0.01, "{c:?}");
        assert!((c.retention_decay - 0.5).abs() < 0.01, "{c:?}");
        assert!((c.revenue_per_active_user_micros - 200_000.0).abs() < 1.0);
        assert_eq!(c.observed_days, 89);
        // From D90 to D180: Σ_{d=90}^{179} 0.4 d^-0.5 × 0.2 USD ≈ 0.2 × 0.4 × 2(√179.5 − √89.5).
        let expected_added = 0.2e6 * 0.4 * 2.0 * (179.5f64.sqrt() - 89.5f64.sqrt());
        let ratio = c.ratio(5e6, 90, 180).unwrap();
        assert!(
            ((ratio - 1.0) * 5e6 - expected_added).abs() / expected_added < 0.01,
            "{ratio}"
        );
        assert!(c.ratio(0.0, 90, 180).is_err());
    }

    #[test]
    fn too_little_history_is_an_error_not_a_curve() {
        let days = [DailyActivity {
            day: 1,
            observed_users: 100,
            active_users: 10,
            revenue_micros: 0.0,
        }];
        assert!(RevenueCurve::fit(&days, 7).is_err());
    }
}
