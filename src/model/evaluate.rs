//! `ltv backtest` over a range of cutoffs: which cutoffs the history can score, the scores of
//! every model at each, their summary per model and horizon, the choice of the model that
//! predicts the marts, and the `mart.model_evaluation` rows.
//!
//! A cutoff `c` at horizon `H` with window `K` and cohort width `C` is scorable when
//! - someone is mature at `H` by `c` (installed at least `H` days before `c`), and
//! - the scored cohort (installs in `[c − K − C, c − K)`) is mature at `H` in the whole data:
//!   `c − K + H ≤` the data's end.
//!
//! Cutoffs run every `every_days` back from the latest scorable one, so the most recent
//! evidence is always in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::backtest::{BacktestError, BacktestParams, ModelScore, backtest_at};
use super::fit::ModelKind;
use super::hurdle::HurdleParams;
use crate::features::epoch_ms;

/// Settings of a backtest run.
#[derive(Debug, Clone)]
pub struct EvaluationParams {
    pub window_days: u32,
    pub horizons: Vec<u32>,
    pub cohort_days: u32,
    /// Days between cutoffs.
    pub every_days: u32,
    /// At most this many cutoffs per horizon (the latest ones).
    pub max_cutoffs: usize,
    pub min_campaign_users: usize,
    pub hurdle: HurdleParams,
    /// Only cutoffs in this range (inclusive), when given.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// A cutoff that was asked for or considered but not scored, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub horizon_days: u32,
    pub cutoff: Option<NaiveDate>,
    pub reason: String,
}

/// One model's scores at one horizon, averaged over cutoffs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub model: ModelKind,
    pub horizon_days: u32,
    pub cutoffs: usize,
    pub campaign_mape: Option<f64>,
    pub bias: Option<f64>,
    pub normalized_gini: Option<f64>,
    pub decile_mape: Option<f64>,
    pub spearman: Option<f64>,
}

/// The model chosen for one horizon and the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonChoice {
    pub model: ModelKind,
    /// Mean campaign MAPE per model over the cutoffs every compared model was scored on.
    pub campaign_mape: BTreeMap<ModelKind, f64>,
    pub cutoffs: Vec<NaiveDate>,
    pub run_id: String,
    pub decided_at: DateTime<Utc>,
}

/// `_state/models/choice.json`: which model predicts each horizon, per observation window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// window days → horizon days → choice. (String keys: JSON objects need them.)
    pub windows: BTreeMap<String, BTreeMap<String, HorizonChoice>>,
}

/// Key of the choice document under `_state/`.
pub const CHOICE_KEY: &str = "models/choice";

