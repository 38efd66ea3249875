//! The documented columns of each Pull API raw-data report, in wire order: the raw header
//! name, our snake_case name and the type it lands as. The parser, the local server's
//! renderer and the `schemas/raw/appsflyer_*.toml` files all follow this one list (a test
//! checks the schema files against it), so the three cannot drift apart.
//!
//! The 81 default columns are AppsFlyer's raw-data default field set in the order its CSV
//! bodies carry them. The Protect360 reports append their own columns after them.

use super::Report;

/// How a column's text becomes a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kept as sent; an empty field is null.
    Text,
    /// `YYYY-MM-DD HH:MM:SS` in the requested zone, landed as `datetime[ms, UTC]`.
    Time,
    /// A decimal amount, landed as exact int64 micros of the named currency column.
    Money { currency_column: &'static str },
    /// `true` / `false`, landed as bool.
    Bool,
}

/// One column of a report body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The header as AppsFlyer sends it, e.g. `Install Time`.
    pub raw: &'static str,
    /// Our column name in the raw table, e.g. `install_time`.
    pub name: &'static str,
    pub kind: Kind,
}

const fn text(raw: &'static str, name: &'static str) -> Column {
    Column {
        raw,
        name,
        kind: Kind::Text,
    }
}

const fn time(raw: &'static str, name: &'static str) -> Column {
    Column {
        raw,
        name,
        kind: Kind::Time,
    }
}

const fn flag(raw: &'static str, name: &'static str) -> Column {
    Column {
        raw,
        name,
        kind: Kind::Bool,
    }
}

const fn money(raw: &'static str, name: &'static str, currency_column: &'static str) -> Column {
    Column {
        raw,
        name,
        kind: Kind::Money { currency_column },
    }
}

/// Our column holding the app id the request named (not from the body).
pub const APP_ID: &str = "app_id";
/// Our column holding when the body was received.
pub const PULLED_AT: &str = "pulled_at";
/// Our constant `"USD"` column: the currency of `event_revenue_usd`, since the schema rules
/// want every money column to name a currency column.
pub const USD: &str = "usd";
/// Our JSON object of body columns the documented list does not have, so new columns
/// AppsFlyer adds are kept rather than dropped.
pub const EXTRA: &str = "extra";

