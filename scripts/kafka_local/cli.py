"""``scripts/kafka start|stop|status|logs|fetch``: the command-line face of ``LocalKafka``.

``start --secure`` (and ``status`` of a secured broker) prints the client settings of
each listener as ``PACKFLOW_*`` lines, passwords included: the broker is a throw-away
one on 127.0.0.1, and printing them is the point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._errors import KafkaLocalError
from ._jars import ensure_jars
from .broker import DEFAULT_STATE_DIR, LocalKafka, default_kafka_version, default_libs_root

_PROG = "kafka"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Run a single-node Apache Kafka broker (KRaft) on 127.0.0.1 for "
        "packflow's tests, demo and benchmarks. Needs Java 17+; Maven once, to fetch jars.",
    )
    state_help = "broker data, config, pid and log files (default: .kafka/broker)"
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=state_help)
    # Also accepted after the command (`kafka start --state-dir X`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=state_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser(
        "start", parents=[common], help="start a broker and print its bootstrap address"
    )
    start.add_argument("--port", type=int, help="client port (default: a free one)")
    start.add_argument("--controller-port", type=int, help="KRaft controller port")
    start.add_argument(
        "--kafka-version",
        default=default_kafka_version(),
        help="Apache Kafka version from Maven Central (default: %(default)s)",
    )
    start.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra broker setting, e.g. --set auto.create.topics.enable=true",
    )
    start.add_argument("--offline", action="store_true", help="never download: Maven runs with -o")
    start.add_argument(
        "--secure",
        action="store_true",
        help="TLS, mTLS, SASL SCRAM/PLAIN, OAUTHBEARER and ACLs instead of PLAINTEXT; "
        "prints each listener's client settings",
    )
    start.add_argument(
        "--jwks-url",
        help="with --secure: the identity provider's JWKS URL that checks OAUTHBEARER "
        "tokens (default: a file JWKS of a throw-away key, with a worker token signed by it)",
    )
    start.add_argument("--oauth-issuer", help="with --secure: the iss tokens must carry")
    start.add_argument("--oauth-audience", help="with --secure: the aud tokens must carry")
    start.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait until it answers"
    )
    fetch = commands.add_parser(
        "fetch", help="download the broker jars into .kafka/libs/<version> (no start)"
    )
    fetch.add_argument("--kafka-version", default=default_kafka_version())
    fetch.add_argument("--offline", action="store_true", help="Maven runs with -o")
    stop = commands.add_parser("stop", parents=[common], help="stop the broker")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL")
    commands.add_parser(
        "status", parents=[common], help="print the bootstrap address; exit 1 if not running"
    )
    logs = commands.add_parser("logs", parents=[common], help="print the end of the broker log")
    logs.add_argument("-n", "--lines", type=int, default=100, help="lines to print")
    return parser


def _settings(pairs: Sequence[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KafkaLocalError(f"--set {pair!r} is not KEY=VALUE")
        settings[key.strip()] = value.strip()
    return settings


def _announce(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr, flush=True)


def _print_clients(broker: LocalKafka) -> None:
    """The bootstrap address; for a secured broker, every listener's client settings."""
    security = broker.security
    text = security.describe() if security is not None else broker.bootstrap_servers + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    if args.command == "start":
        broker = LocalKafka(
            args.state_dir,
            version=args.kafka_version,
            port=args.port,
            controller_port=args.controller_port,
            settings=_settings(args.set),
            offline=args.offline,
            announce=_announce,
            secure=args.secure,
            jwks_url=args.jwks_url,
            oauth_issuer=args.oauth_issuer,
            oauth_audience=args.oauth_audience,
        )
        broker.start(timeout=args.timeout)
        kind = "secured Apache Kafka" if args.secure else "Apache Kafka"
        _announce(f"{kind} {broker.version} is up (pid {broker.pid}, log {broker.log_file})")
        _print_clients(broker)
        return 0
    if args.command == "fetch":
        libs = ensure_jars(
            default_libs_root(), args.kafka_version, offline=args.offline, announce=_announce
        )
        print(libs, flush=True)
        return 0
    broker = LocalKafka(args.state_dir)
    if args.command == "stop":
        broker.stop(timeout=args.timeout)
        _announce(f"stopped the broker of {broker.state_dir}")
        return 0
    if args.command == "status":
        if not broker.is_running():
            _announce(f"not running (state dir {broker.state_dir})")
            return 1
        _print_clients(broker)
        return 0
    if not broker.log_file.is_file():
        raise KafkaLocalError(f"no broker log yet at {broker.log_file}")
    lines = broker.log_file.read_text(errors="replace").splitlines()
    sys.stdout.write("".join(line + "\n" for line in lines[len(lines) - max(args.lines, 0) :]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (0 ok, 1 error or not running)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except KafkaLocalError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
