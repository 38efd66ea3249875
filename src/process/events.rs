//! `clean.events`: each day's clean Mixpanel events joined to the person and their first
//! install. Events of test people are removed (quarantined by the stage); events of fraud
//! installs stay, flagged, so later stages can leave them out of training and campaign LTV.

use std::hash::BuildHasher;

use polars::prelude::*;

use super::installs::backfill;
use crate::cleanse::reject::{reject_where_with, with_reject};

/// The columns of `clean.events` (`dt` included), in schema order, plus the reject reason.
pub const COLUMNS: [&str; 26] = [
    "dt",
    "line",
    "user_key",
    "event",
    "time",
    "report_date",
    "install_time",
    "install_date",
    "days_since_install",
    "hours_since_install",
    "revenue_micros",
    "currency",
    "reporting_currency",
    "revenue_reporting_micros",
    "channel",
    "campaign_id",
    "adset_id",
    "ad_id",
    "platform",
    "country",
    "user_id",
    "user_id_filled",
    "is_fraud",
    crate::cleanse::reject::REJECT,
    // Not a table column: whether the event was linked to a person at all.
    "_linked",
    // Not a table column: the person's row in the persons frame (see [`PersonLookup`]).
    PERSON,
];

/// The columns of `clean.mixpanel_events` the events plan does not read: Mixpanel's own ids,
/// which only cleanse's duplicate rule needs, and cleanse's reject reason.
const UNREAD: [&str; 3] = ["distinct_id", "insert_id", crate::cleanse::reject::REJECT];

/// The columns of `clean.mixpanel_events` the events plan reads.
fn event_inputs() -> Vec<Expr> {
    crate::cleanse::mixpanel::CLEAN_COLUMNS
        .into_iter()
        .filter(|c| !UNREAD.contains(c))
        .map(col)
        .collect()
}

/// The column holding each event's row in the persons frame, null when no person was found.
pub const PERSON: &str = "_person";

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The event columns that name a person, in the order they are trusted, with the node kind
/// each one holds: the Mixpanel device, else the app user id, else the AppsFlyer id.
const PERSON_IDS: [(&str, &str); 3] = [
    ("device_id", "device_id"),
    ("user_id", "user_id"),
    ("appsflyer_id", "appsflyer_id"),
];

/// Each identifier of the run's identity, by kind, to its person's row in the persons frame.
///
/// Built once per run and probed by every day. Finding the person by three Polars left joins
/// per day hashed every identifier of the identity again for each day and kind, and gathered
/// every event column through each join; a fourth join on the person's string key brought
/// the install. Here each event costs at most three hash probes, and the person's columns are
/// gathered once, by row number.
pub struct PersonLookup {
    /// `user_key`, the first install and the flags (see `process::stage::persons`).
    persons: DataFrame,
    kinds: Vec<KindIndex>,
}

/// The identifiers of one kind: the hash of each id to its position in `ids`, checked
/// against the id itself on every probe.
struct KindIndex {
    /// The event column that holds this kind.
    column: &'static str,
    ids: StringChunked,
    /// Each id's person, as a row of the persons frame.
    person: Vec<IdxSize>,
    by_hash: PlHashMap<u64, IdxSize>,
    /// Ids whose 64-bit hash an earlier id of the kind already holds: found by their text.
    collided: PlHashMap<Box<str>, IdxSize>,
    hasher: PlRandomState,
}

impl KindIndex {
    fn new(
        column: &'static str,
        ids: StringChunked,
        users: &StringChunked,
        row_of: &PlHashMap<&str, IdxSize>,
    ) -> PolarsResult<Self> {
        let ids = ids.rechunk().into_owned();
        let hasher = PlRandomState::default();
        let mut by_hash = PlHashMap::with_capacity_and_hasher(ids.len(), PlRandomState::default());
        let mut collided = PlHashMap::default();
        let mut person = Vec::with_capacity(ids.len());
        let mut orphans = 0usize;
        for (at, (id, user)) in ids.iter().zip(users.iter()).enumerate() {
            let row = user.and_then(|u| row_of.get(u).copied());
            // Positions without a person are never put in the tables, so never read.
            person.push(row.unwrap_or(IdxSize::MAX));
            let (Some(id), Some(_)) = (id, row) else {
                orphans += usize::from(id.is_some());
                continue;
            };
            let at = at as IdxSize;
            let hash = hasher.hash_one(id);
            match by_hash.get(&hash) {
                None => {
                    by_hash.insert(hash, at);
                }
                Some(&first) if ids.get(first as usize) != Some(id) => {
                    collided.entry(id.into()).or_insert(at);
                }
                Some(_) => {}
            }
        }
        if orphans > 0 {
            polars_bail!(ComputeError: "{orphans} {column} identifiers name a person missing from the persons frame");
        }
        Ok(Self {
            column,
            ids,
            person,
            by_hash,
            collided,
            hasher,
        })
    }

