"""How a batch ends: nothing written after the command has exited, no temporary file left,
and every pair whose output file is whole counted as finished."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cosloss_cli.render.writers import remove_temporaries
from cosloss_cli.status import ExitStatus

from .conftest import EXECUTABLE, ROOT, run_cli
from .oracle import reference_losses
from .test_scale import _pairs_of_csv


def test_temporaries_a_killed_writer_left_are_removed_when_the_run_ends(tmp_path: Path) -> None:
    labels, preds, out = tmp_path / "labels", tmp_path / "preds", tmp_path / "out"
    for folder in (labels / "run", preds / "run", out / "run"):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    values = {side: rng.normal(size=(4, 3)) for side in ("labels", "preds")}
    for side, folder in (("labels", labels), ("preds", preds)):
        for name in ("a", "run/b"):
            pd.DataFrame(values[side]).to_csv(folder / f"{name}.csv", index=False)
    left = [out / ".a.csv.k2j4_x9q.tmp", out / "run" / ".b.csv.00aZ_1bc.tmp"]  # what SIGKILL mid-write leaves
    others = [out / ".notes.txt.k2j4_x9q.tmp", out / "a.csv.tmp", out / ".a.csv.tmp"]  # not cosloss's to remove
    for path in left + others:
        path.write_text("partial")
    result = run_cli(["batch", str(labels), str(preds), "-r", "--output-dir", str(out), "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.stderr
    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in others)
    expected = reference_losses(values["labels"], values["preds"], axis=1)
    np.testing.assert_allclose(pd.read_csv(out / "run" / "b.csv")["loss"], expected, rtol=1e-12)


def test_remove_temporaries_lists_each_folder_once_and_touches_only_its_targets(tmp_path: Path) -> None:
    (tmp_path / ".x.npy.abcdefgh.tmp").write_bytes(b"")
    (tmp_path / ".y.npy.abcdefgh.tmp").write_bytes(b"")
    assert remove_temporaries([str(tmp_path / "x.npy"), str(tmp_path / "z.npy")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".y.npy.abcdefgh.tmp"]


def test_sigterm_of_a_cluster_batch_leaves_no_worker_writing(dask_cluster: Any, tmp_path: Path) -> None:
    """Dask cannot stop a running task: the tasks still running when the client exits must not write."""
    labels, predictions = _pairs_of_csv(tmp_path, pairs=12, rows=60_000, dim=16)
    out = tmp_path / "out"
    args = ["batch", labels, predictions, "--format", "ndjson", "--output-dir", str(out)]
    process = subprocess.Popen(
        [EXECUTABLE, *args, "--scheduler-file", dask_cluster.scheduler_file],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline(), process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    exited = time.time()
    assert process.returncode == ExitStatus.TERMINATED, errors
    _wait_until_workers_idle(dask_cluster)  # the tasks that were running have finished
    written = [path for path in out.iterdir() if path.suffix == ".csv"]
    assert all(path.stat().st_mtime <= exited for path in written), "a worker wrote after the client exited"
    assert [path.name for path in out.iterdir() if path.name.endswith(".tmp")] == []
    finished = int(re.search(r"Terminated: (\d+) of 12 pair\(s\) finished", errors).group(1))  # type: ignore[union-attr]
    assert finished >= len(written)


def _executing(dask_worker: Any) -> int:
    return int(dask_worker.state.executing_count)


def _wait_until_workers_idle(dask_cluster: Any, timeout: float = 30) -> None:
    """Until no worker thread runs a task (a cancelled task runs on until its pair is done)."""
    with dask_cluster.client() as client:
        deadline = time.monotonic() + timeout
        while sum(client.run(_executing).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
