"""The Dagster webserver's GraphQL API, as `make up`, the platform tests and the benchmark use it.

Launch, run status and location reload go through Dagster's own `DagsterGraphQLClient`. It
imports Dagster (seconds of CPU), so it is built on first use: `platform start` only polls
the locations and never pays for it. The queries that client lacks stay here: the workspace's
locations with their load status and jobs, and a run's timing and step stats.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from dagster_graphql import DagsterGraphQLClient

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class DagsterGraphQLError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocationStatus:
    name: str
    load_status: str  # LOADING or LOADED
    loaded: bool  # LOADED and its code is usable (no PythonError)
    error: str = ""
    jobs: tuple[str, ...] = ()
    server_id: str = ""


@dataclass
class RunResult:
    run_id: str
    job_name: str
    location: str
    status: str
    launched_at: float  # time.time() when launchRun returned
    finished_at: float | None = None  # time.time() when we saw the final status
    start_time: float | None = None  # Dagster's own startTime/endTime (epoch seconds)
    end_time: float | None = None
    steps: list[dict] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        """Launch to final status, as the user experiences it."""
        return None if self.finished_at is None else self.finished_at - self.launched_at


_WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name jobs { name } }
          }
          ... on PythonError { message }
        }
        versionKey
      }
    }
    ... on PythonError { message }
  }
}
"""

