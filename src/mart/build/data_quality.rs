//! `mart.data_quality`: the clean layer's rule counts, for people.

use polars::prelude::*;

/// `clean.data_quality` with `rows_removed`, without the run bookkeeping (the partition's
/// last run is the one its rows describe).
pub fn data_quality(clean: LazyFrame) -> LazyFrame {
    clean
        .select([
            col("dt"),
            col("stage"),
            col("source"),
            col("rule"),
            col("step"),
            col("rows_in"),
            col("rows_out"),
            when(col("rows_in").gt_eq(col("rows_out")))
                .then(col("rows_in") - col("rows_out"))
                .otherwise(lit(0u64))
                .alias("rows_removed"),
            col("rows_changed"),
        ])
        .sort(
            ["dt", "stage", "source", "step"],
            SortMultipleOptions::default(),
        )
}
