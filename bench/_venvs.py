"""Virtual environments the benchmarks install for themselves, never project dependencies.

Each contender that needs a library the project does not depend on gets its own venv
``bench/.venv-<name>`` (git-ignored), created with pip from PyPI on first use:

* ``.venv-quix``: Quix Streams
* ``.venv-confluent``: confluent-kafka
* ``.venv-tools``: py-spy, for ``profile_worker.py``

A stamp file in the venv lists the requirements it was built with; a changed list installs
again. Pipes that run a packflow backend (``--workload numpy`` / ``busy20us``) import the
SDK from this tree, so their venvs also get the project's own dependencies and this tree
installed in editable mode (``--no-deps``): ``packflow`` reads its version from the
installed distribution's metadata.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
_STAMP = ".bench-requirements"


def project_requirements() -> tuple[str, ...]:
    """The ``[project] dependencies`` of this tree's pyproject.toml (the SDK and worker's)."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tuple(tomllib.load(handle)["project"]["dependencies"])


@dataclass(frozen=True)
class BenchVenv:
    """A bench-owned venv: its name, what pip installs into it, and one module to check."""

    name: str
    requirements: tuple[str, ...]
    probe_module: str
    with_this_tree: bool = False
    """Also ``pip install --no-deps -e <this tree>`` (the SDK, as the pipes import it)."""

    @property
    def path(self) -> Path:
        """``bench/.venv-<name>``."""
        return BENCH / f".venv-{self.name}"

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.path / "bin" / "python"

    def executable(self, name: str) -> Path:
        """A console script installed in the venv (``py-spy``)."""
        return self.path / "bin" / name

    def ensure(self, log: Callable[[str], None] | None = None) -> Path:
        """Create the venv and install its requirements unless it already holds them.

        Returns the venv's interpreter. ``log`` (a callable taking one line) hears about an
        install. Raises ``subprocess.CalledProcessError`` when venv or pip fails.
        """
        editable = ("--no-deps", "-e", str(REPO)) if self.with_this_tree else ()
        wanted = "\n".join([*self.requirements, " ".join(editable)]) + "\n"
        stamp = self.path / _STAMP
        if self._ready() and stamp.is_file() and stamp.read_text() == wanted:
            return self.python
        if log is not None:
            log(f"installing {', '.join(self.requirements)} into {self.path.relative_to(REPO)}")
        if not self.python.exists():
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(self.path)], check=True)
        subprocess.run(
            [str(self.python), "-m", "pip", "install", "--quiet", *self.requirements],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        if editable:
            subprocess.run(
                [str(self.python), "-m", "pip", "install", "--quiet", *editable],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        stamp.write_text(wanted)
        return self.python

    def version(self, distribution: str) -> str:
        """The installed version of ``distribution`` in this venv ('' when unknown)."""
        code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
        return subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, check=False
        ).stdout.strip()

    def _ready(self) -> bool:
        if not self.python.exists():
            return False
        check = subprocess.run(
            [str(self.python), "-c", f"import {self.probe_module}"],
            capture_output=True,
            check=False,
        )
        return check.returncode == 0


def pipe_env() -> dict[str, str]:
    """Environment of a pipe subprocess: unbuffered output, and this tree first on
    ``PYTHONPATH``, so that every contender imports this tree's ``packflow`` and ``worker``
    whatever checkout an interpreter's editable install points at."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


QUIX = BenchVenv(
    "quix", ("quixstreams>=3.0", *project_requirements()), "quixstreams", with_this_tree=True
)
CONFLUENT = BenchVenv(
    "confluent",
    ("confluent-kafka>=2.4", *project_requirements()),
    "confluent_kafka",
    with_this_tree=True,
)
TOOLS = BenchVenv("tools", ("py-spy>=0.3.14",), "sys")


def main_version(distribution: str) -> str:
    """The version of ``distribution`` in the interpreter running the bench."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""
