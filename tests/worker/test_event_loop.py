"""The worker's event loop: uvloop unless asyncio's own is asked for (or uvloop is missing)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from worker import event_loop
from worker.errors import SettingsError
from worker.settings import load_settings

BASE = {"input_topic": "in", "output_topic": "out", "dlq_topic": "dlq", "backend": "m:B"}


async def _running_loop() -> str:
    return event_loop.loop_name(asyncio.get_running_loop())


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_worker_runs_on_the_loop_it_is_told_to(choice, expected):
    assert event_loop.run(_running_loop(), choice) == expected


@pytest.mark.parametrize(
    ("protocol", "tls"),
    [
        ("SSL", True),
        ("SASL_SSL", True),
        ("sasl_ssl", True),
        ("PLAINTEXT", False),
        ("SASL_PLAINTEXT", False),
        (None, False),
    ],
)
def test_auto_takes_asyncios_loop_over_tls_and_an_explicit_choice_holds(protocol, tls):
    assert event_loop.uses_tls(protocol) is tls
    assert event_loop.run(_running_loop(), "auto", tls=tls) == ("asyncio" if tls else "uvloop")
    assert event_loop.run(_running_loop(), "uvloop", tls=tls) == "uvloop"
    assert event_loop.run(_running_loop(), "asyncio", tls=tls) == "asyncio"


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch):
    monkeypatch.setattr(event_loop, "uvloop_installed", lambda: False)
    assert event_loop.loop_factory("auto") is None
    assert event_loop.run(_running_loop(), "auto") == "asyncio"
    assert event_loop.loop_factory("uvloop") is uvloop.new_event_loop


def test_asking_for_uvloop_without_it_is_a_settings_error(monkeypatch):
    import worker.settings

    monkeypatch.setattr(worker.settings, "uvloop_installed", lambda: False)
    with pytest.raises(SettingsError, match="uvloop is not installed") as info:
        load_settings(**BASE, event_loop="uvloop")
    assert "--event-loop / PACKFLOW_EVENT_LOOP" in str(info.value)
    assert load_settings(**BASE, event_loop="asyncio").event_loop == "asyncio"
