"""packflow's logger: loguru's global ``logger``, as in packflow 0.4.x.

``from packflow.logger import logger`` and a backend's ``self.logger`` are loguru's logger
(``self.logger`` is bound with ``backend=<class name>``), so every loguru call 0.4.x code
makes works: ``logger.info("loaded {} in {:.1f} s", name, secs)``, ``add(sink, level=...,
format=...)`` returning an id, ``remove``, ``enable``/``disable``, ``bind``, ``opt``,
``catch``, ``level``, ``configure``.

Where the lines go, as in 0.4.x: importing packflow replaces loguru's default handler
(stderr, every level) with a stderr handler at ``$PACKFLOW_LOG_LEVEL`` (default ``INFO``).
Handlers you added are left alone, and if loguru's default handler is already gone (you
configured loguru before importing packflow), packflow adds nothing. The SDK never writes
to stdout. The Kafka worker routes these lines into its JSON log stream instead.

The SDK's own lines carry an ``event`` field (``backend_initialized``, ``backend_call``...)
and their values as fields in ``record["extra"]``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["LOG_LEVEL_ENV_VAR_NAME", "get_logger", "level_from_env", "logger"]

LOG_LEVEL_ENV_VAR_NAME = "PACKFLOW_LOG_LEVEL"
_DEFAULT_LEVEL = "INFO"
_LOGURU_DEFAULT_HANDLER_ID = 0


def get_logger() -> Logger:
    """Loguru's global logger (the packflow 0.4.x function)."""
    return logger


def level_from_env() -> str | int:
    """``$PACKFLOW_LOG_LEVEL`` as a loguru level: a name (any case) or a number; ``INFO`` if unset.

    An unknown name falls back to ``INFO``.
    """
    raw = os.environ.get(LOG_LEVEL_ENV_VAR_NAME, "").strip()
    if not raw:
        return _DEFAULT_LEVEL
    if raw.isdigit():
        return int(raw)
    try:
        logger.level(raw.upper())
    except ValueError:
        return _DEFAULT_LEVEL
    return raw.upper()


def _install_stderr_handler() -> None:
    """Replace loguru's default handler with stderr at ``$PACKFLOW_LOG_LEVEL`` (once)."""
    try:
        logger.remove(_LOGURU_DEFAULT_HANDLER_ID)
    except ValueError:  # already removed: whoever did it configured loguru
        return
    logger.add(sys.stderr, level=level_from_env())


_install_stderr_handler()
