"""The worker's event loop: uvloop when it is installed and the worker connects without TLS,
else asyncio's own.

uvloop (libuv, in C) runs the same asyncio programs with a cheaper loop and cheaper socket
transports. The worker does a great deal of loop work per batch (aiokafka's fetches, sends
and acknowledgements), and on the bench it used about a fifth less CPU per message with
uvloop than with asyncio's selector loop (bench/README.md).

Over TLS (``--security-protocol SSL`` or ``SASL_SSL``) ``auto`` takes asyncio's loop. On
the secured test broker, an ``AIOKafkaConsumer.stop()`` over TLS took 30.1 s on uvloop
(uvloop's TLS shutdown timeout is 30 s) and 0.03 s on asyncio's loop, and the secured tests
took 30-90 s each instead of 2-4. ``--event-loop uvloop`` takes uvloop anyway;
``--event-loop asyncio`` always keeps asyncio's loop. uvloop is not built for Windows, where
``auto`` falls back to asyncio's loop too.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopChoice", "loop_factory", "loop_name", "run", "uses_tls", "uvloop_installed"]

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]

_T = TypeVar("_T")


def uvloop_installed() -> bool:
    """True when uvloop can be imported."""
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(
    choice: EventLoopChoice, *, tls: bool = False
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop ``choice`` names (None: asyncio's default loop); ``tls`` says
    whether the Kafka connections use TLS (see the module docstring).

    ``uvloop`` needs uvloop installed (the settings check it); ``auto`` takes it if it is,
    without TLS.
    """
    if choice == "asyncio" or (choice == "auto" and (tls or not uvloop_installed())):
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which loop ``loop`` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def uses_tls(security_protocol: str | None) -> bool:
    """True for ``SSL`` and ``SASL_SSL``."""
    return (security_protocol or "").upper() in ("SSL", "SASL_SSL")


def run(main: Coroutine[Any, Any, _T], choice: EventLoopChoice, *, tls: bool = False) -> _T:
    """Run ``main`` to completion on a new loop of the ``choice`` kind (given ``tls``), as
    ``asyncio.run`` does."""
    with asyncio.Runner(loop_factory=loop_factory(choice, tls=tls)) as runner:
        return runner.run(main)
