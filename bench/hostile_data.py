"""Hostile source data through stock PostgresCache and CopyPostgresCache, side by side.

    .venv/bin/python bench/hostile_data.py [--cases a,b] [--sync-timeout 90] [--serial]
                                           [--keep] [--no-docs]

Runs every case of `tests/pyairbyte/utils/postgres_copy_cache/hostile_corpus.py` (one stream
each, served as exact JSON text by the tests' local HTTP API and read by a declarative source
that PyAirbyte runs in-process) through (a) PyAirbyte's own `PostgresCache` and (b) the project's
`CopyPostgresCache`, each case in a fresh schema of its own, with the case's syncs in order
(`source.read(cache=..., write_strategy=...)`). Then, per case and cache:

- the outcome of each sync: ok, or the exception's type and the first 150 characters of its
  message;
- the rows in the table;
- values lost silently: every value a record served (parsed with exact decimals), compared with
  what the table holds for that record, where the sync that served it succeeded, the value is
  missing or different, and the row's `_airbyte_meta.changes` does not name the field;
- records missing silently: the sync succeeded, no row holds the record, and no dead-letter table
  (`%dead_letter%` in the case's schema) has it; and extra rows (e.g. a duplicated record).

Uses POSTGRES_* (pyairbyte.settings), as the other benches do: with POSTGRES_HOST set, that
server, else the private test cluster (bench/_setup.py); in both, a fresh database
`dataplatform_bench_hostile`. Each cache runs in its own subprocess (the two in parallel unless
--serial), each sync under a timeout; a case that raises, hangs or kills its process is recorded
and the rest go on. The markdown table is printed and written into docs/hostile-data.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the corpus and the local API live under tests/

DATABASE = "dataplatform_bench_hostile"
DOC_PATH = REPO_ROOT / "docs" / "hostile-data.md"
KINDS = {"stock": "stock PostgresCache", "copy": "CopyPostgresCache"}
RESULT_MARKER = "HOSTILE_RESULT "
MESSAGE_CHARS = 150
PAGE_SIZE = 2  # records per API page: several pages per sync, even for these small cases
PG_MAX_IDENTIFIER_BYTES = 63
TYPE_SUFFIXES = {"jsonb", "json", "text", "varchar", "numeric", "bigint", "boolean", "timestamptz"}


def _work_dir() -> Path:
    from pyairbyte import settings

    path = settings.project_dir() / "bench" / "hostile_data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _connect():
    import psycopg2

    from pyairbyte import settings

    conn = psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")  # timestamptz as text: UTC instants
    return conn


def _schema_name(kind: str, case_name: str) -> str:
    return f"hostile_{kind}_{case_name}"[:PG_MAX_IDENTIFIER_BYTES]


def _drop_schema(conn, schema: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ---- exact values -----------------------------------------------------------------------------


def _loads(text: str):
    """JSON with exact numbers; NaN/Infinity (which some APIs send) as Decimal too."""
    return json.loads(text, parse_float=Decimal, parse_constant=Decimal)


def normalize(name: str) -> str:
    """PyAirbyte 0.71's column name for a property, cut to PostgreSQL's 63 bytes."""
    result = re.sub(r"[^A-Za-z0-9]", "_", name.lower())
    if result and result[0].isdigit():
        result = f"_{result}"
    return _truncate(result)


def _truncate(name: str, limit: int = PG_MAX_IDENTIFIER_BYTES) -> str:
    return name.encode()[:limit].decode(errors="ignore")


def _with_suffix(name: str, n: int) -> str:
    return _truncate(name, PG_MAX_IDENTIFIER_BYTES - len(f"_{n}")) + f"_{n}"


class TemporalText(str):
    """The text of a date/time column's value (compared as an instant, not as text)."""


_INSTANT = re.compile(
    r"^(?P<y>-?\d{4,})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?P<f>\.\d+)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?(?P<bc> BC)?$"
)


