"""``packflow-worker redrive``: dead letters back to their topics after a fix.

The Kafka-free part so far. The modules:

* :mod:`~worker.redrive.letters` -- dead letters read back from their topic;
* :mod:`~worker.redrive.selection` -- ``--where``, ``--since``, ``--until``;
* :mod:`~worker.redrive.plan` -- one decision per message: resend, skip (why) or not selected;
* :mod:`~worker.redrive.report` -- the counts and the table.
"""

from worker.redrive.letters import NotADeadLetterError, StoredDeadLetter, read_dead_letter
from worker.redrive.plan import (
    REDRIVE_COUNT_HEADER,
    Decision,
    NotSelected,
    Resend,
    Skip,
    plan,
    redrive_count,
    redrive_headers,
)
from worker.redrive.report import RedriveReport, ReportRow, SkippedLetter
from worker.redrive.selection import WHERE_FIELDS, Condition, Selection, parse_time

__all__ = [
    "REDRIVE_COUNT_HEADER",
    "WHERE_FIELDS",
    "Condition",
    "Decision",
    "NotADeadLetterError",
    "NotSelected",
    "RedriveReport",
    "ReportRow",
    "Resend",
    "Selection",
    "Skip",
    "SkippedLetter",
    "StoredDeadLetter",
    "parse_time",
    "plan",
    "read_dead_letter",
    "redrive_count",
    "redrive_headers",
]
