//! The MySQL connection that writes and reads marts.
//!
//! One connection, no pool: the nightly job writes its marts one after the other, and a
//! replacement must run on one connection to be one transaction. Every write is
//! delete-then-insert inside a transaction, so a rerun of a day replaces it and a failure at
//! any point (a bad batch, a killed connection, a crash) leaves the previous rows; readers
//! (InnoDB's snapshots) see the old day or the new day, never a mix.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, TxOpts, Value};
use polars::prelude::{Column, DataFrame, DataType};
use tracing::{debug, info, warn};

use super::decode::{FrameBuilder, as_datetime};
use super::encode::{check_frame, date_to_days, date_value, encode_rows, mysql_date_range};
use super::error::{MartError, RowSpan, redact_url, scrub};
use super::sql;
use crate::config::Secret;
use crate::lake::DateRange;
use crate::schema::TableSchema;

/// Rows per INSERT statement unless [`MysqlMart::with_rows_per_insert`] says otherwise: large
/// enough that round trips stop mattering (see the README for the measured rate), small enough
/// that a statement of wide rows stays far below the server's `max_allowed_packet` (16 MiB by
/// default).
pub const DEFAULT_ROWS_PER_INSERT: usize = 500;

/// What one write did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSummary {
    /// MySQL table name (`mart_campaign_daily`).
    pub table: String,
    /// Partitions replaced; 0 for a whole-table replacement.
    pub partitions: usize,
    /// Rows the write removed (the previous content of those partitions).
    pub rows_deleted: u64,
    /// Rows the write inserted.
    pub rows_inserted: u64,
    /// INSERT statements sent.
    pub statements: usize,
    /// From the start of the transaction to its commit.
    pub elapsed: Duration,
}

impl WriteSummary {
    /// Inserted rows per second of the whole transaction.
    pub fn rows_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.rows_inserted as f64 / s
        } else {
            0.0
        }
    }
}

/// Published-version records per INSERT (four values each).
const RECORDS_PER_INSERT: usize = 1000;

/// A partition to publish: its day, the lake version its rows come from, and their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionVersion {
    pub dt: NaiveDate,
    pub version: String,
    pub rows: u64,
}

/// What MySQL holds of one day of a mart (see [`MysqlMart::held_partitions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldPartition {
    /// The lake version recorded when the day was last published, if it was.
    pub version: Option<String>,
    /// Rows the mart table holds for the day now.
    pub rows: u64,
}

/// A connection to the MySQL database marts are written to.
pub struct MysqlMart {
    conn: Conn,
    /// The URL with its password replaced, for messages and logs.
    url: String,
    rows_per_insert: usize,
}

impl std::fmt::Debug for MysqlMart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlMart")
            .field("url", &self.url)
            .field("connection_id", &self.conn.id())
            .field("rows_per_insert", &self.rows_per_insert)
            .finish()
    }
}

impl MysqlMart {
    /// Connects to `mysql://user:password@host:port/database` (the `[mysql]` config's
    /// variable, see `PipelineConfig::mysql_url`). The session is made strict (values that do
    /// not fit are refused, never truncated) and utf8mb4. Errors show the URL without its
    /// password.
    pub async fn connect(url: &Secret) -> Result<MysqlMart, MartError> {
        let raw = url.expose();
        let redacted = redact_url(raw);
        let connect_err = |message: String| MartError::Connect {
            url: redacted.clone(),
            message: scrub(&message, raw),
        };
        let opts = Opts::from_url(raw.trim()).map_err(|e| connect_err(e.to_string()))?;
        if opts.db_name().is_none_or(str::is_empty) {
            return Err(connect_err(
                "the URL names no database (mysql://user:password@host:3306/DATABASE)".into(),
            ));
        }
        let opts =
            OptsBuilder::from_opts(opts).init(vec![sql::SESSION_NAMES, sql::SESSION_SQL_MODE]);
        let conn = Conn::new(opts)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        info!(url = %redacted, connection_id = conn.id(), "Connected to MySQL.");
        Ok(MysqlMart {
            conn,
            url: redacted,
            rows_per_insert: DEFAULT_ROWS_PER_INSERT,
        })
    }

