"""No crash without an ``Error:`` line: inputs that change while read, and outputs that fail.

A memory-mapped NPY file truncated during a run (``np.save`` over it) used to end the
process with SIGBUS (exit 135, nothing said), and a ``batch`` with it lost its whole
report. A full disk, a file-size limit or a closed stdout were "internal error"s, and a
refused connection a missing object (exit 2).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cosloss_cli import compute_files
from cosloss_cli.errors import DataError
from cosloss_cli.io import npy

from .conftest import run_executable, without_paths
from .oracle import reference_losses

#: Rows of the large files: 2 x 30 MB of float32, several blocks, read in a few tens of ms.
ROWS, DIM = 120_000, 64


def big_array(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, DIM)).astype(np.float32)


def _mapped_by(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` memory-mapped or open now."""
    target = str(path.resolve())
    try:
        with open(f"/proc/{pid}/maps") as maps:
            if any(line.rstrip().endswith(target) for line in maps):
                return True
    except OSError:
        pass
    return False


def truncate_while_read(args: list[str], victim: Path, tries: int = 4) -> subprocess.CompletedProcess[str]:
    """Run the executable and truncate ``victim`` once its data is being read (retried if the run was faster)."""
    from .conftest import EXECUTABLE

    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see when the file is being read")
    data = victim.read_bytes()
    for _ in range(tries):
        victim.write_bytes(data)
        process = subprocess.Popen([EXECUTABLE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while process.poll() is None and not _mapped_by(process.pid, victim):
            time.sleep(0.0005)
        truncated = process.poll() is None
        if truncated:
            os.truncate(victim, 4096)  # waits while cosloss holds its lease: it unmaps first
        stdout, stderr = process.communicate(timeout=120)
        if truncated:
            return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    pytest.skip("the run always ended before the file could be truncated")


def test_npy_truncated_while_read_is_an_error_not_sigbus(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", big_array(0))
    np.save(tmp_path / "predictions.npy", big_array(1))
    args = ["compute", str(tmp_path / "labels.npy"), str(tmp_path / "predictions.npy"), "--json", "--no-losses"]
    result = truncate_while_read(args, tmp_path / "predictions.npy")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and "changed while it was read" in result.stderr


def test_batch_keeps_its_report_when_a_file_is_truncated_while_read(tmp_path: Path) -> None:
    """``batch -j 1``: the truncated pair fails with its message, the other pair and the report stay."""
    labels, predictions = tmp_path / "labels", tmp_path / "predictions"
    labels.mkdir()
    predictions.mkdir()
    small = np.arange(12, dtype=np.float64).reshape(4, 3) + 1
    np.save(labels / "a.npy", small)
    np.save(predictions / "a.npy", small[::-1])
    np.save(labels / "b.npy", big_array(0))
    np.save(predictions / "b.npy", big_array(1))
    args = ["batch", str(labels), str(predictions), "-j", "1", "--format", "json", "--quiet"]
    result = truncate_while_read(args, predictions / "b.npy")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Error: 1 of 2 pair(s) failed" in result.stderr
    report = json.loads(result.stdout)
    status = {Path(pair["name"]).stem: pair for pair in report["pairs"]}
    assert status["a"]["status"] == "ok"
    assert status["a"]["mean"] == pytest.approx(float(np.mean(reference_losses(small, small[::-1], axis=1))))
    assert status["b"]["status"] == "error" and "changed while it was read" in status["b"]["error"]


# ------------------------------------------------------------------ without a lease: read, not mapped


@pytest.fixture
def without_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """As for a file another user owns, or on a file system without leases: blocks are read with preadv."""
    monkeypatch.setattr(npy, "_take_lease", lambda descriptor: False)


def _small_blocks() -> npy.ReadOptions:
    return npy.ReadOptions(block_bytes=1 << 20)


def test_reads_without_a_lease_give_the_mapped_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels, predictions = big_array(0)[:5_000], big_array(1)[:5_000]
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "predictions.npy", predictions)
    paths = (str(tmp_path / "labels.npy"), str(tmp_path / "predictions.npy"))
    options = npy.ReadOptions(block_bytes=1 << 16)
    mapped = compute_files(*paths, read_options=options, confidence=0)
    monkeypatch.setattr(npy, "_take_lease", lambda descriptor: False)
    read = compute_files(*paths, read_options=options, confidence=0)
    np.testing.assert_array_equal(read.losses, mapped.losses)
    np.testing.assert_allclose(read.losses, reference_losses(labels, predictions, axis=1), rtol=1e-6)


def test_a_file_that_shrinks_between_reads_is_refused(tmp_path: Path, without_lease: None) -> None:
    np.save(tmp_path / "labels.npy", big_array(0)[:20_000])
    source = npy.open_npy(str(tmp_path / "labels.npy"), _small_blocks())
    blocks = iter(source.blocks)
    first = next(blocks)
    os.truncate(tmp_path / "labels.npy", 1 << 20)
    with pytest.raises(DataError, match="changed while it was read"):
        for _ in blocks:
            pass
    assert first.values.shape[1] == DIM


def test_a_file_rewritten_to_its_size_while_read_is_refused(tmp_path: Path, without_lease: None) -> None:
    """``np.save`` of another array of the same shape: no short read, but the file changed under the reader."""
    np.save(tmp_path / "labels.npy", big_array(0)[:20_000])
    source = npy.open_npy(str(tmp_path / "labels.npy"), _small_blocks())
    blocks = iter(source.blocks)
    next(blocks)
    time.sleep(0.01)  # a later modification time on any file system's clock
    np.save(tmp_path / "labels.npy", big_array(1)[:20_000])
    with pytest.raises(DataError, match="changed while it was read"):
        for _ in blocks:
            pass


def test_the_lease_holds_a_truncation_back_until_the_windows_are_unmapped(tmp_path: Path) -> None:
    """In process: a truncation waits for the lease; the next block reports it; no window outlives it."""
    np.save(tmp_path / "labels.npy", big_array(0)[:20_000])
    source = npy.open_npy(str(tmp_path / "labels.npy"), _small_blocks())
    blocks = iter(source.blocks)
    first = next(blocks)
    done = threading.Event()
    truncation = threading.Thread(target=lambda: (os.truncate(tmp_path / "labels.npy", 0), done.set()))
    truncation.start()
    time.sleep(0.2)
    if done.is_set():
        truncation.join()
        pytest.skip("no lease on this file system: the truncation did not wait")
    total = float(first.values.sum(dtype=np.float64))  # the window is still whole
    with pytest.raises(DataError, match="changed while it was read"):
        next(blocks)
    assert not done.is_set() and np.isfinite(total)
    del first
    blocks = source = None  # type: ignore[assignment]
    truncation.join(timeout=30)
    assert done.is_set()


# ------------------------------------------------------------------ outputs and servers


@pytest.fixture
def small_pair(tmp_path: Path) -> list[str]:
    np.save(tmp_path / "labels.npy", np.arange(600, dtype=np.float64).reshape(200, 3))
    np.save(tmp_path / "predictions.npy", np.arange(600, dtype=np.float64).reshape(200, 3)[::-1])
    return [str(tmp_path / "labels.npy"), str(tmp_path / "predictions.npy")]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["compute", "batch"])
def test_a_full_disk_on_stdout_is_one_error_line(tmp_path: Path, small_pair: list[str], command: str) -> None:
    args = ["compute", *small_pair, "--json"] if command == "compute" else ["batch", str(tmp_path), str(tmp_path)]
    args = [*args, "--format", "ndjson"] if command == "batch" else args
    result = run_executable(args, prefix=["sh", "-c", 'exec "$0" "$@" > /dev/full'])
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and "No space left on device" in result.stderr
    assert "internal error" not in without_paths(result.stderr, tmp_path)
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_size_limit_on_stdout_is_one_error_line(tmp_path: Path, small_pair: list[str]) -> None:
    out = tmp_path / "out.txt"
    script = 'ulimit -f 1; exec "$0" "$@" > "$OUT"'
    result = run_executable(["compute", *small_pair], prefix=["sh", "-c", script], env={**os.environ, "OUT": str(out)})
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: cannot write the results to stdout: File too large")


@pytest.mark.parametrize("command", ["compute", "batch"])
def test_a_closed_stdout_is_one_error_line(tmp_path: Path, small_pair: list[str], command: str) -> None:
    args = ["compute", *small_pair] if command == "compute" else ["batch", str(tmp_path), str(tmp_path)]
    result = run_executable(args, prefix=["sh", "-c", 'exec "$0" "$@" >&-'])
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: stdout is closed")


def test_a_refused_connection_is_a_data_error_naming_the_url_without_secrets(small_pair: list[str]) -> None:
    pytest.importorskip("aiohttp", reason="http:// inputs need fsspec's HTTP backend")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://reader:s3cr3tpass@127.0.0.1:{port}/predictions.npy?token=t0ken4f3ca11"
    result = run_executable(["compute", small_pair[0], url])
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"Error: http://127.0.0.1:{port}/predictions.npy?token=***")
    assert "cannot connect to the server" in result.stderr
    assert "s3cr3tpass" not in result.stderr and "t0ken4f3ca11" not in result.stderr


