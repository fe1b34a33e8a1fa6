"""The Helm chart under deploy/helm renders, for several value sets, manifests that pass the
Kubernetes schemas (kubernetes-validate, strict) and KEDA's ScaledObject CRD schema."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from worker.settings import WorkerSettings, env_name

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "packflow-worker"
KUBE_VERSION = "1.30.0"
SETTINGS_ENV = {env_name(field) for field in WorkerSettings.model_fields}
SECRET_FILE_ENV = {
    f"PACKFLOW_{name.upper()}_FILE"
    for name in ("sasl_password", "ssl_key_password", "sasl_oauth_client_secret")
}

pytestmark = pytest.mark.timeout(25 * 60)  # the first test may wait for `make tools`

VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "secured-keda-monitor": [
        "--set",
        "keda.enabled=true",
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "worker.metricsTopic=metrics",
        "--set",
        "worker.env.PACKFLOW_SECURITY_PROTOCOL=SASL_SSL",
        "--set",
        "worker.env.PACKFLOW_SASL_MECHANISM=SCRAM-SHA-512",
        "--set",
        "worker.env.PACKFLOW_SASL_USERNAME=packflow",
        "--set",
        "worker.env.PACKFLOW_SSL_CAFILE=/var/run/secrets/packflow/kafka-tls/ca.crt",
        "--set",
        "secretFiles[0].setting=sasl_password",
        "--set",
        "secretFiles[0].secretName=kafka-credentials",
        "--set",
        "secretFiles[0].key=password",
        "--set",
        "secretVolumes[0].secretName=kafka-tls",
        "--set",
        "secretVolumes[1].secretName=kafka-credentials",
    ],
    "exactly-once-no-static": [
        "--set",
        "worker.delivery=exactly-once",
        "--set",
        "worker.staticMembership=false",
        "--set",
        "podDisruptionBudget.enabled=false",
        "--set",
        "keda.enabled=true",
        "--set",
        "keda.inputPartitions=12",
        "--set",
        "keda.maxReplicaCount=8",
    ],
}


def render(tools, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(tools.helm), "template", "pf", str(CHART), "--kube-version", KUBE_VERSION, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def keda_schema(deploy_tools) -> dict[str, Any]:
    crd = yaml.safe_load(deploy_tools.keda_crd.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_every_manifest_passes_its_schema(deploy_tools, keda_schema, values):
    docs = render(deploy_tools, *VALUE_SETS[values])
    kinds = sorted(doc["kind"] for doc in docs)
    assert "Deployment" in kinds
    for doc in docs:
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, keda_schema)
        elif doc["kind"] == "ServiceMonitor":
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            assert doc["spec"]["endpoints"][0]["path"] == "/metrics"
        else:
            kubernetes_validate.validate(doc, KUBE_VERSION.rsplit(".", 1)[0], strict=True)


def test_the_schemas_catch_a_broken_manifest(deploy_tools, keda_schema):
    docs = by_kind(render(deploy_tools, *VALUE_SETS["secured-keda-monitor"]))
    deployment = docs["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {
        "not": "a port"
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30", strict=True)
    scaled = docs["ScaledObject"]
    scaled["spec"]["maxReplicaCount"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, keda_schema)


def test_the_deployment_runs_the_worker_as_the_contract_says(deploy_tools):
    docs = by_kind(render(deploy_tools, *VALUE_SETS["secured-keda-monitor"]))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert sorted(set(env) - SETTINGS_ENV - SECRET_FILE_ENV) == []
    assert "PACKFLOW_SASL_PASSWORD" not in env  # a secret only as a file
    assert env["PACKFLOW_SASL_PASSWORD_FILE"]["value"] == (
        "/var/run/secrets/packflow/kafka-credentials/password"
    )
    assert env["PACKFLOW_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.name"
    )
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/run/secrets/packflow/kafka-credentials"]["readOnly"] is True
    assert "/var/run/secrets/packflow/kafka-tls" in mounts
    assert len({v["name"] for v in pod["volumes"]}) == len(pod["volumes"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    shutdown = float(env["PACKFLOW_SHUTDOWN_TIMEOUT_SECONDS"]["value"])
    assert pod["terminationGracePeriodSeconds"] > shutdown
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "replicas" not in docs["Deployment"]["spec"]  # KEDA owns the count
    trigger = docs["ScaledObject"]["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == env["PACKFLOW_GROUP_ID"]["value"]
    assert trigger["metadata"]["lagThreshold"] == str(2000 * 30)
    assert docs["ScaledObject"]["spec"]["maxReplicaCount"] == 6  # the input partitions
    assert docs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_settings_that_cannot_work_are_refused_at_render(deploy_tools):
    for args, message in (
        (
            ["--set", "keda.enabled=true", "--set", "keda.maxReplicaCount=7"],
            "keda.maxReplicaCount 7 is above keda.inputPartitions 6",
        ),
        (
            ["--set", "terminationGracePeriodSeconds=30"],
            "terminationGracePeriodSeconds must be above worker.shutdownTimeoutSeconds",
        ),
    ):
        result = subprocess.run(
            [
                str(deploy_tools.helm),
                "template",
                "pf",
                str(CHART),
                "--kube-version",
                KUBE_VERSION,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode != 0
        assert message in result.stderr


def test_helm_lint_passes(deploy_tools):
    result = subprocess.run(
        [str(deploy_tools.helm), "lint", str(CHART), "--kube-version", KUBE_VERSION],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
