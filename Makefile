# Two commands do all the set-up on a fresh machine:
#   make up    - install, start the platform locally and run the sample pipelines
#   make test  - install and run lint, the config doctor and the whole test suite
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9

.PHONY: install manifest lint format check test test-fast test-reliability test-containers up down bench lock clean

install: $(VENV)/.installed

# Installs exactly the versions in uv.lock (uv itself comes from PyPI when missing).
$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen
	@touch $@

manifest: install
	$(PY) -m dataplatform.dbt.manifest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# `dataplatform check` is the config doctor: the four config files agree, every location loads,
# every connector YAML is valid, dbt sources and staging columns match the cache.
test: install manifest lint
	$(VENV)/bin/dataplatform check
	$(PY) -m pytest -m "not fault and not containers" $(PYTEST_ARGS)

# Fault injection and load on real platforms (kill -9, pg_ctl stop, SIGTERM, 20 queued runs):
# about 7 minutes here (fresh clone), so apart from `make test`; CI runs both.
test-reliability: install manifest
	$(PY) -m pytest -m fault $(PYTEST_ARGS)

# The tier that needs no service (no PostgreSQL, no MariaDB, no platform processes), in under a
# minute: the unit tests of the pure modules and the static checks of the committed files.
test-fast: install
	$(PY) -m pytest -q -m "not db and not mysql and not platform and not browser and not slow and not containers" $(PYTEST_ARGS)

# The image and compose file on a real Docker engine (tests/containers/): starts dockerd under
# .project/docker when none runs, builds Debian-package stand-ins for the official base images
# (no registry is reachable here), the platform image, and brings the compose stack up. Needs
# root and Debian's docker.io, iptables and mmdebstrap (.ci/run installs them).
test-containers: install manifest
	$(PY) -m pytest -m containers tests/containers $(PYTEST_ARGS)

check: install
	$(VENV)/bin/dataplatform check

# Rewrites tests/dagster_code/snapshots/ from the code locations as they load now; review the diff.
.PHONY: update-snapshots
update-snapshots: install manifest
	UPDATE_SNAPSHOTS=1 $(PY) -m pytest -q tests/dagster_code/test_asset_graph_snapshots.py

up: install manifest
	bash platform/up.sh

down:
	bash platform/stop.sh

bench: install manifest
	$(PY) bench/transform_overhead.py

lock:
	uv lock

clean:
	rm -rf dbt_models/target dbt_models/logs .pytest_cache .ruff_cache
