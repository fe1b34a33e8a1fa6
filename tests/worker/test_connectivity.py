"""BrokerWatch: one warning when Kafka stops answering, one when it is back, with durations."""

from __future__ import annotations

import pytest
import structlog
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from worker._kafka import describe
from worker.connectivity import BrokerWatch
from worker.errors import KafkaUnanswered


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_logs_one_warning_at_its_start_and_one_with_its_duration_at_its_end():
    clock = Clock()
    with capture_logs() as logs:
        watch = BrokerWatch(structlog.get_logger("test"), clock)
        clock.now += 2.0
        watch.failed(KafkaConnectionError("connection refused"))
        clock.now += 5.0
        watch.failed(KafkaConnectionError("connection refused"))
        watch.failed(TimeoutError())
        assert watch.unreachable_for() == 7.0  # from the last answer, not the first failure
        clock.now += 1.5
        watch.reached()
        watch.reached()
    assert [e["event"] for e in logs] == ["kafka_unreachable", "kafka_reachable"]
    assert logs[0]["error"] == "KafkaConnectionError: connection refused"
    assert logs[0]["last_contact_s_ago"] == 2.0
    assert logs[1]["unreachable_s"] == 8.5
    assert watch.unreachable_for() is None


def test_quiet_for_counts_from_the_last_answer():
    clock = Clock()
    watch = BrokerWatch(None, clock)
    clock.now += 3.0
    assert watch.quiet_for() == 3.0
    watch.reached()
    assert watch.quiet_for() == 0.0
    assert watch.unreachable_for() is None


def test_describe_names_the_type_alone_when_the_error_has_no_message():
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(KafkaConnectionError("refused")) == "KafkaConnectionError: refused"


def test_a_request_sent_before_the_last_answer_does_not_start_an_outage():
    clock = Clock()
    with capture_logs() as logs:
        watch = BrokerWatch(structlog.get_logger("test"), clock)
        sent = clock.now
        clock.now += 2.0
        watch.reached()  # a probe got through while the first request waited
        clock.now += 3.0
        watch.failed(TimeoutError(), sent_at=sent)
        assert watch.unreachable_for() is None
        watch.failed(TimeoutError(), sent_at=clock.now - 1.0)
        assert watch.unreachable_for() == 3.0
    assert [e["event"] for e in logs] == ["kafka_unreachable"]


class Answer:
    """An awaitable request whose outcome the test sets; advances the clock while awaited."""

    def __init__(self, clock: Clock, takes: float, error: BaseException | None = None) -> None:
        self._clock, self._takes, self._error = clock, takes, error

    def __await__(self):
        self._clock.now += self._takes
        if self._error is not None:
            raise self._error
        return "answer"
        yield  # a generator, so this is an awaitable


async def test_ask_records_an_answer_and_a_failure_and_raises_kafka_unanswered():
    clock = Clock()
    with capture_logs() as logs:
        watch = BrokerWatch(structlog.get_logger("test"), clock)
        assert await watch.ask(Answer(clock, 1.0), 5.0, "probe") == "answer"
        assert watch.quiet_for() == 0.0
        with pytest.raises(KafkaUnanswered, match="lag check: KafkaConnectionError: refused"):
            await watch.ask(Answer(clock, 1.0, KafkaConnectionError("refused")), 5.0, "lag check")
        assert watch.unreachable_for() == 1.0
    assert [e["event"] for e in logs] == ["kafka_unreachable"]
