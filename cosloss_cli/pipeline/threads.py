"""The pipeline's threads: blocks mapped in order on a pool, and read ahead of the reduction."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..io import Block, BlockStream

if TYPE_CHECKING:
    from concurrent.futures import Future


T = TypeVar("T")


R = TypeVar("R")


def map_ordered(func: Callable[[T], R], items: Iterator[T], threads: int) -> Iterator[tuple[T, R]]:
    """Apply ``func`` on up to ``threads`` threads, yielding results in input order.

    numpy releases the GIL in the conversions and sums, so blocks of a large input are
    reduced on both cores; at most ``2 * threads`` blocks are in flight, so memory
    stays bounded. A single-block input never starts a thread.
    """
    first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    if second is None or threads <= 1:
        yield first, func(first)
        if second is not None:
            yield second, func(second)
            for item in items:
                yield item, func(item)
        return
    from concurrent.futures import ThreadPoolExecutor  # only inputs of several blocks pay for it

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cosloss-block") as pool:
        in_flight: deque[tuple[T, Future[R]]] = deque()
        pending = 0
        for item in _chain_first(first, second, items):
            in_flight.append((item, pool.submit(func, item)))
            pending += 1
            if pending >= 2 * threads:
                done_item, future = in_flight.popleft()
                pending -= 1
                yield done_item, future.result()
        while pending:
            done_item, future = in_flight.popleft()
            pending -= 1
            yield done_item, future.result()


def _chain_first(first: T, second: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield second
    yield from rest


_END = object()


def prefetched(blocks: BlockStream, depth: int = 2) -> Iterator[Block]:
    """Read the next blocks on a background thread while this one is computed.

    Parsing (pyarrow) and decompression release the GIL, so reading both inputs and
    reducing blocks overlap. Errors raised by the reader are re-raised here. An input
    known to be one block (``__length_hint__``, see ``io.base.BlockStream``) is read in place: there
    is nothing to overlap, and a thread would cost more than the read. So is an input of
    memory-mapped blocks (``cheap``): mapping a window costs little, and handing blocks
    over between threads cost CPU time and 50 MB of blocks in flight (profiled on
    2 x 2 GB NPY); and one whose blocks are decoded on threads of their own (Parquet
    row groups, ``ReadOptions.decode_threads``).
    """
    if operator.length_hint(blocks, 2) <= 1 or blocks.cheap:
        yield from blocks
        return
    import queue  # only inputs of several blocks pay for these
    import threading

    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for block in blocks:
                while not stop.is_set():
                    try:
                        buffer.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as exc:  # forwarded to the consumer, who re-raises it
            buffer.put(exc)

    thread = threading.Thread(target=produce, name="cosloss-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
