"""docker-compose.yml, Dockerfile and .dockerignore hold what users of Docker rely on.

No Docker engine runs here, so the files are parsed and checked against the project:
the same Kafka version and broker settings as ``scripts/kafka``, the worker's PACKFLOW_*
settings and health endpoint, and the console script the image runs.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from kafka_local import DEFAULT_KAFKA_VERSION  # noqa: E402
from kafka_local._config import BASE_SETTINGS  # noqa: E402

# Settings that name listeners differ in Docker (an extra HOST listener); all others match.
LISTENER_SETTINGS = {"listener.security.protocol.map"}
WORKER_ENV = (
    "PACKFLOW_BOOTSTRAP_SERVERS",
    "PACKFLOW_INPUT_TOPIC",
    "PACKFLOW_OUTPUT_TOPIC",
    "PACKFLOW_DLQ_TOPIC",
    "PACKFLOW_METRICS_TOPIC",
    "PACKFLOW_GROUP_ID",
    "PACKFLOW_BACKEND",
    "PACKFLOW_PROJECT",
    "PACKFLOW_HEALTH_PORT",
)


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """Return ``(INSTRUCTION, arguments)`` pairs, joining ``\\`` continuations."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if not full:
            continue
        keyword, _, arguments = full.partition(" ")
        if not keyword.isalpha():
            raise ValueError(f"Dockerfile line {number}: cannot parse {raw!r}")
        instructions.append((keyword.upper(), arguments.strip()))
    if pending:
        raise ValueError("Dockerfile ends inside a line continuation")
    return instructions


def _env_to_setting(name: str) -> str:
    return name.removeprefix("KAFKA_").lower().replace("_", ".")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_dockerfile_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("# c\nFROM a:1\nRUN one \\\n  # inner\n  two\n\nENV A=1\n")
    assert parsed == [("FROM", "a:1"), ("RUN", "one two"), ("ENV", "A=1")]
    with pytest.raises(ValueError, match="line 1"):
        parse_dockerfile("--bad line\n")


def test_kafka_service_is_the_official_image_of_the_tested_version(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"
    assert compose["services"]["topics"]["image"] == kafka["image"]
    assert "127.0.0.1:9092:9092" in kafka["ports"]
    assert "/var/lib/kafka/data" in " ".join(kafka["volumes"])
    assert "healthcheck" in kafka


def test_kafka_service_is_a_kraft_single_node_with_the_local_settings(
    compose: dict[str, Any],
) -> None:
    env = {k: str(v) for k, v in compose["services"]["kafka"]["environment"].items()}
    settings = {_env_to_setting(k): v for k, v in env.items() if k.startswith("KAFKA_")}
    assert set(settings["process.roles"].split(",")) == {"broker", "controller"}
    assert settings["controller.quorum.voters"] == f"{settings['node.id']}@kafka:9093"
    assert "CONTROLLER://:9093" in settings["listeners"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    for key, value in BASE_SETTINGS.items():
        if key in LISTENER_SETTINGS:
            continue
        assert settings.get(key) == value, f"{key}: compose {settings.get(key)!r} != {value!r}"
    advertised = settings["advertised.listeners"].split(",")
    assert "HOST://127.0.0.1:9092" in advertised
    assert "PLAINTEXT://kafka:19092" in advertised


def test_topics_service_creates_every_worker_topic(compose: dict[str, Any]) -> None:
    topics = compose["services"]["topics"]
    script = " ".join(topics["command"])
    worker_env = compose["services"]["worker"]["environment"]
    for name in ("INPUT", "OUTPUT", "DLQ", "METRICS"):
        assert worker_env[f"PACKFLOW_{name}_TOPIC"] in script
    assert "--create" in script
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_service_builds_the_dockerfile_and_is_configured_by_env(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    assert worker["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    env = {k: str(v) for k, v in worker["environment"].items()}
    assert sorted(set(WORKER_ENV) - set(env)) == []
    kafka_env = compose["services"]["kafka"]["environment"]
    assert f"PLAINTEXT://{env['PACKFLOW_BOOTSTRAP_SERVERS']}" in kafka_env[
        "KAFKA_ADVERTISED_LISTENERS"
    ].split(",")
    project = env["PACKFLOW_PROJECT"].removeprefix("/app/")
    assert (ROOT / project / "packflow.yaml").is_file()
    project_yaml = yaml.safe_load((ROOT / project / "packflow.yaml").read_text())
    assert env["PACKFLOW_BACKEND"] == project_yaml["inference_backend"]
    port = env["PACKFLOW_HEALTH_PORT"]
    assert f"127.0.0.1:{port}:{port}" in worker["ports"]
    probe = " ".join(worker["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_dockerfile_installs_the_project_and_runs_the_worker(
    dockerfile: list[tuple[str, str]],
) -> None:
    base = next(args for keyword, args in dockerfile if keyword == "FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim", base)
    assert match is not None, base
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = int(pyproject["project"]["requires-python"].removeprefix(">=3."))
    assert int(match.group(1)) >= minimum

    copied = " ".join(args for keyword, args in dockerfile if keyword == "COPY")
    for needed in ("pyproject.toml", "README.md", "packflow", "worker", "examples"):
        assert needed in copied
    runs = [args for keyword, args in dockerfile if keyword == "RUN"]
    assert 'pip install ".[compression]"' in runs

    (entrypoint,) = [args for keyword, args in dockerfile if keyword == "ENTRYPOINT"]
    command = json.loads(entrypoint)
    assert command == ["packflow-worker"]
    assert "packflow-worker" in pyproject["project"]["scripts"]

    env = " ".join(args for keyword, args in dockerfile if keyword == "ENV")
    (exposed,) = [args for keyword, args in dockerfile if keyword == "EXPOSE"]
    assert f"PACKFLOW_HEALTH_PORT={exposed}" in env
    (health,) = [args for keyword, args in dockerfile if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{exposed}/healthz" in health
    assert any(keyword == "USER" and args != "root" for keyword, args in dockerfile)


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".kafka"} <= ignored
    assert not {"packflow", "worker", "examples", "pyproject.toml", "README.md"} & ignored


def test_cluster_compose_passes_real_settings_and_mounts_secrets_as_files() -> None:
    from worker.settings import WorkerSettings, env_name

    data = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    worker = data["services"]["worker"]
    env = {k: str(v) for k, v in worker["environment"].items()}
    known = {env_name(field) for field in WorkerSettings.model_fields}
    assert sorted(set(env) - known) == []
    assert sorted(set(WORKER_ENV) - set(env)) == []
    secrets = set(data["secrets"])
    assert set(worker["secrets"]) == secrets
    mounted = {k: v for k, v in env.items() if k.endswith("_FILE")}
    assert mounted, "a secret should come from a file"
    for value in mounted.values():
        assert value.removeprefix("/run/secrets/") in secrets
    assert not [k for k in env if k.endswith(("PASSWORD", "SECRET"))], "secrets only as files"
