"""A small client for the Dagster webserver's GraphQL API: the calls the UI itself makes.

Used by `make up` (launch the sample jobs and wait), the platform tests and the benchmark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

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

    @property
    def steps_seconds(self) -> float:
        """Wall time from the first step's start to the last step's end."""
        spans = [(s["startTime"], s["endTime"]) for s in self.steps if s.get("startTime")]
        spans = [(a, b) for a, b in spans if b]
        if not spans:
            return 0.0
        return max(b for _, b in spans) - min(a for a, _ in spans)


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

_LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
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

_RELOAD_MUTATION = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { name loadStatus }
    ... on PythonError { message }
  }
}
"""


class DagsterGraphQL:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

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

    def reload_location(self, name: str) -> None:
        self.query(_RELOAD_MUTATION, {"name": name})

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
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": job,
            },
            "runConfigData": run_config or {},
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        result = self.query(_LAUNCH_MUTATION, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or result.get("errors") or result
            raise DagsterGraphQLError(
                f"launching {location}/{job} failed: {result['__typename']}: {detail}"
            )
        return RunResult(
            run_id=result["run"]["runId"],
            job_name=job,
            location=location,
            status=result["run"]["status"],
            launched_at=time.time(),
        )

    def run(self, run_id: str) -> dict:
        data = self.query(_RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise DagsterGraphQLError(f"run {run_id}: {data.get('message', data['__typename'])}")
        return data

    def wait_for_runs(
        self, runs: list[RunResult], timeout: float, poll: float = 0.5
    ) -> list[RunResult]:
        """Poll runOrError until every run finished (or timeout: status stays as last seen)."""
        deadline = time.monotonic() + timeout
        pending = {r.run_id: r for r in runs}
        while pending and time.monotonic() < deadline:
            for run_id, result in list(pending.items()):
                data = self.run(run_id)
                result.status = data["status"]
                if result.status in FINISHED:
                    result.finished_at = time.time()
                    result.start_time = data.get("startTime")
                    result.end_time = data.get("endTime")
                    result.steps = data.get("stepStats") or []
                    del pending[run_id]
            if pending:
                time.sleep(poll)
        return runs
