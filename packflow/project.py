"""``PackflowProject``: create, check and export a packflow project folder."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from packflow import _export_files
from packflow.constants import PACKAGING_CONFIG_NAME, REQUIREMENTS_TEXT_NAME
from packflow.loaders._report import Reporter
from packflow.loaders.config import (
    PackflowConfig,
    PackflowConfigError,
    apply_env_vars,
    describe_config_error,
)
from packflow.loaders.export_checks import validate_for_export

__all__ = ["PackflowProject"]

# What export leaves out and warns about (see _export_files), still importable from here.
EXPORT_EXCLUDE_DIRS = _export_files.EXPORT_EXCLUDE_DIRS
EXPORT_EXCLUDE_PATTERNS = _export_files.EXPORT_EXCLUDE_PATTERNS
MODEL_ARTIFACT_SUFFIXES = _export_files.MODEL_ARTIFACT_SUFFIXES
LARGE_FILE_BYTES = _export_files.LARGE_FILE_BYTES

#: Text that only an unedited template file contains, per recommended file.
_TEMPLATE_MARKERS = {
    "MODEL_CARD.md": ("{introduction}",),
    "README.md": ("# Project Name", "Brief description of the analytic"),
}
_MANDATORY_TEMPLATE_FILES = frozenset(
    {"inference.py", PACKAGING_CONFIG_NAME, REQUIREMENTS_TEXT_NAME}
)
_TEMPLATE_NAME_TOKEN = "{{project_name}}"
_TEMPLATE_ARCHIVE_TOKEN = "{{archive_prefix}}"  # the export archives' name: '-' as '_'

_FILE_MODE = 0o644
_DIR_MODE = 0o755


class PackflowProject:
    """A packflow project folder: ``packflow.yaml``, the backend module, requirements, docs.

    Args:
        base_dir: the project folder (resolved to an absolute path).
    """

    REQUIRED_FILES = [PACKAGING_CONFIG_NAME, REQUIREMENTS_TEXT_NAME]
    """Files a project must have to be validated and exported."""

    RECOMMENDED_FILES = ["MODEL_CARD.md", "LICENSE.txt", "README.md"]
    """Files whose absence, emptiness or untouched template content is a warning."""

    def __init__(self, base_dir: str | Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.export_warnings: list[str] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__} @ {self.base_dir}"

    @property
    def has_packflow_config(self) -> bool:
        """Whether the folder holds a ``packflow.yaml``."""
        return (self.base_dir / PACKAGING_CONFIG_NAME).is_file()

    @classmethod
    def create(
        cls,
        project_name: str,
        force: bool = False,
        template: str = "minimal",
        config_data: dict[str, Any] | None = None,
        optional_files: Iterable[str] | None = None,
        parent_dir: str | Path = ".",
    ) -> PackflowProject:
        """Create ``<parent_dir>/<project_name>`` from a template and return it.

        ``packflow.yaml`` gets the name, version ``0.1.0`` and ``config_data`` (which may
        override any field); ``requirements.txt`` pins the installed packflow. With
        ``optional_files`` only ``inference.py``, ``packflow.yaml``, ``requirements.txt`` and
        the listed template files are written. A folder created here is removed again if
        anything fails.

        Raises:
            FileExistsError: the folder exists and ``force`` is false.
            pydantic.ValidationError: the name or ``config_data`` is invalid.
            ValueError: the template or an optional file does not exist.
        """
        config = PackflowConfig.from_mapping(
            {"name": project_name, "version": "0.1.0", **(config_data or {})},
            source="project settings",
        )
        files = _selected_template_files(template, optional_files)
        base_path = Path(parent_dir).resolve() / config.name
        if base_path.exists() and not force:
            raise FileExistsError(
                f"Directory {base_path} already exists; use --force (force=True) to create "
                "the project in it (files with template names are overwritten)."
            )
        created = not base_path.exists()
        try:
            _write_project(base_path, files, config)
        except BaseException:
            if created:
                shutil.rmtree(base_path, ignore_errors=True)
            raise
        return cls(base_path)

    def load_config(self) -> PackflowConfig:
        """Read ``packflow.yaml`` and apply its ``env`` section to ``os.environ``."""
        config = PackflowConfig.from_project_path(self.base_dir)
        apply_env_vars(config)
        return config

    def validate_required_files(
        self, verbose: bool = False, config: PackflowConfig | None = None
    ) -> tuple[list[str], list[str]]:
        """Check the project's files; return ``(errors, warnings)``.

        Errors: a missing required file, an invalid ``packflow.yaml`` (naming the field),
        a missing backend module file (by its path, e.g. ``inference.py`` or
        ``models/scorer.py`` for ``models.scorer:Scorer``), a backend that fails its smoke
        load, a blank name or version, ``requirements.txt`` not listing packflow. Warnings:
        requirements not installed or outside their specifier, a missing, empty or untouched
        recommended file, blank description or maintainers, a Python version mismatch.
        ``packflow.yaml`` is read here when ``config`` is not given.
        """
        report = Reporter(verbose)
        errors: list[str] = []
        warnings: list[str] = []

        report.heading("\nRequired files:")
        for filename in self.REQUIRED_FILES:
            path = self.base_dir / filename
            if not path.is_file():
                errors.append(f"Required file '{filename}' is missing.")
                report.fail(f"{filename} (missing)")
                continue
            report.ok(filename)
            if filename == PACKAGING_CONFIG_NAME:
                found = self._check_packflow_yaml(config, report)
                errors.extend(found[0])
                warnings.extend(found[1])
            elif filename == REQUIREMENTS_TEXT_NAME:
                from packflow.loaders._requirements import check_requirements

                found = check_requirements(path, report)
                errors.extend(found[0])
                warnings.extend(found[1])

        report.heading("\nRecommended files:")
        for filename in self.RECOMMENDED_FILES:
            problem = self._recommended_file_problem(filename)
            if problem is None:
                report.ok(filename)
            else:
                warnings.append(problem[1])
                report.warn(f"{filename} ({problem[0]})")
        return errors, warnings

    def _check_packflow_yaml(
        self, config: PackflowConfig | None, report: Reporter
    ) -> tuple[list[str], list[str]]:
        """Read ``packflow.yaml`` unless ``config`` is given, then :func:`validate_for_export`."""
        if config is None:
            try:
                config = PackflowConfig.from_project_path(self.base_dir)
            except (PackflowConfigError, ValidationError) as exc:
                message = (
                    describe_config_error(exc) if isinstance(exc, ValidationError) else str(exc)
                )
                report.fail(message, 4)
                return [message], []
        return validate_for_export(config, project_dir=self.base_dir, verbose=report.verbose)

    def _recommended_file_problem(self, filename: str) -> tuple[str, str] | None:
        path = self.base_dir / filename
        if not path.is_file():
            return "missing", f"Recommended file '{filename}' is missing."
        content = path.read_text(encoding="utf-8", errors="replace").strip()
        if not content:
            return "empty", f"'{filename}' is empty."
        if any(marker in content for marker in _TEMPLATE_MARKERS.get(filename, ())):
            return "template", f"'{filename}' appears to be unchanged from template."
        return None

    def export(self, output_directory: str | Path = ".", verbose: bool = False) -> Path:
        """Validate, then zip the project into ``<output_directory>/<name>-<version>.zip``.

        Paths in the archive are relative to the project folder. Left out: version-control
        and cache folders (:data:`EXPORT_EXCLUDE_DIRS`), compiled files, files matched by the
        project's ``.gitignore``, and earlier ``<name>-*.zip`` exports at the project root.
        Warnings found by validation are kept in :attr:`export_warnings`, followed by what
        ``.gitignore`` left out (a count and the first names) and one warning per left-out
        file that looks like a model artifact (:data:`MODEL_ARTIFACT_SUFFIXES`, or at least
        :data:`LARGE_FILE_BYTES`), so a model file is never dropped silently. The archive is
        written to a temporary file first, so a failed export leaves no partial archive.

        Raises:
            ValueError: validation found errors (each listed in the message).
            OSError: the archive could not be written.
        """
        import zipfile

        report = Reporter(verbose)
        report.heading("\n=== Export Validation ===")
        report.heading(f"Project: {self.base_dir}")
        config = self.load_config()
        errors, warnings = self.validate_required_files(verbose=verbose, config=config)
        if errors:
            raise ValueError(
                "Export blocked due to validation errors:\n"
                + "\n".join(f"  - {error}" for error in errors)
            )
        archive = config.archive_file_name(output_directory)
        partial = archive.with_name(f".{archive.name}.partial")
        old_exports = f"{config.name.replace('-', '_')}-*.zip"
        gitignored: list[str] = []
        try:
            archive.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
                for relative in self.iter_export_files(
                    extra_root_patterns=[old_exports], gitignored=gitignored
                ):
                    source = self.base_dir / relative
                    if source.resolve() in (archive, partial):
                        continue
                    zip_file.write(source, relative)
            partial.replace(archive)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise OSError(f"Could not write the archive {archive}: {exc}") from exc
        self.export_warnings = warnings + _export_files.gitignored_warnings(
            self.base_dir, gitignored
        )
        report.heading(f"\nWrote {archive}")
        return archive

    def iter_export_files(
        self, extra_root_patterns: Iterable[str] = (), gitignored: list[str] | None = None
    ) -> Iterator[str]:
        """Yield, sorted, the relative POSIX paths of the files :meth:`export` would archive.

        ``gitignored``, if given, receives the relative paths of the files left out only
        because the project's ``.gitignore`` matches them (or a folder above them).
        """
        return _export_files.iter_export_files(self.base_dir, extra_root_patterns, gitignored)


def _selected_template_files(template: str, optional_files: Iterable[str] | None) -> dict[str, Any]:
    """The template's files; with ``optional_files``, only those and the mandatory ones."""
    files = _template_files(template)
    if optional_files is None:
        return files
    wanted = set(optional_files)
    unknown = wanted - set(files)
    if unknown:
        raise ValueError(
            f"Unknown optional file(s) {sorted(unknown)} for template '{template}'; "
            f"available: {sorted(files)}"
        )
    return {
        name: source
        for name, source in files.items()
        if name in wanted or name in _MANDATORY_TEMPLATE_FILES
    }


