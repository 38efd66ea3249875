//! Meta's `actions` / `action_values` JSON (kept whole by the connector) flattened into typed
//! columns per attribution window. Polars 0.55 here has no JSON-path functions, so each row's
//! text is read with serde_json inside one column `map`; the Meta frame is a few thousand ad
//! days, so this costs nothing next to the scan.
//!
//! The shape (see `ingest::meta::parse` and `sim::serve::meta`): an array of objects with an
//! `action_type`, a `value` (Meta's default attribution) and one key per requested window,
//! figures as decimal strings. Meta leaves zero windows out, so a missing key stays null here
//! (we cannot tell zero from "not sent"); only the default sums below count it as zero.

use polars::prelude::*;
use serde_json::Value;

use crate::cleanse::reject::reject_where_with;
use crate::ingest::money::exact_micros;

/// Meta's action type for app installs.
pub const INSTALL: &str = "mobile_app_install";
/// Meta's action type for in-app purchases the SDK reports.
pub const PURCHASE: &str = "app_custom_event.fb_mobile_purchase";
/// The attribution windows with a column each, in the clean table's order.
pub const WINDOWS: [&str; 4] = ["1d_click", "7d_click", "28d_click", "1d_view"];
/// The windows of Meta's default attribution setting (7-day click + 1-day view), whose sum
/// is the row's `installs` / `purchases` / `purchase_value_micros`.
const DEFAULT_WINDOWS: [usize; 2] = [1, 3];

/// The struct column the map writes, unnested right after.
const FLAT: &str = "_meta_actions";
/// Why a row's JSON could not be read, naming the column; null when it could.
pub const ACTIONS_ERROR: &str = "_actions_error";

/// One figure per window of [`WINDOWS`]; null where Meta sent none.
pub type Windows = [Option<i64>; 4];

/// What one row's actions say, in the clean table's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowActions {
    pub installs: Windows,
    pub purchases: Windows,
    /// Purchase values in micros of the account currency.
    pub values: Windows,
    /// `installs` by the default setting; null when those windows were not requested.
    pub installs_default: Option<i64>,
    pub purchases_default: Option<i64>,
    pub value_default: Option<i64>,
}

/// The output columns, in the clean table's order: per-window figures (installs,
/// purchases, purchase values, each in [`WINDOWS`] order), then the default-setting sums.
pub const OUTPUT_COLUMNS: [&str; 15] = [
    "installs_1d_click",
    "installs_7d_click",
    "installs_28d_click",
    "installs_1d_view",
    "purchases_1d_click",
    "purchases_7d_click",
    "purchases_28d_click",
    "purchases_1d_view",
    "purchase_value_1d_click_micros",
    "purchase_value_7d_click_micros",
    "purchase_value_28d_click_micros",
    "purchase_value_1d_view_micros",
    "installs",
    "purchases",
    "purchase_value_micros",
];

/// Whole count of a decimal given in micros, half away from zero: Meta models some
/// conversions and may send "2.5"; the clean table counts whole conversions.
fn whole(micros: i64) -> i64 {
    if micros >= 0 {
        (micros + 500_000) / 1_000_000
    } else {
        -((-micros + 500_000) / 1_000_000)
    }
}

/// The figures of `action_type` in `json` per window, in micros; all null when the action
/// type (or the whole column) is absent. Errors say what is wrong, without the column name.
fn figures(json: Option<&str>, action_type: &str) -> Result<Windows, String> {
    let Some(text) = json else {
        return Ok([None; 4]);
    };
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("is not valid JSON ({e})"))?;
    let Value::Array(items) = doc else {
        return Err("is not a JSON array".into());
    };
    let Some(item) = items
        .iter()
        .find(|i| i.get("action_type").and_then(Value::as_str) == Some(action_type))
    else {
        return Ok([None; 4]);
    };
    let mut out = [None; 4];
    for (slot, w) in out.iter_mut().zip(WINDOWS) {
        let Some(v) = item.get(w).filter(|v| !v.is_null()) else {
            continue;
        };
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("{action_type}.{w} is {other}, not a number")),
        };
        let micros = exact_micros(&text).map_err(|m| format!("{action_type}.{w}: {m}"))?;
        if micros < 0 {
            return Err(format!("{action_type}.{w} is negative ({text})"));
        }
        *slot = Some(micros);
    }
    Ok(out)
}

/// The default-setting sum: a window Meta left out counts zero (it omits zero windows);
/// null when the row did not request both windows, as the sum would then be unknown.
fn default_sum(w: &Windows, requested: &[&str]) -> Option<i64> {
    DEFAULT_WINDOWS
        .iter()
        .all(|i| requested.contains(&WINDOWS[*i]))
        .then(|| DEFAULT_WINDOWS.iter().map(|i| w[*i].unwrap_or(0)).sum())
}

/// Reads one row. `windows` is the row's `attribution_windows` (comma-separated). The error
/// names the column that could not be read.
pub fn row_actions(
    actions: Option<&str>,
    action_values: Option<&str>,
    windows: Option<&str>,
) -> Result<RowActions, String> {
    let requested: Vec<&str> = windows
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let counts = |t: &str| -> Result<Windows, String> {
        Ok(figures(actions, t)
            .map_err(|m| format!("actions {m}"))?
            .map(|m| m.map(whole)))
    };
    let installs = counts(INSTALL)?;
    let purchases = counts(PURCHASE)?;
    let values = figures(action_values, PURCHASE).map_err(|m| format!("action_values {m}"))?;
    Ok(RowActions {
        installs_default: default_sum(&installs, &requested),
        purchases_default: default_sum(&purchases, &requested),
        value_default: default_sum(&values, &requested),
        installs,
        purchases,
        values,
    })
}

