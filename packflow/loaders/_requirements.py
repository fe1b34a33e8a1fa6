"""Check a project's ``requirements.txt`` against the running environment."""

from __future__ import annotations

from pathlib import Path

from ._report import Reporter


def check_requirements(path: Path, report: Reporter) -> tuple[list[str], list[str]]:
    """Return ``(errors, warnings)`` for ``requirements.txt`` at ``path``.

    Error: packflow is not listed. Warnings: a line that is not a valid requirement, a
    package that is not installed, an installed version outside the line's specifier
    (for packflow: the pin differs from the installed packflow). Option lines (``-r``,
    ``--index-url``...) and environment markers that do not apply are skipped.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    errors: list[str] = []
    warnings: list[str] = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    requirements: list[tuple[int, Requirement]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirements.append((number, Requirement(line)))
        except InvalidRequirement as exc:
            warnings.append(f"requirements.txt line {number} is not a valid requirement: {exc}")
            report.warn(f"line {number}: {line} (not a valid requirement)", 4)

    if not any(canonicalize_name(req.name) == "packflow" for _, req in requirements):
        errors.append("'packflow' is not listed in requirements.txt.")
        report.fail("missing 'packflow' dependency", 4)

    for number, req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            warnings.append(
                f"Package '{req.name}' from requirements.txt (line {number}) is not installed "
                "in the current environment."
            )
            report.warn(f"{req.name} (not installed)", 4)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            if canonicalize_name(req.name) == "packflow":
                warnings.append(
                    f"requirements.txt specifies packflow{req.specifier}, but installed version "
                    f"is {installed}."
                )
            else:
                warnings.append(
                    f"Package '{req.name}' version {installed} does not match requirement "
                    f"'{req}' (requirements.txt line {number})."
                )
            report.warn(f"{req.name} (installed {installed}, required {req.specifier})", 4)
        else:
            report.ok(req.name, 4)
    return errors, warnings
