"""``packflow-worker redrive``: dead letters back to their topics after a fix.

``await redrive(RedriveOptions(dlq_topic="events-dlq"))`` reads the dead-letter topic up to
its end offsets, sends each selected dead letter's original value, key and headers back to
its source topic (or a target topic) and returns a :class:`RedriveReport`. The modules:

* :mod:`~worker.redrive.options` -- :class:`RedriveOptions`, what a run is asked to do;
* :mod:`~worker.redrive.letters` -- dead letters read back from their topic;
* :mod:`~worker.redrive.selection` -- ``--where``, ``--since``, ``--until``;
* :mod:`~worker.redrive.plan` -- one decision per message: resend, skip (why) or not selected;
* :mod:`~worker.redrive.reader` -- reading a topic once, resumably, up to its end offsets;
* :mod:`~worker.redrive.run` -- :func:`redrive`: the run against Kafka;
* :mod:`~worker.redrive.report` -- the counts and the table;
* :mod:`~worker.redrive.cli` -- the ``packflow-worker redrive`` command.
"""

from worker.redrive.letters import NotADeadLetterError, StoredDeadLetter, read_dead_letter
from worker.redrive.options import DEFAULT_MAX_REDRIVES, RedriveOptions
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
from worker.redrive.run import redrive
from worker.redrive.selection import WHERE_FIELDS, Condition, Selection, parse_time

__all__ = [
    "DEFAULT_MAX_REDRIVES",
    "REDRIVE_COUNT_HEADER",
    "WHERE_FIELDS",
    "Condition",
    "Decision",
    "NotADeadLetterError",
    "NotSelected",
    "RedriveOptions",
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
    "redrive",
    "redrive_count",
    "redrive_headers",
]
