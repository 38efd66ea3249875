//! Identity resolution: one person per connected component of the identifier graph.
//!
//! Nodes are identifiers (`appsflyer_id`, `advertising_id`, `user_id`, `device_id`); edges
//! are the pairs some row carried together (`clean.id_links`). Components are found by
//! union-find on integer node ids; each takes the smallest node id in it as its label.
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

/// Identifier kinds that may be claimed by several people and so can conflict.
pub const SHARED_KINDS: [&str; 2] = ["advertising_id", "device_id"];

/// The resolved identities.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `kind`, `id`, `dt` (first seen), `user_key`, `conflict`: `clean.identities`.
    pub nodes: DataFrame,
    /// `user_key`, `known_advertising_id`, `known_user_id`: the one advertising id and app
    /// user id of each person, where exactly one is known.
    pub people: DataFrame,
    /// Connected components of the graph (people, conflicting identifiers each alone).
    pub components: usize,
    /// Identifiers left out by the conflict rule.
    pub conflicts: u64,
}

/// Errors: Polars failures, or an edge naming a node the node table does not hold.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error("identity resolution: an edge names node {0}, which is not in the node table")]
    NodeOutOfRange(IdxSize),
}

/// Every identifier pair of `links` once, with the first day it was seen: `dt`, `left_kind`,
/// `left_id`, `right_kind`, `right_id`.
///
/// A pair is linked again on every day its person is active, so the history's daily links
/// repeat each pair many times (7.1 million rows for 1.1 million identifiers in the 180-day
/// benchmark). Every rule of the resolution needs a pair once, with the first day it was
/// seen: folding first keeps its string-keyed joins and sorts growing with the people rather
/// than the days.
pub fn fold_links(links: LazyFrame) -> LazyFrame {
    links
        .group_by([
            col("left_kind"),
            col("left_id"),
            col("right_kind"),
            col("right_id"),
        ])
        .agg([col("dt").min()])
        .select([
            col("dt"),
            col("left_kind"),
            col("left_id"),
            col("right_kind"),
            col("right_id"),
        ])
}

/// Resolves identities from `edges`, every identifier pair once as [`fold_links`] folds the
/// columns of `clean.id_links` (the process stage keeps the history's fold between runs, see
/// `process::pairs`), and `installs` (`appsflyer_id`, `install_time` of every install).
#[tracing::instrument(level = "debug", skip_all)]
pub fn resolve_pairs(edges: DataFrame, installs: LazyFrame) -> Result<Identity, IdentityError> {
    let conflicts = step("conflicts", || {
        conflicting_ids(edges.clone().lazy()).collect()
    })?;
    let installs = installs
        .select([col("appsflyer_id"), col("install_time")])
        .collect()?;
    let nodes = step("node table", || {
        node_table(
            edges.clone().lazy(),
            installs.clone().lazy(),
            conflicts.clone().lazy(),
        )
        .collect()
    })?;
    let pairs = step("index edges", || {
        index_edges(edges.lazy(), nodes.clone().lazy()).collect()
    })?;
    let (labels, people_found) = components(nodes, &pairs)?;
    let nodes = step("user keys", || {
        with_user_keys(labels.lazy(), installs.lazy()).collect()
    })?;
    let people = step("known ids", || known_ids(nodes.clone().lazy()).collect())?;
    let conflicts = conflicts.height() as u64;
    let nodes = nodes
        .lazy()
        .select([
            col("dt"),
            col("kind"),
            col("id"),
            col("user_key"),
            col("conflict"),
        ])
        .sort(["kind", "id"], SortMultipleOptions::default())
        .collect()?;
    Ok(Identity {
        nodes,
        people,
        components: people_found,
        conflicts,
    })
}

/// Runs one collect of the resolution in a debug span, so `ltv -v` shows where its time goes.
fn step<T>(name: &'static str, f: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    tracing::debug_span!("identity", step = name).in_scope(f)
}

/// Shared identifiers seen with more than one app user id: `kind`, `id`.
pub fn conflicting_ids(edges: LazyFrame) -> LazyFrame {
    let shared = Series::new("shared".into(), SHARED_KINDS);
    let one_way = edges.clone().select([
        col("left_kind").alias("kind"),
        col("left_id").alias("id"),
        col("right_kind").alias("other_kind"),
        col("right_id").alias("other_id"),
    ]);
    let other_way = edges.select([
        col("right_kind").alias("kind"),
        col("right_id").alias("id"),
        col("left_kind").alias("other_kind"),
        col("left_id").alias("other_id"),
    ]);
    concat([one_way, other_way], UnionArgs::default())
        .unwrap_or_else(|_| DataFrame::empty().lazy())
        .filter(
            col("kind")
                .is_in(lit(shared).implode(false), false)
                .and(col("other_kind").eq(lit("user_id"))),
        )
        .group_by([col("kind"), col("id")])
        .agg([col("other_id").n_unique().alias("users")])
        .filter(col("users").gt(lit(1)))
        .select([col("kind"), col("id")])
}

