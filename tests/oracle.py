"""The one reference loss every test module checks cosloss against.

Written from the contract, in float64, independently of :mod:`cosloss_cli.core.cosine`: for
labels ``L`` and predictions ``P`` along ``axis``, the loss of a pair of vectors is
``1 - sum(L*P) / (max(|L|, sqrt(eps)) * max(|P|, sqrt(eps)))``, clipped into [0, 2].
The rules, stated once for every test:

- a vector with a NaN or infinity (in either input) gives NaN;
- a zero vector gives exactly 1, also with ``eps=0``;
- each vector is divided by its largest magnitude before squaring, so entries near
  1e300 do not overflow and entries near 1e-300 do not underflow (the division is
  exact up to rounding and cancels in the cosine);
- integer and float16 inputs are converted to float64 first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: TensorFlow's ``tf.nn.l2_normalize`` epsilon (a squared-norm floor).
EPS = 1e-12


def reference_losses(labels: Any, predictions: Any, axis: int = -1, eps: float = EPS) -> np.ndarray:
    """Losses along ``axis`` as the contract defines them (float64, shape without ``axis``)."""
    lab = np.moveaxis(np.asarray(labels, dtype=np.float64), axis, -1)
    pre = np.moveaxis(np.asarray(predictions, dtype=np.float64), axis, -1)
    out = np.empty(lab.shape[:-1])
    for index in np.ndindex(out.shape):
        out[index] = reference_loss(lab[index], pre[index], eps)
    return out


def reference_loss(label: Any, prediction: Any, eps: float = EPS) -> float:
    """The loss of one pair of vectors (see the module's rules)."""
    lv = np.asarray(label, dtype=np.float64).ravel()
    pv = np.asarray(prediction, dtype=np.float64).ravel()
    if not (np.isfinite(lv).all() and np.isfinite(pv).all()):
        return math.nan
    sl, sp = float(np.abs(lv).max(initial=0.0)), float(np.abs(pv).max(initial=0.0))
    if sl == 0 or sp == 0:
        return 1.0
    ls, ps = lv / sl, pv / sp
    dot = math.fsum((ls * ps).tolist())
    with np.errstate(over="ignore"):  # sqrt(eps) / a subnormal scale: inf, the norm is below sqrt(eps)
        nl = max(math.sqrt(math.fsum((ls * ls).tolist())), float(np.float64(math.sqrt(eps)) / sl))
        np_ = max(math.sqrt(math.fsum((ps * ps).tolist())), float(np.float64(math.sqrt(eps)) / sp))
    return min(max(1.0 - dot / nl / np_, 0.0), 2.0)