    fn find(&self, id: &str) -> Option<IdxSize> {
        let at = *self.by_hash.get(&self.hasher.hash_one(id))?;
        if self.ids.get(at as usize) == Some(id) {
            return Some(self.person[at as usize]);
        }
        let at = *self.collided.get(id)?;
        Some(self.person[at as usize])
    }
}

impl PersonLookup {
    /// `nodes`: `kind`, `id`, `user_key` (the identity's, or the part a run's events meet);
    /// `persons`: one row per person, keyed by `user_key`. Fails when an identifier names a
    /// person `persons` does not hold (the stage builds both from one identity).
    ///
    /// Takes `nodes` so that what the index does not keep (every column but the ids) is freed
    /// while it is built: at a month's tens of millions of identifiers those are gigabytes.
    pub fn new(nodes: DataFrame, mut persons: DataFrame) -> PolarsResult<Self> {
        // One chunk per column: Polars gathers text from a column of several chunks value by
        // value, copying each string, and every day gathers from these.
        persons.rechunk_mut_par();
        let keys = persons.column("user_key")?.str()?;
        let mut row_of: PlHashMap<&str, IdxSize> =
            PlHashMap::with_capacity_and_hasher(keys.len(), PlRandomState::default());
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                row_of.entry(key).or_insert(row as IdxSize);
            }
        }
        let kind = nodes.column("kind")?.str()?.clone();
        // A shadowing `let` would keep the whole frame alive to the end of the function.
        let ids = nodes.select(["id", "user_key"])?;
        drop(nodes);
        let mut kinds = Vec::with_capacity(PERSON_IDS.len());
        for (column, name) in PERSON_IDS {
            let of_kind = ids.filter(&kind.equal(name))?;
            kinds.push(KindIndex::new(
                column,
                of_kind.column("id")?.str()?.clone(),
                of_kind.column("user_key")?.str()?,
                &row_of,
            )?);
        }
        drop(row_of);
        Ok(Self { persons, kinds })
    }

    /// Each event's person row (`PERSON`), by the first of its identifiers that is known.
    fn rows(&self, events: &DataFrame) -> PolarsResult<IdxCa> {
        let columns = self
            .kinds
            .iter()
            .map(|k| Ok(events.column(k.column)?.str()?.rechunk().into_owned()))
            .collect::<PolarsResult<Vec<StringChunked>>>()?;
        let mut rows: Vec<Option<IdxSize>> = vec![None; events.height()];
        for (kind, ids) in self.kinds.iter().zip(&columns) {
            for (row, id) in rows.iter_mut().zip(ids.iter()) {
                if row.is_none() {
                    *row = id.and_then(|id| kind.find(id));
                }
            }
        }
        Ok(IdxCa::from_iter_options(PERSON.into(), rows.into_iter()))
    }
}

/// The person of each event and their columns from the persons frame (`user_key`, the
/// first install, flags, `known_user_id`), plus [`PERSON`]; events keep their order.
pub fn attach_person(events: DataFrame, lookup: &PersonLookup) -> PolarsResult<DataFrame> {
    let rows = lookup.rows(&events)?;
    let mut found = lookup.persons.take(&rows)?;
    found.with_column(rows.into_column())?;
    events.hstack(found.columns())
}

/// Time since install, the app user id filled from the person, and the flags.
pub fn attach_install(events: LazyFrame) -> LazyFrame {
    let since_ms = col("time").cast(DataType::Int64) - col("install_time").cast(DataType::Int64);
    let [user_id_filled, user_id] = backfill("user_id", "known_user_id");
    events.with_columns([
        since_ms
            .clone()
            .floor_div(lit(DAY_MS))
            .cast(DataType::Int32)
            .alias("days_since_install"),
        since_ms
            .floor_div(lit(HOUR_MS))
            .cast(DataType::Int32)
            .alias("hours_since_install"),
        user_id_filled,
        user_id,
        col("is_fraud").fill_null(lit(false)).alias("is_fraud"),
        col(PERSON).is_not_null().alias("_linked"),
    ])
}

/// Events of test people go: they are not the app's users.
pub fn reject_test_people(events: LazyFrame) -> LazyFrame {
    reject_where_with(
        with_reject(events),
        col("test_reason").is_not_null(),
        "test data",
        col("test_reason"),
    )
}

