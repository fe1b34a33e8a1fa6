"""How a settings field is spelled as a flag and as an environment variable."""

from __future__ import annotations

__all__ = ["ENV_PREFIX", "describe_setting", "env_name", "flag_name"]

ENV_PREFIX = "PACKFLOW_"

#: Flags not spelled after their field: a repeatable flag names one item.
_FLAGS = {"kafka_options": "--kafka-option"}


def flag_name(field: str) -> str:
    """The command-line flag of a settings field: ``max_batch_size`` -> ``--max-batch-size``."""
    return _FLAGS.get(field) or "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``delivery`` -> ``PACKFLOW_DELIVERY``."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe_setting(field: str) -> str:
    """``--flag / PACKFLOW_VARIABLE``: how an error names a setting."""
    return f"{flag_name(field)} / {env_name(field)}"
