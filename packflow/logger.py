"""packflow's logger, for code written against packflow 0.4.x (``from packflow.logger import ...``).

0.4.x handed out loguru's global logger; this hands out a :class:`BackendLogger`, which takes
the same calls (``logger.info("loaded {}", name)``, ``success``, ``bind``...) and emits
structlog events, filtered by ``$PACKFLOW_LOG_LEVEL`` (default ``INFO``). Nothing is
configured at import: structlog's own configuration decides where events go.
"""

from __future__ import annotations

import structlog

from packflow.backend._logger import BackendLogger

__all__ = ["BackendLogger", "get_logger", "logger"]


def get_logger() -> BackendLogger:
    """A logger named ``packflow`` taking loguru-style and structlog-style calls."""
    return BackendLogger(structlog.get_logger("packflow"))


logger = get_logger()
