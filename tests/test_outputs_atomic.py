"""``--output`` is written whole or not at all; a closed stdout pipe ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cosloss_cli.render import writers
from cosloss_cli.status import ExitStatus

from .conftest import EXECUTABLE, run_cli, run_executable_without_root_powers

LABELS = np.array([[1.0, 4.0, 5.0], [5.0, 5.0, 7.0], [0.5, -2.0, 3.0]] * 50)
PREDS = np.array([[3.0, 2.0, 5.0], [3.0, 2.0, 7.0], [1.0, 1.0, -1.0]] * 50)
EXTENSIONS = ["csv", "json", "jsonl", "ndjson", "parquet", "npy"]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    lpath, ppath = tmp_path / "labels.npy", tmp_path / "preds.npy"
    np.save(lpath, LABELS)
    np.save(ppath, PREDS)
    return str(lpath), str(ppath)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def assert_error_line(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


def good_old_file(folder: Path, ext: str) -> tuple[Path, bytes]:
    old = folder / f"losses.{ext}"
    old.write_bytes(b"the older good result\n")
    return old, old.read_bytes()


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_output_written_whole(tmp_path, pair, ext):
    out = tmp_path / f"losses.{ext}"
    result = run_cli(["compute", *pair, "--json", "--no-losses", "-o", str(out)])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert out.exists() and out.stat().st_size > 0
    assert leftovers(tmp_path) == []
    if ext == "npy":
        np.testing.assert_allclose(np.load(out), json.loads(run_cli(["compute", *pair, "--json"]).stdout)["losses"])


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_failure_mid_write_keeps_the_older_file(tmp_path, pair, ext, monkeypatch):
    old, before = good_old_file(tmp_path, ext)

    class Boom(OSError):
        pass

    def explode(handle, *args, **kwargs):
        handle.write(b"partial bytes that must never be seen")
        raise Boom(28, "No space left on device")

    for name in ("write_csv", "write_json", "write_ndjson"):
        monkeypatch.setattr(f"cosloss_cli.render.result.{name}", lambda result, text, *a, **kw: explode(text.buffer))
    monkeypatch.setattr(writers, "write_parquet", lambda result, handle, *a: explode(handle))
    monkeypatch.setattr(writers.np, "save", lambda handle, *a, **k: explode(handle))
    result = run_cli(["compute", *pair, "--json", "-o", str(old)])
    assert_error_line(result, ExitStatus.DATA_ERROR, str(old), "cannot write", "No space left on device")
    assert old.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_ctrl_c_inside_the_writer(tmp_path, pair, monkeypatch):
    old, before = good_old_file(tmp_path, "csv")

    def interrupted(result, text, *args, **kwargs):
        text.write("index,loss\n0,0.1\n")
        text.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr("cosloss_cli.render.result.write_csv", interrupted)
    result = run_cli(["compute", *pair, "--json", "-o", str(old)])
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert "Interrupted." in result.stderr and "Traceback" not in result.stderr
    assert old.read_bytes() == before
    assert leftovers(tmp_path) == []
    # and with no older file: nothing at all appears
    new = tmp_path / "fresh.csv"
    result = run_cli(["compute", *pair, "--json", "-o", str(new)])
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert not new.exists() and leftovers(tmp_path) == []


def test_ctrl_c_after_the_write_before_rename(tmp_path, pair, monkeypatch):
    old, before = good_old_file(tmp_path, "npy")

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers.os, "replace", interrupted_replace)
    result = run_cli(["compute", *pair, "--json", "-o", str(old)])
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert old.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["csv", "npy", "parquet"])
def test_dev_full_as_the_output_device(tmp_path, pair, fmt):
    link = tmp_path / f"full.{fmt}"
    link.symlink_to("/dev/full")
    result = run_cli(["compute", *pair, "--json", "-o", str(link)])
    assert_error_line(result, ExitStatus.DATA_ERROR, str(link), "No space left on device")
    assert link.is_symlink() and os.readlink(link) == "/dev/full"


def test_unwritable_folder(tmp_path, pair):
    folder = tmp_path / "locked"
    folder.mkdir()
    old, before = good_old_file(folder, "csv")
    folder.chmod(0o555)
    try:
        proc = run_executable_without_root_powers(["compute", *pair, "--json", "-o", str(old)])
    finally:
        folder.chmod(0o755)
    assert proc.returncode == ExitStatus.DATA_ERROR, proc.stderr
    assert proc.stderr.startswith("Error: ") and f"{old}: cannot write" in proc.stderr
    assert "Permission denied" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == "", "no results when the requested file cannot be written"
    assert old.read_bytes() == before and leftovers(folder) == []


def test_output_into_missing_folder(tmp_path, pair):
    target = tmp_path / "no" / "such" / "losses.csv"
    result = run_cli(["compute", *pair, "--json", "-o", str(target)])
    assert_error_line(result, ExitStatus.DATA_ERROR, str(target), "cannot write")
    assert not target.exists()


def test_output_is_a_directory(tmp_path, pair):
    folder = tmp_path / "out.csv"
    folder.mkdir()
    result = run_cli(["compute", *pair, "--json", "-o", str(folder)])
    assert_error_line(result, ExitStatus.DATA_ERROR, "out.csv", "is a directory")


def test_output_unknown_extension_is_usage_before_reading(tmp_path, pair):
    result = run_cli(["compute", *pair, "-o", str(tmp_path / "losses.xlsx")])
    assert_error_line(result, ExitStatus.USAGE_ERROR, "losses.xlsx", ".csv")


def test_input_error_leaves_older_output(tmp_path, pair):
    old, before = good_old_file(tmp_path, "csv")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not npy")
    result = run_cli(["compute", str(bad), pair[1], "-o", str(old)])
    assert_error_line(result, ExitStatus.DATA_ERROR, "bad.npy")
    assert old.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "table", "json"])
def test_broken_pipe_through_head(tmp_path, fmt):
    rows = 200_000
    rng = np.random.default_rng(3)
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, rng.normal(size=(rows, 4)))
    np.save(ppath, rng.normal(size=(rows, 4)))
    args = [
        EXECUTABLE,
        "compute",
        str(lpath),
        str(ppath),
        "--format",
        fmt,
        "--max-rows",
        "8000" if fmt == "table" else "20",
    ]
    producer = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, timeout=120)
    assert producer.stdout is not None
    producer.stdout.close()
    _, stderr = producer.communicate(timeout=120)
    assert head.stdout.count(b"\n") == 1
    if fmt == "ndjson":
        assert json.loads(head.stdout)["index"] == 0
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr and b"Exception ignored" not in stderr
    assert stderr == b"", stderr
    assert producer.returncode == ExitStatus.OK


def test_broken_pipe_through_shell_head(tmp_path):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, np.ones((100_000, 3)))
    np.save(ppath, np.ones((100_000, 3)))
    command = f'"{EXECUTABLE}" compute "{lpath}" "{ppath}" --format ndjson'
    script = f'{command} | head -1; echo "status=${{PIPESTATUS[0]}}" >&2'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout == '{"index": 0, "loss": 0.0}\n'
    assert proc.stderr == "status=0\n"


def test_sigterm_inside_the_writer(tmp_path, pair, monkeypatch):
    from cosloss_cli.cli import Terminated

    old, before = good_old_file(tmp_path, "json")

    def terminated(result, text, *args, **kwargs):
        text.write('{"schema_version": 1, "losses": [0.1')
        raise Terminated

    monkeypatch.setattr("cosloss_cli.render.result.write_json", terminated)
    result = run_cli(["compute", *pair, "--format", "csv", "-o", str(old)])
    assert result.exit_code == ExitStatus.TERMINATED
    assert "Terminated." in result.stderr and "Traceback" not in result.stderr
    assert old.read_bytes() == before and leftovers(tmp_path) == []
