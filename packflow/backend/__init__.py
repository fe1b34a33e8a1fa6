"""The inference backend: base class, configuration, preprocessors, metrics and validation."""

from packflow.backend import base, configuration, metrics, preprocessors, validation
from packflow.backend.base import InferenceBackend, RunResult
from packflow.backend.configuration import BackendConfig
from packflow.backend.metrics import ExecutionMetrics

__all__ = [
    "BackendConfig",
    "ExecutionMetrics",
    "InferenceBackend",
    "RunResult",
    "base",
    "configuration",
    "metrics",
    "preprocessors",
    "validation",
]
