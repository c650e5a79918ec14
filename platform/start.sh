#!/usr/bin/env bash
# Start the platform in local mode: PostgreSQL (private cluster unless POSTGRES_HOST is set),
# dagster-init (one gRPC server per code location), the Dagster webserver and the daemon.
# Safe to run again while the platform is up. Logic: dataplatform/local/platform.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
exec "$PYTHON" -m dataplatform.cli platform start "$@"
