//! Identity resolution: one person per connected component of the identifier graph.
//!
//! Nodes are identifiers (`appsflyer_id`, `advertising_id`, `user_id`, `device_id`); edges
//! are the pairs some row carried together (`clean.id_links`). Each identifier is interned
//! once to an integer node ([`graph`]) and components are found by union-find on those.
//!
//! The conflict rule: an advertising id or a Mixpanel device id that appears with more than
//! one app user id (a shared or reset device, a QA phone, a device farm) would merge people
//! who are not one. Such an identifier is a *conflict*: it is left out of the graph (so it
//! joins nobody), keeps a key of its own, is never used to fill a missing id, and is counted.
//!
//! The person's key, `user_key`, is the AppsFlyer id of their first install (earliest
//! install time, then smallest id), so it stays the same as data grows unless two known
//! people are found to be one. People AppsFlyer never saw get `<kind>:<id>` of their
//! smallest identifier, e.g. `device_id:<uuid>`.

use polars::prelude::*;

mod graph;
#[cfg(test)]
mod reference;

use graph::Graph;

/// Identifier kinds that may be claimed by several people and so can conflict.
pub const SHARED_KINDS: [&str; 2] = ["advertising_id", "device_id"];

/// The resolved identities. Neither frame has a stable row order: sort before writing or
/// comparing.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `kind`, `id`, `dt` (first seen), `user_key`, `conflict`: `clean.identities`.
    pub nodes: DataFrame,
    /// `user_key`, `known_advertising_id`, `known_user_id`: the one advertising id and app
    /// user id of each person, where exactly one is known.
    pub people: DataFrame,
    /// `user_key`, `known_advertising_id`, `known_user_id`, `install_advertising_id`: a row
    /// per row of the installs [`resolve_pairs`] was given, in their order (see
    /// `Resolved::installs_frame`), to be set beside them.
    pub installs: DataFrame,
    /// Connected components of the graph (people, conflicting identifiers each alone).
    pub components: usize,
    /// Identifiers left out by the conflict rule.
    pub conflicts: u64,
}

/// Errors: Polars failures (a frame without the columns or types identity reads).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error("reading the identifier pairs of {what}: {error}")]
    Read { what: String, error: PolarsError },
}

/// The columns of `links` identity reads: `dt`, `left_kind`, `left_id`, `right_kind`,
/// `right_id`, a row per pair as some day linked it.
///
/// A pair is linked again on every day its person is active, so the history's daily links
/// repeat each pair many times (7.1 million rows for 1.1 million identifiers in the 180-day
/// benchmark). They are not folded to a row per pair first: the graph hashes each
/// *identifier* once however many rows name it, keeps a pair as two node numbers, and takes
/// each identifier's first day as it goes ([`intern_pairs`], [`resolve_pairs`]). A Polars
/// group-by on the four string keys did the same work at several times the memory: at the
/// month's last three days (16.9 million pairs) it was the process stage's peak.
pub fn link_pairs(links: LazyFrame) -> LazyFrame {
    links.select([
        col("dt"),
        col("left_kind"),
        col("left_id"),
        col("right_kind"),
        col("right_id"),
    ])
}

/// The identifier pairs identity resolves: an interned graph (the process stage keeps the
/// settled days' between runs, see `process::pairs`) and pairs as [`link_pairs`] gives them.
#[derive(Clone)]
pub struct Edges {
    /// `kind`, `id`, `first_day`, `partners`: a row per identifier, whose number is its row,
    /// with the first day of its pairs and the identifiers it is the left of a pair with
    /// ([`intern_pairs`]).
    pub interned: DataFrame,
    /// Plans of `dt`, `left_kind`, `left_id`, `right_kind`, `right_id`: further pairs, which
    /// may repeat each other and some of `interned` (a pair counts once however often it is
    /// given, on the earliest day it is given). Several plans (a day's each) rather than one:
    /// [`resolve_pairs`] collects each only to name its identifiers and then drops it, so no
    /// two days' strings are held at once, nor any beside the whole graph's. Each plan comes
    /// with what it reads (`clean.id_links, partition dt=2026-01-28`), which a failed read names.
    pub pairs: Vec<(String, LazyFrame)>,
}

