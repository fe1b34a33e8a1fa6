"""Start-up failures: one line on stderr, ``packflow-worker: error: ...``, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = ["--input-topic", "in", "--output-topic", "out", "--dlq-topic", "dlq"]


def run_worker(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PACKFLOW_")}
    clean_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("packflow-worker: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["--max-batch-size", "0"], {}, ["--max-batch-size", "PACKFLOW_MAX_BATCH_SIZE"]),
        ([], {"PACKFLOW_MAX_BATCH_SIZE": "0"}, ["PACKFLOW_MAX_BATCH_SIZE", "'0'"]),
        (["--loader", "zip"], {}, ["--loader", "'local' or 'module'"]),
        (["--backend-config", "{nope"], {}, ["--backend-config", "not valid JSON"]),
        (["--backend-config", "[1]"], {}, ["must be a JSON object"]),
        (["--backend", "no_colon"], {}, ["'module.path:Name'"]),
        (["--health-port", "99999"], {}, ["--health-port"]),
        (["--delivery", "twice"], {}, ["--delivery"]),
        (["--no-such-flag"], {}, ["--no-such-flag"]),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_option(args, env, fragments):
    result = run_worker(*REQUIRED, "--backend", "m:B", *args, env=env)
    assert_one_line_error(result, *fragments)


def test_a_missing_required_option_is_named_with_its_variable():
    result = run_worker("--output-topic", "out", "--dlq-topic", "dlq", "--backend", "m:B")
    assert_one_line_error(result, "missing setting --input-topic / PACKFLOW_INPUT_TOPIC")


def test_neither_backend_nor_project_is_an_error():
    assert_one_line_error(run_worker(*REQUIRED), "--backend", "--project")


def test_flags_win_over_environment_variables(tmp_path):
    env = {"PACKFLOW_MAX_BATCH_SIZE": "0"}
    result = run_worker(*REQUIRED, "--backend", "missing_mod:B", "--max-batch-size", "5", env=env)
    # the batch size is accepted (flag wins); the next failure is the backend load
    assert_one_line_error(result, "missing_mod:B", "failed to load")


def test_a_backend_that_cannot_be_imported_is_named(tmp_path):
    result = run_worker(*REQUIRED, "--backend", "nowhere:Backend", cwd=tmp_path)
    assert_one_line_error(result, "backend 'nowhere:Backend' (loader local) failed to load")


def test_a_backend_whose_initialize_raises_is_a_startup_error(tmp_path):
    (tmp_path / "broken.py").write_text(
        "from packflow import InferenceBackend\n\n"
        "class Backend(InferenceBackend):\n"
        "    def initialize(self):\n"
        "        raise RuntimeError('weights file is missing')\n\n"
        "    def execute(self, inputs):\n"
        "        return inputs\n"
    )
    result = run_worker(*REQUIRED, "--backend", "broken:Backend", cwd=tmp_path)
    assert_one_line_error(result, "broken:Backend", "weights file is missing")


IDENTITY = (
    "from packflow import InferenceBackend\n\n"
    "class Backend(InferenceBackend):\n"
    "    def execute(self, inputs):\n"
    "        return inputs\n"
)


def test_an_unreachable_bootstrap_server_fails_after_a_bounded_retry(tmp_path):
    (tmp_path / "ident.py").write_text(IDENTITY)
    result = run_worker(
        *REQUIRED,
        "--backend",
        "ident:Backend",
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--startup-timeout-seconds",
        "1.5",
        "--health-port",
        "0",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "Kafka could not be reached at bootstrap servers '127.0.0.1:1'")


def test_help_lists_every_option_with_its_environment_variable():
    result = run_worker("--help")
    assert result.returncode == 0
    for flag in ("--bootstrap-servers", "--max-in-flight-bytes", "--readiness-stall-seconds"):
        assert flag in result.stdout
    assert "PACKFLOW_SHUTDOWN_TIMEOUT_SECONDS" in result.stdout


def test_a_module_backend_that_is_missing_names_the_module_loader():
    result = run_worker(*REQUIRED, "--loader", "module", "--backend", "no_such_pkg.mod:Backend")
    assert_one_line_error(result, "backend 'no_such_pkg.mod:Backend' (loader module)")


def test_a_project_whose_backend_fails_to_initialize_is_named(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "packflow.yaml").write_text(
        "name: proj\nversion: 0.1.0\ninference_backend: inference:Backend\nloader: local\n"
    )
    (project / "inference.py").write_text(
        "from packflow import InferenceBackend\n\n"
        "class Backend(InferenceBackend):\n"
        "    def initialize(self):\n"
        "        raise FileNotFoundError('params.json')\n\n"
        "    def execute(self, inputs):\n"
        "        return inputs\n"
    )
    result = run_worker(*REQUIRED, "--project", str(project), cwd=tmp_path)
    assert_one_line_error(result, f"project '{project}'", "params.json")


def test_backend_config_reaches_the_backend_config(tmp_path):
    (tmp_path / "strict.py").write_text(
        "from packflow import BackendConfig, InferenceBackend\n\n"
        "class Config(BackendConfig):\n"
        "    threshold: float\n\n"
        "class Backend(InferenceBackend):\n"
        "    backend_config_model = Config\n\n"
        "    def initialize(self):\n"
        "        raise RuntimeError(f'threshold={self.config.threshold}')\n\n"
        "    def execute(self, inputs):\n"
        "        return inputs\n"
    )
    result = run_worker(
        *REQUIRED,
        "--backend",
        "strict:Backend",
        "--backend-config",
        '{"threshold": 2.5}',
        cwd=tmp_path,
    )
    assert_one_line_error(result, "threshold=2.5")