def _instant(text: str) -> tuple | None:
    """A date or date-time's UTC instant as a comparable tuple; a value with no offset counts as
    UTC. Works past Python's year 9999 (a 400-year Gregorian cycle repeats the calendar)."""
    match = _INSTANT.match(text.strip())
    if not match:
        return None
    year = int(match["y"]) * (-1 if match["bc"] else 1)
    offset = 0
    if match["tz"] and match["tz"] != "Z":
        sign = -1 if match["tz"][0] == "-" else 1
        digits = match["tz"][1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:4] or 0))
    base = 2000 + year % 400
    try:
        moment = dt.datetime(
            base,
            int(match["mo"]),
            int(match["d"]),
            int(match["h"] or 0),
            int(match["mi"] or 0),
            int(match["s"] or 0),
        ) - dt.timedelta(minutes=offset)
    except ValueError:
        return None  # 2024-13-45
    fraction = Decimal(match["f"] or "0").normalize()
    return (year + moment.year - base, *moment.timetuple()[1:6], fraction)


def _is_number(value) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _same_number(a, b) -> bool:
    a, b = Decimal(a), Decimal(b)
    if a.is_nan() or b.is_nan():
        return a.is_nan() and b.is_nan()
    return a == b


def _same(expected, actual) -> bool:
    """Does the stored `actual` hold the served `expected` exactly (types widened to text or
    JSON count as kept when the value reads back the same)?"""
    if expected is None:
        return actual is None
    if isinstance(actual, str) and not isinstance(actual, TemporalText):
        if not isinstance(expected, str):
            try:  # a number or an object kept in a text column
                return _same_json(expected, _loads(actual))
            except (ValueError, InvalidOperation, RecursionError):
                return False
        return actual == expected
    if isinstance(actual, TemporalText):
        if not isinstance(expected, str):
            return False
        if actual == expected:
            return True
        expected_instant = _instant(expected)
        return expected_instant is not None and expected_instant == _instant(actual)
    return _same_json(expected, actual)


