"""``packflow-worker``: parse flags -> settings -> load backend -> run -> exit code.

Every option is also a ``PACKFLOW_<OPTION>`` environment variable; flags win. Start-up
failures print one line, ``packflow-worker: error: <what and where>``, and exit 2.
``packflow-worker redrive ...`` is a command of its own (:mod:`worker.redrive.cli`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import click

from worker import event_loop
from worker._gc import tune_gc
from worker._loading import load_backend
from worker._logging import configure_logging
from worker.app import Worker
from worker.errors import SettingsError, StartupError
from worker.settings import WorkerSettings, env_name, flag_name, load_settings

__all__ = [
    "EXIT_STARTUP_FAILURE",
    "SETTING_HELP",
    "fail",
    "main",
    "run_command",
    "setting_options",
]

EXIT_STARTUP_FAILURE = 2

SETTING_HELP: dict[str, str] = {  # the --help text of each setting
    "bootstrap_servers": "Kafka bootstrap servers, host:port[,host:port].",
    "security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    "ssl_cafile": "PEM file of the CA(s) that signed the brokers' certificates.",
    "ssl_certfile": "PEM client certificate (mTLS); may hold the key too.",
    "ssl_keyfile": "PEM private key of --ssl-certfile.",
    "ssl_key_password": "Password of an encrypted --ssl-keyfile.",
    "ssl_key_password_file": "File holding --ssl-key-password.",
    "ssl_check_hostname": "Check that the broker's certificate names its host (true/false).",
    "sasl_mechanism": "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.",
    "sasl_username": "SASL user (PLAIN, SCRAM).",
    "sasl_password": "SASL password (PLAIN, SCRAM); prefer --sasl-password-file.",
    "sasl_password_file": "File holding --sasl-password.",
    "sasl_oauth_token_endpoint_url": "OAUTHBEARER: OIDC token endpoint (client credentials).",
    "sasl_oauth_client_id": "OAUTHBEARER: OAuth client id.",
    "sasl_oauth_client_secret": "OAUTHBEARER: client secret; prefer the _FILE variant.",
    "sasl_oauth_client_secret_file": "File holding --sasl-oauth-client-secret.",
    "sasl_oauth_scope": "OAUTHBEARER: scope to ask the token for.",
    "group_instance_id": "Static group membership id (e.g. the pod name): no rebalance on restart.",
    "compression_type": "Producer compression: gzip, snappy, lz4 or zstd.",
    "max_request_size": "Most bytes of one produce request (so of one message).",
    "kafka_options": "Client option KEY=VALUE without a flag; consumer.KEY / producer.KEY for one "
    "side; repeatable. [env: PACKFLOW_KAFKA_OPTIONS as a JSON object]",
    "input_topic": "Topic to consume JSON records from (required).",
    "output_topic": "Topic for one output message per input message (required).",
    "dlq_topic": "Dead-letter topic (required).",
    "metrics_topic": "Topic for batch_metrics events (they always go to stdout too).",
    "group_id": "Kafka consumer group.",
    "backend": "Backend as module.path:Name.",
    "loader": "How to import --backend: local (files under the CWD) or module (installed).",
    "project": "A packflow project folder (its packflow.yaml names the backend).",
    "backend_config": "JSON object of keyword arguments for the backend's config.",
    "max_batch_size": "Most Kafka messages per batch.",
    "max_batch_wait_ms": "Longest wait for a batch to fill (the broker holds a fetch until "
    "--fetch-min-bytes have come or this is over).",
    "delivery": "at-least-once or exactly-once.",
    "executor_threads": "Threads that run backend code.",
    "health_port": "Port of /healthz and /readyz (0 = any free port).",
    "max_in_flight_records": "Most Kafka messages fetched but not yet committed.",
    "max_in_flight_bytes": "Most message bytes fetched but not yet committed.",
    "worker_id": "Worker id in events and dead letters (default <hostname>-<pid>).",
    "auto_offset_reset": "Where a new group starts: earliest or latest.",
    "readiness_stall_seconds": "/readyz fails after this long stalled or with Kafka unreachable.",
    "shutdown_timeout_seconds": "Deadline for draining and closing on SIGTERM/SIGINT.",
    "log_level": "DEBUG, INFO, WARNING or ERROR.",
    "event_loop": "auto (uvloop when installed, asyncio's loop over TLS), uvloop or asyncio.",
    "retry_on": "Exception class names a backend raises for transient failures, comma-separated "
    "(e.g. TimeoutError,ConnectionError); packflow.exceptions.RetryableError always is.",
    "retry_max_attempts": "Calls made for a transiently failing batch before the breaker holds it.",
    "retry_initial_backoff_ms": "First delay between retries of a transient failure.",
    "retry_max_backoff_ms": "Longest delay between retries of a transient failure.",
    "breaker_failure_ratio": "Share of a batch's messages failing the same way that counts as an "
    "outage (the batch is held, not dead-lettered).",
    "breaker_min_messages": "Fewest messages in a batch for --breaker-failure-ratio to apply.",
    "breaker_max_backoff_ms": "Longest delay between runs of a held batch.",
    "backend_timeout_seconds": "A backend call running longer fails transiently (default: none).",
    "backend_timeout_grace_seconds": "/healthz fails once a timed-out call still runs this long.",
}


_REPEATABLE = {"kafka_options"}
_PROG = "packflow-worker"


def setting_options(fields: Iterable[str], *, default_help: str) -> Callable[[Any], Any]:
    """A decorator adding one option per settings field, in order: its flag, its help (or
    ``default_help``) and its variable; ``--kafka-option`` is repeatable."""

    def decorate(func: Any) -> Any:
        for name in reversed(list(fields)):
            help_text = SETTING_HELP.get(name, default_help)
            if name in _REPEATABLE:
                func = click.option(flag_name(name), name, multiple=True, help=help_text)(func)
                continue
            env = env_name(name)
            func = click.option(
                flag_name(name), name, type=str, default=None, help=f"{help_text} [env: {env}]"
            )(func)
        return func

    return decorate


def fail(prog: str, message: str, code: int = EXIT_STARTUP_FAILURE) -> NoReturn:
    """Print ``<prog>: error: <message>`` as one line on stderr and exit with ``code``."""
    click.echo(f"{prog}: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def run_command(command: click.Command, args: list[str], prog: str) -> None:
    """Run a click ``command`` on ``args``; a usage error is one :func:`fail` line."""
    try:
        command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        fail(prog, exc.format_message())
    except click.exceptions.Abort:
        sys.exit(130)


def _fail(message: str) -> None:
    fail(_PROG, message)


_options = setting_options(WorkerSettings.model_fields, default_help="Kafka client tuning.")


@click.command(
    name="packflow-worker",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Dead letters back to their topics: packflow-worker redrive --help",
)
@_options
def _command(**options: Any) -> None:
    """Run a packflow InferenceBackend as a Kafka streaming worker."""
    flags = {name: value for name, value in options.items() if value is not None and value != ()}
    try:
        settings = load_settings(**flags)
    except SettingsError as exc:
        _fail(str(exc))
        return
    configure_logging(settings.log_level)
    try:
        backend = load_backend(settings)
    except StartupError as exc:
        _fail(str(exc))
        return
    tune_gc()  # after the backend's imports, so they are frozen too
    try:
        tls = event_loop.uses_tls(settings.security_protocol)
        code = event_loop.run(_serve(settings, backend), settings.event_loop, tls=tls)
    except StartupError as exc:
        _fail(str(exc))
        return
    if code != 0:
        # A backend call may still run in its thread (deadline passed, forced stop): do not
        # let the interpreter wait for it at exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


async def _serve(settings: WorkerSettings, backend: Any) -> int:
    worker = Worker(settings, backend)
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal() -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            worker.request_stop()
        else:  # a second signal: stop now, leave the work in flight uncommitted
            worker.force_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``redrive`` as the first argument runs that command."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["redrive"]:
        from worker.redrive.cli import main as redrive_main  # imports this module

        redrive_main(args[1:])
        return
    run_command(_command, args, _PROG)
