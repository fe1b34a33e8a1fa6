"""The command line every pipe takes (aiokafka, confluent-kafka, Quix), written once.

Only the standard library and ``_workloads``: each pipe runs in its own virtual environment.
"""

from __future__ import annotations

import argparse

from _workloads import WORKLOADS


def pipe_parser(doc: str | None, *, batched: bool = True) -> argparse.ArgumentParser:
    """The topics, the group and the workload; with ``batched``, also ``--count``, the
    worker's batch size and wait, and ``--forward-bytes`` (the Quix pipe has none of them)."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--group-id", required=True)
    if batched:
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--max-batch-size", type=int, default=1000)  # the worker's
        parser.add_argument("--max-batch-wait-ms", type=int, default=20)
        parser.add_argument(
            "--forward-bytes",
            action="store_true",
            help="forward each value untouched: no JSON, no backend (the forward phase)",
        )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="identity")
    return parser
