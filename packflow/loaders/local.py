"""``LocalLoader``: load a backend from a ``.py`` file in a project folder."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from ._import import import_project_module, module_file, put_on_sys_path
from .base import InferenceBackendLoader
from .utils import inference_backend_parts

__all__ = ["LocalLoader"]


class LocalLoader(InferenceBackendLoader):
    """Load ``"module.path:Name"`` from ``<base_dir>/module/path.py``.

    ``base_dir`` defaults to the current directory (resolved when the loader is built).
    Dotted module paths map to sub-folders. Each project folder gets its own namespace in
    ``sys.modules``, so two projects that both have an ``inference.py`` load their own; the
    folder is also put on ``sys.path`` so the module's absolute imports of sibling files work
    (those siblings are ordinary top-level modules, shared by name like any import).

    Example:
        >>> backend = LocalLoader("inference:Backend", base_dir="my-project").load()
    """

    loader_name = "local"

    def __init__(self, path: str, base_dir: str | Path = ".") -> None:
        super().__init__(path)
        self.base_dir = Path(base_dir).resolve()

    @classmethod
    def for_project(cls, path: str, base_dir: str | Path | None) -> LocalLoader:
        """This loader for ``path`` under ``base_dir`` (default: the current directory)."""
        return cls(path, base_dir="." if base_dir is None else base_dir)

    def describe_source(self) -> str:
        return f"from {self.base_dir}"

    @staticmethod
    def _dot_notation_to_pypath(path: str, base_dir: str | Path = ".") -> str:
        """Absolute file path of the dotted module ``path``: ``"a.b"`` -> ``<base_dir>/a/b.py``."""
        return str(module_file(Path(base_dir).resolve(), path))

    @staticmethod
    def _import_module_from_source(path: str | Path) -> ModuleType:
        """Import the Python file ``path`` (``FileNotFoundError`` if it does not exist)."""
        source = Path(path).resolve(strict=True)
        return import_project_module(source.parent, source.stem)

    def load_backend_module(self) -> Any:
        module_name, attribute = inference_backend_parts(self.path)
        put_on_sys_path(self.base_dir)
        module = import_project_module(self.base_dir, module_name)
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise AttributeError(
                f'Attribute "{attribute}" not found in module "{module_name}" '
                f"({module_file(self.base_dir, module_name)})."
            ) from None
