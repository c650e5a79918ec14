"""Install every PyPI connector the connector YAMLs name, ahead of the first sync.

    python -m dataplatform.runtime.preinstall_connectors

Used by the Docker build so containers never install connectors at run time. Declarative
connectors (source_manifest) run in-process and need nothing. Connectors go where syncs look
for them (pyairbyte.utils.airbyte_env.connector_install_root()).
"""

from __future__ import annotations

import sys

from pyairbyte.utils.connector_config import load_connector_file
from pyairbyte.utils.connector_files import connector_files


def main() -> int:
    # Imported here: pyairbyte_sync pulls in PyAirbyte, which is slow to import.
    from pyairbyte.utils.pyairbyte_sync import build_source

    failed = []
    for path in connector_files():
        connector = load_connector_file(path)
        if connector.is_declarative:
            print(f"{connector.name}: declarative, nothing to install")
            continue
        try:
            build_source(connector)
        except Exception as exc:  # report every connector, then fail
            failed.append(connector.name)
            print(f"{connector.name}: install FAILED: {exc}", file=sys.stderr)
            continue
        print(f"{connector.name}: installed ({connector.pip_url or 'latest from PyPI'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
