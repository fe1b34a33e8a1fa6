"""The ``perf`` phase: the broker's own ceiling, from Kafka's producer and consumer perf tools.

``org.apache.kafka.tools.ProducerPerformance`` and ``ConsumerPerformance`` (Maven artifact
``org.apache.kafka:kafka-tools``, the broker's version) are fetched once with Maven, as
``scripts/kafka_local`` fetches the broker: ``mvn dependency:copy-dependencies`` on
``bench/kafka_tools/pom.xml`` into ``bench/.kafka/tools/<version>/`` (git-ignored). Then,
each run with ``java -cp <jars>``:

* the producer writes ``--records`` messages of the workload's own JSON records (a payload
  file of the first 1,000 backlog records) to a fresh topic of the same partitions, with
  the worker's producer options (acks=all, idempotence, linger 5 ms, batch 256 KiB);
* the consumer reads the backlog with its own group.

Each reports its own records/s; the producer's is also measured from its topic's broker
timestamps, like every other phase, and CPU is read over that window. The consumer's
window is the one it reports (its start plus the group join, to its end).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _child import Child
from _common import BENCH, delete_topics, log, read_topic
from _phase import Sitting, cpu_figures, deadline_for, wait_for_exit, window_figures

KAFKA_VERSION = "4.4.0"
POM = BENCH / "kafka_tools" / "pom.xml"
TOOLS_ROOT = BENCH / ".kafka" / "tools"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
JAVA_OPTIONS = ("-Xms128m", "-Xmx512m", "-Djava.awt.headless=true")
_MARKER = ".complete"
_PRODUCER_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency"
)


def ensure_tools(version: str = KAFKA_VERSION) -> Path:
    """``bench/.kafka/tools/<version>`` holding kafka-tools and its runtime jars.

    The first call runs Maven (``mvn -q -B``, Maven Central); later calls check the marker
    file. Raises ``RuntimeError`` naming Maven's log when the download fails.
    """
    jars = TOOLS_ROOT / version
    if (jars / _MARKER).is_file():
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch Kafka's perf tools")
    TOOLS_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=TOOLS_ROOT))
    log_path = TOOLS_ROOT / f"mvn-{version}.log"
    log(f"downloading kafka-tools {version} with Maven into {jars} ...")
    with log_path.open("w") as mvn_log:
        code = subprocess.run(
            [
                *(mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM)),
                *(f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={staging}"),
                *("-DincludeScope=runtime", f"-Dkafka.version={version}"),
            ],
            cwd=staging,
            stdin=subprocess.DEVNULL,
            stdout=mvn_log,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        ).returncode
    if code != 0 or not (staging / f"kafka-tools-{version}.jar").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"Maven could not fetch kafka-tools {version}; see {log_path}")
    (staging / _MARKER).write_text("\n".join(sorted(p.name for p in staging.glob("*.jar"))))
    if jars.exists():
        shutil.rmtree(jars)
    os.replace(staging, jars)
    return jars


def java_argv(jars: Path, tool: str, *args: str) -> list[str]:
    """``java -cp <jars>/* org.apache.kafka.tools.<tool> args...``."""
    return ["java", *JAVA_OPTIONS, "-cp", f"{jars}/*", f"org.apache.kafka.tools.{tool}", *args]


def parse_producer(text: str) -> dict[str, Any]:
    """ProducerPerformance's final line: records/s, MB/s, average latency (ms)."""
    final = [line for line in text.splitlines() if "50th" in line and _PRODUCER_LINE.search(line)]
    if not final:
        return {}
    match = _PRODUCER_LINE.search(final[-1])
    assert match is not None
    return {
        "records": int(match[1]),
        "tool_records_per_s": round(float(match[2])),
        "tool_mb_per_s": float(match[3]),
        "tool_avg_latency_ms": round(float(match[4]), 1),
    }


def parse_consumer(text: str) -> dict[str, Any]:
    """ConsumerPerformance's result row: records/s overall and while fetching, and its
    window (epoch seconds: its start plus the group join, to its end)."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if not line.startswith("start.time"):
            continue
        names = [n.strip() for n in line.split(",")]
        row = dict(zip(names, (v.strip() for v in lines[i + 1].split(",")), strict=False))
        fmt = "%Y-%m-%d %H:%M:%S:%f"
        start = datetime.strptime(row["start.time"], fmt).timestamp()
        end = datetime.strptime(row["end.time"], fmt).timestamp()
        return {
            "records": int(row["data.consumed.in.nMsg"]),
            "tool_records_per_s": round(float(row["nMsg.sec"])),
            "tool_fetch_records_per_s": round(float(row["fetch.nMsg.sec"])),
            "rebalance_ms": int(row["rebalance.time.ms"]),
            "window": (start + int(row["rebalance.time.ms"]) / 1000.0, end),
        }
    return {}


def write_payload(sitting: Sitting, path: Path) -> None:
    """The producer's payload file: the first 1,000 backlog records, one per line."""
    lines = (sitting.workload.make(i, sitting.args.record_bytes) for i in range(1000))
    path.write_bytes(b"\n".join(lines) + b"\n")


async def producer_perf(sitting: Sitting, round_no: int, jars: Path) -> dict[str, Any]:
    """ProducerPerformance writes ``--records`` messages to a fresh topic."""
    args = sitting.args
    out = await sitting.output_topic(sitting.topic("perfp", round_no, "out"))
    payload = sitting.log_path("perf-payload", round_no).with_suffix(".txt")
    write_payload(sitting, payload)
    argv = java_argv(
        jars, "ProducerPerformance", "--bootstrap-server", sitting.bootstrap, "--topic", out
    )
    argv += ["--num-records", str(args.records), "--throughput", "-1"]
    argv += ["--payload-file", str(payload), "--command-property", "acks=all"]
    argv += ["enable.idempotence=true", "linger.ms=5", f"batch.size={256 * 1024}"]
    child = Child(argv, cwd=BENCH, env=None, log_path=sitting.log_path("perfp", round_no))
    sitting.cpu.watch("perf_producer", child.pid)
    try:
        code = await wait_for_exit(child, deadline_for(args.records))
    finally:
        sitting.cpu.unwatch("perf_producer")
    result = {"exit_code": code, **parse_producer(child.log_text())}
    dump = await read_topic(sitting.bootstrap, out, with_sources=False)
    result.update(window_figures(sitting.cpu, "perf_producer", dump))
    payload.unlink(missing_ok=True)
    await delete_topics(sitting.bootstrap, [out])
    return result


async def consumer_perf(sitting: Sitting, round_no: int, jars: Path) -> dict[str, Any]:
    """ConsumerPerformance reads the backlog with its own group."""
    argv = java_argv(
        jars,
        "ConsumerPerformance",
        "--bootstrap-server",
        sitting.bootstrap,
        "--topic",
        sitting.input_topic,
        "--num-records",
        str(sitting.args.records),
        "--group",
        sitting.group("perfc", round_no),
        "--timeout",
        "60000",
    )
    child = Child(argv, cwd=BENCH, env=None, log_path=sitting.log_path("perfc", round_no))
    sitting.cpu.watch("perf_consumer", child.pid)
    try:
        code = await wait_for_exit(child, deadline_for(sitting.args.records))
    finally:
        sitting.cpu.unwatch("perf_consumer")
    result: dict[str, Any] = {"exit_code": code, **parse_consumer(child.log_text())}
    window = result.pop("window", None)
    if window is not None:
        start, end = window
        result["records_per_s"] = result["tool_fetch_records_per_s"]
        result["window_s"] = round(end - start, 3)
        result.update(cpu_figures(sitting.cpu, "perf_consumer", start, end, result["records"]))
    return result


async def perf_phase(sitting: Sitting, round_no: int) -> dict[str, Any]:
    """Kafka's producer, then consumer performance tool, one after the other."""
    try:
        jars = ensure_tools()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    started = time.time()
    result: dict[str, Any] = {
        "producer": await producer_perf(sitting, round_no, jars),
        "consumer": await consumer_perf(sitting, round_no, jars),
        "kafka_tools": KAFKA_VERSION,
    }
    broker = sitting.cpu.used("broker", started, time.time())
    result["broker_cpu_s_phase"] = None if broker is None else round(broker, 2)
    return result
