"""The numeric core: TensorFlow's cosine distance loss on l2-normalized inputs.

Pure numpy: no files, no terminals. For labels ``L`` and predictions ``P`` along an
axis, the loss of one pair of vectors is::

    1 - sum(L*P) / (sqrt(max(sum(L*L), eps)) * sqrt(max(sum(P*P), eps)))

which is exactly ``tf.compat.v1.losses.cosine_distance`` applied to
``tf.nn.l2_normalize``d inputs. Only three sums per vector are needed (the dot
product and both squared norms), so the core never builds normalized copies of the
data: it reduces blocks of rows into those sums, and blocks can be merged. That is
what lets the readers stream files larger than memory.

Accuracy: every sum is accumulated in float64. Vectors whose sums would overflow
(entries near 1e200) or lose precision to underflow (entries near 1e-300) are
recomputed scaled by their largest magnitude, so the sums are stored as
``scale * value`` pairs and the loss is formed from the scaled values.

Speed: the sums of float32/float64 rows come from a small C kernel
(``_kernel.c``) that reads each value once; without it (no compiler at install
time, or ``COSLOSS_NATIVE=0``) the same sums come from numpy, about twice as slow.
The two differ only in the order of the float64 additions, so a sum may differ
in its last bits.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from ..errors import DataError, InputUsageError, ShapeMismatchError
from . import _fallback

if TYPE_CHECKING:  # only mypy needs numpy.typing and pandas
    from numpy.typing import NDArray

    Float64Array = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]

#: TensorFlow's ``tf.nn.l2_normalize`` epsilon: squared norms below it are raised to it.
DEFAULT_EPS = 1e-12

# Squared norms outside (_TINY, _HUGE) are recomputed with scaling: below _TINY the
# squares of the entries may be subnormal, above _HUGE the sums may overflow.
_TINY = 1e-200
_HUGE = 1e300


class Kernel(Protocol):
    """What the C kernel (``_kernel.c``) and its numpy twin (:mod:`cosloss_cli.core._fallback`) both export.

    Modules satisfy it: mypy checks both against it, so neither can lose a function.
    """

    def row_sums(self, a: np.ndarray, b: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, /) -> None: ...

    def row_sums_at(
        self, a: np.ndarray, b: np.ndarray, rows: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, /
    ) -> None: ...

    def column_sums(self, a: np.ndarray, b: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, /) -> None: ...

    def in_range(self, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, tiny: float, huge: float, /) -> bool: ...

    def in_range_losses(
        self, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, root_eps: float, out: np.ndarray, /
    ) -> None: ...

    def fsum(self, values: np.ndarray, /) -> float | None: ...


#: The functions of :class:`Kernel`, which a built kernel must have to be used.
KERNEL_FUNCTIONS: tuple[str, ...] = tuple(name for name in vars(Kernel) if not name.startswith("_"))


def _load_native() -> Kernel | None:
    """The C kernel module, or None when it was not built, is older than its source, or ``COSLOSS_NATIVE=0``.

    A kernel built before a function was added or renamed lacks it: the numpy twin sums
    then (``cosloss --version`` says so) rather than a command failing halfway.
    """
    if os.environ.get("COSLOSS_NATIVE", "1") == "0":
        return None
    try:
        from . import _kernel
    except ImportError:
        return None
    if not all(hasattr(_kernel, name) for name in KERNEL_FUNCTIONS):
        return None
    return _kernel


#: The numpy twin, typed as a kernel: a function missing from it fails mypy.
_twin: Kernel = _fallback

#: ``cosloss_cli.core._kernel`` or None (then the numpy twin sums); tests set it to None to
#: exercise the numpy path.
_native: Kernel | None = _load_native()


def native_kernel_in_use() -> bool:
    """Whether the sums come from the C kernel (for ``--version`` and the benchmark)."""
    return _native is not None


class Sums(NamedTuple):
    """The three sums of a set of vector pairs, in scaled form.

    The true values are ``dot * scale_l * scale_p``, ``ll * scale_l**2`` and
    ``pp * scale_p**2``. A scale of 1 means "not scaled"; a scale of 0 means the
    vector is all zeros. ``nonfinite`` marks vectors with a NaN or infinity in either
    input; their sums are meaningless.
    """

    dot: Float64Array
    ll: Float64Array
    pp: Float64Array
    scale_l: Float64Array
    scale_p: Float64Array
    nonfinite: BoolArray
    #: Every vector finite and its squared norm in (_TINY, _HUGE): scales all 1, nothing
    #: nonfinite (:func:`losses_from_sums` then skips the checks that cannot apply).
    in_range: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.dot.shape)

    def merge(self, other: Sums) -> Sums:
        """Add the sums of more entries of the same vectors (a later block along the axis)."""
        scale_l = np.maximum(self.scale_l, other.scale_l)
        scale_p = np.maximum(self.scale_p, other.scale_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            a_l = np.where(scale_l > 0, self.scale_l / scale_l, 0.0)
            a_p = np.where(scale_p > 0, self.scale_p / scale_p, 0.0)
            b_l = np.where(scale_l > 0, other.scale_l / scale_l, 0.0)
            b_p = np.where(scale_p > 0, other.scale_p / scale_p, 0.0)
        return Sums(
            dot=self.dot * a_l * a_p + other.dot * b_l * b_p,
            ll=self.ll * a_l * a_l + other.ll * b_l * b_l,
            pp=self.pp * a_p * a_p + other.pp * b_p * b_p,
            scale_l=scale_l,
            scale_p=scale_p,
            nonfinite=self.nonfinite | other.nonfinite,
        )

    def zero_vectors(self) -> BoolArray:
        """Pairs where either vector is all zeros (loss exactly 1 when normalizing)."""
        result: BoolArray = ((self.scale_l == 0) | (self.scale_p == 0)) & ~self.nonfinite
        return result


def validate_pair(labels: np.ndarray, predictions: np.ndarray, axis: int) -> int:
    """Check two arrays can be compared and return the axis as a non-negative index.

    Raises :class:`ShapeMismatchError` when the shapes differ, :class:`DataError` for
    dtypes that are not real numbers, and :class:`InputUsageError` for a bad axis.
    """
    for name, array in (("labels", labels), ("predictions", predictions)):
        check_dtype(array.dtype, name)
    if labels.shape != predictions.shape:
        raise ShapeMismatchError(
            f"shapes differ: labels {shape_text(labels.shape)}, predictions {shape_text(predictions.shape)}"
        )
    return normalize_axis(axis, labels.ndim)


def check_dtype(dtype: np.dtype, name: str) -> None:
    """Refuse dtypes the loss is not defined for (complex, structured, object, text)."""
    if dtype.kind in "biuf":
        return
    if dtype.kind == "c":
        raise DataError(f"{name} hold complex numbers; the cosine loss needs real numbers")
    if dtype.names is not None:
        raise DataError(
            f"{name} have a structured dtype with fields {list(dtype.names)}; save the vectors as a plain numeric array"
        )
    raise DataError(f"{name} have dtype {dtype}, not numbers")


def normalize_axis(axis: int, ndim: int) -> int:
    """Turn a possibly negative axis into an index, or raise a usage error."""
    if ndim == 0:
        raise DataError("the input is a single number (0-d array); it needs at least one axis")
    if not -ndim <= axis < ndim:
        raise InputUsageError(
            f"axis {axis} is out of range for {ndim}-D data",
            hint=f"use an axis from {-ndim} to {ndim - 1}",
        )
    return axis % ndim


def block_sums(labels: np.ndarray, predictions: np.ndarray, axis: int, rows: np.ndarray | None = None) -> Sums:
    """Reduce one block of vector pairs to their three sums along ``axis``.

    The arrays must have the same shape; ``axis`` must be non-negative. The result
    has the input shape without ``axis``. With ``rows`` (2-D inputs, ``axis == 1``),
    row i of ``labels`` is paired with row ``rows[i]`` of ``predictions`` instead: the
    rows of a join, which the C kernel reads where they are held rather than from a
    gathered copy. The result is that of ``predictions[rows]``, bit for bit.
    """
    if rows is not None and not _reads_rows_at(labels, predictions, axis):
        predictions, rows = np.take(predictions, rows, axis=0), None
    out_shape = labels.shape[:axis] + labels.shape[axis + 1 :]
    with np.errstate(all="ignore"):
        if rows is None:
            dot, ll, pp = _three_sums(labels, predictions, axis)
        else:
            dot, ll, pp = _row_sums_at(labels, predictions, rows)
    scale_l = np.ones_like(dot)
    scale_p = np.ones_like(dot)
    nonfinite: BoolArray = np.zeros(dot.shape, dtype=bool)
    # Four reductions decide the common case (every norm in range; NaN fails a comparison)
    # in fewer numpy calls than the element-wise mask, which is built only otherwise.
    in_range = bool(ll.size == 0 or _in_range(dot, ll, pp))
    unsafe = None if in_range else ~((ll > _TINY) & (ll < _HUGE) & (pp > _TINY) & (pp < _HUGE) & np.isfinite(dot))
    if unsafe is not None and unsafe.any():
        if rows is not None:
            predictions = np.take(predictions, rows, axis=0)
        where, cols = np.nonzero(unsafe)
        l3 = _as_float64_3d(labels, axis)
        p3 = _as_float64_3d(predictions, axis)
        exact = _scaled_sums(l3[where, :, cols], p3[where, :, cols])
        dot[where, cols] = exact.dot
        ll[where, cols] = exact.ll
        pp[where, cols] = exact.pp
        scale_l[where, cols] = exact.scale_l
        scale_p[where, cols] = exact.scale_p
        nonfinite[where, cols] = exact.nonfinite
    return Sums(
        dot=dot.reshape(out_shape),
        ll=ll.reshape(out_shape),
        pp=pp.reshape(out_shape),
        scale_l=scale_l.reshape(out_shape),
        scale_p=scale_p.reshape(out_shape),
        nonfinite=nonfinite.reshape(out_shape),
        in_range=in_range,
    )


_minimum, _maximum, _add = np.minimum.reduce, np.maximum.reduce, np.add.reduce


def _in_range(dot: Float64Array, ll: Float64Array, pp: Float64Array) -> bool:
    """Every squared norm in (_TINY, _HUGE) and the dot products finite: the in-range case (one kernel pass)."""
    flat_dot, flat_ll, flat_pp = (np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in (dot, ll, pp))
    return bool((_native or _twin).in_range(flat_dot, flat_ll, flat_pp, _TINY, _HUGE))


def _contiguous(*arrays: np.ndarray) -> bool:
    """All C-contiguous float64 arrays: what the kernel's one-pass helpers read."""
    return all(a.dtype == np.float64 and a.flags.c_contiguous for a in arrays)


