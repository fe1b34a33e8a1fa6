"""Every bad input kind goes to the dead-letter topic in the fixed format; the rest proceeds."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.e2e.conftest import Poison, consume, produce, running_worker

pytestmark = pytest.mark.kafka

BAD = [
    (b"\xff\xfe{", "NotUtf8Error", "decode"),
    (b'{"id": 1,', "InvalidJsonError", "decode"),
    (b"42", "NotARecordError", "decode"),
    (b'[{"id": 3}, "x"]', "NotARecordError", "decode"),
    (b'{"id": 4, "poison": true}', "ValueError", "execute"),
]


async def test_each_bad_input_kind_is_dead_lettered_and_the_rest_of_the_batch_proceeds(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    good = [orjson.dumps({"id": 0}), orjson.dumps([{"id": 5}, {"id": 6}])]
    values = [good[0], *(v for v, _, _ in BAD), good[1]]
    messages = [(f"key-{i}".encode(), v) for i, v in enumerate(values)]
    await produce(kafka_bootstrap, names["input_topic"], messages, headers=[("h", b"v")])

    async with running_worker(worker_settings(**names), Poison()):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 2)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], len(BAD))

    assert [o.key for o in outputs] == [b"key-0", f"key-{len(values) - 1}".encode()]
    assert orjson.loads(outputs[1].value) == [{"id": 5, "seen": True}, {"id": 6, "seen": True}]
    assert len(letters) == len(BAD)
    for offset, (letter, (value, error_type, step)) in enumerate(
        zip(letters, BAD, strict=True), start=1
    ):
        body = orjson.loads(letter.value)
        assert set(body) >= {"error", "source", "value", "worker"}
        assert body["error"]["type"] == error_type
        assert body["error"]["step"] == step
        assert body["error"]["message"]
        assert body["source"]["topic"] == names["input_topic"]
        assert body["source"]["partition"] == 0
        assert body["source"]["offset"] == offset
        assert isinstance(body["source"]["timestamp"], int)
        assert base64.b64decode(body["value"]) == value
        assert body["worker"] == "test-worker"
        assert letter.key == f"key-{offset}".encode()
        headers = dict(letter.headers)
        assert headers["h"] == b"v"
        assert headers["packflow-source"] == f"{names['input_topic']}/0/{offset}".encode()
    poison = orjson.loads(letters[-1].value)["error"]
    assert "poison record id=4" in poison["message"]
    assert f"{names['input_topic']}/0@5" in poison["message"]


async def test_a_poison_record_in_a_batch_of_500_yields_499_outputs_and_1_dead_letter(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    messages = [(str(i).encode(), orjson.dumps({"id": i, "poison": i == 137})) for i in range(500)]
    await produce(kafka_bootstrap, names["input_topic"], messages)
    backend = Poison()
    async with running_worker(worker_settings(**names, max_batch_size=500), backend) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 499)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, settle=0.5)
    assert [orjson.loads(o.value)["id"] for o in outputs] == [i for i in range(500) if i != 137]
    assert len(letters) == 1
    body = orjson.loads(letters[0].value)
    assert body["source"]["offset"] == 137
    assert body["error"] | {"message": None} == {
        "type": "ValueError",
        "step": "execute",
        "message": None,
        "attempts": 1,
    }
    (batch,) = [
        m
        for m in worker.recent_metrics
        if m["partitions"][0]["first_offset"] <= 137 <= m["partitions"][0]["last_offset"]
    ]
    assert batch["batch_size"] == 500  # all produced before start: one fetch, one batch
    assert batch["dead_letters"] == 1
    assert batch["outputs"] == batch["batch_size"] - 1
    assert batch["failed_backend_calls"] >= 1


class Bloats(Poison):
    """Outputs larger than a Kafka message may be for records with ``bloat``; ``pad`` pads."""

    def execute(self, inputs):
        return [
            dict(r, blob="x" * (1_100_000 if r.get("bloat") else r.get("pad", 0))) for r in inputs
        ]


async def test_an_output_the_broker_cannot_take_becomes_a_publish_dead_letter(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    values = [orjson.dumps({"id": i}) for i in range(12)]
    values[5] = orjson.dumps({"id": 5, "bloat": True})
    values[8] = orjson.dumps({"id": 8, "pad": 300_000})  # over the 256 KiB producer batch
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    async with running_worker(worker_settings(**names), Bloats()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 11)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, settle=0.5)
    assert [orjson.loads(o.value)["id"] for o in outputs] == [i for i in range(12) if i != 5]
    assert len(orjson.loads(outputs[7].value)["blob"]) == 300_000
    (letter,) = letters
    body = orjson.loads(letter.value)
    assert body["error"]["step"] == "publish"
    assert body["error"]["type"] == "MessageSizeTooLargeError"
    assert body["source"]["offset"] == 5
    assert base64.b64decode(body["value"]) == values[5]
    (batch,) = worker.recent_metrics  # all produced before start: one fetch, one batch
    assert (batch["batch_size"], batch["outputs"], batch["dead_letters"]) == (12, 11, 1)
