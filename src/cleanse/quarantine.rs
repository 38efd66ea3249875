//! Splitting a marked partition: rows whose [`REJECT`] is null go on to the clean layer, the
//! others become rows of `clean.quarantine` with their reason, their key in the source and
//! their readable columns, and every removal is counted by rule.

use chrono::NaiveDate;
use polars::prelude::*;
use serde_json::Value;

use super::reject::REJECT;

/// Columns never copied into a quarantine row's `row` JSON: whole wire payloads that the raw
/// layer keeps anyway.
const BULKY_COLUMNS: [&str; 3] = ["properties", "extra", "metadata"];

/// Where quarantined rows came from and who removed them.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub stage: &'a str,
    pub run_id: &'a str,
    /// Qualified source table, e.g. `raw.mixpanel_export`.
    pub source: &'a str,
    /// Partition of the source rows.
    pub dt: NaiveDate,
    /// Columns that identify a row in the source (its primary key without `dt`).
    pub key: &'a [&'a str],
}

/// A marked partition, split.
#[derive(Debug)]
pub struct Split {
    /// The rows that stay, without the reject column.
    pub kept: DataFrame,
    /// Rows for `clean.quarantine`.
    pub quarantined: DataFrame,
    /// Rows removed per rule, in first-seen order.
    pub removed: Vec<(String, u64)>,
}

/// Splits a collected, marked frame.
#[tracing::instrument(level = "debug", skip_all, fields(source = origin.source, rows = marked.height()))]
pub fn split(marked: DataFrame, origin: &Origin<'_>) -> PolarsResult<Split> {
    let reasons = marked.column(REJECT)?.str()?.clone();
    let rejected_mask = reasons.is_not_null();
    // Most partitions of most rules reject nothing: then the frame is kept as it is, not
    // copied through a filter.
    let kept = if reasons.null_count() == reasons.len() {
        marked.drop(REJECT)?
    } else {
        marked.filter(&!&rejected_mask)?.drop(REJECT)?
    };
    let rejected = marked.filter(&rejected_mask)?;
    let quarantined = quarantine_rows(&rejected, origin)?;
    let mut removed: Vec<(String, u64)> = Vec::new();
    for reason in rejected.column(REJECT)?.str()?.iter().flatten() {
        let rule = reason.split(": ").next().unwrap_or(reason);
        add_removed(&mut removed, rule, 1);
    }
    Ok(Split {
        kept,
        quarantined,
        removed,
    })
}

/// Adds `n` rows removed by `rule` to per-rule counts kept in first-seen order.
pub fn add_removed(removed: &mut Vec<(String, u64)>, rule: &str, n: u64) {
    match removed.iter_mut().find(|(r, _)| r == rule) {
        Some((_, total)) => *total += n,
        None => removed.push((rule.to_string(), n)),
    }
}

/// An empty `clean.quarantine`-shaped frame (without `dt`).
pub fn empty_quarantine() -> PolarsResult<DataFrame> {
    quarantine_frame(NaiveDate::default(), Vec::new())
}

struct Row {
    stage: String,
    run_id: String,
    source: String,
    row_key: String,
    rule: String,
    reason: String,
    row: String,
}

/// The rejected rows as quarantine rows. Cells are read a column at a time (one pass down
/// each column, skipping the ones no row keeps): reading cell by cell across the row cost a
/// chunk lookup per cell. Each row's JSON objects are written as text while the columns are
/// read, their keys in name order as a JSON map would order them, rather than built as maps
/// first (a tree insert and a key copy per cell).
fn quarantine_rows(rejected: &DataFrame, origin: &Origin<'_>) -> PolarsResult<DataFrame> {
    let n = rejected.height();
    let mut keys = vec![String::from("{"); n];
    let mut cells = vec![String::from("{"); n];
    let mut columns: Vec<&Column> = rejected.columns().iter().collect();
    columns.sort_by(|a, b| a.name().as_str().cmp(b.name().as_str()));
    for column in columns {
        let name = column.name().as_str();
        let in_key = origin.key.contains(&name);
        let in_row = name != REJECT && !BULKY_COLUMNS.contains(&name) && !name.starts_with('_');
        if !in_key && !in_row {
            continue;
        }
        let label = format!("{}:", Value::String(name.to_string()));
        for (i, cell) in column.as_materialized_series().iter().enumerate() {
            let value = json_value(&cell).to_string();
            if in_key {
                add_member(&mut keys[i], &label, &value);
            }
            if in_row {
                add_member(&mut cells[i], &label, &value);
            }
        }
    }
    let reasons = rejected.column(REJECT)?.str()?;
    let rows = reasons
        .iter()
        .zip(keys)
        .zip(cells)
        .map(|((reason, mut key), mut row)| {
            key.push('}');
            row.push('}');
            let reason = reason.unwrap_or_default().to_string();
            let rule = reason.split(": ").next().unwrap_or(&reason).to_string();
            Row {
                stage: origin.stage.to_string(),
                run_id: origin.run_id.to_string(),
                source: origin.source.to_string(),
                row_key: key,
                rule,
                reason,
                row,
            }
        })
        .collect();
    quarantine_frame(origin.dt, rows)
}

