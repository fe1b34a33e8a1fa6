"""The identity pipeline on Quix Streams, for reference (runs in bench/.venv-quix only).

JSON in, the same JSON out, one output per input, Quix's default at-least-once
checkpointing. Run by ``worker_throughput.py`` as a subprocess; it stops on SIGTERM.
"""

from __future__ import annotations

import argparse

from quixstreams import Application


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--group-id", required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group_id,
        auto_offset_reset="earliest",
        auto_create_topics=False,
        loglevel="WARNING",
    )
    source = app.topic(args.input_topic, value_deserializer="json")
    sink = app.topic(args.output_topic, value_serializer="json")
    app.dataframe(source).to_topic(sink)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
