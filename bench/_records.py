"""The JSON input records of the worker benchmarks: one maker per kind of input.

Stdlib only: the pipes import it in their own venvs. Every maker is deterministic in ``i``
(same backlog in every run) and pads its record to about ``size`` bytes, so that message
size stays the bench's knob whatever the workload.
"""

from __future__ import annotations

import json
from typing import Any

#: Healthy (mean, std) of the anomaly scorer's four readings (examples/anomaly_scorer).
_READINGS: dict[str, tuple[float, float]] = {
    "temperature_c": (65.0, 4.0),
    "pressure_kpa": (310.0, 12.0),
    "vibration_mm_s": (2.5, 0.6),
    "current_a": (12.0, 1.5),
}
#: One reading in ``_ANOMALY_EVERY`` sits 6 standard deviations out (an anomaly).
_ANOMALY_EVERY = 50


def _padded(head: dict[str, Any], size: int) -> bytes:
    """``head`` as compact JSON with a ``note`` of padding, about ``size`` bytes in all."""
    base = json.dumps(head, separators=(",", ":"))
    pad = max(0, size - len(base) - len(',"note":""'))
    return (base[:-1] + ',"note":"' + "x" * pad + '"}').encode()


def make_record(i: int, size: int = 500) -> bytes:
    """A JSON object of about ``size`` bytes: a few typed fields plus padding."""
    head = {
        "id": i,
        "device": f"dev-{i % 1000:04d}",
        "site": ["north", "south", "east", "west"][i % 4],
        "values": [round((i * 7919 + k * 104729) % 10007 / 97.0, 3) for k in range(8)],
        "ok": i % 17 != 0,
    }
    return _padded(head, size)


def make_reading(i: int, size: int = 500) -> bytes:
    """A sensor reading the example anomaly scorer accepts, about ``size`` bytes.

    Each of the four readings sits within 3 standard deviations of its healthy mean
    (a deterministic spread in ``i``); one record in 50 has a temperature 6 deviations out.
    """
    head: dict[str, Any] = {"id": i, "device": f"dev-{i % 1000:04d}"}
    for k, (name, (mean, std)) in enumerate(_READINGS.items()):
        spread = ((i * 7919 + k * 104729) % 10007) / 10007.0 * 6.0 - 3.0
        head[name] = round(mean + spread * std, 3)
    if i % _ANOMALY_EVERY == 0:
        head["temperature_c"] = round(65.0 + 6.0 * 4.0, 3)
    return _padded(head, size)
