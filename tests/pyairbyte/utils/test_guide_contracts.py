"""The integration guide's own asset code, run against the utils (real PostgreSQL, MariaDB and a
local GraphQL server).

The bodies below are the guide's snippets ("Event processing" and "Database sync" patterns),
adapted only for imports, env and a stand-in for Dagster's `context.log` (a plain logger: the
snippets only log). A typed result may add to the guide's shape; these fail if it breaks it.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from pyairbyte.utils.event_store import bulk_write_events
from pyairbyte.utils.graphql_util import query_graphql_api
from pyairbyte.utils.mysql_sync import sync_mysql_tables

context = SimpleNamespace(log=logging.getLogger("guide-snippet"))


def unit4ditio_event_gen(context):
    # The guide's body, verbatim from "query = ..." to "return bulk_result".
    query = """
    query {
      users {
        id
        first_name
        last_name
      }
    }
    """
    result = query_graphql_api(query)
    users = result.get("data", {}).get("users", [])

    events_to_insert = []
    for user in users:
        events_to_insert.append(
            {
                "event_type": "USER_SYNC_EVENT",
                "event_data": {
                    "user_id": user.get("id"),
                    "first_name": user.get("first_name"),
                    "last_name": user.get("last_name"),
                },
            }
        )

    bulk_result = bulk_write_events(events_to_insert)

    context.log.info(f"Created {bulk_result['events_created']} events")
    return bulk_result


def admmit_sync_assets(context, database: str, tables: list[str], cache_schema: str):
    # The guide's body with sync_mssql_tables -> sync_mysql_tables (no SQL Server here; the same
    # shared copy path and result type) and the connection from MYSQL_* env.
    result = sync_mysql_tables(
        server="127.0.0.1", database=database, tables=tables, cache_schema=cache_schema
    )

    if result.get("status") == "success":
        context.log.info(f"Synced {result['tables_synced']} tables")
    else:
        raise Exception(f"Sync failed: {result.get('error')}")

    return result


def test_the_guides_event_asset_reads_bulk_result_as_a_dict(
    graphql_server, event_schema, monkeypatch
):
    monkeypatch.setenv("HASURA_GRAPHQL_ENDPOINT", graphql_server.url)
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", "s3cret")
    first = unit4ditio_event_gen(context)
    users = len(query_graphql_api("query { users { id } }")["data"]["users"])
    assert first["events_created"] == first.events_created == users > 0
    assert first.get("status") == "success"
    again = unit4ditio_event_gen(context)  # the same users: every event is a duplicate
    assert (again["events_created"], again["duplicates_skipped"]) == (0, users)


def test_the_guides_database_sync_asset_reads_status_and_tables_synced(mysql_db, cache_schema):
    from tests.fixtures.services import _mysql_connect

    conn = _mysql_connect(database=mysql_db)
    with conn.cursor() as cur:
        cur.execute("create table guide_items (id int primary key, name varchar(20))")
        cur.execute("insert into guide_items values (1, 'a'), (2, 'b')")
    conn.close()
    result = admmit_sync_assets(context, mysql_db, ["guide_items"], cache_schema)
    assert result == {"guide_items": 2}  # still the util's own {table: rows}
    assert (result.get("status"), result["tables_synced"]) == ("success", 1)
