"""Fixtures for loader tests: throwaway project folders with real backend modules."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

IDENTITY_BACKEND = """
from packflow import InferenceBackend


class Backend(InferenceBackend):
    def execute(self, inputs):
        return inputs
"""

CONFIGURED_BACKEND = """
from packflow import BackendConfig, InferenceBackend


class Config(BackendConfig):
    threshold: float = 0.5
    label: str = "default"


class Backend(InferenceBackend):
    backend_config_model = Config

    def execute(self, inputs):
        return [{"threshold": self.config.threshold, "label": self.config.label} for _ in inputs]
"""

ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Build ``tmp_path/<folder>`` with ``files`` (path -> source) and an optional packflow.yaml."""

    def build(folder: str = "project", files: dict[str, str] | None = None, **config: Any) -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        for relative, source in (files or {}).items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source))
        if config:
            (root / "packflow.yaml").write_text(yaml.safe_dump(config))
        return root

    return build


@pytest.fixture(autouse=True)
def _restore_import_state(restore_import_state: None) -> None:
    """Every loader test may import project modules: undo that (see ``restore_import_state``)."""
