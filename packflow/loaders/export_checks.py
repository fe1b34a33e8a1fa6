"""Whether a project is ready to export: metadata, runtime, unknown keys, a smoke load.

Used by ``packflow validate`` and ``packflow export``; kept apart from the ``packflow.yaml``
model (:mod:`packflow.loaders.config`) because the smoke test loads the backend.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from packflow.constants import PACKAGING_CONFIG_NAME

from ._import import relative_module_file
from ._report import Reporter
from ._smoke import smoke_load
from .config import DEFAULT_INFERENCE_BACKEND, PackflowConfig, _shorten, get_python_version
from .utils import inference_backend_parts

__all__ = ["check_python_version", "validate_for_export"]


def check_python_version(config: PackflowConfig, verbose: bool = False) -> str | None:
    """Compare ``python_version`` with the running interpreter at ``major.minor`` level.

    Returns a warning message on mismatch or when the value cannot be parsed, else ``None``.
    """
    try:
        major, minor = (int(part) for part in config.python_version.split(".")[:2])
    except ValueError:
        return (
            f"Could not parse python_version '{config.python_version}' in packflow.yaml. "
            f"Expected a version string like '{get_python_version()}'."
        )
    if (major, minor) != sys.version_info[:2]:
        return (
            f"packflow.yaml specifies Python {config.python_version}, but the current "
            f"environment is Python {get_python_version()}. Consider updating python_version "
            "or switching to a matching environment."
        )
    Reporter(verbose).ok(f"python_version: {config.python_version} (matches runtime)", 6)
    return None


def validate_for_export(
    config: PackflowConfig,
    project_dir: str | Path | None = None,
    verbose: bool = False,
) -> tuple[list[str], list[str]]:
    """Check that a project is ready to export; return ``(errors, warnings)``.

    Errors block export: a blank name or version, and, with ``project_dir``, a missing local
    backend module file or a backend that fails to load and instantiate (smoke test, run
    with the project's ``env`` applied and restored afterwards, output silenced). Warnings:
    blank description or maintainers, ``inference_backend`` left at the template default, a
    ``python_version`` that does not match the running interpreter, and each unknown
    top-level key (naming the closest known key).
    """
    report = Reporter(verbose)
    errors, warnings = _check_metadata(config, report)
    warnings += _check_runtime(config, report)
    warnings += _check_unknown_keys(config, report)
    if project_dir is not None:
        errors.extend(_check_backend(config, Path(project_dir).resolve(), report))
    return errors, warnings


def _check_metadata(config: PackflowConfig, report: Reporter) -> tuple[list[str], list[str]]:
    """A blank version is an error; a blank description or no maintainer a warning."""
    errors: list[str] = []
    warnings: list[str] = []
    report.heading("Metadata:", 4)
    report.ok(f"name: {config.name}", 6)  # never blank: NAME_PATTERN validates it
    if not config.version.strip():
        errors.append("'version' is required for export but is empty.")
        report.fail("version (empty)", 6)
    else:
        report.ok(f"version: {config.version}", 6)
    if not config.description.strip():
        warnings.append("'description' is empty. A description is recommended before distributing.")
        report.warn("description (empty)", 6)
    else:
        report.ok(f"description: {_shorten(config.description)}", 6)
    if not any(maintainer.strip() for maintainer in config.maintainers):
        warnings.append(
            "'maintainers' is empty. At least one maintainer is recommended before distributing."
        )
        report.warn("maintainers (empty)", 6)
    else:
        report.ok(f"maintainers: {', '.join(config.maintainers)}", 6)
    return errors, warnings


def _check_runtime(config: PackflowConfig, report: Reporter) -> list[str]:
    """Warnings: the template's default backend, a ``python_version`` the runtime is not."""
    warnings: list[str] = []
    report.heading("Runtime:", 4)
    if config.inference_backend == DEFAULT_INFERENCE_BACKEND:
        warnings.append(
            f"'inference_backend' is the template default '{DEFAULT_INFERENCE_BACKEND}'. "
            "Name your backend's module and class before distributing."
        )
        report.warn(f"inference_backend: {config.inference_backend} (template default)", 6)
    else:
        report.ok(f"inference_backend: {config.inference_backend}", 6)
    report.ok(f"loader: {config.loader}", 6)
    python_warning = check_python_version(config, verbose=report.verbose)
    if python_warning:
        warnings.append(python_warning)
        report.warn(f"python_version: {config.python_version} (does not match runtime)", 6)
    return warnings


def _check_unknown_keys(config: PackflowConfig, report: Reporter) -> list[str]:
    """One warning per unknown top-level key, naming the closest known key."""
    warnings: list[str] = []
    for key in config.custom_fields:
        close = difflib.get_close_matches(key, list(PackflowConfig.model_fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        warnings.append(
            f"Unknown key '{key}' in {PACKAGING_CONFIG_NAME} is kept as a custom field.{hint}"
        )
        report.warn(f"{key} (unknown key, kept as a custom field)", 6)
    return warnings


def _check_backend(config: PackflowConfig, project_dir: Path, report: Reporter) -> list[str]:
    if config.loader == "local":
        module, _ = inference_backend_parts(config.inference_backend)
        module_file = relative_module_file(module)
        if not (project_dir / module_file).is_file():
            report.fail(f"backend file {module_file} (missing)", 6)
            return [
                f"Inference backend file '{module_file}' is missing. Required for local loader "
                f"with inference_backend '{config.inference_backend}'."
            ]
        report.ok(f"backend file {module_file}", 6)

    report.heading("Smoke test:", 4)
    failure = smoke_load(project_dir, config)
    if failure is None:
        report.ok(f"{config.inference_backend} loaded and initialized", 6)
        return []
    report.fail(failure, 6)
    return [f"inference_backend '{config.inference_backend}' failed smoke test: {failure}"]
