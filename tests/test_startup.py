"""Start-up cost: what ``cosloss compute a.npy b.npy --json`` imports and starts.

The command should cost little more than importing numpy and click. These tests pin
what was made lazy (checked in a fresh interpreter, through ``sys.modules``), that a
one-block input is read without threads. No wall-clock assertions: timing is for
bench/run.py.
"""

from __future__ import annotations

import gc
import json
import operator
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosloss_cli.io import ReadOptions, open_source
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.pipeline.result import ComputeOptions
from cosloss_cli.status import ExitStatus

#: Loaded only for ``--report``: its pages (each beside its command's renderers) and matplotlib.
REPORT_MODULES = ("matplotlib", "cosloss_cli.render.report", "cosloss_cli.compare.report", "cosloss_cli.batch.report")

#: Never needed by ``compute`` of two small NPY files with ``--json``.
NOT_FOR_SMALL_NPY_JSON = (
    "pandas",
    "pyarrow",
    "rich",
    "queue",
    "zlib",
    "zipfile",
    "concurrent.futures",
    "cosloss_cli.batch",
    "cosloss_cli.render.progress",
    "cosloss_cli.render.writers",
    "dataclasses",
    "numpy.typing",
    # The block route and what only it uses: other formats, datasets, joins, groups, weights, threads.
    "cosloss_cli.pipeline.blocks",
    "cosloss_cli.pipeline.threads",
    "cosloss_cli.io.dataset",
    "cosloss_cli.io.parquet",
    "cosloss_cli.io.names",
    "cosloss_cli.io.group_columns",
    "cosloss_cli.io.weights",
    "cosloss_cli.pairing.align",
    "cosloss_cli.pairing.join",
    "cosloss_cli.stats.groups",
    "cosloss_cli.pipeline.spilled",
    "cosloss_cli.stats.pooled",
    "urllib.parse",
    "glob",
    # The --report pages, and matplotlib which draws their charts.
    *REPORT_MODULES,
)


