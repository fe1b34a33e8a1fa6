"""WorkerSettings: defaults, precedence (flags over env), validation messages."""

from __future__ import annotations

import pytest

from worker.errors import SettingsError
from worker.settings import WorkerSettings, flag_name, load_settings

BASE = {"input_topic": "in", "output_topic": "out", "dlq_topic": "dlq", "backend": "m:B"}


@pytest.fixture(autouse=True)
def _no_packflow_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("PACKFLOW_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_documented_contract():
    s = load_settings(**BASE)
    assert s.bootstrap_servers == "localhost:9092"
    assert s.metrics_topic is None
    assert s.group_id == "packflow-worker"
    assert s.loader == "local"
    assert s.backend_config == {}
    assert (s.max_batch_size, s.max_batch_wait_ms) == (1000, 20)
    assert s.delivery == "at-least-once"
    assert s.executor_threads == 1
    assert s.health_port == 8080
    assert (s.max_in_flight_records, s.max_in_flight_bytes) == (10000, 33554432)
    assert s.auto_offset_reset == "earliest"
    assert (s.readiness_stall_seconds, s.shutdown_timeout_seconds) == (30, 30)
    assert s.log_level == "INFO"
    assert s.event_loop == "auto"
    host_pid = s.worker_id.rsplit("-", 1)
    assert host_pid[1].isdigit()


def test_environment_variables_are_read_with_the_packflow_prefix(monkeypatch):
    monkeypatch.setenv("PACKFLOW_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("PACKFLOW_BACKEND_CONFIG", '{"threshold": 3}')
    monkeypatch.setenv("PACKFLOW_DELIVERY", "AT-LEAST-ONCE")
    s = load_settings(**BASE)
    assert s.max_batch_size == 64
    assert s.backend_config == {"threshold": 3}
    assert s.delivery == "at-least-once"


def test_flags_win_over_environment_variables(monkeypatch):
    monkeypatch.setenv("PACKFLOW_MAX_BATCH_SIZE", "64")
    assert load_settings(**BASE, max_batch_size="8").max_batch_size == 8


def test_settings_are_frozen():
    s = load_settings(**BASE)
    with pytest.raises(Exception, match="frozen"):
        s.max_batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"max_batch_size": "0"}, "invalid setting --max-batch-size / PACKFLOW_MAX_BATCH_SIZE"),
        ({"loader": "zip"}, "'local' or 'module'"),
        ({"backend_config": "[]"}, "must be a JSON object"),
        ({"backend_config": "{x"}, "not valid JSON"),
        ({"backend": "nocolon"}, "is not of the form 'module.path:Name'"),
        ({"backend": None}, "give --backend (module.path:Name) or --project"),
        ({"project": "/no/such/dir"}, "'/no/such/dir' is not a directory"),
        ({"output_topic": "in"}, "must all differ"),
        ({"executor_threads": "0"}, "--executor-threads"),
        ({"input_topic": "  "}, "must not be empty"),
        ({"session_timeout_ms": "2000", "heartbeat_interval_ms": "3000"}, "heartbeat"),
        ({"event_loop": "trio"}, "invalid setting --event-loop / PACKFLOW_EVENT_LOOP"),
    ],
)
def test_invalid_values_raise_one_settings_error_naming_the_option(override, message):
    values = {**BASE, **override}
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(SettingsError) as info:
        load_settings(**values)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_required_option_names_flag_and_variable():
    with pytest.raises(SettingsError, match="missing setting --dlq-topic / PACKFLOW_DLQ_TOPIC"):
        load_settings(input_topic="a", output_topic="b", backend="m:B")


def test_a_project_alone_defaults_the_backend_path(tmp_path):
    s = load_settings(input_topic="a", output_topic="b", dlq_topic="c", project=str(tmp_path))
    assert s.backend is None
    assert s.backend_path == "inference:Backend"


def test_every_field_has_a_flag_and_an_environment_variable():
    from click.testing import CliRunner

    from worker.cli import _command

    help_text = " ".join(CliRunner().invoke(_command, ["--help"]).output.split())
    for name in WorkerSettings.model_fields:
        assert flag_name(name) in help_text
        assert f"PACKFLOW_{name.upper()}" in help_text
    assert flag_name("kafka_options") == "--kafka-option"
