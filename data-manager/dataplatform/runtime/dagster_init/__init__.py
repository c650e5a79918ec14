"""dagster-init: one `dagster api grpc` code server per enabled code location, supervised.

Fork mode (DAGSTER_INIT_MODE=fork, the default): the servers are forks of one pre-loaded fork
server (dataplatform.runtime.forkserver), ready in about a second and sharing the libraries'
memory; the UI's Reload re-forks the location. DAGSTER_INIT_MODE=process runs one plain
`dagster api grpc` process per location instead (debugging, fallback).

    dataplatform dagster-init [--bind-host 0.0.0.0] [--file code-locations.json]

- Reads and validates code-locations.json; a bad entry is reported and skipped, the rest served.
- Checks each port is free first; a taken port is reported (with the process holding it) and
  retried with backoff, so the location comes up once the port is released.
- Waits until each server answers, using one long-lived health checker in this process (a gRPC
  health call costs ~1 ms here; `dagster api grpc-health-check` costs 2 s and 100 MB per call).
- Restarts a server that exits or stops answering, with exponential backoff, and logs why.
- Servers run with --lazy-load-user-code: a location whose code fails to import stays up and
  serves its error, so the UI shows the traceback; it is reported here as "load_error".
- SIGTERM/SIGINT stop every child (each in its own session, so Dagster's signal handling works);
  SIGHUP restarts all servers, which reloads their code.
- SIGUSR1 reconciles with code-locations.json (what `connector add`/`remove` send to a running
  platform): only new, removed and changed entries are started or stopped, then the webserver
  re-reads the workspace (`reconcile`).

State goes to <platform dir>/run/dagster-init.status.json, logs to <platform dir>/logs/.
Bind address: --bind-host or $DAGSTER_GRPC_BIND_HOST (127.0.0.1 locally, 0.0.0.0 in containers).

Modules: `health` (is a server up, did its code load), `launchers` (start a server as a process
or a fork), `supervisor` (the per-location state machine and the main loop), `reconcile` (live
changes to code-locations.json), `cli` (the command, and the container healthcheck).
"""
