"""Generated SQL/YAML against real PostgreSQL and dbt, and the file transaction (names are in
test_names.py, the pure code generation in test_dbt_codegen.py)."""

from __future__ import annotations

import ast
import hashlib

import pytest
import yaml

from dataplatform.lifecycle import dbt_codegen
from dataplatform.lifecycle.discovery import DiscoveredStream
from dataplatform.lifecycle.file_transaction import FileTransaction

AWKWARD_STREAM = DiscoveredStream(
    name="line items",
    json_schema={
        "type": "object",
        "properties": {
            "order": {"type": "integer"},  # reserved word
            "group": {"type": ["null", "string"]},
            "unit-price": {"type": "number"},
            "isActive": {"type": "boolean"},
            "createdOn": {"type": "string", "format": "date"},
            "updatedAt": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
            "anything": {},
            "either": {"type": ["string", "integer"]},
            "attrs": {"type": "object"},  # no properties: kept whole
            "meta": {
                "type": "object",
                "properties": {
                    "it's": {"type": "string", "format": "date-time"},
                    "count": {"type": "integer"},
                    "inner": {"type": "object"},
                },
            },
            "Meta": {"type": "string"},  # normalises to the same alias base as `meta`
        },
    },
    primary_key=[["order"], ["group"]],
)


def test_staging_sql_for_awkward_names_plans_in_postgresql(pg_conn):
    """Reserved words, quotes in JSON keys, casts: the generated SQL runs against a table built
    the way the cache builds it."""
    models = dbt_codegen.plan_stream_models(AWKWARD_STREAM, "staging_x", "x_reporting")
    assert models.table == "line_items"  # pyairbyte_cache.<stream>, as the cache normalises it
    sql = dbt_codegen.render_staging_sql("loc", "loc", models)
    aliases = [c.alias for c in models.columns]
    assert len(aliases) == len(set(aliases))
    assert "meta_2" in aliases  # "Meta" could not be `meta` twice
    # ... and the cache gives it a column of its own (column_names.assign_columns)
    assert next(c.expression for c in models.columns if c.alias == "meta_2") == "meta_2"
    with pg_conn.cursor() as cur:
        cur.execute("create schema if not exists lifecycle_codegen")
        cur.execute(
            'create table lifecycle_codegen.src_line_items ("order" bigint, "group" varchar, '
            "unit_price numeric(38,9), isactive boolean, createdon date, updatedat timestamp, "
            "anything varchar, either varchar, attrs json, meta json, meta_2 varchar, "
            "_airbyte_extracted_at timestamp)"
        )
        cur.execute(
            "insert into lifecycle_codegen.src_line_items values (1, 'g', 2.5, true, "
            "'2024-01-02', '2024-01-02 03:04:05', 'a', 'b', '{\"k\": 1}', "
            """'{"it''s": "2024-05-06T07:08:09+02:00", "count": 3, "inner": {"x": 1}}', 'M', """
            "now())"
        )
        rendered = sql.replace(
            "{{ source('loc', 'line items') }}", "lifecycle_codegen.src_line_items"
        )
        cur.execute(rendered)
        row = dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))
        cur.execute("drop schema lifecycle_codegen cascade")
    assert row["order"] == 1 and row["unit_price"] == 2.5 and row["is_active"] is True
    assert row["meta_it_s"].isoformat() == "2024-05-06T05:08:09+00:00"
    assert row["meta_count"] == 3 and row["meta_inner"] == {"x": 1}
    assert row["attrs"] == {"k": 1}
    assert row["meta_2"] == "M"


def test_sources_yaml_keys_and_composite_primary_key():
    stream = DiscoveredStream(
        "orders", {"properties": {"orderId": {"type": "integer"}}}, [["orderId"]]
    )
    single = dbt_codegen.plan_stream_models(stream, "staging_orders", "orders_reporting")
    composite = dbt_codegen.plan_stream_models(AWKWARD_STREAM, "staging_x", "x_rep")
    doc = yaml.safe_load(
        dbt_codegen.render_sources_yaml(
            "shop", "source-shop", "shop", "pyairbyte_cache", "sync_shop", [single, composite]
        )
    )
    source = doc["sources"][0]
    assert source["schema"] == "pyairbyte_cache"
    orders, items = source["tables"]
    assert orders["identifier"] == "orders"
    assert items["identifier"] == "line_items"
    assert orders["columns"] == [
        {"name": "orderid", "description": "Primary key", "data_tests": ["not_null", "unique"]}
    ]
    # Unique per column would be wrong for a composite key: each part is only not null.
    assert [c["data_tests"] for c in items["columns"]] == [["not_null"], ["not_null"]]


