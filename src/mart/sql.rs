//! Statement text of the mart writer.
//!
//! Identifiers (table and column names) come only from the schema files, whose parser admits
//! letters, digits and `_`; they are backquoted all the same so that a reserved word
//! (`rank`, `path`) is a valid column. Every value travels as a `?` parameter of a prepared
//! statement and never appears in the text: a campaign called `'); DROP TABLE x; --` is data.

use crate::schema::TableSchema;

/// MySQL's limit on `?` placeholders in one prepared statement (a 16-bit count).
pub(crate) const MAX_PLACEHOLDERS: usize = 65_535;

/// The session mode of every mart connection: strict, so the server refuses a value that does
/// not fit rather than truncating it with a warning nobody reads. Backslash escapes stay on
/// because the DDL's comments are written for them.
pub(crate) const SESSION_SQL_MODE: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

/// The session character set: utf8mb4, so four-byte characters (emoji) are sent as they are.
pub(crate) const SESSION_NAMES: &str = "SET NAMES utf8mb4 COLLATE utf8mb4_bin";

/// `name` as a MySQL identifier: backquoted, any backquote doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `(?, ?, ?)` for `n` values.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(2 + n * 3);
    s.push('(');
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s.push(')');
    s
}

/// The schema's columns, backquoted and comma-separated, in schema order.
fn column_list(schema: &TableSchema) -> String {
    schema
        .columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE TABLE IF NOT EXISTS ...` from the schema's DDL, without the trailing `;` (one
/// statement per query).
pub(crate) fn create_table(schema: &TableSchema) -> String {
    let ddl = schema.mysql_ddl();
    ddl.trim_end().trim_end_matches(';').to_owned()
}

/// Name of the BI view over a mart table: `v_campaign_daily` over `mart_campaign_daily`.
pub(crate) fn view_name(schema: &TableSchema) -> String {
    format!("v_{}", schema.name)
}

/// Name of the currency-unit column the view puts beside a money column in micros:
/// `spend_micros` -> `spend`; `<name>_amount` when that would clash with a column.
fn amount_name(schema: &TableSchema, micros_column: &str) -> String {
    let base = micros_column
        .strip_suffix("_micros")
        .unwrap_or(micros_column);
    if base != micros_column && !schema.columns.iter().any(|c| c.name == base) {
        base.to_owned()
    } else {
        format!("{micros_column}_amount")
    }
}

/// `CREATE OR REPLACE VIEW v_<name>` for BI tools: every column of the table as it is, and
/// after each money column in micros (`unit = "micros"`) the same amount in currency units
/// as `DECIMAL(24,6)` (exact: a micro is the sixth decimal), so a Tableau or Metabase user
/// sums `spend` rather than dividing `spend_micros`. SQL SECURITY INVOKER: the view gives
/// nobody more than the table does.
pub(crate) fn create_view(schema: &TableSchema) -> String {
    let mut columns = Vec::with_capacity(schema.columns.len() * 2);
    for c in &schema.columns {
        columns.push(ident(&c.name));
        if c.unit.as_deref() == Some("micros") {
            columns.push(format!(
                "CAST({} / 1000000 AS DECIMAL(24,6)) AS {}",
                ident(&c.name),
                ident(&amount_name(schema, &c.name))
            ));
        }
    }
    format!(
        "CREATE OR REPLACE SQL SECURITY INVOKER VIEW {} AS SELECT {} FROM {}",
        ident(&view_name(schema)),
        columns.join(", "),
        ident(&schema.mysql_table_name())
    )
}

/// The column names MySQL has for the table, in table order; one `?`, the table name (the
/// current database is the one of the URL).
pub(crate) fn table_columns() -> &'static str {
    "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
}

/// `DELETE FROM t WHERE dt IN (?, ...)` for `dates` partition dates.
pub(crate) fn delete_partitions(schema: &TableSchema, partition: &str, dates: usize) -> String {
    format!(
        "DELETE FROM {} WHERE {} IN {}",
        ident(&schema.mysql_table_name()),
        ident(partition),
        placeholders(dates)
    )
}

/// The table that records, per mart and partition, which lake version MySQL holds: written in
/// the same transaction as the partition's rows, so the two never disagree.
pub(crate) const PUBLISHED_TABLE: &str = "ltv_published_partitions";

/// `CREATE TABLE IF NOT EXISTS` of [`PUBLISHED_TABLE`].
pub(crate) fn create_published_table() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
         `mart` VARCHAR(64) NOT NULL COMMENT 'MySQL table name of the mart', \
         `dt` DATE NOT NULL COMMENT 'the partition', \
         `version` VARCHAR(64) NOT NULL COMMENT 'lake manifest version the rows were copied from', \
         `rows_published` BIGINT UNSIGNED NOT NULL COMMENT 'rows copied', \
         `published_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), \
         PRIMARY KEY (`mart`, `dt`)\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin \
         COMMENT='ltv: which lake version of each mart partition MySQL holds (delete rows to force a republish)'",
        ident(PUBLISHED_TABLE)
    )
}

/// The recorded versions of one mart: `dt`, `version`; one `?`, the mart's table name.
pub(crate) fn select_published() -> String {
    format!(
        "SELECT `dt`, `version` FROM {} WHERE `mart` = ?",
        ident(PUBLISHED_TABLE)
    )
}

/// Rows per partition the mart table holds now: `SELECT dt, COUNT(*) ... GROUP BY dt`.
pub(crate) fn count_partitions(schema: &TableSchema, partition: &str) -> String {
    format!(
        "SELECT {p}, COUNT(*) FROM {t} GROUP BY {p}",
        p = ident(partition),
        t = ident(&schema.mysql_table_name())
    )
}

