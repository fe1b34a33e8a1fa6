"""What one ``packflow-worker redrive`` run did: counts per (error type, step), and its table.

A dead letter counts once, in the row of its error type and step: redriven (acknowledged by
the broker; in a dry run: would be sent), skipped (with the reason) or not selected by the
filters. :meth:`RedriveReport.table` is what the command prints on stdout.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from worker.redrive.letters import INVALID_ROW

__all__ = ["MAX_LISTED_SKIPS", "RedriveReport", "ReportRow", "SkippedLetter"]

MAX_LISTED_SKIPS = 1000
"""The most skipped dead letters :attr:`RedriveReport.skipped_letters` lists one by one."""


@dataclass(slots=True)
class ReportRow:
    """The counts of one (error type, step)."""

    redriven: int = 0
    not_selected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        """How many were skipped, for any reason."""
        return sum(self.skipped.values())


@dataclass(frozen=True, slots=True)
class SkippedLetter:
    """A dead letter that was skipped: where it is (``dlq/0@5``) and why."""

    location: str
    reason: str


@dataclass(slots=True)
class RedriveReport:
    """The outcome of a run. ``failure`` says why it ended early with an error; ``stopped``
    why it ended early without one (``--limit``, a signal: then ``interrupted``)."""

    dlq_topic: str
    group_id: str
    dry_run: bool = False
    selection: str = "every dead letter"
    end_offsets: dict[int, int] = field(default_factory=dict)
    rows: dict[tuple[str, str], ReportRow] = field(default_factory=dict)
    targets: Counter[str] = field(default_factory=Counter)
    skipped_letters: list[SkippedLetter] = field(default_factory=list)
    stopped: str | None = None
    interrupted: bool = False
    failure: str | None = None

    def _row(self, row: tuple[str, str]) -> ReportRow:
        return self.rows.setdefault(row, ReportRow())

    def add_redriven(self, row: tuple[str, str], topic: str) -> None:
        """Count one dead letter sent (acknowledged) to ``topic``."""
        self._row(row).redriven += 1
        self.targets[topic] += 1

    def add_skipped(self, row: tuple[str, str], reason: str, location: str) -> None:
        """Count one dead letter skipped for ``reason``."""
        self._row(row).skipped[reason] += 1
        if len(self.skipped_letters) < MAX_LISTED_SKIPS:
            self.skipped_letters.append(SkippedLetter(location, reason))

    def add_not_selected(self, row: tuple[str, str]) -> None:
        """Count one dead letter the filters left out."""
        self._row(row).not_selected += 1

    @property
    def redriven(self) -> int:
        """Dead letters sent (in a dry run: that would be sent)."""
        return sum(row.redriven for row in self.rows.values())

    @property
    def skipped(self) -> int:
        """Dead letters skipped, for any reason."""
        return sum(row.skipped_total for row in self.rows.values())

    @property
    def not_selected(self) -> int:
        """Dead letters the filters left out."""
        return sum(row.not_selected for row in self.rows.values())

    @property
    def exit_code(self) -> int:
        """0 when the run went to the end offsets or its ``--limit``; 1 otherwise."""
        return 1 if self.failure is not None or self.interrupted else 0

    def table(self) -> str:
        """Summary lines, then one row per (error type, step) and a total line."""
        ends = " ".join(f"{p}:{o}" for p, o in sorted(self.end_offsets.items())) or "none"
        lines = [
            f"dead letters of {self.dlq_topic!r} up to end offsets {ends} "
            f"(group {self.group_id!r}); selected: {self.selection}"
        ]
        if self.dry_run:
            lines.append("dry run: nothing sent, nothing committed")
        elif self.targets:
            sent = ", ".join(f"{n} to {t!r}" for t, n in sorted(self.targets.items()))
            lines.append(f"sent {sent}")
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        if self.failure:
            lines.append(f"failed: {self.failure}")
        header = ["error type", "step", "would redrive" if self.dry_run else "redriven"]
        header += ["skipped", "not selected", "skipped because"]
        body = [
            [
                error_type,
                step,
                str(row.redriven),
                str(row.skipped_total),
                str(row.not_selected),
                "; ".join(f"{reason}: {n}" for reason, n in sorted(row.skipped.items())),
            ]
            for (error_type, step), row in sorted(self.rows.items(), key=_row_order)
        ]
        total = ["total", "", str(self.redriven), str(self.skipped), str(self.not_selected), ""]
        lines += _columns([header, *body, total])
        return "\n".join(lines)


def _row_order(item: tuple[tuple[str, str], ReportRow]) -> tuple[bool, str, str]:
    (error_type, step), _ = item
    return (error_type, step) == INVALID_ROW, error_type, step


_NUMERIC = (2, 3, 4)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in _NUMERIC else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
