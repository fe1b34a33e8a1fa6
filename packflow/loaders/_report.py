"""Check-by-check output for ``packflow validate -v`` / ``export -v``; silent unless verbose."""

from __future__ import annotations

_MARKS = {"ok": ("✓", "green"), "fail": ("✗", "red"), "warn": ("⚠", "yellow")}


class Reporter:
    """Prints one indented line per check when ``verbose`` is true; does nothing otherwise."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def heading(self, text: str, indent: int = 0) -> None:
        if self.verbose:
            import click

            click.echo(f"{' ' * indent}{text}")

    def ok(self, text: str, indent: int = 2) -> None:
        self._mark("ok", text, indent)

    def fail(self, text: str, indent: int = 2) -> None:
        self._mark("fail", text, indent)

    def warn(self, text: str, indent: int = 2) -> None:
        self._mark("warn", text, indent)

    def _mark(self, kind: str, text: str, indent: int) -> None:
        if self.verbose:
            import click

            symbol, colour = _MARKS[kind]
            click.echo(f"{' ' * indent}{click.style(symbol, fg=colour)} {text}")
