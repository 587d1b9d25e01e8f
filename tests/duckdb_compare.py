"""Runs queries through DuckDB over JSON lines, for tests/duckdb.rs.

Reads a JSON object from standard input: {"tables": {NAME: PATH, ...}, "queries": [SQL, ...]}.
Each NAME becomes a view of its file's `{"key": ..., "value": ...}` lines, with the key as
`_key` and the value as the struct `value`, every line read to infer the types
(sample_size=-1, as hashstash reads every row). Prints {"results": [[row, ...], ...]}, each
row a list of cells; numbers DuckDB returns as decimals come as floats.
"""
import decimal
import json
import sys

import duckdb


def cell(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [cell(v) for v in value]
    if isinstance(value, dict):
        return {k: cell(v) for k, v in value.items()}
    return value


def main():
    spec = json.load(sys.stdin)
    con = duckdb.connect(config={"threads": 2})
    for name, path in spec["tables"].items():
        con.sql(
            f"CREATE VIEW {name} AS SELECT key AS _key, value FROM "
            f"read_json('{path}', format='newline_delimited', sample_size=-1)"
        )
    results = []
    for query in spec["queries"]:
        rows = con.sql(query).fetchall()
        results.append([[cell(v) for v in row] for row in rows])
    json.dump({"results": results}, sys.stdout)


main()
