//! Reading one schema file into a [`TableSchema`], with every format rule checked.

use std::collections::HashSet;

use polars::prelude::DataType;
use serde::Deserialize;

use super::types::{is_integer, parse_type};
use super::{ColumnSchema, Layer, SchemaError, TableSchema};

/// MySQL's InnoDB limit on the bytes of one index key (DYNAMIC row format).
const MYSQL_MAX_KEY_BYTES: u32 = 3072;
/// `max_length` from which DDL uses TEXT instead of VARCHAR.
pub(crate) const TEXT_FROM_LENGTH: u32 = 1024;
pub(crate) const DEFAULT_VARCHAR: u32 = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    layer: String,
    description: String,
    partition: Option<String>,
    primary_key: Vec<String>,
    /// Layout version of the table's files; absent means 1.
    #[serde(default = "first_version")]
    version: u32,
    /// The oldest layout version this build still reads; absent means 1 (every one).
    #[serde(default = "first_version")]
    oldest_readable_version: u32,
    columns: Vec<RawColumn>,
}

fn first_version() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    nullable: bool,
    description: String,
    unit: Option<String>,
    currency_column: Option<String>,
    max_length: Option<u32>,
}

/// Names end up as MySQL identifiers, Parquet column names and Hive path
/// segments, so only the characters safe in all three are allowed.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `text`, the content of `path` (relative to `schemas/`, e.g. `sim/events.toml`).
pub(crate) fn parse_table(path: &str, text: &str) -> Result<TableSchema, SchemaError> {
    let invalid = |problem: String| SchemaError::Invalid {
        file: path.to_string(),
        problem,
    };

    let (folder, file_name) = path.split_once('/').ok_or_else(|| {
        invalid("a schema file must live at <layer>/<table>.toml under schemas/".into())
    })?;
    let folder_layer: Layer = folder.parse().map_err(|_| {
        invalid(format!(
            "folder {folder:?} is not a layer; layers are {}",
            Layer::ALL.map(|l| l.as_str()).join(", ")
        ))
    })?;
    let stem = file_name
        .strip_suffix(".toml")
        .filter(|s| !s.contains('/'))
        .ok_or_else(|| {
            invalid("a schema file must live at <layer>/<table>.toml under schemas/".into())
        })?;

    let raw: RawTable = toml::from_str(text).map_err(|e| SchemaError::Syntax {
        file: path.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;

    let mut problems: Vec<String> = Vec::new();

    if raw.layer != folder_layer.as_str() {
        problems.push(format!(
            "layer = {:?} but the file is in folder {folder:?}; they must agree",
            raw.layer
        ));
    }
    if !is_identifier(&raw.name) {
        problems.push(format!(
            "table name {:?} must be letters, digits and _ (not starting with a digit)",
            raw.name
        ));
    }
    if raw.name != stem {
        problems.push(format!(
            "name = {:?} but the file is named {stem}.toml; they must agree",
            raw.name
        ));
    }
    if raw.description.trim().is_empty() {
        problems.push("the table needs a description".into());
    }
    if raw.columns.is_empty() {
        problems.push("the table has no [[columns]]".into());
    }

    let mut columns: Vec<ColumnSchema> = Vec::with_capacity(raw.columns.len());
    let mut seen = HashSet::new();
    for rc in raw.columns {
        let c = &rc.name;
        if !is_identifier(c) {
            problems.push(format!(
                "column name {c:?} must be letters, digits and _ (not starting with a digit)"
            ));
        }
        if !seen.insert(c.clone()) {
            problems.push(format!("duplicate column {c:?}"));
        }
        if rc.description.trim().is_empty() {
            problems.push(format!("column {c:?} needs a description"));
        }
        if let Some(u) = &rc.unit
            && u.trim().is_empty()
        {
            problems.push(format!("column {c:?}: unit is empty; omit it instead"));
        }
        let parsed = match parse_type(&rc.type_name) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("column {c:?}: {e}"));
                continue;
            }
        };
        if let Some(n) = rc.max_length {
            if parsed.dtype != DataType::String {
                problems.push(format!(
                    "column {c:?}: max_length applies only to string columns, not {}",
                    parsed.name
                ));
            } else if n == 0 {
                problems.push(format!("column {c:?}: max_length must be at least 1"));
            }
        }
        columns.push(ColumnSchema {
            name: rc.name,
            dtype: parsed.dtype,
            type_name: parsed.name,
            nullable: rc.nullable,
            description: rc.description,
            unit: rc.unit,
            currency_column: rc.currency_column,
            max_length: rc.max_length,
        });
    }

    let find = |name: &str| columns.iter().find(|c| c.name == name);
    // A column whose type failed to parse is already reported; don't also call it missing.
    let unlisted = |name: &str| !seen.contains(name);

    for col in &columns {
        let Some(cur) = &col.currency_column else {
            continue;
        };
        let c = &col.name;
        match find(cur) {
            None if !unlisted(cur) => {}
            None => problems.push(format!(
                "money column {c:?}: currency_column {cur:?} is not a column of this table"
            )),
            Some(cc) if cc.dtype != DataType::String => problems.push(format!(
                "money column {c:?}: currency_column {cur:?} must be a string column, not {}",
                cc.type_name
            )),
            Some(cc) if cc.currency_column.is_some() => problems.push(format!(
                "money column {c:?}: currency_column {cur:?} is itself a money column"
            )),
            Some(cc) if !col.nullable && cc.nullable => problems.push(format!(
                "money column {c:?} is not nullable but its currency column {cur:?} is: an amount without a currency means nothing"
            )),
            Some(_) => {}
        }
        if !(is_integer(&col.dtype) || col.dtype == DataType::Float64) {
            problems.push(format!(
                "money column {c:?} must be an integer type or float64, not {}",
                col.type_name
            ));
        }
        if col.unit.is_none() {
            problems.push(format!(
                "money column {c:?} needs a unit (e.g. unit = \"micros\"): money never comes without a stated unit"
            ));
        }
    }

    if let Some(p) = &raw.partition {
        match find(p) {
            None if !unlisted(p) => {}
            None => problems.push(format!(
                "partition column {p:?} is not listed in [[columns]]"
            )),
            Some(pc) if pc.dtype != DataType::Date => problems.push(format!(
                "partition column {p:?} must have type \"date\", not {:?}",
                pc.type_name
            )),
            Some(pc) if pc.nullable => problems.push(format!(
                "partition column {p:?} cannot be nullable: it names the dt=YYYY-MM-DD folder"
            )),
            Some(_) => {}
        }
    }

    let mut key_seen = HashSet::new();
    let mut key_bytes: u32 = 0;
    for k in &raw.primary_key {
        if !key_seen.insert(k.as_str()) {
            problems.push(format!("primary_key lists {k:?} twice"));
        }
        match find(k) {
            None if !unlisted(k) => {}
            None => problems.push(format!(
                "primary_key column {k:?} is not listed in [[columns]]"
            )),
            Some(kc) => {
                if kc.nullable {
                    problems.push(format!(
                        "primary_key column {k:?} is nullable; key columns must be nullable = false"
                    ));
                }
                if kc.dtype == DataType::String {
                    let len = kc.max_length.unwrap_or(DEFAULT_VARCHAR);
                    if len >= TEXT_FROM_LENGTH {
                        problems.push(format!(
                            "primary_key column {k:?} has max_length {len} (TEXT in MySQL), which cannot be a key; use < {TEXT_FROM_LENGTH}"
                        ));
                    }
                    key_bytes = key_bytes.saturating_add(len.saturating_mul(4));
                } else {
                    key_bytes = key_bytes.saturating_add(8);
                }
            }
        }
    }
    if folder_layer == Layer::Mart {
        if raw.primary_key.is_empty() {
            problems.push("a mart table needs a primary_key: MySQL upserts by it".into());
        }
        if key_bytes > MYSQL_MAX_KEY_BYTES {
            problems.push(format!(
                "primary key is up to {key_bytes} bytes in utf8mb4, over MySQL's {MYSQL_MAX_KEY_BYTES}; lower the key columns' max_length"
            ));
        }
    }

    if raw.oldest_readable_version == 0 || raw.oldest_readable_version > raw.version {
        problems.push(format!(
            "oldest_readable_version {} must be from 1 to the table's version {}",
            raw.oldest_readable_version, raw.version
        ));
    }

    if !problems.is_empty() {
        return Err(invalid(problems.join("; ")));
    }
    Ok(TableSchema {
        layer: folder_layer,
        name: raw.name,
        description: raw.description,
        partition: raw.partition,
        primary_key: raw.primary_key,
        version: raw.version,
        oldest_readable_version: raw.oldest_readable_version,
        columns,
    })
}
