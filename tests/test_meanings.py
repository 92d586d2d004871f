"""Results whose meaning needs a word: no vectors, vectors of one value, a mean that is not a number.

Each used to pass silently: a (3, 0) array along axis 0 gave ``"loss": 0.0`` from no
vectors at all; a one-column CSV gave a mean of 0 where the same numbers as one vector
give 0.2857; a ``--no-normalize`` mean of -inf passed ``--fail-above`` with numpy's
RuntimeWarning on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import run_cli, run_executable, without_paths
from .oracle import reference_losses


def run(args: list[str], executable: bool = False) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``cosloss ARGS``: the real executable, or in-process (faster)."""
    if executable:
        done = run_executable(args)
        return done.returncode, done.stdout, done.stderr
    result = run_cli(args)
    return result.exit_code, result.stdout, result.stderr


def test_an_axis_of_size_0_beside_the_vectors_is_an_error(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 0)))
    result = run_executable(["compute", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), "--axis", "0", "--json"])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: ") and "holds no vectors along axis 0" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_vectors_of_one_value_get_a_note_and_axis_0_is_one_vector(tmp_path: Path, fmt: str) -> None:
    labels, predictions = np.array([[1.0], [2.0], [3.0]]), np.array([[3.0], [2.0], [-1.0]])
    paths = []
    for name, array in (("labels", labels), ("predictions", predictions)):
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "csv":
            path.write_text("".join(f"{row[0]:g}\n" for row in array))
        else:
            np.save(path, array)
        paths.append(str(path))
    code, stdout, stderr = run(["compute", *paths, "--json"], executable=fmt == "csv")
    assert code == 0, stderr
    assert json.loads(stdout)["losses"] == [0.0, 0.0, 2.0]
    assert "Note: the vectors along axis 1 have length 1, so each loss is 0, 1 or 2" in stderr
    assert "--axis 0" in stderr
    code, stdout, stderr = run(["compute", *paths, "--json", "--axis", "0"])
    assert code == 0 and "length 1" not in without_paths(stderr, tmp_path)
    expected = reference_losses(labels[:, 0], predictions[:, 0], axis=0)
    assert json.loads(stdout)["mean"] == pytest.approx(float(expected), rel=1e-12)


@pytest.fixture
def overflowing(tmp_path: Path) -> list[str]:
    """Without normalizing, a dot product of 2e616 is infinite: the loss 1 - dot is -inf."""
    np.save(tmp_path / "labels.npy", np.array([[1e308, 1e308], [1.0, 2.0], [3.0, 1.0]]))
    np.save(tmp_path / "predictions.npy", np.array([[1e308, 1e308], [2.0, 1.0], [-1.0, -3.0]]))
    return [str(tmp_path / "labels.npy"), str(tmp_path / "predictions.npy")]


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_an_infinite_mean_fails_the_threshold_without_numpy_warnings(overflowing: list[str], fmt: str) -> None:
    args = ["compute", *overflowing, "--no-normalize", "--fail-above", "0.5", "--format", fmt]
    code, stdout, stderr = run(args, executable=fmt == "json")
    assert code == 3, stderr
    assert stderr == "cosloss: mean loss is -inf, not a finite number: it cannot pass --fail-above 0.5\n"
    if fmt == "json":
        assert json.loads(stdout)["mean"] is None


def test_batch_an_infinite_pooled_mean_fails_the_threshold(tmp_path: Path, overflowing: list[str]) -> None:
    for name in ("labels", "predictions"):
        (tmp_path / name).mkdir()
        Path(overflowing[name == "predictions"]).rename(tmp_path / name / "a.npy")
    args = ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--no-normalize", "--json"]
    result = run_executable([*args, "--fail-above", "0.5", "-j", "1"])
    assert result.returncode == 3, result.stderr
    assert "pooled mean loss is -inf, not a finite number" in result.stderr
    assert "RuntimeWarning" not in without_paths(result.stderr, tmp_path)


def test_compare_an_infinite_candidate_fails_its_gate_without_numpy_warnings(
    tmp_path: Path, overflowing: list[str]
) -> None:
    np.save(tmp_path / "base.npy", np.array([[1.0, 2.0], [2.0, 1.0], [1.0, 1.0]]))
    args = ["compare", overflowing[0], str(tmp_path / "base.npy"), overflowing[1], "--no-normalize"]
    result = run_executable([*args, "--fail-if-worse", "0", "--json"])
    assert result.returncode == 3, result.stderr
    assert "--fail-if-worse 0 failed" in result.stderr
    assert all(line.startswith(("Warning: ", "cosloss: ")) for line in result.stderr.splitlines()), result.stderr
