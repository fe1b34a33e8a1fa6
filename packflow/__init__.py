"""packflow: write an InferenceBackend, get config, preprocessing, timing and validation."""

from importlib.metadata import version as _version

from packflow.backend import BackendConfig, InferenceBackend, RunResult
from packflow.project import PackflowProject

__version__ = _version("packflow")

__all__ = ["BackendConfig", "InferenceBackend", "PackflowProject", "RunResult", "__version__"]
