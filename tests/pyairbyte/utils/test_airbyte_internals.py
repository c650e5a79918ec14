"""The PyAirbyte internals the adapter wraps still behave as it expects (airbyte_internals.py).

Each test drives the real library: a PyAirbyte upgrade that moves or changes one of them fails
here, naming what moved, before any sync loses data. The version guard refuses other releases.
"""

from __future__ import annotations

import json
import sys
from typing import ClassVar

import pytest

from pyairbyte import settings
from pyairbyte.errors import UnsupportedAirbyteVersionError
from pyairbyte.utils import airbyte_internals

# A connector process speaking the Airbyte protocol: one stream `items` (primary key id), two
# records, and between them a line that looks like a record but is not a valid message.
BAD_LINE = '{"type": "RECORD", "record": "not an object", "stream": "items"}'
CONNECTOR = f"""
import json, sys
command = sys.argv[1]
def say(message):
    print(json.dumps(message), flush=True)
schema = {{"type": "object", "properties": {{"id": {{"type": "integer"}},
                                            "name": {{"type": "string"}}}}}}
if command == "spec":
    say({{"type": "SPEC", "spec": {{"connectionSpecification": {{"type": "object"}}}}}})
elif command == "check":
    say({{"type": "CONNECTION_STATUS", "connectionStatus": {{"status": "SUCCEEDED"}}}})
elif command == "discover":
    say({{"type": "CATALOG", "catalog": {{"streams": [{{
        "name": "items", "json_schema": schema, "supported_sync_modes": ["full_refresh"],
        "source_defined_primary_key": [["id"]]}}]}}}})
elif command == "read":
    say({{"type": "RECORD", "record": {{"stream": "items", "data": {{"id": 1, "name": "a"}},
                                       "emitted_at": 1700000000000}}}})
    print({BAD_LINE!r}, flush=True)
    say({{"type": "RECORD", "record": {{"stream": "items", "data": {{"id": 2, "name": "b"}},
                                       "emitted_at": 1700000000000}}}})
"""


@pytest.fixture
def local_source(tmp_path):
    """A PyAirbyte source whose connector is the script above, run as a real process."""
    airbyte_internals.prepare_airbyte()
    import airbyte as ab

    executable = tmp_path / "source-local"
    executable.write_text(f"#!{sys.executable}\n{CONNECTOR}")
    executable.chmod(0o755)
    return ab.get_source("source-local", local_executable=str(executable), config={})


# ---- the version guard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "named"), [("0.72.0", "airbyte 0.72.0 is"), (None, "airbyte is not installed")]
)
def test_the_version_guard_refuses_another_release(monkeypatch, installed, named):
    monkeypatch.setattr(airbyte_internals, "installed_airbyte_version", lambda: installed)
    with pytest.raises(UnsupportedAirbyteVersionError) as info:
        airbyte_internals.check_airbyte_version()
    message = str(info.value)
    assert f"supports airbyte=={airbyte_internals.SUPPORTED_AIRBYTE_VERSION}" in message
    assert named in message
    assert "Fix: pin airbyte==" in message


def test_the_installed_release_is_the_supported_one():
    airbyte_internals.check_airbyte_version()  # the lock file pins it; this must not raise


def test_a_refused_version_patches_nothing(monkeypatch):
    monkeypatch.setattr(airbyte_internals, "_prepared", False)
    monkeypatch.setattr(airbyte_internals, "installed_airbyte_version", lambda: "9.9.9")
    patched = []
    monkeypatch.setattr(
        airbyte_internals, "_pass_state_to_declarative_sources", lambda: patched.append(1)
    )
    with pytest.raises(UnsupportedAirbyteVersionError):
        airbyte_internals.prepare_airbyte()
    assert patched == []
    assert airbyte_internals._prepared is False


# ---- 1 and 4: lines the reader cannot parse; a connector's stderr -------------------------------


