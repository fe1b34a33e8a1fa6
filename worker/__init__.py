"""packflow worker: runs an InferenceBackend as a Kafka streaming service."""

from worker.app import Worker
from worker.delivery import DeliveryStrategy, Settled
from worker.errors import (
    DecodeError,
    KafkaFatalError,
    OutputEncodeError,
    PublishError,
    SettingsError,
    StartupError,
    WorkerError,
)
from worker.pipeline import Batch, Message, source_of
from worker.settings import WorkerSettings, load_settings

__all__ = [
    "Batch",
    "DecodeError",
    "DeliveryStrategy",
    "KafkaFatalError",
    "Message",
    "OutputEncodeError",
    "PublishError",
    "SettingsError",
    "Settled",
    "StartupError",
    "Worker",
    "WorkerError",
    "WorkerSettings",
    "load_settings",
    "source_of",
]
