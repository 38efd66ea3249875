//! The resolution as it was written before [`super::graph`]: lazy Polars plans keyed on
//! (kind, id) strings. Slow at scale (see the graph module's docs) but plain to read, so the
//! tests keep it as the reference the graph must agree with on every frame it returns.

#![allow(clippy::unwrap_used)]

use polars::prelude::*;

use super::{Identity, SHARED_KINDS};

/// A left join that keeps the left rows where they are (every right side here has one row
/// per key).
fn in_place() -> JoinArgs {
    JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    }
}

/// Every pair of `links` once, with the first day it was seen: the fold the plans below
/// expect (the graph takes the rows as they are).
fn fold_links(links: LazyFrame) -> LazyFrame {
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

/// The whole resolution, as `resolve_pairs` defines it, of `links` (a row per pair as some
/// day linked it, pairs repeated).
pub(super) fn resolve(links: DataFrame, installs: LazyFrame) -> Identity {
    let edges = fold_links(links.lazy()).collect().unwrap();
    let conflicts = conflicting_ids(edges.clone().lazy()).collect().unwrap();
    let installs = installs
        .select([col("appsflyer_id"), col("install_time")])
        .collect()
        .unwrap();
    let nodes = node_table(
        edges.clone().lazy(),
        installs.clone().lazy(),
        conflicts.clone().lazy(),
    )
    .collect()
    .unwrap();
    let edges_for_installs = edges.clone().lazy();
    let pairs = index_edges(edges.lazy(), nodes.clone().lazy())
        .collect()
        .unwrap();
    let (labels, people_found) = components(nodes, &pairs);
    let nodes = with_user_keys(labels.lazy(), installs.clone().lazy())
        .collect()
        .unwrap();
    let people = known_ids(nodes.clone().lazy()).collect().unwrap();
    let conflicts = conflicts.height() as u64;
    let installs = install_people(
        installs.lazy(),
        nodes.clone().lazy(),
        people.clone().lazy(),
        edges_for_installs,
    )
    .collect()
    .unwrap();
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
        .collect()
        .unwrap();
    Identity {
        nodes,
        people,
        installs,
        components: people_found,
        conflicts,
    }
}

/// Shared identifiers seen with more than one app user id: `kind`, `id`.
fn conflicting_ids(edges: LazyFrame) -> LazyFrame {
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
fn components(nodes: DataFrame, pairs: &DataFrame) -> (DataFrame, usize) {
    let node = nodes.column("node").unwrap().idx().unwrap();
    let n = node.len();
    let mut parent: Vec<IdxSize> = (0..n).map(|i| i as IdxSize).collect();
    let a = pairs.column("a").unwrap().idx().unwrap();
    let b = pairs.column("b").unwrap().idx().unwrap();
    for (a, b) in a.iter().zip(b.iter()) {
        let (Some(a), Some(b)) = (a, b) else { continue };
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        match ra.cmp(&rb) {
            std::cmp::Ordering::Less => parent[rb as usize] = ra,
            std::cmp::Ordering::Greater => parent[ra as usize] = rb,
            std::cmp::Ordering::Equal => {}
        }
    }
    let mut labels = Vec::with_capacity(n);
    for v in node.iter() {
        labels.push(root(&mut parent, v.unwrap()));
    }
    let count = (0..n).filter(|&i| parent[i] as usize == i).count();
    let mut nodes = nodes;
    nodes
        .with_column(IdxCa::from_vec("label".into(), labels).into_column())
        .unwrap();
    (nodes, count)
}

/// The root of `v`'s tree, halving the path on the way; `None` when `v` is not a node.
fn root(parent: &mut [IdxSize], mut v: IdxSize) -> IdxSize {
    loop {
        let p = parent[v as usize];
        if p == v {
            return v;
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

/// Each install row's person and the advertising id its own pairs name, by joins on the
/// identifier strings (as the installs were attached before the graph did it): `user_key`,
/// `known_advertising_id`, `known_user_id`, `install_advertising_id`, row for row.
fn install_people(
    installs: LazyFrame,
    nodes: LazyFrame,
    people: LazyFrame,
    edges: LazyFrame,
) -> LazyFrame {
    let by_install = nodes
        .filter(col("kind").eq(lit("appsflyer_id")))
        .select([col("id").alias("_af"), col("user_key")]);
    let install_adids = edges
        .filter(
            col("left_kind")
                .eq(lit("appsflyer_id"))
                .and(col("right_kind").eq(lit("advertising_id"))),
        )
        .group_by([col("left_id")])
        .agg([
            col("right_id").n_unique().alias("_n"),
            col("right_id").min().alias("install_advertising_id"),
        ])
        .filter(col("_n").eq(lit(1)))
        .select([
            col("left_id").alias("appsflyer_id"),
            col("install_advertising_id"),
        ]);
    installs
        .join(by_install, [col("appsflyer_id")], [col("_af")], in_place())
        .join(people, [col("user_key")], [col("user_key")], in_place())
        .join(
            install_adids,
            [col("appsflyer_id")],
            [col("appsflyer_id")],
            in_place(),
        )
        .select(
            [
                "user_key",
                "known_advertising_id",
                "known_user_id",
                "install_advertising_id",
            ]
            .map(col),
        )
}