/// `DELETE` of the records of `dates` partitions of one mart (`?` the mart, then the dates).
pub(crate) fn delete_published(dates: usize) -> String {
    format!(
        "DELETE FROM {} WHERE `mart` = ? AND `dt` IN {}",
        ident(PUBLISHED_TABLE),
        placeholders(dates)
    )
}

/// `INSERT` of `rows` records (`mart`, `dt`, `version`, `rows_published` each).
pub(crate) fn insert_published(rows: usize) -> String {
    let row = placeholders(4);
    let values = vec![row; rows].join(", ");
    format!(
        "INSERT INTO {} (`mart`, `dt`, `version`, `rows_published`) VALUES {values}",
        ident(PUBLISHED_TABLE)
    )
}

/// `DELETE FROM t`: inside a transaction, unlike `TRUNCATE`, which commits on its own.
pub(crate) fn delete_all(schema: &TableSchema) -> String {
    format!("DELETE FROM {}", ident(&schema.mysql_table_name()))
}

/// Rows per INSERT: what the caller asked, but never more placeholders than MySQL allows.
pub(crate) fn rows_per_statement(requested: usize, columns: usize) -> usize {
    let cap = MAX_PLACEHOLDERS / columns.max(1);
    requested.clamp(1, cap.max(1))
}

/// `INSERT INTO t (a, b) VALUES (?, ?), (?, ?)` for `rows` rows of every schema column.
pub(crate) fn insert(schema: &TableSchema, rows: usize) -> String {
    let row = placeholders(schema.columns.len());
    let mut s = format!(
        "INSERT INTO {} ({}) VALUES ",
        ident(&schema.mysql_table_name()),
        column_list(schema)
    );
    s.reserve(rows * (row.len() + 2));
    for i in 0..rows {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&row);
    }
    s
}

/// `SELECT <every column> FROM t [WHERE dt BETWEEN ? AND ?] ORDER BY <primary key>`: rows come
/// back in key order, so two reads of the same data are the same frame.
pub(crate) fn select(schema: &TableSchema, partition_range: Option<&str>) -> String {
    let mut s = format!(
        "SELECT {} FROM {}",
        column_list(schema),
        ident(&schema.mysql_table_name())
    );
    if let Some(p) = partition_range {
        s.push_str(&format!(" WHERE {} BETWEEN ? AND ?", ident(p)));
    }
    if !schema.primary_key.is_empty() {
        let key: Vec<String> = schema.primary_key.iter().map(|k| ident(k)).collect();
        s.push_str(&format!(" ORDER BY {}", key.join(", ")));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mart::tests::tiny_schema;

    #[test]
    fn identifiers_are_backquoted() {
        assert_eq!(ident("rank"), "`rank`");
        assert_eq!(ident("a`b"), "`a``b`");
    }

    #[test]
    fn insert_has_one_placeholder_per_value_and_no_values() {
        let s = tiny_schema();
        let sql = insert(&s, 3);
        assert_eq!(
            sql,
            "INSERT INTO `mart_tiny` (`dt`, `code`, `name`, `amount_micros`, `n`, `share`, `at`, `local_at`, `wait`, `flag`, `small`, `weight`, `big`) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        assert_eq!(sql.matches('?').count(), 3 * s.columns.len());
    }

    #[test]
    fn delete_and_select_name_the_partition_column() {
        let s = tiny_schema();
        assert_eq!(
            delete_partitions(&s, "dt", 2),
            "DELETE FROM `mart_tiny` WHERE `dt` IN (?, ?)"
        );
        assert_eq!(delete_all(&s), "DELETE FROM `mart_tiny`");
        let q = select(&s, Some("dt"));
        assert!(q.starts_with("SELECT `dt`, `code`, `name`, "), "{q}");
        assert!(
            q.ends_with("FROM `mart_tiny` WHERE `dt` BETWEEN ? AND ? ORDER BY `dt`, `code`"),
            "{q}"
        );
        assert!(!select(&s, None).contains("WHERE"));
    }

    #[test]
    fn create_table_is_one_statement_in_utf8mb4_bin() {
        let s = tiny_schema();
        let ddl = create_table(&s);
        assert!(
            ddl.starts_with("CREATE TABLE IF NOT EXISTS `mart_tiny` ("),
            "{ddl}"
        );
        assert!(!ddl.ends_with(';'), "{ddl}");
        assert!(ddl.contains("CHARSET=utf8mb4 COLLATE=utf8mb4_bin"), "{ddl}");
    }

    #[test]
    fn the_bi_view_puts_currency_units_beside_micros() {
        let s = tiny_schema();
        assert_eq!(view_name(&s), "v_tiny");
        let v = create_view(&s);
        assert!(
            v.starts_with("CREATE OR REPLACE SQL SECURITY INVOKER VIEW `v_tiny` AS SELECT `dt`, "),
            "{v}"
        );
        assert!(
            v.contains(
                "`amount_micros`, CAST(`amount_micros` / 1000000 AS DECIMAL(24,6)) AS `amount`, `n`"
            ),
            "{v}"
        );
        assert!(v.ends_with(" FROM `mart_tiny`"), "{v}");
        // Only columns in micros get a twin.
        assert_eq!(v.matches("DECIMAL").count(), 1, "{v}");
    }

    #[test]
    fn rows_per_statement_respects_the_placeholder_limit() {
        assert_eq!(rows_per_statement(500, 10), 500);
        assert_eq!(rows_per_statement(100_000, 10), 6_553);
        assert_eq!(rows_per_statement(0, 10), 1);
        assert_eq!(rows_per_statement(10, 100_000), 1);
    }
}