def _same_json(expected, actual) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if _is_number(expected) or _is_number(actual):
        return _is_number(expected) and _is_number(actual) and _same_number(expected, actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_same_json(expected[k], actual[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same_json(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and expected == actual


def _convert(text: str | None, data_type: str):
    """A column's value, selected as text, back to a Python value."""
    if text is None:
        return None
    if data_type in ("json", "jsonb"):
        try:
            return _loads(text)
        except (ValueError, RecursionError):
            return text
    if data_type in ("numeric", "double precision", "real"):
        return Decimal(text)
    if data_type in ("bigint", "integer", "smallint"):
        return int(text)
    if data_type == "boolean":
        return text in ("true", "t")
    if data_type.startswith(("timestamp", "date", "time")):
        return TemporalText(text)
    return text


def _short_name(name: str, limit: int = 40) -> str:
    half = (limit - 3) // 2
    return name if len(name) <= limit else f"{name[:half]}...{name[-half:]}"


def _short(value, limit: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- one case (in the child process) ----------------------------------------------------------


class SyncTimeout(Exception):
    pass


_ALARM = {"fired": False}


def _on_alarm(signum, frame):
    _ALARM["fired"] = True  # PyAirbyte may wrap the exception below in one of its own
    raise SyncTimeout("the sync did not finish in time")


def _make_cache(kind: str, schema: str):
    from _setup import make_cache

    return make_cache(kind, schema, _work_dir() / "staging" / schema)


def _describe_error(error: BaseException) -> str:
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message[:MESSAGE_CHARS]}"


def _root_cause(error: BaseException) -> str | None:
    seen, cause = set(), error
    while True:
        following = cause.__cause__ or getattr(cause, "original_exception", None)
        if following is None or id(following) in seen or not isinstance(following, BaseException):
            break
        seen.add(id(following))
        cause = following
    return None if cause is error else _describe_error(cause)


def run_case(kind: str, case, api, timeout: float) -> dict:
    import airbyte as ab

    from tests.pyairbyte.utils.postgres_copy_cache.conftest import build_manifest, paged

    schema = _schema_name(kind, case.name)
    conn = _connect()
    _drop_schema(conn, schema)
    outcomes = []
    cache = _make_cache(kind, schema)
    started = time.perf_counter()
    try:
        for n, (stream_schema, records) in enumerate(case.syncs, start=1):
            api.handler = paged(records, page_size=PAGE_SIZE)
            outcome = {"sync": n, "ok": True, "error": None, "cause": None}
            _ALARM["fired"] = False
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                manifest = build_manifest(
                    api.url,
                    stream=case.name,
                    schema=stream_schema,
                    primary_key=case.primary_key,
                )
                source = ab.get_source(
                    f"source-{case.name.replace('_', '-')}-hostile",
                    source_manifest=manifest,
                    config={},
                )
                source.select_all_streams()
                source.read(
                    cache=cache,
                    write_strategy=case.write_strategy,
                    force_full_refresh=case.write_strategy == "replace",
                )
            except Exception as error:  # noqa: BLE001 - every failure is a result here
                outcome.update(ok=False, error=_describe_error(error), cause=_root_cause(error))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if _ALARM["fired"]:
                outcome.update(ok=False, error=f"SyncTimeout: no result in {timeout:g} s")
            outcomes.append(outcome)
            if _ALARM["fired"]:
                # The next sync would run in a process the timeout may have left broken.
                for later in range(n + 1, len(case.syncs) + 1):
                    outcomes.append({"sync": later, "ok": False, "error": "not run", "cause": None})
                break
    finally:
        try:
            cache.close()
        except Exception:  # noqa: BLE001
            pass
    seconds = time.perf_counter() - started
    result = evaluate(conn, case, schema, outcomes)
    conn.close()
    # A sync stopped by the timeout can leave the in-process source's threads behind: the rest
    # of the cases run in a fresh process.
    restart = any((o["error"] or "").startswith("SyncTimeout") for o in outcomes)
    return {
        "case": case.name,
        "kind": kind,
        "outcomes": outcomes,
        "seconds": seconds,
        "restart": restart,
        **result,
    }


# ---- evaluation -------------------------------------------------------------------------------


def _strategy(case) -> str:
    if case.write_strategy != "auto":
        return case.write_strategy
    return "merge" if case.primary_key else "append"


def _expected_records(case, outcomes) -> list[dict]:
    """What the successful syncs should have left in the table, in emission order."""
    strategy = _strategy(case)
    expected: dict = {}
    for n, (_, records) in enumerate(case.syncs):
        if not outcomes[n]["ok"]:
            continue
        if strategy == "replace":
            expected = {}
        for i, text in enumerate(records):
            record = _loads(text)
            if strategy == "merge":
                key = tuple(repr(record.get(prop)) for prop in case.primary_key)
                expected.pop(key, None)  # the last emitted wins, in its own position
            else:
                key = (n, i)
            expected[key] = record
    return list(expected.values())


def _find_table(cur, schema: str, stream: str) -> str | None:
    cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (schema,),
    )
    names = [name for (name,) in cur.fetchall()]
    for wanted in (stream, normalize(stream)):
        if wanted in names:
            return wanted
    return None


def _read_table(cur, schema: str, table: str) -> tuple[list[str], list[dict]]:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    columns = cur.fetchall()
    select = ", ".join(f'"{name}"::text' for name, _ in columns)
    cur.execute(f'SELECT {select} FROM "{schema}"."{table}"')
    rows = [
        {
            name: _convert(text, data_type)
            for (name, data_type), text in zip(columns, row, strict=True)
        }
        for row in cur.fetchall()
    ]
    return [name for name, _ in columns], rows


def _column_map(cur, schema: str, table: str) -> dict[str, list[str]]:
    """The project's property -> column(s) map, when the cache keeps one."""
    cur.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = '_dataplatform_column_map' AND column_name = 'property'",
        (schema,),
    )
    if cur.fetchone() is None:
        return {}
    cur.execute(
        f'SELECT property, column_name FROM "{schema}"._dataplatform_column_map '
        "WHERE table_name = %s",
        (table,),
    )
    mapping: dict[str, list[str]] = {}
    for prop, column in cur.fetchall():
        mapping.setdefault(prop, []).append(column)
    return mapping


def _candidate_columns(prop: str, columns: list[str], column_map: dict) -> list[str]:
    if prop in column_map:
        wanted = column_map[prop]
    else:
        norm = normalize(prop)
        wanted = [prop, prop.lower(), norm] + [_with_suffix(norm, n) for n in range(2, 5)]
        # A typed sibling column for a property whose type changed: `price_jsonb`.
        prefix = norm + "_"
        wanted += [c for c in columns if c.startswith(prefix) and c[len(prefix) :] in TYPE_SUFFIXES]
    present = set(columns)
    return [c for c in dict.fromkeys(wanted) if c in present]


def _stored_values(row: dict, prop: str, candidates: list[str]) -> list:
    values = [row[c] for c in candidates]
    # A cache may keep properties it has no column for in an `_airbyte_*` JSON column.
    for column, value in row.items():
        if column.startswith("_airbyte") and isinstance(value, dict):
            for holder in (value, *[v for v in value.values() if isinstance(v, dict)]):
                if prop in holder:
                    values.append(holder[prop])
    return values


def _meta_fields(row: dict) -> set[str]:
    meta = row.get("_airbyte_meta")
    if isinstance(meta, str):
        try:
            meta = _loads(meta)
        except ValueError:
            return set()
    changes = meta.get("changes") if isinstance(meta, dict) else None
    if not isinstance(changes, list):
        return set()
    return {str(c.get("field", "")).lower() for c in changes if isinstance(c, dict)}


def _dead_letters(cur, schema: str, stream: str) -> tuple[list[dict], int]:
    """Records found in the schema's dead-letter tables for `stream`, and the rows whose record
    could not be read back (each may account for one missing record)."""
    cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name LIKE %s",
        (schema, "%dead_letter%"),
    )
    records, unreadable = [], 0
    for (table,) in cur.fetchall():
        _, rows = _read_table(cur, schema, table)
        for row in rows:
            if "stream" in row and row["stream"] not in (stream, normalize(stream)):
                continue
            found = None
            for value in row.values():
                if not isinstance(value, str | dict) or (
                    isinstance(value, str) and not value.lstrip().startswith("{")
                ):
                    continue
                try:
                    parsed = _loads(value) if isinstance(value, str) else value
                except (ValueError, RecursionError):
                    continue
                if not isinstance(parsed, dict):
                    continue
                record = parsed.get("record")
                for data in (
                    record.get("data") if isinstance(record, dict) else None,
                    parsed.get("data"),
                    None if {"record", "data"} & parsed.keys() else parsed,
                ):
                    if isinstance(data, dict):
                        found = data  # a key it lacks reads as null (a quarantined null key)
                        break
                if found is not None:
                    break
            if found is None:
                unreadable += 1
            else:
                records.append(found)
    return records, unreadable


def evaluate(conn, case, schema: str, outcomes: list[dict]) -> dict:
    expected = _expected_records(case, outcomes)
    key_props = case.primary_key or ["id"]
    lost: list[str] = []
    flagged: list[str] = []
    missing: list[str] = []
    dead_lettered = 0
    with conn.cursor() as cur:
        table = _find_table(cur, schema, case.name)
        columns, rows = _read_table(cur, schema, table) if table else ([], [])
        column_map = _column_map(cur, schema, table) if table else {}
        letters, unreadable_letters = _dead_letters(cur, schema, case.name)
    candidates = {}

    def cands(prop: str) -> list[str]:
        if prop not in candidates:
            candidates[prop] = _candidate_columns(prop, columns, column_map)
        return candidates[prop]

    def holds(row: dict, prop: str, value) -> bool:
        return any(_same(value, stored) for stored in _stored_values(row, prop, cands(prop)))

    used: set[int] = set()
    for record in expected:
        label = ", ".join(f"{p}={_short(record.get(p), 24)}" for p in key_props)
        matches = [
            i
            for i, row in enumerate(rows)
            if i not in used and all(holds(row, p, record.get(p)) for p in key_props)
        ]
        if not matches:
            letter = next(
                (
                    n
                    for n, data in enumerate(letters)
                    if all(_same_json(record.get(p), data.get(p)) for p in key_props)
                ),
                None,
            )
            if letter is not None:
                letters.pop(letter)
                dead_lettered += 1
            elif unreadable_letters:
                unreadable_letters -= 1
                dead_lettered += 1
            else:
                missing.append(label)
            continue

        def problems(i: int, record: dict = record) -> list[str]:
            return [p for p in record if not holds(rows[i], p, record[p])]

        best = min(matches, key=lambda i: len(problems(i)))
        used.add(best)
        row = rows[best]
        meta_fields = _meta_fields(row)
        for prop in problems(best):
            named = {prop.lower(), *(c.lower() for c in cands(prop))} & meta_fields
            stored = [row[c] for c in cands(prop)]
            if not stored:
                shown = "no column"
            else:
                shown = _short(stored[0] if len(stored) == 1 else stored)
            detail = (
                f"`{_short_name(prop)}` ({label}): served {_short(record[prop])}, stored {shown}"
            )
            (flagged if named else lost).append(detail)
    return {
        "table": table,
        "rows": len(rows) if table else None,
        "expected_rows": len(expected),
        "extra_rows": len(rows) - len(used),
        "lost": lost,
        "flagged": flagged,
        "missing": missing,
        "dead_lettered": dead_lettered,
    }


def child_main(kind: str, names: list[str], timeout: float) -> None:
    """Run the named cases through one cache, printing one result line per case."""
    from pyairbyte.utils.airbyte_env import configure_airbyte_environment

    configure_airbyte_environment()
    import airbyte  # noqa: F401 - import once, before the first case's clock starts

    from tests.pyairbyte.utils.postgres_copy_cache.conftest import LocalApi
    from tests.pyairbyte.utils.postgres_copy_cache.hostile_corpus import CASES_BY_NAME

    signal.signal(signal.SIGALRM, _on_alarm)
    api = LocalApi()
    try:
        for name in names:
            print(f"[{kind}] {name} ...", file=sys.stderr, flush=True)
            try:
                result = run_case(kind, CASES_BY_NAME[name], api, timeout)
            except BaseException as error:  # noqa: BLE001 - isolate the case, go on
                signal.setitimer(signal.ITIMER_REAL, 0)
                if isinstance(error, KeyboardInterrupt):
                    raise
                result = {"case": name, "kind": kind, "bench_error": _describe_error(error)}
            print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
            if result.get("restart"):
                os._exit(0)  # the parent starts a new process for the remaining cases
    finally:
        api.close()


# ---- orchestration (the parent process) -------------------------------------------------------


def _run_kind(kind: str, names: list[str], timeout: float, results: dict) -> None:
    """Run `names` through `kind` in a child process; restart it after a crash or a hang."""
    from tests.pyairbyte.utils.postgres_copy_cache.hostile_corpus import CASES_BY_NAME

    log_path = _work_dir() / f"{kind}.log"
    remaining = list(names)
    with open(log_path, "w") as log:
        while remaining:
            command = [sys.executable, __file__, "--child", kind, "--cases", ",".join(remaining)]
            command += ["--sync-timeout", str(timeout)]
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, errors="replace"
            )
            lines: queue.Queue[str | None] = queue.Queue()

            def pump(stream=process.stdout, lines=lines) -> None:
                for line in stream:
                    if line.startswith(RESULT_MARKER):
                        lines.put(line[len(RESULT_MARKER) :])
                lines.put(None)

            threading.Thread(target=pump, daemon=True).start()
            startup = 120.0  # importing airbyte takes 8-15 s, more under load
            while remaining:
                case = CASES_BY_NAME[remaining[0]]
                deadline = startup + len(case.syncs) * (timeout + 30)
                try:
                    line = lines.get(timeout=deadline)
                except queue.Empty:
                    process.kill()  # our own child, by its Popen handle
                    process.wait()
                    results[(kind, case.name)] = {
                        "case": case.name,
                        "kind": kind,
                        "bench_error": f"hung: no result in {deadline:.0f} s (process killed)",
                    }
                    remaining.pop(0)
                    break
                startup = 0.0
                if line is None:  # the child died in this case
                    code = process.wait()
                    results[(kind, case.name)] = {
                        "case": case.name,
                        "kind": kind,
                        "bench_error": f"the process died (exit {code}); see {log_path}",
                    }
                    remaining.pop(0)
                    break
                result = json.loads(line)
                results[(kind, result["case"])] = result
                if result["case"] in remaining:
                    remaining.remove(result["case"])
                if result.get("restart"):
                    process.wait()
                    break
            else:
                process.wait()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _outcome_cell(result: dict | None) -> str:
    if result is None:
        return "not run"
    if "bench_error" in result:
        return f"bench error: {_cell(result['bench_error'])}"
    parts = []
    for outcome in result["outcomes"]:
        if outcome["ok"]:
            label = "ok"
        elif outcome["error"] == "not run":
            label = "not run"
        else:
            label = f"**failed** {_cell(outcome['error'])}"
        parts.append(label if len(result["outcomes"]) == 1 else f"{outcome['sync']}: {label}")
    count = result["rows"]
    rows = "no table" if count is None else f"{count} row{'s' * (count != 1)}"
    extras = [rows]
    if result["dead_lettered"]:
        extras.append(f"{result['dead_lettered']} dead-lettered")
    if result["flagged"]:
        extras.append(f"{len(result['flagged'])} flagged in _airbyte_meta")
    return "; ".join(parts) + " → " + ", ".join(extras)


