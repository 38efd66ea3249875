//! The `ltv` binary end to end: global options, `schema`, `simulate`, `lake sweep`, and the
//! messages a user gets for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn ltv(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltv"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("LTV_LAKE")
        .env_remove("LTV_PIPELINE")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn schema_show_prints_a_tables_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltv(dir.path(), &["schema", "show", "sim.events"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "sim.events",
        "row_id",
        "datetime[ms, UTC]",
        "revenue_micros",
        "currency",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let out = ltv(dir.path(), &["schema", "show", "sim.eventz"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sim.eventz"), "{}", stderr(&out));
}

#[test]
fn schema_ddl_is_generated_for_every_mart() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltv(dir.path(), &["schema", "ddl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ddl = stdout(&out);
    assert!(
        ddl.contains("CREATE TABLE IF NOT EXISTS `mart_campaign_daily`"),
        "{ddl}"
    );
    assert!(
        ddl.contains("CREATE TABLE IF NOT EXISTS `mart_user_ltv`"),
        "{ddl}"
    );
    assert!(ddl.contains("utf8mb4"));
    assert!(!ddl.contains("`sim_events`"), "only marts go to MySQL");
}

#[test]
fn simulate_runs_on_the_embedded_demo_from_any_folder() {
    // No pipelines/ here: the built-in demo config is used.
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = ltv(
        dir.path(),
        &[
            "--lake",
            lake.to_str().unwrap(),
            "simulate",
            "--days",
            "2",
            "--users-per-day",
            "200",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["users"], 400);
    assert!(report["event_rows"].as_u64().unwrap() > 1000);
    assert!(report["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert!(
        lake.join("sim/events/dt=2026-01-02/_manifest.json")
            .exists()
    );
    assert!(
        lake.join("truth/users/dt=2026-01-01/_manifest.json")
            .exists()
    );
    // Logs go to stderr, never into the data on stdout.
    assert!(stderr(&out).contains("Simulating world"));

    let out = ltv(
        dir.path(),
        &[
            "--lake",
            lake.to_str().unwrap(),
            "lake",
            "sweep",
            "--grace-minutes",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 0 files"), "{}", stdout(&out));
}

#[test]
fn json_logs_are_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = ltv(
        dir.path(),
        &[
            "--log-format",
            "json",
            "--lake",
            lake.to_str().unwrap(),
            "simulate",
            "--days",
            "1",
            "--users-per-day",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stderr(&out).lines().next().unwrap().to_string();
    let line: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(line["level"], "INFO");
    // -q silences info logs.
    let out = ltv(
        dir.path(),
        &[
            "-q",
            "--lake",
            lake.to_str().unwrap(),
            "simulate",
            "--days",
            "1",
            "--users-per-day",
            "100",
        ],
    );
    assert!(out.status.success());
    assert!(stderr(&out).trim().is_empty(), "{}", stderr(&out));
}

#[test]
fn a_bad_config_fails_with_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[pipeline]\nname = \"x\"\nlake = \"./lake\"\nreporting_timezon = \"Asia/Seoul\"\n",
    )
    .unwrap();
    let out = ltv(
        dir.path(),
        &["--pipeline", file.to_str().unwrap(), "simulate"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("reporting_timezon"),
        "{err}"
    );

    let out = ltv(dir.path(), &["--pipeline", "missing.toml", "simulate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));

    // A config without [sim] has nothing to simulate, and says so.
    std::fs::write(&file, "[pipeline]\nname = \"x\"\nlake = \"./lake\"\n").unwrap();
    let out = ltv(
        dir.path(),
        &["--pipeline", file.to_str().unwrap(), "simulate"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[sim]"), "{}", stderr(&out));
}

#[test]
fn out_of_range_scale_is_refused_by_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltv(dir.path(), &["simulate", "--users-per-day", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("users-per-day"), "{}", stderr(&out));
}

#[test]
fn ingest_pulls_the_simulated_world_and_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();

    // Simulated sources need the world first, and say so.
    let out = ltv(
        dir.path(),
        &["--lake", lake, "ingest", "--date", "2026-01-03"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("run `ltv simulate` first"),
        "{}",
        stderr(&out)
    );

    let out = ltv(
        dir.path(),
        &[
            "-q",
            "--lake",
            lake,
            "simulate",
            "--days",
            "2",
            "--users-per-day",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ltv(
        dir.path(),
        &["-q", "--lake", lake, "ingest", "--date", "2026-01-03"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for needle in [
        "mixpanel.export",
        "appsflyer.installs_report",
        "adison.report",
        "google_sheets.fx_rates",
        "calls spent:",
    ] {
        assert!(table.contains(needle), "missing {needle} in\n{table}");
    }
    // The day's pull is done: a second nightly run the same day pulls nothing again.
    let out = ltv(
        dir.path(),
        &[
            "-q",
            "--lake",
            lake,
            "ingest",
            "--date",
            "2026-01-03",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let landed: u64 = summary["streams"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["landed"].as_u64().unwrap())
        .sum();
    assert_eq!(landed, 0, "{summary}");

    let out = ltv(
        dir.path(),
        &[
            "--lake",
            lake,
            "ingest",
            "--from",
            "2026-01-02",
            "--to",
            "2026-01-01",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("before --from"), "{}", stderr(&out));
    let out = ltv(
        dir.path(),
        &["--lake", lake, "ingest", "--source", "facebook"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown source \"facebook\""),
        "{}",
        stderr(&out)
    );
}
