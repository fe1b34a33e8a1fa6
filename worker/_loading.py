"""Loading the backend named by the settings, with start-up errors as one line."""

from __future__ import annotations

from typing import Any

from packflow.loaders import InferenceBackendLoader
from worker.errors import StartupError
from worker.settings import WorkerSettings

__all__ = ["load_backend"]


def load_backend(settings: WorkerSettings) -> Any:
    """Load and initialize the backend.

    Any failure (import, not an InferenceBackend, config validation, ``initialize()``) is a
    :class:`StartupError` naming the backend, the loader and the cause.
    """
    kwargs = dict(settings.backend_config)
    if settings.project is not None:
        where = f"project {str(settings.project)!r}"
    else:
        where = f"backend {settings.backend_path!r} (loader {settings.loader})"
    try:
        if settings.project is not None:
            backend = InferenceBackendLoader.from_project(settings.project, **kwargs)
        else:
            loader = InferenceBackendLoader.named(settings.loader, settings.backend_path)
            backend = loader.load(**kwargs)
    except Exception as exc:
        detail = " ".join(str(exc).split()) or "no message"
        cause = exc.__cause__
        if cause is not None and str(cause) not in detail:
            detail += f" (caused by {type(cause).__name__}: {' '.join(str(cause).split())})"
        raise StartupError(f"{where} failed to load: {type(exc).__name__}: {detail}") from exc
    if not callable(getattr(backend, "run", None)):
        raise StartupError(f"{where} loaded {type(backend).__name__}, which has no run() method")
    return backend
