"""The small-pair path of ``compute_files`` (``pipeline._small_pair``) against the general one.

``batch`` computes thousands of small NPY pairs through a shorter path; every field of
its result must be the general path's to the bit, and anything it does not handle
(other layouts, non-finite values, zero vectors, options NPY cannot have) must fall
through to the general path, errors included.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.pipeline import compute as pipeline
from cosloss_cli.pipeline.compute import compute_files

from .conftest import property_settings

PROPERTY = property_settings(60)


def same(a: Any, b: Any) -> bool:
    """Equal to the bit: arrays by dtype, shape and bytes, floats with NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def saved_pair(folder: Path, labels: np.ndarray, predictions: np.ndarray, stem: str = "") -> tuple[Path, Path]:
    """Labels and predictions written as NPY files in ``folder``."""
    paths = folder / f"l{stem}.npy", folder / f"p{stem}.npy"
    np.save(paths[0], labels)
    np.save(paths[1], predictions)
    return paths


def both_paths(labels: Path, predictions: Path, **settings: Any) -> tuple[Any, Any]:
    """(small path, general path) results of the pair, or the error text of each."""

    def run() -> Any:
        try:
            return compute_files(str(labels), str(predictions), **settings)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    fast = run()
    original = pipeline._small_pair
    pipeline._small_pair = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        general = run()
    finally:
        pipeline._small_pair = original
    return fast, general


