"""The same Mixpanel cleanse as `cleanse_mixpanel.py`'s SQL, written with pandas (pyarrow for
Parquet, as pandas itself reads and writes it): `cleanse_mixpanel.py --engine pandas`. pandas'
own operations run on one thread (pyarrow's Parquet reads and writes use its thread pool); the
rules run in the same order, each row rejected by the first that fires.
"""

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RAW_COLUMNS = [
    "line", "event", "time", "distinct_id", "device_id", "user_id", "appsflyer_id",
    "insert_id", "os", "country_code", "revenue_micros", "currency", "mp_processing_time_ms",
    "malformed",
]


def fx_table(files, through):
    """ltv's dense FX table: (date as UTC midnight, currency) -> usd_per_unit."""
    sheet = pd.read_parquet(files, columns=["row", "date", "currency", "usd_per_unit", "pulled_at"])
    sheet["date"] = pd.to_datetime(sheet["date"]).dt.tz_localize("UTC")
    through = pd.Timestamp(through, tz="UTC")
    sheet = sheet[(sheet["date"] <= through) & (sheet["currency"] != "USD")]
    latest = (
        sheet.sort_values(["pulled_at", "row"], ascending=[False, True], na_position="last")
        .drop_duplicates(["date", "currency"], keep="first")
    )
    days = pd.date_range(latest["date"].min(), through, freq="D")
    dense = (
        latest.pivot(index="date", columns="currency", values="usd_per_unit")
        .reindex(days)
        .ffill()
        .rename_axis("date")
        .reset_index()
        .melt(id_vars="date", var_name="currency", value_name="usd_per_unit")
        .dropna()
    )
    usd = pd.DataFrame({"date": days, "currency": "USD", "usd_per_unit": 1.0})
    return pd.concat([dense, usd], ignore_index=True)


def reject_where(reason, fires, text):
    """Sets `reason` to `text` (a string or an array of them) where `fires` and no earlier
    rule fired."""
    fires = np.asarray(fires, dtype=bool) & pd.isna(reason)
    reason[fires] = text if isinstance(text, str) else np.asarray(text, dtype=object)[fires]


def rate(df, fx, currency):
    """The rate of `currency` (a column or one code) on each row's UTC day, NaN where none."""
    left = pd.DataFrame({"date": df["fx_date"], "currency": currency})
    return left.merge(fx, on=["date", "currency"], how="left")["usd_per_unit"].to_numpy()


def mark(files, fx, zone, reporting, duplicate):
    df = pd.read_parquet(files, columns=RAW_COLUMNS)
    n = len(df)
    reason = np.full(n, None, dtype=object)
    reject_where(reason, df["malformed"].notna(), "malformed: " + df["malformed"].fillna(""))
    reject_where(reason, df["time"].isna(), "malformed: time: missing")
    revenue = df["revenue_micros"]
    reject_where(
        reason, revenue.lt(0).fillna(False),
        "malformed: revenue: negative (" + revenue.astype("string").fillna("") + " micros)",
    )
    reject_where(
        reason, revenue.notna() & df["currency"].isna(),
        "malformed: currency: revenue without a currency",
    )
    # Mixpanel's rule: the first ingested of each (event, distinct_id, $insert_id) among the
    # rows still standing is kept; rows without an $insert_id are never duplicates.
    candidates = df[pd.isna(reason) & df["insert_id"].notna().to_numpy()]
    ordered = candidates.sort_values(
        ["mp_processing_time_ms", "line"], na_position="last", kind="stable")
    repeats = ordered.index[ordered.duplicated(["event", "distinct_id", "insert_id"])]
    fires = np.zeros(n, dtype=bool)
    fires[df.index.get_indexer(repeats)] = True
    reject_where(reason, fires, duplicate)

    df["fx_date"] = df["time"].dt.floor("D")
    from_rate = np.where(df["currency"] == "USD", 1.0, rate(df, fx, df["currency"]))
    unknown = df["currency"].notna().to_numpy() & np.isnan(from_rate)
    day = df["fx_date"].dt.strftime("%Y-%m-%d")
    reject_where(
        reason, unknown,
        "malformed: currency=" + df["currency"].fillna("") + " has no FX rate on " + day.fillna(""),
    )
    to_rate = 1.0 if reporting == "USD" else rate(df, fx, reporting)
    exact = df["revenue_micros"].to_numpy(dtype="float64", na_value=np.nan) * from_rate / to_rate
    rounded = np.sign(exact) * np.floor(np.abs(exact) + 0.5)
    converted = pd.array(rounded, dtype="Int64")
    converted = np.where(df["currency"] == reporting, df["revenue_micros"], converted)

    os_lower = df["os"].str.lower()
    local = df["time"].dt.tz_convert(zone).dt.tz_localize(None)
    out = pd.DataFrame({
        "line": df["line"],
        "event": df["event"],
        "time": df["time"],
        "report_date": local.to_numpy().astype("datetime64[D]"),
        "distinct_id": df["distinct_id"],
        "device_id": df["device_id"],
        "user_id": df["user_id"],
        "appsflyer_id": df["appsflyer_id"],
        "insert_id": df["insert_id"],
        "platform": os_lower.where(~os_lower.isin(["ios", "ipados"]), "ios"),
        "country": df["country_code"],
        # pandas reads a nullable integer column as float64: back to integer micros (exact
        # below 2^53 micros, nine billion units).
        "revenue_micros": df["revenue_micros"].astype("Int64"),
        "currency": df["currency"],
        "reporting_currency": reporting,
        "revenue_reporting_micros": pd.array(converted, dtype="Int64"),
    })
    out["report_date"] = out["report_date"].astype("datetime64[s]").dt.date
    return out, reason


