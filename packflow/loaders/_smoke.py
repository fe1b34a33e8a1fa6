"""The smoke test of ``validate_for_export``: load and instantiate a project's backend."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from packflow.logger import logger as _logger

from .base import load_from_config
from .config import PackflowConfig


def smoke_load(project_dir: Path, config: PackflowConfig) -> str | None:
    """Load the backend like ``from_project`` does; return ``None`` or ``"<Type>: <message>"``.

    The project's ``env`` is applied for the duration of the test only, and anything the
    backend prints or logs meanwhile is discarded.
    """
    with _restored_environ(), _silenced():
        try:
            load_from_config(project_dir, config)
        except (Exception, SystemExit) as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def _restored_environ() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    _logger.disable("")  # loguru (the SDK's and the backend's lines), as packflow 0.4.1 does
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        _logger.enable("")
        logging.disable(previous)
