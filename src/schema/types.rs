//! Type strings of the schema files and their Polars / MySQL counterparts.
//!
//! The schema files use a small closed vocabulary of type strings rather than
//! Polars' own names so that a file reads the same to someone who knows only
//! SQL, and so that every type we accept has a known MySQL mapping.

use std::str::FromStr;

use polars::prelude::{DataType, TimeUnit, TimeZone};

/// A parsed type string: the Polars dtype plus its canonical spelling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedType {
    pub dtype: DataType,
    /// Canonical spelling, e.g. `datetime[ms, UTC]` whatever spacing the file used.
    pub name: String,
}

const SIMPLE_TYPES: &[&str] = &[
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
    "float64", "string", "date",
];

/// Human list of accepted spellings, for error messages.
pub(crate) fn accepted_types() -> String {
    format!(
        "{}, datetime[ms|us|ns] or datetime[ms|us|ns, <IANA zone>], duration[ms|us|ns]",
        SIMPLE_TYPES.join(", ")
    )
}

fn parse_unit(s: &str) -> Option<TimeUnit> {
    match s.trim() {
        "ms" => Some(TimeUnit::Milliseconds),
        "us" => Some(TimeUnit::Microseconds),
        "ns" => Some(TimeUnit::Nanoseconds),
        _ => None,
    }
}

pub(crate) fn unit_str(tu: TimeUnit) -> &'static str {
    match tu {
        TimeUnit::Milliseconds => "ms",
        TimeUnit::Microseconds => "us",
        TimeUnit::Nanoseconds => "ns",
    }
}

/// Parses a type string; the error is a sentence fit to follow "column x: ".
pub(crate) fn parse_type(s: &str) -> Result<ParsedType, String> {
    let t = s.trim();
    let simple = match t {
        "bool" => Some(DataType::Boolean),
        "int8" => Some(DataType::Int8),
        "int16" => Some(DataType::Int16),
        "int32" => Some(DataType::Int32),
        "int64" => Some(DataType::Int64),
        "uint8" => Some(DataType::UInt8),
        "uint16" => Some(DataType::UInt16),
        "uint32" => Some(DataType::UInt32),
        "uint64" => Some(DataType::UInt64),
        "float32" => Some(DataType::Float32),
        "float64" => Some(DataType::Float64),
        "string" => Some(DataType::String),
        "date" => Some(DataType::Date),
        _ => None,
    };
    if let Some(dtype) = simple {
        return Ok(ParsedType {
            dtype,
            name: t.to_string(),
        });
    }
    let unknown = || format!("unknown type {s:?}; accepted: {}", accepted_types());
    if let Some(inner) = t
        .strip_prefix("duration[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let tu = parse_unit(inner).ok_or_else(unknown)?;
        return Ok(ParsedType {
            dtype: DataType::Duration(tu),
            name: format!("duration[{}]", unit_str(tu)),
        });
    }
    if let Some(inner) = t
        .strip_prefix("datetime[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let (unit, zone) = match inner.split_once(',') {
            Some((u, z)) => (u, Some(z.trim())),
            None => (inner, None),
        };
        let tu = parse_unit(unit).ok_or_else(unknown)?;
        let Some(zone) = zone else {
            return Ok(ParsedType {
                dtype: DataType::Datetime(tu, None),
                name: format!("datetime[{}]", unit_str(tu)),
            });
        };
        // Validate with chrono-tz first: its error is clearer than Polars' and it
        // rejects the fixed offsets Polars would silently rewrite.
        if chrono_tz::Tz::from_str(zone).is_err() {
            return Err(format!(
                "type {s:?}: {zone:?} is not an IANA time zone name (e.g. UTC, Asia/Seoul)"
            ));
        }
        let tz = TimeZone::opt_try_new(Some(zone))
            .map_err(|e| format!("type {s:?}: Polars rejects time zone {zone:?}: {e}"))?;
        let canonical = tz
            .as_ref()
            .map(|z| z.to_string())
            .unwrap_or_else(|| zone.to_string());
        return Ok(ParsedType {
            dtype: DataType::Datetime(tu, tz),
            name: format!("datetime[{}, {canonical}]", unit_str(tu)),
        });
    }
    Err(unknown())
}

/// Names a dtype in the schema-file vocabulary where possible, so that
/// "expected X, found Y" messages compare like with like.
pub(crate) fn dtype_name(dtype: &DataType) -> String {
    match dtype {
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::String => "string".into(),
        DataType::Date => "date".into(),
        DataType::Datetime(tu, None) => format!("datetime[{}]", unit_str(*tu)),
        DataType::Datetime(tu, Some(tz)) => format!("datetime[{}, {tz}]", unit_str(*tu)),
        DataType::Duration(tu) => format!("duration[{}]", unit_str(*tu)),
        other => format!("{other} (Polars type, not allowed in schemas)"),
    }
}

pub(crate) fn is_integer(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_temporal_types_parse() {
        assert_eq!(parse_type("uint64").unwrap().dtype, DataType::UInt64);
        assert_eq!(parse_type("string").unwrap().dtype, DataType::String);
        let t = parse_type("datetime[ms,  UTC]").unwrap();
        assert_eq!(t.name, "datetime[ms, UTC]");
        assert_eq!(
            t.dtype,
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        );
        let t = parse_type("datetime[us, Asia/Seoul]").unwrap();
        assert_eq!(t.name, "datetime[us, Asia/Seoul]");
        assert_eq!(dtype_name(&t.dtype), "datetime[us, Asia/Seoul]");
        assert_eq!(
            parse_type("datetime[ns]").unwrap().dtype,
            DataType::Datetime(TimeUnit::Nanoseconds, None)
        );
        assert_eq!(
            parse_type("duration[us]").unwrap().dtype,
            DataType::Duration(TimeUnit::Microseconds)
        );
    }

    #[test]
    fn bad_types_are_rejected() {
        for bad in [
            "int",
            "str",
            "datetime",
            "datetime[s]",
            "datetime[ms, Mars/Olympus]",
            "duration[ms, UTC]",
            "Int64",
        ] {
            assert!(parse_type(bad).is_err(), "{bad} should be rejected");
        }
    }
}
