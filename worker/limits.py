"""What the broker accepts on the output and dead-letter topics (Kafka-free data).

:func:`worker._kafka.topic_limits` reads them at start-up; the pipeline's stages vet each
output and dead letter against them so that no broker refusal stalls a partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_BATCH_BYTES", "UNLIMITED", "TopicLimits"]

MAX_BATCH_BYTES = 256 * 1024
"""The most bytes of one producer batch (aiokafka's ``max_batch_size``)."""

# aiokafka's estimate of a request's size runs a few bytes over the exact size.
_REQUEST_ESTIMATE_MARGIN = 64


@dataclass(frozen=True, slots=True)
class TopicLimits:
    """What the broker accepts on the output and dead-letter topics, read at start-up.

    ``*_max_message_bytes`` is the topic's effective ``max.message.bytes``: the most bytes of
    one record batch as the broker measures it (aiokafka's ``BatchBuilder.size()``).
    ``output_compacted`` is True when the output topic's ``cleanup.policy`` has ``compact``
    (the broker then refuses records without a key). ``max_request_size`` is the producer's
    own cap on one request (``--max-request-size``), so on one message too.
    """

    output_max_message_bytes: int
    dlq_max_message_bytes: int
    output_compacted: bool = False
    max_request_size: int = 2**31 - 1

    @property
    def dead_letter_bytes(self) -> int:
        """The most bytes of one dead letter as a record batch: under the topic's limit and,
        with room for aiokafka's estimate (a few bytes over the exact size), the request's."""
        return min(self.dlq_max_message_bytes, self.max_request_size - _REQUEST_ESTIMATE_MARGIN)

    @property
    def batch_bytes(self) -> int:
        """The producer's ``max_batch_size``: no batch of several messages is over a limit.

        One producer sends outputs and dead letters (aiokafka groups ``send()`` calls into
        batches of up to this size), so it is under both topics' limits.
        """
        return min(
            MAX_BATCH_BYTES,
            self.output_max_message_bytes,
            self.dlq_max_message_bytes,
            self.max_request_size,
        )

    def described(self) -> dict[str, Any]:
        """The limits as ``worker_started`` logs them."""
        return {
            "output_max_message_bytes": self.output_max_message_bytes,
            "dlq_max_message_bytes": self.dlq_max_message_bytes,
            "output_compacted": self.output_compacted,
        }


UNLIMITED = TopicLimits(2**31 - 1, 2**31 - 1)
"""No topic limit: nothing is refused before sending (for publishers built without limits)."""
