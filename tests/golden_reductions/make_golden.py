"""Make the TensorFlow golden cases of the weighted reductions (run by hand, never by the tests).

How the files here were made: in a throwaway virtual environment outside the
repository (Python 3.11, ``pip install tensorflow-cpu``; TensorFlow 2.21.0 on CPU)::

    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tests/golden_reductions/make_golden.py

The script writes ``labels.npy`` and ``predictions.npy`` (float32, the very values
TensorFlow saw) and one folder per case with the case's weights file, if any, and an
``expected.json`` holding:

- ``tensorflow``: ``tf.compat.v1.losses.cosine_distance`` of the ``tf.nn.l2_normalize``d
  inputs (``axis=1``) for each of the five ``tf.compat.v1.losses.Reduction`` values,
  computed by TensorFlow in float32 (``none`` is the list of weighted losses);
- ``float64_reference``: the same figures from the definitions in plain Python float64
  (``math.fsum`` sums, no numpy, no cosloss), for the exact-arithmetic comparison.

TensorFlow is imported inside :func:`main` so that collecting this file (pytest runs
``--doctest-modules``) does not need it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights")
EPS = 1e-12  # tf.nn.l2_normalize's epsilon


def make_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Nine pairs of 5-vectors: random ones, a zero label (loss 1), a scaled copy (loss 0), an opposite (2)."""
    rng = np.random.default_rng(20261202)
    labels = rng.normal(size=(9, 5)).astype(np.float32)
    predictions = (labels + rng.normal(scale=0.8, size=(9, 5))).astype(np.float32)
    labels[3] = 0.0
    predictions[6] = labels[6] * np.float32(2.0)
    predictions[7] = -labels[7]
    return labels, predictions


#: case name -> (weights as passed to TF, the file they are committed as, or None)
CASES: dict[str, tuple[Any, str | None]] = {
    "no_weights": (None, None),
    "per_row": ([0.5, 2.0, 1.0, 3.25, 0.75, 1.5, 0.125, 1.0, 2.5], "weights.csv"),
    "some_zero": ([1.0, 0.0, 2.5, 0.0, 1.0, 0.0, 4.0, 0.5, 0.0], "weights.npy"),
    "all_zero": ([0.0] * 9, "weights.csv"),
    "scalar": (0.5, None),
}


def reference_losses(labels: np.ndarray, predictions: np.ndarray) -> list[float]:
    """The cosine distance of l2-normalized rows, from the definition in Python floats."""
    losses = []
    for lrow, prow in zip(labels.tolist(), predictions.tolist(), strict=True):
        dot = math.fsum(a * b for a, b in zip(lrow, prow, strict=True))
        ll = math.fsum(a * a for a in lrow)
        pp = math.fsum(b * b for b in prow)
        cosine = dot / (math.sqrt(max(ll, EPS)) * math.sqrt(max(pp, EPS)))
        losses.append(min(2.0, max(0.0, 1.0 - cosine)))
    return losses


def reference_reductions(losses: list[float], weights: Any) -> dict[str, Any]:
    """TF's compute_weighted_loss in Python floats; a zero denominator gives 0 (div_no_nan)."""
    w = [1.0] * len(losses) if weights is None else [float(weights)] * len(losses) if _scalar(weights) else weights
    weighted = [loss * x for loss, x in zip(losses, w, strict=True)]
    total = math.fsum(weighted)

    def safe(denominator: float) -> float:
        return 0.0 if denominator == 0 else total / denominator

    return {
        "none": weighted,
        "sum": total,
        "mean": safe(math.fsum(w)),
        "sum_over_batch_size": safe(float(len(losses))),
        "sum_by_nonzero_weights": safe(float(sum(1 for x in w if x != 0))),
    }


def _scalar(weights: Any) -> bool:
    return isinstance(weights, (int, float))


def tensorflow_reductions(labels: np.ndarray, predictions: np.ndarray, weights: Any) -> dict[str, Any]:
    import tensorflow as tf

    names = {
        "none": tf.compat.v1.losses.Reduction.NONE,
        "sum": tf.compat.v1.losses.Reduction.SUM,
        "mean": tf.compat.v1.losses.Reduction.MEAN,
        "sum_over_batch_size": tf.compat.v1.losses.Reduction.SUM_OVER_BATCH_SIZE,
        "sum_by_nonzero_weights": tf.compat.v1.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
    }
    normalized_labels = tf.nn.l2_normalize(tf.constant(labels), axis=1)
    normalized_predictions = tf.nn.l2_normalize(tf.constant(predictions), axis=1)
    kwargs: dict[str, Any] = {}
    if weights is not None:
        # TF's losses have shape (rows, 1) here; weights must have the same rank to broadcast.
        kwargs["weights"] = weights if _scalar(weights) else tf.constant(np.asarray(weights, np.float32)[:, None])
    result: dict[str, Any] = {}
    for name in REDUCTIONS:
        value = tf.compat.v1.losses.cosine_distance(
            normalized_labels, normalized_predictions, axis=1, reduction=names[name], **kwargs
        ).numpy()
        assert value.dtype == np.float32
        result[name] = [float(x) for x in value.ravel()] if name == "none" else float(value)
    return result


def write_weights(folder: Path, name: str, weights: list[float]) -> None:
    if name.endswith(".npy"):
        np.save(folder / name, np.asarray(weights, dtype=np.float64))
    elif name == "weights.csv" and any(weights):
        (folder / name).write_text("weight\n" + "".join(f"{w!r}\n" for w in weights))
    else:  # the all-zero weights: a CSV without a header
        (folder / name).write_text("".join(f"{w!r}\n" for w in weights))


def main() -> None:
    import tensorflow as tf

    labels, predictions = make_inputs()
    np.save(HERE / "labels.npy", labels)
    np.save(HERE / "predictions.npy", predictions)
    losses = reference_losses(labels, predictions)
    for case, (weights, file_name) in CASES.items():
        folder = HERE / case
        folder.mkdir(exist_ok=True)
        if file_name is not None:
            write_weights(folder, file_name, weights)
        expected = {
            "labels": "../labels.npy",
            "predictions": "../predictions.npy",
            "axis": 1,
            "weights": file_name if file_name is not None else weights,
            "tensorflow": {"version": tf.__version__, "dtype": "float32"}
            | tensorflow_reductions(labels, predictions, weights),
            "float64_reference": {"losses": losses} | reference_reductions(losses, weights),
        }
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(case, {k: expected["tensorflow"][k] for k in REDUCTIONS[1:]})


if __name__ == "__main__":
    main()
