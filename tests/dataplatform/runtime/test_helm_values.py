"""deploy/helm/ is generated from code-locations.json and platform/dagster.yaml, and the chart,
Kubernetes and dagster-k8s accept what it says.

The chart's schema is modelled for the keys the project sets (helm_chart_values.schema.json beside
this file, chart 1.13.27); the Kubernetes objects (the Secrets, and the pod fields the chart copies
from the values) are checked against Kubernetes' own schemas by kubernetes-validate, offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from dataplatform.runtime import derived_configs, helm_values
from dataplatform.runtime.code_locations import load_code_locations
from pyairbyte import settings
from pyairbyte.utils.connector_files import connector_files

ROOT = settings.app_root()
SCHEMA = json.loads((Path(__file__).parent / "helm_chart_values.schema.json").read_text())
K8S_VERSION = "1.31"  # a Kubernetes release the chart supports and kubernetes-validate ships


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((ROOT / helm_values.VALUES_FILE).read_text())


def _deployments(values):
    return values["dagster-user-deployments"]["deployments"]


def test_committed_values_and_secret_example_match_their_sources():
    """values.yaml is in the drift check; the secret example only in `configs write` (see
    derived_configs), so it gets its own check here."""
    assert ROOT / helm_values.VALUES_FILE in derived_configs.expected_contents(
        *derived_configs._load(None), derived_configs.committed_files()
    )
    assert derived_configs.drift() == {}, f"fix: {derived_configs.REGENERATE}"
    example = (ROOT / helm_values.SECRET_EXAMPLE_FILE).read_text()
    assert example == derived_configs.expected_secret_example(), derived_configs.REGENERATE


def test_values_validate_against_the_charts_schema(values):
    jsonschema.validate(values, SCHEMA)


@pytest.mark.parametrize(
    "path, bad",
    [
        (("dagster-user-deployments", "deployments", 0, "port"), "4266"),
        (("dagster-user-deployments", "deployments", 0, "name"), "airbyte_sync"),
        (("runLauncher", "config", "k8sRunLauncher", "env_secrets"), []),
        (("dagsterDaemon", "runCoordinator", "config", "customRunCoordinator", "klass"), "X"),
        (("dagsterDaemon", "runCoordinator", "type"), "Queued"),
    ],
)
def test_schema_rejects_what_the_chart_rejects(values, path, bad):
    broken = json.loads(json.dumps(values))
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_one_deployment_per_enabled_location(values):
    locations = load_code_locations(settings.code_locations_file(), check_modules=False)
    enabled = [loc for loc in locations if loc.enabled]
    assert [(d["name"], d["port"], d["dagsterApiGrpcArgs"]) for d in _deployments(values)] == [
        (loc.name.replace("_", "-"), loc.port, ["--module-name", loc.module]) for loc in enabled
    ]
    for deployment in _deployments(values):
        assert deployment["envSecrets"] == [{"name": helm_values.ENV_SECRET}]
        assert deployment["readinessProbe"]["enabled"] is True
        assert "exec" not in deployment["readinessProbe"]  # the chart's gRPC health check


def test_run_coordinator_and_monitoring_come_from_platform_dagster_yaml(values):
    instance = yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text())
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    custom = coordinator["config"]["customRunCoordinator"]
    # Dagster's QueuedRunCoordinator with the file's config verbatim (see helm_values).
    assert (custom["module"], custom["class"]) == (
        instance["run_coordinator"]["module"],
        instance["run_coordinator"]["class"],
    )
    assert custom["config"] == instance["run_coordinator"]["config"]
    assert {"key": "dataplatform/connector", "value": {"applyLimitPerUniqueValue": True},
            "limit": 1} in custom["config"]["tag_concurrency_limits"]  # fmt: skip
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "platform").mkdir()
    for rel in ("platform/workspace.yaml", "platform/dagster.yaml", "docker-compose.yaml",
                "Dockerfile.data-manager", str(helm_values.VALUES_FILE)):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    source = tmp_path / "code-locations.json"
    shutil.copy(settings.code_locations_file(), source)
    return source, derived_configs.committed_files(tmp_path)


def test_a_changed_tag_limit_drifts_the_values_and_write_follows(tree):
    source, files = tree
    text = files.instance_config.read_text().replace("        limit: 1\n", "        limit: 2\n")
    files.instance_config.write_text(text)
    assert set(derived_configs.drift(source, files)) == {files.helm_values}
    derived_configs.write(source, files)
    written = yaml.safe_load(files.helm_values.read_text())
    custom = written["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    assert custom["config"]["tag_concurrency_limits"][0]["limit"] == 2


def test_an_instance_setting_the_chart_cannot_express_is_a_clear_error(tree):
    source, files = tree
    text = files.instance_config.read_text().replace(
        "  poll_interval_seconds: 10\n", "  poll_interval_seconds: 10\n  free_slots: 5\n"
    )
    files.instance_config.write_text(text)
    with pytest.raises(derived_configs.DerivedConfigError, match="run_monitoring.free_slots"):
        derived_configs.drift(source, files)


def test_enabling_a_location_adds_a_deployment(tree):
    source, files = tree
    doc = json.loads(source.read_text())
    next(e for e in doc["code_locations"] if e["name"] == "sweden_sync")["enabled"] = True
    source.write_text(json.dumps(doc))
    diffs = derived_configs.drift(source, files)
    assert "+  - name: sweden-sync" in diffs[files.helm_values]


def _k8s_validate(document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_secret_example_is_valid_kubernetes_and_lists_every_connector_variable():
    text = (ROOT / helm_values.SECRET_EXAMPLE_FILE).read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    for document in documents:
        _k8s_validate(document)
    by_name = {d["metadata"]["name"]: d for d in documents}
    env = by_name[helm_values.ENV_SECRET]["stringData"]
    assert set(helm_values.POSTGRES_ENV) <= set(env)
    assert helm_values.PG_PASSWORD_KEY in by_name[helm_values.PG_PASSWORD_SECRET]["stringData"]
    for path in connector_files():
        for name, has_default in helm_values.connector_variables(path).items():
            # A defaulted variable is a comment, so an applied placeholder cannot override it.
            assert (name in env) != has_default, name
            assert name in text
    assert all(v.startswith("<") for v in env.values()), "placeholders only, never values"


def test_a_required_connector_variable_is_a_secret_key(tmp_path):
    yaml_path = tmp_path / "orders.yaml"
    yaml_path.write_text(
        "version: 1\nname: orders\nconnector_type: source\n"
        "config:\n  base_url: ${ORDERS_URL:-http://x}\n  api_key: ${ORDERS_KEY}\n"
        "  escaped: $${NOT_A_VAR}\n"
    )
    assert helm_values.connector_variables(yaml_path) == {"ORDERS_URL": True, "ORDERS_KEY": False}
    example = helm_values.render_secret_example([yaml_path], "regen")
    env = yaml.safe_load_all(example).__next__()["stringData"]
    assert env["ORDERS_KEY"] == "<required by orders.yaml>"
    assert "ORDERS_URL" not in env and "# ORDERS_URL: optional" in example


def test_the_pod_fields_the_chart_copies_are_valid_kubernetes(values):
    """The chart puts resources, envSecrets and the probe timings into each Deployment's pod."""
    for deployment in _deployments(values):
        probe = {k: v for k, v in deployment["readinessProbe"].items() if k != "enabled"}
        probe["exec"] = {"command": ["dagster", "api", "grpc-health-check", "-p",
                                     str(deployment["port"])]}  # fmt: skip
        image = deployment["image"]
        _k8s_validate(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": f"dagster-{deployment['name']}",
                    "labels": deployment["labels"],
                },  # fmt: skip
                "spec": {
                    "selector": {"matchLabels": {"deployment": deployment["name"]}},
                    "template": {
                        "metadata": {"labels": {"deployment": deployment["name"]}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "dagster",
                                    "image": f"{image['repository']}:{image['tag']}",
                                    "imagePullPolicy": image["pullPolicy"],
                                    "args": [
                                        "dagster",
                                        "api",
                                        "grpc",
                                        "-h",
                                        "0.0.0.0",
                                        "-p",
                                        str(deployment["port"]),
                                        *deployment["dagsterApiGrpcArgs"],
                                    ],  # fmt: skip
                                    "envFrom": [{"secretRef": s} for s in deployment["envSecrets"]],
                                    "resources": deployment["resources"],
                                    "readinessProbe": probe,
                                }
                            ]
                        },
                    },
                },
            }
        )


