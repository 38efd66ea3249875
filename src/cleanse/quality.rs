//! `clean.data_quality`: for each run, stage, source partition and rule, the rows the rule
//! saw, let through and changed. Rules are applied in a fixed order, so the counts chain:
//! one rule's `rows_out` is the next one's `rows_in`.

use chrono::NaiveDate;
use polars::prelude::*;

/// What one rule did to one source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub rule: String,
    pub removed: u64,
    pub changed: u64,
}

impl RuleCount {
    pub fn removed(rule: &str, n: u64) -> Self {
        RuleCount {
            rule: rule.to_string(),
            removed: n,
            changed: 0,
        }
    }

    pub fn changed(rule: &str, n: u64) -> Self {
        RuleCount {
            rule: rule.to_string(),
            removed: 0,
            changed: n,
        }
    }
}

/// The rule counts of a stage's run, one chain per source partition.
#[derive(Debug, Default)]
pub struct QualityLog {
    rows: Vec<QualityRow>,
}

#[derive(Debug, Clone)]
struct QualityRow {
    dt: NaiveDate,
    stage: String,
    run_id: String,
    source: String,
    rule: String,
    step: u64,
    rows_in: u64,
    rows_out: u64,
    rows_changed: u64,
}

impl QualityLog {
    /// Records the chain of `rules` over one source partition that had `rows_in` rows.
    /// `rules` lists every rule of the stage for that source in order, zero counts included,
    /// so a reader sees that a rule ran and found nothing.
    pub fn push(
        &mut self,
        dt: NaiveDate,
        stage: &str,
        run_id: &str,
        source: &str,
        rows_in: u64,
        rules: &[RuleCount],
    ) {
        let mut rows = rows_in;
        for (step, r) in rules.iter().enumerate() {
            let out = rows.saturating_sub(r.removed);
            self.rows.push(QualityRow {
                dt,
                stage: stage.to_string(),
                run_id: run_id.to_string(),
                source: source.to_string(),
                rule: r.rule.clone(),
                step: step as u64 + 1,
                rows_in: rows,
                rows_out: out,
                rows_changed: r.changed,
            });
            rows = out;
        }
    }

    /// The partitions this log holds rows for.
    pub fn days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = self.rows.iter().map(|r| r.dt).collect();
        days.sort();
        days.dedup();
        days
    }

    /// The rows of one partition as a `clean.data_quality` frame.
    pub fn frame(&self, dt: NaiveDate) -> PolarsResult<DataFrame> {
        let rows: Vec<&QualityRow> = self.rows.iter().filter(|r| r.dt == dt).collect();
        let days = (dt - NaiveDate::default()).num_days() as i32;
        let text = |f: &dyn Fn(&QualityRow) -> &str, name: &str| -> Column {
            Column::new(
                name.into(),
                rows.iter().map(|r| f(r)).collect::<Vec<&str>>(),
            )
        };
        let count = |f: &dyn Fn(&QualityRow) -> u64, name: &str| -> Column {
            Column::new(name.into(), rows.iter().map(|r| f(r)).collect::<Vec<u64>>())
        };
        DataFrame::new_infer_height(vec![
            Column::new("dt".into(), vec![days; rows.len()]).cast(&DataType::Date)?,
            text(&|r| &r.stage, "stage"),
            text(&|r| &r.run_id, "run_id"),
            text(&|r| &r.source, "source"),
            text(&|r| &r.rule, "rule"),
            count(&|r| r.step, "step"),
            count(&|r| r.rows_in, "rows_in"),
            count(&|r| r.rows_out, "rows_out"),
            count(&|r| r.rows_changed, "rows_changed"),
        ])
    }

    /// Total removed and changed rows per rule over the whole log: the run summary.
    pub fn totals(&self) -> Vec<(String, String, u64, u64)> {
        let mut out: Vec<(String, String, u64, u64)> = Vec::new();
        for r in &self.rows {
            let removed = r.rows_in - r.rows_out;
            match out
                .iter_mut()
                .find(|(s, rule, _, _)| *s == r.source && *rule == r.rule)
            {
                Some((_, _, rm, ch)) => {
                    *rm += removed;
                    *ch += r.rows_changed;
                }
                None => out.push((r.source.clone(), r.rule.clone(), removed, r.rows_changed)),
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_chain_from_rule_to_rule() {
        let mut log = QualityLog::default();
        let d = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        log.push(
            d,
            "cleanse",
            "r",
            "raw.mixpanel_export",
            100,
            &[
                RuleCount::removed("malformed", 3),
                RuleCount::removed("duplicate", 7),
                RuleCount::changed("normalise", 0),
            ],
        );
        let df = log.frame(d).unwrap();
        let col = |n: &str| -> Vec<u64> {
            df.column(n)
                .unwrap()
                .u64()
                .unwrap()
                .iter()
                .map(|v| v.unwrap())
                .collect()
        };
        assert_eq!(col("rows_in"), [100, 97, 90]);
        assert_eq!(col("rows_out"), [97, 90, 90]);
        assert_eq!(col("step"), [1, 2, 3]);
        assert_eq!(
            log.totals()[1],
            ("raw.mixpanel_export".into(), "duplicate".into(), 7, 0)
        );
    }
}
