#!/usr/bin/env python3
"""The Mixpanel part of `ltv cleanse`, written as DuckDB SQL (`--engine duckdb`, the default)
and with pandas (`--engine pandas`, in `pandas_job.py`): the yardsticks `cargo bench --bench
cleanse` measures ltv against (set LTV_BENCH_BASELINES to a Python that has the packages of
`requirements.txt`).

For every day of the range it reads the day's `raw.mixpanel_export` partition from an ltv lake
(the files its manifest names) and does what cleanse does with it: the malformed rules, then
Mixpanel's duplicate rule, then the unknown-currency rule, each row rejected by the first rule
that fires; report dates in the reporting zone, canonical platforms, revenue in the reporting
currency at the dense FX table's rate of the event's UTC day. It writes, per day, the clean
events (ltv's columns, in export-line order), the quarantined rows with their reason and row as
JSON, the day's identifier pairs and the rule counts, as zstd Parquet like ltv's large files.

What it does not do that ltv does: a SHA-256 of every file, a manifest swapped in per partition,
schema validation, and replacing only this stage's rows in shared tables. Those are ltv's cost
of keeping the lake whole; they are small next to the rules and the Parquet work.

With --check LAKE, every day's output is compared with LAKE's clean layer as multisets: every
column of `clean.mixpanel_events`, the `clean.id_links` pairs, each quarantined row's key, rule
and reason, and the source's rule counts in `clean.data_quality`; any difference fails. That
is what makes the timing a comparison of the same job.

Prints one JSON object: seconds (the days' work, the connection and the FX table included),
peak resident memory of this process up to then (the check comes after both), rows in and
kept, and what the check found.
"""

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time

import duckdb

SOURCE = "raw.mixpanel_export"
DUPLICATE = "duplicate: same event, distinct_id and $insert_id as an earlier row of the day"
# Advertising ids that are not ids (src/cleanse/links.rs, PLACEHOLDER_IDS).
PLACEHOLDERS = ("00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000")
PAIRS = [
    ("device_id", "device_id", "user_id", "user_id"),
    ("device_id", "device_id", "appsflyer_id", "appsflyer_id"),
    ("user_id", "user_id", "appsflyer_id", "appsflyer_id"),
]
CLEAN_COLUMNS = [
    "line", "event", "time", "report_date", "distinct_id", "device_id", "user_id",
    "appsflyer_id", "insert_id", "platform", "country", "revenue_micros", "currency",
    "reporting_currency", "revenue_reporting_micros",
]
PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 262144"


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def partition_files(lake, table, day):
    """The files of a partition's current version, from its manifest; None if never landed."""
    layer, name = table.split(".")
    manifest = os.path.join(lake, layer, name, f"dt={day}", "_manifest.json")
    try:
        with open(manifest) as f:
            files = json.load(f)["files"]
    except FileNotFoundError:
        return None
    return [os.path.join(lake, file["path"]) for file in files]


def days_of(start, end):
    d = start
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def latest_partition(lake, table):
    layer, name = table.split(".")
    days = sorted(
        p[3:] for p in os.listdir(os.path.join(lake, layer, name)) if p.startswith("dt=")
    )
    if not days:
        sys.exit(f"{table}: no partition in {lake}")
    return days[-1]