def _snapshot(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def test_file_transaction_rolls_back_every_change(tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "changed.txt").write_text("old\n")
    (tmp_path / "keep" / "deleted.txt").write_text("bye\n")
    (tmp_path / "tree" / "__pycache__").mkdir(parents=True)
    (tmp_path / "tree" / "mod.py").write_text("x = 1\n")
    (tmp_path / "tree" / "__pycache__" / "mod.pyc").write_bytes(b"\x00\x01")
    before = _snapshot(tmp_path)

    txn = FileTransaction(tmp_path)
    txn.write(tmp_path / "keep" / "changed.txt", "new\n")
    txn.write(tmp_path / "new" / "deep" / "created.txt", "hello\n")
    txn.delete(tmp_path / "keep" / "deleted.txt")
    txn.delete_tree(tmp_path / "tree")
    plan = txn.plan()
    assert [p.name for p in plan.create] == ["created.txt"]
    assert [p.name for p in plan.change] == ["changed.txt"]
    assert sorted(p.name for p in plan.delete) == ["deleted.txt", "mod.py", "mod.pyc"]

    with pytest.raises(RuntimeError, match="verification failed"), txn.applied():
        assert (tmp_path / "new" / "deep" / "created.txt").read_text() == "hello\n"
        assert not (tmp_path / "tree").exists()
        (tmp_path / "new" / "deep" / "__pycache__").mkdir()  # e.g. left by an import
        raise RuntimeError("verification failed")
    assert _snapshot(tmp_path) == before


def test_file_transaction_failing_midway_restores_what_it_wrote(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "blocker").write_text("a file where a directory is needed\n")
    before = _snapshot(tmp_path)
    txn = FileTransaction(tmp_path)
    txn.write(tmp_path / "a.txt", "changed\n")
    txn.write(tmp_path / "blocker" / "child.txt", "cannot be written\n")
    with pytest.raises(OSError):
        txn.apply()
    assert _snapshot(tmp_path) == before


def test_odd_stream_and_key_names_stay_data_in_every_generated_file():
    from dataplatform.lifecycle.scaffold import LocationSpec, render_location_files

    nested = {"type": "object", "properties": {"{{ x }}": {"type": "string"}}}
    stream = DiscoveredStream(
        'it\'s {{odd}} "x"', {"properties": {"{{ y }}": {"type": "string"}, "meta": nested}}, []
    )
    models = dbt_codegen.plan_stream_models(stream, "staging_odd", "odd_reporting")
    sql = dbt_codegen.render_staging_sql("loc", "loc", models)
    assert "source('loc', 'it\\'s {{odd}} \"x\"')" in sql
    # Jinja delimiters in data: only inside {% raw %}, never in a comment.
    head, raw = sql.split("{% raw %}")
    assert "'{{ x }}'" in raw and "{% endraw %}" in raw
    assert "{{ y }}" not in sql and "-- {  y }}" in sql
    doc = yaml.safe_load(
        dbt_codegen.render_sources_yaml("loc", "c", "loc", "pyairbyte_cache", "sync_loc", [models])
    )
    assert doc["sources"][0]["tables"][0]["name"] == stream.name
    spec = LocationSpec("loc", "c", [stream.name], 4290, "loc", ["staging_odd"], ["odd_reporting"])
    files = render_location_files(spec)
    for path, text in files.items():
        compile(text, path, "exec")
    declared = _declaration(ast.parse(files["location.py"]))
    assert ast.literal_eval(declared["streams"]) == [stream.name]


def _declaration(module: ast.Module) -> dict[str, ast.expr]:
    """The keyword arguments of the `location = ...(...)` call in a location.py."""
    (call,) = [
        node.value
        for node in module.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
    ]
    return {kw.arg: kw.value for kw in call.keywords}


def _without_docstring(source: str) -> str:
    module = ast.parse(source)
    body = module.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


@pytest.mark.parametrize("location", ["sample_product_sync", "airbyte_sync"])
def test_sample_locations_have_the_files_connector_add_writes(location):
    """The locations the README points at read like a generated one: the same files, the same
    lines over the factory; only docstrings and the declared values differ."""
    import importlib
    from pathlib import Path

    from dataplatform.lifecycle.scaffold import LocationSpec, render_location_files

    declared = importlib.import_module(f"dagster_code.{location}.location").location
    spec = LocationSpec(
        location=declared.name,
        connector_name=declared.connector,
        streams=list(declared.streams),
        port=4290,
        dbt_source=declared.dbt_source,
        staging_models=[],
        reporting_models=[],
        sync_asset=declared.sync_asset_name,
        transform_asset=declared.transform_asset_name,
        job=declared.job_name,
    )
    package = Path(importlib.import_module(f"dagster_code.{location}").__file__).parent
    generated = render_location_files(spec)
    assert sorted(generated) == sorted(str(p.relative_to(package)) for p in package.rglob("*.py"))
    for rel, text in generated.items():
        if rel == "location.py":
            continue
        assert _without_docstring((package / rel).read_text()) == _without_docstring(text), rel
    hand_written = _declaration(ast.parse((package / "location.py").read_text()))
    keywords = list(_declaration(ast.parse(generated["location.py"])))
    # The one argument a generated location leaves at its default: the dbt_build transform.
    assert [k for k in hand_written if k != "transform"] == keywords
