"""``compute --json --no-losses`` keeps no loss per row in memory beyond a bound.

Past ``SPILL_LOSSES`` losses they go to disk (``cosloss_cli.pipeline.spilled``), and every figure
is found from there: these tests lower the bound so that small files spill, and compare
each figure with the run that holds the losses (``--losses``). The memory itself is
checked on a gzip bomb of narrow rows under an address-space limit.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from cosloss_cli.io import ReadOptions
from cosloss_cli.pipeline import reducer
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.pipeline.result import ComputeOptions
from tests.conftest import run_cli, run_executable
from tests.test_wide_lines import limited


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reducer, "SPILL_LOSSES", 100)


def _pair(tmp_path: Path, nan_rows: tuple[int, ...] = ()) -> tuple[str, str]:
    rng = np.random.default_rng(21)
    labels = rng.standard_normal((1000, 6))
    predictions = labels + rng.standard_normal((1000, 6))
    labels[3] = 0.0  # a zero vector
    for row in nan_rows:
        predictions[row, 2] = np.nan
    paths = []
    for name, values in (("labels", labels), ("predictions", predictions)):
        path = tmp_path / f"{name}.csv"
        lines = ["id," + ",".join(f"c{j}" for j in range(6))]
        for i, row in enumerate(values.tolist()):
            lines.append(f"r{i}," + ",".join("" if math.isnan(v) else repr(v) for v in row))
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths[0], paths[1]


def _run(*args: str) -> dict:
    result = run_cli(["compute", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.usefixtures("small_bound")
@pytest.mark.parametrize("policy", ["raise", "omit"])
def test_spilled_figures_are_those_of_the_held_losses(tmp_path: Path, policy: str) -> None:
    labels, predictions = _pair(tmp_path, nan_rows=(5, 700) if policy == "omit" else ())
    figures = ["--top", "3", "--best", "2", "--bins", "7", "--nan-policy", policy]
    held = _run(labels, predictions, *figures)
    spilled = _run(labels, predictions, *figures, "--no-losses")
    assert "losses" not in spilled
    for key, value in held.items():
        if key in ("losses", "ids", "omitted_indices"):  # what --no-losses leaves out
            continue
        if key in ("mean", "std", "loss"):
            assert spilled[key] == pytest.approx(value, rel=1e-12), key
        elif key in ("ci_low", "ci_high"):
            # The normal interval instead of the bootstrap's: close at 1,000 losses, and around the mean.
            width = held["ci_high"] - held["ci_low"]
            assert spilled[key] == pytest.approx(value, abs=0.1 * width), key
        else:
            assert spilled[key] == value, key
    assert spilled["ci_low"] < spilled["mean"] < spilled["ci_high"]
    assert spilled["worst"][0]["id"].startswith("r")


@pytest.mark.usefixtures("small_bound")
def test_spilled_nan_losses_make_the_statistics_null(tmp_path: Path) -> None:
    labels, predictions = _pair(tmp_path, nan_rows=(900,))
    held = _run(labels, predictions, "--nan-policy", "propagate")
    spilled = _run(labels, predictions, "--nan-policy", "propagate", "--no-losses")
    for key in ("count", "mean", "std", "min", "median", "max", "p05", "p99", "ci_low", "ci_high"):
        assert spilled[key] == held[key], key


@pytest.mark.usefixtures("small_bound")
def test_the_library_and_other_outputs_keep_every_loss(tmp_path: Path) -> None:
    labels, predictions = _pair(tmp_path)
    result = compute_files(labels, predictions, ReadOptions(), ComputeOptions())
    assert result.losses.shape == (1000,)
    written = tmp_path / "losses.csv"
    output = run_cli(["compute", labels, predictions, "--json", "--no-losses", "-o", str(written)])
    assert output.exit_code == 0, output.stderr
    assert len(written.read_text().splitlines()) == 1001


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_a_gzip_bomb_of_narrow_rows_fits_in_a_gibibyte_with_no_losses(tmp_path: Path) -> None:
    """18 million rows from 70 KB: holding their losses (144 MB, and the copies the figures make) did not fit."""
    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=6) as handle:
        handle.write(b"a,b\n")
        chunk = b"1,2\n" * 1_000_000
        for _ in range(18):
            handle.write(chunk)
    proc = run_executable(["compute", str(bomb), str(bomb), "--json", "--no-losses"], preexec_fn=limited())
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["count"] == 18_000_000
    assert document["max"] == 0.0


def test_a_thread_that_cannot_start_is_out_of_memory_not_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under an address-space limit a thread's stack may not fit: one clean line, no 'internal error'."""
    from cosloss_cli.pipeline import blocks as module

    def no_thread(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(module, "_compute_opened", no_thread)
    result = run_cli(["compute", "sample_data/labels.csv", "sample_data/predictions.csv"])
    assert result.exit_code == 1
    assert result.stderr == "Error: out of memory: cannot start a thread (is the address space limited, ulimit -v?)\n"


def test_grouped_figures_keep_every_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--group-by`` groups the losses one by one: they are held even with --no-losses."""
    monkeypatch.setattr(reducer, "SPILL_LOSSES", 1)  # the sample's few rows would spill
    args = ["sample_data/weighted_labels.csv", "sample_data/weighted_predictions.csv", "--group-by", "weight"]
    held = _run(*args)
    spilled = _run(*args, "--no-losses")
    assert spilled["groups"] == held["groups"]
