"""Make the TensorFlow golden cases of weights for N-D inputs (run by hand, never by the tests).

TensorFlow's own ``CosineDistanceLossTest`` reduces inputs of shape (3, 2, 3) along axis
2 and passes measurement-specific weights, one per loss. This script writes such a
case into ``nd/``, made the same way as :mod:`make_golden` (a throwaway virtual
environment outside the repository, ``pip install tensorflow-cpu``)::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tests/golden_reductions/make_golden_nd.py

``nd/labels.npy`` and ``nd/predictions.npy`` are float32 (3, 2, 3) arrays; each case
folder holds ``weights.npy`` (float32, in the shape given to TF) and ``expected.json``:

- ``tensorflow``: ``tf.compat.v1.losses.cosine_distance(..., axis=2, weights=w)`` of the
  ``tf.nn.l2_normalize``d inputs for the five reductions, in float32. TF's losses have
  shape (3, 2, 1) (the reduced axis is kept), and TF 2.21 refuses weights of another
  rank ("weights can not be broadcast to values"): weights of shape (3, 2) and (6,)
  are given to TF reshaped to (3, 2, 1) (as cosloss reads them: one per loss), (3, 1)
  as (3, 1, 1) (one per sample). ``none`` is the weighted losses, flattened.
- ``float64_reference``: the same from the definitions in plain Python float64.

TensorFlow is imported inside :func:`main` so that collecting this file (pytest runs
``--doctest-modules``) does not need it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent / "nd"
REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights")
EPS = 1e-12
SHAPE = (3, 2, 3)

#: case name -> the weights as committed (their shape is the case), some zero.
CASES: dict[str, list[Any]] = {
    "per_loss_3x2": [[1.0, 0.0], [0.5, 2.0], [1.5, 1.0]],
    "per_loss_3x2x1": [[[1.0], [0.0]], [[0.5], [2.0]], [[1.5], [1.0]]],
    "per_loss_flat_6": [1.0, 0.0, 0.5, 2.0, 1.5, 1.0],
    "per_sample_3x1": [[2.0], [0.0], [0.75]],
    "per_sample_3x1x1": [[[2.0]], [[0.0]], [[0.75]]],
}


def make_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Six pairs of 3-vectors: random ones, a zero label (loss 1) and an opposite prediction (loss 2)."""
    rng = np.random.default_rng(20261207)
    labels = rng.normal(size=SHAPE).astype(np.float32)
    predictions = (labels + rng.normal(scale=0.9, size=SHAPE)).astype(np.float32)
    labels[1, 0] = 0.0
    predictions[2, 1] = -labels[2, 1]
    return labels, predictions


def tf_weights(weights: np.ndarray) -> np.ndarray:
    """The weights in the rank of TF's losses, (3, 2, 1): how TF is given the same weights."""
    if weights.shape in ((6,), (3, 2)):
        return weights.reshape(3, 2, 1)
    if weights.shape == (3, 1):
        return weights.reshape(3, 1, 1)
    return weights


def reference_losses(labels: np.ndarray, predictions: np.ndarray) -> list[list[float]]:
    """The cosine distance of each l2-normalized pair along the last axis, in Python floats."""
    out = []
    for lrows, prows in zip(labels.tolist(), predictions.tolist(), strict=True):
        row = []
        for lvec, pvec in zip(lrows, prows, strict=True):
            dot = math.fsum(a * b for a, b in zip(lvec, pvec, strict=True))
            ll = math.fsum(a * a for a in lvec)
            pp = math.fsum(b * b for b in pvec)
            cosine = dot / (math.sqrt(max(ll, EPS)) * math.sqrt(max(pp, EPS)))
            row.append(min(2.0, max(0.0, 1.0 - cosine)))
        out.append(row)
    return out


def reference_reductions(losses: list[list[float]], weights: np.ndarray) -> dict[str, Any]:
    """TF's compute_weighted_loss in Python floats over the broadcast weights (a zero denominator gives 0)."""
    wide = np.broadcast_to(tf_weights(weights).astype(np.float64)[..., 0], (3, 2)).tolist()
    flat_w = [float(w) for row in wide for w in row]
    flat_l = [loss for row in losses for loss in row]
    weighted = [loss * w for loss, w in zip(flat_l, flat_w, strict=True)]
    total = math.fsum(weighted)

    def safe(denominator: float) -> float:
        return 0.0 if denominator == 0 else total / denominator

    return {
        "none": weighted,
        "sum": total,
        "mean": safe(math.fsum(flat_w)),
        "sum_over_batch_size": safe(float(len(flat_l))),
        "sum_by_nonzero_weights": safe(float(sum(1 for w in flat_w if w != 0))),
    }


def tensorflow_reductions(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    import tensorflow as tf

    names = {
        "none": tf.compat.v1.losses.Reduction.NONE,
        "sum": tf.compat.v1.losses.Reduction.SUM,
        "mean": tf.compat.v1.losses.Reduction.MEAN,
        "sum_over_batch_size": tf.compat.v1.losses.Reduction.SUM_OVER_BATCH_SIZE,
        "sum_by_nonzero_weights": tf.compat.v1.losses.Reduction.SUM_BY_NONZERO_WEIGHTS,
    }
    normalized_labels = tf.nn.l2_normalize(tf.constant(labels), axis=2)
    normalized_predictions = tf.nn.l2_normalize(tf.constant(predictions), axis=2)
    result: dict[str, Any] = {}
    for name in REDUCTIONS:
        value = tf.compat.v1.losses.cosine_distance(
            normalized_labels,
            normalized_predictions,
            axis=2,
            weights=tf.constant(tf_weights(weights)),
            reduction=names[name],
        ).numpy()
        assert value.dtype == np.float32
        if name == "none":
            assert value.shape == (3, 2, 1)
        result[name] = [float(x) for x in value.ravel()] if name == "none" else float(value)
    return result


def main() -> None:
    import tensorflow as tf

    HERE.mkdir(exist_ok=True)
    labels, predictions = make_inputs()
    np.save(HERE / "labels.npy", labels)
    np.save(HERE / "predictions.npy", predictions)
    losses = reference_losses(labels, predictions)
    for case, values in CASES.items():
        folder = HERE / case
        folder.mkdir(exist_ok=True)
        weights = np.asarray(values, dtype=np.float32)
        np.save(folder / "weights.npy", weights)
        expected = {
            "labels": "../labels.npy",
            "predictions": "../predictions.npy",
            "axis": 2,
            "weights": "weights.npy",
            "weights_shape": list(weights.shape),
            "tensorflow": {"version": tf.__version__, "dtype": "float32"}
            | tensorflow_reductions(labels, predictions, weights),
            "float64_reference": {"losses": [x for row in losses for x in row]} | reference_reductions(losses, weights),
        }
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(case, {k: expected["tensorflow"][k] for k in REDUCTIONS[1:]})


if __name__ == "__main__":
    main()
