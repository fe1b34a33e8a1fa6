"""Loaders: build an :class:`~packflow.InferenceBackend` from a file, a module or a project."""

from .base import InferenceBackendLoader
from .config import PackflowConfig, PackflowConfigError
from .local import LocalLoader
from .module import ModuleLoader

__all__ = [
    "InferenceBackendLoader",
    "LocalLoader",
    "ModuleLoader",
    "PackflowConfig",
    "PackflowConfigError",
]
