"""Which files ``packflow export`` archives: caches and VCS folders left out, ``.gitignore``
applied, and the warnings about what ``.gitignore`` dropped (model artifacts, large files)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

EXPORT_EXCLUDE_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        "node_modules",
        ".idea",
        ".vscode",
        ".eggs",
    }
)
"""Folders never exported, at any depth."""

EXPORT_EXCLUDE_PATTERNS = ("*.pyc", "*.pyo", "*.egg-info", ".DS_Store")
"""File and folder name patterns never exported."""

#: Suffixes of files that are usually model artifacts: export warns when .gitignore drops one.
MODEL_ARTIFACT_SUFFIXES = frozenset(
    {".zip", ".pt", ".pth", ".onnx", ".pkl", ".joblib", ".safetensors", ".bin", ".h5"}
)
#: Files at least this large dropped by .gitignore are warned about too.
LARGE_FILE_BYTES = 1_000_000
_NAMES_SHOWN = 5


def iter_export_files(
    base_dir: Path, extra_root_patterns: Iterable[str] = (), gitignored: list[str] | None = None
) -> Iterator[str]:
    """Yield, sorted, the relative POSIX paths of the files under ``base_dir`` to archive.

    ``gitignored``, if given, receives the relative paths of the files left out only
    because the project's ``.gitignore`` matches them (or a folder above them).
    """
    from fnmatch import fnmatch

    ignored = _gitignore_spec(base_dir)
    root_patterns = tuple(extra_root_patterns)

    def excluded(name: str, relative: str, is_dir: bool) -> bool:
        if is_dir and name in EXPORT_EXCLUDE_DIRS:
            return True
        if any(fnmatch(name, pattern) for pattern in EXPORT_EXCLUDE_PATTERNS):
            return True
        return "/" not in relative and any(fnmatch(name, p) for p in root_patterns)

    def by_gitignore(relative: str, is_dir: bool) -> bool:
        return ignored is not None and ignored.match_file(relative + ("/" if is_dir else ""))

    for directory, dirnames, filenames in os.walk(base_dir):
        prefix = Path(directory).relative_to(base_dir).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        kept_dirs = []
        for d in sorted(dirnames):
            if excluded(d, prefix + d, True):
                continue
            if by_gitignore(prefix + d, True):
                if gitignored is not None:
                    gitignored.extend(_files_under(base_dir, prefix + d))
                continue
            kept_dirs.append(d)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            relative = prefix + name
            if excluded(name, relative, False):
                continue
            if by_gitignore(relative, False):
                if gitignored is not None:
                    gitignored.append(relative)
                continue
            yield relative


def gitignored_warnings(base_dir: Path, gitignored: list[str]) -> list[str]:
    """What ``.gitignore`` left out (a count and the first names), then one warning per file
    that looks like a model artifact (:data:`MODEL_ARTIFACT_SUFFIXES`, or at least
    :data:`LARGE_FILE_BYTES`)."""
    if not gitignored:
        return []
    gitignored = sorted(gitignored)
    shown = ", ".join(gitignored[:_NAMES_SHOWN])
    more = f" and {len(gitignored) - _NAMES_SHOWN} more" if len(gitignored) > _NAMES_SHOWN else ""
    warnings = [f".gitignore excluded {len(gitignored)} file(s) from the archive: {shown}{more}."]
    for relative in gitignored:
        path = base_dir / relative
        try:
            size = path.stat().st_size
        except OSError:
            continue
        reasons = []
        if path.suffix.lower() in MODEL_ARTIFACT_SUFFIXES:
            reasons.append(f"a {path.suffix.lower()} file")
        if size >= LARGE_FILE_BYTES:
            reasons.append(f"{size / 1e6:.1f} MB")
        if reasons:
            warnings.append(
                f".gitignore excluded '{relative}' ({', '.join(reasons)}), which may be a "
                "model artifact the backend needs: remove its pattern from .gitignore to "
                "ship it."
            )
    return warnings


def _files_under(base_dir: Path, relative_dir: str) -> list[str]:
    """Relative paths of the files under a folder (caches and VCS folders skipped)."""
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(base_dir / relative_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in EXPORT_EXCLUDE_DIRS)
        prefix = Path(directory).relative_to(base_dir).as_posix()
        found.extend(f"{prefix}/{name}" for name in sorted(filenames))
    return found


def _gitignore_spec(base_dir: Path) -> GitIgnoreSpec | None:
    gitignore = base_dir / ".gitignore"
    if not gitignore.is_file():
        return None
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(gitignore.read_text(encoding="utf-8").splitlines())
