"""Reads Cordon's Parquet files with DuckDB, independently of Cordon, and prints what it
finds as JSON: rows, distinct (host_id, event_id) pairs, rows per event kind, and the
hive partitions.

usage: duckdb_count.py EVENTS_DIR
"""

import json
import sys

import duckdb

events_dir = sys.argv[1]
source = f"read_parquet('{events_dir}/**/*.parquet', hive_partitioning = true)"
connection = duckdb.connect()
rows, distinct = connection.execute(
    f"SELECT count(*), count(DISTINCT (host_id, event_id)) FROM {source}"
).fetchone()
kinds = dict(connection.execute(f"SELECT event_name, count(*) FROM {source} GROUP BY 1").fetchall())
partitions = [
    f"{date}/{hour}"
    for date, hour in connection.execute(f"SELECT DISTINCT date, hour FROM {source} ORDER BY 1, 2").fetchall()
]
bytes_sent = connection.execute(f"SELECT sum(network_io_bytes_sent) FROM {source}").fetchone()[0]
print(json.dumps({"rows": rows, "distinct": distinct, "kinds": kinds, "partitions": partitions,
                  "bytes_sent": int(bytes_sent or 0)}))
