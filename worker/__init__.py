"""packflow worker: runs an InferenceBackend as a Kafka streaming service."""

from worker.app import Worker
from worker.errors import (
    DecodeError,
    KafkaFatalError,
    OutputEncodeError,
    PublishError,
    SettingsError,
    StartupError,
    WorkerError,
)
from worker.settings import WorkerSettings, load_settings

__all__ = [
    "DecodeError",
    "KafkaFatalError",
    "OutputEncodeError",
    "PublishError",
    "SettingsError",
    "StartupError",
    "Worker",
    "WorkerError",
    "WorkerSettings",
    "load_settings",
]
