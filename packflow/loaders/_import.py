"""Import a project's module files without clashing with other projects in ``sys.modules``.

Each project folder becomes a synthetic package named ``_packflow_local_<hash of the folder>``
whose ``__path__`` is the folder, so ``inference.py`` of ``/a`` and of ``/b`` load as two
distinct modules, relative imports (``from .helpers import f``) resolve inside their own
project, and classes keep a ``__module__`` that is importable (pickling, dataclasses).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path, PurePosixPath
from types import ModuleType

_ROOT_PREFIX = "_packflow_local_"


def project_package_name(base_dir: Path) -> str:
    """Name of the synthetic package standing for ``base_dir`` (an absolute path)."""
    digest = hashlib.sha256(str(base_dir).encode()).hexdigest()[:12]
    return f"{_ROOT_PREFIX}{digest}"


def relative_module_file(module: str) -> PurePosixPath:
    """Source file of the dotted ``module`` relative to its project: ``a.b`` -> ``a/b.py``."""
    return PurePosixPath(*module.split(".")).with_suffix(".py")


def module_file(base_dir: Path, module: str) -> Path:
    """Source file of the dotted ``module`` in ``base_dir``: ``a.b`` -> ``<base_dir>/a/b.py``."""
    return base_dir / relative_module_file(module)


def put_on_sys_path(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` unless it is on it already."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def import_project_module(base_dir: Path, module: str) -> ModuleType:
    """Execute ``<base_dir>/<module as path>.py`` afresh and return the module.

    The module file is executed on every call (as packflow 0.4.x does), while the packages
    above it and whatever it imports stay cached as usual.

    Raises:
        FileNotFoundError: the module file does not exist; the message names it.
        Exception: whatever executing the module raises, unchanged.
    """
    path = module_file(base_dir, module)
    if not path.is_file():
        raise FileNotFoundError(
            f'Module "{module}" not found: no file {path.relative_to(base_dir).as_posix()} '
            f"in {base_dir}"
        )
    root = _ensure_root_package(base_dir)
    qualified = f"{root}.{module}"
    parent_name, _, leaf = qualified.rpartition(".")
    parent = importlib.import_module(parent_name)

    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot import Python source file {path}")
    loaded = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(qualified)
    sys.modules[qualified] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        if previous is None:
            sys.modules.pop(qualified, None)
        else:
            sys.modules[qualified] = previous
        raise
    setattr(parent, leaf, loaded)
    return loaded


def _ensure_root_package(base_dir: Path) -> str:
    name = project_package_name(base_dir)
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(base_dir)]
        package = importlib.util.module_from_spec(spec)
        package.__doc__ = f"packflow project modules loaded from {base_dir}"
        sys.modules[name] = package
    return name
