"""KafkaClients: every client gets the same connection and its side's --kafka-option values."""

from __future__ import annotations

from aiokafka.abc import ConsumerRebalanceListener

from worker.clients import IDLE_FETCH_WAIT_MS, KafkaClients, fetch_wait
from worker.settings import load_settings

BASE = {"input_topic": "in", "output_topic": "out", "dlq_topic": "dlq", "backend": "m:B"}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    async def on_partitions_revoked(self, revoked):
        pass

    async def on_partitions_assigned(self, assigned):
        pass


async def test_each_client_gets_the_connection_and_its_sides_options():
    settings = load_settings(
        **BASE,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="worker",
        sasl_password="pw",
        group_instance_id="pod-0",
        compression_type="lz4",
        max_request_size=2 * 1024 * 1024,
        kafka_options=(
            "request.timeout.ms=7000",
            "consumer.metadata.max.age.ms=4096",
            "consumer.client.rack=rack-1",
            "producer.retry.backoff.ms=30",
        ),
    )
    clients = KafkaClients(settings)
    consumer = clients.consumer(_Listener())
    producer = clients.producer(transactional_id="tx-1")
    admin = clients.admin()
    for client in (consumer._client, producer.client, admin._client):
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-256"
        assert client._sasl_plain_username == "worker"
        assert client._sasl_plain_password == "pw"
        assert client._request_timeout_ms == 7000
    assert (consumer._client._metadata_max_age_ms, consumer._client_rack) == (
        4096,
        "rack-1",
    )
    assert consumer._group_instance_id == "pod-0"
    assert producer.client._retry_backoff == 0.03
    assert consumer._client._retry_backoff == 0.1  # the producer's option only
    assert producer._compression_type == "lz4"
    assert producer._max_request_size == 2 * 1024 * 1024
    assert producer._txn_manager is not None
    assert producer._txn_manager.transactional_id == "tx-1"
    await producer.stop()
    await consumer.stop()
    await admin.close()


async def test_the_batch_size_never_exceeds_the_request_size():
    clients = KafkaClients(load_settings(**BASE, max_request_size=100_000))
    producer = clients.producer(max_batch_bytes=10**9)
    assert producer._message_accumulator._batch_size == 100_000
    await producer.stop()


async def test_a_fetch_waits_at_the_broker_for_fetch_min_bytes_up_to_the_batch_wait():
    default = KafkaClients(load_settings(**BASE)).consumer(_Listener())
    tuned = KafkaClients(load_settings(**BASE, fetch_min_bytes=1, max_batch_wait_ms=50)).consumer(
        _Listener()
    )
    assert (default._fetch_min_bytes, default._fetch_max_wait_ms) == (
        64 * 1024,
        20,
    )
    assert (tuned._fetch_min_bytes, tuned._fetch_max_wait_ms) == (1, 50)
    for consumer in (default, tuned):
        await consumer.stop()


def test_with_no_batch_wait_a_fetch_is_answered_at_once_and_an_idle_one_long_polled():
    assert fetch_wait(65536, 0) == {"fetch_min_bytes": 1, "fetch_max_wait_ms": IDLE_FETCH_WAIT_MS}
    assert fetch_wait(65536, 20) == {"fetch_min_bytes": 65536, "fetch_max_wait_ms": 20}