def assert_same_results(fast: Any, general: Any) -> None:
    if isinstance(general, str) or isinstance(fast, str):
        assert fast == general
        return
    for field in general._fields:
        assert same(getattr(fast, field), getattr(general, field)), field


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(
        st.one_of(
            st.tuples(st.integers(1, 40), st.integers(1, 9)),
            st.tuples(st.integers(1, 5)),
            st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
        )
    )
    dtype = draw(st.sampled_from(["<f4", "<f8", ">f8", "<i2"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = (rng.standard_normal(shape) * 10).astype(dtype)
    predictions = (rng.standard_normal(shape) * 10).astype(dtype)
    spoil = draw(st.sampled_from(["none", "none", "nan", "zero", "huge"]))
    if spoil != "none" and len(shape) > 1:
        row = draw(st.integers(0, shape[0] - 1))
        if spoil == "zero" or labels.dtype.kind == "i":
            predictions[row] = 0
        else:
            with np.errstate(over="ignore"):  # 1e200 becomes inf in float32: a case of its own
                predictions[row] = {"nan": np.nan, "huge": 1e200}[spoil]
    return labels, predictions


@PROPERTY
@given(
    pair=pairs(),
    nan_policy=st.sampled_from(["raise", "omit", "propagate"]),
    normalize=st.booleans(),
    eps=st.sampled_from([1e-12, 1e-3]),
    axis=st.sampled_from([-1, 1, 0]),
    reduction=st.sampled_from(["sum_by_nonzero_weights", "sum", "none", "mean"]),
    top=st.integers(0, 3),
    best=st.integers(0, 2),
    bins=st.sampled_from([None, 4]),
    confidence=st.sampled_from([0, 0.9]),
)
def test_property_small_pairs_give_the_general_paths_results(
    pair: tuple[np.ndarray, np.ndarray], **settings: Any
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        labels, predictions = saved_pair(Path(folder), *pair)
        fast, general = both_paths(labels, predictions, resamples=100, **settings)
    assert_same_results(fast, general)


def test_a_simple_small_pair_takes_the_small_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    labels, predictions = saved_pair(
        tmp_path, rng.random((100, 8), dtype=np.float32), rng.random((100, 8), dtype=np.float32)
    )
    rows: list[int] = []
    from cosloss_cli.pipeline import blocks

    monkeypatch.setattr(blocks, "open_pair", None)  # the general path would fail at once
    result = compute_files(str(labels), str(predictions), progress=rows.append, top=2)
    assert result.summary.count == 100 and rows == [100] and len(result.figures.worst) == 2


@pytest.mark.parametrize(
    "settings",
    [{}, {"reduction": "sum"}, {"reduction": "none"}, {"nan_policy": "omit"}, {"eps": 1e-3}, {"axis": -1}],
    ids=["defaults", "sum", "none", "omit", "eps", "axis-1"],
)
def test_small_pair_figures_are_the_general_paths_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any]
) -> None:
    """``batch``'s pairs (no interval, no ranked rows, no histogram) take ``small_pair_figures``, to the same bits."""
    from cosloss_cli.pipeline import small_pairs

    rng = np.random.default_rng(5)
    labels, predictions = saved_pair(
        tmp_path, rng.standard_normal((300, 24), dtype=np.float32), rng.standard_normal((300, 24), dtype=np.float32)
    )
    calls: list[int] = []

    def counted(*args: Any) -> Any:
        calls.append(1)
        return small_pairs.small_pair_figures(*args)

    monkeypatch.setattr(pipeline, "small_pair_figures", counted)
    fast, general = both_paths(labels, predictions, confidence=0, **settings)
    assert calls == [1]
    assert not isinstance(fast, str) and fast.summary.count == 300
    assert_same_results(fast, general)


def test_small_pair_figures_leave_sums_out_of_range_to_the_general_path(tmp_path: Path) -> None:
    """A zero vector's sums are not in range: the general steps give its loss of 1 and count it."""
    from cosloss_cli.pipeline.small_pairs import small_pair_figures

    labels = np.ones((4, 3), dtype=np.float32)
    predictions = labels.copy()
    predictions[2] = 0
    assert small_pair_figures(labels, predictions, 1e-12, "sum_by_nonzero_weights") is None
    paths = saved_pair(tmp_path, labels, predictions)
    fast, general = both_paths(*paths, confidence=0)
    assert_same_results(fast, general)
    assert not isinstance(fast, str) and fast.summary.zero_vectors == 1 and fast.losses[2] == 1.0


@pytest.mark.parametrize(
    "settings",
    [
        {"id_column": "id"},
        {"columns": "a,b"},
        {"weights": 2.0},
        {"input_format": "csv"},
        {"block_bytes": 64},
        {"nan_policy": "bogus"},
        {"join_on": "id"},
    ],
    ids=["id-column", "columns", "weights", "as-csv", "several-blocks", "bad-option", "join"],
)
def test_what_the_small_path_leaves_to_the_general_one(tmp_path: Path, settings: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    labels, predictions = saved_pair(tmp_path, rng.random((50, 4)), rng.random((50, 4)))
    assert_same_results(*both_paths(labels, predictions, **settings))


def test_differing_shapes_are_the_general_paths_error(tmp_path: Path) -> None:
    labels, predictions = saved_pair(tmp_path, np.ones((5, 4)), np.ones((6, 4)))
    fast, general = both_paths(labels, predictions)
    assert fast == general and fast.startswith("ShapeMismatchError")


def test_results_do_not_share_the_read_buffers(tmp_path: Path) -> None:
    """The small path reads into per-thread buffers: no result may change when the next pair is read."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    paths = []
    for i in range(6):
        shape = (40 + i, 5)
        labels, predictions = saved_pair(
            tmp_path, rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32), stem=str(i)
        )
        paths.append((str(labels), str(predictions)))
    one_by_one = [compute_files(*pair, top=3, best=2, bins=3) for pair in paths]
    snapshot = [
        (r.losses.copy(), r.summary, r.figures.worst, r.figures.best, r.figures.percentiles) for r in one_by_one
    ]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda pair: compute_files(*pair, top=3, best=2, bins=3), paths * 3))
    for result, (losses, summary, worst, best, found) in zip(one_by_one, snapshot, strict=True):
        assert result.losses.tobytes() == losses.tobytes()
        assert (result.summary, result.figures.worst, result.figures.best, result.figures.percentiles) == (
            summary,
            worst,
            best,
            found,
        )
    for result, expected in zip(threaded, one_by_one * 3, strict=True):
        assert_same_results(result, expected)


def test_small_files_read_the_same_without_readv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where os.readv is missing the small reader reads with os.read; a FIFO is never opened."""
    import os
    import threading

    from cosloss_cli.io import ReadOptions
    from cosloss_cli.io.npy import open_small_npy

    rng = np.random.default_rng(4)
    labels, predictions = saved_pair(
        tmp_path, rng.random((30, 6), dtype=np.float32), rng.random((30, 6), dtype=np.float32)
    )
    with_readv = compute_files(str(labels), str(predictions))
    monkeypatch.delattr(os, "readv")
    assert_same_results(compute_files(str(labels), str(predictions)), with_readv)
    monkeypatch.undo()
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:  # would be released (and then fail) if the reader opened the FIFO
        with open(fifo, "wb"):
            opened.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert open_small_npy(str(fifo), ReadOptions()) is None
    assert not opened.wait(0.2)
    with open(fifo, "rb"):  # release the writer
        pass
    thread.join(5)
