"""The single-node KRaft broker settings and the log4j2 config, rendered into files."""

from __future__ import annotations

from pathlib import Path
from string import Template

from ._ports import LOOPBACK

_LOG4J2_TEMPLATE = Path(__file__).with_name("log4j2.xml.template")

#: Settings a one-node cluster needs for consumer groups, idempotent and transactional
#: producers and read_committed consumers. Topics are never auto-created: tests and the
#: demo create theirs with the partition counts they need.
BASE_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "delete.topic.enable": "true",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.dedupe.buffer.size": "16777216",
    # Files of deleted topics go about 1 s after deletion, not 60 s (and the log manager's
    # background tasks start 1 s after start-up, not 30 s): brokers of tests and benchmarks
    # live less than a minute, and deleted topics otherwise piled up on disk across restarts
    # (33 GB after a day of benchmarks) and were reloaded at every start.
    "log.segment.delete.delay.ms": "1000",
    "log.initial.task.delay.ms": "1000",
}


def server_properties(
    data_dir: Path, port: int, controller_port: int, overrides: dict[str, str] | None = None
) -> str:
    """Render ``server.properties`` for a broker+controller on loopback ports."""
    settings = {
        **BASE_SETTINGS,
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "log.dirs": str(data_dir),
        **(overrides or {}),
    }
    lines = ["# Written by scripts/kafka at each start; edits are overwritten."]
    lines += [f"{key}={_escape(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def log4j2_config(log_file: Path) -> str:
    """Render the log4j2 XML config that sends every broker log line to ``log_file``."""
    text = _LOG4J2_TEMPLATE.read_text(encoding="utf-8")
    return Template(text).safe_substitute(LOG_FILE=_xml_attr(str(log_file)))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\")


def _xml_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
