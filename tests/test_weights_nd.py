"""Weights for N-D inputs as TensorFlow takes them: per loss, with TF's trailing 1, flat, broadcast.

The golden cases under ``tests/golden_reductions/nd/`` were made by TensorFlow 2.21
itself (``make_golden_nd.py``): TF's ``CosineDistanceLossTest`` layout, inputs of shape
(3, 2, 3) reduced along axis 2, with weights of shapes (3, 2), (3, 2, 1), (6,), (3, 1)
and (3, 1, 1). Every figure is checked through the command against TF (float32) and the
plain-Python float64 reference, and the numbers of other layouts against numpy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosloss_cli import compute_files
from cosloss_cli.core.reduction import loss_weights
from cosloss_cli.errors import DataError
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses

GOLDEN = Path(__file__).parent / "golden_reductions" / "nd"
CASES = sorted(p.parent.name for p in GOLDEN.glob("*/expected.json"))
REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights")


def test_the_golden_cases_cover_tensorflows_layouts() -> None:
    shapes = {tuple(json.loads((GOLDEN / c / "expected.json").read_text())["weights_shape"]) for c in CASES}
    assert shapes == {(3, 2), (3, 2, 1), (6,), (3, 1), (3, 1, 1)}


def _json(args: list[str]) -> dict[str, Any]:
    result = run_cli([*args, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_weights_of_every_tf_layout_match_tensorflow(case: str, reduction: str) -> None:
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    labels, predictions = str(GOLDEN / "labels.npy"), str(GOLDEN / "predictions.npy")
    weights = str(GOLDEN / case / "weights.npy")
    doc = _json(["compute", labels, predictions, "--axis", "2", "--weights", weights, "--reduction", reduction])
    tf, exact = expected["tensorflow"], expected["float64_reference"]
    assert doc["weighted"] is True and doc["reduction"] == reduction
    if reduction == "none":
        assert doc["loss"] is None
        flat = np.asarray(doc["losses"], dtype=np.float64).ravel()  # nested (3, 2): the weighted losses
        np.testing.assert_allclose(flat, exact["none"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(flat, tf["none"], rtol=0, atol=2e-6)  # TF computes in float32
    else:
        assert doc["loss"] == pytest.approx(exact[reduction], rel=1e-14, abs=1e-15)
        assert doc["loss"] == pytest.approx(tf[reduction], rel=2e-6, abs=2e-7)


def test_measurement_specific_weights_through_the_executable(tmp_path: Path) -> None:
    """TF's own test: six weights for (3, 2) losses, as (3, 2), (3, 2, 1) and (6,); a wrong shape names both."""
    rng = np.random.default_rng(7)
    labels = rng.normal(size=(3, 2, 3))
    predictions = labels + rng.normal(size=(3, 2, 3))
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    w = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    losses = reference_losses(labels, predictions, axis=2)
    expected = float((losses.ravel() * w).sum() / np.count_nonzero(w))
    for shape in ((3, 2), (3, 2, 1), (6,)):
        np.save(tmp_path / "w.npy", w.reshape(shape))
        args = ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--axis", "2", "--weights"]
        args += [str(tmp_path / "w.npy"), "--json", "--no-losses"]
        if shape == (3, 2):  # the user trial's command, through the real executable
            done = run_executable(args)
            assert done.returncode == ExitStatus.OK, done.stderr
            stdout = done.stdout
        else:
            stdout = run_cli(args).stdout
        assert json.loads(stdout)["loss"] == pytest.approx(expected, rel=1e-13)
    np.save(tmp_path / "w.npy", np.ones((2, 3)))
    refused = run_cli(
        ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--axis", "2", "--weights"]
        + [str(tmp_path / "w.npy")]
    )
    assert refused.exit_code == ExitStatus.DATA_ERROR
    assert "the weights have shape (2, 3), the losses (3, 2)" in refused.stderr


def test_one_weight_per_row_of_2d_inputs_keeps_its_count_check(tmp_path: Path) -> None:
    np.save(tmp_path / "l.npy", np.eye(3))
    np.save(tmp_path / "p.npy", np.ones((3, 3)))
    np.save(tmp_path / "w.npy", np.ones(6))
    result = run_cli(
        ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--weights", str(tmp_path / "w.npy")]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "has 6 weights" in result.stderr and "has 3 rows" in result.stderr


@pytest.mark.parametrize("reduction", ["mean", "sum_by_nonzero_weights", "none"])
def test_library_weights_per_loss_with_omitted_losses(tmp_path: Path, reduction: str) -> None:
    """Under nan_policy omit the weight of an omitted loss leaves every sum, as numpy says."""
    rng = np.random.default_rng(11)
    labels = rng.normal(size=(4, 3, 5))
    predictions = labels + rng.normal(size=(4, 3, 5))
    labels[2, 1, 0] = np.nan
    weights = rng.integers(0, 3, size=(4, 3, 1)).astype(np.float64)
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    result = compute_files(
        str(tmp_path / "l.npy"),
        str(tmp_path / "p.npy"),
        axis=2,
        weights=weights,
        reduction=reduction,
        nan_policy="omit",
    )
    losses = reference_losses(labels, predictions, axis=2)
    w = weights[..., 0]
    kept = ~np.isnan(losses)
    if reduction == "none":
        np.testing.assert_allclose(result.losses[kept], (losses * w)[kept], rtol=1e-13)
        return
    total = float((losses[kept] * w[kept]).sum())
    denominator = w[kept].sum() if reduction == "mean" else np.count_nonzero(w[kept])
    assert result.figures.loss == pytest.approx(total / denominator, rel=1e-13)


PER_ROW = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
PER_LOSS = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


@pytest.mark.parametrize(
    ("shape", "wide"),
    [
        ((3,), PER_ROW),
        ((3, 2), PER_LOSS),
        ((3, 2, 1), PER_LOSS),
        ((6,), PER_LOSS),
        ((3, 1), PER_ROW),
        ((3, 1, 1), PER_ROW),
        ((1, 2), [[1.0, 2.0]] * 3),
        ((1, 1, 1), [[1.0, 1.0]] * 3),
    ],
)
def test_loss_weights_lays_tf_layouts_out_rows_first(shape: tuple[int, ...], wide: list[list[float]]) -> None:
    """Weights 1, 2, ... in each layout, broadcast to the (3, 2) losses, as TF broadcasts them."""
    laid = loss_weights(np.arange(1.0, 1 + int(np.prod(shape))).reshape(shape), (3, 2))
    assert laid.shape[0] == 3
    np.testing.assert_array_equal(np.broadcast_to(laid.reshape(3, 1) if laid.ndim == 1 else laid, (3, 2)), wide)


@pytest.mark.parametrize("shape", [(2, 3), (4,), (3, 3), (3, 2, 2), (3, 2, 1, 1), (6, 1)])
def test_loss_weights_refuses_other_shapes_naming_both(shape: tuple[int, ...]) -> None:
    with pytest.raises(DataError, match=r"the weights have shape .*, the losses \(3, 2\)"):
        loss_weights(np.ones(shape), (3, 2))
