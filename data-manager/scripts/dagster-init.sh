#!/usr/bin/env bash
# dagster-init: start and supervise one gRPC code server per enabled entry in
# data-manager/resources/dagster/code-locations.json. All logic (validation, health checks,
# restarts, clean shutdown) is in dataplatform/runtime/dagster_init/; this only finds Python.
#   DAGSTER_GRPC_BIND_HOST  127.0.0.1 (default, local) or 0.0.0.0 (containers)
#   CODE_LOCATIONS_FILE     another code-locations.json
#   PYTHON                  interpreter to use (default: the project venv, else python3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
cd "$ROOT"
# exec: the supervisor itself receives SIGTERM/SIGINT (e.g. as a container's main process).
exec "$PYTHON" -m dataplatform.cli dagster-init "$@"
