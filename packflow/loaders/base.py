"""``InferenceBackendLoader``: turn a ``"module:Name"`` reference into a ready backend."""

from __future__ import annotations

import inspect
import reprlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

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

    A subclass that sets ``loader_name`` is the loader of that name in ``packflow.yaml``
    (``loader:``) and the worker's ``--loader`` (:meth:`named`).
    """

    loader_name: ClassVar[str] = ""
    _by_name: ClassVar[dict[str, type[InferenceBackendLoader]]] = {}

    def __init__(self, path: str) -> None:
        self.path = path

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.loader_name:
            InferenceBackendLoader._by_name[cls.loader_name] = cls

    @classmethod
    def named(
        cls, loader: str, path: str, *, base_dir: str | Path | None = None
    ) -> InferenceBackendLoader:
        """The loader called ``loader`` (``"local"``, ``"module"``) for ``path``.

        ``base_dir`` is the project folder: where ``local`` looks (default: the current
        directory), and what ``module`` puts on ``sys.path`` first.

        Raises:
            InferenceBackendLoadError: no loader has that name (the message lists them).
        """
        found = InferenceBackendLoader._by_name.get(loader)
        if found is None:
            known = ", ".join(sorted(InferenceBackendLoader._by_name))
            raise InferenceBackendLoadError(f"unknown loader {loader!r}; known loaders: {known}")
        return found.for_project(path, base_dir)

    @classmethod
    def for_project(cls, path: str, base_dir: str | Path | None) -> InferenceBackendLoader:
        """This loader for ``path`` in the project folder ``base_dir`` (see :meth:`named`)."""
        if base_dir is not None:
            put_on_sys_path(Path(base_dir).resolve())
        return cls(path)

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
    apply_env_vars(config)
    loader = InferenceBackendLoader.named(
        config.loader, config.inference_backend, base_dir=project_dir
    )
    return loader.load(**{**config.backend_config, **backend_kwargs})


def _describe(obj: Any) -> str:
    if inspect.isclass(obj):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"the function {getattr(obj, '__qualname__', obj)}()"
    if inspect.ismodule(obj):
        return f"the module {obj.__name__}"
    return f"{with_article(type(obj).__name__)} ({reprlib.repr(obj)})"
