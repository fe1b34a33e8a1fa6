"""``kafka_local.LocalKafka`` (the Python API behind scripts/kafka and the fixture)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka_local import LocalKafka, check_bootstrap, default_kafka_version, default_libs_root
from kafka_local._config import server_properties
from kafka_local._jars import cached_jars, ensure_jars

from ._helpers import ROOT, pid_alive, wait_until

pytestmark = pytest.mark.kafka


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _read_group(bootstrap: str, topic: str, group: str, count: int) -> tuple[int, list]:
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        committed = await consumer.committed(tp)
        records: list = []
        deadline = time.monotonic() + 30
        while len(records) < count and time.monotonic() < deadline:
            records.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
        if records:
            await consumer.commit({tp: records[min(count, len(records)) - 1].offset + 1})
    finally:
        await consumer.stop()
    return committed, records


async def test_restart_on_the_same_data_dir_keeps_messages_and_committed_offsets(
    tmp_path: Path, create_topic_on: Callable[..., Awaitable[str]]
) -> None:
    broker = LocalKafka(tmp_path / "broker", tie_to_parent=True)
    group = f"group-{uuid.uuid4().hex[:8]}"
    bootstrap = broker.start()
    try:
        topic = await create_topic_on(bootstrap, 1)
        await _produce(bootstrap, topic, [f"m{i}".encode() for i in range(5)])
        committed, first = await _read_group(bootstrap, topic, group, 3)
        assert committed is None
        assert [r.value for r in first[:3]] == [b"m0", b"m1", b"m2"]
        broker.stop()
        assert not broker.is_running()

        bootstrap = broker.start()
        committed, rest = await _read_group(bootstrap, topic, group, 2)
    finally:
        if broker.is_running():
            broker.stop()
    assert committed == 3
    assert [r.value for r in rest] == [b"m3", b"m4"]


def _spawn_owner(state_dir: Path) -> subprocess.Popen[str]:
    """A Python process that starts a tied broker, prints its pid, then waits."""
    code = textwrap.dedent(
        f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        from kafka_local import LocalKafka
        broker = LocalKafka({str(state_dir)!r}, tie_to_parent=True)
        broker.start()
        print(broker.pid, flush=True)
        sys.stdin.read()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_tied_broker_dies_with_its_owner_process(tmp_path: Path, how: str) -> None:
    owner = _spawn_owner(tmp_path / "broker")
    try:
        assert owner.stdout is not None
        jvm_pid = int(owner.stdout.readline())
        assert pid_alive(jvm_pid)
        owner.send_signal(getattr(signal, how))
        owner.wait(timeout=60)
        wait_until(lambda: not pid_alive(jvm_pid), 60, f"the broker JVM to exit after {how}")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        leftover = LocalKafka(tmp_path / "broker")
        if leftover.is_running():
            leftover.stop()


def test_start_when_running_raises_and_bootstrap_answers_metadata(tmp_path: Path) -> None:
    from kafka_local import AlreadyRunningError

    broker = LocalKafka(tmp_path / "broker", tie_to_parent=True)
    bootstrap = broker.start()
    try:
        assert broker.bootstrap_servers == bootstrap
        metadata = check_bootstrap(bootstrap)
        assert [(b[1], b[2]) for b in metadata.brokers] == [
            ("127.0.0.1", int(bootstrap.rpartition(":")[2]))
        ]
        with pytest.raises(AlreadyRunningError, match="already running at"):
            LocalKafka(tmp_path / "broker").start()
    finally:
        broker.stop()


def test_slf4j_binding_matches_the_resolved_slf4j_api() -> None:
    libs = ensure_jars(default_libs_root(), default_kafka_version())
    jars = sorted(p.name for p in libs.glob("*.jar"))
    (api,) = [j for j in jars if j.startswith("slf4j-api-")]
    bindings = [j for j in jars if j.startswith("log4j-slf4j")]
    expected = "log4j-slf4j2-impl-" if api.startswith("slf4j-api-2.") else "log4j-slf4j-impl-"
    assert len(bindings) == 1
    assert bindings[0].startswith(expected), (api, bindings)
    assert any(j.startswith("log4j-core-") for j in jars)


def test_server_properties_enable_single_node_transactions_and_groups(tmp_path: Path) -> None:
    text = server_properties(tmp_path / "data", 9092, 9093, {"log.retention.ms": "1000"})
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert settings["transaction.state.log.min.isr"] == "1"
    assert settings["transaction.state.log.replication.factor"] == "1"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["process.roles"] == "broker,controller"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert settings["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["log.dirs"] == str(tmp_path / "data")
    assert settings["log.retention.ms"] == "1000"
    assert os.sep in settings["log.dirs"]


def test_a_jar_cache_missing_a_listed_jar_is_downloaded_again(tmp_path: Path) -> None:
    version = default_kafka_version()
    source = ensure_jars(default_libs_root(), version)
    broken = tmp_path / "libs" / version
    shutil.copytree(source, broken)
    broker_jar = broken / f"kafka_2.13-{version}.jar"
    broker_jar.unlink()
    assert not cached_jars(broken)

    repaired = ensure_jars(tmp_path / "libs", version)
    assert repaired == broken
    assert broker_jar.is_file()
    assert cached_jars(repaired)
    assert sorted(p.name for p in repaired.glob("*.jar")) == sorted(
        p.name for p in source.glob("*.jar")
    )


def test_a_cluster_id_starting_with_a_dash_formats_and_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka_local import broker as broker_module

    dash_id = "-" + "A" * 21
    monkeypatch.setattr(broker_module, "_random_cluster_id", lambda: dash_id)
    broker = LocalKafka(tmp_path / "broker", tie_to_parent=True)
    bootstrap = broker.start()
    try:
        assert check_bootstrap(bootstrap).cluster_id == dash_id
    finally:
        broker.stop()


def test_random_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka_local import broker as broker_module

    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64url "-A..."
    drawn = iter([dash_first, uuid.UUID(int=1)])
    monkeypatch.setattr(broker_module.uuid, "uuid4", lambda: next(drawn))
    cluster_id = broker_module._random_cluster_id()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAQ"