/// The raw-data default columns, in the order AppsFlyer sends them.
///
/// `App ID` lands as `af_app_id`: the snake_case `app_id` is our column of the app the
/// request named (they agree on every healthy body; keeping both shows when they don't).
pub const DEFAULT_COLUMNS: [Column; 81] = [
    text("Attributed Touch Type", "attributed_touch_type"),
    time("Attributed Touch Time", "attributed_touch_time"),
    time("Install Time", "install_time"),
    time("Event Time", "event_time"),
    text("Event Name", "event_name"),
    text("Event Value", "event_value"),
    money("Event Revenue", "event_revenue", "event_revenue_currency"),
    text("Event Revenue Currency", "event_revenue_currency"),
    money("Event Revenue USD", "event_revenue_usd", USD),
    text("Event Source", "event_source"),
    flag("Is Receipt Validated", "is_receipt_validated"),
    text("Partner", "partner"),
    text("Media Source", "media_source"),
    text("Channel", "channel"),
    text("Keywords", "keywords"),
    text("Campaign", "campaign"),
    text("Campaign ID", "campaign_id"),
    text("Adset", "adset"),
    text("Adset ID", "adset_id"),
    text("Ad", "ad"),
    text("Ad ID", "ad_id"),
    text("Ad Type", "ad_type"),
    text("Site ID", "site_id"),
    text("Sub Site ID", "sub_site_id"),
    text("Sub Param 1", "sub_param_1"),
    text("Sub Param 2", "sub_param_2"),
    text("Sub Param 3", "sub_param_3"),
    text("Sub Param 4", "sub_param_4"),
    text("Sub Param 5", "sub_param_5"),
    text("Cost Model", "cost_model"),
    money("Cost Value", "cost_value", "cost_currency"),
    text("Cost Currency", "cost_currency"),
    text("Contributor 1 Partner", "contributor_1_partner"),
    text("Contributor 1 Media Source", "contributor_1_media_source"),
    text("Contributor 1 Campaign", "contributor_1_campaign"),
    text("Contributor 1 Touch Type", "contributor_1_touch_type"),
    time("Contributor 1 Touch Time", "contributor_1_touch_time"),
    text("Contributor 2 Partner", "contributor_2_partner"),
    text("Contributor 2 Media Source", "contributor_2_media_source"),
    text("Contributor 2 Campaign", "contributor_2_campaign"),
    text("Contributor 2 Touch Type", "contributor_2_touch_type"),
    time("Contributor 2 Touch Time", "contributor_2_touch_time"),
    text("Contributor 3 Partner", "contributor_3_partner"),
    text("Contributor 3 Media Source", "contributor_3_media_source"),
    text("Contributor 3 Campaign", "contributor_3_campaign"),
    text("Contributor 3 Touch Type", "contributor_3_touch_type"),
    time("Contributor 3 Touch Time", "contributor_3_touch_time"),
    text("Region", "region"),
    text("Country Code", "country_code"),
    text("State", "state"),
    text("City", "city"),
    text("Postal Code", "postal_code"),
    text("DMA", "dma"),
    text("IP", "ip"),
    flag("WIFI", "wifi"),
    text("Operator", "operator"),
    text("Carrier", "carrier"),
    text("Language", "language"),
    text("AppsFlyer ID", "appsflyer_id"),
    text("Advertising ID", "advertising_id"),
    text("IDFA", "idfa"),
    text("Android ID", "android_id"),
    text("Customer User ID", "customer_user_id"),
    text("IMEI", "imei"),
    text("IDFV", "idfv"),
    text("Platform", "platform"),
    text("Device Type", "device_type"),
    text("OS Version", "os_version"),
    text("App Version", "app_version"),
    text("SDK Version", "sdk_version"),
    text("App ID", "af_app_id"),
    text("App Name", "app_name"),
    text("Bundle ID", "bundle_id"),
    flag("Is Retargeting", "is_retargeting"),
    text("Retargeting Conversion Type", "retargeting_conversion_type"),
    text("Attribution Lookback", "attribution_lookback"),
    text("Reengagement Window", "reengagement_window"),
    flag("Is Primary Attribution", "is_primary_attribution"),
    text("User Agent", "user_agent"),
    text("HTTP Referrer", "http_referrer"),
    text("Original URL", "original_url"),
];

/// Protect360 blocked installs: why the install was blocked.
pub const BLOCKED_COLUMNS: [Column; 4] = [
    text("Blocked Reason", "blocked_reason"),
    text("Blocked Reason Value", "blocked_reason_value"),
    text("Blocked Reason Rule", "blocked_reason_rule"),
    text("Blocked Sub Reason", "blocked_sub_reason"),
];

/// Protect360 post-attribution reports (`detection`, `fraud-post-inapps`): when and why the
/// install or event was found to be fraud. `Detection Date` is a `YYYY-MM-DD` day and is
/// kept as text in raw (a date of the app's zone, not an instant).
pub const FRAUD_COLUMNS: [Column; 3] = [
    text("Detection Date", "detection_date"),
    text("Fraud Reason", "fraud_reason"),
    text("Fraud Sub Reason", "fraud_sub_reason"),
];

/// The report's own columns after the defaults.
pub fn report_columns(report: Report) -> &'static [Column] {
    match report {
        Report::BlockedInstallsReport => &BLOCKED_COLUMNS,
        Report::Detection | Report::FraudPostInapps => &FRAUD_COLUMNS,
        _ => &[],
    }
}

