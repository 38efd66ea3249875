//! Identifier pairs: every two identifiers one row of one source carries together (an
//! AppsFlyer id with an advertising id, a Mixpanel device with a user id, ...). They are the
//! edges from which the process stage builds one identity per person; keeping them per day
//! means identity never rescans months of events.

use polars::prelude::*;

/// Advertising ids that are not ids: what a device sends when tracking is limited.
pub const PLACEHOLDER_IDS: [&str; 2] = [
    "00000000-0000-0000-0000-000000000000",
    "00000000000000000000000000000000",
];

/// One kind of pair: (left kind, left column, right kind, right column).
pub type PairSpec = (&'static str, &'static str, &'static str, &'static str);

/// Pairs on AppsFlyer rows (installs and in-app events).
pub const APPSFLYER_PAIRS: [PairSpec; 2] = [
    (
        "appsflyer_id",
        "appsflyer_id",
        "advertising_id",
        "advertising_id",
    ),
    (
        "appsflyer_id",
        "appsflyer_id",
        "user_id",
        "customer_user_id",
    ),
];

/// Pairs on Mixpanel events.
pub const MIXPANEL_PAIRS: [PairSpec; 3] = [
    ("device_id", "device_id", "user_id", "user_id"),
    ("device_id", "device_id", "appsflyer_id", "appsflyer_id"),
    ("user_id", "user_id", "appsflyer_id", "appsflyer_id"),
];

/// Pairs on Mixpanel profiles.
pub const PROFILE_PAIRS: [PairSpec; 2] = [
    ("user_id", "user_id", "appsflyer_id", "appsflyer_id"),
    ("user_id", "user_id", "advertising_id", "advertising_id"),
];

fn usable(c: &str) -> Expr {
    let placeholders = Series::new("placeholders".into(), PLACEHOLDER_IDS);
    col(c)
        .is_not_null()
        .and(col(c).neq(lit("")))
        .and(col(c).is_in(lit(placeholders).implode(false), false).not())
}

