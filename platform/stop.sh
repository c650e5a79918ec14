#!/usr/bin/env bash
# Stop everything platform/start.sh and platform/up.sh started, by the PIDs they recorded under
# the project directory (never by name patterns). Data (PostgreSQL, run history) is kept.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
exec "$PYTHON" -m dataplatform.cli platform stop "$@"
