"""Mapping a stream through an executor while keeping its order and bounding what is in flight."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(pool: Executor, fn: Callable[[In], Out], items: Iterable[In], in_flight: int) -> Iterator[Out]:
    """Yield ``fn(item)`` for every item, in order, computed on ``pool``.

    At most ``in_flight`` items are submitted and not yet yielded, so a slow consumer holds
    back the reading of ``items`` instead of letting results pile up in memory. An error of
    ``fn`` is raised where its result would have been yielded; closing the generator early
    cancels what has not started.
    """
    pending: collections.deque[Future] = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
