"""The test servers themselves: the Dask cluster fixture runs work and survives a lost worker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest


def _add_one(value: int) -> int:
    return value + 1


def test_dask_cluster_runs_a_task_on_its_workers(dask_cluster: Any) -> None:
    with dask_cluster.client() as client:
        assert client.submit(_add_one, 41).result(timeout=30) == 42
        addresses = list(client.scheduler_info(n_workers=-1)["workers"])
    assert len(addresses) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in addresses)


def test_killing_a_worker_removes_it_and_a_new_one_can_join(dask_cluster: Any) -> None:
    dask_cluster.kill_worker(0)
    deadline = time.monotonic() + 60
    while dask_cluster.worker_count() != 1:
        assert time.monotonic() < deadline, "the scheduler did not notice the killed worker"
        time.sleep(0.2)
    assert dask_cluster.workers[0].wait(timeout=10) is not None
    dask_cluster.start_worker()
    dask_cluster.wait_for_workers(2)
    with dask_cluster.client() as client:
        assert client.submit(_add_one, 1, pure=False).result(timeout=30) == 2


def _group_gone(group: int) -> bool:
    from tests.servers import _only_zombies_left

    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return _only_zombies_left(group)


def test_closing_a_cluster_leaves_no_process(tmp_path: Path) -> None:
    """Every process the fixture starts (scheduler, nanny, worker) is gone after close()."""
    pytest.importorskip("distributed")
    from tests.servers import DaskCluster

    cluster = DaskCluster(tmp_path, workers=1)
    groups = [process.pid for process in (cluster.scheduler, *cluster.workers)]
    cluster.close()
    for group in groups:
        assert _group_gone(group), f"process group {group} still runs"
    assert all(process.returncode is not None for process in (cluster.scheduler, *cluster.workers))
