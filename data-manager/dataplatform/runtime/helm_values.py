"""Values for Dagster's official Helm chart, generated from code-locations.json.

    dataplatform configs write    # also writes deploy/helm/values.yaml and secret.example.yaml
    helm upgrade --install dagster dagster/dagster -f deploy/helm/values.yaml   # docs/scaling.md

Written against chart 1.13.27 (chart versions follow Dagster's; the project pins dagster 1.13.27).
The values cover these parts of the chart:

- `dagster-user-deployments`: one deployment per enabled location, running the project's image
  with `dagster api grpc --module-name <module>` on the location's port. Environment comes from
  one Secret (POSTGRES_* for the PyAirbyte cache and the connector YAMLs' ${VAR}s), so the values
  do not change when a connector YAML gains a variable; secret.example.yaml lists the keys.
- the instance: K8sRunLauncher (each run is a Job), the chart's PostgreSQL storage pointed at an
  external database, and the run coordinator and run monitoring read from platform/dagster.yaml,
  so the limit of one run per connector cannot differ between the two. The coordinator is
  Dagster's QueuedRunCoordinator given as the chart's CustomRunCoordinator with the file's config
  verbatim: the chart's queuedRunCoordinator has no keys for the code-server retries
  (max_user_code_failure_retries, user_code_failure_retry_delay) that the file sets.
- the file's `compute_logs` as the chart's CustomComputeLogManager (computeLogManager), so every
  pod the chart configures (webserver, daemon, run Jobs) keeps compute logs in PostgreSQL. Its
  `postgres_db` block is left out: it names POSTGRES_*, which in the chart's pods is the PyAirbyte
  cache's env (and absent from the webserver and daemon), so PostgresComputeLogManager uses the
  instance's own storage database, which the chart renders from its postgresql.* values.

Chart deployment names become Kubernetes object names (DNS-1123), so a location's `_` becomes
`-`: the chart's generated workspace names the location `airbyte-sync`, not `airbyte_sync`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dataplatform.runtime.code_locations import CodeLocation
from dataplatform.runtime.dagster_internals import QUEUED_RUN_COORDINATOR_MODULE

CHART_VERSION = "1.13.27"
VALUES_FILE = Path("deploy/helm/values.yaml")
SECRET_EXAMPLE_FILE = Path("deploy/helm/secret.example.yaml")

IMAGE_REPOSITORY = "dataplatform-data-manager"  # docker-compose.yaml's image, pushed somewhere
IMAGE_TAG = "latest"
ENV_SECRET = "dataplatform-env"  # POSTGRES_* and the connectors' variables, as env
PG_PASSWORD_SECRET = "dataplatform-postgresql"  # the chart's global.postgresqlSecretName
PG_PASSWORD_KEY = "postgresql-password"  # the key the chart reads from that Secret
POSTGRES_ENV = tuple(f"POSTGRES_{k}" for k in ("HOST", "PORT", "USER", "PASSWORD", "DB"))

# A code server measured 212-227 MB RSS once its location loaded (README,
# bench/platform_startup.py: 226 / 227 / 212 MB) and used about 13% of a core while idle,
# answering the daemon's and webserver's polling (field notes, 2026-12-01). Loading takes about
# 9 s of one core. The chart's readiness probe runs `dagster api grpc-health-check` in the same
# container, about 100 MB and 2 s per call (field notes), so the limit leaves room for a probe.
CODE_SERVER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
# A run Job's pod: a sync run imports airbyte (about 310 MB) and peaked at 316 MB in the cache
# benchmark (README, bench/cache_load.py), beside Dagster's run worker (about 118 MB).
RUN_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}

# snake_case keys of platform/dagster.yaml -> the chart's camelCase values.
_MONITORING_KEYS = {
    "enabled": "enabled",
    "start_timeout_seconds": "startTimeoutSeconds",
    "cancel_timeout_seconds": "cancelTimeoutSeconds",
    "max_runtime_seconds": "maxRuntimeSeconds",
    "max_resume_run_attempts": "maxResumeRunAttempts",
    "poll_interval_seconds": "pollIntervalSeconds",
}
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


class HelmValuesError(RuntimeError):
    pass


class _Dumper(yaml.SafeDumper):
    """Writes shared dicts out in full: `&id001` anchors would puzzle a reader of the values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def deployment_name(location: str) -> str:
    """The location's name as a chart deployment name (a DNS-1123 label)."""
    return location.replace("_", "-").lower()