def create_fx(con, lake, through):
    """The dense FX table of ltv's `fx_table`: the latest snapshot's rates up to `through`,
    the latest pull of a (date, currency) first, then the lowest sheet row; every day from the
    first rate on, each currency forward-filled; USD 1.0 every day."""
    files = partition_files(lake, "raw.sheets_fx_rates", latest_partition(lake, "raw.sheets_fx_rates"))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx AS
        WITH latest AS (
            SELECT "date", currency, usd_per_unit FROM read_parquet({files!r})
            WHERE "date" <= DATE {quote(str(through))} AND currency <> 'USD'
            QUALIFY row_number() OVER (
                PARTITION BY "date", currency ORDER BY pulled_at DESC NULLS LAST, "row") = 1
        ),
        days AS (
            SELECT CAST(unnest(generate_series(
                (SELECT min("date") FROM latest), DATE {quote(str(through))}, INTERVAL 1 DAY))
                AS DATE) AS "date"
        ),
        filled AS (
            SELECT d."date", c.currency,
                last_value(l.usd_per_unit IGNORE NULLS) OVER (
                    PARTITION BY c.currency ORDER BY d."date"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS usd_per_unit
            FROM days d CROSS JOIN (SELECT DISTINCT currency FROM latest) c
            LEFT JOIN latest l ON l."date" = d."date" AND l.currency = c.currency
        )
        SELECT * FROM filled WHERE usd_per_unit IS NOT NULL
        UNION ALL SELECT "date", 'USD', 1.0 FROM days
    """)


def mark(con, files, zone, reporting):
    """Every raw row of the day with its reject reason (null for a row that stays) and its
    normalised columns, as ltv's plan marks them."""
    to_rate = "1.0" if reporting == "USD" else "t.usd_per_unit"
    to_join = (
        "" if reporting == "USD"
        else f"LEFT JOIN fx t ON t.\"date\" = m.fx_date AND t.currency = {quote(reporting)}"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE marked AS
        WITH raw AS (
            SELECT line, event, "time", distinct_id, device_id, user_id, appsflyer_id,
                insert_id, os, country_code, revenue_micros, currency, mp_processing_time_ms,
                CASE
                    WHEN malformed IS NOT NULL THEN 'malformed: ' || malformed
                    WHEN "time" IS NULL THEN 'malformed: time: missing'
                    WHEN revenue_micros < 0
                        THEN 'malformed: revenue: negative (' || revenue_micros || ' micros)'
                    WHEN revenue_micros IS NOT NULL AND currency IS NULL
                        THEN 'malformed: currency: revenue without a currency'
                END AS reject
            FROM read_parquet({files!r})
        ),
        deduped AS (
            SELECT * REPLACE (
                CASE
                    WHEN reject IS NOT NULL OR insert_id IS NULL THEN reject
                    WHEN row_number() OVER (
                        PARTITION BY event, distinct_id, insert_id, reject IS NULL
                        ORDER BY mp_processing_time_ms NULLS LAST, line) > 1
                        THEN {quote(DUPLICATE)}
                END AS reject),
                CAST("time" AS DATE) AS fx_date
            FROM raw
        ),
        priced AS (
            SELECT m.* REPLACE (
                CASE
                    WHEN m.reject IS NULL AND m.currency IS NOT NULL AND m.currency <> 'USD'
                        AND f.usd_per_unit IS NULL
                        THEN 'malformed: currency=' || m.currency || ' has no FX rate on '
                            || CAST(m.fx_date AS VARCHAR)
                    ELSE m.reject
                END AS reject),
                CASE WHEN m.currency = 'USD' THEN 1.0 ELSE f.usd_per_unit END AS from_rate,
                {to_rate} AS to_rate
            FROM deduped m
            LEFT JOIN fx f ON f."date" = m.fx_date AND f.currency = m.currency
            {to_join}
        )
        SELECT line, event, "time",
            CAST(timezone({quote(zone)}, "time") AS DATE) AS report_date,
            distinct_id, device_id, user_id, appsflyer_id, insert_id,
            CASE WHEN lower(os) IN ('ios', 'ipados') THEN 'ios' ELSE lower(os) END AS platform,
            country_code AS country, revenue_micros, currency,
            {quote(reporting)} AS reporting_currency,
            CASE
                WHEN currency = {quote(reporting)} THEN revenue_micros
                ELSE CAST(round(CAST(revenue_micros AS DOUBLE) * from_rate / to_rate) AS BIGINT)
            END AS revenue_reporting_micros,
            reject
        FROM priced
    """)


def usable(c):
    placeholders = ", ".join(quote(p) for p in PLACEHOLDERS)
    return f"({c} IS NOT NULL AND {c} <> '' AND {c} NOT IN ({placeholders}))"


def write_day(con, out, day, run_id):
    """The day's four outputs, from the marked rows."""
    base = os.path.join(out, "{}", f"dt={day}")
    for table in ("mixpanel_events", "quarantine", "id_links", "data_quality"):
        os.makedirs(base.format(table), exist_ok=True)

    def path(table):
        return quote(os.path.join(base.format(table), "part-0.parquet"))

    columns = ", ".join(f'"{c}"' for c in CLEAN_COLUMNS)
    con.execute(f"""
        COPY (SELECT {columns} FROM marked WHERE reject IS NULL ORDER BY line)
        TO {path("mixpanel_events")} ({PARQUET})
    """)
    row = ", ".join(f"{quote(c)}: {c}" for c in sorted(["dt"] + CLEAN_COLUMNS))
    con.execute(f"""
        COPY (
            SELECT 'cleanse' AS stage, {quote(run_id)} AS run_id, {quote(SOURCE)} AS source,
                to_json({{'line': line}}) AS row_key, split_part(reject, ': ', 1) AS rule,
                reject AS reason,
                to_json({{{row}}}) AS "row"
            FROM (SELECT *, DATE {quote(str(day))} AS dt FROM marked WHERE reject IS NOT NULL)
            ORDER BY line
        ) TO {path("quarantine")} ({PARQUET})
    """)
    kinds = " UNION ALL ".join(
        f"""SELECT {quote(SOURCE)} AS source, {quote(lk)} AS left_kind, {lc} AS left_id,
                {quote(rk)} AS right_kind, {rc} AS right_id, sum(n)::UBIGINT AS "rows"
            FROM combinations WHERE {usable(lc)} AND {usable(rc)} GROUP BY ALL"""
        for lk, lc, rk, rc in PAIRS
    )
    con.execute(f"""
        COPY (
            WITH combinations AS (
                SELECT device_id, user_id, appsflyer_id, count(*) AS n
                FROM marked WHERE reject IS NULL GROUP BY ALL
            )
            SELECT * FROM ({kinds})
            ORDER BY source, left_kind, left_id, right_kind, right_id
        ) TO {path("id_links")} ({PARQUET})
    """)
    con.execute(f"""
        COPY (
            WITH counts AS (
                SELECT count(*) AS rows_in,
                    count(*) FILTER (WHERE split_part(reject, ': ', 1) = 'malformed') AS malformed,
                    count(*) FILTER (WHERE split_part(reject, ': ', 1) = 'duplicate') AS duplicate
                FROM marked
            )
            SELECT 'cleanse' AS stage, {quote(run_id)} AS run_id, {quote(SOURCE)} AS source,
                'malformed' AS rule, 1::UBIGINT AS step, rows_in::UBIGINT AS rows_in,
                (rows_in - malformed)::UBIGINT AS rows_out, 0::UBIGINT AS rows_changed
            FROM counts
            UNION ALL
            SELECT 'cleanse', {quote(run_id)}, {quote(SOURCE)}, 'duplicate', 2::UBIGINT,
                (rows_in - malformed)::UBIGINT, (rows_in - malformed - duplicate)::UBIGINT,
                0::UBIGINT
            FROM counts
        ) TO {path("data_quality")} ({PARQUET})
    """)
    return con.execute("SELECT count(*), count(*) FILTER (WHERE reject IS NULL) FROM marked").fetchone()


def differences(con, day, what, columns, ours, theirs, where="TRUE"):
    """Rows of `columns` (of rows matching `where`) in one set of files and not the other, as
    multisets, as messages."""
    if not theirs:
        return [f"{day}: the ltv lake has no {what}"]
    problems = []
    for a, b, label in ((ours, theirs, "only in DuckDB's"), (theirs, ours, "only in ltv's")):
        n = con.execute(f"""
            SELECT count(*) FROM (
                SELECT {columns} FROM read_parquet({a!r}) WHERE {where}
                EXCEPT ALL SELECT {columns} FROM read_parquet({b!r}) WHERE {where})
        """).fetchone()[0]
        if n:
            problems.append(f"{day}: {n} {what} {label} output")
    return problems


def check_day(con, out, lake, day):
    """Differences between this day's output and the ltv lake's clean layer, as messages:
    every column of the kept rows, the identifier pairs, each quarantined row's key and
    reason, and the rule counts."""
    def files(ltv_table, ours):
        return (
            [os.path.join(out, ours, f"dt={day}", "part-0.parquet")],
            partition_files(lake, ltv_table, day) or [],
        )

    def names(columns):
        return ", ".join(f'"{c}"' for c in columns)

    this_stage = f"stage = 'cleanse' AND source = {quote(SOURCE)}"
    return (
        differences(con, day, "clean rows", names(CLEAN_COLUMNS),
                    *files("clean.mixpanel_events", "mixpanel_events"))
        + differences(con, day, "identifier pairs",
                      names(["source", "left_kind", "left_id", "right_kind", "right_id", "rows"]),
                      *files("clean.id_links", "id_links"))
        + differences(con, day, "quarantined rows", names(["row_key", "rule", "reason"]),
                      *files("clean.quarantine", "quarantine"), where=this_stage)
        + differences(con, day, "rule counts", names(["rule", "step", "rows_in", "rows_out"]),
                      *files("clean.data_quality", "data_quality"), where=this_stage)
    )


def run_duckdb(args):
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    create_fx(con, args.lake, args.end)
    rows_in = rows_kept = 0
    for day in days_of(args.start, args.end):
        files = partition_files(args.lake, "raw.mixpanel_export", day)
        if files is None:
            continue
        mark(con, files, args.zone, args.currency)
        n_in, n_kept = write_day(con, args.out, day, "duckdb")
        rows_in += n_in
        rows_kept += n_kept
    return rows_in, rows_kept, duckdb.__version__


def run_pandas(args):
    import pandas
    import pandas_job

    def usable(ids):
        return ids.notna() & (ids != "") & ~ids.isin(PLACEHOLDERS)

    fx_files = partition_files(
        args.lake, "raw.sheets_fx_rates", latest_partition(args.lake, "raw.sheets_fx_rates"))
    fx = pandas_job.fx_table(fx_files, args.end)
    rows_in = rows_kept = 0
    for day in days_of(args.start, args.end):
        files = partition_files(args.lake, "raw.mixpanel_export", day)
        if files is None:
            continue
        marked, reason = pandas_job.mark(files, fx, args.zone, args.currency, DUPLICATE)
        n_in, n_kept = pandas_job.write_day(
            marked, reason, args.out, day, "pandas", SOURCE, PAIRS, usable)
        rows_in += n_in
        rows_kept += n_kept
    return rows_in, rows_kept, pandas.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lake", required=True, help="ltv lake (local directory) to read raw from")
    p.add_argument("--out", required=True, help="directory to write the clean tables under")
    p.add_argument("--from", dest="start", required=True, type=dt.date.fromisoformat)
    p.add_argument("--to", dest="end", required=True, type=dt.date.fromisoformat)
    p.add_argument("--zone", default="Asia/Seoul", help="reporting time zone")
    p.add_argument("--currency", default="USD", help="reporting currency")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="DuckDB's threads")
    p.add_argument("--check", metavar="LAKE", help="ltv lake whose clean layer must match")
    p.add_argument("--engine", choices=["duckdb", "pandas"], default="duckdb")
    args = p.parse_args()

    started = time.perf_counter()
    if args.engine == "duckdb":
        rows_in, rows_kept, version = run_duckdb(args)
    else:
        rows_in, rows_kept, version = run_pandas(args)
    seconds = time.perf_counter() - started
    # The job's high-water mark, before the check reads both outputs.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    problems = []
    if args.check:
        con = duckdb.connect()
        for day in days_of(args.start, args.end):
            if partition_files(args.lake, "raw.mixpanel_export", day) is not None:
                problems += check_day(con, args.out, args.check, day)
    print(json.dumps({
        "seconds": seconds,
        "peak_memory_bytes": peak,
        "rows_in": rows_in,
        "rows_kept": rows_kept,
        "engine": f"{args.engine} {version}",
        # pandas computes on one thread; pyarrow's Parquet I/O uses its own pool.
        "threads": args.threads if args.engine == "duckdb" else None,
        "problems": problems,
    }))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