def _lost_cell(result: dict | None) -> str:
    if result is None or "bench_error" in result:
        return "?"
    parts = []
    if result["lost"]:
        props = sorted({detail.split("`")[1] for detail in result["lost"]})
        shown = ", ".join(props[:4]) + (", ..." if len(props) > 4 else "")
        count = len(result["lost"])
        parts.append(f"**{count} value{'s' * (count != 1)}** ({_cell(shown)})")
    if result["missing"]:
        count = len(result["missing"])
        parts.append(f"**{count} record{'s' * (count != 1)}**")
    if result["extra_rows"]:
        count = result["extra_rows"]
        parts.append(f"**{count} extra row{'s' * (count != 1)}**")
    return "; ".join(parts) or "0"


def _table(cases, results) -> str:
    lines = [
        "| case | stock outcome | stock lost silently | project outcome | project lost silently |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        stock, copy = results.get(("stock", case.name)), results.get(("copy", case.name))
        lines.append(
            f"| `{case.name}` | {_outcome_cell(stock)} | {_lost_cell(stock)} "
            f"| {_outcome_cell(copy)} | {_lost_cell(copy)} |"
        )
    return "\n".join(lines)


def _details(cases, results) -> str:
    out = []
    for case in cases:
        entries = []
        for kind, label in KINDS.items():
            result = results.get((kind, case.name))
            if not result or "bench_error" in result:
                continue
            for outcome in result["outcomes"]:
                if outcome.get("cause") and outcome["cause"] != outcome["error"]:
                    entries.append(f"{label}, sync {outcome['sync']}, cause: {outcome['cause']}")
            for title, items in (
                ("lost silently", result["lost"]),
                ("flagged in _airbyte_meta", result["flagged"]),
                ("record missing silently", result["missing"]),
            ):
                entries += [f"{label}, {title}: {item}" for item in items[:6]]
                if len(items) > 6:
                    entries.append(f"{label}, {title}: ... and {len(items) - 6} more")
            if result["extra_rows"]:
                entries.append(
                    f"{label}: {result['rows']} rows where {result['expected_rows']} were expected"
                )
        if entries:
            out.append(f"- `{case.name}`")
            out += ["  - " + " ".join(entry.split()) for entry in entries]
    return "\n".join(out)


def _versions() -> str:
    from importlib.metadata import version

    return f"airbyte {version('airbyte')}, airbyte-cdk {version('airbyte-cdk')}"


def _server_version() -> str:
    conn = _connect()
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        (server,) = cur.fetchone()
    conn.close()
    return f"PostgreSQL {server.split()[0]}"


def _write_doc(cases, results, table: str, seconds: float, partial: bool, timeout: float) -> None:
    today = dt.date.today().isoformat()
    case_lines = "\n".join(f"- `{case.name}`: {case.description}" for case in cases)
    details = _details(cases, results) or "(none)"
    subset = "\n**Only some cases were run (--cases).**\n" if partial else ""
    DOC_PATH.write_text(
        f"""# Hostile source data: stock PostgresCache vs CopyPostgresCache

Generated by `bench/hostile_data.py` on {today} ({_versions()}, {_server_version()};
{seconds:.0f} s on a 2-core machine). Rerun with:

    .venv/bin/python bench/hostile_data.py

The corpus, `tests/pyairbyte/utils/postgres_copy_cache/hostile_corpus.py`, is a set of small
streams (2-5 records each) of hostile but realistic source data: names PostgreSQL or PyAirbyte's
normaliser cannot keep apart, values PostgreSQL cannot store as they are, JSON PyAirbyte's reader
cannot parse, schema changes between two syncs, broken primary keys. Each case is served as exact
JSON text by a local HTTP API, read by a declarative (manifest) source in-process, and written by
stock PyAirbyte's `PostgresCache` and by the project's `CopyPostgresCache`, each into a fresh
schema, sync after sync (a second sync where evolution or reruns matter).
{subset}
How to read the table:
- *outcome*: each sync's result (ok, or the exception type and the first {MESSAGE_CHARS}
  characters of its message), then the rows in the table, the records found in a dead-letter table
  and the values the cache changed but named in the row's `_airbyte_meta.changes`.
- *lost silently*: **values** that a successful sync served but the table does not hold (missing
  or different: numbers compared as exact decimals, strings exactly, objects and arrays as parsed
  JSON, dates and date-times as text or as the same instant, with no offset read as UTC) and that
  `_airbyte_meta.changes` does not name; **records** a successful sync served that are neither in
  the table nor in a dead-letter table; **extra rows** beyond what the syncs should have left (a
  duplicated record). A loud failure is not silent: a failed sync's records are not expected.

Notes on the method:
- The bench calls `source.read(cache=..., write_strategy=...)` directly, so it measures the cache
  alone: whatever the project's sync runner (`pyairbyte_sync.py`) adds around a sync, such as
  watching the source's lines for ones PyAirbyte's reader cannot parse, is not in place here.
- Losses upstream of any cache count against both (the CDK writes NaN, Infinity and 1e309 as
  null): the table shows where data is lost, not whose fault it is.
- A value that reads back equal from a wider column counts as kept (an object stored as its JSON
  text in a varchar column, a number in a text column); a value found in more than one candidate
  column (the normal name, `_2`.. suffixes, the project's `_dataplatform_column_map`) counts as
  kept if any of them holds it.
- Each cache runs in its own process, each sync under a {timeout:.0f} s timeout; a case that
  fails, hangs or kills its process is recorded and the others still run.

{table}

## The cases

{case_lines}

## Details

{details}
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--sync-timeout", type=float, default=90.0, help="seconds per sync")
    parser.add_argument("--serial", action="store_true", help="run the two caches one by one")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOC_PATH.name}")
    parser.add_argument("--child", choices=sorted(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child_main(args.child, args.cases.split(","), args.sync_timeout)
        return

    from _setup import bench_database

    from pyairbyte.utils.airbyte_env import configure_airbyte_environment
    from tests.pyairbyte.utils.postgres_copy_cache.hostile_corpus import CASES, CASES_BY_NAME

    configure_airbyte_environment()
    cases = CASES
    if args.cases:
        unknown = [n for n in args.cases.split(",") if n not in CASES_BY_NAME]
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(unknown)}")
        cases = [CASES_BY_NAME[n] for n in args.cases.split(",")]
    names = [case.name for case in cases]

    bench_database(DATABASE)  # the children inherit POSTGRES_* (and POSTGRES_DB) from here
    started = time.perf_counter()
    results: dict = {}
    threads = [
        threading.Thread(target=_run_kind, args=(kind, names, args.sync_timeout, results))
        for kind in KINDS
    ]
    for thread in threads:
        thread.start()
        if args.serial:
            thread.join()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started

    table = _table(cases, results)
    print(table)
    per_kind = {
        kind: sum(r.get("seconds", 0) for (k, _), r in results.items() if k == kind)
        for kind in KINDS
    }
    print(
        f"\n{len(cases)} cases in {seconds:.0f} s (sync time: "
        + ", ".join(f"{KINDS[k]} {s:.0f} s" for k, s in per_kind.items())
        + f"); logs in {_work_dir()}"
    )
    if not args.no_docs:
        _write_doc(cases, results, table, seconds, bool(args.cases), args.sync_timeout)
        print(f"wrote {DOC_PATH.relative_to(REPO_ROOT)}")
    if not args.keep:
        import psycopg2

        from pyairbyte import settings

        admin = settings.postgres_settings().psycopg2_kwargs() | {"dbname": "postgres"}
        conn = psycopg2.connect(**admin)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.close()


if __name__ == "__main__":
    main()
