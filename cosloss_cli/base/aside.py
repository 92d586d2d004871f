"""Work started now and collected later, on a thread when it is large enough to pay for one.

After the last block, ``compute`` has several independent passes over all the losses
(the interval of the mean, one partition for the median and percentiles, the sums of
the summary). numpy's sorts, partitions and reductions release the GIL, so on a large
input they run at the same time on the machine's cores; on a small one a thread would
cost more than the work, which then runs when its result is asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: From this many values on (losses, ids), work set aside runs on a thread of its own:
#: the interval of the mean, the partition for the median and percentiles, compare's
#: paired tests, a join's index of the predictions' ids. Below, a thread costs more than
#: the work.
BACKGROUND_SIZE = 100_000


def aside(work: Callable[[], T], *, background: bool, name: str = "cosloss-aside") -> Callable[[], T]:
    """Begin ``work``; call the result for its value (an exception of ``work`` is raised there).

    ``background``: run it on a thread now; otherwise it runs, in the caller's thread,
    when the value is first asked for.
    """
    if not background:
        return work
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised by the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        value: T = outcome["value"]
        return value

    return result
