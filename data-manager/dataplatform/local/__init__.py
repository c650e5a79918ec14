"""Local mode, what `make up` runs on one machine: the private PostgreSQL (postgres.py), the
sample products API (sample_api/), the whole platform's start/stop/status (platform.py), the
watchdog that restarts the webserver and daemon (watchdog.py), and the sample runs (up.py)."""
