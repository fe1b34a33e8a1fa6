"""What /healthz and /readyz answer, decided without a worker or a broker."""

from __future__ import annotations

from worker.lifecycle import State
from worker.probes import Health, Readiness


def test_a_healthy_worker_names_itself() -> None:
    assert Health(worker_id="w-1").answer() == (True, {"worker_id": "w-1"})


def test_a_fatal_error_fails_health_with_its_type_and_message() -> None:
    alive, body = Health(worker_id="w", failure=RuntimeError("boom")).answer()
    assert not alive
    assert body == {"error": "RuntimeError: boom"}


def test_an_ended_task_fails_health_only_while_not_stopping() -> None:
    running = Health(worker_id="w", dead_tasks=["pf-fetch", "pf-ack"])
    assert running.answer() == (False, {"error": "background tasks ended: pf-fetch, pf-ack"})
    stopping = Health(worker_id="w", dead_tasks=["pf-fetch"], stopping=True)
    assert stopping.answer()[0]


def test_a_backend_call_past_its_grace_fails_health() -> None:
    within = Health(worker_id="w", stuck_seconds=29.0, grace_seconds=30.0)
    assert within.answer()[0]
    alive, body = Health(worker_id="w", stuck_seconds=31.4, grace_seconds=30.0).answer()
    assert not alive
    assert body["error"].startswith("a backend call has been running for 31s")
    assert "--backend-timeout-grace-seconds" in body["error"]


def test_a_running_worker_with_partitions_is_ready() -> None:
    ready = Readiness(state=State.RUNNING, stopping=False, partitions=3, in_flight_records=7)
    assert ready.answer() == (
        True,
        {"reasons": [], "partitions": 3, "in_flight_records": 7},
    )


def test_every_reason_not_to_be_ready_is_listed_in_order() -> None:
    readiness = Readiness(
        state=State.STARTING,
        stopping=True,
        partitions=0,
        in_flight_records=0,
        liveness_reasons=["broker unreachable for 12s"],
        breaker_reason="backend unavailable: ConnectionError",
        backend_ready=False,
    )
    ready, body = readiness.answer()
    assert not ready
    assert body["reasons"] == [
        "starting",
        "stopping",
        "no partitions assigned",
        "broker unreachable for 12s",
        "backend unavailable: ConnectionError",
        "backend not ready",
    ]


def test_rebalancing_alone_does_not_make_a_worker_unready() -> None:
    readiness = Readiness(
        state=State.REBALANCING, stopping=False, partitions=1, in_flight_records=0
    )
    assert readiness.reasons() == []
