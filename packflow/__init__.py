"""packflow: write an InferenceBackend, get config, preprocessing, timing and validation."""

from importlib.metadata import version as _version

__version__ = _version("packflow")

__all__ = ["__version__"]
