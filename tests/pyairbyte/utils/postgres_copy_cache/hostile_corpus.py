"""Hostile but realistic source data: each case is one stream, served as exact JSON text.

Pure data (no pytest, no airbyte): the cache tests and `bench/hostile_data.py` (which runs every
case through stock PyAirbyte's PostgresCache and the project's CopyPostgresCache, side by side)
both read it. A case is one stream named after the case, served by the local API of `conftest.py`
as the exact JSON texts below (so numbers keep their digits and escapes stay escapes), synced once
with `schema`/`records` and, where a schema change or a rerun is the point, a second time with
`schema2`/`records2`.

Every case has an `id` property, so a row can be found again after the sync.

What "nothing lost or changed silently" means for each case is in its description; the bench
counts a served value as lost silently when the sync succeeded, the value is missing or different
in the table, and the row's `_airbyte_meta.changes` does not name the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

WriteStrategyName = Literal["auto", "append", "merge", "replace"]


@dataclass(frozen=True)
class Case:
    name: str  # snake_case id; also the stream name
    description: str  # one line: what is hostile and what must hold
    schema: dict  # the stream's JSON schema for sync 1
    records: list[str]  # exact JSON texts served in sync 1
    primary_key: list[str]
    schema2: dict | None = None  # the schema for sync 2 (None: no second sync)
    records2: list[str] | None = None  # exact JSON texts served in sync 2
    write_strategy: WriteStrategyName = "auto"

    @property
    def syncs(self) -> list[tuple[dict, list[str]]]:
        """(schema, records) per sync, in order."""
        first = [(self.schema, self.records)]
        if self.records2 is None:
            return first
        return first + [(self.schema2 or self.schema, self.records2)]


def _schema(**properties: dict) -> dict:
    """An object schema with `id` (integer) and the given properties, all nullable."""
    props = {"id": {"type": ["null", "integer"]}}
    props.update(properties)
    return {"type": "object", "properties": props}


STRING = {"type": ["null", "string"]}
INTEGER = {"type": ["null", "integer"]}
NUMBER = {"type": ["null", "number"]}
BOOLEAN = {"type": ["null", "boolean"]}
OBJECT = {"type": ["null", "object"]}
ARRAY = {"type": ["null", "array"]}
DATE = {"type": ["null", "string"], "format": "date"}
DATE_TIME = {"type": ["null", "string"], "format": "date-time"}

# --- generated cases ---------------------------------------------------------------------------

DEEP_ARRAY = "[" * 200 + "1" + "]" * 200  # 200 nested arrays around one number

# 1,700 properties: PostgreSQL tables stop at 1,600 columns (and a row at one 8 kB page of
# non-TOASTed values); wide exports (survey tools, EAV pivots, spreadsheets) go past it.
WIDE_PROPERTIES = [f"q{n:04d}" for n in range(1, 1701)]
WIDE_SCHEMA = {
    "type": "object",
    "properties": {"id": INTEGER, **{name: INTEGER for name in WIDE_PROPERTIES}},
}
WIDE_RECORDS = [
    json.dumps({"id": row, **{name: row * 10_000 + n for n, name in enumerate(WIDE_PROPERTIES)}})
    for row in (1, 2)
]

# Two 70-character names that are equal in their first 67 bytes: PostgreSQL cuts identifiers to
# 63 bytes (silently, with a NOTICE), so both would become the same column.
LONG_PREFIX = "customer_lifetime_value_adjusted_for_returns_and_refunds_in_euro_cur"
LONG_NAME_A = LONG_PREFIX + "_a"
LONG_NAME_B = LONG_PREFIX + "_b"
assert len(LONG_NAME_A) == len(LONG_NAME_B) == 70

# A primary key past what a btree index entry can hold (about 2,700 bytes, a third of a page).
LONG_KEY_1 = "k1-" + "x" * 2997
LONG_KEY_2 = "k2-" + "y" * 2997

CASES: list[Case] = [
    Case(
        name="unparsable_surrogate",
        description=(
            'A string with an unpaired surrogate escape "\\ud800" beside a good record: '
            "PyAirbyte's reader cannot parse the line and skips it as a log line."
        ),
        schema=_schema(s=STRING),
        records=[
            r'{"id": 1, "s": "fine"}',
            r'{"id": 2, "s": "lone surrogate \ud800 here"}',
            r'{"id": 3, "s": "also fine"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="deep_nesting",
        description=(
            "An array nested 200 levels deep in a declared array field, beside a good record: "
            "past the reader's JSON depth limit, so the line is skipped."
        ),
        schema=_schema(tree=ARRAY),
        records=[
            '{"id": 1, "tree": [[1, 2], [3]]}',
            '{"id": 2, "tree": ' + DEEP_ARRAY + "}",
        ],
        primary_key=["id"],
    ),
    Case(
        name="colliding_names",
        description=(
            "Declared properties `a-b` and `a_b`, `Email` and `email` with distinct values: "
            "PyAirbyte's name normalisation maps each pair to one column."
        ),
        schema=_schema(**{"a-b": STRING, "a_b": STRING, "Email": STRING, "email": STRING}),
        records=[
            '{"id": 1, "a-b": "dash 1", "a_b": "underscore 1", '
            '"Email": "Work@Example.com", "email": "home@example.com"}',
            '{"id": 2, "a-b": "dash 2", "a_b": "underscore 2", '
            '"Email": "Boss@Example.com", "email": "private@example.com"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="source_airbyte_column",
        description=(
            "A declared property named `_airbyte_raw_id` with the source's own value: PyAirbyte "
            "overwrites it with its generated record id."
        ),
        schema=_schema(_airbyte_raw_id=STRING, name=STRING),
        records=[
            '{"id": 1, "_airbyte_raw_id": "src-0001", "name": "one"}',
            '{"id": 2, "_airbyte_raw_id": "src-0002", "name": "two"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="string_to_object",
        description=(
            'Sync 1 declares `s` a string ("world"); sync 2 declares it an object and sends a '
            "new record with an object (merge on id): the old row must still read `world`."
        ),
        schema=_schema(s=STRING),
        records=['{"id": 1, "s": "world"}'],
        schema2=_schema(s=OBJECT),
        records2=['{"id": 2, "s": {"hello": "world", "n": 1}}'],
        primary_key=["id"],
        write_strategy="merge",
    ),
    Case(
        name="integer_to_number",
        description="Sync 1 declares `n` integer; sync 2 declares it number and sends 1.5.",
        schema=_schema(n=INTEGER),
        records=['{"id": 1, "n": 1}', '{"id": 2, "n": 9007199254740993}'],
        schema2=_schema(n=NUMBER),
        records2=['{"id": 3, "n": 1.5}'],
        primary_key=["id"],
    ),
    Case(
        name="number_to_string",
        description='Sync 1 declares `x` number (1.25); sync 2 declares it string and sends "abc".',
        schema=_schema(x=NUMBER),
        records=['{"id": 1, "x": 1.25}', '{"id": 2, "x": 100}'],
        schema2=_schema(x=STRING),
        records2=['{"id": 3, "x": "abc"}'],
        primary_key=["id"],
    ),
    Case(
        name="new_column",
        description="Sync 2 declares and sends an extra property `extra` the table does not have.",
        schema=_schema(name=STRING),
        records=['{"id": 1, "name": "one"}'],
        schema2=_schema(name=STRING, extra=STRING),
        records2=['{"id": 2, "name": "two", "extra": "new value"}'],
        primary_key=["id"],
    ),
    Case(
        name="undeclared_property",
        description=(
            "Records carry `surprise` and `details`, which the schema does not declare "
            "(additionalProperties defaults to true in JSON schema)."
        ),
        schema=_schema(name=STRING),
        records=[
            '{"id": 1, "name": "one", "surprise": "not in the schema"}',
            '{"id": 2, "name": "two", "surprise": "again", "details": {"k": [1, 2]}}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="removed_column",
        description=(
            "Sync 2 no longer declares `b`, which sync 1 had: the old rows must keep their `b`."
        ),
        schema=_schema(a=STRING, b=STRING),
        records=['{"id": 1, "a": "a1", "b": "b1"}', '{"id": 2, "a": "a2", "b": "b2"}'],
        schema2=_schema(a=STRING),
        records2=['{"id": 3, "a": "a3"}'],
        primary_key=["id"],
    ),
    Case(
        name="null_primary_key",
        description=(
            "A record whose primary key `id` is null, merged on `id` twice with the same "
            "records: the null-key record must not be duplicated (nor dropped unseen)."
        ),
        schema=_schema(v=STRING),
        records=['{"id": 1, "v": "keyed"}', '{"id": null, "v": "no key"}'],
        records2=['{"id": 1, "v": "keyed"}', '{"id": null, "v": "no key"}'],
        primary_key=["id"],
        write_strategy="merge",
    ),
    Case(
        name="duplicate_keys_in_batch",
        description=(
            "Three records with the same `id` in one batch (merge): the last one emitted must win."
        ),
        schema=_schema(v=STRING),
        records=[
            '{"id": 1, "v": "first"}',
            '{"id": 1, "v": "second"}',
            '{"id": 2, "v": "other"}',
            '{"id": 1, "v": "third (last emitted)"}',
        ],
        primary_key=["id"],
        write_strategy="merge",
    ),
    Case(
        name="big_integer",
        description=(
            "Integers past int64 (2^63 and a 30-digit one) in an integer field; the CDK's own "
            "JSON parse may already lose digits."
        ),
        schema=_schema(big=INTEGER),
        records=[
            '{"id": 1, "big": 9223372036854775807}',
            '{"id": 2, "big": 9223372036854775808}',
            '{"id": 3, "big": 123456789012345678901234567890}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="number_overflow",
        description=(
            "`1e309` in a number field: past a double's range; the CDK parses it to infinity and "
            "its orjson writes that as null, before any cache (PostgreSQL's numeric could hold it)."
        ),
        schema=_schema(x=NUMBER),
        records=['{"id": 1, "x": 1e309}', '{"id": 2, "x": 2.5}'],
        primary_key=["id"],
    ),
    Case(
        name="nul_in_string",
        description="A string containing U+0000, which PostgreSQL text cannot store.",
        schema=_schema(s=STRING),
        records=[r'{"id": 1, "s": "before\u0000after"}', r'{"id": 2, "s": "clean"}'],
        primary_key=["id"],
    ),
    Case(
        name="nul_in_object",
        description=(
            "An object whose nested string (record 1) and key (record 2) contain U+0000, which "
            "jsonb rejects."
        ),
        schema=_schema(o=OBJECT),
        records=[
            r'{"id": 1, "o": {"k": {"deep": "x\u0000y"}}}',
            r'{"id": 2, "o": {"bad\u0000key": 1}}',
            r'{"id": 3, "o": {"k": "clean"}}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="bad_date",
        description=(
            'A `format: date` field with "2024-13-45" and a `date-time` with year 99999 '
            "(valid for PostgreSQL, not for Python's datetime), beside good values."
        ),
        schema=_schema(d=DATE, ts=DATE_TIME),
        records=[
            '{"id": 1, "d": "2024-02-29", "ts": "2024-02-29T23:59:59Z"}',
            '{"id": 2, "d": "2024-13-45", "ts": "2024-03-01T00:00:00Z"}',
            '{"id": 3, "d": "2024-03-01", "ts": "99999-01-01T00:00:00Z"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="too_many_columns",
        description="A stream declaring 1,700 properties (+ id): PostgreSQL allows 1,600 columns.",
        schema=WIDE_SCHEMA,
        records=WIDE_RECORDS,
        primary_key=["id"],
    ),
    Case(
        name="long_names",
        description=(
            "Two 70-character property names that differ only after byte 63: PostgreSQL cuts "
            "identifiers to 63 bytes, so both name one column."
        ),
        schema=_schema(**{LONG_NAME_A: STRING, LONG_NAME_B: STRING}),
        records=[
            json.dumps({"id": 1, LONG_NAME_A: "value a1", LONG_NAME_B: "value b1"}),
            json.dumps({"id": 2, LONG_NAME_A: "value a2", LONG_NAME_B: "value b2"}),
        ],
        primary_key=["id"],
    ),
    # --- further cases, from PyAirbyte's reader and writer and PostgreSQL's limits -----------
    Case(
        name="non_ascii_names",
        description=(
            "Properties `prix €` and `prix $`, `größe` and `grüße`: PyAirbyte's normaliser turns "
            "each non-ASCII character into `_`, so each pair becomes one column name."
        ),
        schema=_schema(**{"prix €": NUMBER, "prix $": NUMBER, "größe": STRING, "grüße": STRING}),
        records=[
            '{"id": 1, "prix €": 9.5, "prix $": 10.25, "größe": "XL", "grüße": "hallo"}',
            '{"id": 2, "prix €": 12, "prix $": 13, "größe": "S", "grüße": "servus"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="cjk_names",
        description=(
            "Properties `名前` and `住所` (Japanese APIs): each normalises to `__`, which "
            "PyAirbyte's normaliser rejects as empty, and the two would collide anyway."
        ),
        schema=_schema(**{"名前": STRING, "住所": STRING}),
        records=[
            '{"id": 1, "名前": "山田", "住所": "東京"}',
            '{"id": 2, "名前": "佐藤", "住所": "大阪"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="empty_property_name",
        description=(
            'A property named "" (real JSON has them): it normalises to an empty identifier, '
            "which PostgreSQL rejects."
        ),
        schema=_schema(**{"": STRING, "name": STRING}),
        records=['{"id": 1, "": "empty key", "name": "one"}', '{"id": 2, "": "", "name": "two"}'],
        primary_key=["id"],
    ),
    Case(
        name="reserved_word_names",
        description=(
            "Properties named `order`, `select`, `user`, `group` (source-pokeapi has `order`): "
            "SQL reserved words, every statement must quote them."
        ),
        schema=_schema(order=INTEGER, select=STRING, user=STRING, group=STRING),
        records=[
            '{"id": 1, "order": 7, "select": "s", "user": "u", "group": "g"}',
            '{"id": 2, "order": 8, "select": "t", "user": "v", "group": "h"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="long_primary_key",
        description=(
            "A 3,000-character string primary key (merge): a btree index entry holds about "
            "2,700 bytes, so a unique index on the key fails."
        ),
        schema={
            "type": "object",
            "properties": {"id": {"type": "string"}, "v": STRING},
        },
        records=[
            json.dumps({"id": LONG_KEY_1, "v": "one"}),
            json.dumps({"id": LONG_KEY_2, "v": "two"}),
        ],
        primary_key=["id"],
        write_strategy="merge",
    ),
    Case(
        name="integer_gets_fraction",
        description=(
            "An integer field served 1.5 (the schema is wrong, the data is right): a bigint "
            "column rounds it to 2."
        ),
        schema=_schema(n=INTEGER),
        records=['{"id": 1, "n": 1.5}', '{"id": 2, "n": 2}'],
        primary_key=["id"],
    ),
    Case(
        name="wrong_types",
        description=(
            'A string field served an object, a number field served "n/a" and a boolean served '
            '"yes": values that do not fit the declared column type.'
        ),
        schema=_schema(s=STRING, x=NUMBER, b=BOOLEAN),
        records=[
            '{"id": 1, "s": {"a": 1}, "x": "n/a", "b": "yes"}',
            '{"id": 2, "s": "plain", "x": 1.5, "b": true}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="nan_literal",
        description=(
            "Bare NaN and Infinity in a number field (not JSON, but Python's json.dumps writes "
            "them): the CDK accepts them and its orjson writes them as null, before any cache."
        ),
        schema=_schema(x=NUMBER),
        records=['{"id": 1, "x": NaN}', '{"id": 2, "x": Infinity}', '{"id": 3, "x": -0.5}'],
        primary_key=["id"],
    ),
    Case(
        name="numeric_looking_strings",
        description=(
            'Strings that look like numbers ("000123", "1.90", "1e5"): pandas\' type inference '
            "in the stock writer rewrites them."
        ),
        schema=_schema(zip=STRING, price=STRING, code=STRING),
        records=[
            '{"id": 1, "zip": "000123", "price": "1.90", "code": "1e5"}',
            '{"id": 2, "zip": "01234", "price": "10.00", "code": "007"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="decimal_scale",
        description=(
            "Numbers with more than 9 decimals (0.1234567891, 1e-12): the stock "
            "numeric(38,9) column rounds them."
        ),
        schema=_schema(x=NUMBER),
        records=['{"id": 1, "x": 0.1234567891}', '{"id": 2, "x": 1e-12}'],
        primary_key=["id"],
    ),
    Case(
        name="datetime_offset",
        description=(
            "Date-times with offsets (+02:00, -05:00): the stock cache's `timestamp without time "
            "zone` drops the offset."
        ),
        schema=_schema(ts=DATE_TIME),
        records=[
            '{"id": 1, "ts": "2024-03-01T12:00:00+02:00"}',
            '{"id": 2, "ts": "1999-12-31T23:59:59-05:00"}',
        ],
        primary_key=["id"],
    ),
    Case(
        name="replace_keeps_last",
        description=(
            "write_strategy replace, sync 2 sends fewer records with a new type for `n`: only "
            "sync 2's rows may remain, exactly."
        ),
        schema=_schema(n=INTEGER),
        records=['{"id": 1, "n": 1}', '{"id": 2, "n": 2}', '{"id": 3, "n": 3}'],
        schema2=_schema(n=NUMBER),
        records2=['{"id": 2, "n": 2.5}'],
        primary_key=["id"],
        write_strategy="replace",
    ),
]

CASES_BY_NAME = {case.name: case for case in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"
