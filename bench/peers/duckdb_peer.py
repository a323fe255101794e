"""DuckDB as a peer of Cordon in `cordon bench peers`.

Runs the built-in rules' SQL (written by `cordon bench peers` to manifest.json, params
filled in as Cordon fills them) over the bench's Parquet stream, in one of two modes:

  batch      every rule once over the whole stream (a backtest)
  streaming  every rule re-run each second of event time over its trailing window
             (window + lateness), the way one runs SQL rules on a timer

The engine parts DuckDB lacks are supplied here, as plainly as possible: Cordon's
functions as SQL macros, the `kept` table (input.sql's rows with `is_new`/`is_due`), and
the alert fold (one alert per rule and entity per suppression period; a match whose
evidence an alert already holds changes nothing). Prints one JSON report on stdout.
"""

import argparse
import json
import sys
import time

import duckdb

SECOND = 1_000_000_000

MACROS = r"""
CREATE MACRO cordon_glob_regex(p, segments) AS
  replace(replace(replace(replace(replace(
    CASE WHEN segments THEN replace(replace(
      regexp_replace(p, '([.+^$(){}\[\]|\\])', '\\\1', 'g'),
      '**/', chr(1)), '**', chr(2))
    ELSE replace(regexp_replace(p, '([.+^$(){}\[\]|\\])', '\\\1', 'g'), '**', '*') END,
    '*', CASE WHEN segments THEN '[^/]*' ELSE '.*' END),
    '?', CASE WHEN segments THEN '[^/]' ELSE '.' END),
    chr(1), '(?:.*/)?'), chr(2), '.*'), '\\?', '?');
CREATE MACRO path_match(t, p) AS
  regexp_full_match(replace(lower(t), '\', '/'),
                    cordon_glob_regex(replace(lower(trim(p)), '\', '/'), true));
CREATE MACRO glob_match(t, p) AS
  regexp_full_match(lower(t), cordon_glob_regex(lower(trim(p)), false));
CREATE MACRO cordon_ipv4(h) AS regexp_full_match(h, '\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}');
CREATE MACRO cordon_bare(h) AS trim(trim(h), '[]');
CREATE MACRO cordon_is_ip(h) AS
  cordon_ipv4(cordon_bare(h)) OR (contains(h, ':') AND regexp_full_match(cordon_bare(h), '[0-9a-fA-F:.]+'));
CREATE MACRO cordon_ip4_int(h) AS
  split_part(h, '.', 1)::UBIGINT * 16777216 + split_part(h, '.', 2)::UBIGINT * 65536
  + split_part(h, '.', 3)::UBIGINT * 256 + split_part(h, '.', 4)::UBIGINT;
CREATE MACRO domain_match(h, p) AS CASE
  WHEN h IS NULL OR p IS NULL THEN NULL
  WHEN contains(p, '/') THEN CASE
    WHEN cordon_ipv4(cordon_bare(h)) AND cordon_ipv4(trim(split_part(p, '/', 1))) THEN
      (cordon_ip4_int(cordon_bare(h)) >> (32 - trim(split_part(p, '/', 2))::INT))
      = (cordon_ip4_int(trim(split_part(p, '/', 1))) >> (32 - trim(split_part(p, '/', 2))::INT))
    -- IPv6 blocks: compared by their leading hextets (fc00::/7 as fc or fd).
    WHEN contains(cordon_bare(h), ':') AND contains(p, ':') THEN
      CASE WHEN lower(trim(p)) = 'fc00::/7' THEN regexp_matches(lower(cordon_bare(h)), '^f[cd][0-9a-f]{0,2}:')
           ELSE starts_with(lower(cordon_bare(h)), lower(split_part(trim(p), '::', 1))) END
    ELSE false END
  WHEN cordon_is_ip(p) THEN lower(cordon_bare(h)) = lower(cordon_bare(p))
  WHEN contains(p, '*') AND regexp_full_match(trim(p), '[0-9.*]+') AND contains(p, '.') THEN
    cordon_ipv4(cordon_bare(h)) AND regexp_full_match(cordon_bare(h), cordon_glob_regex(trim(p), false))
  ELSE NOT cordon_is_ip(h)
    AND regexp_full_match(rtrim(lower(trim(h)), '.'), cordon_glob_regex(rtrim(lower(trim(p)), '.'), false))
  END;
CREATE MACRO cidr_match(h, p) AS domain_match(h, p);
CREATE MACRO program_name(t) AS
  nullif(regexp_replace(lower(regexp_extract(trim(trim(t), '"'''), '[^/\\]*$')), '\.exe$', ''), '');
CREATE MACRO command_word(c, n) AS
  replace(regexp_extract_all(c, '(?:"[^"]*"?|[^\s"])+')[n], '"', '');
CREATE MACRO regexp_match(s, p) AS
  CASE WHEN regexp_matches(s, p) THEN list_value(regexp_extract(s, p, 1)) END;
"""


