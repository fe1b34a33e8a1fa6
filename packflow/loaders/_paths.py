"""Where a ``"module.path:Name"`` reference lives inside a project folder."""

from __future__ import annotations

from pathlib import PurePosixPath

from .utils import inference_backend_parts


def backend_module_file(inference_backend: str) -> PurePosixPath:
    """Relative source file of a backend reference: ``"models.scorer:S"`` -> ``models/scorer.py``.

    Raises:
        ValueError: the reference is not of the form ``"module:attribute"``.
    """
    module, _ = inference_backend_parts(inference_backend)
    return PurePosixPath(*module.split(".")).with_suffix(".py")
