"""Names: code locations, assets and jobs, cache tables and columns, SQL identifiers."""

from __future__ import annotations

import keyword
import re

from dataplatform.lifecycle.errors import LifecycleError
from pyairbyte.utils import column_names

LOCATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Package names under dagster_code/ that are not code locations.
RESERVED_LOCATION_NAMES = frozenset({"lib", "tests", "dagster_code"})
PG_MAX_IDENTIFIER = 63
# The location is part of the dbt relations it may get: `staging_<location>_<stream>` and
# `<location>_<stream>_reporting` (the prefixed names, used when a stream's model name is taken).
# A longer name cannot leave even a one-letter stream inside PostgreSQL's identifier limit.
MAX_LOCATION_NAME = PG_MAX_IDENTIFIER - max(len("staging__x"), len("_x_reporting"))

# PostgreSQL's reserved key words (and those reserved except as function or type names): an
# unquoted column or alias with one of these names is a syntax error.
PG_RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign freeze from full grant
    group having ilike in initially inner intersect into is isnull join lateral leading left
    like limit localtime localtimestamp natural not notnull null offset on only or order outer
    overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using
    variadic verbose when where window with
    """.split()
)
_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def check_location_name(name: str) -> str:
    """The name, or LifecycleError saying why it cannot be a code location and what would do."""
    shown = name if len(name) <= 70 else f"{name[:40]}...({len(name)} characters)"
    if not LOCATION_NAME.match(name):
        raise LifecycleError(
            f"invalid code location name {shown!r}: it becomes a Python package, a dbt source and "
            "asset names, so it must be lowercase letters, digits and '_' and start with a letter",
            f"use e.g. `{_suggest(name)}`",
        )
    if keyword.iskeyword(name):
        raise LifecycleError(
            f"invalid code location name {name!r}: it is a Python keyword, so "
            f"`import dagster_code.{name}` would be a syntax error",
            f"use e.g. `{name}_` or `my_{name}`",
        )
    if name in RESERVED_LOCATION_NAMES:
        raise LifecycleError(
            f"{name!r} is reserved (dagster_code/{name} is not a code location)",
            "choose another name",
        )
    if len(name) > MAX_LOCATION_NAME:
        raise LifecycleError(
            f"code location name {shown!r} is {len(name)} characters: its dbt relations "
            "(staging_<name>_<stream>, <name>_<stream>_reporting) would be longer than "
            f"PostgreSQL's {PG_MAX_IDENTIFIER}-character limit for a relation name",
            f"use at most {MAX_LOCATION_NAME} characters, e.g. `{_suggest(name)}`",
        )
    return name


def _suggest(name: str) -> str:
    """A valid name close to `name`, never a keyword or a reserved name."""
    suggestion = snake_case(name).lstrip("_")[:MAX_LOCATION_NAME].rstrip("_") or "my_connector"
    if not suggestion[0].isalpha():
        suggestion = f"c_{suggestion}"[:MAX_LOCATION_NAME]
    if keyword.iskeyword(suggestion) or suggestion in RESERVED_LOCATION_NAMES:
        suggestion = f"{suggestion}_connector"
    return suggestion


def check_relation_name(relation: str, what: str, fix: str) -> None:
    """LifecycleError when `relation` (a dbt model or cache table the add would create) does not
    fit PostgreSQL's identifier limit: dbt would refuse it only when the transform runs."""
    length = len(relation.encode())
    if length > PG_MAX_IDENTIFIER:
        raise LifecycleError(
            f"{what} {relation!r} would be {length} characters, longer than PostgreSQL's "
            f"{PG_MAX_IDENTIFIER}-character limit for a relation name",
            fix,
        )


def cache_name(name: str) -> str:
    """How the cache names a table, and a column when no other property claims the name.

    Lowercase, every non-alphanumeric becomes '_', a leading digit gets a '_' prefix, cut to
    PostgreSQL's 63 bytes (`discountPercentage` -> `discountpercentage`, `unit-price` ->
    `unit_price`): PyAirbyte 0.71's LowerCaseNormalizer, as `pyairbyte.utils.column_names`
    implements it for the cache (the one normalizer; importing airbyte costs seconds, and tests
    compare it with PyAirbyte's own). A column's final name can differ when two properties
    normalize alike (`a-b` beside `a_b` -> `a_b_2`): `column_names.assign_columns` decides it.
    """
    return column_names.normalize(name)


def cache_name_length(name: str) -> int:
    """Bytes of `name`'s normal form before the 63-byte cut: every character of the lowercased
    name becomes one ASCII character, plus the `_` before a leading digit. More than 63 means
    the cache's table name is cut, and two long stream names could meet in one table."""
    lowered = name.lower()
    prefix = 1 if lowered[:1].isascii() and lowered[:1].isdigit() else 0
    return max(1, len(lowered) + prefix)


def snake_case(name: str) -> str:
    """`discountPercentage` -> `discount_percentage`, `HTTPStatus` -> `http_status`."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    if text and text[0].isdigit():
        text = f"_{text}"
    return text


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted only when it has to be (reserved word, odd characters)."""
    if _PLAIN_IDENTIFIER.match(name) and name not in PG_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sync_asset_name(location: str) -> str:
    return f"sync_{location}"


def transform_asset_name(location: str) -> str:
    return f"transform_{location}_data"


def job_name(location: str) -> str:
    return f"{location}_pipeline"


def job_variable(location: str) -> str:
    return f"{location}_pipeline_job"