@pytest.mark.parametrize("lease", [True, False], ids=["mapped", "read"])
def test_a_fortran_order_file_is_read_as_before_and_a_truncation_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lease: bool
) -> None:
    """Fortran order: its rows are strided, so the file is mapped whole (under a lease) or read whole."""
    labels, predictions = big_array(0)[:4_000], big_array(1)[:4_000]
    np.save(tmp_path / "labels.npy", np.asfortranarray(labels))
    np.save(tmp_path / "predictions.npy", predictions)
    if not lease:
        monkeypatch.setattr(npy, "_take_lease", lambda descriptor: False)
    result = compute_files(str(tmp_path / "labels.npy"), str(tmp_path / "predictions.npy"), confidence=0)
    np.testing.assert_allclose(result.losses, reference_losses(labels, predictions, axis=1), rtol=1e-6)
    if not lease:
        return
    source = npy.open_npy(str(tmp_path / "labels.npy"), npy.ReadOptions(block_bytes=1 << 16))
    blocks = iter(source.blocks)
    first = next(blocks)
    truncation = threading.Thread(target=os.truncate, args=(tmp_path / "labels.npy", 0))
    truncation.start()
    time.sleep(0.2)
    if not truncation.is_alive():
        pytest.skip("no lease on this file system: the truncation did not wait")
    assert np.isfinite(first.values.sum())
    with pytest.raises(DataError, match="changed while it was read"):
        next(blocks)
    del first
    blocks = source = None  # type: ignore[assignment]
    truncation.join(timeout=30)
    assert not truncation.is_alive()
