//! Event names never seen before. The stage keeps every name's first day in the lake's state
//! (`_state/process/event_names.json`), so telling new names from old ones never rescans old
//! events, and a rerun of a range finds the same new names (a name is new in the range that
//! holds its first day).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// State key of the event-name registry.
pub const STATE_KEY: &str = "process/event_names";

/// First day each event name was seen.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventNames {
    pub first_seen: BTreeMap<String, NaiveDate>,
}

impl EventNames {
    /// Records `name` seen on `day`; keeps the earliest day.
    pub fn saw(&mut self, name: &str, day: NaiveDate) {
        self.first_seen
            .entry(name.to_string())
            .and_modify(|d| *d = (*d).min(day))
            .or_insert(day);
    }

    /// The closest name first seen before `before` (edit distance), for a new name.
    pub fn suggest(&self, name: &str, before: NaiveDate) -> Option<(&str, usize)> {
        self.first_seen
            .iter()
            .filter(|(n, d)| **d < before && n.as_str() != name)
            .map(|(n, _)| (n.as_str(), edit_distance(name, n)))
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)))
    }
}

/// Levenshtein distance over characters, case-insensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_event_suggests_the_known_one() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut names = EventNames::default();
        names.saw("purchase", d("2026-01-01"));
        names.saw("app_open", d("2026-01-01"));
        names.saw("purchse", d("2026-02-01"));
        names.saw("purchase", d("2026-03-01"));
        assert_eq!(names.first_seen["purchase"], d("2026-01-01"));
        assert_eq!(
            names.suggest("purchse", d("2026-02-01")),
            Some(("purchase", 1))
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
