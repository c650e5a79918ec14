"""One table, one asset: no asset key is defined by two code locations, and no table is
materialized by two assets.

Read from what the packages checks' probe reported for each enabled location (each asset's key
and its `dagster/table_name`), so nothing is imported twice. Two assets over one table show up in
the UI as two catalog entries: materializing one leaves the other stale, and lineage splits.
"""

from __future__ import annotations

from collections.abc import Mapping

from dataplatform.lifecycle.doctor.report import ERROR, Report

FIX = (
    "let one location own the table: a connector location builds only the models of its own dbt "
    "source, dbt_poc only models that read several sources, and every dbt source's "
    "meta.dagster.asset_key is its cache table's key (pyairbyte_cache/<table>)"
)


def _relation(table: str) -> str:
    """schema.table, whatever the database prefix (dbt's names carry one, the syncs' do not)."""
    return ".".join(part.strip('"').lower() for part in table.split(".")[-2:])


def check_asset_tables(
    results: Mapping[str, dict], location_of: Mapping[str, str], report: Report
) -> None:
    """`results`: module -> probe result; `location_of`: module -> location name."""
    keys: dict[str, list[str]] = {}
    tables: dict[str, list[tuple[str, str]]] = {}
    for module, result in results.items():
        if not result.get("ok"):
            continue  # the packages checks report it
        location = location_of.get(module, module)
        for key, table in result.get("asset_tables") or []:
            keys.setdefault(key, []).append(location)
            if table:
                tables.setdefault(_relation(table), []).append((key, location))
    for key, locations in sorted(keys.items()):
        if len(locations) > 1:
            report.add(
                ERROR,
                "assets",
                f"asset {key} is defined by {len(locations)} code locations: "
                f"{', '.join(sorted(locations))}",
                FIX,
            )
    for relation, owners in sorted(tables.items()):
        distinct = sorted({key for key, _ in owners})
        if len(distinct) > 1:
            named = ", ".join(f"{key} ({location})" for key, location in sorted(set(owners)))
            report.add(
                ERROR,
                "assets",
                f"table {relation} is materialized by {len(distinct)} assets: {named}",
                FIX,
            )
