"""The numpy twin of the C kernel (``_kernel.c``): the same functions, names and signatures.

:mod:`cosloss_cli.core.cosine` imports the C module when it was built and falls back to this
one otherwise (or with ``COSLOSS_NATIVE=0``), as msgpack's ``fallback.py`` and
markupsafe's ``_native.py`` do. Every function the C module exports is here, with the
same arguments and results (``_kernel.pyi`` types both; the tests run each function
through both). The sums are float64 sums as in C, added in another order, so they may
differ in their last bits; ``in_range``, ``in_range_losses`` and ``fsum`` give the same bits.
"""

from __future__ import annotations

import math

import numpy as np


def row_sums(a: np.ndarray, b: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Write each row's dot product and squared norms (float64) into ``dot``, ``ll`` and ``pp``.

    float32 inputs are summed in float64, as the C kernel sums them. einsum, not
    ``np.vecdot`` (numpy 2): vecdot did not get faster on two threads, so blocks would no
    longer be reduced on both cores.

    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]]); out = [np.empty(2) for _ in range(3)]
    >>> row_sums(a, a, *out); out[0]
    array([ 5., 25.])
    """
    np.einsum("ij,ij->i", a, b, out=dot, dtype=np.float64)
    np.einsum("ij,ij->i", a, a, out=ll, dtype=np.float64)
    np.einsum("ij,ij->i", b, b, out=pp, dtype=np.float64)


def row_sums_at(
    a: np.ndarray, b: np.ndarray, rows: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray
) -> None:
    """:func:`row_sums` of ``a`` and ``b[rows]`` (the C kernel reads those rows in place).

    >>> a = np.eye(2); b = np.array([[0.0, 1.0], [1.0, 0.0]]); out = [np.empty(2) for _ in range(3)]
    >>> row_sums_at(a, b, np.array([1, 0]), *out); out[0]
    array([1., 1.])
    """
    indices = np.asarray(rows, dtype=np.intp)
    if indices.shape != (a.shape[0],):
        raise ValueError(f"rows must hold one row index per row of labels ({a.shape[0]}), not {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= b.shape[0]):
        raise IndexError(f"a row index is outside the predictions' {b.shape[0]} rows")
    row_sums(a, b[indices], dot, ll, pp)


def column_sums(a: np.ndarray, b: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Add each column's dot product and squared norms (float64) to ``dot``, ``ll`` and ``pp``."""
    dot += np.einsum("ij,ij->j", a, b, dtype=np.float64)
    ll += np.einsum("ij,ij->j", a, a, dtype=np.float64)
    pp += np.einsum("ij,ij->j", b, b, dtype=np.float64)


def in_range(dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, tiny: float, huge: float) -> bool:
    """Whether every squared norm is in (``tiny``, ``huge``) and every dot product finite.

    >>> in_range(np.array([1.0]), np.array([1.0]), np.array([2.0]), 1e-200, 1e300)
    True
    >>> in_range(np.array([np.inf]), np.array([1.0]), np.array([2.0]), 1e-200, 1e300)
    False
    """
    return bool(np.all((ll > tiny) & (ll < huge) & (pp > tiny) & (pp < huge)) and np.all(np.isfinite(dot)))


def in_range_losses(dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, root_eps: float, out: np.ndarray) -> None:
    """Write ``clip(1 - dot / max(sqrt(ll), root_eps) / max(sqrt(pp), root_eps), 0, 2)`` into ``out``.

    A non-finite cosine counts as 0 (loss 1). The same float64 operations in the same
    order as the C kernel's, so the same bits.

    >>> out = np.empty(1); in_range_losses(np.array([1.0]), np.array([1.0]), np.array([4.0]), 1e-6, out); out
    array([0.5])
    """
    with np.errstate(all="ignore"):
        norm_l, norm_p = np.sqrt(ll), np.sqrt(pp)
        # as C's ``norm >= root_eps ? norm : root_eps``: np.maximum would carry a NaN norm on
        cosine = np.divide(dot, np.where(norm_l >= root_eps, norm_l, root_eps))
        np.divide(cosine, np.where(norm_p >= root_eps, norm_p, root_eps), out=cosine)
        cosine[~np.isfinite(cosine)] = 0.0
        np.subtract(1.0, cosine, out=cosine)
        np.clip(cosine, 0.0, 2.0, out=out)


def fsum(values: np.ndarray) -> float | None:
    """The correctly rounded sum of a contiguous float64 array, or None for NaN, infinities and overflow.

    The C kernel returns None in those cases so that the caller asks ``math.fsum``,
    whose answers and errors for them stay its own; this twin does the same.

    >>> fsum(np.array([0.1] * 10)), fsum(np.array([1.0, np.nan]))
    (1.0, None)
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(flat)):
        return None
    try:
        total = math.fsum(flat.tolist())
    except OverflowError:
        return None
    return total if math.isfinite(total) else None