def test_a_line_the_reader_cannot_parse_reaches_the_sink(local_source):
    """Through PyAirbyte's own reader (a real process, public `get_records`): the bad line is
    handed over, the good records are read, and outside the context nothing is handed over."""
    seen: list[str] = []
    with airbyte_internals.unparsable_lines_to(seen.append):
        records = list(local_source.get_records("items"))
    assert [r["id"] for r in records] == [1, 2]
    assert [line.strip() for line in seen] == [BAD_LINE]

    seen.clear()
    list(local_source.get_records("items"))
    assert seen == []


def test_connector_lines_stream_with_stderr_to_our_file(tmp_path, local_source):
    log_path = tmp_path / "stderr.log"
    assert not airbyte_internals.runs_in_process(local_source.executor)
    with (
        log_path.open("a") as log_file,
        airbyte_internals.stream_connector_lines(
            local_source.executor, ["spec"], log_file=log_file
        ) as lines,
    ):
        messages = [json.loads(line) for line in lines if line.strip()]
    assert messages[0]["type"] == "SPEC"


def test_every_message_passes_the_wrapper(local_source):
    seen: list[str] = []

    def wrapper(execute):
        def wrapped(*args, **kwargs):
            for message in execute(*args, **kwargs):
                seen.append(message.type.value)
                yield message

        return wrapped

    airbyte_internals.wrap_source_messages(local_source, wrapper)
    list(local_source.get_records("items"))
    assert "CATALOG" in seen
    assert seen.count("RECORD") == 2


# ---- 2: manifest sources get the stored state ---------------------------------------------------


def test_a_manifest_source_is_built_with_the_state_file(tmp_path, monkeypatch):
    """The patched `DeclarativeExecutor.execute` hands `--state` to the CDK source it builds."""
    airbyte_internals.prepare_airbyte()
    import airbyte as ab
    from airbyte_cdk.entrypoint import AirbyteEntrypoint

    manifest = {
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "check": {"type": "CheckStream", "stream_names": ["items"]},
        "streams": [
            {
                "type": "DeclarativeStream",
                "name": "items",
                "primary_key": ["id"],
                "schema_loader": {
                    "type": "InlineSchemaLoader",
                    "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
                },
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {
                        "type": "HttpRequester",
                        "url_base": "http://127.0.0.1:9",
                        "path": "/items",
                    },
                    "record_selector": {
                        "type": "RecordSelector",
                        "extractor": {"type": "DpathExtractor", "field_path": []},
                    },
                },
            }
        ],
        "spec": {"type": "Spec", "connection_specification": {"type": "object"}},
    }
    source = ab.get_source("source-manifest-test", source_manifest=manifest, config={})
    assert airbyte_internals.runs_in_process(source.executor)
    state = [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": "items"},
                "stream_state": {"updated_at": "2026-01-02"},
            },
        }
    ]
    files = {}
    for name, content in {"config": {}, "catalog": {"streams": []}, "state": state}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(content))
    built = []
    monkeypatch.setattr(
        AirbyteEntrypoint, "run", lambda self, parsed_args: built.append(self.source) or iter(())
    )
    args = ["read", "--config", str(files["config"]), "--catalog", str(files["catalog"])]
    list(source.executor.execute([*args, "--state", str(files["state"])]))
    (cdk_source,) = built
    stored = cdk_source._connector_state_manager.get_stream_state("items", None)
    assert stored == {"updated_at": "2026-01-02"}


# ---- 6, 7 and 8: the COPY cache's hooks, called by PyAirbyte itself -----------------------------