def _three_sums(labels: np.ndarray, predictions: np.ndarray, axis: int) -> tuple[Float64Array, ...]:
    """The dot products and squared norms along ``axis``, shaped (before, after).

    Vectors along the last axis (the common case) are converted to float64 a chunk
    of rows at a time into per-thread buffers that stay in cache, instead of into a
    float64 copy of the whole block; the sums are the same (float64 accumulation).
    """
    if labels.ndim == 2 and axis == 1 and labels.shape[0] > 0:
        return _row_sums(labels, predictions)
    if labels.ndim == 2 and axis == 0 and labels.shape[0] > 0:
        return _column_sums(labels, predictions)
    l3 = _as_float64_3d(labels, axis)
    p3 = _as_float64_3d(predictions, axis)
    return (
        np.einsum("ijk,ijk->ik", l3, p3),
        np.einsum("ijk,ijk->ik", l3, l3),
        np.einsum("ijk,ijk->ik", p3, p3),
    )


#: Values of one input converted to float64 at a time (512 KB): both inputs' chunks
#: stay in L2 cache while the three sums read them.
_CHUNK_VALUES = 1 << 16

_scratch = threading.local()


def _chunk_buffers(size: int) -> tuple[Float64Array, Float64Array]:
    buffers: tuple[Float64Array, Float64Array] | None = getattr(_scratch, "buffers", None)
    if buffers is None or buffers[0].size < size:
        buffers = (np.empty(size, dtype=np.float64), np.empty(size, dtype=np.float64))
        _scratch.buffers = buffers
    return buffers


