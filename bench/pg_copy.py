"""Benchmark: the COPY path of `pg_copy.replace_table`, psycopg2 against psycopg 3.

    .venv/bin/python bench/pg_copy.py [--rows 200000] [--batch 10000] [--rounds 5]

Every variant gets the same batches of rows shaped like a MySQL table copy (int, numeric text,
timestamp text, 64-char label, 200-char payload with a tab to escape) and COPYs them into a fresh
ordinary table of the same types, in one transaction:

- psycopg2: the previous `replace_table` path: COPY text built in Python (per-value converters
  and escaping, as below) and sent with `cursor.copy_expert(sql, BytesIO)` per batch;
- psycopg3_text: the same bytes through psycopg 3's `with cursor.copy(sql) as copy:
  copy.write(...)`: the transport alone;
- psycopg3_rows: the current `replace_table` path: `copy.write_row(...)` per row with
  `pg_copy`'s value converters (mysql_sync's raw_value / format_copy_value), psycopg formatting
  and escaping the values in C.

Rounds interleave the variants, so machine load (2 shared cores) hits them alike; the median
of each is printed with the ratio psycopg3 / psycopg2 (below 1 = psycopg 3 is faster). Uses
POSTGRES_* (pyairbyte.settings) or the private test cluster (see _setup.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import time

import psycopg
import psycopg2
from _setup import bench_database

from pyairbyte.utils.pg_copy import format_copy_value, raw_value

COLUMNS = "id integer, amount numeric(20,6), created timestamp, label text, payload text"
COPY_SQL = "copy bench_copy (id, amount, created, label, payload) from stdin"


def make_batches(rows: int, batch: int) -> list[list[tuple]]:
    start = dt.datetime(2024, 1, 1)
    data = [
        (
            str(i),
            f"{i * 1.000001:.6f}",
            (start + dt.timedelta(seconds=i)).isoformat(sep=" "),
            f"label {i:>10}".ljust(64, "x"),
            ("payload\t" + str(i)).ljust(200, "p"),
        )
        for i in range(rows)
    ]
    return [data[i : i + batch] for i in range(0, rows, batch)]


# The previous psycopg2 path's COPY text formatting (for the values this benchmark has).
def _text_raw(value) -> str:
    return "\\N" if value is None else value


def _text_escaped(value) -> str:
    if value is None:
        return "\\N"
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


TEXT_CONVERTERS = [_text_raw, _text_raw, _text_raw, _text_escaped, _text_escaped]
VALUE_CONVERTERS = [raw_value, raw_value, raw_value, format_copy_value, format_copy_value]


def _copy_text(rows) -> io.BytesIO:
    text = "\n".join(
        "\t".join([conv(v) for conv, v in zip(TEXT_CONVERTERS, row, strict=True)]) for row in rows
    )
    return io.BytesIO((text + "\n").encode())


def _fresh_table(cur) -> None:
    cur.execute("drop table if exists bench_copy")
    cur.execute(f"create table bench_copy ({COLUMNS})")


def run_psycopg2(kwargs: dict, batches) -> float:
    conn = psycopg2.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            _fresh_table(cur)
            conn.commit()
            started = time.perf_counter()
            for batch in batches:
                cur.copy_expert(COPY_SQL, _copy_text(batch))
            conn.commit()
            elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return elapsed


def run_psycopg3(kwargs: dict, batches) -> float:
    with psycopg.connect(**kwargs) as conn, conn.cursor() as cur:
        _fresh_table(cur)
        conn.commit()
        started = time.perf_counter()
        for batch in batches:
            with cur.copy(COPY_SQL) as copy:
                copy.write(_copy_text(batch).getbuffer())
        conn.commit()
        return time.perf_counter() - started


def run_psycopg3_rows(kwargs: dict, batches) -> float:
    with psycopg.connect(**kwargs) as conn, conn.cursor() as cur:
        _fresh_table(cur)
        conn.commit()
        started = time.perf_counter()
        for batch in batches:
            with cur.copy(COPY_SQL) as copy:
                for row in batch:
                    copy.write_row([conv(v) for conv, v in zip(VALUE_CONVERTERS, row, strict=True)])
        conn.commit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    pg = bench_database("dataplatform_bench_pg_copy")
    kwargs = pg.psycopg2_kwargs()
    batches = make_batches(args.rows, args.batch)
    variants = {
        "psycopg2": run_psycopg2,
        "psycopg3_text": run_psycopg3,
        "psycopg3_rows": run_psycopg3_rows,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up: connections, caches, the table's first pages
        run(kwargs, batches[:2])
    for _ in range(args.rounds):
        for name, run in variants.items():
            times[name].append(run(kwargs, batches))

    print(f"COPY {args.rows} rows in batches of {args.batch}, median of {args.rounds} rounds:")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:<14} {median:.3f} s  (range {spread} s)")
    base = medians["psycopg2"]
    print(f"  ratio psycopg3_text / psycopg2: {medians['psycopg3_text'] / base:.3f}")
    print(f"  ratio psycopg3_rows / psycopg2: {medians['psycopg3_rows'] / base:.3f}")


if __name__ == "__main__":
    main()
