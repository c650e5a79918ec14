#!/usr/bin/env bash
# Bring the platform up and run the sample pipelines through it (what `make up` runs after
# creating the venv). Prints the UI address, each run's status and duration and each reporting
# table's row count; exits non-zero if anything failed. Logic: dataplatform/local/up.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
exec "$PYTHON" -m dataplatform.cli up "$@"