/// Appends `"name":value` to an open JSON object.
fn add_member(object: &mut String, label: &str, value: &str) {
    // Only the opening brace is there before the first member.
    if object.len() > 1 {
        object.push(',');
    }
    object.push_str(label);
    object.push_str(value);
}

fn quarantine_frame(dt: NaiveDate, rows: Vec<Row>) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let days = (dt - NaiveDate::default()).num_days() as i32;
    let text = |f: &dyn Fn(&Row) -> &str, name: &str| -> Column {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    DataFrame::new_infer_height(vec![
        Column::new("dt".into(), vec![days; n]).cast(&DataType::Date)?,
        text(&|r| &r.stage, "stage"),
        text(&|r| &r.run_id, "run_id"),
        text(&|r| &r.source, "source"),
        text(&|r| &r.row_key, "row_key"),
        text(&|r| &r.rule, "rule"),
        text(&|r| &r.reason, "reason"),
        text(&|r| &r.row, "row"),
    ])
}

/// A cell as JSON: numbers and booleans as such, everything else (dates, times, text) as
/// its display text.
fn json_value(v: &AnyValue<'_>) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(x) => Value::from(*x),
        AnyValue::Int16(x) => Value::from(*x),
        AnyValue::Int32(x) => Value::from(*x),
        AnyValue::Int64(x) => Value::from(*x),
        AnyValue::UInt8(x) => Value::from(*x),
        AnyValue::UInt16(x) => Value::from(*x),
        AnyValue::UInt32(x) => Value::from(*x),
        AnyValue::UInt64(x) => Value::from(*x),
        AnyValue::Float32(x) => Value::from(*x),
        AnyValue::Float64(x) => Value::from(*x),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cleanse::reject::{reject_where, with_reject};

    #[test]
    fn rejected_rows_become_quarantine_rows_with_key_reason_and_row() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("line".into(), [1u64, 2, 3]),
            Column::new("revenue_micros".into(), [Some(5i64), Some(-1), None]),
            Column::new("properties".into(), ["{}", "{\"big\":1}", "{}"]),
        ])
        .unwrap();
        let lf = reject_where(
            with_reject(df.lazy()),
            col("revenue_micros").lt(lit(0)),
            "malformed",
            "negative revenue_micros",
        );
        let origin = Origin {
            stage: "cleanse",
            run_id: "r1",
            source: "raw.mixpanel_export",
            dt: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            key: &["line"],
        };
        let out = split(lf.collect().unwrap(), &origin).unwrap();
        assert_eq!(out.kept.height(), 2);
        assert!(out.kept.column(REJECT).is_err());
        assert_eq!(out.removed, vec![("malformed".to_string(), 1)]);
        let q = &out.quarantined;
        let s = |c: &str| {
            q.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .unwrap()
                .to_string()
        };
        assert_eq!(s("row_key"), r#"{"line":2}"#);
        assert_eq!(s("rule"), "malformed");
        assert_eq!(s("reason"), "malformed: negative revenue_micros");
        assert_eq!(s("row"), r#"{"line":2,"revenue_micros":-1}"#);
        assert_eq!(s("source"), "raw.mixpanel_export");
    }

    #[test]
    fn row_json_orders_keys_by_name_and_escapes_text_as_a_json_map_would() {
        let df = DataFrame::new_infer_height(vec![
            Column::new("zone".into(), ["Asia/Seoul", "UTC"]),
            Column::new("line".into(), [7u64, 8]),
            Column::new("Name".into(), [Some("a \"quoted\" \\ name\n"), None]),
            Column::new("amount".into(), [1.5f64, -2.0]),
            Column::new("ok".into(), [true, false]),
        ])
        .unwrap();
        let lf = reject_where(with_reject(df.clone().lazy()), lit(true), "test", "all");
        let origin = Origin {
            stage: "cleanse",
            run_id: "r1",
            source: "raw.x",
            dt: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            key: &["zone", "line"],
        };
        let q = split(lf.collect().unwrap(), &origin).unwrap().quarantined;
        let texts = |c: &str| crate::test_support::strs(&q, c);
        for (i, (key, row)) in texts("row_key").into_iter().zip(texts("row")).enumerate() {
            let mut want_key = serde_json::Map::new();
            let mut want_row = serde_json::Map::new();
            for c in df.columns() {
                let value = json_value(&c.get(i).unwrap());
                if origin.key.contains(&c.name().as_str()) {
                    want_key.insert(c.name().to_string(), value.clone());
                }
                want_row.insert(c.name().to_string(), value);
            }
            assert_eq!(key.unwrap(), Value::Object(want_key).to_string());
            assert_eq!(row.unwrap(), Value::Object(want_row).to_string());
        }
    }
}
