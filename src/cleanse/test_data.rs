//! Test data: the team's QA devices and accounts, internal builds and test campaigns. Each
//! rule adds a reason column (null for real data) instead of dropping rows, so the stage can
//! count and quarantine what it removes and say why.

use polars::prelude::*;

use crate::config::{Pattern, TestUserRules};

/// The column the rules fill: why the row is test data, null when it is not.
pub const TEST_REASON: &str = "_test_reason";

/// One regex alternation of several patterns (`(?:a)|(?:b)`), for one `str.contains`.
fn any_of(patterns: &[Pattern]) -> Option<String> {
    if patterns.is_empty() {
        return None;
    }
    Some(
        patterns
            .iter()
            .map(|p| format!("(?:{})", p.as_str()))
            .collect::<Vec<_>>()
            .join("|"),
    )
}

/// Mixpanel profiles of test users: a name matching a pattern, or an e-mail at a staff
/// domain. Returns `distinct_id` and the reason, one row per test profile.
pub fn test_profiles(profiles: LazyFrame, rules: &TestUserRules) -> LazyFrame {
    let mut reason = lit(NULL).cast(DataType::String);
    if !rules.email_domains.is_empty() {
        let domains: Vec<String> = rules
            .email_domains
            .iter()
            .map(|d| d.to_lowercase())
            .collect();
        let domain = col("email")
            .str()
            .to_lowercase()
            .str()
            .split(lit("@"))
            .list()
            .last();
        let listed = Series::new("domains".into(), domains);
        reason = when(domain.is_in(lit(listed).implode(false), false))
            .then(lit("staff e-mail domain"))
            .otherwise(reason);
    }
    if let Some(names) = any_of(&rules.name_patterns) {
        reason = when(col("name").str().contains(lit(names), true))
            .then(lit("test account name"))
            .otherwise(reason);
    }
    profiles
        .select([col("distinct_id"), reason.alias(TEST_REASON)])
        .filter(col(TEST_REASON).is_not_null())
        .unique(None, UniqueKeepStrategy::First)
}

/// Marks events of test users (by `distinct_id`) and of devices on the hand-kept test list
/// (by `device_id`); `test_devices` has a column `advertising_id`.
pub fn mark_test_events(
    events: LazyFrame,
    test_users: LazyFrame,
    test_devices: LazyFrame,
) -> LazyFrame {
    let devices = test_devices
        .select([col("advertising_id").alias("_test_device")])
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit("test device list").alias("_device_reason"));
    let users = test_users.select([
        col("distinct_id").alias("_test_user"),
        col(TEST_REASON).alias("_user_reason"),
    ]);
    events
        .join(
            users,
            [col("distinct_id")],
            [col("_test_user")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            devices,
            [col("device_id")],
            [col("_test_device")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(coalesce(&[col("_user_reason"), col("_device_reason")]).alias(TEST_REASON))
        .drop(cols(["_user_reason", "_device_reason"]))
}

/// Marks rows whose campaign name matches a test-campaign pattern (`[TEST] ...`).
pub fn mark_test_campaigns(lf: LazyFrame, rules: &TestUserRules, name_column: &str) -> LazyFrame {
    let reason = match any_of(&rules.campaign_patterns) {
        Some(p) => when(col(name_column).str().contains(lit(p), true))
            .then(lit("test campaign"))
            .otherwise(lit(NULL).cast(DataType::String)),
        None => lit(NULL).cast(DataType::String),
    };
    lf.with_column(reason.alias(TEST_REASON))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules() -> TestUserRules {
        TestUserRules {
            name_patterns: vec![Pattern::new("(?i)^qa[ _-]").unwrap()],
            email_domains: vec!["example-corp.com".into()],
            campaign_patterns: vec![Pattern::new("(?i)\\[test\\]").unwrap()],
            internal_build_patterns: Vec::new(),
        }
    }

    fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn profiles_are_test_users_by_name_or_staff_domain() {
        let profiles = DataFrame::new_infer_height(vec![
            Column::new("distinct_id".into(), ["u1", "u2", "u3", "u4"]),
            Column::new(
                "name".into(),
                [Some("QA_kim"), Some("Kim"), None, Some("aqa lee")],
            ),
            Column::new(
                "email".into(),
                [
                    None,
                    Some("kim@Example-Corp.com"),
                    Some("x@gmail.com"),
                    None,
                ],
            ),
        ])
        .unwrap();
        let out = test_profiles(profiles.lazy(), &rules())
            .sort(["distinct_id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        assert_eq!(
            strs(&out, "distinct_id"),
            [Some("u1".into()), Some("u2".into())]
        );
        assert_eq!(
            strs(&out, TEST_REASON),
            [
                Some("test account name".into()),
                Some("staff e-mail domain".into())
            ]
        );
    }

    #[test]
    fn events_of_test_users_and_devices_are_marked_and_others_kept() {
        let events = DataFrame::new_infer_height(vec![
            Column::new("line".into(), [1u64, 2, 3]),
            Column::new("distinct_id".into(), ["u1", "u9", "u9"]),
            Column::new("device_id".into(), [Some("d1"), Some("QA-DEVICE"), None]),
        ])
        .unwrap();
        let users = DataFrame::new_infer_height(vec![
            Column::new("distinct_id".into(), ["u1"]),
            Column::new(TEST_REASON.into(), ["test account name"]),
        ])
        .unwrap();
        let devices = DataFrame::new_infer_height(vec![Column::new(
            "advertising_id".into(),
            ["QA-DEVICE", "QA-DEVICE"],
        )])
        .unwrap();
        let out = mark_test_events(events.lazy(), users.lazy(), devices.lazy())
            .sort(["line"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        assert_eq!(
            out.height(),
            3,
            "a device listed twice must not duplicate events"
        );
        assert_eq!(
            strs(&out, TEST_REASON),
            [
                Some("test account name".into()),
                Some("test device list".into()),
                None
            ]
        );
    }

    #[test]
    fn test_campaigns_are_marked_by_name() {
        let df = DataFrame::new_infer_height(vec![Column::new(
            "campaign_name".into(),
            ["[TEST] retarget", "KR_summer", "kr [test]"],
        )])
        .unwrap();
        let out = mark_test_campaigns(df.lazy(), &rules(), "campaign_name")
            .collect()
            .unwrap();
        assert_eq!(
            strs(&out, TEST_REASON),
            [
                Some("test campaign".into()),
                None,
                Some("test campaign".into())
            ]
        );
    }
}
