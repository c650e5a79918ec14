"""What a code location owns, as its code-locations.json entry records it.

    "metadata": {"connector": "sample-connector", "dbt_source": "sample_connector", ...}

`connector` is the `name:` of the connector YAML the location syncs; `dbt_source` is the dbt
source that reads the tables that sync writes (pyairbyte_cache.<stream>). `connector add` writes
both; the hand-written locations declare them by hand. `connector remove` and the doctor read
them from here, never from the location's Python.
"""

from __future__ import annotations


def _metadata_str(entry: dict | None, key: str) -> str | None:
    metadata = (entry or {}).get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


def connector_of(entry: dict | None) -> str | None:
    """The connector (YAML `name:`) the location syncs, if it syncs one."""
    return _metadata_str(entry, "connector")


def dbt_source_of(entry: dict | None) -> str | None:
    """The dbt source over the location's cache tables, if it declares one."""
    return _metadata_str(entry, "dbt_source")


def owner_of_dbt_source(doc: dict, source: str) -> tuple[str, str | None] | None:
    """(location, its connector) of the entry that declares `source` as its dbt_source."""
    for entry in doc.get("code_locations") or []:
        if isinstance(entry, dict) and dbt_source_of(entry) == source:
            return str(entry.get("name")), connector_of(entry)
    return None
