"""Helpers for ``"module.path:Name"`` backend references."""

from __future__ import annotations

__all__ = ["inference_backend_parts"]

_EXPECTED_FORM = '"<module>:<attribute>", e.g. "inference:Backend" or "models.scorer:Scorer"'


def inference_backend_parts(path: str) -> list[str]:
    """Split ``"module.path:Name"`` into ``[module_path, name]``.

    ``"foo.bar:Baz"`` returns ``["foo.bar", "Baz"]``, read as ``from foo.bar import Baz``.

    Raises:
        ValueError: ``path`` does not hold exactly one colon with text on both sides; the
            message quotes ``path`` and the expected form.
    """
    parts = path.split(":")
    if len(parts) != 2 or not all(part.strip() for part in parts):
        raise ValueError(f'Import string "{path}" must be in format {_EXPECTED_FORM}.')
    module, name = (part.strip() for part in parts)
    return [module, name]
