//! Errors of schema loading, lookup and frame validation.

/// Everything that can go wrong with schemas.
///
/// Frame-validation variants carry the qualified table, the partition label and
/// the column because the person reading the message is usually looking at a
/// failed batch run and needs to know which file to open. `Clone` so that the
/// embedded registry can hand back the same load error on every call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The file is not valid TOML, or has an unknown or missing key.
    #[error("schema file {file}: {message}")]
    Syntax { file: String, message: String },

    /// The file parses but breaks a rule of the format.
    #[error("schema file {file}: {problem}")]
    Invalid { file: String, problem: String },

    /// Two files define the same `layer.name`.
    #[error("table {table} is defined twice: in {first} and in {second}")]
    DuplicateTable {
        table: String,
        first: String,
        second: String,
    },

    #[error("unknown table {name:?}{}", suggest(suggestions))]
    UnknownTable {
        name: String,
        suggestions: Vec<String>,
    },

    #[error(
        "table {table}, partition {partition}: column {column:?} ({expected}) is missing from the frame"
    )]
    MissingColumn {
        table: String,
        partition: String,
        column: String,
        expected: String,
    },

    #[error(
        "table {table}, partition {partition}: column {column:?} has type {found}, expected {expected}"
    )]
    WrongType {
        table: String,
        partition: String,
        column: String,
        expected: String,
        found: String,
    },

    #[error(
        "table {table}, partition {partition}: column {column:?} ({found}) is not in the schema; drop it before writing or declare it in the table's schema file"
    )]
    UnexpectedColumn {
        table: String,
        partition: String,
        column: String,
        found: String,
    },

    #[error(
        "table {table}, partition {partition}: {} column {column:?} has {nulls} null value(s) in {rows} row(s){}",
        if *key { "primary-key" } else { "non-nullable" },
        if *key { "; a key must never be null" } else { "; fill them or declare the column nullable = true" }
    )]
    NullValues {
        table: String,
        partition: String,
        column: String,
        nulls: usize,
        rows: usize,
        /// True when the column is part of the primary key: the serious case.
        key: bool,
    },

    #[error(
        "table {table}, partition {partition}: string column {column:?} has a value of {found} characters, over its max_length {max_length}"
    )]
    TooLong {
        table: String,
        partition: String,
        column: String,
        max_length: u32,
        found: u32,
    },

    /// A Polars operation used by validation itself failed.
    #[error("table {table}, partition {partition}: checking column {column:?} failed: {message}")]
    Check {
        table: String,
        partition: String,
        column: String,
        message: String,
    },
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "; no schema tables are loaded".to_string()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}