def _loaded_after(code: str, modules: tuple[str, ...]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; report which of ``modules`` it loaded, and more."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys as _sys
        _loaded = [m for m in {modules!r} if m in _sys.modules]
        import json as _json  # only now: the report must not count it
        _sys.__stderr__.write(_json.dumps({{"loaded": _loaded, "threads": started}}))
        """
    )
    prelude = textwrap.dedent(
        """
        import threading
        started = []
        _start = threading.Thread.start
        def _recording_start(self):
            started.append(self.name)
            _start(self)
        threading.Thread.start = _recording_start
        """
    )
    done = subprocess.run([sys.executable, "-c", prelude + script], capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitStatus.OK, done.stderr
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    report["stdout"] = done.stdout
    return report


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(7)
    labels, predictions = folder / "labels.npy", folder / "predictions.npy"
    np.save(labels, rng.standard_normal((1000, 128)).astype(np.float32))
    np.save(predictions, rng.standard_normal((1000, 128)).astype(np.float32))
    return labels, predictions


def test_importing_the_cli_loads_neither_numpy_nor_dataclasses() -> None:
    report = _loaded_after("import cosloss_cli.cli\n", ("numpy", "dataclasses", *NOT_FOR_SMALL_NPY_JSON))
    assert report["loaded"] == []


@pytest.mark.parametrize("args", [["--help"], ["batch", "--help"], ["compute", "--help"], ["compare", "--help"]])
def test_help_loads_no_numpy_and_no_pool(args: list[str]) -> None:
    report = _loaded_after(
        f"""
        from cosloss_cli.cli import main
        try:
            main({args!r})
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        """,
        ("numpy", "rich", "pandas", "pyarrow", "scipy", "concurrent.futures", "dataclasses", "json", *REPORT_MODULES),
    )
    assert report["loaded"] == []
    assert "Usage: cosloss" in report["stdout"]


def test_dir_lists_the_lazy_api_without_importing_it() -> None:
    report = _loaded_after(
        "import cosloss_cli\nassert set(cosloss_cli.__all__) <= set(dir(cosloss_cli)), dir(cosloss_cli)\n",
        ("numpy", "cosloss_cli.core.cosine", "cosloss_cli.pipeline.compute"),
    )
    assert report["loaded"] == []


@pytest.mark.parametrize("interval", [[], ["--confidence", "0"]], ids=["default", "no-interval"])
def test_compute_of_a_small_npy_pair_loads_little_and_starts_no_thread(
    small_pair: tuple[Path, Path], interval: list[str]
) -> None:
    """The default draws the interval of the mean: without scipy, numpy.ma or compare's module."""
    labels, predictions = small_pair
    report = _loaded_after(
        f"""
        from cosloss_cli.cli import main
        try:
            main(["compute", {str(labels)!r}, {str(predictions)!r}, "--json", *{interval!r}])
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        """,
        # numpy.random, which the interval needs, imports zlib itself (0.2 ms).
        tuple(
            m
            for m in (*NOT_FOR_SMALL_NPY_JSON, "scipy", "numpy.ma", "cosloss_cli.compare.models", "tempfile")
            if not (m == "zlib" and not interval)
        ),
    )
    assert report["loaded"] == []
    assert report["threads"] == []
    document = json.loads(report["stdout"])
    assert document["count"] == 1000 and len(document["losses"]) == 1000
    assert (document["ci_low"] is None) == bool(interval)


def test_one_block_and_mapped_inputs_are_read_in_place_and_streamed_ones_prefetched(
    small_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[str] = []
    start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    labels, predictions = map(str, small_pair)
    one_block = compute_files(labels, predictions, ReadOptions(), ComputeOptions(axis=1))
    assert started == []

    # 100 rows of 128 float64 a block: ten memory-mapped windows per input, made on the
    # calling thread while the workers reduce the blocks before them.
    small_blocks = ReadOptions(block_bytes=100 * 128 * 8)
    several = compute_files(labels, predictions, small_blocks, ComputeOptions(axis=1))
    assert started.count("cosloss-reader") == 0 and started.count("cosloss-block_0") == 1
    np.testing.assert_array_equal(several.losses, one_block.losses)

    # The same arrays in .npz archives are decompressed as they stream: read ahead on two threads.
    archives = []
    for name, path in (("labels", labels), ("predictions", predictions)):
        archives.append(str(tmp_path / f"{name}.npz"))
        np.savez_compressed(archives[-1], values=np.load(path))
    streamed = compute_files(*archives, small_blocks, ComputeOptions(axis=1))
    assert started.count("cosloss-reader") == 2
    np.testing.assert_array_equal(streamed.losses, one_block.losses)


@pytest.mark.parametrize(
    ("rows", "block_rows", "blocks"), [(1000, 1000, 1), (1000, 100, 10), (1001, 100, 11), (0, 10, 0)]
)
def test_npy_sources_know_how_many_blocks_they_yield(tmp_path: Path, rows: int, block_rows: int, blocks: int) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.ones((rows, 4)))
    source = open_source(str(path), ReadOptions(block_bytes=block_rows * 4 * 8))
    assert operator.length_hint(source.blocks) == blocks
    read = list(source.blocks)
    assert len(read) == blocks and sum(len(block) for block in read) == rows
    assert operator.length_hint(source.blocks) == 0


def test_the_console_script_raises_the_collector_thresholds_for_the_command() -> None:
    """The imports' tens of thousands of containers cost dozens of collections at the defaults."""
    from cosloss_cli.cli import GC_THRESHOLDS

    script = (
        "import gc, sys\n"
        "import cosloss_cli.cli as entry\n"
        "entry.main = lambda: print(*gc.get_threshold(), file=sys.stderr)\n"
        "entry.run()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitStatus.OK, done.stderr
    assert tuple(int(n) for n in done.stderr.split()) == GC_THRESHOLDS and GC_THRESHOLDS[0] > gc.get_threshold()[0]


def test_main_leaves_the_callers_collector_thresholds() -> None:
    from cosloss_cli.cli import main

    before = gc.get_threshold()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert gc.get_threshold() == before


def test_main_asks_openblas_for_one_thread_unless_the_user_chose(monkeypatch) -> None:
    """OpenBLAS's idle threads spin after numpy starts them; a user's own setting wins."""
    from cosloss_cli.cli import main

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"


def test_a_join_of_parquet_files_with_integer_ids_imports_neither_pandas_nor_pyarrow_compute(tmp_path: Path) -> None:
    """pandas (0.3 s) is for text ids; every step of an integer join stays in numpy, even with no row left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    for name, order in (("labels", np.arange(900)), ("predictions", rng.permutation(900))):
        values = rng.standard_normal((900, 16), dtype=np.float32)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 16)
        pq.write_table(pa.table({"id": order, "v": vectors}), tmp_path / f"{name}.parquet", row_group_size=200)
    report = _loaded_after(
        f"""
        from cosloss_cli.cli import main
        try:
            main(["compute", {str(tmp_path / "labels.parquet")!r}, {str(tmp_path / "predictions.parquet")!r},
                  "--join-on", "id", "--json", "--no-losses"])
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        """,
        ("pandas", "pyarrow.compute", "scipy"),
    )
    assert report["loaded"] == []
    assert json.loads(report["stdout"])["count"] == 900


#: Never needed by ``compute`` of two Arrow IPC files whose rows pair by position.
NOT_FOR_ARROW_BY_POSITION = (
    "cosloss_cli.pairing.join",
    "cosloss_cli.io.group_columns",
    "cosloss_cli.io.dataset",
    "cosloss_cli.stats.groups",
    "cosloss_cli.stats.paired",
    "cosloss_cli.pipeline.spilled",
    "urllib.parse",
    "glob",
    "pandas",
    "pyarrow.compute",
    "scipy",
    "rich",
)


def test_compute_of_two_arrow_files_by_position_loads_no_join_groups_or_dataset_reader(tmp_path: Path) -> None:
    """Rows paired by position need no join, no ``--group-by`` reader (nor its dataset reader), no paired tests."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    rng = np.random.default_rng(11)
    for name in ("labels", "predictions"):
        values = rng.standard_normal((600, 16), dtype=np.float32)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 16)
        table = pa.table({"id": np.arange(600), "v": vectors})
        with ipc.new_file(tmp_path / f"{name}.arrow", table.schema) as writer:
            writer.write_table(table, max_chunksize=250)
    report = _loaded_after(
        f"""
        from cosloss_cli.cli import main
        try:
            main(["compute", {str(tmp_path / "labels.arrow")!r}, {str(tmp_path / "predictions.arrow")!r},
                  "--json", "--no-losses"])
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        """,
        NOT_FOR_ARROW_BY_POSITION,
    )
    assert report["loaded"] == []
    assert json.loads(report["stdout"])["count"] == 600