    /// Rows per multi-row INSERT (default [`DEFAULT_ROWS_PER_INSERT`]); at least 1, and
    /// lowered per table so that a statement never has more than MySQL's 65,535 parameters.
    pub fn with_rows_per_insert(mut self, rows: usize) -> MysqlMart {
        self.rows_per_insert = rows.max(1);
        self
    }

    /// The server's id of this connection (what `SHOW PROCESSLIST` and `KILL` use).
    pub fn connection_id(&self) -> u32 {
        self.conn.id()
    }

    /// The URL connected to, password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates the table from its schema's DDL when it does not exist (utf8mb4, collation
    /// utf8mb4_bin; table and column COMMENTs carry the schema's descriptions, units and
    /// grain), then checks an existing table has the schema's columns, since
    /// `IF NOT EXISTS` would otherwise leave an outdated table to fail every insert; then
    /// (re)creates its BI view `v_<name>`, with money in currency units beside the micros.
    pub async fn ensure_table(&mut self, schema: &TableSchema) -> Result<(), MartError> {
        let table = schema.mysql_table_name();
        self.conn
            .query_drop(sql::create_table(schema))
            .await
            .map_err(|source| MartError::Query {
                table: table.clone(),
                action: "CREATE TABLE",
                source,
            })?;
        let found: Vec<String> = self
            .conn
            .exec(sql::table_columns(), (table.as_str(),))
            .await
            .map_err(|source| MartError::Query {
                table: table.clone(),
                action: "reading the table's columns",
                source,
            })?;
        let wanted: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        if found.iter().map(String::as_str).ne(wanted.iter().copied()) {
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| !found.iter().any(|f| f == w))
                .collect();
            let extra: Vec<&str> = found
                .iter()
                .map(String::as_str)
                .filter(|f| !wanted.contains(f))
                .collect();
            let problem = if missing.is_empty() && extra.is_empty() {
                format!("same columns in another order ({})", found.join(", "))
            } else {
                format!(
                    "missing [{}], not in the schema [{}]",
                    missing.join(", "),
                    extra.join(", ")
                )
            };
            return Err(MartError::TableMismatch {
                table,
                layer: schema.layer.to_string(),
                name: schema.name.clone(),
                problem,
            });
        }
        // The BI view: the same rows with money also in currency units (see sql::create_view).
        self.conn
            .query_drop(sql::create_view(schema))
            .await
            .map_err(|source| MartError::Query {
                table: table.clone(),
                action: "CREATE VIEW",
                source,
            })?;
        debug!(table = %table, view = %sql::view_name(schema), "Mart table and view ready.");
        Ok(())
    }

    /// Replaces the partitions `dates` of a partitioned mart with the rows of `df`, in one
    /// transaction: delete those days, insert the rows, commit.
    ///
    /// Rerunning a day therefore replaces it (no duplicates), days not listed are untouched,
    /// and a failure anywhere rolls back to the previous rows. A day listed with no rows in
    /// `df` ends up empty. Every row's partition value must be among `dates`. `df` holds the
    /// schema's columns in any order; it may omit the partition column when exactly one date
    /// is given (a lake partition's frame). The frame is checked before the transaction opens,
    /// so a bad value (null in a NOT NULL column, string too long) fails naming its row and
    /// column and writes nothing.
    pub async fn replace_partitions(
        &mut self,
        schema: &TableSchema,
        dates: &[NaiveDate],
        df: &DataFrame,
    ) -> Result<WriteSummary, MartError> {
        self.replace_days(schema, dates, df, &[]).await
    }

    /// [`MysqlMart::replace_partitions`] of `partitions`' days that also records, in the same
    /// transaction, the lake version each day's rows were copied from (see
    /// [`MysqlMart::held_partitions`]): the mart's rows and the record commit together or not
    /// at all. Call [`MysqlMart::ensure_published_table`] first.
    pub async fn publish_partitions(
        &mut self,
        schema: &TableSchema,
        partitions: &[PartitionVersion],
        df: &DataFrame,
    ) -> Result<WriteSummary, MartError> {
        let dates: Vec<NaiveDate> = partitions.iter().map(|p| p.dt).collect();
        self.replace_days(schema, &dates, df, partitions).await
    }

    /// Creates the table that records published versions, when it does not exist.
    pub async fn ensure_published_table(&mut self) -> Result<(), MartError> {
        self.conn
            .query_drop(sql::create_published_table())
            .await
            .map_err(|source| MartError::Query {
                table: sql::PUBLISHED_TABLE.into(),
                action: "CREATE TABLE",
                source,
            })
    }

    /// What MySQL holds of a partitioned mart, per day: the rows its table has now and the
    /// lake version recorded when the day was last published (`None` for a day with rows
    /// but no record). A day whose record and rows both match the lake's manifest need not
    /// be copied again; a count that differs (rows deleted by hand, a table recreated) makes
    /// the day due again whatever the record says.
    pub async fn held_partitions(
        &mut self,
        schema: &TableSchema,
    ) -> Result<BTreeMap<NaiveDate, HeldPartition>, MartError> {
        let table = schema.mysql_table_name();
        let Some(partition) = schema.partition.as_deref() else {
            return Err(MartError::Usage {
                table,
                problem: "the table is not partitioned".into(),
            });
        };
        let query_err = |action: &'static str| {
            let table = table.clone();
            move |source| MartError::Query {
                table,
                action,
                source,
            }
        };
        let counts: Vec<(Value, u64)> = self
            .conn
            .query(sql::count_partitions(schema, partition))
            .await
            .map_err(query_err("counting rows per partition"))?;
        let records: Vec<(Value, String)> = self
            .conn
            .exec(sql::select_published(), (table.as_str(),))
            .await
            .map_err(query_err("reading published versions"))?;
        let mut held: BTreeMap<NaiveDate, HeldPartition> = BTreeMap::new();
        for (day, rows) in counts {
            if let Some(t) = as_datetime(&day) {
                held.entry(t.date()).or_default().rows = rows;
            }
        }
        for (day, version) in records {
            if let Some(t) = as_datetime(&day) {
                held.entry(t.date()).or_default().version = Some(version);
            }
        }
        Ok(held)
    }

    /// Replaces `dates` with the rows of `df` in one transaction, recording `record`'s
    /// versions in the same transaction when it is not empty.
    async fn replace_days(
        &mut self,
        schema: &TableSchema,
        dates: &[NaiveDate],
        df: &DataFrame,
        record: &[PartitionVersion],
    ) -> Result<WriteSummary, MartError> {
        let table = schema.mysql_table_name();
        let Some(partition) = schema.partition.as_deref() else {
            return Err(MartError::Usage {
                table,
                problem: "the table is not partitioned; use replace_table".into(),
            });
        };
        let mut days: Vec<NaiveDate> = dates.to_vec();
        days.sort_unstable();
        days.dedup();
        if days.is_empty() {
            if df.height() > 0 {
                return Err(MartError::Usage {
                    table,
                    problem: format!("{} rows but no partition dates to replace", df.height()),
                });
            }
            return Ok(WriteSummary {
                table,
                partitions: 0,
                rows_deleted: 0,
                rows_inserted: 0,
                statements: 0,
                elapsed: Duration::ZERO,
            });
        }
        let df = self.with_partition_column(schema, partition, &days, df)?;
        let allowed: HashSet<i32> = days.iter().copied().map(date_to_days).collect();
        check_frame(schema, &table, &df, Some(&allowed))?;
        let df = in_schema_order(schema, &table, &df)?;

        let label = match (days.first(), days.last()) {
            (Some(a), Some(b)) if a == b => format!("partition {partition}={a}"),
            (Some(a), Some(b)) => {
                format!(
                    "partitions {partition}={a}..{partition}={b} ({})",
                    days.len()
                )
            }
            _ => "no partitions".to_owned(),
        };
        let delete = sql::delete_partitions(schema, partition, days.len());
        let params: Vec<Value> = days.iter().copied().map(date_value).collect();
        let summary = self
            .transaction(
                schema,
                &table,
                &label,
                delete,
                params,
                &df,
                days.len(),
                record,
            )
            .await?;
        info!(
            table = %table,
            partitions = days.len(),
            first = %days.first().map(ToString::to_string).unwrap_or_default(),
            last = %days.last().map(ToString::to_string).unwrap_or_default(),
            rows_deleted = summary.rows_deleted,
            rows_inserted = summary.rows_inserted,
            statements = summary.statements,
            seconds = summary.elapsed.as_secs_f64(),
            "Replaced mart partitions in MySQL."
        );
        Ok(summary)
    }

    /// Replaces the whole content of an unpartitioned mart with `df`, in one transaction
    /// (`DELETE`, not `TRUNCATE`, which would commit on its own): a failure leaves the
    /// previous rows.
    pub async fn replace_table(
        &mut self,
        schema: &TableSchema,
        df: &DataFrame,
    ) -> Result<WriteSummary, MartError> {
        let table = schema.mysql_table_name();
        if schema.partition.is_some() {
            return Err(MartError::Usage {
                table,
                problem:
                    "the table is partitioned; use replace_partitions with the days to replace"
                        .into(),
            });
        }
        check_frame(schema, &table, df, None)?;
        let df = in_schema_order(schema, &table, df)?;
        let summary = self
            .transaction(
                schema,
                &table,
                "whole table",
                sql::delete_all(schema),
                Vec::new(),
                &df,
                0,
                &[],
            )
            .await?;
        info!(
            table = %table,
            rows_deleted = summary.rows_deleted,
            rows_inserted = summary.rows_inserted,
            statements = summary.statements,
            seconds = summary.elapsed.as_secs_f64(),
            "Replaced mart table in MySQL."
        );
        Ok(summary)
    }

    /// Reads a mart back as a frame of exactly the schema's columns and dtypes (partition
    /// column included), rows in primary-key order: the partitions of `range` (inclusive) of a
    /// partitioned mart, every row of an unpartitioned one (pass `DateRange::all()`), like the
    /// lake's `scan`.
    pub async fn read_table(
        &mut self,
        schema: &TableSchema,
        range: DateRange,
    ) -> Result<DataFrame, MartError> {
        let table = schema.mysql_table_name();
        let (lo, hi) = mysql_date_range();
        let whole = range.from <= lo && range.to >= hi;
        if schema.partition.is_some() && (range.from > range.to || range.to < lo || range.from > hi)
        {
            // No day MySQL can hold is in the range.
            return FrameBuilder::new(schema, &table)?.finish();
        }
        let (query, params) = match schema.partition.as_deref() {
            _ if whole => (sql::select(schema, None), Params::Empty),
            Some(p) => (
                sql::select(schema, Some(p)),
                Params::Positional(vec![
                    date_value(range.from.clamp(lo, hi)),
                    date_value(range.to.clamp(lo, hi)),
                ]),
            ),
            None => {
                return Err(MartError::Usage {
                    table,
                    problem: format!(
                        "the table is not partitioned; read it with DateRange::all(), not {}..{}",
                        range.from, range.to
                    ),
                });
            }
        };
        let query_err = |source| MartError::Query {
            table: table.clone(),
            action: "SELECT",
            source,
        };
        let mut builder = FrameBuilder::new(schema, &table)?;
        let mut result = self
            .conn
            .exec_iter(query, params)
            .await
            .map_err(query_err)?;
        while let Some(row) = result.next().await.map_err(query_err)? {
            builder.push_row(row.unwrap())?;
        }
        drop(result);
        let df = builder.finish()?;
        debug!(table = %table, rows = df.height(), "Read mart table from MySQL.");
        Ok(df)
    }

    /// Closes the connection politely (the server frees it at once rather than at its
    /// timeout).
    pub async fn close(self) -> Result<(), MartError> {
        self.conn
            .disconnect()
            .await
            .map_err(|source| MartError::Query {
                table: "(connection)".into(),
                action: "disconnect",
                source,
            })
    }

    /// Adds the partition column when a single day's frame comes without it, as the lake
    /// stores partitions.
    fn with_partition_column(
        &self,
        schema: &TableSchema,
        partition: &str,
        days: &[NaiveDate],
        df: &DataFrame,
    ) -> Result<DataFrame, MartError> {
        let table = schema.mysql_table_name();
        if df.column(partition).is_ok() {
            return Ok(df.clone());
        }
        let [day] = days else {
            return Err(MartError::Usage {
                table,
                problem: format!(
                    "the frame has no {partition:?} column, so it must be one partition, but {} dates were given",
                    days.len()
                ),
            });
        };
        let err = |source| MartError::Polars {
            table: table.clone(),
            action: "adding the partition column",
            source,
        };
        let c = Column::new(partition.into(), vec![date_to_days(*day); df.height()])
            .cast(&DataType::Date)
            .map_err(err)?;
        let mut out = df.clone();
        out.with_column(c).map_err(err)?;
        Ok(out)
    }

    /// Delete, insert in batches, record the published versions (when `record` has any),
    /// commit; roll back on any error.
    #[allow(clippy::too_many_arguments)]
    async fn transaction(
        &mut self,
        schema: &TableSchema,
        table: &str,
        label: &str,
        delete: String,
        delete_params: Vec<Value>,
        df: &DataFrame,
        partitions: usize,
        record: &[PartitionVersion],
    ) -> Result<WriteSummary, MartError> {
        let started = Instant::now();
        let rows_per = sql::rows_per_statement(self.rows_per_insert, schema.columns.len());
        let write_err =
            |action: &'static str, at: RowSpan, source: mysql_async::Error| MartError::Write {
                table: table.to_owned(),
                partitions: label.to_owned(),
                action,
                at,
                source,
            };
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| write_err("START TRANSACTION", RowSpan::default(), e))?;

        let body = async {
            let params = if delete_params.is_empty() {
                Params::Empty
            } else {
                Params::Positional(delete_params)
            };
            tx.exec_drop(delete, params)
                .await
                .map_err(|e| write_err("delete", RowSpan::default(), e))?;
            let rows_deleted = tx.affected_rows();

            let mut statements = 0usize;
            let mut offset = 0usize;
            let height = df.height();
            while offset < height {
                let len = rows_per.min(height - offset);
                let values = encode_rows(schema, table, df, offset, len)?;
                tx.exec_drop(sql::insert(schema, len), Params::Positional(values))
                    .await
                    .map_err(|e| write_err("insert", server_span(&e, offset, len), e))?;
                statements += 1;
                offset += len;
            }
            if !record.is_empty() {
                let mut params = vec![Value::from(table)];
                params.extend(record.iter().map(|p| date_value(p.dt)));
                tx.exec_drop(
                    sql::delete_published(record.len()),
                    Params::Positional(params),
                )
                .await
                .map_err(|e| write_err("recording published versions", RowSpan::default(), e))?;
                for chunk in record.chunks(RECORDS_PER_INSERT) {
                    let params: Vec<Value> = chunk
                        .iter()
                        .flat_map(|p| {
                            [
                                Value::from(table),
                                date_value(p.dt),
                                Value::from(p.version.as_str()),
                                Value::from(p.rows),
                            ]
                        })
                        .collect();
                    tx.exec_drop(
                        sql::insert_published(chunk.len()),
                        Params::Positional(params),
                    )
                    .await
                    .map_err(|e| {
                        write_err("recording published versions", RowSpan::default(), e)
                    })?;
                }
            }
            Ok::<_, MartError>((rows_deleted, statements))
        }
        .await;

        match body {
            Ok((rows_deleted, statements)) => {
                tx.commit()
                    .await
                    .map_err(|e| write_err("commit", RowSpan::default(), e))?;
                Ok(WriteSummary {
                    table: table.to_owned(),
                    partitions,
                    rows_deleted,
                    rows_inserted: df.height() as u64,
                    statements,
                    elapsed: started.elapsed(),
                })
            }
            Err(e) => {
                // On a dead connection the server has already rolled back; say so and move on.
                if let Err(rb) = tx.rollback().await {
                    warn!(table = %table, error = %rb, "Rollback failed; the server rolls back a transaction whose connection ended.");
                }
                warn!(table = %table, partitions = %label, error = %e, "Mart write failed and was rolled back.");
                Err(e)
            }
        }
    }
}