/// The report's columns that AppsFlyer sends only when asked for by name in the request's
/// `additional_fields` (the Protect360 reasons). Our column names are the API's field names.
pub fn additional_fields(report: Report) -> &'static [&'static str] {
    match report {
        Report::BlockedInstallsReport => &[
            "blocked_reason",
            "blocked_reason_value",
            "blocked_sub_reason",
        ],
        Report::Detection | Report::FraudPostInapps => {
            &["detection_date", "fraud_reason", "fraud_sub_reason"]
        }
        _ => &[],
    }
}

/// Every documented column of the report's body, in wire order.
pub fn wire_columns(report: Report) -> impl Iterator<Item = &'static Column> {
    DEFAULT_COLUMNS.iter().chain(report_columns(report))
}

/// The primary key of the report's raw table (all non-nullable).
///
/// Installs: an AppsFlyer ID is one install of one app, and its install time pins it (a
/// re-pull of the same window yields the same key). In-app events: AppsFlyer has no event
/// id, so an event is its device, time, name and value; `app_id` leads both keys because
/// both apps land in one table.
pub fn primary_key(report: Report) -> &'static [&'static str] {
    if report.is_event_report() {
        &[
            APP_ID,
            "appsflyer_id",
            "event_time",
            "event_name",
            "event_value",
        ]
    } else {
        &[APP_ID, "appsflyer_id", "install_time"]
    }
}

/// Whether a wire column may be null in the raw table (only key columns may not).
pub fn nullable(report: Report, name: &str) -> bool {
    !primary_key(report).contains(&name)
}

/// Key columns an empty field is allowed in, landing as `""` rather than null: AppsFlyer
/// sends an empty `Event Value` for events without parameters, and those are real events.
pub fn empty_is_blank(name: &str) -> bool {
    name == "event_value"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::schema::Registry;

    #[test]
    fn names_are_unique_snake_case() {
        for report in Report::ALL {
            let mut seen = HashSet::new();
            for c in wire_columns(report) {
                assert!(seen.insert(c.name), "{} twice", c.name);
                let expect = c.raw.to_lowercase().replace(' ', "_");
                if c.name != "af_app_id" {
                    assert_eq!(c.name, expect, "{}", c.raw);
                }
            }
            for ours in [APP_ID, PULLED_AT, USD, EXTRA] {
                assert!(seen.insert(ours), "{ours} clashes with a wire column");
            }
        }
    }

    /// The schema files must list exactly these columns, in this order, with these types,
    /// the key and nullability; otherwise the parser and the lake disagree.
    #[test]
    fn schema_files_follow_the_column_list() {
        let registry = Registry::embedded().unwrap();
        for report in Report::ALL {
            let table = registry.get(report.table()).unwrap();
            let mut expected: Vec<(&str, String, bool)> = vec![("dt", "date".into(), false)];
            for c in wire_columns(report) {
                let ty = match c.kind {
                    Kind::Text => "string",
                    Kind::Time => "datetime[ms, UTC]",
                    Kind::Money { .. } => "int64",
                    Kind::Bool => "bool",
                };
                expected.push((c.name, ty.into(), nullable(report, c.name)));
            }
            expected.push((APP_ID, "string".into(), false));
            expected.push((PULLED_AT, "datetime[ms, UTC]".into(), false));
            expected.push((USD, "string".into(), false));
            expected.push((EXTRA, "string".into(), true));
            let found: Vec<(&str, String, bool)> = table
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.type_name.clone(), c.nullable))
                .collect();
            assert_eq!(found, expected, "{}", report.table());
            assert_eq!(table.primary_key, primary_key(report), "{}", report.table());
            assert_eq!(table.partition.as_deref(), Some("dt"));
            for c in wire_columns(report) {
                if let Kind::Money { currency_column } = c.kind {
                    let col = table.column(c.name).unwrap();
                    assert_eq!(col.currency_column.as_deref(), Some(currency_column));
                    assert_eq!(col.unit.as_deref(), Some("micros"));
                }
            }
        }
    }
}
