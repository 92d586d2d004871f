"""Work started aside: the same value on a thread or in place, and its errors raised to the caller."""

from __future__ import annotations

import threading

import pytest

from cosloss_cli.base.aside import aside


@pytest.mark.parametrize("background", [True, False])
def test_the_value_is_the_works(background: bool) -> None:
    ran_on: list[str] = []

    def work() -> int:
        ran_on.append(threading.current_thread().name)
        return 42

    result = aside(work, background=background, name="test-aside")
    assert result() == 42
    assert ran_on == ["test-aside" if background else threading.current_thread().name]


@pytest.mark.parametrize("background", [True, False])
def test_an_error_of_the_work_reaches_the_caller(background: bool) -> None:
    def work() -> int:
        raise MemoryError("no room")

    result = aside(work, background=background)
    with pytest.raises(MemoryError, match="no room"):
        result()