_RELOAD_WORKSPACE = """
mutation ReloadWorkspace {
  reloadWorkspace {
    __typename
    ... on Workspace { locationEntries { name loadStatus } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""

_RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status jobName startTime endTime
      tags { key value }
      stepStats { stepKey status startTime endTime }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


class DagsterGraphQL:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        # One Dagster client per thread: its gql transport keeps one connection and is not
        # safe to share between threads (concurrent launches failed with a bare exception).
        self._clients = threading.local()

    def _dagster(self) -> DagsterGraphQLClient:
        """Dagster's client for the same webserver, built on first use in each thread."""
        client = getattr(self._clients, "client", None)
        if client is None:
            from dagster_graphql import DagsterGraphQLClient

            url = urlsplit(self.base_url)
            client = DagsterGraphQLClient(
                url.hostname or "127.0.0.1",
                port_number=url.port,
                use_https=url.scheme == "https",
                timeout=max(1, round(self.timeout)),
                path_prefix=url.path,
            )
            self._clients.client = client
        return client

    def _call(self, what: str, call, *args, **kwargs):
        """Run one call of Dagster's client; its errors become DagsterGraphQLError."""
        from dagster_graphql import DagsterGraphQLClientError

        try:
            return call(*args, **kwargs)
        except DagsterGraphQLClientError as exc:
            detail = ": ".join(str(arg) for arg in exc.args) or repr(exc)
            raise DagsterGraphQLError(f"{what} failed: {detail}") from exc

    def query(self, query: str, variables: dict | None = None) -> dict:
        resp = self._session.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=self.timeout,
        )
        resp.raise_for_status()
        payload = resp.json()
        if payload.get("errors"):
            raise DagsterGraphQLError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def is_up(self) -> bool:
        try:
            return self._session.get(f"{self.base_url}/server_info", timeout=2).ok
        except requests.RequestException:
            return False

    def locations(self) -> dict[str, LocationStatus]:
        data = self.query(_WORKSPACE_QUERY)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise DagsterGraphQLError(f"workspace error: {data.get('message')}")
        out = {}
        for entry in data["locationEntries"]:
            inner = entry.get("locationOrLoadError") or {}
            kind = inner.get("__typename")
            jobs = tuple(
                job["name"]
                for repo in inner.get("repositories", []) or []
                for job in repo["jobs"]
                if not job["name"].startswith("__")
            )
            out[entry["name"]] = LocationStatus(
                name=entry["name"],
                load_status=entry["loadStatus"],
                loaded=entry["loadStatus"] == "LOADED" and kind == "RepositoryLocation",
                error=inner.get("message", "") if kind == "PythonError" else "",
                jobs=jobs,
                server_id=entry.get("versionKey") or "",
            )
        return out

    def reload_location(self, name: str) -> bool:
        """Ask the webserver to reload location `name`; True if its code loaded."""
        from dagster_graphql import ReloadRepositoryLocationStatus

        info = self._call(f"reloading {name}", self._dagster().reload_repository_location, name)
        return info.status == ReloadRepositoryLocationStatus.SUCCESS

    def reload_workspace(self) -> list[str]:
        """Have the webserver re-read its workspace file (the UI's "Reload all"); the names.

        It also sends ReloadCode to every location's server (dagster-init declines those after a
        live change, so unchanged servers keep their processes).
        """
        data = self.query(_RELOAD_WORKSPACE)["reloadWorkspace"]
        if data["__typename"] != "Workspace":
            raise DagsterGraphQLError(f"reloadWorkspace: {data.get('message', data)}")
        return [entry["name"] for entry in data["locationEntries"]]

    def wait_for_locations(
        self, names: list[str], timeout: float, reload_every: float = 5.0
    ) -> dict[str, LocationStatus]:
        """Poll until every named location is loaded, or until timeout; returns the last view.

        The webserver notices a restarted code server by itself, but asking it to reload a
        location that is in error makes it retry at once rather than on its next poll.
        """
        deadline = time.monotonic() + timeout
        last_reload = time.monotonic()
        status: dict[str, LocationStatus] = {}
        while True:
            try:
                status = self.locations()
            except (requests.RequestException, DagsterGraphQLError):
                status = {}
            if status and all(n in status and status[n].loaded for n in names):
                return status
            if time.monotonic() >= deadline:
                return status
            if time.monotonic() - last_reload >= reload_every:
                last_reload = time.monotonic()
                for n in names:
                    if n in status and not status[n].loaded and status[n].load_status == "LOADED":
                        try:
                            self.reload_location(n)
                        except (requests.RequestException, DagsterGraphQLError):
                            pass
            time.sleep(0.5)

    def launch_run(
        self,
        location: str,
        job: str,
        run_config: dict | None = None,
        tags: dict[str, str] | None = None,
        repository: str = "__repository__",
    ) -> RunResult:
        """Launch `job` as the UI's "Launch run" does; the run is queued for the daemon."""
        run_id = self._call(
            f"launching {location}/{job}",
            self._dagster().submit_job_execution,
            job,
            repository_location_name=location,
            repository_name=repository,
            run_config=run_config or {},
            tags=tags,
        )
        return RunResult(
            run_id=run_id,
            job_name=job,
            location=location,
            status=self.run_status(run_id),
            launched_at=time.time(),
        )

    def run_status(self, run_id: str) -> str:
        """The run's status name, e.g. QUEUED, STARTED, SUCCESS."""
        status = self._call(f"run {run_id}", self._dagster().get_run_status, run_id)
        return status.value

    def run(self, run_id: str) -> dict:
        """The run with its timing and step stats (which Dagster's client does not return)."""
        data = self.query(_RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise DagsterGraphQLError(f"run {run_id}: {data.get('message', data['__typename'])}")
        return data

    def wait_for_runs(
        self, runs: list[RunResult], timeout: float, poll: float = 0.5
    ) -> list[RunResult]:
        """Poll each run's status until all finished (or timeout: status stays as last seen)."""
        deadline = time.monotonic() + timeout
        pending = {r.run_id: r for r in runs}
        while pending and time.monotonic() < deadline:
            for run_id, result in list(pending.items()):
                result.status = self.run_status(run_id)
                if result.status in FINISHED:
                    result.finished_at = time.time()
                    data = self.run(run_id)
                    result.start_time = data.get("startTime")
                    result.end_time = data.get("endTime")
                    result.steps = data.get("stepStats") or []
                    del pending[run_id]
            if pending:
                time.sleep(poll)
        return runs