def _float64_chunks(
    labels: np.ndarray, predictions: np.ndarray
) -> Iterator[tuple[int, int, Float64Array, Float64Array]]:
    """(start, stop, labels rows, predictions rows) of two 2-D arrays, a cache-sized chunk at a time.

    Chunks are converted into per-thread float64 buffers (transposing column-major
    blocks from Parquet and CSV on the way); C-contiguous float64 inputs are used in
    place.
    """
    rows, width = labels.shape
    step = max(1, _CHUNK_VALUES // max(1, width))
    convert = not all(a.dtype == np.float64 and a.flags.c_contiguous for a in (labels, predictions))
    if convert:
        lbuf, pbuf = _chunk_buffers(min(rows, step) * width)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        lc, pc = labels[start:stop], predictions[start:stop]
        if convert:
            size = (stop - start) * width
            lc64 = lbuf[:size].reshape(stop - start, width)
            pc64 = pbuf[:size].reshape(stop - start, width)
            np.copyto(lc64, lc, casting="unsafe")
            np.copyto(pc64, pc, casting="unsafe")
            lc, pc = lc64, pc64
        yield start, stop, lc, pc


def _native_layout(array: np.ndarray) -> str | None:
    """How the C kernel can read ``array`` in place: "rows" or "columns" contiguous, or None.

    Rows of NPY files are contiguous; the numeric columns of Parquet and CSV files come as
    column-major blocks, which ``row_sums`` reads down the columns with the same results.
    """
    if array.dtype not in (np.float32, np.float64) or not array.dtype.isnative:
        return None
    if array.shape[1] <= 1 or array.strides[1] == array.itemsize:
        return "rows" if array.shape[0] <= 1 or array.strides[0] >= 0 else None
    if array.shape[0] <= 1 or array.strides[0] == array.itemsize:
        return "columns" if array.strides[1] >= 0 else None
    return None


def _row_sums(labels: np.ndarray, predictions: np.ndarray) -> tuple[Float64Array, ...]:
    """The three sums of each row of two 2-D arrays, shaped (rows, 1).

    The C kernel reads float32/float64 blocks in place, row-major (NPY) or column-major
    (Parquet, CSV) alike; other blocks (other dtypes, mixed layouts), and every block
    without the C kernel, go through cache-sized float64 chunks, each written to its
    rows of the sums.
    """
    rows = labels.shape[0]
    dot, ll, pp = (np.empty(rows, dtype=np.float64) for _ in range(3))
    layout = _native_layout(labels)
    if _native is not None and layout is not None and layout == _native_layout(predictions):
        _native.row_sums(labels, predictions, dot, ll, pp)  # rows (NPY) or columns (Parquet, CSV) in place
    else:
        kernel = _native or _twin
        for start, stop, lc, pc in _float64_chunks(labels, predictions):
            kernel.row_sums(lc, pc, dot[start:stop], ll[start:stop], pp[start:stop])
    return dot.reshape(rows, 1), ll.reshape(rows, 1), pp.reshape(rows, 1)


def _reads_rows_at(labels: np.ndarray, predictions: np.ndarray, axis: int) -> bool:
    """Whether the C kernel can pair ``labels`` with rows of ``predictions`` read in place (row-major 2-D)."""
    return (
        _native is not None
        and labels.ndim == predictions.ndim == 2
        and axis == 1
        and labels.shape[0] > 0
        and _native_layout(labels) == _native_layout(predictions) == "rows"
    )


def _row_sums_at(labels: np.ndarray, predictions: np.ndarray, rows: np.ndarray) -> tuple[Float64Array, ...]:
    """:func:`_row_sums` of ``labels`` and ``predictions[rows]``, without that copy (see :func:`block_sums`)."""
    count = labels.shape[0]
    dot, ll, pp = (np.empty(count, dtype=np.float64) for _ in range(3))
    (_native or _twin).row_sums_at(labels, predictions, np.asarray(rows, dtype=np.intp), dot, ll, pp)
    return dot.reshape(count, 1), ll.reshape(count, 1), pp.reshape(count, 1)


def _column_sums(labels: np.ndarray, predictions: np.ndarray) -> tuple[Float64Array, ...]:
    """The three sums of each column of two 2-D arrays (``axis=0``), shaped (1, columns).

    As :func:`_row_sums`, but the C kernel reads only row-major blocks in place; the
    column sums of the chunks add up in the result.
    """
    width = labels.shape[1]
    dot, ll, pp = (np.zeros(width, dtype=np.float64) for _ in range(3))
    if _native is not None and _native_layout(labels) == _native_layout(predictions) == "rows":
        _native.column_sums(labels, predictions, dot, ll, pp)
    else:
        kernel = _native or _twin
        for _start, _stop, lc, pc in _float64_chunks(labels, predictions):
            kernel.column_sums(lc, pc, dot, ll, pp)
    return dot.reshape(1, width), ll.reshape(1, width), pp.reshape(1, width)


def _as_float64_3d(array: np.ndarray, axis: int) -> Float64Array:
    """View ``array`` as (before, along, after) in float64; copies only to convert."""
    before = math.prod(array.shape[:axis])
    after = math.prod(array.shape[axis + 1 :])
    as_f64: Float64Array = np.asarray(array, dtype=np.float64)
    return as_f64.reshape(before, array.shape[axis], after)


def _scaled_sums(lv: Float64Array, pv: Float64Array) -> Sums:
    """Sums of vectors (one per row of ``lv``/``pv``), each scaled by its largest entry.

    Scaling before squaring keeps 1e300 from overflowing and 1e-300 from underflowing.
    """
    finite = np.isfinite(lv).all(axis=1) & np.isfinite(pv).all(axis=1)
    with np.errstate(all="ignore"):
        scale_l = np.where(finite, np.abs(lv).max(axis=1, initial=0.0), 0.0)
        scale_p = np.where(finite, np.abs(pv).max(axis=1, initial=0.0), 0.0)
        ls = lv / np.where(scale_l > 0, scale_l, 1.0)[:, None]
        ps = pv / np.where(scale_p > 0, scale_p, 1.0)[:, None]
        ls[~finite] = 0.0
        ps[~finite] = 0.0
    return Sums(
        dot=np.einsum("ij,ij->i", ls, ps),
        ll=np.einsum("ij,ij->i", ls, ls),
        pp=np.einsum("ij,ij->i", ps, ps),
        scale_l=scale_l,
        scale_p=scale_p,
        nonfinite=np.asarray(~finite, dtype=bool),
    )


def losses_from_sums(sums: Sums, *, eps: float = DEFAULT_EPS, normalize: bool = True) -> Float64Array:
    """Turn the three sums into losses: NaN where an input was not finite.

    With ``normalize`` the loss is clipped into [0, 2] (float rounding can step just
    outside); a zero vector gives exactly 1. Without it, the result is TensorFlow's
    raw ``1 - dot``, unclipped, as TF returns it for already-normalized inputs.
    ``eps`` was checked at the entry point (:func:`cosine_loss`, the pipeline).
    """
    if normalize and sums.in_range:
        return _in_range_losses(sums.dot, sums.ll, sums.pp, math.sqrt(eps))
    with np.errstate(all="ignore"):
        if normalize:
            root_eps = math.sqrt(eps)
            factor_l = np.where(sums.scale_l > 0, np.maximum(np.sqrt(sums.ll), root_eps / sums.scale_l), np.inf)
            factor_p = np.where(sums.scale_p > 0, np.maximum(np.sqrt(sums.pp), root_eps / sums.scale_p), np.inf)
            cosine = sums.dot / factor_l / factor_p
            cosine = np.where(np.isfinite(cosine), cosine, 0.0)
            losses = np.clip(1.0 - cosine, 0.0, 2.0)
        else:
            losses = 1.0 - sums.dot * sums.scale_l * sums.scale_p
    losses = np.where(sums.nonfinite, np.nan, losses)
    result: Float64Array = np.asarray(losses, dtype=np.float64)
    return result


def in_range_row_losses(labels: np.ndarray, predictions: np.ndarray, eps: float = DEFAULT_EPS) -> Float64Array | None:
    """The normalized losses of the rows of two 2-D arrays when every sum is in range, else None.

    Plain: every vector finite and its squared norm in (_TINY, _HUGE), the case of
    nearly every real file. The values are :func:`block_sums` then
    :func:`losses_from_sums` to the bit (the same kernel and steps), without building the
    scales and masks the other cases need: what a small pair of ``batch`` spends most of
    its time on otherwise. None sends the caller down the general steps.
    """
    rows = labels.shape[0]
    if _native is not None and rows:
        layout = _native_layout(labels)
        if layout is not None and layout == _native_layout(predictions):
            # :func:`_row_sums`, :func:`_in_range` and :func:`_in_range_losses` in as few calls
            # (a small pair spent a quarter of its time between them): the C kernel reads
            # the arrays in place and never warns, so no error state is needed.
            dot, ll, pp = np.empty((3, rows), dtype=np.float64)
            _native.row_sums(labels, predictions, dot, ll, pp)
            if not _native.in_range(dot, ll, pp, _TINY, _HUGE):
                return None
            out: Float64Array = np.empty(rows, dtype=np.float64)
            _native.in_range_losses(dot, ll, pp, math.sqrt(eps), out)
            return out
    with np.errstate(all="ignore"):  # the numpy fallback's sums may overflow: then not in range
        dot, ll, pp = (column.reshape(-1) for column in _row_sums(labels, predictions))
    if ll.size == 0 or not _in_range(dot, ll, pp):
        return None
    return _in_range_losses(dot, ll, pp, math.sqrt(eps))


def _in_range_losses(dot: Float64Array, ll: Float64Array, pp: Float64Array, root_eps: float) -> Float64Array:
    """:func:`losses_from_sums` of in-range sums (scales 1, all finite): the same values, in one kernel pass.

    With every scale 1, ``root_eps / scale`` is ``root_eps`` and the ``where`` on the
    scales and on ``nonfinite`` select everything, so the kernel's ``in_range_losses``
    (C or its numpy twin) gives the same bits.
    """
    flat_dot, flat_ll, flat_pp = (np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in (dot, ll, pp))
    out: Float64Array = np.empty(flat_dot.size, dtype=np.float64)
    (_native or _twin).in_range_losses(flat_dot, flat_ll, flat_pp, root_eps, out)
    return out.reshape(np.shape(dot))


def exact_sum(values: Float64Array) -> float:
    """The correctly rounded sum of ``values``, as ``math.fsum`` gives it (``batch``'s pooled mean).

    The C kernel's ``fsum`` runs math.fsum's algorithm over the array in place, without
    the Python floats of ``tolist`` (it pays on ``batch``'s row); it leaves NaN, infinities and
    overflow to ``math.fsum`` (None), so those keep math.fsum's answers and errors.
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if _native is not None:
        total = _native.fsum(flat)
        if total is not None:
            return float(total)
    return math.fsum(flat.tolist())


class Summary(NamedTuple):
    """Summary statistics of a set of losses (what the table and JSON report).

    ``count`` is the number of losses; as a field it hides ``tuple.count``.
    """

    count: int  # type: ignore[assignment]
    mean: float
    std: float
    min: float
    median: float
    max: float
    zero_vectors: int
    omitted: int


def summarize(
    losses: Float64Array,
    *,
    zero_vectors: int = 0,
    omitted: int = 0,
    median: float | None = None,
    extremes: tuple[float, float] | None = None,
) -> Summary:
    """Count, mean, population std, min, median and max of the losses.

    NaN losses (``nan_policy="propagate"``) make every statistic NaN, as numpy does;
    an empty set of losses gives NaN statistics and a count of 0. ``median``: the
    losses' median when the caller has it (``compute`` takes it from the partition
    that also gives the percentiles); ``extremes``: their (min, max), likewise (a small
    pair of ``batch`` takes them from the sort that gives its percentiles).
    """
    flat = np.asarray(losses, dtype=np.float64).ravel()
    if flat.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, zero_vectors, omitted)
    # np.mean and np.std's own steps (a pairwise sum divided by the count; the squared
    # deviations from that mean, summed and divided), without their wrappers, which cost
    # more than the work on a small pair's losses; the mean is computed once for both.
    total = _add(flat)
    mean = total / flat.size
    # Infinite losses (``normalize=False`` on huge values) make inf - inf: NaN figures,
    # which say so themselves; numpy's warning would reach the user's terminal.
    with np.errstate(invalid="ignore", over="ignore"):
        deviations = flat - mean
        np.multiply(deviations, deviations, out=deviations)
        std = float(np.sqrt(_add(deviations) / flat.size))
    return Summary(
        count=int(flat.size),
        mean=float(mean),
        std=std,
        min=float(_minimum(flat)) if extremes is None else extremes[0],
        median=_median(flat, known_finite=not math.isnan(total)) if median is None else median,
        max=float(_maximum(flat)) if extremes is None else extremes[1],
        zero_vectors=zero_vectors,
        omitted=omitted,
    )


def _median(flat: Float64Array, known_finite: bool = False) -> float:
    """``np.median`` without its NaN check, which imports numpy.ma (measured: bench/RESULTS.md, round 10).

    ``known_finite``: the caller knows there is no NaN (the sum of the values is not NaN).
    """
    if not known_finite and np.isnan(flat).any():
        return math.nan
    middle = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, middle)[middle])
    low, high = np.partition(flat, (middle - 1, middle))[middle - 1 : middle + 1]
    return float((low + high) / 2)


def shape_text(shape: tuple[int | None, ...]) -> str:
    """A shape as Python prints it, ``?`` for a length not known yet (rows of a CSV).

    >>> shape_text((2, 3)), shape_text((3,)), shape_text((None, 4)), shape_text(())
    ('(2, 3)', '(3,)', '(?, 4)', '()')
    """
    return "(" + ", ".join("?" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
