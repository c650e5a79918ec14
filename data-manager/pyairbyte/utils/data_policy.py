"""What the cache does with data it cannot store as sent: the connector YAML's data policy.

Two blocks of the connector YAML set it (validated in `connector_config`; both optional):

```yaml
schema_change:               # how a cache table follows the source's schema
  new_columns: evolve        # evolve (add it) | freeze (fail, naming it) | discard (drop values)
  type_changes: evolve       # evolve (widen, or a typed sibling column) | freeze | discard
  removed_columns: evolve    # evolve (keep the column, NULL from then on) | freeze
bad_data:                    # records and values PostgreSQL cannot take as sent
  unparsable_records: dead_letter   # dead_letter (kept in the dead-letter table, counted) | fail
  invalid_values: fail              # fail (naming stream, key, field) | nullify (+ meta)
  null_keys: dead_letter            # dead_letter | fail
  count_mismatch: fail              # fail | warn: records emitted != landed + rejected
```

The defaults never lose or change a value silently: anything that cannot land as sent either
fails the sync or is kept (dead-letter table) and counted.

`parse_data_policy` reads and validates the two blocks; each mistake is a `ConnectorConfigError`
naming the file, the field and the fix. Values are exact and lowercase, as listed in `ALLOWED`.
This module imports no Dagster or airbyte module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pyairbyte.errors import ConnectorConfigError
from pyairbyte.utils.connector_automation import check_mapping

EVOLVE, FREEZE, DISCARD = "evolve", "freeze", "discard"
DEAD_LETTER, FAIL, NULLIFY, WARN = "dead_letter", "fail", "nullify", "warn"


@dataclass(frozen=True)
class SchemaChangePolicy:
    new_columns: str = EVOLVE
    type_changes: str = EVOLVE
    removed_columns: str = EVOLVE


@dataclass(frozen=True)
class BadDataPolicy:
    unparsable_records: str = DEAD_LETTER
    invalid_values: str = FAIL
    null_keys: str = DEAD_LETTER
    count_mismatch: str = FAIL


@dataclass(frozen=True)
class DataPolicy:
    schema_change: SchemaChangePolicy = field(default_factory=SchemaChangePolicy)
    bad_data: BadDataPolicy = field(default_factory=BadDataPolicy)


# block -> field -> the values it accepts (the first is the default)
ALLOWED: dict[str, dict[str, tuple[str, ...]]] = {
    "schema_change": {
        "new_columns": (EVOLVE, FREEZE, DISCARD),
        "type_changes": (EVOLVE, FREEZE, DISCARD),
        "removed_columns": (EVOLVE, FREEZE),
    },
    "bad_data": {
        "unparsable_records": (DEAD_LETTER, FAIL),
        "invalid_values": (FAIL, NULLIFY),
        "null_keys": (DEAD_LETTER, FAIL),
        "count_mismatch": (FAIL, WARN),
    },
}

# The defaults above and ALLOWED's first values must agree.
assert all(
    getattr(cls(), f.name) == ALLOWED[block][f.name][0]
    for block, cls in (("schema_change", SchemaChangePolicy), ("bad_data", BadDataPolicy))
    for f in fields(cls)
)

# The connector YAML's top-level keys these blocks use.
DATA_POLICY_KEYS = tuple(ALLOWED)

# block -> field -> value -> what it does, for the fix of a wrong value.
_MEANINGS: dict[str, dict[str, dict[str, str]]] = {
    "schema_change": {
        "new_columns": {
            EVOLVE: "add a column for a property the table does not have",
            FREEZE: "fail the sync, naming the new property",
            DISCARD: "keep the table as it is and drop the new property's values",
        },
        "type_changes": {
            EVOLVE: "widen the column, or add a sibling column of the new type",
            FREEZE: "fail the sync, naming the column",
            DISCARD: "keep the column's type and drop the values of the new type",
        },
        "removed_columns": {
            EVOLVE: "keep the column, NULL from then on",
            FREEZE: "fail the sync, naming the column",
        },
    },
    "bad_data": {
        "unparsable_records": {
            DEAD_LETTER: "keep the record in the dead-letter table, counted, and load the rest",
            FAIL: "fail the sync",
        },
        "invalid_values": {
            FAIL: "fail the sync, naming stream, key and field",
            NULLIFY: "store NULL (or strip U+0000) and record it in _airbyte_meta.changes",
        },
        "null_keys": {
            DEAD_LETTER: "keep the record in the dead-letter table, counted, and load the rest",
            FAIL: "fail the sync, naming the record",
        },
        "count_mismatch": {
            FAIL: "fail the sync when records sent != landed + dead-lettered",
            WARN: "log the difference and load anyway",
        },
    },
}

# Every allowed value is explained, and nothing else.
assert {
    block: {name: tuple(values) for name, values in names.items()}
    for block, names in _MEANINGS.items()
} == ALLOWED


def parse_data_policy(data: dict, path: Path) -> DataPolicy:
    """The `schema_change:` and `bad_data:` blocks of a connector YAML's top-level mapping,
    validated; a block or field left out (or null) takes its default."""
    return DataPolicy(
        schema_change=SchemaChangePolicy(
            **_block(data.get("schema_change"), path, "schema_change")
        ),
        bad_data=BadDataPolicy(**_block(data.get("bad_data"), path, "bad_data")),
    )


def _block(value: Any, path: Path, block: str) -> dict[str, str]:
    """The fields set in one block, by name; ConnectorConfigError for anything else."""
    if value is None:
        return {}
    allowed = ALLOWED[block]
    defaults = ", ".join(f"{name}: {values[0]}" for name, values in allowed.items())
    example = (
        f"`{block}: {{{defaults}}}` (any field may be left out), or leave the block out for "
        "these defaults"
    )
    value = check_mapping(value, path, block, (), tuple(allowed), example)
    return {
        name: _choice(value[name], path, block, name)
        for name in allowed
        if value.get(name) is not None
    }


def _choice(value: Any, path: Path, block: str, name: str) -> str:
    """`value` when it is one of the field's allowed values, exactly (lowercase)."""
    allowed = ALLOWED[block][name]
    if isinstance(value, str) and value in allowed:
        return value
    choices = ", ".join(allowed)
    if isinstance(value, str):
        problem = f"{value[:40]!r} is not one of {choices}"
        if value.strip().lower() in allowed:
            problem += " (values are case-sensitive)"
    else:
        problem = (
            f"expected one of {choices} as text, got {type(value).__name__} {repr(value)[:40]}"
        )
        if isinstance(value, bool):
            problem += " (YAML reads an unquoted yes/no/on/off/true/false as a boolean)"
    meanings = "; ".join(f"{v}: {_MEANINGS[block][name][v]}" for v in allowed)
    raise ConnectorConfigError(
        path,
        f"{block}.{name}",
        problem,
        f"write one of {choices}, in lowercase ({meanings}), or leave it out for {allowed[0]}",
    )