def _translate(section: dict, keys: dict[str, str], path: Path, where: str) -> dict:
    unknown = sorted(set(section) - set(keys))
    if unknown:
        raise HelmValuesError(
            f"{path}: {where}.{unknown[0]} has no Helm chart equivalent in "
            "dataplatform.runtime.helm_values; add its chart key there or remove it"
        )
    return {keys[k]: v for k, v in section.items()}


def _load_instance(dagster_yaml: Path) -> dict:
    try:
        return yaml.safe_load(dagster_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HelmValuesError(f"{dagster_yaml}: cannot read the instance config: {exc}") from None


def compute_log_manager(dagster_yaml: Path) -> dict | None:
    """The chart's computeLogManager from the file's compute_logs; None: the chart's default."""
    compute_logs = _load_instance(dagster_yaml).get("compute_logs")
    if not compute_logs:
        return None
    if not (compute_logs.get("module") and compute_logs.get("class")):
        raise HelmValuesError(
            f"{dagster_yaml}: compute_logs needs module and class for the chart's "
            "CustomComputeLogManager"
        )
    config = dict(compute_logs.get("config") or {})
    if compute_logs["class"] == "PostgresComputeLogManager":
        config.pop("postgres_db", None)  # the instance's storage database instead (see above)
    custom = {"module": compute_logs["module"], "class": compute_logs["class"], "config": config}
    return {"type": "CustomComputeLogManager", "config": {"customComputeLogManager": custom}}


def instance_settings(dagster_yaml: Path) -> tuple[dict, dict]:
    """(runCoordinator, runMonitoring) for the chart, from the local instance config."""
    instance = _load_instance(dagster_yaml)
    coordinator = instance.get("run_coordinator") or {}
    if coordinator.get("class") != "QueuedRunCoordinator":
        raise HelmValuesError(
            f"{dagster_yaml}: run_coordinator.class must be QueuedRunCoordinator for the chart's "
            "dagsterDaemon.runCoordinator"
        )
    custom = {
        "module": coordinator.get("module", QUEUED_RUN_COORDINATOR_MODULE),
        "class": "QueuedRunCoordinator",
        "config": coordinator.get("config") or {},
    }
    run_coordinator = {
        "enabled": True,
        "type": "CustomRunCoordinator",
        "config": {"customRunCoordinator": custom},
    }
    monitoring = _translate(instance.get("run_monitoring") or {"enabled": False},
                            _MONITORING_KEYS, dagster_yaml, "run_monitoring")  # fmt: skip
    return run_coordinator, monitoring


def user_deployment(loc: CodeLocation) -> dict[str, Any]:
    return {
        "name": deployment_name(loc.name),
        "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "Always"},
        "dagsterApiGrpcArgs": ["--module-name", loc.module],
        "port": loc.port,
        "envSecrets": [{"name": ENV_SECRET}],
        # Runs are Jobs with their own resources (runLauncher below), not the code server's.
        "includeConfigInLaunchedRuns": {"enabled": False},
        "resources": CODE_SERVER_RESOURCES,
        # Without `exec` the chart runs `dagster api grpc-health-check -p <port>`, which asks the
        # server's gRPC health service; loading takes about 9 s, so allow a minute.
        "readinessProbe": {
            "enabled": True,
            "initialDelaySeconds": 5,
            "periodSeconds": 20,
            "timeoutSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "labels": {"dataplatform/location": loc.name},
    }


def values(locations: list[CodeLocation], dagster_yaml: Path) -> dict[str, Any]:
    run_coordinator, monitoring = instance_settings(dagster_yaml)
    return {
        "global": {"postgresqlSecretName": PG_PASSWORD_SECRET},
        "dagster-user-deployments": {
            "enabled": True,
            "enableSubchart": True,
            "deployments": [user_deployment(loc) for loc in locations if loc.enabled],
        },
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {
                "k8sRunLauncher": {
                    "imagePullPolicy": "Always",
                    "loadInclusterConfig": True,
                    "envConfigMaps": [],
                    "envSecrets": [{"name": ENV_SECRET}],
                    "envVars": [],
                    "volumeMounts": [],
                    "volumes": [],
                    "resources": RUN_RESOURCES,
                    "labels": {"app.kubernetes.io/part-of": "dataplatform"},
                }
            },
        },
        # The chart's own PostgreSQL is off; instance storage goes to the external database.
        # Its password is the Secret's postgresql-password key, so nothing secret is in here.
        "postgresql": {
            "enabled": False,
            "postgresqlHost": "postgresql",
            "postgresqlUsername": "dataplatform",
            "postgresqlPassword": "",
            "postgresqlDatabase": "dataplatform",
            "service": {"port": 5432},
        },
        "generatePostgresqlPasswordSecret": False,
        "dagsterDaemon": {
            "enabled": True,
            "runCoordinator": run_coordinator,
            "runMonitoring": monitoring,
        },
        "telemetry": {"enabled": False},
        **({"computeLogManager": logs} if (logs := compute_log_manager(dagster_yaml)) else {}),
    }


def render_values(locations: list[CodeLocation], dagster_yaml: Path, source: str,
                  regenerate: str) -> str:  # fmt: skip
    header = [
        f"# Values for Dagster's Helm chart {CHART_VERSION} (helm repo add dagster",
        "# https://dagster-io.github.io/helm): one user deployment per enabled code location,",
        "# K8sRunLauncher, an external PostgreSQL, and platform/dagster.yaml's run coordinator,",
        "# run monitoring and compute logs. Set the image, database host and secrets as",
        "# docs/scaling.md says.",
        f"# GENERATED from {source} and platform/dagster.yaml by:",
        f"#   {regenerate}",
        "# Do not edit by hand; edit code-locations.json and regenerate.",
        "",
    ]
    body = yaml.dump(values(locations, dagster_yaml), Dumper=_Dumper, sort_keys=False, width=100)
    return "\n".join(header) + body


def connector_variables(connector_yaml: Path) -> dict[str, bool]:
    """Variable name -> whether the YAML gives it a default, without reading the environment."""
    try:
        data = yaml.safe_load(connector_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # the doctor reports broken connector YAMLs; nothing to list from this one
    found: dict[str, bool] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _VAR.finditer(value):
                if match.group(1):
                    name = match.group(1)
                    found[name] = found.get(name, False) or match.group(2) is not None
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: data.get(k) for k in ("config", "pip_url")} if isinstance(data, dict) else None)
    return found


