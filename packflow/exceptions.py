"""Exceptions raised by packflow.

Every exception derives from :class:`PackflowError`, so callers can catch the whole family at
once; the published 0.4.x names are kept so existing ``except`` clauses still match::

    PackflowError
    ├── InferenceBackendInitializationError   initialize() failed
    ├── InferenceBackendRuntimeError          a step failed, or bad input/output shape
    ├── InferenceBackendValidationError       validate()/check_io() found a contract violation
    ├── InferenceBackendLoadError             a loader could not produce an InferenceBackend
    ├── PreprocessorInitError                 preprocessor options are inconsistent
    ├── PreprocessorRuntimeError              a record could not be preprocessed
    ├── RetryableError                        a transient failure: the worker retries it
    └── UnknownPreprocessorError              kept for compatibility; never raised
"""

from __future__ import annotations

__all__ = [
    "InferenceBackendInitializationError",
    "InferenceBackendLoadError",
    "InferenceBackendRuntimeError",
    "InferenceBackendValidationError",
    "PackflowError",
    "PreprocessorInitError",
    "PreprocessorRuntimeError",
    "RetryableError",
    "UnknownPreprocessorError",
]


class PackflowError(Exception):
    """Root of every exception packflow raises."""


class InferenceBackendInitializationError(PackflowError):
    """``initialize()`` raised; the original exception is chained as ``__cause__``."""


class InferenceBackendRuntimeError(PackflowError):
    """A call to a backend failed.

    ``step`` names the pipeline step that failed (``"preprocess"``, ``"transform_inputs"``,
    ``"execute"``, ``"transform_outputs"``), or is ``None`` when the failure is about the call's
    input or output shape rather than a step. ``record_index`` is set when the failure can be
    pinned to one input record.
    """

    def __init__(
        self, message: str, *, step: str | None = None, record_index: int | None = None
    ) -> None:
        super().__init__(message)
        self.step = step
        self.record_index = record_index


class InferenceBackendValidationError(PackflowError):
    """``validate()`` / ``check_io()`` found a violation of the input/output contract."""


class InferenceBackendLoadError(PackflowError):
    """A loader could not import or build an :class:`~packflow.InferenceBackend`."""


class PreprocessorInitError(PackflowError):
    """Preprocessor options are inconsistent (e.g. ``numpy`` without ``feature_names``)."""


class PreprocessorRuntimeError(PackflowError):
    """A record could not be preprocessed; the message names the record index and field.

    ``record_index`` (the failing record's position in the batch) and ``field`` (the field
    path involved) are set when the failure can be pinned to them, else ``None``.
    """

    def __init__(
        self, message: str, *, record_index: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.record_index = record_index
        self.field = field


class RetryableError(PackflowError):
    """Raise it (or raise from it) in a backend for a failure that should pass: a dependency
    down for a while, a timeout, a busy GPU.

    The worker retries the call with exponential backoff instead of treating the records as
    poison, and pauses its partitions while the failures last (README "Outages and retries").
    A standalone call of the backend raises it like any other error.
    """


class UnknownPreprocessorError(PackflowError):
    """Kept for compatibility with packflow 0.4.x, which defines but never raises it."""