/// The whole plan for one day of `clean.mixpanel_events` (`events`), in its order (`line`):
/// the day is read once, its people found by [`PersonLookup`], and the rest is one lazy plan
/// on the joined frame.
pub fn events_plan(events: LazyFrame, lookup: &PersonLookup) -> PolarsResult<LazyFrame> {
    let events = events.select(event_inputs()).collect()?;
    let lf = attach_person(events, lookup)?.lazy();
    Ok(reject_test_people(attach_install(lf)).select(COLUMNS.map(col)))
}

/// [`events_plan`] collected after every step (and every column read): the eager comparison
/// of the benchmark.
pub fn events_plan_eager(events: LazyFrame, lookup: &PersonLookup) -> PolarsResult<DataFrame> {
    let df = events.collect()?;
    let df = attach_person(df, lookup)?;
    let df = attach_install(df.lazy()).collect()?;
    let df = reject_test_people(df.lazy()).collect()?;
    df.lazy().select(COLUMNS.map(col)).collect()
}

/// Each person's first event at or after their first install, from joined events (which
/// carry [`PERSON`], `user_key`, `time`, `install_time`). Only people with an install have an
/// install time, so only they are kept: the no-activity rule judges installs. Grouped on the
/// person's row number rather than the string key.
pub fn first_activity(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col("time")
                .cast(DataType::Int64)
                .gt_eq(col("install_time").cast(DataType::Int64)),
        )
        .group_by([col(PERSON)])
        .agg([
            col("user_key").first(),
            col("time").min().alias("first_activity"),
        ])
        .select([col("user_key"), col("first_activity")])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nodes() -> DataFrame {
        df!(
            "kind" => ["device_id", "user_id", "appsflyer_id", "device_id", "appsflyer_id"],
            "id" => ["d1", "u1", "af1", "d2", "af2"],
            "user_key" => ["af1", "af1", "af1", "af2", "af2"],
        )
        .unwrap()
    }

    /// Two people: `af1` installed (not a test user), `af2` known only from events.
    fn persons() -> DataFrame {
        df!(
            "user_key" => ["af2", "af1"],
            "known_user_id" => [None, Some("u1")],
            "install_time" => [None, Some(1_000i64)],
            "test_reason" => [Some("qa account"), None],
        )
        .unwrap()
    }

    fn keys(df: &DataFrame) -> Vec<Option<String>> {
        crate::test_support::strs(df, "user_key")
    }

    #[test]
    fn each_event_finds_its_person_by_device_then_user_then_install() {
        let lookup = PersonLookup::new(nodes(), persons()).unwrap();
        let events = df!(
            "line" => [0u64, 1, 2, 3, 4],
            // The device wins over a user id of someone else.
            "device_id" => [Some("d2"), None, None, Some("unknown"), None],
            "user_id" => [Some("u1"), Some("u1"), None, None, Some("u9")],
            "appsflyer_id" => [None, Some("af2"), Some("af2"), Some("af1"), None],
        )
        .unwrap();
        let joined = attach_person(events, &lookup).unwrap();
        assert_eq!(
            keys(&joined),
            [Some("af2"), Some("af1"), Some("af2"), Some("af1"), None].map(|k| k.map(String::from))
        );
        let rows: Vec<Option<IdxSize>> = joined
            .column(PERSON)
            .unwrap()
            .idx()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(rows, [Some(0), Some(1), Some(0), Some(1), None]);
        // The person's columns come along; the events keep their order.
        let known = crate::test_support::strs(&joined, "known_user_id");
        assert_eq!(known[1].as_deref(), Some("u1"));
        let lines: Vec<Option<u64>> = joined
            .column("line")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(lines, [0, 1, 2, 3, 4].map(Some));
    }

    #[test]
    fn an_identifier_whose_person_is_missing_is_an_error_not_a_lost_link() {
        let persons = persons().slice(1, 1);
        let err = PersonLookup::new(nodes(), persons)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("device_id identifiers name a person missing"),
            "{err}"
        );
    }

    #[test]
    fn an_id_whose_hash_another_id_holds_is_found_by_its_text() {
        let ids = StringChunked::new("id".into(), ["a", "b"]);
        let users = StringChunked::new("user_key".into(), ["p0", "p1"]);
        let row_of: PlHashMap<&str, IdxSize> = [("p0", 0), ("p1", 1)].into_iter().collect();
        let mut kind = KindIndex::new("device_id", ids, &users, &row_of).unwrap();
        // Make "b" collide with "a": its hash now points at "a"'s position.
        let hash_b = kind.hasher.hash_one("b");
        kind.by_hash.insert(hash_b, 0);
        assert_eq!(kind.find("b"), None);
        kind.collided.insert("b".into(), 1);
        assert_eq!(kind.find("b"), Some(1));
        assert_eq!(kind.find("a"), Some(0));
        assert_eq!(kind.find("c"), None);
    }
}
