//! Table schemas as data.
//!
//! Every table of every lake layer is described by one TOML file
//! `schemas/<layer>/<table>.toml`, embedded into the binary by `build.rs` so a
//! deployed binary can never disagree with the schemas it was built with. The
//! same description drives frame validation before writes, `describe` output
//! and the MySQL DDL of the mart, so the three cannot drift apart.

mod ddl;
mod error;
mod parse;
mod types;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use polars::prelude::{DataFrame, DataType, Schema};

pub use ddl::mart_ddl;
pub use error::SchemaError;

/// `(path relative to schemas/, file text)`, sorted by path; written by `build.rs`.
pub const EMBEDDED_SCHEMAS: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/embedded_schemas.rs"));

/// A layer of the lake; each is a folder under `schemas/` and under the lake root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Sim,
    Truth,
    Raw,
    Clean,
    Mart,
}

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::Sim,
        Layer::Truth,
        Layer::Raw,
        Layer::Clean,
        Layer::Mart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Sim => "sim",
            Layer::Truth => "truth",
            Layer::Raw => "raw",
            Layer::Clean => "clean",
            Layer::Mart => "mart",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown layer {s:?}; layers are {}",
                    Layer::ALL.map(|l| l.as_str()).join(", ")
                )
            })
    }
}

/// One column as declared in a schema file.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub dtype: DataType,
    /// Canonical type string, e.g. `datetime[ms, UTC]`; used in messages and `describe`.
    pub type_name: String,
    pub nullable: bool,
    pub description: String,
    pub unit: Option<String>,
    /// Set on money columns: the string column holding the ISO currency code.
    pub currency_column: Option<String>,
    /// For strings: the MySQL length and, when set, a limit enforced by `validate`.
    pub max_length: Option<u32>,
}

impl ColumnSchema {
    pub fn is_money(&self) -> bool {
        self.currency_column.is_some()
    }
}

/// One table of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub layer: Layer,
    pub name: String,
    pub description: String,
    /// Date column whose value is the Hive folder `dt=YYYY-MM-DD` rather than file content.
    pub partition: Option<String>,
    pub primary_key: Vec<String>,
    /// Layout version of the table's files (TOML `version`, default 1), recorded in every
    /// partition's manifest. A reader meeting a partition of a newer version than it knows
    /// stops that partition rather than misreading it.
    pub version: u32,
    /// The oldest layout version a scan still reads (TOML `oldest_readable_version`, default
    /// 1). Raised when old files lack what the readers now need and cannot be read as if
    /// they had it: a scan meeting an older partition stops, naming it, rather than failing
    /// later on a missing column or, worse, reading it wrongly.
    pub oldest_readable_version: u32,
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    /// `layer.name`, the key of the registry and the label in every message.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.layer, self.name)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn is_key(&self, column: &str) -> bool {
        self.primary_key.iter().any(|k| k == column)
    }

    pub fn is_partition(&self, column: &str) -> bool {
        self.partition.as_deref() == Some(column)
    }

    /// All columns, in file order, including the partition column: what a
    /// Hive-partitioned scan of the whole table yields.
    pub fn polars_schema(&self) -> Schema {
        self.columns
            .iter()
            .map(|c| (c.name.as_str().into(), c.dtype.clone()))
            .collect()
    }

    /// What one partition's Parquet file holds: the partition column lives in the path.
    pub fn file_schema(&self) -> Schema {
        self.columns
            .iter()
            .filter(|c| !self.is_partition(&c.name))
            .map(|c| (c.name.as_str().into(), c.dtype.clone()))
            .collect()
    }

    /// A typed empty partition, so that "no rows today" still writes a readable file.
    pub fn empty_frame(&self) -> DataFrame {
        DataFrame::empty_with_schema(&self.file_schema())
    }
}

/// All schemas, keyed by `layer.name`.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tables: BTreeMap<String, TableSchema>,
    /// Source file of each table, to name both files on a duplicate.
    sources: BTreeMap<String, String>,
}

static EMBEDDED: OnceLock<Result<Registry, SchemaError>> = OnceLock::new();

impl Registry {
    /// The schemas compiled into this binary, parsed once per process.
    pub fn embedded() -> Result<&'static Registry, SchemaError> {
        match EMBEDDED.get_or_init(|| Registry::from_sources(EMBEDDED_SCHEMAS)) {
            Ok(r) => Ok(r),
            Err(e) => Err(e.clone()),
        }
    }

    /// Builds a registry from `(path relative to schemas/, text)` pairs.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Registry, SchemaError> {
        let mut reg = Registry::default();
        for (path, text) in files {
            let path = path.replace('\\', "/");
            let table = parse::parse_table(&path, text)?;
            let q = table.qualified_name();
            if let Some(first) = reg.sources.get(&q) {
                return Err(SchemaError::DuplicateTable {
                    table: q,
                    first: first.clone(),
                    second: path,
                });
            }
            reg.sources.insert(q.clone(), path);
            reg.tables.insert(q, table);
        }
        Ok(reg)
    }

    /// Looks a table up by `layer.name`; `layer_name` and `layer/name` are
    /// accepted too because that is how tables appear in MySQL and in paths.
    pub fn get(&self, qualified: &str) -> Result<&TableSchema, SchemaError> {
        let q = qualified.trim();
        if let Some(t) = self.tables.get(q) {
            return Ok(t);
        }
        for sep in ['_', '/'] {
            if let Some((layer, name)) = q.split_once(sep)
                && layer.parse::<Layer>().is_ok()
                && let Some(t) = self.tables.get(&format!("{layer}.{name}"))
            {
                return Ok(t);
            }
        }
        Err(SchemaError::UnknownTable {
            name: qualified.to_string(),
            suggestions: self.near_names(q),
        })
    }

    /// Tables sorted by qualified name.
    pub fn tables(&self) -> impl Iterator<Item = &TableSchema> {
        self.tables.values()
    }

    /// Tables of one layer, sorted by name.
    pub fn layer(&self, layer: Layer) -> impl Iterator<Item = &TableSchema> {
        self.tables.values().filter(move |t| t.layer == layer)
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    fn near_names(&self, q: &str) -> Vec<String> {
        let q = q.to_lowercase();
        let mut scored: Vec<(usize, &String)> = self
            .tables
            .iter()
            .map(|(qn, t)| {
                let d = levenshtein(&q, qn)
                    .min(levenshtein(&q, &format!("{}_{}", t.layer, t.name)))
                    .min(levenshtein(&q, &t.name));
                (d, qn)
            })
            .collect();
        scored.sort();
        scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests;