def load_reference(con, reference_dir):
    import csv
    import os

    for name in sorted(os.listdir(reference_dir)):
        if not name.endswith(".csv"):
            continue
        with open(os.path.join(reference_dir, name), newline="") as handle:
            lines = [line for line in handle if not line.lstrip().startswith("#") and line.strip()]
        rows = list(csv.reader(lines))
        header, body = rows[0], rows[1:]
        table = name[: -len(".csv")]
        columns = ", ".join(f'"{column}" VARCHAR' for column in header)
        con.execute(f"CREATE TABLE {table} ({columns})")
        if body:
            marks = ", ".join("?" for _ in header)
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", body)


class Fold:
    """Cordon's alert fold: one alert per (rule, entity[, suppress_by]) per
    suppression period from the alert's first event; a match whose evidence an alert
    already holds is already folded."""

    def __init__(self):
        self.alerts = {}  # (rule, key) -> list of [first_seen, evidence set]
        self.counts = {}

    def fold(self, rule, row):
        key = tuple(row.get(column) for column in rule["entity"])
        suppressible = True
        for field in rule["suppress_by"]:
            value = row.get(field)
            if value is None and rule["suppress_missing_never"]:
                suppressible = False
            key += (value,)
        evidence = set(row.get("evidence") or [])
        first_seen = row["first_seen"]
        held = self.alerts.setdefault((rule["id"], key), [])
        for alert in held:
            if evidence and evidence <= alert[1]:
                return
        suppression = rule["suppression_seconds"]
        for alert in reversed(held):
            if suppressible and (first_seen - alert[0]).total_seconds() < suppression:
                alert[0] = min(alert[0], first_seen)
                alert[1] |= evidence
                return
        held.append([first_seen, evidence])
        self.counts[rule["id"]] = self.counts.get(rule["id"], 0) + 1


def matches(con, rule, new_from=None, due_from=None, due_to=None, keep_from=None):
    """Runs input.sql into `kept`, then match.sql over it; returns rows as dicts."""
    input_sql = rule["input"]
    if "columns" not in rule:
        rule["columns"] = [d[0] for d in con.execute(f"SELECT * FROM ({input_sql}) LIMIT 0").description]
    columns = rule["columns"]
    is_new = "true" if new_from is None else f"time >= {new_from}"
    if "due_at" in columns:
        is_due = "due_at IS NOT NULL" if due_from is None else f"(due_at >= {due_from} AND due_at < {due_to})"
    else:
        is_due = "false"
    keep = ""
    if keep_from is not None:
        until = "keep_until" if "keep_until" in columns else f"time + INTERVAL '{rule['window_seconds']} seconds'"
        keep = f"WHERE {until} >= {keep_from}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE kept AS SELECT *, {is_new} AS is_new, {is_due} AS is_due "
        f"FROM ({input_sql}) {keep}"
    )
    result = con.execute(rule["match"])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def at(nanos):
    """A TIMESTAMPTZ literal of a Unix time in nanoseconds."""
    return f"to_timestamp({nanos / 1e9!r})"