fn flat_dtype() -> DataType {
    let mut fields: Vec<Field> = OUTPUT_COLUMNS
        .into_iter()
        .map(|n| Field::new(n.into(), DataType::Int64))
        .collect();
    fields.push(Field::new(ACTIONS_ERROR.into(), DataType::String));
    DataType::Struct(fields)
}

/// The map itself: three string columns in, the struct of [`flat_dtype`] out.
fn flatten_columns(c: &mut [Column]) -> PolarsResult<Column> {
    let [actions, values, windows] = c else {
        polars_bail!(ComputeError: "the actions map takes three columns");
    };
    let (actions, values, windows) = (actions.str()?, values.str()?, windows.str()?);
    let n = actions.len();
    let mut figures: Vec<Vec<Option<i64>>> = vec![Vec::with_capacity(n); OUTPUT_COLUMNS.len()];
    let mut errors: Vec<Option<String>> = Vec::with_capacity(n);
    for ((a, v), w) in actions.iter().zip(values.iter()).zip(windows.iter()) {
        let (row, error) = match row_actions(a, v, w) {
            Ok(r) => (r, None),
            Err(e) => (RowActions::default(), Some(e)),
        };
        let all = row
            .installs
            .iter()
            .chain(&row.purchases)
            .chain(&row.values)
            .chain([
                &row.installs_default,
                &row.purchases_default,
                &row.value_default,
            ]);
        for (dst, x) in figures.iter_mut().zip(all) {
            dst.push(*x);
        }
        errors.push(error);
    }
    let mut series: Vec<Series> = OUTPUT_COLUMNS
        .into_iter()
        .zip(figures)
        .map(|(name, v)| Series::new(name.into(), v))
        .collect();
    series.push(Series::new(ACTIONS_ERROR.into(), errors));
    Ok(StructChunked::from_series(FLAT.into(), n, series.iter())?
        .into_series()
        .into_column())
}

/// Adds the columns of [`OUTPUT_COLUMNS`] and [`ACTIONS_ERROR`] from the raw `actions`,
/// `action_values` and `attribution_windows`.
pub fn flatten_actions(lf: LazyFrame) -> LazyFrame {
    let flat = col("actions")
        .map_many(
            flatten_columns,
            &[col("action_values"), col("attribution_windows")],
            |_, _| Ok(Field::new(FLAT.into(), flat_dtype())),
        )
        .alias(FLAT);
    lf.with_column(flat).unnest(cols([FLAT]), None)
}

/// Rejects as `malformed` the rows whose actions JSON could not be read, naming the column
/// and what is wrong, then drops [`ACTIONS_ERROR`].
pub fn reject_unreadable_actions(lf: LazyFrame) -> LazyFrame {
    reject_where_with(
        lf,
        col(ACTIONS_ERROR).is_not_null(),
        "malformed",
        col(ACTIONS_ERROR),
    )
    .drop(cols([ACTIONS_ERROR]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ALL: Option<&str> = Some("1d_click,7d_click,28d_click,1d_view");

    #[test]
    fn windows_meta_left_out_are_null_and_count_zero_in_the_default() {
        let actions = r#"[
            {"action_type":"mobile_app_install","value":"131","1d_click":"118","7d_click":"128","28d_click":"129","1d_view":"3"},
            {"action_type":"app_custom_event.fb_mobile_purchase","value":"4","1d_click":"2","7d_click":"4","28d_click":"5"}
        ]"#;
        let values = r#"[{"action_type":"app_custom_event.fb_mobile_purchase","value":"39.96","7d_click":"39.96","28d_click":"49.95"}]"#;
        let r = row_actions(Some(actions), Some(values), ALL).unwrap();
        assert_eq!(r.installs, [Some(118), Some(128), Some(129), Some(3)]);
        assert_eq!(r.purchases, [Some(2), Some(4), Some(5), None]);
        assert_eq!(r.values, [None, Some(39_960_000), Some(49_950_000), None]);
        assert_eq!(
            r.installs_default,
            Some(131),
            "Meta's value: 7d click + 1d view"
        );
        assert_eq!(r.purchases_default, Some(4));
        assert_eq!(r.value_default, Some(39_960_000));
    }

    #[test]
    fn no_actions_are_nulls_per_window_and_zero_by_default_unless_not_requested() {
        let r = row_actions(None, None, ALL).unwrap();
        assert_eq!(r.installs, [None; 4]);
        assert_eq!(r.installs_default, Some(0));
        let r = row_actions(None, None, Some("1d_click,28d_click")).unwrap();
        assert_eq!(r.installs_default, None);
    }

    #[test]
    fn fractional_counts_round_half_away_and_values_stay_exact() {
        let actions = r#"[{"action_type":"mobile_app_install","1d_click":"2.5","7d_click":2.4}]"#;
        let r = row_actions(Some(actions), None, ALL).unwrap();
        assert_eq!(r.installs[..2], [Some(3), Some(2)]);
    }

    #[test]
    fn unreadable_json_names_the_column() {
        let e = row_actions(Some("[{\"action_type\":"), None, ALL).unwrap_err();
        assert!(e.starts_with("actions is not valid JSON"), "{e}");
        let e = row_actions(None, Some(r#"{"a":1}"#), ALL).unwrap_err();
        assert_eq!(e, "action_values is not a JSON array");
        let bad = r#"[{"action_type":"app_custom_event.fb_mobile_purchase","7d_click":"1.2.3"}]"#;
        let e = row_actions(None, Some(bad), ALL).unwrap_err();
        assert!(
            e.starts_with("action_values app_custom_event.fb_mobile_purchase.7d_click"),
            "{e}"
        );
    }
}
