"""``packflow-worker redrive``: flags -> :class:`RedriveOptions` -> :func:`redrive` -> table.

The connection flags are generated from
:class:`~worker.connection_settings.ConnectionSettings` (so they read the same ``PACKFLOW_*``
variables as the worker); the redrive's own flags read no environment variable, so a
worker's ``PACKFLOW_GROUP_ID`` or ``PACKFLOW_DLQ_TOPIC`` never slips into a run. Bad flags
and start-up failures print one line, ``packflow-worker redrive: error: ...``, and exit 2; a
failed send prints the table, then that line, and exits 1.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import click

from worker._setting_names import build_settings
from worker.cli import EXIT_STARTUP_FAILURE, fail, run_command, setting_options
from worker.connection_settings import SECRET_FIELDS, ConnectionSettings
from worker.errors import SettingsError, StartupError
from worker.redrive.options import DEFAULT_MAX_REDRIVES, RedriveOptions
from worker.redrive.report import RedriveReport
from worker.redrive.run import redrive
from worker.redrive.selection import WHERE_FIELDS, Selection

__all__ = ["main"]

_PROG = "packflow-worker redrive"
EXIT_FAILED = 1

#: Connection settings a one-off run must not take from a worker's environment.
_NOT_FOR_REDRIVE = {"group_instance_id"}
_connection_options = setting_options(
    [f for f in ConnectionSettings.model_fields if f not in _NOT_FOR_REDRIVE],
    default_help="Kafka client setting.",
)


def _fail(message: str, code: int = EXIT_STARTUP_FAILURE) -> None:
    fail(_PROG, message, code)


@click.command(name="redrive", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dlq-topic", required=True, help="Dead-letter topic to read.")
@click.option(
    "--target-topic", help="Send every dead letter here [default: each one's source.topic]."
)
@click.option(
    "--group-id",
    help="Consumer group that remembers how far runs got [default: packflow-redrive-<dlq topic>].",
)
@click.option(
    "--where",
    multiple=True,
    metavar="FIELD=VALUE",
    help=f"Only dead letters whose FIELD equals VALUE; repeatable, all must hold. "
    f"Fields: {', '.join(WHERE_FIELDS)}.",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only dead letters written at or after TIME (ISO-8601, UTC unless it has an offset, or"
    " epoch ms), by the dead-letter message's Kafka timestamp.",
)
@click.option("--until", metavar="TIME", help="Only dead letters written before TIME (as --since).")
@click.option(
    "--source-partition",
    type=click.IntRange(min=0),
    help="Only dead letters of this source partition (--where source.partition=N).",
)
@click.option(
    "--max-redrives",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_REDRIVES,
    show_default=True,
    help="Skip a dead letter whose packflow-redrive-count header is already this high.",
)
@click.option("--dry-run", is_flag=True, help="Read and report only: send and commit nothing.")
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="Most messages sent per second."
)
@click.option("--limit", type=click.IntRange(min=1), help="Most dead letters sent in this run.")
@click.option(
    "--startup-timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="How long to retry an unreachable bootstrap address.",
)
@_connection_options
def _command(
    dlq_topic: str,
    target_topic: str | None,
    group_id: str | None,
    where: tuple[str, ...],
    since: str | None,
    until: str | None,
    source_partition: int | None,
    max_redrives: int,
    dry_run: bool,
    rate: float | None,
    limit: int | None,
    startup_timeout_seconds: float,
    **connection: Any,
) -> None:
    """Send dead letters' original messages back to a topic.

    Each dead letter's original value, key and headers go to --target-topic, or back to its
    source topic (and partition). The packflow-source header is dropped and
    packflow-redrive-count is set one higher. Runs are resumable: each commits its group's
    offsets past what it read, once the broker acknowledged what it sent, and stops at the
    end offsets the dead-letter topic had when it started. Ends with a table of what was
    redriven and skipped. Connection flags and their PACKFLOW_* variables are the worker's.
    """
    try:
        options = RedriveOptions(
            dlq_topic=dlq_topic,
            connection=_connection_settings(connection),
            target_topic=target_topic,
            group_id=group_id,
            selection=Selection.parse(
                where, since=since, until=until, source_partition=source_partition
            ),
            max_redrives=max_redrives,
            dry_run=dry_run,
            rate=rate,
            limit=limit,
            startup_timeout_seconds=startup_timeout_seconds,
        )
    except SettingsError as exc:
        _fail(str(exc))
        return
    try:
        report = asyncio.run(_run(options))
    except StartupError as exc:
        _fail(str(exc))
        return
    click.echo(report.table())
    if report.failure is not None:
        _fail(report.failure, EXIT_FAILED)
    sys.exit(report.exit_code)


def _connection_settings(flags: dict[str, Any]) -> ConnectionSettings:
    given = {name: value for name, value in flags.items() if value is not None and value != ()}
    return build_settings(ConnectionSettings, SECRET_FIELDS, **given)


async def _run(options: RedriveOptions) -> RedriveReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await redrive(options, stop=stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: list[str]) -> None:
    """``packflow-worker redrive ARGS``: parse ``argv`` (the arguments after ``redrive``)."""
    run_command(_command, argv, _PROG)
