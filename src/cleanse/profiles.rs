//! Mixpanel profiles: the day's snapshot reduced to what identity and the test-user rules
//! need.

use polars::prelude::*;

use super::test_data::{TEST_REASON, test_profiles};
use crate::config::TestUserRules;

/// The columns of `clean.profiles` (`dt` included), in schema order.
pub const CLEAN_COLUMNS: [&str; 6] = [
    "dt",
    "distinct_id",
    "user_id",
    "appsflyer_id",
    "advertising_id",
    "test_reason",
];

/// One raw Engage snapshot as `clean.profiles`: each profile with its test reason (null for
/// real users).
pub fn clean_profiles(raw: LazyFrame, rules: &TestUserRules) -> LazyFrame {
    let tests = test_profiles(raw.clone(), rules).select([
        col("distinct_id").alias("_test_distinct_id"),
        col(TEST_REASON).alias("test_reason"),
    ]);
    raw.unique(Some(cols(["distinct_id"])), UniqueKeepStrategy::Last)
        .join(
            tests,
            [col("distinct_id")],
            [col("_test_distinct_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("adid").alias("advertising_id"))
        .select(CLEAN_COLUMNS.map(col))
        .sort(["distinct_id"], SortMultipleOptions::default())
}