impl std::fmt::Debug for Edges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edges")
            .field("interned_identifiers", &self.interned.height())
            .field("pair_plans", &self.pairs.len())
            .finish()
    }
}

impl Edges {
    /// Pairs alone, nothing interned yet.
    pub fn from_pairs(what: &str, pairs: LazyFrame) -> PolarsResult<Self> {
        Ok(Self {
            interned: Graph::default().interned_frame()?,
            pairs: vec![(what.to_string(), pairs)],
        })
    }
}

/// `interned` (an interned graph, see [`Edges::interned`]; none to start one) with the pairs
/// of `pairs` (as [`link_pairs`] gives them) added: the identifiers already there keep their
/// numbers and first days seen (lowered by the new pairs' days), new ones are numbered after
/// them.
pub fn intern_pairs(interned: Option<&DataFrame>, pairs: LazyFrame) -> PolarsResult<DataFrame> {
    let pairs = pairs.collect()?;
    let mut graph = Graph::default();
    graph.name_pairs(&pairs)?;
    if let Some(interned) = interned {
        graph.add_interned(interned)?;
    }
    graph.add_named();
    graph.interned_frame()
}

/// Resolves identities from `edges` (every identifier pair of `clean.id_links` and the
/// profiles, see [`Edges`]) and `installs` (`appsflyer_id`, `install_time` of every install;
/// other columns are not read).
///
/// An identifier is first seen on the earliest day of its pairs and installs (an install's
/// UTC day). The work is done on the interned graph of [`graph`]; the frames are built once
/// at the end, [`Identity::installs`] row for row with `installs`. `edges` is taken: each
/// plan of its pairs is collected in turn and freed as soon as it is named.
#[tracing::instrument(level = "debug", skip_all)]
pub fn resolve_pairs(edges: Edges, installs: LazyFrame) -> Result<Identity, IdentityError> {
    let installs = installs
        .select([
            col("appsflyer_id"),
            col("install_time").cast(DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )),
        ])
        .collect()?;
    let Edges { interned, pairs } = edges;
    let mut graph = Graph::default();
    tracing::debug_span!("identity", step = "name").in_scope(|| {
        let mut rows = 0;
        for (what, plan) in pairs {
            let frame = plan
                .collect()
                .map_err(|error| IdentityError::Read { what, error })?;
            graph.name_pairs(&frame)?;
            rows += frame.height();
        }
        tracing::debug!(rows, "Identifier pairs named.");
        graph.name_installs(&installs).map_err(IdentityError::from)
    })?;
    drop(installs);
    step("interned", || graph.add_interned(&interned))?;
    step("add", || {
        graph.add_named();
        Ok(())
    })?;
    let resolved = step("components", || Ok(graph.resolve()))?;
    let people = step("people frame", || resolved.people_frame())?;
    let nodes = step("node frame", || resolved.nodes_frame(&people))?;
    let installs = step("installs frame", || {
        resolved.installs_frame(&nodes, &people)
    })?;
    Ok(Identity {
        nodes,
        people,
        installs,
        components: resolved.components(),
        conflicts: resolved.conflicts(),
    })
}