def write(frame, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", compression_level=1, row_group_size=262144)


def write_day(marked, reason, out, day, run_id, source, pairs, usable):
    """The day's four outputs, laid out as the DuckDB job lays them out."""
    def path(table):
        return os.path.join(out, table, f"dt={day}", "part-0.parquet")

    kept_mask = pd.isna(reason)
    kept = marked[kept_mask]
    write(kept, path("mixpanel_events"))

    rejected = marked[~kept_mask].assign(dt=str(day))
    reasons = reason[~kept_mask]
    records = rejected.astype(object).where(rejected.notna(), None)
    rows = [
        json.dumps({k: (v if isinstance(v, (int, float, str, type(None))) else str(v))
                    for k, v in sorted(r.items())}, separators=(",", ":"))
        for r in records.to_dict("records")
    ]
    write(pd.DataFrame({
        "stage": "cleanse", "run_id": run_id, "source": source,
        "row_key": [f'{{"line":{line}}}' for line in rejected["line"]],
        "rule": [r.split(": ", 1)[0] for r in reasons],
        "reason": list(reasons),
        "row": rows,
    }, columns=["stage", "run_id", "source", "row_key", "rule", "reason", "row"]),
        path("quarantine"))

    combos = (
        kept.groupby(["device_id", "user_id", "appsflyer_id"], dropna=False, sort=False)
        .size().rename("n").reset_index()
    )
    parts = []
    for lk, lc, rk, rc in pairs:
        ok = combos[usable(combos[lc]) & usable(combos[rc])]
        g = ok.groupby([lc, rc], sort=False)["n"].sum().reset_index()
        parts.append(pd.DataFrame({
            "source": source, "left_kind": lk, "left_id": g[lc], "right_kind": rk,
            "right_id": g[rc], "rows": g["n"].astype("uint64"),
        }))
    links = pd.concat(parts, ignore_index=True).sort_values(
        ["source", "left_kind", "left_id", "right_kind", "right_id"])
    write(links, path("id_links"))

    rules = pd.Series([r.split(": ", 1)[0] for r in reasons], dtype=object)
    n_in = len(marked)
    malformed = int((rules == "malformed").sum())
    duplicate = int((rules == "duplicate").sum())
    write(pd.DataFrame({
        "stage": "cleanse", "run_id": run_id, "source": source,
        "rule": ["malformed", "duplicate"],
        "step": np.array([1, 2], dtype="uint64"),
        "rows_in": np.array([n_in, n_in - malformed], dtype="uint64"),
        "rows_out": np.array([n_in - malformed, n_in - malformed - duplicate], dtype="uint64"),
        "rows_changed": np.array([0, 0], dtype="uint64"),
    }), path("data_quality"))
    return n_in, len(kept)
