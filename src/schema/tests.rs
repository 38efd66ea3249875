//! Tests of the schema module: loading, rules of the file format, validation, DDL.

use polars::prelude::*;

use super::*;

const EVENTS: &str = r#"
name = "events"
layer = "sim"
description = "Test events."
partition = "dt"
primary_key = ["row_id"]

[[columns]]
name = "dt"
type = "date"
description = "Event date."

[[columns]]
name = "row_id"
type = "uint64"
description = "Unique id."

[[columns]]
name = "time"
type = "datetime[ms, UTC]"
description = "When it happened."

[[columns]]
name = "currency"
type = "string"
nullable = true
max_length = 3
description = "ISO code."

[[columns]]
name = "revenue_micros"
type = "int64"
nullable = true
unit = "micros"
currency_column = "currency"
description = "Purchase amount."
"#;

fn events() -> TableSchema {
    Registry::from_sources(&[("sim/events.toml", EVENTS)])
        .unwrap()
        .get("sim.events")
        .unwrap()
        .clone()
}

/// A valid frame of one partition, without the partition column (as the lake writes it).
fn valid_frame() -> DataFrame {
    let time = Series::new("time".into(), [1_700_000_000_000i64, 1_700_000_001_000])
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
    DataFrame::new_infer_height(vec![
        Column::new("row_id".into(), [1u64, 2]),
        time.into(),
        Column::new("currency".into(), [Some("USD"), None]),
        Column::new("revenue_micros".into(), [Some(990_000i64), None]),
    ])
    .unwrap()
}

fn with_dt(df: DataFrame, dt: Column) -> DataFrame {
    let mut df = df;
    df.with_column(dt).unwrap();
    df
}

fn date_col(values: &[Option<i32>]) -> Column {
    Column::new("dt".into(), values)
        .cast(&DataType::Date)
        .unwrap()
}

fn assert_names(err: &SchemaError, column: &str) {
    let msg = err.to_string();
    for part in ["sim.events", "dt=2026-01-03", &format!("\"{column}\"")] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
}

// ---------- embedded schemas ----------

#[test]
fn embedded_schemas_parse_and_build_polars_schemas() {
    let reg = Registry::embedded().unwrap();
    assert!(reg.get("mart.campaign_daily").is_ok());
    assert!(reg.get("mart.user_ltv").is_ok());
    assert_eq!(reg.len(), EMBEDDED_SCHEMAS.len());
    for t in reg.tables() {
        let full = t.polars_schema();
        let file = t.file_schema();
        assert_eq!(full.len(), t.columns.len(), "{}", t.qualified_name());
        for c in &t.columns {
            assert_eq!(full.get(&c.name), Some(&c.dtype), "{}", t.qualified_name());
            assert_eq!(file.contains(&c.name), !t.is_partition(&c.name));
        }
        assert_eq!(t.empty_frame().schema().as_ref(), &file);
        // An empty partition of the right shape must always validate.
        t.validate(&t.empty_frame(), "dt=2026-01-03").unwrap();
    }
    // Same instance every call: parsed once.
    assert!(std::ptr::eq(reg, Registry::embedded().unwrap()));
}

#[test]
fn embedded_list_is_sorted_and_relative() {
    let paths: Vec<&str> = EMBEDDED_SCHEMAS.iter().map(|(p, _)| *p).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.contains(&"mart/campaign_daily.toml"));
}

#[test]
fn lookup_accepts_aliases_and_suggests_near_names() {
    let reg = Registry::embedded().unwrap();
    assert_eq!(
        reg.get("mart_campaign_daily").unwrap().qualified_name(),
        "mart.campaign_daily"
    );
    assert_eq!(
        reg.get("mart/user_ltv").unwrap().qualified_name(),
        "mart.user_ltv"
    );
    let err = reg.get("mart.campaign_dialy").unwrap_err();
    assert!(matches!(err, SchemaError::UnknownTable { .. }));
    assert!(err.to_string().contains("mart.campaign_daily"), "{err}");
}

#[test]
fn layer_round_trips() {
    for l in Layer::ALL {
        assert_eq!(l.to_string().parse::<Layer>().unwrap(), l);
    }
    assert_eq!("mart".parse::<Layer>().unwrap(), Layer::Mart);
    assert!("Mart".parse::<Layer>().is_err());
}