def render_secret_example(connector_yamls: list[Path], regenerate: str) -> str:
    """The two Secrets the values name, with placeholder values (never real ones).

    A variable that every YAML using it gives a default is only a comment: a key with a
    placeholder value would override that default.
    """
    variables: dict[str, dict[str, bool]] = {}
    for path in connector_yamls:
        for name, has_default in connector_variables(path).items():
            variables.setdefault(name, {})[path.name] = has_default
    env = [f"  {name}: <set me>" for name in POSTGRES_ENV]
    for name in sorted(variables):
        files = ", ".join(sorted(variables[name]))
        if all(variables[name].values()):
            env.append(f"  # {name}: optional, the YAML's default applies when unset ({files})")
        else:
            env.append(f"  {name}: <required by {files}>")
    lines = [
        "# Secrets that deploy/helm/values.yaml reads. Placeholders only: copy this file outside",
        "# the repository, fill in the values, then `kubectl apply -f` it (docs/scaling.md).",
        f"# GENERATED from data-manager/external-connectors/*.yaml by: {regenerate}",
        "---",
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f"  name: {ENV_SECRET}",
        "type: Opaque",
        "stringData:",
        *env,
        "---",
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f"  name: {PG_PASSWORD_SECRET}",
        "type: Opaque",
        "stringData:",
        f"  {PG_PASSWORD_KEY}: <the instance database password>",
    ]
    return "\n".join(lines) + "\n"


def image_set_arguments(locations: list[CodeLocation], repository: str, tag: str) -> list[str]:
    """`helm --set` arguments that put one image on every deployment (lists cannot be merged)."""
    args = []
    active = [loc for loc in locations if loc.enabled]
    for i in range(len(active)):
        image = f"dagster-user-deployments.deployments[{i}].image"
        args += ["--set", f"{image}.repository={repository}", "--set-string", f"{image}.tag={tag}"]
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m dataplatform.runtime.helm_values image REPOSITORY TAG`: print --set args."""
    import sys

    from dataplatform.runtime.code_locations import code_locations_path, load_code_locations

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "image":
        print("usage: python -m dataplatform.runtime.helm_values image REPOSITORY TAG",
              file=sys.stderr)  # fmt: skip
        return 2
    locations = load_code_locations(code_locations_path(), check_modules=False)
    print(" ".join(image_set_arguments(locations, args[1], args[2])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
