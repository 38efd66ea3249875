//! Campaign mapping between each channel's campaigns and AppsFlyer's: by id first, then by
//! normalised name, then by the hand-kept overrides (the Sheets tab `campaign_overrides`).
//! What maps nowhere is listed in `clean.unmapped_campaigns` with the closest name on the
//! other side as a suggestion.

use std::collections::BTreeSet;

use polars::prelude::*;

/// The columns of `clean.campaign_daily` (`dt` included), in schema order.
pub const COLUMNS: [&str; 19] = [
    "dt",
    "channel",
    "account_id",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "ad_id",
    "currency",
    "spend_micros",
    "reporting_currency",
    "spend_reporting_micros",
    "impressions",
    "clicks",
    "installs",
    "purchases",
    "purchase_value_reporting_micros",
    "attribution_campaign_id",
    "mapping",
    "is_test",
];

/// A campaign name reduced to lower-case letters and digits: `Summer_Sale KR (iOS)` and
/// `summer sale kr ios` are one name.
pub fn normalised_name(name: Expr) -> Expr {
    name.str()
        .to_lowercase()
        .str()
        .replace_all(lit(r"[^\p{L}\p{N}]+"), lit(""), false)
}

/// Channel campaigns (`channel`, `campaign_id`, `campaign_name`) with the attribution
/// campaign each maps to and how: `attribution_campaign_id`, `mapping`.
/// `attribution` holds AppsFlyer's (`channel`, `campaign_id`, `campaign_name`); `overrides`
/// the Sheets rows (`channel`, `channel_campaign_id`, `attribution_campaign_id`).
pub fn map_campaigns(
    channel: LazyFrame,
    attribution: LazyFrame,
    overrides: LazyFrame,
) -> LazyFrame {
    let by_id = attribution
        .clone()
        .select([col("channel"), col("campaign_id").alias("_id_match")])
        .unique(None, UniqueKeepStrategy::Any);
    let by_name = attribution
        .filter(col("campaign_name").is_not_null())
        .select([
            col("channel"),
            normalised_name(col("campaign_name")).alias("_norm"),
            col("campaign_id").alias("_name_match"),
        ])
        .sort(["_name_match"], SortMultipleOptions::default())
        .unique_stable(Some(cols(["channel", "_norm"])), UniqueKeepStrategy::First);
    let by_override = overrides
        .filter(col("attribution_campaign_id").is_not_null())
        .select([
            col("channel"),
            col("channel_campaign_id"),
            col("attribution_campaign_id").alias("_override"),
        ])
        .unique_stable(
            Some(cols(["channel", "channel_campaign_id"])),
            UniqueKeepStrategy::Last,
        );
    channel
        .with_column(normalised_name(col("campaign_name")).alias("_norm"))
        .join(
            by_id,
            [col("channel"), col("campaign_id")],
            [col("channel"), col("_id_match")],
            JoinArgs::new(JoinType::Left).with_coalesce(JoinCoalesce::KeepColumns),
        )
        .join(
            by_name,
            [col("channel"), col("_norm")],
            [col("channel"), col("_norm")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            by_override,
            [col("channel"), col("campaign_id")],
            [col("channel"), col("channel_campaign_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            coalesce(&[col("_id_match"), col("_name_match"), col("_override")])
                .alias("attribution_campaign_id"),
            when(col("_id_match").is_not_null())
                .then(lit("id"))
                .when(col("_name_match").is_not_null())
                .then(lit("name"))
                .when(col("_override").is_not_null())
                .then(lit("override"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("mapping"),
        ])
        .select([
            col("channel"),
            col("campaign_id"),
            col("attribution_campaign_id"),
            col("mapping"),
        ])
}

/// `clean.campaign_daily` rows from `clean.channel_daily` rows and the mapping of
/// [`map_campaigns`].
pub fn campaign_daily(channel_daily: LazyFrame, mapping: LazyFrame) -> LazyFrame {
    channel_daily
        .join(
            mapping.unique(
                Some(cols(["channel", "campaign_id"])),
                UniqueKeepStrategy::First,
            ),
            [col("channel"), col("campaign_id")],
            [col("channel"), col("campaign_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("adset_id").fill_null(lit("")),
            col("ad_id").fill_null(lit("")),
            col("test_reason").is_not_null().alias("is_test"),
        ])
        .select(COLUMNS.map(col))
        .sort(
            [
                "dt",
                "channel",
                "account_id",
                "campaign_id",
                "adset_id",
                "ad_id",
            ],
            SortMultipleOptions::default(),
        )
}

/// Token Jaccard similarity of two names: shared lower-case words over all words.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    let words = |s: &str| -> BTreeSet<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (words(a), words(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

/// The best suggestion among `candidates` (`(id, name)`) for `name`: the most similar name,
/// if any shares a word.
pub fn suggest<'a>(
    name: &str,
    candidates: &'a [(String, String)],
) -> Option<(&'a str, &'a str, f64)> {
    candidates
        .iter()
        .map(|(id, n)| (id.as_str(), n.as_str(), name_similarity(name, n)))
        .filter(|(_, _, s)| *s > 0.0)
        .max_by(|a, b| a.2.total_cmp(&b.2).then_with(|| b.0.cmp(a.0)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(cols: &[(&str, Vec<Option<&str>>)]) -> LazyFrame {
        DataFrame::new_infer_height(
            cols.iter()
                .map(|(n, v)| Column::new((*n).into(), v.clone()))
                .collect(),
        )
        .unwrap()
        .lazy()
    }

    #[test]
    fn campaigns_map_by_id_then_name_then_override() {
        let channel = frame(&[
            ("channel", vec![Some("naver"); 4]),
            (
                "campaign_id",
                vec![Some("n1"), Some("n2"), Some("n3"), Some("n4")],
            ),
            (
                "campaign_name",
                vec![
                    Some("Brand KR"),
                    Some("Summer_Sale (iOS)"),
                    Some("Odd one"),
                    Some("Lost"),
                ],
            ),
        ]);
        let attribution = frame(&[
            ("channel", vec![Some("naver"); 3]),
            (
                "campaign_id",
                vec![Some("n1"), Some("af-77"), Some("af-88")],
            ),
            (
                "campaign_name",
                vec![Some("brand kr"), Some("summer sale ios"), Some("whatever")],
            ),
        ]);
        let overrides = frame(&[
            ("channel", vec![Some("naver"), Some("naver")]),
            ("channel_campaign_id", vec![Some("n3"), Some("n1")]),
            (
                "attribution_campaign_id",
                vec![Some("af-88"), Some("af-88")],
            ),
        ]);
        let out = map_campaigns(channel, attribution, overrides)
            .sort(["campaign_id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let s = |c: &str| -> Vec<Option<String>> {
            out.column(c)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        };
        let o = |v: &str| Some(v.to_string());
        assert_eq!(
            s("attribution_campaign_id"),
            [o("n1"), o("af-77"), o("af-88"), None]
        );
        assert_eq!(s("mapping"), [o("id"), o("name"), o("override"), None]);
    }

    #[test]
    fn suggestions_pick_the_most_similar_name() {
        let candidates = vec![
            ("a".to_string(), "KR Brand Search".to_string()),
            ("b".to_string(), "JP Generic".to_string()),
        ];
        let (id, _, score) = suggest("brand search kr v2", &candidates).unwrap();
        assert_eq!(id, "a");
        assert!((score - 0.75).abs() < 1e-9);
        assert!(suggest("nothing alike", &candidates).is_none());
    }
}
