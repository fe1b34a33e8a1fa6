"""The bench's pipeline on Quix Streams, for reference (runs in bench/.venv-quix only).

JSON in, one JSON output per input, Quix's default at-least-once checkpointing and producer
settings (idempotent, librdkafka's acks=all and linger 5 ms). With ``--workload identity``
the decoded record is encoded again as it came, without calling the SDK's identity backend:
called once per record (Quix Streams has no batch step) it would add the SDK's ~2 us per
call, which the worker and the batched pipes pay once per batch. Other workloads run the
worker's backend on each record. Run by ``worker_throughput.py`` as a subprocess; it stops
on SIGTERM.
"""

from __future__ import annotations

from _pipe_args import pipe_parser
from _workloads import WORKLOADS
from quixstreams import Application


def main() -> int:
    """Command-line entry point."""
    parser = pipe_parser(__doc__, batched=False)
    args = parser.parse_args()
    backend = None if args.workload == "identity" else WORKLOADS[args.workload].pipe_backend()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group_id,
        auto_offset_reset="earliest",
        auto_create_topics=False,
        loglevel="WARNING",
    )
    source = app.topic(args.input_topic, value_deserializer="json")
    sink = app.topic(args.output_topic, value_serializer="json")
    frame = app.dataframe(source)
    if backend is not None:
        frame = frame.apply(backend)
    frame.to_topic(sink)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