// ---------- validation ----------

#[test]
fn valid_frames_pass_with_or_without_partition_column() {
    let t = events();
    t.validate(&valid_frame(), "dt=2026-01-03").unwrap();
    let df = with_dt(valid_frame(), date_col(&[Some(20456), Some(20456)]));
    t.validate(&df, "dt=2026-01-03").unwrap();
}

#[test]
fn missing_column_is_rejected() {
    let df = valid_frame().drop("time").unwrap();
    let err = events().validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(matches!(err, SchemaError::MissingColumn { .. }), "{err}");
    assert_names(&err, "time");
}

#[test]
fn wrong_type_is_rejected_showing_both_types() {
    let mut df = valid_frame();
    let us = df
        .column("time")
        .unwrap()
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
    df.replace("time", us).unwrap();
    let err = events().validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(matches!(err, SchemaError::WrongType { .. }), "{err}");
    assert_names(&err, "time");
    let msg = err.to_string();
    assert!(
        msg.contains("has type datetime[us, UTC], expected datetime[ms, UTC]"),
        "{msg}"
    );
}

#[test]
fn partition_column_present_must_be_date_and_non_null() {
    let t = events();
    let df = with_dt(
        valid_frame(),
        Column::new("dt".into(), ["2026-01-03", "2026-01-03"]),
    );
    let err = t.validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(matches!(err, SchemaError::WrongType { .. }), "{err}");
    assert_names(&err, "dt");

    let df = with_dt(valid_frame(), date_col(&[Some(20456), None]));
    let err = t.validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(matches!(err, SchemaError::NullValues { .. }), "{err}");
    assert_names(&err, "dt");
}

#[test]
fn unexpected_column_is_rejected() {
    let mut df = valid_frame();
    df.with_column(Column::new("debug".into(), [1i32, 2]))
        .unwrap();
    let err = events().validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(matches!(err, SchemaError::UnexpectedColumn { .. }), "{err}");
    assert_names(&err, "debug");
}

