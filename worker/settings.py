"""Worker settings: every option is a command-line flag and a ``PACKFLOW_<OPTION>`` variable.

:class:`WorkerSettings` is frozen and validated once at start-up. Flags win over environment
variables (the CLI passes flags as init arguments, which pydantic-settings ranks first).
:func:`load_settings` turns pydantic's validation errors into one :class:`SettingsError` line
naming the flag and the variable.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from packflow.loaders.utils import inference_backend_parts
from worker._setting_names import (
    ENV_PREFIX,
    build_settings,
    env_name,
    flag_name,
    json_object,
)
from worker.connection_settings import SECRET_FIELDS, ConnectionSettings
from worker.event_loop import EventLoopChoice, uvloop_installed

__all__ = ["ENV_PREFIX", "WorkerSettings", "env_name", "flag_name", "load_settings"]

Delivery = Literal["at-least-once", "exactly-once"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(ConnectionSettings):
    """Validated, immutable configuration of one worker process.

    The connection settings (:class:`~worker.connection_settings.ConnectionSettings`) come
    first, then the documented contract (README "Running the worker"); the Kafka tuning block
    below it has sensible defaults and is mostly useful in tests and benchmarks.
    """

    input_topic: str
    output_topic: str
    dlq_topic: str
    metrics_topic: str | None = None
    group_id: str = "packflow-worker"
    backend: str | None = None
    loader: Literal["local", "module"] = "local"
    project: Path | None = None
    backend_config: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    max_batch_size: int = Field(default=1000, ge=1)
    max_batch_wait_ms: int = Field(default=20, ge=0)
    delivery: Delivery = "at-least-once"
    executor_threads: int = Field(default=1, ge=1, le=256)
    health_port: int = Field(default=8080, ge=0, le=65535)
    max_in_flight_records: int = Field(default=10_000, ge=1)
    max_in_flight_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    worker_id: str = Field(default_factory=_default_worker_id, min_length=1)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    readiness_stall_seconds: float = Field(default=30.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0)
    log_level: LogLevel = "INFO"
    event_loop: EventLoopChoice = "auto"

    # Outages: retries of transient backend failures, the breaker, the call timeout.
    retry_on: Annotated[tuple[str, ...], NoDecode] = ()
    retry_max_attempts: int = Field(default=3, ge=1, le=100)
    retry_initial_backoff_ms: int = Field(default=100, ge=1)
    retry_max_backoff_ms: int = Field(default=2_000, ge=1)
    breaker_failure_ratio: float = Field(default=0.9, gt=0, le=1)
    breaker_min_messages: int = Field(default=10, ge=1)
    breaker_max_backoff_ms: int = Field(default=30_000, ge=1)
    backend_timeout_seconds: float | None = Field(default=None, gt=0)
    backend_timeout_grace_seconds: float = Field(default=60.0, gt=0)

    # Kafka client tuning.
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    rebalance_timeout_ms: int = Field(default=60_000, ge=1000)
    fetch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_partition_fetch_bytes: int = Field(default=1024 * 1024, ge=1024)
    fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    startup_timeout_seconds: float = Field(default=15.0, gt=0)

    @field_validator(
        "log_level", "delivery", "loader", "auto_offset_reset", "event_loop", mode="before"
    )
    @classmethod
    def _normalise_choice(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("event_loop")
    @classmethod
    def _check_event_loop(cls, value: EventLoopChoice) -> EventLoopChoice:
        if value == "uvloop" and not uvloop_installed():
            raise ValueError("uvloop is not installed (pip install uvloop); use auto or asyncio")
        return value

    @field_validator("backend_config", mode="before")
    @classmethod
    def _parse_backend_config(cls, value: Any) -> Any:
        value = json_object(value)
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, got {type(value).__name__}")
        return value

    @field_validator("retry_on", mode="before")
    @classmethod
    def _parse_retry_on(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            names = tuple(str(v).strip() for v in value if str(v).strip())
            bad = [n for n in names if not n.isidentifier()]
            if bad:
                raise ValueError(f"{bad[0]!r} is not an exception class name")
            return names
        return value

    @field_validator("backend")
    @classmethod
    def _check_backend_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            inference_backend_parts(value)  # the SDK's own rule, as its loaders apply it
        except ValueError:
            raise ValueError(f"{value!r} is not of the form 'module.path:Name'") from None
        return value

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value

    @field_validator("input_topic", "output_topic", "dlq_topic", "group_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _check_consistency(self) -> WorkerSettings:
        if self.backend is None and self.project is None:
            raise ValueError("give --backend (module.path:Name) or --project (a packflow project)")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        if len({self.input_topic, self.output_topic, self.dlq_topic}) < 3:
            raise ValueError("input, output and dead-letter topics must all differ")
        if self.retry_max_backoff_ms < self.retry_initial_backoff_ms:
            raise ValueError("retry_max_backoff_ms must be at least retry_initial_backoff_ms")
        return self

    @property
    def backend_path(self) -> str:
        """The ``module:Name`` the worker loads (``inference:Backend`` for a project)."""
        return self.backend or "inference:Backend"


def load_settings(**flags: Any) -> WorkerSettings:
    """Build the settings from ``flags`` (given options only) and the environment.

    Raises :class:`SettingsError` with one line naming the offending option.
    """
    return build_settings(WorkerSettings, SECRET_FIELDS, **flags)
