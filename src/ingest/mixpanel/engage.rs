//! One page of the Engage profile query (`POST /api/2.0/engage`) parsed into a frame of
//! `raw.mixpanel_engage`, with what the connector needs to ask for the next page.

use chrono::{DateTime, NaiveDateTime, Utc};
use polars::prelude::*;
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::wire::{loose_str, opt_str};
use crate::ingest::ParseError;

/// Stream name in [`ParseError`]s and logs.
pub const ENGAGE_STREAM: &str = "mixpanel.engage";

/// One parsed Engage page.
#[derive(Debug, Clone)]
pub struct EngagePage {
    /// The page number Mixpanel answered; ask for `page + 1` next.
    pub page: u64,
    /// Session of the query: every later page must send it back. Empty when Mixpanel sent
    /// none (it does on every page in practice).
    pub session_id: String,
    /// Total profiles of the query, when Mixpanel reports it.
    pub total: Option<u64>,
    /// Page size Mixpanel used, when reported.
    pub page_size: Option<u64>,
    /// The profiles: `raw.mixpanel_engage` without `dt`.
    pub frame: DataFrame,
}

impl EngagePage {
    /// True when no further page should be requested: the page is empty (the end the
    /// connector must always honour) or shorter than the page size Mixpanel reported (the
    /// end Mixpanel's own docs use, saving one request).
    pub fn is_last(&self) -> bool {
        let n = self.frame.height() as u64;
        n == 0 || self.page_size.is_some_and(|size| n < size)
    }
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    page_size: Option<u64>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(borrow, default)]
    results: Option<Vec<Profile<'a>>>,
}

#[derive(Deserialize)]
struct Profile<'a> {
    #[serde(rename = "$distinct_id", borrow, default)]
    distinct_id: Option<&'a RawValue>,
    #[serde(rename = "$properties", borrow, default)]
    properties: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ProfileProps<'a> {
    #[serde(rename = "$email", borrow, default)]
    email: Option<&'a RawValue>,
    #[serde(rename = "$name", borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(rename = "$user_id", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    appsflyer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    adid: Option<&'a RawValue>,
    #[serde(rename = "$created", borrow, default)]
    created: Option<&'a RawValue>,
}

/// Parses one Engage response body into its page.
///
/// `user_id` is the profile's `$user_id` property when set, else its `$distinct_id` unless
/// that is an anonymous `$device:` id: under Mixpanel's simplified ID merge an identified
/// profile's distinct id is the user id. `created` is `$created` read as UTC (Mixpanel's
/// `YYYY-MM-DDTHH:MM:SS`); a value that is not a date leaves it null (the text stays in
/// `properties`). A body cut short fails as retryable; an error answer (`status` not `ok`)
/// or a profile without `$distinct_id` fails as not retryable.
pub fn parse_engage_page(
    body: &[u8],
    pulled_at: DateTime<Utc>,
    partition: &str,
) -> Result<EngagePage, ParseError> {
    let err = |msg: String| ParseError::new(ENGAGE_STREAM, partition, msg);
    let page: Page<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => err(format!(
            "not a complete JSON body (cut short or corrupt): {e}"
        ))
        .truncated(),
        Category::Data => err(format!("not an Engage page: {e}")),
    })?;
    if let Some(message) = &page.error {
        return Err(err(format!("Mixpanel answered with an error: {message}")));
    }
    if let Some(status) = page.status.as_deref().filter(|s| *s != "ok") {
        return Err(err(format!("Mixpanel answered with status {status:?}")));
    }
    let number = page
        .page
        .ok_or_else(|| err("the answer has no page number".into()))?;
    let results = page.results.unwrap_or_default();

    let n = results.len();
    let s = |name: &str| StringChunkedBuilder::new(name.into(), n);
    let (mut distinct_ids, mut emails, mut names, mut user_ids) =
        (s("distinct_id"), s("email"), s("name"), s("user_id"));
    let (mut af_ids, mut adids, mut properties) = (s("appsflyer_id"), s("adid"), s("properties"));
    let mut created: Vec<Option<i64>> = Vec::with_capacity(n);

    for (i, profile) in results.iter().enumerate() {
        let row = i as u64 + 1;
        let at = |msg: String, column: &str| err(msg).at_row(row).in_column(column);
        let distinct_id = match profile.distinct_id.map(loose_str) {
            Some(Ok(Some(id))) => id,
            Some(Err(found)) => {
                return Err(at(
                    format!("$distinct_id is {found}, not an id"),
                    "distinct_id",
                ));
            }
            None | Some(Ok(None)) => {
                return Err(at("the profile has no $distinct_id".into(), "distinct_id"));
            }
        };
        let props_text = profile
            .properties
            .map(RawValue::get)
            .filter(|t| *t != "null")
            .unwrap_or("{}");
        let props: ProfileProps<'_> = serde_json::from_str(props_text)
            .map_err(|e| at(format!("$properties: {e}"), "properties"))?;
        let not_str =
            |column: &str, found: &str| at(format!("expected a string, found {found}"), column);
        let user_id = match opt_str(props.user_id).map_err(|f| not_str("user_id", f))? {
            Some(u) => Some(u),
            None if distinct_id.starts_with("$device:") => None,
            None => Some(distinct_id.clone()),
        };
        emails.append_option(
            opt_str(props.email)
                .map_err(|f| not_str("email", f))?
                .as_deref(),
        );
        names.append_option(
            opt_str(props.name)
                .map_err(|f| not_str("name", f))?
                .as_deref(),
        );
        user_ids.append_option(user_id.as_deref());
        af_ids.append_option(
            opt_str(props.appsflyer_id)
                .map_err(|f| not_str("appsflyer_id", f))?
                .as_deref(),
        );
        adids.append_option(
            opt_str(props.adid)
                .map_err(|f| not_str("adid", f))?
                .as_deref(),
        );
        created.push(
            props
                .created
                .and_then(|v| loose_str(v).ok().flatten())
                .and_then(|t| parse_created(&t)),
        );
        distinct_ids.append_value(distinct_id.as_ref());
        properties.append_value(props_text);
    }

    let millis = |name: &str, v: Series| -> Column {
        v.with_name(name.into())
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into()
    };
    let frame = DataFrame::new_infer_height(vec![
        distinct_ids.finish().into_column(),
        emails.finish().into_column(),
        names.finish().into_column(),
        user_ids.finish().into_column(),
        af_ids.finish().into_column(),
        adids.finish().into_column(),
        millis("created", Series::new("created".into(), created)),
        properties.finish().into_column(),
        millis(
            "pulled_at",
            Series::new("pulled_at".into(), vec![pulled_at.timestamp_millis(); n]),
        ),
    ])
    .map_err(|e| err(format!("building the frame: {e}")))?;

    Ok(EngagePage {
        page: number,
        session_id: page.session_id.unwrap_or_default(),
        total: page.total,
        page_size: page.page_size,
        frame,
    })
}