/// Every identifier once, with the first day it was seen, whether it conflicts, and an
/// integer `node`. The numbering may differ between runs (it follows the group-by's order):
/// nothing downstream depends on it, since a component's key is chosen from its members'
/// installs and ids, never from node numbers, and the output is sorted by kind and id.
fn node_table(edges: LazyFrame, installs: LazyFrame, conflicts: LazyFrame) -> LazyFrame {
    let left = edges.clone().select([
        col("left_kind").alias("kind"),
        col("left_id").alias("id"),
        col("dt"),
    ]);
    let right = edges.select([
        col("right_kind").alias("kind"),
        col("right_id").alias("id"),
        col("dt"),
    ]);
    let installed = installs.select([
        lit("appsflyer_id").alias("kind"),
        col("appsflyer_id").alias("id"),
        col("install_time").dt().date().alias("dt"),
    ]);
    let flagged = conflicts.with_column(lit(true).alias("conflict"));
    concat([left, right, installed], UnionArgs::default())
        .unwrap_or_else(|_| DataFrame::empty().lazy())
        .group_by([col("kind"), col("id")])
        .agg([col("dt").min()])
        .join(
            flagged,
            [col("kind"), col("id")],
            [col("kind"), col("id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("conflict").fill_null(lit(false)))
        .with_row_index("node", None)
}

/// Edges as node pairs, without conflicting nodes.
fn index_edges(edges: LazyFrame, nodes: LazyFrame) -> LazyFrame {
    let usable = nodes
        .filter(col("conflict").not())
        .select([col("kind"), col("id"), col("node")]);
    edges
        .join(
            usable.clone(),
            [col("left_kind"), col("left_id")],
            [col("kind"), col("id")],
            JoinArgs::new(JoinType::Inner),
        )
        .rename(["node"], ["a"], true)
        .join(
            usable,
            [col("right_kind"), col("right_id")],
            [col("kind"), col("id")],
            JoinArgs::new(JoinType::Inner),
        )
        .rename(["node"], ["b"], true)
        .select([col("a"), col("b")])
}

/// Connected components by union-find: `nodes` gains `label`, the smallest node of its
/// component. Roots are always the smaller node, so the label does not depend on the order
/// of the pairs, and the whole graph is one pass over the edges (a join per round of label
/// propagation over a million identifiers cost seconds; this costs milliseconds).
fn components(nodes: DataFrame, pairs: &DataFrame) -> Result<(DataFrame, usize), IdentityError> {
    let node = nodes.column("node")?.idx()?;
    let n = node.len();
    let mut parent: Vec<IdxSize> = (0..n).map(|i| i as IdxSize).collect();
    let a = pairs.column("a")?.idx()?;
    let b = pairs.column("b")?.idx()?;
    for (a, b) in a.iter().zip(b.iter()) {
        let (Some(a), Some(b)) = (a, b) else { continue };
        let (ra, rb) = (
            root(&mut parent, a).ok_or(IdentityError::NodeOutOfRange(a))?,
            root(&mut parent, b).ok_or(IdentityError::NodeOutOfRange(b))?,
        );
        match ra.cmp(&rb) {
            std::cmp::Ordering::Less => parent[rb as usize] = ra,
            std::cmp::Ordering::Greater => parent[ra as usize] = rb,
            std::cmp::Ordering::Equal => {}
        }
    }
    let mut labels = Vec::with_capacity(n);
    for v in node.iter() {
        let v = v.ok_or(IdentityError::NodeOutOfRange(IdxSize::MAX))?;
        labels.push(root(&mut parent, v).ok_or(IdentityError::NodeOutOfRange(v))?);
    }
    let count = (0..n).filter(|&i| parent[i] as usize == i).count();
    let mut nodes = nodes;
    nodes.with_column(IdxCa::from_vec("label".into(), labels).into_column())?;
    Ok((nodes, count))
}

/// The root of `v`'s tree, halving the path on the way; `None` when `v` is not a node.
fn root(parent: &mut [IdxSize], mut v: IdxSize) -> Option<IdxSize> {
    loop {
        let p = *parent.get(v as usize)?;
        if p == v {
            return Some(v);
        }
        let grand = parent[p as usize];
        parent[v as usize] = grand;
        v = grand;
    }
}

/// The person's key per component: the AppsFlyer id of the first install, else the smallest
/// `kind:id`.
fn with_user_keys(labels: LazyFrame, installs: LazyFrame) -> LazyFrame {
    let first_install = labels
        .clone()
        .filter(col("kind").eq(lit("appsflyer_id")))
        .join(
            installs,
            [col("id")],
            [col("appsflyer_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .sort(["install_time", "id"], SortMultipleOptions::default())
        .group_by([col("label")])
        .agg([col("id").first().alias("install_key")]);
    let fallback = labels
        .clone()
        .select([
            col("label"),
            concat_str([col("kind"), col("id")], ":", true).alias("node_key"),
        ])
        .group_by([col("label")])
        .agg([col("node_key").min().alias("fallback_key")]);
    labels
        .join(
            first_install,
            [col("label")],
            [col("label")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            fallback,
            [col("label")],
            [col("label")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(coalesce(&[col("install_key"), col("fallback_key")]).alias("user_key"))
        .drop(cols(["install_key", "fallback_key"]))
}

/// Per person, the advertising id and app user id where exactly one (non-conflicting) is
/// known: the values that fill rows missing them.
fn known_ids(nodes: LazyFrame) -> LazyFrame {
    let one = |kind: &str, name: &str| {
        nodes
            .clone()
            .filter(
                col("kind")
                    .eq(lit(kind.to_string()))
                    .and(col("conflict").not()),
            )
            .group_by([col("user_key")])
            .agg([col("id").n_unique().alias("n"), col("id").min().alias(name)])
            .filter(col("n").eq(lit(1)))
            .select([col("user_key"), col(name)])
    };
    nodes
        .clone()
        .select([col("user_key")])
        .unique(None, UniqueKeepStrategy::Any)
        .join(
            one("advertising_id", "known_advertising_id"),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            one("user_id", "known_user_id"),
            [col("user_key")],
            [col("user_key")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["user_key"], SortMultipleOptions::default())
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

    /// Identity straight from daily links, as the stage gets it through the saved fold.
    fn resolve(links: LazyFrame, installs: LazyFrame) -> Result<Identity, IdentityError> {
        resolve_pairs(fold_links(links).collect()?, installs)
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
}