def views(con, manifest, source):
    """The per-kind views over `events` (and `events` itself over `source`)."""
    if source is not None:
        con.execute(f"CREATE OR REPLACE VIEW events AS {source}")
    for view in manifest["views"]:
        con.execute(f"CREATE OR REPLACE VIEW {view['view']} AS SELECT * FROM events WHERE event_name = '{view['kind']}'")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["batch", "streaming"], required=True)
    parser.add_argument("--events", required=True, help="the stream's Parquet file")
    parser.add_argument("--work", required=True, help="where manifest.json is")
    parser.add_argument("--reference", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--budget-seconds", type=float, default=0,
        help="streaming: stop after this much wall time (0: run the whole stream)")
    args = parser.parse_args()
    with open(f"{args.work}/manifest.json") as handle:
        manifest = json.load(handle)
    started = time.monotonic()
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    for statement in MACROS.split(";"):
        if statement.strip():
            con.execute(statement)
    load_reference(con, args.reference)
    # Times as DuckDB's usual TIMESTAMPTZ (microseconds): DuckDB 2.0.0 reads Parquet's
    # nanoseconds as TIMESTAMPTZ_NS, which does not compare with timestamp literals.
    con.execute(
        "CREATE TABLE stream AS SELECT * REPLACE (time::TIMESTAMPTZ AS time, "
        "received_time::TIMESTAMPTZ AS received_time, observed_time::TIMESTAMPTZ AS observed_time) "
        f"FROM read_parquet('{args.events}') ORDER BY received_time, time"
    )
    events = con.execute("SELECT count(*) FROM stream").fetchone()[0]
    fold = Fold()
    lateness = manifest["lateness_seconds"]
    if args.mode == "batch":
        views(con, manifest, "SELECT * FROM stream")
        for rule in manifest["rules"]:
            for row in sorted(matches(con, rule), key=lambda row: row["first_seen"]):
                fold.fold(rule, row)
        method = "each rule once over the whole stream"
        partial = False
    else:
        # A sliding window kept the way one keeps it in DuckDB: each second, insert what
        # arrived and delete what every rule's window and the lateness have passed.
        horizon = int((max(rule["window_seconds"] for rule in manifest["rules"]) + lateness) * SECOND)
        con.execute("CREATE TABLE events AS SELECT * FROM stream LIMIT 0")
        views(con, manifest, None)
        first, last = con.execute("SELECT epoch_ns(min(received_time)), epoch_ns(max(received_time)) FROM stream").fetchone()
        tick = (first // SECOND + 1) * SECOND
        ticks = 0
        total_ticks = (last + SECOND - tick) // SECOND + 1
        partial = False
        while tick <= last + SECOND:
            if args.budget_seconds and time.monotonic() - started > args.budget_seconds:
                partial = True
                break
            ticks += 1
            con.execute(
                f"INSERT INTO events SELECT * FROM stream WHERE received_time >= {at(tick - SECOND)} "
                f"AND received_time < {at(tick)}"
            )
            con.execute(f"DELETE FROM events WHERE received_time < {at(tick - horizon)}")
            new_from = at(tick - SECOND)
            watermark = at(tick - int(lateness * SECOND))
            previous = at(tick - SECOND - int(lateness * SECOND))
            for rule in manifest["rules"]:
                for row in matches(con, rule, new_from, previous, watermark, watermark):
                    fold.fold(rule, row)
            tick += SECOND
        events = con.execute(f"SELECT count(*) FROM stream WHERE received_time < {at(tick)}").fetchone()[0]
        method = f"each rule re-run over its trailing window every second of event time ({ticks} seconds)"
        if partial:
            # The first seconds, while the windows fill: cheaper than a full window's
            # seconds, so the rate is DuckDB's best case, and its alerts are not all.
            method = (f"each rule re-run over its trailing window every second of event time; stopped after "
                      f"{args.budget_seconds:.0f} s of wall time, at {ticks} of {total_ticks} seconds of the stream "
                      f"(windows still filling: its best case; alerts only of that part)")
    seconds = time.monotonic() - started
    json.dump(
        {"events": events, "seconds": seconds, "alerts": fold.counts, "method": method,
         "partial": args.mode == "streaming" and partial},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