/// `$created` as UTC ms: Mixpanel's `YYYY-MM-DDTHH:MM:SS` (fractions allowed), a space for
/// the `T`, or RFC 3339 with an offset.
fn parse_created(text: &str) -> Option<i64> {
    let text = text.trim();
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::schema::Registry;
    use crate::test_support::strs;

    fn fixture(name: &str) -> Vec<u8> {
        crate::test_support::fixture("mixpanel", name)
    }

    fn pulled() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_398_400, 0).unwrap()
    }

    fn parse(body: &[u8]) -> Result<EngagePage, ParseError> {
        parse_engage_page(body, pulled(), "dt=2026-01-03")
    }

    #[test]
    fn a_page_of_profiles_parses() {
        let page = parse(&fixture("engage_page0.json")).unwrap();
        Registry::embedded()
            .unwrap()
            .get("raw.mixpanel_engage")
            .unwrap()
            .validate(&page.frame, "dt=2026-01-03")
            .unwrap();
        assert_eq!(page.page, 0);
        assert_eq!(page.session_id, "1767398400-SIMLTV");
        assert_eq!(page.total, Some(3));
        assert_eq!(page.frame.height(), 3);
        assert!(
            !page.is_last(),
            "a full page of the reported size is not the end"
        );
        let df = &page.frame;
        assert_eq!(
            strs(df, "distinct_id"),
            vec![
                Some("U000000001".into()),
                Some("U000000002".into()),
                Some("4".into())
            ]
        );
        assert_eq!(strs(df, "user_id")[0].as_deref(), Some("U000000001"));
        assert_eq!(strs(df, "email")[0].as_deref(), Some("player1@naver.com"));
        assert_eq!(strs(df, "adid")[1], None);
        assert_eq!(
            strs(df, "appsflyer_id")[0].as_deref(),
            Some("1767225600000-1234567890123456789")
        );
        let created = df.column("created").unwrap().datetime().unwrap();
        assert_eq!(created.physical().get(0), Some(1_767_261_600_000)); // 2026-01-01T10:00:00Z
        // Unknown and nested properties survive in `properties`.
        let props = strs(df, "properties");
        let p: serde_json::Value = serde_json::from_str(props[1].as_deref().unwrap()).unwrap();
        assert_eq!(p["favourites"]["heroes"][0], serde_json::json!("knight"));
        assert!(props[2].as_deref().unwrap().contains("$last_seen"));
    }

    #[test]
    fn an_empty_page_ends_the_query() {
        let page = parse(&fixture("engage_page1_empty.json")).unwrap();
        assert_eq!(page.page, 1);
        assert_eq!(page.session_id, "1767398400-SIMLTV");
        assert_eq!(page.frame.height(), 0);
        assert!(page.is_last());
        Registry::embedded()
            .unwrap()
            .get("raw.mixpanel_engage")
            .unwrap()
            .validate(&page.frame, "dt=2026-01-03")
            .unwrap();
    }

    #[test]
    fn broken_and_error_answers_fail() {
        let body = fixture("engage_page0.json");
        let e = parse(&body[..body.len() - 40]).unwrap_err();
        assert!(e.retryable, "{e}");
        let e =
            parse(br#"{"error": "Invalid session_id", "request": "/api/2.0/engage"}"#).unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("Invalid session_id"), "{e}");
        let e = parse(br#"{"page":0,"status":"ok","results":[{"$properties":{}}]}"#).unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("distinct_id")));
    }

    #[test]
    fn created_accepts_mixpanel_and_rfc3339_forms() {
        assert_eq!(
            parse_created("2026-01-01T10:00:00"),
            Some(1_767_261_600_000)
        );
        assert_eq!(
            parse_created("2026-01-01 10:00:00.5"),
            Some(1_767_261_600_500)
        );
        assert_eq!(
            parse_created("2026-01-01T19:00:00+09:00"),
            Some(1_767_261_600_000)
        );
        assert_eq!(parse_created("yesterday"), None);
    }
}