impl ModelChoice {
    /// The models chosen for a window, by horizon.
    pub fn for_window(&self, window_days: u32) -> BTreeMap<u32, ModelKind> {
        self.windows
            .get(&window_days.to_string())
            .map(|by_h| {
                by_h.iter()
                    .filter_map(|(h, c)| Some((h.parse().ok()?, c.model)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records this run's choices; horizons it did not decide keep their earlier choice.
    pub fn merge(&mut self, window_days: u32, decided: &BTreeMap<u32, HorizonChoice>) {
        let by_h = self.windows.entry(window_days.to_string()).or_default();
        for (h, c) in decided {
            by_h.insert(h.to_string(), c.clone());
        }
    }
}

/// Everything a backtest run found.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub scores: Vec<ModelScore>,
    pub skipped: Vec<Skipped>,
    pub summaries: Vec<Summary>,
    pub choices: BTreeMap<u32, HorizonChoice>,
}

/// The data's first install day and last event, which bound the cutoffs.
#[derive(Debug, Clone, Copy)]
pub struct History {
    pub first_install: NaiveDate,
    pub data_end: DateTime<Utc>,
}

impl History {
    /// Reads both ends from the clean tables; `None` when they are empty.
    pub fn of(events: LazyFrame, installs: LazyFrame) -> Result<Option<History>, PolarsError> {
        let end = events
            .select([epoch_ms(col("time")).max().alias("v")])
            .collect()?;
        let first = installs
            .select([epoch_ms(col("install_time")).min().alias("v")])
            .collect()?;
        let get =
            |df: &DataFrame| -> PolarsResult<Option<i64>> { Ok(df.column("v")?.i64()?.get(0)) };
        let (Some(end), Some(first)) = (get(&end)?, get(&first)?) else {
            return Ok(None);
        };
        Ok(DateTime::from_timestamp_millis(end)
            .zip(DateTime::from_timestamp_millis(first))
            .map(|(data_end, first)| History {
                first_install: first.date_naive(),
                data_end,
            }))
    }

    /// The scorable cutoffs at horizon `h` within the run's range, latest first, and why the
    /// range holds none when it does not.
    pub fn cutoffs(&self, h: u32, params: &EvaluationParams) -> Result<Vec<NaiveDate>, String> {
        let k = i64::from(params.window_days);
        let earliest = self.first_install + Duration::days(i64::from(h) + 1);
        let latest = self.data_end.date_naive() + Duration::days(k - i64::from(h));
        let from = params.from.map_or(earliest, |f| f.max(earliest));
        let to = params.to.map_or(latest, |t| t.min(latest));
        if from > to {
            let days = (self.data_end.date_naive() - self.first_install).num_days() + 1;
            return Err(format!(
                "no scorable cutoff{}: D{h} from D{k} needs a history of at least {} days \
                 (training users mature at D{h}, then a cohort that had D{k} and is itself \
                 mature at D{h}); this one has {days} days, from {} to {}",
                match (params.from, params.to) {
                    (None, None) => String::new(),
                    _ => format!(
                        " between {} and {}",
                        params.from.map_or("the start".into(), |d| d.to_string()),
                        params.to.map_or("the end".into(), |d| d.to_string())
                    ),
                },
                2 * i64::from(h) - k + i64::from(params.cohort_days) + 2,
                self.first_install,
                self.data_end.date_naive(),
            ));
        }
        let step = Duration::days(i64::from(params.every_days.max(1)));
        let mut out = Vec::new();
        let mut c = to;
        while c >= from && out.len() < params.max_cutoffs.max(1) {
            out.push(c);
            c -= step;
        }
        Ok(out)
    }
}

/// Runs the backtest at every scorable cutoff of every horizon and chooses per horizon.
pub fn evaluate(
    events: LazyFrame,
    installs: LazyFrame,
    history: &History,
    params: &EvaluationParams,
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<Evaluation, BacktestError> {
    let mut scores = Vec::new();
    let mut skipped = Vec::new();
    let mut cutoffs = Vec::new();
    for &h in &params.horizons {
        match history.cutoffs(h, params) {
            Ok(c) => cutoffs.extend(c.into_iter().map(|cutoff| (h, cutoff))),
            Err(reason) => skipped.push(Skipped {
                horizon_days: h,
                cutoff: None,
                reason,
            }),
        }
    }
    let parent = tracing::Span::current();
    let results = side_by_side(&cutoffs, BACKTESTS_AT_ONCE, |&(h, cutoff)| {
        let _span = tracing::info_span!(parent: &parent, "cutoff", horizon = h, %cutoff).entered();
        let bp = BacktestParams {
            window_days: params.window_days,
            horizon_days: h,
            cohort_days: params.cohort_days,
            min_campaign_users: params.min_campaign_users,
            hurdle: params.hurdle.clone(),
        };
        backtest_at(events.clone(), installs.clone(), cutoff, &bp)
    });
    for (&(h, _), result) in cutoffs.iter().zip(results) {
        match result {
            Ok(s) => scores.extend(s),
            // Too few users at a cutoff is a fact about the data, not a failure.
            Err(BacktestError::Model { cutoff, error }) => skipped.push(Skipped {
                horizon_days: h,
                cutoff: Some(cutoff),
                reason: error.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    let summaries = summarise(&scores);
    let choices = choose(&scores, run_id, now);
    Ok(Evaluation {
        scores,
        skipped,
        summaries,
        choices,
    })
}

/// Backtests run at once. A cutoff's model fits (smartcore's regression and trees, the
/// BTYD optimiser) each hold one thread for seconds; two cutoffs side by side keep both of
/// this machine's cores busy where one left the other idle.
const BACKTESTS_AT_ONCE: usize = 2;

/// `f` over `items` on up to `workers` threads, the results in the items' order. A panic in
/// `f` is passed on to the caller.
fn side_by_side<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(mine) => mine,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Mean scores per model and horizon.
pub fn summarise(scores: &[ModelScore]) -> Vec<Summary> {
    let mut groups: BTreeMap<(u32, ModelKind), Vec<&ModelScore>> = BTreeMap::new();
    for s in scores {
        groups.entry((s.horizon_days, s.model)).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|((horizon_days, model), g)| Summary {
            model,
            horizon_days,
            cutoffs: g.len(),
            campaign_mape: mean(g.iter().map(|s| s.campaign_mape)),
            bias: mean(g.iter().map(|s| s.bias)),
            normalized_gini: mean(g.iter().map(|s| s.normalized_gini)),
            decile_mape: mean(g.iter().map(|s| s.decile_mape)),
            spearman: mean(g.iter().map(|s| s.spearman)),
        })
        .collect()
}

/// Per horizon, the model with the lowest mean campaign MAPE over the cutoffs where every
/// compared model has one. BTYD sits a cutoff out when it cannot be fitted; it is compared
/// only when it has a score wherever the others do, so that no model wins by skipping the
/// hard cutoffs.
pub fn choose(
    scores: &[ModelScore],
    run_id: &str,
    now: DateTime<Utc>,
) -> BTreeMap<u32, HorizonChoice> {
    let mut by_h: BTreeMap<u32, BTreeMap<ModelKind, BTreeMap<NaiveDate, f64>>> = BTreeMap::new();
    for s in scores {
        if let Some(m) = s.campaign_mape.filter(|m| m.is_finite()) {
            by_h.entry(s.horizon_days)
                .or_default()
                .entry(s.model)
                .or_default()
                .insert(s.cutoff, m);
        }
    }
    let mut out = BTreeMap::new();
    for (h, models) in by_h {
        let all: BTreeSet<NaiveDate> = models.values().flat_map(|m| m.keys().copied()).collect();
        let complete: Vec<ModelKind> = models
            .iter()
            .filter(|(_, m)| m.len() == all.len())
            .map(|(k, _)| *k)
            .collect();
        let compared: Vec<ModelKind> = if complete.is_empty() {
            models.keys().copied().collect()
        } else {
            complete
        };
        let cutoffs: Vec<NaiveDate> = all
            .iter()
            .filter(|c| compared.iter().all(|k| models[k].contains_key(c)))
            .copied()
            .collect();
        if cutoffs.is_empty() {
            continue;
        }
        let means: BTreeMap<ModelKind, f64> = compared
            .iter()
            .map(|k| {
                let m = &models[k];
                let sum: f64 = cutoffs.iter().filter_map(|c| m.get(c)).sum();
                (*k, sum / cutoffs.len() as f64)
            })
            .collect();
        let Some((&model, _)) = means.iter().min_by(|a, b| a.1.total_cmp(b.1)) else {
            continue;
        };
        out.insert(
            h,
            HorizonChoice {
                model,
                campaign_mape: means,
                cutoffs,
                run_id: run_id.to_string(),
                decided_at: now,
            },
        );
    }
    out
}

/// The `mart.model_evaluation` rows of a run (schema order).
pub fn model_evaluation_frame(
    evaluation: &Evaluation,
    params: &EvaluationParams,
    run_id: &str,
    started: DateTime<Utc>,
) -> PolarsResult<DataFrame> {
    let s = &evaluation.scores;
    let u32s = |f: fn(&ModelScore) -> u32| s.iter().map(f).collect::<Vec<u32>>();
    let u64s = |f: fn(&ModelScore) -> usize| s.iter().map(|x| f(x) as u64).collect::<Vec<u64>>();
    let f64s = |f: fn(&ModelScore) -> Option<f64>| {
        s.iter()
            .map(|x| f(x).filter(|v| v.is_finite()))
            .collect::<Vec<_>>()
    };
    let n = s.len();
    let days: Vec<i32> = s
        .iter()
        .map(|x| {
            (x.cutoff - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
        })
        .collect();
    let chosen: Vec<bool> = s
        .iter()
        .map(|x| {
            evaluation
                .choices
                .get(&x.horizon_days)
                .is_some_and(|c| c.model == x.model)
        })
        .collect();
    DataFrame::new(
        n,
        vec![
            Column::new("dt".into(), days).cast(&DataType::Date)?,
            Column::new(
                "model".into(),
                s.iter().map(|x| x.model.name()).collect::<Vec<_>>(),
            ),
            Column::new("window_days".into(), u32s(|x| x.window_days)),
            Column::new("horizon_days".into(), u32s(|x| x.horizon_days)),
            Column::new("cohort_days".into(), vec![params.cohort_days; n]),
            Column::new("training_users".into(), u64s(|x| x.training_users)),
            Column::new("scored_users".into(), u64s(|x| x.scored_users)),
            Column::new("scored_campaigns".into(), u64s(|x| x.scored_campaigns)),
            Column::new(
                "min_campaign_users".into(),
                vec![params.min_campaign_users as u64; n],
            ),
            Column::new("campaign_mape".into(), f64s(|x| x.campaign_mape)),
            Column::new("bias".into(), f64s(|x| x.bias)),
            Column::new("normalized_gini".into(), f64s(|x| x.normalized_gini)),
            Column::new("decile_mape".into(), f64s(|x| x.decile_mape)),
            Column::new("spearman".into(), f64s(|x| x.spearman)),
            Column::new("chosen".into(), chosen),
            Column::new("run_id".into(), vec![run_id; n]),
            Column::new("evaluated_at".into(), vec![started.timestamp_millis(); n]).cast(
                &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
            )?,
        ],
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn side_by_side_keeps_the_items_order_whatever_finishes_first() {
        // Early items take longest, so the second worker finishes the later ones first.
        let items: Vec<u64> = (0..9).collect();
        let out = side_by_side(&items, 2, |&i| {
            std::thread::sleep(std::time::Duration::from_millis(40 - 4 * i));
            (i, std::thread::current().id())
        });
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), items);
        let threads: std::collections::HashSet<_> = out.iter().map(|(_, t)| *t).collect();
        assert_eq!(threads.len(), 2, "both workers took items");
        assert!(side_by_side(&[] as &[u64], 2, |&i| i).is_empty());
        assert_eq!(side_by_side(&[3u64, 1], 8, |&i| i * 2), vec![6, 2]);
    }

    fn params() -> EvaluationParams {
        EvaluationParams {
            window_days: 7,
            horizons: vec![30],
            cohort_days: 7,
            every_days: 7,
            max_cutoffs: 100,
            min_campaign_users: 50,
            hurdle: HurdleParams::default(),
            from: None,
            to: None,
        }
    }

    fn history(days: i64) -> History {
        History {
            first_install: d("2026-01-01"),
            data_end: (d("2026-01-01") + Duration::days(days - 1))
                .and_hms_opt(23, 0, 0)
                .unwrap()
                .and_utc(),
        }
    }

    #[test]
    fn cutoffs_run_back_from_the_latest_scorable_one() {
        // 100 days: 2026-01-01 .. 2026-04-10. Latest: end + 7 - 30 = 2026-03-18; earliest
        // 2026-01-01 + 31 = 2026-02-01.
        let c = history(100).cutoffs(30, &params()).unwrap();
        assert_eq!(c.first(), Some(&d("2026-03-18")));
        assert_eq!(c.last(), Some(&d("2026-02-04")));
        assert_eq!(c.len(), 7);
        let narrowed = EvaluationParams {
            from: Some(d("2026-03-01")),
            to: Some(d("2026-03-15")),
            ..params()
        };
        assert_eq!(
            history(100).cutoffs(30, &narrowed).unwrap(),
            [d("2026-03-15"), d("2026-03-08"), d("2026-03-01")]
        );
    }

    #[test]
    fn a_short_history_says_how_long_it_must_be() {
        let err = history(40).cutoffs(30, &params()).unwrap_err();
        assert!(err.contains("at least 62 days"), "{err}");
        assert!(err.contains("this one has 40 days"), "{err}");
    }

    fn score(model: ModelKind, cutoff: &str, mape: Option<f64>) -> ModelScore {
        ModelScore {
            model,
            cutoff: d(cutoff),
            window_days: 7,
            horizon_days: 30,
            training_users: 1,
            scored_users: 1,
            scored_campaigns: 1,
            campaign_mape: mape,
            bias: Some(1.0),
            normalized_gini: None,
            decile_mape: None,
            spearman: None,
        }
    }

    #[test]
    fn the_choice_compares_models_on_the_same_cutoffs() {
        let now = Utc::now();
        // BTYD wins the one cutoff it was scored on but skipped the hard one: it is not
        // compared; the hurdle beats the multiplier on both.
        let scores = [
            score(ModelKind::Hurdle, "2026-03-01", Some(0.2)),
            score(ModelKind::Hurdle, "2026-03-08", Some(0.4)),
            score(ModelKind::Multiplier, "2026-03-01", Some(0.3)),
            score(ModelKind::Multiplier, "2026-03-08", Some(0.5)),
            score(ModelKind::Btyd, "2026-03-01", Some(0.1)),
        ];
        let c = choose(&scores, "r1", now);
        let c30 = &c[&30];
        assert_eq!(c30.model, ModelKind::Hurdle);
        assert_eq!(c30.cutoffs.len(), 2);
        assert!((c30.campaign_mape[&ModelKind::Hurdle] - 0.3).abs() < 1e-12);
        assert!(!c30.campaign_mape.contains_key(&ModelKind::Btyd));

        let mut doc = ModelChoice::default();
        doc.merge(7, &c);
        assert_eq!(doc.for_window(7)[&30], ModelKind::Hurdle);
        assert!(doc.for_window(3).is_empty());
        let again: ModelChoice =
            serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(again, doc);

        let summary = summarise(&scores);
        let hurdle = summary
            .iter()
            .find(|s| s.model == ModelKind::Hurdle)
            .unwrap();
        assert_eq!(hurdle.cutoffs, 2);
        assert!((hurdle.campaign_mape.unwrap() - 0.3).abs() < 1e-12);

        let frame = model_evaluation_frame(
            &Evaluation {
                scores: scores.to_vec(),
                skipped: Vec::new(),
                summaries: summary,
                choices: c,
            },
            &params(),
            "r1",
            now,
        )
        .unwrap();
        let registry = crate::schema::Registry::embedded().unwrap();
        let table = registry.get("mart.model_evaluation").unwrap();
        table.validate(&frame, "2026-03-01").unwrap();
        let chosen = frame.column("chosen").unwrap().bool().unwrap();
        assert_eq!(chosen.sum(), Some(2));
    }
}