@pytest.mark.parametrize("write_strategy", ["append", "replace", "merge"])
def test_pyairbyte_calls_the_mapped_hooks(pg, pg_conn, local_source, write_strategy):
    """A real read into a cache built on the adapter's base classes: PyAirbyte reaches each
    public-named method with the arguments the COPY cache relies on."""
    airbyte_internals.prepare_airbyte()
    from airbyte.shared.sql_processor import SqlProcessorBase

    calls: list[tuple] = []

    class Writer(airbyte_internals.JsonlWriterHooks):
        def batch_closed(self, batch_handle):
            calls.append(("batch_closed", batch_handle.stream_name, len(batch_handle.files)))

    class Processor(airbyte_internals.PostgresProcessorHooks):
        file_writer_class = Writer

        def load_files(self, files, stream_name, batch_id):
            calls.append(("load_files", stream_name, all(f.exists() for f in files)))
            return super().load_files(files, stream_name, batch_id)

        def replace_final_table(self, stream_name, temp_table_name, final_table_name):
            calls.append(("replace", stream_name, final_table_name))
            super().replace_final_table(stream_name, temp_table_name, final_table_name)

        def append_to_final_table(self, stream_name, temp_table_name, final_table_name):
            calls.append(("append", stream_name, final_table_name))
            super().append_to_final_table(stream_name, temp_table_name, final_table_name)

        def merge_into_final_table(self, stream_name, temp_table_name, final_table_name):
            calls.append(("merge", stream_name, final_table_name))
            super().merge_into_final_table(stream_name, temp_table_name, final_table_name)

        def ensure_final_table(self, stream_name, *, create_if_missing=True):
            calls.append(("ensure_final_table", stream_name))
            return super().ensure_final_table(stream_name, create_if_missing=create_if_missing)

    class Cache(airbyte_internals.PostgresCacheHooks):
        processor_class: ClassVar[type[SqlProcessorBase]] = Processor

        def write_messages(self, stdin, **kwargs):
            calls.append(("write_messages", sorted(kwargs)))
            super().write_messages(stdin, **kwargs)

    schema = f"internals_hooks_{write_strategy}"
    with pg_conn.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    cache = Cache(
        host=pg.host,
        port=pg.port,
        username=pg.user,
        password=pg.password,
        database=pg.dbname,
        schema_name=schema,
        cache_dir=settings.project_dir() / "airbyte" / "cache" / "tests" / schema,
    )
    try:
        local_source.select_all_streams()
        local_source.read(cache=cache, write_strategy=write_strategy)
        local_source.read(cache=cache, write_strategy=write_strategy)  # the final table exists
        with pg_conn.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {schema}.items ORDER BY id")
            ids = [row[0] for row in cursor.fetchall()]
    finally:
        cache.close()
        with pg_conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    names = [call[0] for call in calls]
    assert ("write_messages", ["catalog_provider", "progress_tracker", "state_writer",
                               "write_strategy"]) in calls  # fmt: skip
    assert ("batch_closed", "items", 1) in calls
    assert ("load_files", "items", True) in calls
    assert ("ensure_final_table", "items") in calls
    assert (write_strategy, "items", "items") in calls
    assert names.count(write_strategy) == 2
    assert ids == ([1, 1, 2, 2] if write_strategy == "append" else [1, 2])


def test_a_processor_class_that_is_not_a_classvar_is_refused():
    airbyte_internals.prepare_airbyte()
    from airbyte.shared.sql_processor import SqlProcessorBase

    with pytest.raises(TypeError, match="processor_class must be declared ClassVar"):

        class Cache(airbyte_internals.PostgresCacheHooks):
            processor_class: type[SqlProcessorBase] = airbyte_internals.PostgresProcessorHooks


# ---- 3: one set-up per process -------------------------------------------------------------------


def test_one_sync_sets_pyairbyte_up_once(pg, sample_api, monkeypatch):
    """A real sync in a process PyAirbyte was not prepared in: the environment is configured
    once, each patch is installed once, and the source's stderr is wrapped at most once."""
    from pyairbyte.utils import airbyte_env, pyairbyte_sync

    monkeypatch.setattr(airbyte_internals, "_prepared", False)
    counts: dict[str, int] = {}

    def counting(module, name):
        original = getattr(module, name)

        def counted(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    counting(airbyte_env, "configure_airbyte_environment")
    counting(airbyte_internals, "check_airbyte_version")
    counting(airbyte_internals, "_pass_state_to_declarative_sources")
    counting(airbyte_internals, "_route_unparsable_lines")
    counting(pyairbyte_sync, "_capture_connector_stderr")

    result = pyairbyte_sync.sync_connector("sample-connector")
    assert result["status"] == "success", result["error"]
    assert counts == {
        "configure_airbyte_environment": 1,
        "check_airbyte_version": 1,
        "_pass_state_to_declarative_sources": 1,
        "_route_unparsable_lines": 1,
        # a manifest source runs in-process: nothing to capture
    }
