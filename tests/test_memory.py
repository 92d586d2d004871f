"""Memory ceilings: inputs many times larger than a block are streamed, not loaded.

Each case writes a pair of files whose values (as float64) are several times the
allowed memory growth, then computes the losses with a small ``block_bytes`` in a
fresh interpreter and compares the peak RSS (``VmHWM``) after the computation
with the resident memory before it (imports done, sources opened). A reader that loaded a file
whole, or converted it to float64 whole, would grow by at least the file size. The
NPY case also checks numpy's own allocations with tracemalloc, in process.

No timing is asserted anywhere here.
"""

from __future__ import annotations

import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosloss_cli.io import ReadOptions
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.pipeline.result import ComputeOptions

from .conftest import last_json_line_of

MB = 1024 * 1024
BLOCK_BYTES = 256 * 1024

#: The bootstrap interval of the mean works on one batch of resamples at a time (a fixed
#: BATCH_VALUES draws, converted and multiplied: about 3 x 8 MB), whatever the rows.
INTERVAL = 3 * 8 * (1 << 20)

_MEASURE = textwrap.dedent(
    """
    import json, sys
    import scipy.special, scipy.stats  # the interval of the mean's code: an import, not data
    from cosloss_cli.stats.figures import FigureOptions
    from cosloss_cli.pipeline.blocks import ComputeOptions, _compute_sources
    from cosloss_cli.io import ReadOptions, open_source

    labels, predictions, block_bytes, axis = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    options = ReadOptions(block_bytes=block_bytes)
    lsource, psource = open_source(labels, options), open_source(predictions, options)

    def status(field):
        # /proc, not getrusage: ru_maxrss keeps the peak of the forking parent (pytest) across exec.
        with open("/proc/self/status") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    before = status("VmRSS")  # not the peak so far: imports may have peaked above what they kept
    # With every figure of the distribution (the worst rows, a histogram, the 95% interval).
    figures = FigureOptions(top=100, bins=20)
    computation = ComputeOptions(axis=axis, threads=2)
    result = _compute_sources(lsource, psource, computation, read_options=options, figures=figures)
    print(json.dumps({"before": before, "after": status("VmHWM"), "count": result.summary.count}))
    """
)


def _peak_growth(labels: Path, predictions: Path, axis: int = 1) -> tuple[int, int]:
    """(bytes of peak RSS growth during the computation, number of losses)."""
    report = last_json_line_of(_MEASURE, str(labels), str(predictions), str(BLOCK_BYTES), str(axis))
    return report["after"] - report["before"], report["count"]


