//! Which partitions a run pulls, and in what order. Pure: no I/O, so every rule is a unit
//! test. The order is the value of the data: yesterday first (the nightly report waits for
//! it), then restatements of recent days (spend that the platforms revised), then backfill.

use chrono::{Duration, NaiveDate};

use crate::ingest::connector::Cursor;
use crate::ingest::state::StreamState;

/// What the run was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The nightly job as of `today`: new days up to yesterday, the restatement window, and
    /// any gap since the history start.
    Nightly { today: NaiveDate },
    /// An explicit range (`ltv ingest --from --to`): every day in it, pulled again if landed.
    Range {
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    },
}

impl Mode {
    pub fn today(self) -> NaiveDate {
        match self {
            Mode::Nightly { today } | Mode::Range { today, .. } => today,
        }
    }
}

/// How valuable a pull is; lower runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Yesterday's data (and today's snapshots).
    Yesterday,
    /// A recent day pulled before, pulled again because sources revise it.
    Restatement,
    /// Older days not landed yet, or an explicit range.
    Backfill,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Yesterday => "yesterday",
            Priority::Restatement => "restatement",
            Priority::Backfill => "backfill",
        }
    }
}

/// Settings of the plan that come from the pipeline config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    /// Days before yesterday that are pulled again (`analysis.restatement_days`).
    pub restatement_days: u32,
    /// The first day of data the pipeline wants (`pipeline.history_start`).
    pub history_start: Option<NaiveDate>,
}

/// The partitions of one stream to pull, in order.
pub fn partitions_to_pull(
    mode: Mode,
    cursor: Cursor,
    state: &StreamState,
    settings: PlanSettings,
) -> Vec<(NaiveDate, Priority)> {
    let today = mode.today();
    if cursor == Cursor::Snapshot {
        // A snapshot is of "now": one per day, and a rerun the same day does not pay again.
        return if state.partitions.contains_key(&today) {
            Vec::new()
        } else {
            vec![(today, Priority::Yesterday)]
        };
    }
    let yesterday = today - Duration::days(1);
    let restate_from = yesterday - Duration::days(i64::from(settings.restatement_days));
    let mut out = Vec::new();
    match mode {
        Mode::Range { from, to, .. } => {
            for day in from.iter_days().take_while(|d| *d <= to.min(yesterday)) {
                let priority = if day == yesterday {
                    Priority::Yesterday
                } else {
                    Priority::Backfill
                };
                out.push((day, priority));
            }
        }
        Mode::Nightly { .. } => {
            let first_landed = state.partitions.keys().next().copied();
            let start = match settings.history_start {
                Some(h) => h,
                None => first_landed.map_or(restate_from, |f| f.min(restate_from)),
            };
            for day in start.iter_days().take_while(|d| *d <= yesterday) {
                match state.partitions.get(&day) {
                    None if day == yesterday => out.push((day, Priority::Yesterday)),
                    None => out.push((day, Priority::Backfill)),
                    // Pulled already today: a second run the same day does not pay again.
                    Some(p) if p.pulled_at.date_naive() >= today => {}
                    Some(_) if day >= restate_from => out.push((day, Priority::Restatement)),
                    Some(_) => {}
                }
            }
        }
    }
    // Yesterday, then restatements newest first, then backfill oldest first (so the last
    // complete partition moves forward as the backfill goes).
    out.sort_by_key(|&(day, priority)| {
        let order = match priority {
            Priority::Restatement => -(day - NaiveDate::MIN).num_days(),
            _ => (day - NaiveDate::MIN).num_days(),
        };
        (priority, order)
    });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn settings(history_start: Option<&str>) -> PlanSettings {
        PlanSettings {
            restatement_days: 3,
            history_start: history_start.map(d),
        }
    }

    fn landed(days: &[&str], pulled_on: &str) -> StreamState {
        let mut s = StreamState::default();
        let at = Utc.from_utc_datetime(&d(pulled_on).and_hms_opt(3, 0, 0).unwrap());
        for day in days {
            s.landed(d(day), at, 10, 1);
        }
        s
    }

    #[test]
    fn nightly_pulls_yesterday_first_then_restatements_then_gaps() {
        let state = landed(
            &[
                "2026-03-01",
                "2026-03-02",
                "2026-03-04",
                "2026-03-05",
                "2026-03-06",
                "2026-03-07",
                "2026-03-08",
            ],
            "2026-03-09",
        );
        let mode = Mode::Nightly {
            today: d("2026-03-10"),
        };
        let plan = partitions_to_pull(
            mode,
            Cursor::ReportDay,
            &state,
            settings(Some("2026-03-01")),
        );
        assert_eq!(
            plan,
            vec![
                (d("2026-03-09"), Priority::Yesterday),
                (d("2026-03-08"), Priority::Restatement),
                (d("2026-03-07"), Priority::Restatement),
                (d("2026-03-06"), Priority::Restatement),
                (d("2026-03-03"), Priority::Backfill),
            ]
        );
    }

    #[test]
    fn a_second_run_the_same_day_pulls_nothing_again() {
        let state = landed(
            &["2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"],
            "2026-03-10",
        );
        let mode = Mode::Nightly {
            today: d("2026-03-10"),
        };
        assert!(partitions_to_pull(mode, Cursor::ReportDay, &state, settings(None)).is_empty());
        assert!(
            partitions_to_pull(
                mode,
                Cursor::Snapshot,
                &landed(&["2026-03-10"], "2026-03-10"),
                settings(None)
            )
            .is_empty()
        );
    }

    #[test]
    fn a_new_stream_without_history_start_pulls_the_restatement_window() {
        let mode = Mode::Nightly {
            today: d("2026-03-10"),
        };
        let plan = partitions_to_pull(
            mode,
            Cursor::ReportDay,
            &StreamState::default(),
            settings(None),
        );
        let days: Vec<NaiveDate> = plan.iter().map(|p| p.0).collect();
        assert_eq!(
            days,
            [
                d("2026-03-09"),
                d("2026-03-06"),
                d("2026-03-07"),
                d("2026-03-08")
            ]
        );
    }

    #[test]
    fn a_range_repulls_landed_days_but_never_today() {
        let state = landed(&["2026-03-02"], "2026-03-05");
        let mode = Mode::Range {
            from: d("2026-03-01"),
            to: d("2026-03-20"),
            today: d("2026-03-05"),
        };
        let plan = partitions_to_pull(mode, Cursor::ReportDay, &state, settings(None));
        assert_eq!(
            plan,
            vec![
                (d("2026-03-04"), Priority::Yesterday),
                (d("2026-03-01"), Priority::Backfill),
                (d("2026-03-02"), Priority::Backfill),
                (d("2026-03-03"), Priority::Backfill),
            ]
        );
        let snap = partitions_to_pull(mode, Cursor::Snapshot, &state, settings(None));
        assert_eq!(snap, vec![(d("2026-03-05"), Priority::Yesterday)]);
    }
}