/// Runs one step of the resolution in a debug span, so `ltv -v` shows where its time goes.
fn step<T>(name: &'static str, f: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    tracing::debug_span!("identity", step = name).in_scope(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn links(rows: &[(&str, &str, &str, &str)]) -> LazyFrame {
        let n = rows.len();
        DataFrame::new_infer_height(vec![
            Column::new("dt".into(), vec![20_455i32; n])
                .cast(&DataType::Date)
                .unwrap(),
            Column::new(
                "left_kind".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "left_id".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
            Column::new(
                "right_kind".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "right_id".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
        ])
        .unwrap()
        .lazy()
    }

    fn installs(rows: &[(&str, i64)]) -> LazyFrame {
        DataFrame::new_infer_height(vec![
            Column::new(
                "appsflyer_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "install_time".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
        ])
        .unwrap()
        .lazy()
    }

    /// Identity straight from daily links, nothing interned.
    fn resolve(links: LazyFrame, installs: LazyFrame) -> Result<Identity, IdentityError> {
        resolve_pairs(Edges::from_pairs("test links", links)?, installs)
    }

    fn key_of(identity: &Identity, kind: &str, id: &str) -> String {
        let df = identity
            .nodes
            .clone()
            .lazy()
            .filter(col("kind").eq(lit(kind)).and(col("id").eq(lit(id))))
            .collect()
            .unwrap();
        df.column("user_key")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_chain_of_pairs_is_one_person_keyed_by_the_first_install() {
        // Mixpanel device d1 -> user U1 -> AppsFlyer install af2 (and an older install af1 of
        // the same person, found through the advertising id).
        let identity = resolve(
            links(&[
                ("device_id", "d1", "user_id", "U1"),
                ("user_id", "U1", "appsflyer_id", "af2"),
                ("appsflyer_id", "af2", "advertising_id", "ad1"),
                ("appsflyer_id", "af1", "advertising_id", "ad1"),
                ("device_id", "d9", "user_id", "U9"),
            ]),
            installs(&[("af1", 1_000), ("af2", 5_000)]),
        )
        .unwrap();
        for (kind, id) in [
            ("device_id", "d1"),
            ("user_id", "U1"),
            ("appsflyer_id", "af2"),
            ("advertising_id", "ad1"),
        ] {
            assert_eq!(key_of(&identity, kind, id), "af1", "{kind} {id}");
        }
        // A person AppsFlyer never saw keys on their smallest identifier.
        assert_eq!(key_of(&identity, "user_id", "U9"), "device_id:d9");
        // {d1, U1, af2, ad1, af1} and {d9, U9}.
        assert_eq!(identity.components, 2);
        assert_eq!(identity.conflicts, 0);
        let people = identity.people.clone();
        let af1 = people
            .lazy()
            .filter(col("user_key").eq(lit("af1")))
            .collect()
            .unwrap();
        assert_eq!(
            af1.column("known_user_id").unwrap().str().unwrap().get(0),
            Some("U1")
        );
        assert_eq!(
            af1.column("known_advertising_id")
                .unwrap()
                .str()
                .unwrap()
                .get(0),
            Some("ad1")
        );
    }

    #[test]
    fn a_long_chain_in_any_order_is_one_person() {
        // 200 AppsFlyer ids chained through app user ids (a_i with u_i and u_i+1), the pairs
        // listed last link first: label propagation needed a round per link; union-find
        // needs one pass.
        let ids: Vec<(String, String, String, String)> = (0..200)
            .rev()
            .map(|i| {
                (
                    "appsflyer_id".to_string(),
                    format!("a{i:03}"),
                    "user_id".to_string(),
                    format!("u{:03}", i + 1),
                )
            })
            .chain((0..200).map(|i| {
                (
                    "appsflyer_id".to_string(),
                    format!("a{i:03}"),
                    "user_id".to_string(),
                    format!("u{i:03}"),
                )
            }))
            .collect();
        let rows: Vec<(&str, &str, &str, &str)> = ids
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        let identity = resolve(links(&rows), installs(&[])).unwrap();
        assert_eq!(identity.components, 1);
        assert_eq!(identity.conflicts, 0);
        let keys = identity.nodes.column("user_key").unwrap().str().unwrap();
        assert_eq!(keys.n_unique().unwrap(), 1);
        assert_eq!(keys.get(0), Some("appsflyer_id:a000"));
    }

    #[test]
    fn one_advertising_id_on_two_users_joins_nobody_and_is_counted() {
        // A shared phone: ad1 is seen with U1 (install af1) and with U2 (install af2).
        let identity = resolve(
            links(&[
                ("appsflyer_id", "af1", "user_id", "U1"),
                ("appsflyer_id", "af1", "advertising_id", "ad1"),
                ("appsflyer_id", "af2", "user_id", "U2"),
                ("appsflyer_id", "af2", "advertising_id", "ad1"),
                ("user_id", "U1", "advertising_id", "ad1"),
                ("user_id", "U2", "advertising_id", "ad1"),
            ]),
            installs(&[("af1", 1_000), ("af2", 2_000)]),
        )
        .unwrap();
        assert_eq!(identity.conflicts, 1);
        assert_eq!(key_of(&identity, "user_id", "U1"), "af1");
        assert_eq!(key_of(&identity, "user_id", "U2"), "af2");
        assert_eq!(
            key_of(&identity, "advertising_id", "ad1"),
            "advertising_id:ad1"
        );
        // Nobody is filled with the shared id.
        let filled = identity
            .people
            .column("known_advertising_id")
            .unwrap()
            .null_count();
        assert_eq!(filled, identity.people.height());
    }

    #[test]
    fn each_install_row_gets_its_person_and_its_own_advertising_id() {
        let links = links(&[
            ("appsflyer_id", "ap1", "advertising_id", "ad1"),
            ("advertising_id", "ad1", "user_id", "us1"),
            // Two advertising ids on one install's rows: neither is the install's.
            ("appsflyer_id", "ap2", "advertising_id", "ad2"),
            ("appsflyer_id", "ap2", "advertising_id", "ad3"),
            // Only the install's own side counts: here the id is on the right.
            ("advertising_id", "ad4", "appsflyer_id", "ap4"),
        ]);
        let t = 1_762_560_000_000i64;
        let installs = df!(
            "appsflyer_id" => [Some("ap1"), Some("ap2"), Some("ap3"), None, Some("ap4"), Some("ap1")],
            "install_time" => [Some(t), None, None, Some(t), Some(t), Some(t + 1)],
        )
        .unwrap()
        .lazy()
        .with_column(col("install_time").cast(DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        )))
        .collect()
        .unwrap();
        let identity = resolve(links, installs.lazy()).unwrap();
        let column = |c: &str| crate::test_support::strs(&identity.installs, c);
        let some = |v: &str| Some(v.to_string());
        assert_eq!(
            column("user_key"),
            [
                some("ap1"),
                // An install without a time still has the person its id's pairs make.
                some("advertising_id:ad2"),
                // An id no pair or timed install names is no identifier: no person.
                None,
                None,
                some("ap4"),
                some("ap1"),
            ]
        );
        assert_eq!(
            column("known_advertising_id"),
            [some("ad1"), None, None, None, some("ad4"), some("ad1")]
        );
        assert_eq!(
            column("known_user_id"),
            [some("us1"), None, None, None, None, some("us1")]
        );
        assert_eq!(
            column("install_advertising_id"),
            [some("ad1"), None, None, None, None, some("ad1")]
        );
    }

    #[test]
    fn a_damaged_interned_graph_is_an_error_naming_the_row() {
        let interned = intern_pairs(None, links(&[("device_id", "d1", "user_id", "u1")])).unwrap();
        assert_eq!(interned.height(), 2);
        // Row 0 paired with a node that is not there.
        let partners = Series::new(
            "partners".into(),
            [
                Series::new("".into(), [7u32]),
                Series::new("".into(), Vec::<u32>::new()),
            ],
        );
        let mut damaged = interned.clone();
        damaged.with_column(partners.into()).unwrap();
        let given = Edges {
            interned: damaged,
            pairs: vec![("no links".into(), links(&[]))],
        };
        let error = resolve_pairs(given, installs(&[])).unwrap_err().to_string();
        assert!(
            error.contains("interned identifier 0 is paired with 7"),
            "{error}"
        );
    }

    /// Link rows and installs drawn at random from small pools of identifiers, so that pairs
    /// chain people together and repeat on several days, shared ids meet several users, and
    /// install times tie.
    fn random_history(seed: u64) -> (DataFrame, DataFrame) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let kinds = ["appsflyer_id", "advertising_id", "user_id", "device_id"];
        let pool = rng.random_range(5..60);
        let id = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
            let kind = kinds[rng.random_range(0..kinds.len())];
            (kind, format!("{}{}", &kind[..2], rng.random_range(0..pool)))
        };
        let n = rng.random_range(0..400);
        let (mut dt, mut lk, mut li, mut rk, mut ri) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let (a, b) = (id(&mut rng), id(&mut rng));
            dt.push(20_400 + rng.random_range(0..30));
            lk.push(a.0);
            li.push(a.1);
            rk.push(b.0);
            ri.push(b.1);
        }
        let links = DataFrame::new_infer_height(vec![
            Column::new("dt".into(), dt).cast(&DataType::Date).unwrap(),
            Column::new("left_kind".into(), lk),
            Column::new("left_id".into(), li),
            Column::new("right_kind".into(), rk),
            Column::new("right_id".into(), ri),
        ])
        .unwrap();
        let m = rng.random_range(0..pool * 2);
        let af: Vec<String> = (0..m)
            .map(|_| format!("ap{}", rng.random_range(0..pool)))
            .collect();
        // Few distinct times, some across midnight, so ties fall to the smaller id.
        let times: Vec<i64> = (0..m)
            .map(|_| 1_762_560_000_000 + rng.random_range(0..6) * 21_600_000)
            .collect();
        let installs = DataFrame::new_infer_height(vec![
            Column::new("appsflyer_id".into(), af),
            Column::new("install_time".into(), times)
                .cast(&DataType::Datetime(
                    TimeUnit::Milliseconds,
                    Some(TimeZone::UTC),
                ))
                .unwrap(),
        ])
        .unwrap();
        (links, installs)
    }

    #[test]
    fn the_graph_agrees_with_the_reference_plans_on_random_histories() {
        let mut conflicts_seen = 0;
        for seed in 0..60 {
            let (edges, installs) = random_history(seed);
            let want = reference::resolve(edges.clone(), installs.clone().lazy());
            // Once with every pair given as pairs, once with most of them interned first.
            for (how, given) in [
                (
                    "pairs",
                    Edges::from_pairs("pairs", edges.clone().lazy()).unwrap(),
                ),
                ("interned", partly_interned(&edges, seed)),
            ] {
                let got = resolve_pairs(given, installs.clone().lazy()).unwrap();
                conflicts_seen += got.conflicts;
                assert_same(&got, &want, &format!("seed {seed} ({how})"));
            }
        }
        // The draws must exercise the conflict rule, or the comparison proves less.
        assert!(conflicts_seen > 20, "{conflicts_seen}");
    }

    /// `pairs` split as a night finds them: the older ones interned in two steps (a saved
    /// graph moved forward), the later ones as pairs, with some of the older ones again (a
    /// pair seen again, a profile snapshot's pair dated back).
    fn partly_interned(pairs: &DataFrame, seed: u64) -> Edges {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed);
        let (first, second) = (
            20_400 + rng.random_range(0..15),
            20_415 + rng.random_range(0..15),
        );
        let days = |from: i32, to: i32| {
            let day = col("dt").cast(DataType::Int32);
            pairs
                .clone()
                .lazy()
                .filter(day.clone().gt_eq(lit(from)).and(day.lt(lit(to))))
        };
        let interned = intern_pairs(None, days(0, first)).unwrap();
        let interned = intern_pairs(Some(&interned), days(first, second)).unwrap();
        let again: Vec<bool> = (0..pairs.height()).map(|_| rng.random_bool(0.2)).collect();
        let again = pairs
            .filter(&BooleanChunked::new("again".into(), again))
            .unwrap();
        // Two frames, as a night gives a frame per day: an identifier of the second may be
        // named by the first already.
        Edges {
            interned,
            pairs: vec![
                ("later days".into(), days(second, i32::MAX)),
                ("again".into(), again.lazy()),
            ],
        }
    }

    fn assert_same(got: &Identity, want: &Identity, what: &str) {
        let sorted = |df: &DataFrame, by: &[&str]| {
            df.sort(by.to_vec(), SortMultipleOptions::default())
                .unwrap()
        };
        let (nodes, want_nodes) = (
            sorted(&got.nodes, &["kind", "id"]),
            sorted(&want.nodes, &["kind", "id"]),
        );
        assert!(
            nodes.equals_missing(&want_nodes),
            "{what}: nodes\n{nodes}\n{want_nodes}"
        );
        let (people, want_people) = (
            sorted(&got.people, &["user_key"]),
            sorted(&want.people, &["user_key"]),
        );
        assert!(
            people.equals_missing(&want_people),
            "{what}: people\n{people}\n{want_people}"
        );
        // Row for row with the installs given, so compared unsorted.
        assert!(
            got.installs.equals_missing(&want.installs),
            "{what}: installs\n{}\n{}",
            got.installs,
            want.installs
        );
        assert_eq!(got.components, want.components, "{what}");
        assert_eq!(got.conflicts, want.conflicts, "{what}");
    }
}
