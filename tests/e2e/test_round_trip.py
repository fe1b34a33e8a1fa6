"""Outputs: one message per input, same key, headers kept plus packflow-source."""

from __future__ import annotations

import orjson
import pytest

from tests.e2e.conftest import Identity, consume, produce, running_worker

pytestmark = pytest.mark.kafka


async def test_object_and_array_messages_round_trip_with_key_headers_and_source(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    settings = worker_settings(**names)
    messages = [
        (b"k-obj", orjson.dumps({"id": 1})),
        (b"k-arr", orjson.dumps([{"id": 2}, {"id": 3}])),
        (None, orjson.dumps({"id": 4})),
    ]
    await produce(kafka_bootstrap, names["input_topic"], messages, headers=[("trace", b"abc")])
    async with running_worker(settings, Identity()):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 3)
    assert [o.key for o in outputs] == [b"k-obj", b"k-arr", None]
    assert orjson.loads(outputs[0].value) == {"id": 1, "seen": True}
    assert orjson.loads(outputs[1].value) == [{"id": 2, "seen": True}, {"id": 3, "seen": True}]
    for offset, out in enumerate(outputs):
        headers = dict(out.headers)
        assert headers["trace"] == b"abc"
        assert headers["packflow-source"] == f"{names['input_topic']}/0/{offset}".encode()
