"""The ``packflow`` command: ``create``, ``validate`` and ``export`` packflow projects.

Result lines start with ``Success:``, ``Warning:`` or ``Error:`` (the ``-v`` check listings
aside). ``validate`` prints its findings on stdout and exits 1 when there are errors; any other
failure, usage errors included, exits 1 with one ``Error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

__all__ = ["cli"]

FAILURE = 1
"""Exit status of every failed command."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _PackflowGroup(click.Group):
    """A click group whose usage errors exit with :data:`FAILURE` like every other failure."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            setattr(exc, "exit_code", FAILURE)  # noqa: B010 - exit_code is a ClassVar
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            setattr(exc, "exit_code", FAILURE)  # noqa: B010 - exit_code is a ClassVar
            raise


def _success(message: str) -> None:
    click.echo(f"{click.style('Success:', fg='green')} {message}")


def _warning(message: str) -> None:
    click.echo(f"{click.style('Warning:', fg='yellow')} {message}")


def _error(message: str, err: bool = False) -> None:
    click.echo(f"{click.style('Error:', fg='red')} {message}", err=err)


def _fail(message: str) -> NoReturn:
    _error(message, err=True)
    raise SystemExit(FAILURE)


def _reports_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn any exception escaping ``command`` into one ``Error:`` line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            _fail(str(exc) or type(exc).__name__)

    return wrapper


@click.group(cls=_PackflowGroup)
@click.version_option(package_name="packflow", prog_name="packflow")
def cli() -> None:
    """Create, validate and package packflow inference projects."""


@cli.command()
@click.argument("project_name", metavar="NAME")
@click.option(
    "-f",
    "--force",
    is_flag=True,
    help="Initialize a new project in a folder that already exists. No files are deleted, "
    "but files with template names are overwritten.",
)
@click.option("--no-input", is_flag=True, hidden=True, help="Accepted for compatibility.")
@_reports_errors
def create(project_name: str, force: bool, no_input: bool) -> None:
    """Initialize a new project NAME from a template in the current directory."""
    from packflow.loaders.config import NAME_PATTERN
    from packflow.project import PackflowProject

    if not re.fullmatch(NAME_PATTERN, project_name):
        _fail(
            f"Invalid project name '{project_name}'. Names must start with a letter and "
            "contain only letters, digits, hyphens, and underscores."
        )
    project = PackflowProject.create(project_name, force=force)
    _success(repr(project))
    if not sys.stdout.isatty():
        return
    click.echo("\n  Next steps:")
    click.echo(f"    cd {project_name}")
    click.echo("    edit inference.py       implement the execute() method")
    click.echo("    packflow validate       check the project")
    click.echo("    packflow export         package it for distribution\n")


@cli.command()
@click.argument("project_path", metavar="[DIR]", default=".")
@click.option("-v", "--verbose", is_flag=True, help="Show each validation check.")
@click.option("--no-warnings", is_flag=True, help="Do not print warnings.")
@_reports_errors
def validate(project_path: str, verbose: bool, no_warnings: bool) -> None:
    """Run the project validation checks on DIR (default: the current directory).

    Checks the required files, the packflow.yaml fields, requirements.txt, the recommended
    files, and that the backend loads and initializes (smoke test).
    """
    project = _existing_project(project_path)
    if verbose:
        click.echo("\n=== Validation ===")
        click.echo(f"Project: {project.base_dir}")
    errors, warnings = project.validate_required_files(verbose=verbose)
    shown_warnings = [] if no_warnings else warnings

    counts = []
    if errors:
        counts.append(click.style(f"{len(errors)} error(s)", fg="red"))
    if shown_warnings:
        counts.append(click.style(f"{len(shown_warnings)} warning(s)", fg="yellow"))
    if counts:
        click.echo(f"\n{', '.join(counts)} found\n")
    for error in errors:
        _error(error)
    for warning in shown_warnings:
        _warning(warning)
    if errors:
        raise SystemExit(FAILURE)
    _success("All validation checks passed.")


@cli.command()
@click.argument("project_path", metavar="[DIR]", default=".")
@click.option("-v", "--verbose", is_flag=True, help="Show each validation check.")
@click.option(
    "-o",
    "--output-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write the archive to.",
)
@_reports_errors
def export(project_path: str, verbose: bool, output_dir: str) -> None:
    """Save the package: zip DIR (default: the current directory) as NAME-VERSION.zip.

    Runs the validation checks first; errors block the export. Caches, version-control
    folders and files matched by the project's .gitignore are left out; export warns with
    what .gitignore excluded and about each excluded file that looks like a model artifact.
    """
    project = _existing_project(project_path)
    archive = project.export(output_directory=output_dir, verbose=verbose)
    for warning in project.export_warnings:
        _warning(warning)
    _success(f"Saved Package to {archive}")


def _existing_project(project_path: str) -> Any:
    from packflow.loaders.config import no_config_message
    from packflow.project import PackflowProject

    path = Path(project_path)
    if not path.is_dir():
        _fail(f"Project folder '{project_path}' does not exist or is not a folder.")
    project = PackflowProject(path)
    if not project.has_packflow_config:
        _fail(no_config_message(project.base_dir))
    return project