/// The distinct pairs of `specs` in `lf`, with how many rows carried each, in no particular
/// order (the stage sorts a day's pairs of every source once, when it writes them).
///
/// The rows are first grouped on every id column the specs name, at once (cached, so the
/// kinds share one grouping): a day of events carries far fewer distinct combinations of its
/// ids than rows, and each kind of pair is then grouped from those combinations, their row
/// counts summed, rather than from every row again. The kinds are constants added after. Fails only when Polars
/// cannot build the union.
pub fn id_pairs(lf: LazyFrame, source: &str, specs: &[PairSpec]) -> PolarsResult<LazyFrame> {
    let mut id_columns: Vec<&str> = Vec::new();
    for (_, lc, _, rc) in specs {
        for c in [*lc, *rc] {
            if !id_columns.contains(&c) {
                id_columns.push(c);
            }
        }
    }
    let combinations = lf
        .group_by(id_columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .agg([len().cast(DataType::UInt64).alias("rows")])
        .cache();
    let parts: Vec<LazyFrame> = specs
        .iter()
        .map(|(lk, lc, rk, rc)| {
            combinations
                .clone()
                .filter(usable(lc).and(usable(rc)))
                .group_by([col(*lc).alias("left_id"), col(*rc).alias("right_id")])
                .agg([col("rows").sum()])
                .select([
                    lit(source.to_string()).alias("source"),
                    lit(*lk).alias("left_kind"),
                    col("left_id"),
                    lit(*rk).alias("right_kind"),
                    col("right_id"),
                    col("rows"),
                ])
        })
        .collect();
    concat(parts, UnionArgs::default())
}

/// Pairs found in parts (the batches of a large day), as [`id_pairs`] gives them for the
/// whole: each pair once, its rows summed.
pub fn merge_pairs(parts: Vec<LazyFrame>) -> PolarsResult<LazyFrame> {
    Ok(concat(parts, UnionArgs::default())?
        .group_by(LINK_ORDER.map(col))
        .agg([col("rows").sum()]))
}

/// A large day's pairs as its batches give them, merged ([`merge_pairs`]) whenever the
/// unmerged rows outnumber the merged ones: what is held stays within about twice the day's
/// distinct pairs, each row merged a few times on average. Keeping every batch's pairs to
/// the end held 1.9 GB a day on a day of 14 million events in batches of a million (each
/// batch repeats most of the day's people).
pub struct BatchPairs {
    parts: Vec<DataFrame>,
    merged_rows: usize,
    pending_rows: usize,
    /// Unmerged rows below which no merge happens.
    min_rows: usize,
}

impl BatchPairs {
    pub fn new(min_rows: usize) -> Self {
        Self {
            parts: Vec::new(),
            merged_rows: 0,
            pending_rows: 0,
            min_rows,
        }
    }

    /// Adds one batch's [`id_pairs`], collected.
    pub fn add(&mut self, pairs: DataFrame) -> PolarsResult<()> {
        self.pending_rows += pairs.height();
        self.parts.push(pairs);
        if self.pending_rows > self.merged_rows.max(self.min_rows) {
            let all = self.merged()?.collect()?;
            self.merged_rows = all.height();
            self.pending_rows = 0;
            self.parts.push(all);
        }
        Ok(())
    }

    /// Every pair added, each once with its rows summed.
    pub fn finish(mut self) -> PolarsResult<LazyFrame> {
        self.merged()
    }

    fn merged(&mut self) -> PolarsResult<LazyFrame> {
        merge_pairs(self.parts.drain(..).map(DataFrame::lazy).collect())
    }
}

/// The order a day's pairs are written in.
pub const LINK_ORDER: [&str; 5] = ["source", "left_kind", "left_id", "right_kind", "right_id"];

/// A day's pairs in [`LINK_ORDER`]. A day holds a handful of (source, left kind) groups, so
/// the rows are split into those groups first and each group is sorted on its ids, the
/// groups then put in order. Sorting the whole frame on all five columns compared the source
/// and the kind, equal for most pairs of rows, at every step before reaching an id: for a
/// day of 140,000 Mixpanel pairs that sort took 130-170 ms beside the other day in flight,
/// a fifth of the time cleanse spent on the day.
pub fn sort_links(links: DataFrame) -> PolarsResult<DataFrame> {
    if links.height() == 0 {
        return Ok(links);
    }
    let first = |g: &DataFrame, c: &str| -> PolarsResult<Option<String>> {
        Ok(g.column(c)?.str()?.get(0).map(str::to_string))
    };
    let mut groups = links
        .partition_by(["source", "left_kind"], true)?
        .into_iter()
        .map(|g| Ok(((first(&g, "source")?, first(&g, "left_kind")?), g)))
        .collect::<PolarsResult<Vec<_>>>()?;
    // Nulls first, as the frame's own sort puts them.
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sorted = links.clear();
    // The groups hold every row again: a large day's pairs are not kept three times over.
    drop(links);
    for (_, group) in groups {
        sorted.vstack_mut(&group.sort(&LINK_ORDER[2..], SortMultipleOptions::default())?)?;
    }
    Ok(sorted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn batch_pairs_merged_as_they_come_are_the_pairs_of_the_whole() {
        let rows = |ids: &[(&str, u64)]| {
            df!(
                "source" => vec!["raw.a"; ids.len()],
                "left_kind" => vec!["device_id"; ids.len()],
                "left_id" => ids.iter().map(|i| i.0).collect::<Vec<_>>(),
                "right_kind" => vec!["user_id"; ids.len()],
                "right_id" => vec!["u"; ids.len()],
                "rows" => ids.iter().map(|i| i.1).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let batches = [
            rows(&[("d1", 1), ("d2", 2)]),
            rows(&[("d1", 3)]),
            rows(&[("d3", 1), ("d2", 1), ("d4", 5)]),
            rows(&[("d1", 1)]),
        ];
        let mut merged = BatchPairs::new(0);
        for b in &batches {
            merged.add(b.clone()).unwrap();
        }
        let got = sort_links(merged.finish().unwrap().collect().unwrap()).unwrap();
        let all = batches.iter().map(|b| b.clone().lazy()).collect();
        let want = sort_links(merge_pairs(all).unwrap().collect().unwrap()).unwrap();
        assert!(got.equals(&want), "{got}\n{want}");
        assert_eq!(
            got.column("rows")
                .unwrap()
                .u64()
                .unwrap()
                .iter()
                .flatten()
                .collect::<Vec<_>>(),
            [5, 3, 1, 5]
        );
    }

    #[test]
    fn links_sorted_by_group_are_in_the_order_of_a_sort_on_all_five_columns() {
        // Two kinds share a left kind and interleave on the left id; two sources.
        let links = df!(
            "source" => ["raw.b", "raw.a", "raw.a", "raw.a", "raw.a", "raw.b", "raw.a"],
            "left_kind" => ["device_id", "user_id", "device_id", "device_id", "device_id", "device_id", "device_id"],
            "left_id" => ["d1", "u1", "d2", "d1", "d1", "d0", "d2"],
            "right_kind" => ["user_id", "appsflyer_id", "user_id", "user_id", "appsflyer_id", "user_id", "appsflyer_id"],
            "right_id" => ["u1", "af1", "u9", "u2", "af1", "u0", "af0"],
            "rows" => [1u64, 2, 3, 4, 5, 6, 7],
        )
        .unwrap();
        let want = links
            .sort(LINK_ORDER, SortMultipleOptions::default())
            .unwrap();
        let got = sort_links(links).unwrap();
        assert!(got.equals(&want), "{got}\n{want}");
        let rows: Vec<u64> = got
            .column("rows")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(rows, [5, 4, 7, 3, 2, 6, 1]);
        assert_eq!(sort_links(got.clear()).unwrap().height(), 0);
    }

    #[test]
    fn each_kind_of_pair_counts_the_rows_that_carry_both_usable_ids() {
        let placeholder = PLACEHOLDER_IDS[0];
        let rows = df!(
            "device_id" => [Some("d1"), Some("d1"), Some("d1"), Some("d2"), Some(""), Some("d3")],
            "user_id" => [Some("u1"), Some("u1"), None, Some("u1"), Some("u2"), Some("u3")],
            "appsflyer_id" => [Some("af1"), Some("af1"), Some("af1"), None, Some("af2"), Some(placeholder)],
        )
        .unwrap();
        let pairs = id_pairs(rows.lazy(), "raw.x", &MIXPANEL_PAIRS)
            .unwrap()
            .collect()
            .unwrap();
        let text = |c: &str| crate::test_support::strs(&pairs, c);
        let counts = pairs.column("rows").unwrap().u64().unwrap();
        let mut got: Vec<(String, String, String, String, u64)> = (0..pairs.height())
            .map(|i| {
                let t = |c: &str| text(c)[i].clone().unwrap();
                let kind = format!("{}-{}", t("left_kind"), t("right_kind"));
                (
                    kind,
                    t("left_id"),
                    t("right_id"),
                    t("source"),
                    counts.get(i).unwrap(),
                )
            })
            .collect();
        got.sort();
        let want = [
            ("device_id-appsflyer_id", "d1", "af1", 3),
            ("device_id-user_id", "d1", "u1", 2),
            ("device_id-user_id", "d2", "u1", 1),
            ("device_id-user_id", "d3", "u3", 1),
            ("user_id-appsflyer_id", "u1", "af1", 2),
            ("user_id-appsflyer_id", "u2", "af2", 1),
        ]
        .map(|(k, l, r, n)| {
            (
                k.to_string(),
                l.to_string(),
                r.to_string(),
                "raw.x".to_string(),
                n,
            )
        });
        assert_eq!(got, want);
    }
}
