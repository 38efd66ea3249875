//! What a BI tool (Tableau, Metabase, Superset) sees when it connects to the marts'
//! database: every mart table carries its description and grain as the table COMMENT and
//! each column's description and unit as the column COMMENT, and a view `v_<mart>` puts
//! money in currency units (DECIMAL) beside the integer micros.
//!
//! Runs against `LTV_TEST_MYSQL_URL` (default root@127.0.0.1:3306/test) in a database of its
//! own, dropped at the end; without a server the test skips, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::mysql::OwnDatabase;
use ltv::config::Secret;
use ltv::mart::{MART_TABLES, MysqlMart};
use ltv::schema::Registry;
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marts_carry_comments_and_views_in_currency_units() {
    let Some(db) = OwnDatabase::create("ltv_bi").await else {
        return;
    };
    let registry = Registry::embedded().unwrap();
    let mut mart = MysqlMart::connect(&Secret::new(db.url())).await.unwrap();
    for name in MART_TABLES {
        mart.ensure_table(registry.get(name).unwrap())
            .await
            .unwrap();
    }
    // A second call (every publish makes one) replaces the views without complaint.
    mart.ensure_table(registry.get("mart.campaign_daily").unwrap())
        .await
        .unwrap();
    mart.close().await.unwrap();

    let mut conn = mysql_async::Conn::from_url(db.url()).await.unwrap();
    for name in MART_TABLES {
        let schema = registry.get(name).unwrap();
        let table = schema.mysql_table_name();
        let comment: Option<String> = conn
            .exec_first(
                "SELECT TABLE_COMMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table.as_str(),),
            )
            .await
            .unwrap();
        let comment = comment.unwrap_or_default();
        assert!(
            comment.contains("Grain: one row per dt"),
            "{table}: {comment:?}"
        );
        let view: Option<String> = conn
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.VIEWS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (format!("v_{}", schema.name),),
            )
            .await
            .unwrap();
        assert!(view.is_some(), "no view v_{}", schema.name);
        // Every column has its description as a comment.
        let empty: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_COMMENT = ''",
                (table.as_str(),),
            )
            .await
            .unwrap();
        assert!(
            empty.is_empty(),
            "{table}: columns without a comment {empty:?}"
        );
    }
    let spend_comment: String = conn
        .exec_first(
            "SELECT COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'mart_campaign_daily' AND COLUMN_NAME = 'spend_micros'",
            (),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        spend_comment.contains("[micros of `currency`]"),
        "{spend_comment}"
    );
    let spend_type: String = conn
        .exec_first(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'v_campaign_daily' AND COLUMN_NAME = 'spend'",
            (),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spend_type.to_ascii_lowercase(), "decimal(24,6)");

    // A row through the view: micros become currency units exactly.
    conn.query_drop(
        "INSERT INTO mart_campaign_daily (dt, channel, campaign_id, currency, spend_micros, \
         installs, fraud_installs, revenue_to_date_micros, predicted_users, extrapolated, \
         cpi_micros) VALUES ('2026-01-05', 'meta', 'c1', 'USD', 1234567891, 10, 1, 5000000, 10, 0, NULL)",
    )
    .await
    .unwrap();
    let row: Option<(String, String, Option<String>, String)> = conn
        .query_first(
            "SELECT CAST(spend AS CHAR), CAST(revenue_to_date AS CHAR), CAST(cpi AS CHAR), \
             CAST(spend_micros AS CHAR) FROM v_campaign_daily",
        )
        .await
        .unwrap();
    let (spend, revenue, cpi, micros) = row.unwrap();
    assert_eq!(spend, "1234.567891");
    assert_eq!(revenue, "5.000000");
    assert_eq!(cpi, None);
    assert_eq!(micros, "1234567891");
    conn.disconnect().await.unwrap();
}