#[test]
fn nulls_in_non_nullable_and_key_columns_are_rejected() {
    let t = events();
    let mut df = valid_frame();
    df.replace("row_id", Column::new("row_id".into(), [Some(1u64), None]))
        .unwrap();
    let err = t.validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(
        matches!(
            err,
            SchemaError::NullValues {
                key: true,
                nulls: 1,
                rows: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "row_id");
    assert!(err.to_string().contains("primary-key"), "{err}");

    let mut df = valid_frame();
    let time = Series::new("time".into(), [Some(1_700_000_000_000i64), None])
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
    df.replace("time", time.into()).unwrap();
    let err = t.validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(
        matches!(
            err,
            SchemaError::NullValues {
                key: false,
                nulls: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "time");
}

#[test]
fn declared_max_length_is_enforced() {
    let mut df = valid_frame();
    df.replace(
        "currency",
        Column::new("currency".into(), [Some("USDX"), None]),
    )
    .unwrap();
    let err = events().validate(&df, "dt=2026-01-03").unwrap_err();
    assert!(
        matches!(
            err,
            SchemaError::TooLong {
                found: 4,
                max_length: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "currency");
    // Multi-byte characters count as one each.
    let mut df = valid_frame();
    df.replace(
        "currency",
        Column::new("currency".into(), [Some("원화"), None]),
    )
    .unwrap();
    events().validate(&df, "dt=2026-01-03").unwrap();
}

// ---------- bad schema files ----------

const SMALL_OK: &str = r#"
name = "t"
layer = "raw"
description = "A table."
partition = "dt"
primary_key = ["id"]

[[columns]]
name = "dt"
type = "date"
description = "Date."

[[columns]]
name = "id"
type = "int64"
description = "Id."

[[columns]]
name = "currency"
type = "string"
description = "Code."

[[columns]]
name = "amount"
type = "int64"
unit = "micros"
currency_column = "currency"
description = "Money."
"#;

fn bad(text: &str, path: &str, expect: &str) {
    let err = Registry::from_sources(&[(path, text)]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(path), "{msg:?} does not name {path}");
    assert!(msg.contains(expect), "{msg:?} lacks {expect:?}");
}

#[test]
fn small_ok_schema_parses() {
    Registry::from_sources(&[("raw/t.toml", SMALL_OK)]).unwrap();
}

#[test]
fn unknown_key_is_rejected() {
    let text = SMALL_OK.replace("name = \"id\"", "name = \"id\"\nnulable = true");
    bad(&text, "raw/t.toml", "nulable");
    let text = SMALL_OK.replace("name = \"t\"", "name = \"t\"\nowner = \"me\"");
    bad(&text, "raw/t.toml", "owner");
}

#[test]
fn oldest_readable_version_is_within_the_tables_versions() {
    let versioned = |keys: &str| SMALL_OK.replace("name = \"t\"", &format!("name = \"t\"\n{keys}"));
    let ok = Registry::from_sources(&[(
        "raw/t.toml",
        &versioned("version = 3\noldest_readable_version = 2"),
    )])
    .unwrap();
    let t = ok.get("raw.t").unwrap();
    assert_eq!((t.version, t.oldest_readable_version), (3, 2));
    let plain = Registry::from_sources(&[("raw/t.toml", SMALL_OK)]).unwrap();
    assert_eq!(plain.get("raw.t").unwrap().oldest_readable_version, 1);
    for keys in [
        "version = 2\noldest_readable_version = 3",
        "oldest_readable_version = 0",
    ] {
        bad(&versioned(keys), "raw/t.toml", "oldest_readable_version");
    }
}

#[test]
fn unknown_type_is_rejected() {
    let text = SMALL_OK.replace(
        "type = \"int64\"\ndescription = \"Id.\"",
        "type = \"integer\"\ndescription = \"Id.\"",
    );
    bad(&text, "raw/t.toml", "\"integer\"");
    let text = SMALL_OK.replace("type = \"date\"", "type = \"datetime[ms, Nowhere/Town]\"");
    bad(&text, "raw/t.toml", "Nowhere/Town");
}

#[test]
fn money_without_unit_is_rejected() {
    let text = SMALL_OK.replace("unit = \"micros\"\n", "");
    bad(&text, "raw/t.toml", "needs a unit");
}

#[test]
fn money_of_wrong_type_is_rejected() {
    let text = SMALL_OK.replace(
        "type = \"int64\"\nunit = \"micros\"",
        "type = \"float32\"\nunit = \"micros\"",
    );
    bad(&text, "raw/t.toml", "integer type or float64");
}

#[test]
fn missing_currency_column_is_rejected() {
    let text = SMALL_OK.replace(
        "currency_column = \"currency\"",
        "currency_column = \"ccy\"",
    );
    bad(&text, "raw/t.toml", "\"ccy\"");
}

#[test]
fn partition_not_date_is_rejected() {
    let text = SMALL_OK.replace("type = \"date\"", "type = \"string\"");
    bad(
        &text,
        "raw/t.toml",
        "partition column \"dt\" must have type \"date\"",
    );
    let text = SMALL_OK.replace("partition = \"dt\"", "partition = \"day\"");
    bad(&text, "raw/t.toml", "\"day\"");
}

#[test]
fn nullable_key_is_rejected() {
    let text = SMALL_OK.replace("name = \"id\"", "name = \"id\"\nnullable = true");
    bad(&text, "raw/t.toml", "primary_key column \"id\" is nullable");
}

#[test]
fn duplicate_column_and_layer_mismatch_are_rejected() {
    let text = SMALL_OK.replace("name = \"currency\"", "name = \"id\"");
    bad(&text, "raw/t.toml", "duplicate column \"id\"");
    bad(SMALL_OK, "clean/t.toml", "folder \"clean\"");
    bad(SMALL_OK, "raw/u.toml", "u.toml");
    bad(SMALL_OK, "bronze/t.toml", "\"bronze\" is not a layer");
}

#[test]
fn duplicate_table_is_rejected() {
    let err =
        Registry::from_sources(&[("raw/t.toml", SMALL_OK), ("raw\\t.toml", SMALL_OK)]).unwrap_err();
    assert!(matches!(err, SchemaError::DuplicateTable { .. }), "{err}");
}

#[test]
fn embedded_error_is_cloneable_and_stable() {
    let err = Registry::from_sources(&[("raw/t.toml", "name = ")]).unwrap_err();
    assert!(matches!(err, SchemaError::Syntax { .. }));
    assert_eq!(err.clone(), err);
}

// ---------- DDL ----------

const MART_SMALL: &str = r#"
name = "small"
layer = "mart"
description = "Tiny table; it's for tests."
partition = "dt"
primary_key = ["dt", "code"]

[[columns]]
name = "dt"
type = "date"
description = "Report date."

[[columns]]
name = "code"
type = "string"
max_length = 16
description = "The code's value."

[[columns]]
name = "currency"
type = "string"
max_length = 3
description = "ISO currency."

[[columns]]
name = "amount_micros"
type = "int64"
nullable = true
unit = "micros"
currency_column = "currency"
description = "Amount."

[[columns]]
name = "n"
type = "uint32"
description = "Count."

[[columns]]
name = "share"
type = "float64"
nullable = true
unit = "share"
description = "A share."

[[columns]]
name = "at"
type = "datetime[us, Asia/Seoul]"
description = "When, with a back\\slash."

[[columns]]
name = "wait"
type = "duration[ms]"
description = "Wait."

[[columns]]
name = "notes"
type = "string"
nullable = true
max_length = 4000
description = "Free text."

[[columns]]
name = "flag"
type = "bool"
description = "A flag."
"#;

#[test]
fn ddl_format_is_locked() {
    let reg = Registry::from_sources(&[("mart/small.toml", MART_SMALL)]).unwrap();
    let ddl = reg.get("mart.small").unwrap().mysql_ddl();
    let expected = "CREATE TABLE IF NOT EXISTS `mart_small` (
  `dt` DATE NOT NULL COMMENT 'Report date.',
  `code` VARCHAR(16) NOT NULL COMMENT 'The code''s value.',
  `currency` VARCHAR(3) NOT NULL COMMENT 'ISO currency.',
  `amount_micros` BIGINT NULL COMMENT 'Amount. [micros of `currency`]',
  `n` INT UNSIGNED NOT NULL COMMENT 'Count.',
  `share` DOUBLE NULL COMMENT 'A share. [share]',
  `at` DATETIME(6) NOT NULL COMMENT 'When, with a back\\\\slash. [time zone Asia/Seoul]',
  `wait` BIGINT NOT NULL COMMENT 'Wait. [duration in milliseconds]',
  `notes` TEXT NULL COMMENT 'Free text.',
  `flag` TINYINT(1) NOT NULL COMMENT 'A flag.',
  PRIMARY KEY (`dt`, `code`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='Tiny table; it''s for tests. Grain: one row per dt, code.';
";
    assert_eq!(ddl, expected);
    assert_eq!(mart_ddl(&reg), expected);
}

#[test]
fn mart_ddl_covers_every_mart_table() {
    let reg = Registry::embedded().unwrap();
    let ddl = mart_ddl(reg);
    assert!(ddl.contains("CREATE TABLE IF NOT EXISTS `mart_campaign_daily` ("));
    assert!(ddl.contains("CREATE TABLE IF NOT EXISTS `mart_user_ltv` ("));
    assert!(ddl.contains(";\n\nCREATE TABLE"));
    assert!(!ddl.contains("sim_"));
}

#[test]
fn mart_key_must_fit_mysql() {
    let text = MART_SMALL.replace("max_length = 16", "max_length = 2000");
    bad(&text, "mart/small.toml", "cannot be a key");
    let text = MART_SMALL.replace("max_length = 16", "max_length = 900");
    bad(&text, "mart/small.toml", "over MySQL's 3072");
}

#[test]
fn describe_lists_every_column() {
    let reg = Registry::embedded().unwrap();
    let t = reg.get("mart.campaign_daily").unwrap();
    let d = t.describe();
    assert!(d.starts_with("mart.campaign_daily\n"), "{d}");
    assert!(d.contains("primary key: dt, channel, campaign_id"), "{d}");
    for c in &t.columns {
        assert!(d.contains(&c.name), "{d}");
    }
    assert!(d.contains("micros of currency"), "{d}");
}
