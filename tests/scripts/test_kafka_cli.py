"""``scripts/kafka``: the lifecycle and each error path (one clear line, non-zero exit)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ._helpers import (
    KAFKA_SCRIPT,
    env_with_only_java,
    env_without_java,
    error_lines,
    pid_alive,
    run_cli,
)

pytestmark = pytest.mark.kafka

ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")


def test_lifecycle_start_status_logs_stop_without_maven_once_jars_are_cached(
    tmp_path: Path,
) -> None:
    # Jars are cached by the session broker or an earlier run; PATH without mvn proves
    # the start is offline.
    state = str(tmp_path / "broker")
    env = env_with_only_java(tmp_path)
    started = run_cli("--state-dir", state, "start", env=env)
    try:
        assert started.returncode == 0, started.stderr
        bootstrap = started.stdout.splitlines()[-1]
        assert ADDRESS.match(bootstrap)
        pid = int((tmp_path / "broker" / "broker.pid").read_text())
        assert pid_alive(pid)

        status = run_cli("--state-dir", state, "status", env=env)
        assert (status.returncode, status.stdout.strip()) == (0, bootstrap)

        again = run_cli("--state-dir", state, "start", env=env)
        assert again.returncode == 1
        assert again.stdout == ""
        assert error_lines(again) == [
            f"kafka: error: a Kafka broker is already running at {bootstrap} "
            f"(pid {pid}, state dir {tmp_path / 'broker'}); stop it first"
        ]

        logs = run_cli("--state-dir", state, "logs", "-n", "5", env=env)
        assert logs.returncode == 0
        assert len(logs.stdout.splitlines()) == 5
        no_lines = run_cli("--state-dir", state, "logs", "-n", "0", env=env)
        assert (no_lines.returncode, no_lines.stdout) == (0, "")
        full_log = (tmp_path / "broker" / "broker.log").read_text()
        assert "Kafka Server started" in full_log
    finally:
        stopped = run_cli("--state-dir", state, "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(pid)

    after = run_cli("--state-dir", state, "status", env=env)
    assert (after.returncode, after.stdout) == (1, "")
    stop_again = run_cli("--state-dir", state, "stop", env=env)
    assert stop_again.returncode == 1
    assert error_lines(stop_again) == [
        f"kafka: error: no Kafka broker is running for {tmp_path / 'broker'}"
    ]


def test_stop_when_none_ever_ran_fails_with_one_line(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "nothing"), "stop")
    assert result.returncode == 1
    assert len(error_lines(result)) == 1
    assert "no Kafka broker is running" in result.stderr


def test_start_on_a_port_in_use_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--state-dir", str(tmp_path / "b"), "start", "--port", str(port))
    assert result.returncode == 1
    assert error_lines(result) == [
        f"kafka: error: port 127.0.0.1:{port} is already in use: choose another one "
        "or leave the port out to pick a free one"
    ]
    assert not (tmp_path / "b" / "broker.pid").exists()


def test_start_without_java_on_path_fails_with_one_line(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", env=env_without_java(tmp_path))
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("kafka: error: no Java runtime found: install a JDK 17+")


def test_start_with_java_home_lacking_java_fails_with_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, JAVA_HOME=str(tmp_path))
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", env=env)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith(f"kafka: error: JAVA_HOME={tmp_path} has no bin/java")


def test_failed_download_fails_with_one_line_naming_the_cause(tmp_path: Path) -> None:
    # An empty jar cache and an empty Maven repository in offline mode: Maven must fail.
    env = dict(
        os.environ,
        PACKFLOW_KAFKA_LIBS_DIR=str(tmp_path / "libs"),
        MAVEN_OPTS=f"-Dmaven.repo.local={tmp_path / 'm2'}",
    )
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", "--offline", env=env)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("kafka: error: could not download Apache Kafka ")
    assert "offline mode" in line
    assert f"full log: {tmp_path / 'libs'}" in line
    assert not (tmp_path / "libs" / "4.4.0").exists()


def test_first_start_without_maven_fails_with_one_line(tmp_path: Path) -> None:
    env = env_with_only_java(tmp_path)
    env["PACKFLOW_KAFKA_LIBS_DIR"] = str(tmp_path / "libs")
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", env=env)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "Maven (mvn) is needed once to download Apache Kafka" in line


def test_bad_setting_is_rejected_with_one_line(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", "--set", "no-equals-sign")
    assert result.returncode == 1
    assert error_lines(result) == ["kafka: error: --set 'no-equals-sign' is not KEY=VALUE"]


def test_cli_needs_only_the_standard_library(tmp_path: Path) -> None:
    # -I -S: no site-packages, no user site, no PYTHONPATH; `status` imports every module.
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(KAFKA_SCRIPT), "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"kafka: not running (state dir {tmp_path})\n"


def test_a_setting_kafka_rejects_fails_with_kafkas_own_reason(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", "--set", "num.io.threads=abc")
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.endswith(
        "ConfigException: Invalid value abc for configuration num.io.threads: "
        "Not a number of type INT"
    )
    assert not (tmp_path / "b" / "broker.pid").exists()


def test_settings_that_scripts_kafka_manages_cannot_be_overridden(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "b"), "start", "--set", "log.dirs=/tmp/x")
    assert result.returncode == 1
    assert error_lines(result) == [
        "kafka: error: setting log.dirs is managed by scripts/kafka "
        "(use the state dir and port options instead)"
    ]


def test_fetch_downloads_once_then_answers_from_the_cache_without_maven(tmp_path: Path) -> None:
    env = dict(os.environ, PACKFLOW_KAFKA_LIBS_DIR=str(tmp_path / "libs"))
    first = run_cli("fetch", env=env)
    assert first.returncode == 0, first.stderr
    libs = Path(first.stdout.splitlines()[-1])
    assert libs == tmp_path / "libs" / libs.name
    assert (libs / f"kafka_2.13-{libs.name}.jar").is_file()
    assert "downloading Apache Kafka" in first.stderr

    no_maven = env_with_only_java(tmp_path)
    no_maven["PACKFLOW_KAFKA_LIBS_DIR"] = str(tmp_path / "libs")
    second = run_cli("fetch", env=no_maven)
    assert (second.returncode, second.stdout, second.stderr) == (0, f"{libs}\n", "")


def test_two_concurrent_first_fetches_share_one_download(tmp_path: Path) -> None:
    env = dict(os.environ, PACKFLOW_KAFKA_LIBS_DIR=str(tmp_path / "libs"))
    command = [sys.executable, str(KAFKA_SCRIPT), "fetch"]
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(run.communicate(timeout=170), run.returncode) for run in runs]
    assert [code for _, code in results] == [0, 0], results
    assert len({out for (out, _), _ in results}) == 1
    downloads = sum("downloading Apache Kafka" in err for (_, err), _ in results)
    assert downloads == 1
    assert sorted(p.name for p in (tmp_path / "libs").iterdir() if p.is_dir()) == [
        Path(results[0][0][0].strip()).name
    ]
