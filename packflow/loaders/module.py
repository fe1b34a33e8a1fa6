"""``ModuleLoader``: load a backend from an installed (importable) module."""

from __future__ import annotations

import importlib
from typing import Any

from packflow.exceptions import InferenceBackendLoadError

from .base import InferenceBackendLoader
from .utils import inference_backend_parts

__all__ = ["ModuleLoader"]


class ModuleLoader(InferenceBackendLoader):
    """Load ``"package.module:Name"`` with ``importlib.import_module``.

    A ``ModuleNotFoundError`` raised from inside the module (one of its own imports) is
    reported as it is, not as "module not found".

    Example:
        >>> backend = ModuleLoader("my_models.scorer:Scorer").load(verbose=True)
    """

    loader_name = "module"

    def describe_source(self) -> str:
        return "from the installed modules"

    def load_backend_module(self) -> Any:
        module_name, attribute = inference_backend_parts(self.path)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
                raise InferenceBackendLoadError(
                    f'Could not import module "{module_name}": no module named {exc.name!r} '
                    "is installed or on sys.path."
                ) from exc
            raise
        backend = getattr(module, attribute, None)
        if backend is None:
            raise InferenceBackendLoadError(
                f'Backend with name "{attribute}" does not exist in loaded module '
                f'"{module_name}" ({getattr(module, "__file__", None) or "no file"}).'
            )
        return backend
