//! The one convention every removing rule follows: a rule never drops a row, it writes why
//! the row must go into [`REJECT`] (null for a row that stays). The first rule that fires
//! names the reason, so rules chain in any order and a row is counted under exactly one rule.
//! The stage collects the marked frame once, then splits it into the clean rows and the
//! quarantined ones (see [`crate::cleanse::quarantine`]).

use polars::prelude::*;

/// Why a row is removed (`"<rule>: <detail>"`), null for a row that stays.
pub const REJECT: &str = "_reject";

/// Adds an all-null [`REJECT`] column.
pub fn with_reject(lf: LazyFrame) -> LazyFrame {
    lf.with_column(lit(NULL).cast(DataType::String).alias(REJECT))
}

/// Sets [`REJECT`] to `rule: detail` where `fires` is true and no earlier rule fired. A null
/// `fires` (a comparison with a null) does not fire.
pub fn reject_where(lf: LazyFrame, fires: Expr, rule: &str, detail: &str) -> LazyFrame {
    lf.with_column(reject_expr(fires, rule, lit(detail.to_string())))
}

/// As [`reject_where`], with the detail computed per row (e.g. naming the bad value).
pub fn reject_where_with(lf: LazyFrame, fires: Expr, rule: &str, detail: Expr) -> LazyFrame {
    lf.with_column(reject_expr(fires, rule, detail))
}

fn reject_expr(fires: Expr, rule: &str, detail: Expr) -> Expr {
    let reason = concat_str([lit(format!("{rule}: ")), detail], "", true);
    when(col(REJECT).is_null().and(fires.fill_null(lit(false))))
        .then(reason)
        .otherwise(col(REJECT))
        .alias(REJECT)
}

/// The rule part of a [`REJECT`] reason (`"duplicate"` of `"duplicate: same $insert_id"`).
pub fn rule_of(reason: Expr) -> Expr {
    reason.str().split(lit(": ")).list().first()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rule_that_fires_names_the_reason_and_nulls_never_fire() {
        let df = DataFrame::new_infer_height(vec![Column::new(
            "x".into(),
            [Some(-1i64), Some(5), None, Some(200)],
        )])
        .unwrap();
        let lf = with_reject(df.lazy());
        let lf = reject_where(lf, col("x").lt(lit(0)), "malformed", "negative x");
        let lf = reject_where_with(
            lf,
            col("x").gt(lit(-10)),
            "too big",
            col("x").cast(DataType::String),
        );
        let out = lf
            .select([col(REJECT), rule_of(col(REJECT)).alias("rule")])
            .collect()
            .unwrap();
        let reasons: Vec<Option<&str>> =
            out.column(REJECT).unwrap().str().unwrap().iter().collect();
        assert_eq!(
            reasons,
            [
                Some("malformed: negative x"),
                Some("too big: 5"),
                None,
                Some("too big: 200")
            ]
        );
        let rules: Vec<Option<&str>> = out.column("rule").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            rules,
            [Some("malformed"), Some("too big"), None, Some("too big")]
        );
    }
}
