"""Fixtures shared by the SDK tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from packflow.logger import logger


@pytest.fixture
def restore_import_state(tmp_path: Path) -> Iterator[None]:
    """Undo what loading a project under ``tmp_path`` does to ``sys.path`` and ``sys.modules``.

    Loaders put project folders on ``sys.path`` and import their modules; after the test the
    path is restored and the modules imported from ``tmp_path`` (or under the local loader's
    ``_packflow_local_`` prefix) are forgotten.
    """
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    yield
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        source = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith("_packflow_local_") or source.startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's ``caplog``, also fed the SDK's loguru lines (loguru's documented recipe)."""
    handler_id = logger.add(caplog.handler, level=0, format="{message}")
    yield caplog
    logger.remove(handler_id)
