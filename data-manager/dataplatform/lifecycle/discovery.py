"""Run a connector's `check` and `discover` through PyAirbyte, with the project's offline settings.

Nothing here writes to the repository or the database: PyAirbyte's logs and connector venvs go
under the project directory (`configure_airbyte_environment`). A connector's error is shown with
the connector's secrets masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataplatform.lifecycle.errors import LifecycleError
from pyairbyte.utils.connector_config import ConnectorConfig


@dataclass(frozen=True)
class DiscoveredStream:
    name: str
    json_schema: dict[str, Any]
    primary_key: list[list[str]] = field(default_factory=list)

    @property
    def properties(self) -> dict[str, Any]:
        props = self.json_schema.get("properties")
        return props if isinstance(props, dict) else {}


def check_and_discover(
    connector: ConnectorConfig, requested_streams: list[str] | None
) -> list[DiscoveredStream]:
    """The selected streams' schemas, after the source's `check` passed.

    Stream choice: `requested_streams` (from --streams), else the YAML's `streams`, else every
    stream the source offers.
    """
    from pyairbyte.utils.pyairbyte_sync import build_source, describe_error

    where = f"{connector.path}"

    def reason(exc: Exception) -> str:
        # A connector's error may quote its config (a URL with ?api_key=..., a login).
        return connector.redact(describe_error(exc))

    try:
        source = build_source(connector)
    except Exception as exc:
        raise LifecycleError(
            f"{where}: PyAirbyte could not set up source {connector.name}: {reason(exc)}",
            "check source_manifest / pip_url in the connector YAML",
        ) from None
    try:
        source.check()
    except Exception as exc:
        raise LifecycleError(
            f"{where}: the source's check failed, so nothing was added:\n{reason(exc)}",
            "fix the connector's config (URL, credentials, env variables) until "
            "the check passes, then run the command again",
        ) from None
    try:
        catalog = source.discovered_catalog
    except Exception as exc:
        raise LifecycleError(
            f"{where}: discover failed for {connector.name}: {reason(exc)}",
            "make the source's discover work (for a declarative source: a schema_loader per "
            "stream)",
        ) from None
    by_name = {stream.name: stream for stream in catalog.streams}
    wanted = list(requested_streams or connector.streams or sorted(by_name))
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        origin = "--streams" if requested_streams else f"{where}: field 'streams'"
        raise LifecycleError(
            f"{origin}: unknown stream(s) {', '.join(unknown)}; "
            f"{connector.name} offers: {', '.join(sorted(by_name)) or '(none)'}",
            "name streams the source offers",
        )
    if not wanted:
        raise LifecycleError(f"{where}: source {connector.name} offers no streams", "")
    return [
        DiscoveredStream(
            name=name,
            json_schema=dict(by_name[name].json_schema or {}),
            primary_key=[list(k) for k in (by_name[name].source_defined_primary_key or [])],
        )
        for name in wanted
    ]