def test_k8s_run_launcher_config_loads_in_dagster_k8s(values):
    """The chart turns runLauncher.config.k8sRunLauncher into dagster.yaml's run_launcher config
    (snake_case, plus the fields it fills in itself); dagster-k8s's own schema must accept it."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": chart["loadInclusterConfig"],
        "image_pull_policy": chart["imagePullPolicy"],
        "env_config_maps": ["dagster-pipeline-env"] + [c["name"] for c in chart["envConfigMaps"]],
        "env_secrets": [s["name"] for s in chart["envSecrets"]],
        "env_vars": chart["envVars"],
        "volume_mounts": chart["volumeMounts"],
        "volumes": chart["volumes"],
        "labels": chart["labels"],
        "resources": chart["resources"],
        # Filled in by the chart from the release and global values:
        "job_namespace": "dagster",
        "service_account_name": "dagster",
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "dagster_home": "/opt/dagster/dagster_home",
    }
    result = process_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors
    broken = process_config(K8sRunLauncher.config_type(), {**config, "env_secret": ["x"]})
    assert not broken.success


def test_image_set_arguments_cover_every_deployment(values):
    locations = load_code_locations(settings.code_locations_file(), check_modules=False)
    args = helm_values.image_set_arguments(locations, "registry.example/dm", "2026.12.1")
    assert len(args) == 4 * len(_deployments(values))
    assert args[-1] == f"dagster-user-deployments.deployments[{len(_deployments(values)) - 1}]" \
        ".image.tag=2026.12.1"  # fmt: skip


def test_run_coordinator_config_loads_in_dagster(values):
    import importlib

    from dagster._config import process_config

    custom = values["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    # The chart imports the class by module and name: both must resolve (public `dagster`).
    coordinator = getattr(importlib.import_module(custom["module"]), custom["class"])
    result = process_config(coordinator.config_type(), custom["config"])
    assert result.success, result.errors
