"""Where the worker meets aiokafka's exceptions: every one is caught in this package.

They become the worker's own (:class:`~worker.errors.PublishError`,
:class:`~worker.errors.StartupError`, :class:`~worker.errors.KafkaUnanswered`,
:class:`~worker.errors.AuthorizationError`, :class:`~worker.errors.ProducerFencedError`),
chained with ``from``, or outcomes (:func:`commit_offsets`, :func:`highwater`). Modules
outside this package catch only those.

- :mod:`~worker._kafka.errors`: the translation itself (a missing ACL, a refused message);
- :mod:`~worker._kafka.calls`: the Kafka calls the worker makes, each translating its errors;
- :mod:`~worker._kafka.topics`: the topics at start-up (existence, partitions, limits);
- :mod:`~worker._kafka.preflight`: one raw connection that names TLS and authentication
  failures before the clients start.
"""

from worker._kafka.calls import (
    ask,
    commit_offsets,
    getmany,
    highwater,
    send,
    send_and_wait,
    start_with_retry,
    stop_bounded,
)
from worker._kafka.errors import (
    AUTHORIZATION_ERRORS,
    describe,
    is_fenced,
    not_authorized,
    refusal,
    send_error,
    to_publish_error,
)
from worker._kafka.preflight import check_connection
from worker._kafka.topics import check_topics, close_admin, output_partition_count, topic_limits

__all__ = [
    "AUTHORIZATION_ERRORS",
    "ask",
    "check_connection",
    "check_topics",
    "close_admin",
    "commit_offsets",
    "describe",
    "getmany",
    "highwater",
    "is_fenced",
    "not_authorized",
    "output_partition_count",
    "refusal",
    "send",
    "send_and_wait",
    "send_error",
    "start_with_retry",
    "stop_bounded",
    "to_publish_error",
    "topic_limits",
]