def _vectors(rows: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.standard_normal((rows, width), dtype=np.float32)
    return labels, labels + np.float32(0.5) * rng.standard_normal((rows, width), dtype=np.float32)


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units and mmap accounting are Linux's")


@pytest.fixture(scope="module")
def npy_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("npy")
    labels, predictions = _vectors(80_000, 256, seed=1)  # 78 MB per file, 156 MB as float64
    np.save(folder / "labels.npy", labels)
    np.save(folder / "predictions.npy", predictions)
    return folder / "labels.npy", folder / "predictions.npy"


def test_npy_streams_with_bounded_rss(npy_pair: tuple[Path, Path]) -> None:
    growth, count = _peak_growth(*npy_pair)
    assert count == 80_000
    # Both files are 156 MB as float64; blocks are 256 KB. Allowed: the losses (0.6 MB),
    # the blocks in flight and allocator slack, and the interval's batch of resamples.
    assert growth < 24 * MB + INTERVAL, f"peak RSS grew by {growth / MB:.0f} MB"


def test_npy_axis0_streams_with_bounded_rss(npy_pair: tuple[Path, Path]) -> None:
    growth, count = _peak_growth(*npy_pair, axis=0)
    assert count == 256
    assert growth < 24 * MB + INTERVAL, f"peak RSS grew by {growth / MB:.0f} MB"


def test_npy_numpy_allocations_stay_within_a_few_blocks(npy_pair: tuple[Path, Path]) -> None:
    """tracemalloc sees numpy's buffers: no float64 copy of a file is ever made."""
    peak = _numpy_peak(npy_pair, confidence=0)
    # The losses and their summary (a few copies of 0.6 MB) plus a few blocks' sums.
    assert peak < 12 * MB, f"numpy allocated up to {peak / MB:.0f} MB"


def test_npy_figures_allocate_a_fixed_working_set(npy_pair: tuple[Path, Path]) -> None:
    """The worst rows, histogram and interval add their working set, which does not grow with the rows."""
    import scipy.stats  # noqa: F401  # its import allocates; the figures' working set is what is measured

    from cosloss_cli.stats.intervals import BATCH_VALUES

    peak = _numpy_peak(npy_pair, top=100, bins=20)
    # One batch of bootstrap draws (BATCH_VALUES counts, and their products) on top of the above.
    assert peak < 12 * MB + 3 * BATCH_VALUES * 8, f"numpy allocated up to {peak / MB:.0f} MB"


def _numpy_peak(npy_pair: tuple[Path, Path], **figures: Any) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = compute_files(
            str(npy_pair[0]),
            str(npy_pair[1]),
            ReadOptions(block_bytes=BLOCK_BYTES),
            ComputeOptions(axis=1),
            **figures,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.summary.count == 80_000
    return peak


def test_csv_streams_with_bounded_rss(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    paths = []
    for name, block in zip(("labels", "predictions"), _vectors(120_000, 64, seed=2), strict=True):
        path = tmp_path / f"{name}.csv"
        pacsv.write_csv(pa.table({f"f{i}": block[:, i] for i in range(64)}), path)  # ~90 MB of text
        paths.append(path)
    growth, count = _peak_growth(paths[0], paths[1])
    assert count == 120_000
    # Each file is ~90 MB of text and 61 MB as float64; pyarrow parses 256 KB blocks and
    # reads at most 32 of them ahead. The rest is pyarrow's allocator and thread pools.
    assert growth < 56 * MB + INTERVAL, f"peak RSS grew by {growth / MB:.0f} MB"


@pytest.mark.parametrize("layout", ["list", "columns"])
def test_parquet_streams_with_bounded_rss(tmp_path: Path, layout: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for name, block in zip(("labels", "predictions"), _vectors(120_000, 256, seed=3), strict=True):
        if layout == "list":
            table = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), 256)})
        else:
            table = pa.table({f"f{i}": block[:, i] for i in range(256)})
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path, row_group_size=4_000)  # 4 MB row groups, 117 MB per file
        paths.append(path)
    growth, count = _peak_growth(paths[0], paths[1])
    assert count == 120_000
    # Bounded by a few row groups per file (4 MB each) and pyarrow's allocator and thread
    # pools (about 100 MB whatever the file size), not by the files (470 MB as float64).
    assert growth < 160 * MB + INTERVAL, f"peak RSS grew by {growth / MB:.0f} MB"


_MEASURE_DATASETS = textwrap.dedent(
    """
    import json, sys
    import pyarrow.parquet  # imports, not data
    from cosloss_cli.pipeline.compute import compute_files

    def status(field):
        with open("/proc/self/status") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    labels, predictions, join_on = sys.argv[1], sys.argv[2], sys.argv[3] or None
    before = status("VmRSS")
    result = compute_files(labels, predictions, join_on=join_on)
    print(json.dumps({"before": before, "after": status("VmHWM"), "count": result.summary.count}))
    """
)


@pytest.mark.parametrize("join_on", [None, "id"], ids=["by position", "by id"])
def test_memory_of_a_dataset_does_not_grow_with_its_number_of_files(tmp_path: Path, join_on: str | None) -> None:
    """The same rows as 4 files and as 1,200 files: the peak grows by a few MB at most, not by a footer per file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 12_000
    growth = {}
    for files in (4, 1_200):
        folders = []
        for name, block in zip(("labels", "predictions"), _vectors(rows, 16, seed=5), strict=True):
            folder = tmp_path / f"{name}_{files}"
            folder.mkdir()
            ids = np.arange(rows)
            order = np.random.default_rng(6).permutation(rows) if join_on and name == "predictions" else ids
            for k, part in enumerate(np.array_split(order, files)):
                table = pa.table(
                    {"id": ids[part], "v": pa.FixedSizeListArray.from_arrays(pa.array(block[part].ravel()), 16)}
                )
                pq.write_table(table, folder / f"part-{k:05d}.parquet")
            folders.append(str(folder))
        report = last_json_line_of(_MEASURE_DATASETS, *folders, join_on or "")
        assert report["count"] == rows
        growth[files] = report["after"] - report["before"]
    assert growth[1_200] - growth[4] < 6 * MB, (
        f"peak RSS grew by {growth[4] / MB:.0f} MB and {growth[1_200] / MB:.0f} MB"
    )