def _write_project(base_path: Path, files: dict[str, Any], config: PackflowConfig) -> None:
    """Write the template files (their tokens replaced), ``packflow.yaml`` and requirements."""
    base_path.mkdir(parents=True, exist_ok=True)
    os.chmod(base_path, _DIR_MODE)
    for name, source in files.items():
        text = source.read_text(encoding="utf-8")
        target = base_path / name
        text = text.replace(_TEMPLATE_NAME_TOKEN, config.name)
        text = text.replace(_TEMPLATE_ARCHIVE_TOKEN, config.name.replace("-", "_"))
        target.write_text(text, encoding="utf-8")
        os.chmod(target, _FILE_MODE)
    config.write_yaml(base_path)
    config.write_requirements(base_path)


def _template_files(template: str) -> dict[str, Any]:
    """Map project file names to template resources (``inference.py.tmpl`` -> ``inference.py``)."""
    templates = importlib.resources.files("packflow").joinpath("templates")
    source = templates.joinpath(template)
    if not source.is_dir():
        available = sorted(item.name for item in templates.iterdir() if item.is_dir())
        raise ValueError(f"Unknown template '{template}'; available: {available}")
    files: dict[str, Any] = {}
    for item in source.iterdir():
        if item.is_file():
            name = item.name.removesuffix(".tmpl")
            if name.startswith("dot-"):
                name = "." + name.removeprefix("dot-")
            files[name] = item
    return files
