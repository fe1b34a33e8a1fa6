"""The JSON input records of the worker benchmarks.

Stdlib only (a pipe in its own venv may import it). A maker is deterministic in ``i`` (same
backlog in every run) and pads its record to about ``size`` bytes.
"""

from __future__ import annotations

import json
from typing import Any


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
