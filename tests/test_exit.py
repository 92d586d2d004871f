"""The console script's exit (:func:`cosloss_cli.cli.run`): no interpreter teardown, nothing lost.

Each case runs in a fresh interpreter, since the exit ends the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import EXECUTABLE, ROOT
from tests.servers import SAMPLES_BUCKET


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_exit_now_runs_the_atexit_handlers_flushes_the_streams_and_keeps_the_status(tmp_path: Path) -> None:
    done = _run(
        """
        import atexit, sys
        from cosloss_cli.cli import exit_now
        atexit.register(lambda: sys.stderr.write("handler ran\\n"))
        sys.stdout.write("x" * 100_000)  # still in the buffer
        sys.stderr.write("no newline yet")
        exit_now(3)
        """,
        tmp_path,
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 100_000
    assert done.stderr == "no newline yethandler ran\n"


def test_exit_now_waits_for_a_thread_that_is_not_a_daemon(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    done = _run(
        f"""
        import threading, time
        from cosloss_cli.cli import exit_now
        def late():
            time.sleep(0.3)
            open({str(marker)!r}, "w").write("done")
        threading.Thread(target=late).start()
        exit_now(4)
        """,
        tmp_path,
    )
    assert done.returncode == 4
    assert marker.read_text() == "done"


@pytest.mark.parametrize(("code", "status", "stderr"), [("None", 0, ""), ("2", 2, ""), ("'stopped'", 1, "stopped\n")])
def test_run_gives_the_status_sys_exit_would(tmp_path: Path, code: str, status: int, stderr: str) -> None:
    done = _run(
        f"""
        import sys
        from cosloss_cli import cli
        def main():
            sys.exit({code})
        cli.main = main
        cli.run()
        """,
        tmp_path,
    )
    assert (done.returncode, done.stderr) == (status, stderr)


def test_the_command_writes_whole_outputs_before_its_fast_exit(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    labels, predictions = rng.normal(size=(20_000, 8)), rng.normal(size=(20_000, 8))
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    out = tmp_path / "losses.csv"
    done = subprocess.run(
        [EXECUTABLE, "compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--json", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert len(document["losses"]) == 20_000
    assert out.read_text().count("\n") == 20_001  # a header and every row
    expected = 1 - np.sum(labels * predictions, axis=1) / np.sqrt(
        np.sum(labels**2, axis=1) * np.sum(predictions**2, axis=1)
    )
    np.testing.assert_allclose(document["losses"], expected, rtol=0, atol=1e-12)


def test_an_output_object_is_whole_in_s3_when_the_command_has_exited(s3_server: Any, tmp_path: Path) -> None:
    """fsspec uploads an object when its file is closed: before the exit, not in a handler it skips."""
    key = "exit-test/losses.csv"
    args = ["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1", "--json"]
    remote = subprocess.run(
        [EXECUTABLE, *args, "-o", f"s3://{SAMPLES_BUCKET}/{key}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=s3_server.subprocess_env(),
    )
    local = subprocess.run(
        [EXECUTABLE, *args, "-o", str(tmp_path / "losses.csv")], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert remote.returncode == local.returncode == 0, remote.stderr
    written = s3_server.client().get_object(Bucket=SAMPLES_BUCKET, Key=key)["Body"].read()
    assert written == (tmp_path / "losses.csv").read_bytes()
