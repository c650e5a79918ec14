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
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

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
