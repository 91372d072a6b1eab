"""Many short-lived deadlines for the price of one timer: a sweep every ``tick`` seconds.

A timer per request (``asyncio.timeout``, ``loop.call_later``) costs about 10 microseconds on
this service's hot path: every request arms one and cancels it, and the cancelled handles pile
up in the event loop's heap. Here arming and clearing a deadline is a dict write; one task per
event loop wakes every ``tick`` seconds and calls the expiry of every entry that is due. A
deadline thus fires up to ``tick`` seconds late, never early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable


class Deadlines:
    """Deadlines keyed by anything hashable; each calls its ``on_expiry`` once when missed."""

    def __init__(self, tick: float = 0.1) -> None:
        self.tick = tick
        self.due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._sweeper: asyncio.Task | None = None

    def set(self, key: Hashable, delay: float, on_expiry: Callable[[], None],
            loop: asyncio.AbstractEventLoop) -> None:
        """Call ``on_expiry`` once ``delay`` seconds from now, unless :meth:`clear` is first."""
        self.due[key] = (loop.time() + delay, on_expiry)
        sweeper = self._sweeper
        if sweeper is None or sweeper.done() or sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep(loop))

    def clear(self, key: Hashable) -> None:
        self.due.pop(key, None)

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.due:  # stops when nothing is pending; the next set() starts it again
            await asyncio.sleep(self.tick)
            now = loop.time()
            for key in [key for key, (at, _) in self.due.items() if at <= now]:
                _, on_expiry = self.due.pop(key)
                on_expiry()


__all__ = ["Deadlines"]
