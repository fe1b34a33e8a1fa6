"""``InferenceBackendLoader``: turn a ``"module:Name"`` reference into a ready backend."""

from __future__ import annotations

import inspect
import reprlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from packflow.backend import InferenceBackend
from packflow.exceptions import InferenceBackendLoadError
from packflow.logger import logger as _logger
from packflow.utils._grammar import with_article

from ._import import put_on_sys_path
from .config import PackflowConfig, apply_env_vars

__all__ = ["InferenceBackendLoader"]


class InferenceBackendLoader(ABC):
    """Base of the loaders: subclasses find the object, :meth:`load` checks and builds it.

    Args:
        path: the backend reference, ``"module.path:Name"``.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    @abstractmethod
    def load_backend_module(self) -> Any:
        """Return the object ``self.path`` names (a class or an instance), unchecked.

        Errors raised here are wrapped in :class:`InferenceBackendLoadError` by :meth:`load`.
        """

    def describe_source(self) -> str:
        """Where this loader looks, for error messages (e.g. ``"from /srv/project"``)."""
        return ""

    def load(self, **backend_kwargs: Any) -> InferenceBackend:
        """Load the referenced backend and return an instance ready to run.

        A class is instantiated with ``backend_kwargs`` (its own errors, such as
        ``InferenceBackendInitializationError`` or a config ``ValidationError``, propagate
        unchanged); an instance is returned as it is.

        Raises:
            InferenceBackendLoadError: the reference is malformed, its module cannot be
                imported (the original error, e.g. a ``ModuleNotFoundError`` raised inside
                the user's module, is quoted and chained), the attribute is missing, or the
                object is not an ``InferenceBackend`` subclass or instance.
        """
        try:
            backend = self.load_backend_module()
        except Exception as exc:
            where = " ".join(filter(None, [f'"{self.path}"', self.describe_source()]))
            detail = str(exc)
            if not isinstance(exc, InferenceBackendLoadError):
                detail = f"{type(exc).__name__}: {detail}"
            raise InferenceBackendLoadError(
                f"Unable to load inference backend module with error: {detail} "
                f"(while loading {where})"
            ) from exc

        if isinstance(backend, type) and issubclass(backend, InferenceBackend):
            return backend(**backend_kwargs)
        if isinstance(backend, InferenceBackend):
            if backend_kwargs:
                _logger.warning(
                    "{path!r} names an InferenceBackend instance; keyword arguments {ignored} "
                    "are ignored",
                    event="backend_kwargs_ignored",
                    path=self.path,
                    ignored=sorted(backend_kwargs),
                )
            return backend
        raise InferenceBackendLoadError(
            "Loaded object does not appear to be a packflow InferenceBackend: "
            f'"{self.path}" is {_describe(backend)}; expected a subclass or an instance of '
            "packflow.InferenceBackend."
        )

    @classmethod
    def from_project(
        cls, project_path: str | Path = ".", **backend_kwargs: Any
    ) -> InferenceBackend:
        """Load the backend of a packflow project folder, from any working directory.

        Reads ``<project_path>/packflow.yaml``, sets its ``env`` variables (warning when one
        overrides a different existing value), then loads ``inference_backend`` with the
        loader the file names (``local``: relative to the project folder; ``module``: an
        importable module, with the project folder on ``sys.path``). ``backend_config``
        from the file supplies keyword arguments; explicit ``backend_kwargs`` win.

        Raises:
            FileNotFoundError: the folder has no ``packflow.yaml``.
            PackflowConfigError: ``packflow.yaml`` is invalid (the message names the field).
            InferenceBackendLoadError: as :meth:`load`.
        """
        project_dir = Path(project_path).resolve()
        config = PackflowConfig.from_project_path(project_dir)
        return load_from_config(project_dir, config, **backend_kwargs)


def load_from_config(
    project_dir: Path, config: PackflowConfig, **backend_kwargs: Any
) -> InferenceBackend:
    """Apply ``config.env`` and load ``config.inference_backend`` from ``project_dir``."""
    from .local import LocalLoader
    from .module import ModuleLoader

    apply_env_vars(config)
    loader: InferenceBackendLoader
    if config.loader == "local":
        loader = LocalLoader(config.inference_backend, base_dir=project_dir)
    else:
        put_on_sys_path(project_dir)
        loader = ModuleLoader(config.inference_backend)
    return loader.load(**{**config.backend_config, **backend_kwargs})


def _describe(obj: Any) -> str:
    if inspect.isclass(obj):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"the function {getattr(obj, '__qualname__', obj)}()"
    if inspect.ismodule(obj):
        return f"the module {obj.__name__}"
    return f"{with_article(type(obj).__name__)} ({reprlib.repr(obj)})"
