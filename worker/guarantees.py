"""Choosing the delivery strategy: the one place that reads ``--delivery``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from worker.at_least_once import AtLeastOnce
from worker.clients import KafkaClients
from worker.delivery import DeliveryStrategy, OnSettled
from worker.exactly_once import ExactlyOnce
from worker.limits import TopicLimits
from worker.publisher import Publisher
from worker.transactions import TransactionalPublisher

__all__ = ["make_delivery"]


def make_delivery(
    clients: KafkaClients,
    consumer: AIOKafkaConsumer,
    publisher: Publisher,
    on_settled: OnSettled,
    *,
    output_partitions: int,
    backend: str,
    limits: TopicLimits,
    on_committed: Callable[[], None],
    on_fatal: Callable[[BaseException], None],
    logger: Any,
) -> DeliveryStrategy:
    """The strategy ``--delivery`` names, publishing with ``publisher`` (at-least-once) or with
    one transactional producer per partition, built by ``clients`` (exactly-once)."""
    if clients.settings.delivery == "exactly-once":
        transactions = TransactionalPublisher(
            clients,
            output_partitions=output_partitions,
            backend=backend,
            logger=logger,
            limits=limits,
        )
        return ExactlyOnce(transactions, on_settled)
    return AtLeastOnce(
        consumer,
        publisher,
        on_settled,
        group=clients.settings.group_id,
        logger=logger,
        on_committed=on_committed,
        on_fatal=on_fatal,
    )
