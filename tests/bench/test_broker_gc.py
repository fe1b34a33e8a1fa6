"""bench/_broker_gc.py: the broker's pauses from jstat -gc, parsed, and read from a real JVM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _broker_gc import GcCounters, parse_jstat_gc, pauses_between, read_gc

# jstat -gc of the test broker (SerialGC: no concurrent collector, CGC and CGCT are "-").
SERIAL = """\
    S0C         S1C         S0U         S1U          EC           EU           OC           OU          MC         MU       CCSC      CCSU     YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT
     5184.0      5184.0      1644.1         0.0      41600.0       5411.8     103296.0      61976.3    47104.0    45828.0    6592.0    6052.8   1702    19.620     6     0.561     -         -    20.181
"""  # noqa: E501
# The same columns from a G1 JVM, whose concurrent cycles pause it too (remark, cleanup).
G1 = """\
    S0C         S1C         S0U         S1U          EC           EU           OC           OU          MC         MU       CCSC      CCSU     YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT
        0.0      4096.0         0.0      4096.0     636928.0     94208.0     407552.0      52130.5    47616.0    46392.1    6528.0    6035.6     29     0.453     0     0.000     4     0.012     0.465
"""  # noqa: E501


def test_serial_counts_young_and_full_collections() -> None:
    assert parse_jstat_gc(SERIAL) == GcCounters(1708, pytest.approx(20.181))


def test_g1_counts_its_concurrent_cycles_pauses_too() -> None:
    assert parse_jstat_gc(G1) == GcCounters(33, pytest.approx(0.465))


def test_anything_else_is_refused() -> None:
    with pytest.raises(ValueError, match="not a jstat -gc output"):
        parse_jstat_gc("12345 not found")


def test_the_pauses_of_a_run_are_the_difference_of_its_counters() -> None:
    found = pauses_between(GcCounters(1702, 19.620), GcCounters(1723, 19.913), 20.0)

    assert found == {
        "collections": 21,
        "pause_ms": 293.0,
        "mean_pause_ms": 14.0,
        "share_of_run": 0.0146,
    }
    assert pauses_between(GcCounters(5, 0.1), GcCounters(5, 0.1), 20.0)["mean_pause_ms"] is None
    assert pauses_between(None, GcCounters(5, 0.1), 20.0) is None


def test_no_pid_or_no_jvm_gives_nothing() -> None:
    assert read_gc(None) is None
    assert read_gc(2**22 + 12345) is None  # no such process


def test_a_running_jvm_is_read(tmp_path: Path) -> None:
    source = tmp_path / "Wait.java"
    source.write_text(
        "class Wait { public static void main(String[] a) throws Exception {"
        ' System.out.println("up"); System.in.read(); } }'
    )
    jvm = subprocess.Popen(
        ["java", str(source)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert jvm.stdout is not None
        assert jvm.stdout.readline().strip() == "up"
        counters = read_gc(jvm.pid)
    finally:
        jvm.communicate("\n", timeout=60)
    assert counters is not None
    assert counters.collections >= 0
    assert counters.seconds >= 0.0
