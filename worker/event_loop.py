"""The worker's event loop: uvloop when it is installed, else asyncio's own.

uvloop (libuv, in C) runs the same asyncio programs with a cheaper loop and cheaper socket
transports. The worker does a great deal of loop work per batch (aiokafka's fetches, sends
and acknowledgements), and on the bench it used about a fifth less CPU per message with
uvloop than with asyncio's selector loop (bench/README.md). ``--event-loop asyncio`` keeps
asyncio's own loop; uvloop is not built for Windows, where ``auto`` falls back to it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopChoice", "loop_factory", "loop_name", "run", "uvloop_installed"]

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]

_T = TypeVar("_T")


def uvloop_installed() -> bool:
    """True when uvloop can be imported."""
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop ``choice`` names (None: asyncio's default loop).

    ``uvloop`` needs uvloop installed (the settings check it); ``auto`` takes it if it is.
    """
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which loop ``loop`` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, _T], choice: EventLoopChoice) -> _T:
    """Run ``main`` to completion on a new loop of the ``choice`` kind, as ``asyncio.run``."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