/// The frame's columns in schema order, the order of the INSERT's column list.
fn in_schema_order(
    schema: &TableSchema,
    table: &str,
    df: &DataFrame,
) -> Result<DataFrame, MartError> {
    df.select(schema.columns.iter().map(|c| c.name.as_str()))
        .map_err(|source| MartError::Polars {
            table: table.to_owned(),
            action: "ordering the columns",
            source,
        })
}

/// The rows a failed INSERT covered, narrowed to the row and column when the server names them
/// (`Data too long for column 'x' at row 3`, `Out of range value for column 'x' at row 2`;
/// its rows count from 1 within the statement).
fn server_span(e: &mysql_async::Error, offset: usize, len: usize) -> RowSpan {
    let mut at = RowSpan {
        rows: Some((offset, offset + len.saturating_sub(1))),
        row: None,
        column: None,
    };
    let mysql_async::Error::Server(server) = e else {
        return at;
    };
    let msg = server.message.as_str();
    if let Some(rest) = msg.split("column '").nth(1)
        && let Some((column, _)) = rest.split_once('\'')
    {
        at.column = Some(column.to_owned());
    }
    if let Some(n) = msg
        .rsplit("at row ")
        .next()
        .filter(|_| msg.contains("at row "))
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| (1..=len).contains(n))
    {
        at.row = Some(offset + n - 1);
    }
    at
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.to_owned(),
            state: "22001".to_owned(),
        })
    }

    #[test]
    fn server_errors_point_at_the_frame_row() {
        let e = server(1406, "Data too long for column 'campaign_name' at row 3");
        let at = server_span(&e, 500, 500);
        assert_eq!(at.row, Some(502));
        assert_eq!(at.column.as_deref(), Some("campaign_name"));
        assert_eq!(at.rows, Some((500, 999)));
        let e = server(1062, "Duplicate entry '2026-01-01-x' for key 'PRIMARY'");
        let at = server_span(&e, 0, 10);
        assert_eq!((at.row, at.column.as_deref()), (None, None));
        assert_eq!(at.to_string(), " in rows 0..=9");
    }

    #[test]
    fn rows_per_second_of_an_empty_write_is_zero() {
        let s = WriteSummary {
            table: "t".into(),
            partitions: 0,
            rows_deleted: 0,
            rows_inserted: 0,
            statements: 0,
            elapsed: Duration::ZERO,
        };
        assert_eq!(s.rows_per_second(), 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_errors_never_show_the_password() {
        let url = Secret::new("mysql://ltv:hunter2@127.0.0.1:1/marts");
        let e = MysqlMart::connect(&url).await.unwrap_err();
        let m = format!("{e} {e:?}");
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains("mysql://ltv:***@127.0.0.1:1/marts"), "{m}");
        let e = MysqlMart::connect(&Secret::new("mysql://u:hunter2@127.0.0.1:1"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("names no database"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
