"""Benchmark cosloss against what users would otherwise run (issue 5).

Generates the datasets in a temporary folder, runs cosloss and every peer found
installed as whole processes, each peer paired with cosloss run after run, and
prints a table of medians, peak memory (RSS of the child) and ratios. The ratio is
the median over the pairs of cosloss time / peer time, so drift in the machine's
speed during the run cancels out.

    python bench/run.py                 # quick sizes, a few minutes
    python bench/run.py --full          # the sizes of issue 5 (~9 GB of files)
    python bench/run.py --only npy,csv --repeat 3 --npy-rows 500000
    python bench/run.py --full --write-docs   # and put the tables into docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from peers import Peer  # noqa: E402

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).parent / "cosloss"
COSLOSS = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "cosloss_cli"]
SCENARIOS = (
    "npy",
    "npy-extra",
    "parquet-list",
    "parquet-columns",
    "parquet-list-1rg",
    "parquet-columns-1rg",
    "parquet-join",
    "parquet-dataset",
    "parquet-dataset-join",
    "parquet-dataset-join-text",
    "csv",
    "jsonl",
    "arrow",
    "small",
    "batch",
    "batch-cluster",
    "compare",
    "compare-runs",
    "compute-groups",
)

#: The scheduler file of the two-worker Dask cluster of the ``batch-cluster`` scenario
#: (started by main(), closed at the end), or None.
SCHEDULER_FILE: str | None = None


@dataclass
class Sizes:
    npy_rows: int
    npy_dim: int
    parquet_rows: int
    parquet_dim: int
    csv_rows: int
    csv_dim: int
    small_rows: int = 1000
    small_dim: int = 128
    batch_pairs: int = 2000
    batch_rows: int = 1000
    batch_dim: int = 64
    join_rows: int = 200_000
    join_dim: int = 256
    #: ``compare``: 2 models of this many rows (the bound of the compare command: 1,000,000 x 256).
    compare_rows: int = 1_000_000
    compare_dim: int = 256
    #: ``parquet-dataset*``: this many rows in all, cut into ``dataset_shards`` files a side.
    dataset_rows: int = 200_000
    dataset_dim: int = 256
    dataset_shards: int = 64
    #: Parquet written as users write it (``pq.write_table``, ``df.to_parquet``): one row group.
    one_group_rows: int = 200_000
    one_group_dim: int = 256
    #: ``jsonl`` and ``arrow``: large enough that a process's fixed costs do not count.
    formats_rows: int = 200_000
    formats_dim: int = 256
    #: ``compare-runs``: this many run folders of labels and 3 models, NPY rows x dim each.
    runs: int = 30
    runs_rows: int = 2000
    runs_dim: int = 384
    #: ``compute-groups``: one Parquet row group (``pq.write_table``) with an int64 ``group`` column.
    groups_rows: int = 1_000_000
    groups_dim: int = 256
    groups: int = 1000


QUICK = Sizes(npy_rows=250_000, npy_dim=256, parquet_rows=50_000, parquet_dim=256, csv_rows=25_000, csv_dim=128)
FULL = Sizes(npy_rows=2_000_000, npy_dim=256, parquet_rows=200_000, parquet_dim=256, csv_rows=100_000, csv_dim=128)


@dataclass
class Measurement:
    seconds: float
    peak_bytes: int
    cpu_seconds: float = 0.0


@dataclass
class Row:
    scenario: str
    peer: str
    peer_runs: list[Measurement] = field(default_factory=list)
    cosloss_runs: list[Measurement] = field(default_factory=list)
    cosloss_label: str = "cosloss"

    def ratios(self, cpu: bool = False) -> list[float]:
        """cosloss / peer of each pair: wall times, or CPU seconds with ``cpu``."""
        if cpu:
            return [c.cpu_seconds / p.cpu_seconds for p, c in zip(self.peer_runs, self.cosloss_runs, strict=True)]
        return [c.seconds / p.seconds for p, c in zip(self.peer_runs, self.cosloss_runs, strict=True)]


#: Bytecode for the child processes, as an installed package has it (pip compiles on
#: install); set in main() to a folder inside the temporary data folder.
PYCACHE: Path | None = None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    if PYCACHE is not None:
        # PYTHONDONTWRITEBYTECODE would recompile cosloss (an editable install) on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    # Tuning variables set for other work on this machine would skew the peers' BLAS.
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(name, None)
    return env


def measure(command: list[str]) -> Measurement:
    """Run ``command`` under a fresh wrapper process; its wall time and peak RSS."""
    out = subprocess.run(
        [PYTHON, str(HERE / "measure.py"), *command], capture_output=True, text=True, env=child_env(), check=True
    )
    report = json.loads(out.stdout)
    if report["returncode"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({report['returncode']}):\n{report['stderr']}")
    return Measurement(report["seconds"], report["peak_bytes"], report.get("cpu_seconds", 0.0))


def peer_command(peer: Peer, folder: Path, args: list[str]) -> list[str]:
    slug = "".join(c if c.isalnum() else "_" for c in peer.name)[:40]
    script = folder / f"peer_{slug}.py"
    if not script.exists() or script.read_text() != peer.code:  # a peer that runs cosloss names its checkout
        script.write_text(peer.code)
    return [PYTHON, str(script), *args]


# ---------------------------------------------------------------- data generation


def _rng(seed: int):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.random.default_rng(seed)


def make_npy(folder: Path, rows: int, dim: int, prefix: str = "npy") -> tuple[str, str]:
    """Two float32 .npy files written in chunks (labels, and labels plus noise)."""
    import numpy as np
    from numpy.lib.format import open_memmap

    paths = (folder / f"{prefix}_labels.npy", folder / f"{prefix}_predictions.npy")
    if paths[0].exists():
        return str(paths[0]), str(paths[1])
    rng = _rng(1)
    labels = open_memmap(paths[0], mode="w+", dtype=np.float32, shape=(rows, dim))
    predictions = open_memmap(paths[1], mode="w+", dtype=np.float32, shape=(rows, dim))
    chunk = max(1, (64 << 20) // (dim * 4))
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        block = rng.standard_normal((stop - start, dim), dtype=np.float32)
        labels[start:stop] = block
        predictions[start:stop] = block + np.float32(0.5) * rng.standard_normal(block.shape, dtype=np.float32)
    labels.flush()
    predictions.flush()
    del labels, predictions
    return str(paths[0]), str(paths[1])


def _float_blocks(rows: int, dim: int, seed: int, noise: bool, chunk: int = 50_000):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = _rng(seed)
    noise_rng = _rng(seed + 100)
    for start in range(0, rows, chunk):
        block = rng.standard_normal((min(chunk, rows - start), dim), dtype=np.float32)
        if noise:
            block = block + np.float32(0.5) * noise_rng.standard_normal(block.shape, dtype=np.float32)
        yield block


def _file_pair(folder: Path, stem: str, write: Callable[[Path, bool], None]) -> tuple[str, str]:
    """The labels and predictions files ``{stem}_labels.*``/``{stem}_predictions.*``.

    ``write(path, noise)`` makes each one that is not there yet (``--data-dir`` keeps
    them between runs); the predictions are the labels' values plus noise.
    """
    paths = []
    for name, noise in (("labels", False), ("predictions", True)):
        path = folder / stem.replace("*", name)
        if not path.exists():
            write(path, noise)
        paths.append(str(path))
    return paths[0], paths[1]


def make_parquet(folder: Path, rows: int, dim: int, layout: str) -> tuple[str, str]:
    """Parquet with one fixed_size_list<float32>[dim] column ``v``, or ``dim`` float32 columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(path: Path, noise: bool) -> None:
        writer = None
        for block in _float_blocks(rows, dim, seed=2, noise=noise):
            if layout == "list":
                flat = pa.array(block.ravel())
                table = pa.table({"v": pa.FixedSizeListArray.from_arrays(flat, dim)})
            else:
                table = pa.table({f"f{i}": block[:, i] for i in range(dim)})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()

    return _file_pair(folder, f"parquet_{layout}_*.parquet", write)


def make_parquet_one_group(folder: Path, rows: int, dim: int, layout: str) -> tuple[str, str]:
    """Parquet as ``pq.write_table(table, path)`` writes it with its defaults: one row group of every row.

    The other Parquet files here are written in row groups of 50,000 rows; a table of up
    to about a million rows written by ``pq.write_table`` or ``df.to_parquet`` is one group.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(path: Path, noise: bool) -> None:
        block = np.concatenate(list(_float_blocks(rows, dim, seed=7, noise=noise)))
        if layout == "list":
            table = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), dim)})
        else:
            table = pa.table({f"f{i}": block[:, i] for i in range(dim)})
        pq.write_table(table, path)

    return _file_pair(folder, f"parquet_{layout}_1rg_*.parquet", write)


def make_parquet_join(folder: Path, rows: int, dim: int) -> tuple[str, str]:
    """Parquet with an int64 ``id`` and a fixed_size_list<float32>[dim] ``v``; the predictions' rows shuffled."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(path: Path, noise: bool) -> None:
        blocks = list(_float_blocks(rows, dim, seed=5, noise=noise))
        values = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        ids = np.arange(rows, dtype=np.int64)
        order = _rng(6).permutation(rows) if noise else ids
        writer = None
        for start in range(0, rows, 50_000):
            chunk = order[start : start + 50_000]
            flat = pa.array(values[chunk].ravel())
            table = pa.table({"id": ids[chunk], "v": pa.FixedSizeListArray.from_arrays(flat, dim)})
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()

    return _file_pair(folder, f"parquet_join_{rows}_*.parquet", write)


def make_parquet_dataset(
    folder: Path, rows: int, dim: int, shards: int, join: bool, text_ids: bool = False
) -> tuple[str, str]:
    """Two folders of ``shards`` Parquet files (``part-00000.parquet``...; fixed_size_list<float32>[dim] ``v``).

    With ``join``: an int64 ``id`` too, the predictions' rows shuffled and cut into
    three quarters as many files (shards of other sizes: the rows must be matched by id).
    With ``text_ids``, the ids are text (``doc-0000042``), as embedding APIs return them.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = ("join_text" if text_ids else "join") if join else "plain"
    paths = (folder / f"dataset_{kind}_{rows}_labels", folder / f"dataset_{kind}_{rows}_predictions")
    for path, noise in zip(paths, (False, True), strict=True):
        if path.exists():
            continue
        values = np.concatenate(list(_float_blocks(rows, dim, seed=7, noise=noise)))
        ids = np.arange(rows, dtype=np.int64)
        order = _rng(8).permutation(rows) if join and noise else ids
        count = shards if not (join and noise) else max(1, shards * 3 // 4)
        temporary = path.with_name(path.name + ".partial")
        temporary.mkdir(exist_ok=True)
        for k, part in enumerate(np.array_split(order, count)):
            columns = {"v": pa.FixedSizeListArray.from_arrays(pa.array(values[part].ravel()), dim)}
            if join:
                part_ids = [f"doc-{i:07d}" for i in ids[part]] if text_ids else ids[part]
                columns = {"id": pa.array(part_ids), **columns}
            pq.write_table(pa.table(columns), temporary / f"part-{k:05d}.parquet")
        (temporary / "_SUCCESS").write_text("")
        temporary.rename(path)
    return str(paths[0]), str(paths[1])


def make_batch(folder: Path, pairs: int, rows: int, dim: int) -> tuple[str, str]:
    """Two folders of ``pairs`` small float32 .npy files with the same names."""
    import numpy as np

    labels_dir, predictions_dir = folder / f"batch_{pairs}_labels", folder / f"batch_{pairs}_predictions"
    if not (predictions_dir / f"pair_{pairs - 1:05d}.npy").exists():
        labels_dir.mkdir(exist_ok=True)
        predictions_dir.mkdir(exist_ok=True)
        rng = _rng(4)
        for i in range(pairs):
            block = rng.standard_normal((rows, dim), dtype=np.float32)
            noisy = block + np.float32(0.5) * rng.standard_normal(block.shape, dtype=np.float32)
            np.save(labels_dir / f"pair_{i:05d}.npy", block)
            np.save(predictions_dir / f"pair_{i:05d}.npy", noisy)
    return str(labels_dir), str(predictions_dir)


def make_models(folder: Path, rows: int, dim: int) -> list[str]:
    """Labels and two models' float32 .npy files (``compare``): the labels plus noise of two sizes."""
    import numpy as np
    from numpy.lib.format import open_memmap

    paths = [folder / f"compare_{name}.npy" for name in ("labels", "a", "b")]
    if not paths[-1].exists():
        rng = _rng(5)
        arrays = [open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim)) for path in paths]
        chunk = max(1, (64 << 20) // (dim * 4))
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            block = rng.standard_normal((stop - start, dim), dtype=np.float32)
            arrays[0][start:stop] = block
            for array, scale in zip(arrays[1:], (0.5, 0.49), strict=True):
                array[start:stop] = block + np.float32(scale) * rng.standard_normal(block.shape, dtype=np.float32)
        for array in arrays:
            array.flush()
        del arrays
    return [str(path) for path in paths]


def make_runs(folder: Path, runs: int, rows: int, dim: int) -> tuple[str, str, str]:
    """``runs`` folders of labels and models a, b, c (float32 NPY), and the same pairs as two folders of links.

    ``compare --runs`` reads the run folders; ``batch`` reads the links: each model's
    file against its run's labels, the 3 x ``runs`` pairs the comparison computes.
    """
    import numpy as np

    root = folder / f"runs_{runs}"
    labels_dir, predictions_dir = folder / f"runs_{runs}_labels", folder / f"runs_{runs}_predictions"
    if not (predictions_dir / f"run_{runs - 1:02d}_c.npy").exists():
        rng = _rng(9)
        labels_dir.mkdir(exist_ok=True)
        predictions_dir.mkdir(exist_ok=True)
        for run in range(runs):
            here = root / f"run_{run:02d}"
            here.mkdir(parents=True, exist_ok=True)
            labels = rng.standard_normal((rows, dim), dtype=np.float32)
            np.save(here / "labels.npy", labels)
            for model, scale in (("a", 0.5), ("b", 0.48), ("c", 0.52)):
                noise = np.float32(scale) * rng.standard_normal(labels.shape, dtype=np.float32)
                np.save(here / f"{model}.npy", labels + noise)
                name = f"run_{run:02d}_{model}.npy"
                (labels_dir / name).symlink_to(here / "labels.npy")
                (predictions_dir / name).symlink_to(here / f"{model}.npy")
    return str(root), str(labels_dir), str(predictions_dir)


def make_parquet_groups(folder: Path, rows: int, dim: int, groups: int) -> tuple[str, str, str]:
    """Labels with an int64 ``group`` column and predictions, one row group each (``pq.write_table``);
    and a Parquet of ``group, loss`` (the per-row losses, for the SQL peer)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    stem = f"groups_{rows}_{dim}"
    paths = [folder / f"{stem}_{name}.parquet" for name in ("labels", "predictions", "losses")]
    if paths[-1].exists():
        return str(paths[0]), str(paths[1]), str(paths[2])
    labels = np.concatenate(list(_float_blocks(rows, dim, seed=11, noise=False)))
    predictions = np.concatenate(list(_float_blocks(rows, dim, seed=11, noise=True)))
    group = _rng(12).integers(0, groups, rows).astype(np.int64)
    for path, block, extra in ((paths[0], labels, {"group": group}), (paths[1], predictions, {})):
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), dim)
        pq.write_table(pa.table({"v": vectors, **extra}), path)
    losses = np.empty(rows)
    for start in range(0, rows, 100_000):
        a, b = labels[start : start + 100_000].astype(np.float64), predictions[start : start + 100_000]
        norms = np.maximum(np.linalg.norm(a, axis=1), 1e-12) * np.maximum(np.linalg.norm(b, axis=1), 1e-12)
        losses[start : start + 100_000] = 1 - np.einsum("ij,ij->i", a, b) / norms
    pq.write_table(pa.table({"group": group, "loss": losses}), paths[2])
    return str(paths[0]), str(paths[1]), str(paths[2])


def make_csv(folder: Path, rows: int, dim: int) -> tuple[str, str]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def write(path: Path, noise: bool) -> None:
        with pacsv.CSVWriter(path, pa.schema([(f"f{i}", pa.float32()) for i in range(dim)])) as writer:
            for block in _float_blocks(rows, dim, seed=3, noise=noise, chunk=10_000):
                writer.write_table(pa.table({f"f{i}": block[:, i] for i in range(dim)}))

    return _file_pair(folder, "csv_*.csv", write)


def make_jsonl(folder: Path, rows: int, dim: int) -> tuple[str, str]:
    """JSON Lines of ``{"id": n, "v": [dim floats]}``, written by polars as an embedding job would."""
    import polars as pl

    def write(path: Path, noise: bool) -> None:
        with open(path, "wb") as handle:
            start = 0
            for block in _float_blocks(rows, dim, seed=7, noise=noise, chunk=20_000):
                ids = range(start, start + len(block))
                pl.DataFrame({"id": list(ids), "v": pl.Series(block)}).write_ndjson(handle)
                start += len(block)

    return _file_pair(folder, f"jsonl_{rows}_*.jsonl", write)


def make_arrow(folder: Path, rows: int, dim: int) -> tuple[str, str]:
    """Arrow IPC files (uncompressed) of an int64 ``id`` and a fixed_size_list<float32>[dim] ``v``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc as ipc

    def write(path: Path, noise: bool) -> None:
        writer = None
        start = 0
        for block in _float_blocks(rows, dim, seed=8, noise=noise):
            ids = np.arange(start, start + len(block), dtype=np.int64)
            table = pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), dim)})
            writer = writer or ipc.new_file(path, table.schema)
            writer.write_table(table)
            start += len(block)
        assert writer is not None
        writer.close()

    return _file_pair(folder, f"arrow_{rows}_*.arrow", write)


# ---------------------------------------------------------------- running


def run_pairs(row: Row, peer_cmd: list[str], cosloss_cmd: list[str], repeat: int) -> None:
    """Warm up both, then alternate peer and cosloss ``repeat`` times (order flips each round)."""
    measure(peer_cmd)
    measure(cosloss_cmd)
    for i in range(repeat):
        if i % 2 == 0:
            row.peer_runs.append(measure(peer_cmd))
            row.cosloss_runs.append(measure(cosloss_cmd))
        else:
            row.cosloss_runs.append(measure(cosloss_cmd))
            row.peer_runs.append(measure(peer_cmd))


def scenario_rows(name: str, folder: Path, sizes: Sizes) -> list[tuple[str, Peer, list[str], list[str]]]:
    """(cosloss label, peer, inputs, cosloss arguments) for each pair to run in a scenario."""
    plain = ["--json", "--no-losses"]
    if name == "npy":
        files = make_npy(folder, sizes.npy_rows, sizes.npy_dim)
        pairs = [peers.READ_PASS_NPY, peers.NUMPY_SCRIPT, peers.SKLEARN_NPY, peers.TORCH_NPY]
        return [("cosloss --json --no-losses", p, list(files), plain) for p in pairs]
    if name == "npy-extra":
        files = make_npy(folder, sizes.npy_rows, sizes.npy_dim)
        losses = str(folder / "losses.npy")
        # The distribution's figures: "--confidence 0" is the run without any (the baseline of
        # their cost); the last row adds the worst rows, a histogram and the 95% interval.
        figures = [*plain, "--top", "100", "--bins", "20", "--confidence", "0.95"]
        return [
            ("cosloss -o losses.npy", peers.READ_PASS_NPY, list(files), [*plain, "-o", losses]),
            ("cosloss --axis 0", peers.READ_PASS_NPY, list(files), [*plain, "--axis", "0"]),
            ("cosloss --confidence 0", peers.READ_PASS_NPY, list(files), [*plain, "--confidence", "0"]),
            ("cosloss --top 100 --bins 20 (95% CI)", peers.READ_PASS_NPY, list(files), figures),
        ]
    if name == "parquet-list":
        files = make_parquet(folder, sizes.parquet_rows, sizes.parquet_dim, "list")
        return [("cosloss --json --no-losses", p, list(files), plain) for p in (peers.DUCKDB_LIST, peers.POLARS_LIST)]
    if name == "parquet-columns":
        files = make_parquet(folder, sizes.parquet_rows, sizes.parquet_dim, "columns")
        return [("cosloss --json --no-losses", peers.POLARS_COLUMNS, list(files), plain)]
    if name == "parquet-list-1rg":
        files = make_parquet_one_group(folder, sizes.one_group_rows, sizes.one_group_dim, "list")
        return [("cosloss --json --no-losses", peers.DUCKDB_LIST, list(files), plain)]
    if name == "parquet-columns-1rg":
        files = make_parquet_one_group(folder, sizes.one_group_rows, sizes.one_group_dim, "columns")
        return [("cosloss --json --no-losses", peers.POLARS_COLUMNS, list(files), plain)]
    if name == "parquet-join":
        files = make_parquet_join(folder, sizes.join_rows, sizes.join_dim)
        label = "cosloss --join-on id --json --no-losses"
        return [(label, peers.DUCKDB_JOIN, list(files), [*plain, "--join-on", "id"])]
    if name == "parquet-dataset":
        files = make_parquet_dataset(folder, sizes.dataset_rows, sizes.dataset_dim, sizes.dataset_shards, join=False)
        return [("cosloss DIR DIR --json --no-losses", peers.DUCKDB_DATASET, list(files), plain)]
    if name in ("parquet-dataset-join", "parquet-dataset-join-text"):
        text = name.endswith("text")
        rows, dim, shards = sizes.dataset_rows, sizes.dataset_dim, sizes.dataset_shards
        files = make_parquet_dataset(folder, rows, dim, shards, join=True, text_ids=text)
        label = "cosloss DIR DIR --join-on id --json --no-losses"
        return [(label, peers.DUCKDB_DATASET_JOIN, list(files), [*plain, "--join-on", "id"])]
    if name == "csv":
        files = make_csv(folder, sizes.csv_rows, sizes.csv_dim)
        return [("cosloss --json --no-losses", peers.PYARROW_CSV, list(files), plain)]
    if name == "jsonl":
        files = make_jsonl(folder, sizes.formats_rows, sizes.formats_dim)
        return [("cosloss --json --no-losses", peers.PYARROW_JSON, list(files), plain)]
    if name == "arrow":
        files = make_arrow(folder, sizes.formats_rows, sizes.formats_dim)
        return [("cosloss --json --no-losses", peers.READ_PASS_ARROW, list(files), plain)]
    if name == "small":
        files = make_npy(folder, sizes.small_rows, sizes.small_dim, prefix="small")
        return [("cosloss --json", peers.IMPORT_NUMPY, list(files), ["--json"])]
    if name == "batch":
        folders = make_batch(folder, sizes.batch_pairs, sizes.batch_rows, sizes.batch_dim)
        return [("cosloss batch -j 2 --json -q", peers.BATCH_LOOP, list(folders), ["-j", "2", "--json", "-q"])]
    if name == "batch-cluster":
        folders = make_batch(folder, sizes.batch_pairs, sizes.batch_rows, sizes.batch_dim)
        if SCHEDULER_FILE is None:
            return []
        extra = ["--scheduler-file", SCHEDULER_FILE, "--json", "-q"]
        return [("cosloss batch --scheduler-file (2 workers)", peers.BATCH_LOOP, list(folders), extra)]
    if name == "compare":
        files = make_models(folder, sizes.compare_rows, sizes.compare_dim)
        return [("cosloss compare --json --no-losses", peers.two_computes(COSLOSS), files, plain)]
    if name == "compare-runs":
        root, labels_dir, predictions_dir = make_runs(folder, sizes.runs, sizes.runs_rows, sizes.runs_dim)
        batch = peers.cosloss_run(BATCH_90, COSLOSS, ["batch", "-j", "2", "--json", "-q"], 2)
        runs = ["--runs", "--json", "-q"]
        # the peer takes the two folders of links, cosloss the folder of runs (the first path)
        return [
            ("cosloss compare --runs --json -q", batch, [labels_dir, predictions_dir, root], runs),
            ("cosloss compare --runs -j 2 --json -q", batch, [labels_dir, predictions_dir, root], [*runs, "-j", "2"]),
        ]
    if name == "compute-groups":
        labels, predictions, losses = make_parquet_groups(folder, sizes.groups_rows, sizes.groups_dim, sizes.groups)
        label = "cosloss --group-by group --json --no-losses"
        extra = [*plain, "--group-by", "group"]
        alone = peers.cosloss_run(WITHOUT_GROUPS, COSLOSS, ["compute", *plain, "--exclude-columns", "group"], 2)
        return [
            (label, alone, [labels, predictions, losses], extra),
            (label, peers.DUCKDB_GROUP_BY, [labels, predictions, losses], extra),
        ]
    raise ValueError(name)


def describe(name: str, sizes: Sizes) -> str:
    if name.startswith("npy"):
        gb = sizes.npy_rows * sizes.npy_dim * 4 / 1e9
        return f"2 x NPY {sizes.npy_rows:,} x {sizes.npy_dim} f32 ({gb:.2g} GB each)"
    if name == "parquet-list":
        return f"2 x Parquet {sizes.parquet_rows:,} rows, fixed_size_list<f32>[{sizes.parquet_dim}]"
    if name == "parquet-columns":
        return f"2 x Parquet {sizes.parquet_rows:,} x {sizes.parquet_dim} f32 columns"
    if name == "parquet-list-1rg":
        rows, dim = sizes.one_group_rows, sizes.one_group_dim
        return f"2 x Parquet {rows:,} rows, fixed_size_list<f32>[{dim}], one row group (pq.write_table)"
    if name == "parquet-columns-1rg":
        rows, dim = sizes.one_group_rows, sizes.one_group_dim
        return f"2 x Parquet {rows:,} x {dim} f32 columns, one row group (pq.write_table)"
    if name == "parquet-join":
        return (
            f"2 x Parquet {sizes.join_rows:,} rows, id + fixed_size_list<f32>[{sizes.join_dim}], predictions shuffled"
        )
    if name.startswith("parquet-dataset"):
        shards = f"{sizes.dataset_shards} shards"
        joined = "join" in name
        if joined:
            shards += f" (labels) and {max(1, sizes.dataset_shards * 3 // 4)} of the shuffled rows (predictions)"
        ids = "text id + " if name.endswith("text") else "id + " if joined else ""
        vectors = f"fixed_size_list<f32>[{sizes.dataset_dim}]"
        return f"2 Parquet datasets of {sizes.dataset_rows:,} rows, {shards}, {ids}{vectors}"
    if name == "csv":
        return f"2 x CSV {sizes.csv_rows:,} x {sizes.csv_dim}"
    if name == "jsonl":
        return f"2 x JSON Lines {sizes.formats_rows:,} rows, id + list of {sizes.formats_dim} floats"
    if name == "arrow":
        return f"2 x Arrow IPC {sizes.formats_rows:,} rows, id + fixed_size_list<f32>[{sizes.formats_dim}]"
    if name.startswith("batch"):
        return f"{sizes.batch_pairs:,} pairs of NPY {sizes.batch_rows:,} x {sizes.batch_dim} f32"
    if name == "compare":
        return f"labels + 2 models, NPY {sizes.compare_rows:,} x {sizes.compare_dim} f32"
    if name == "compare-runs":
        return f"{sizes.runs} runs x (labels + 3 models), NPY {sizes.runs_rows:,} x {sizes.runs_dim} f32"
    if name == "compute-groups":
        return (
            f"2 x Parquet {sizes.groups_rows:,} rows, fixed_size_list<f32>[{sizes.groups_dim}], one row group, "
            f"int64 group column ({sizes.groups:,} groups)"
        )
    return f"2 x NPY {sizes.small_rows:,} x {sizes.small_dim}"


def machine() -> str:
    import numpy
    import pyarrow

    from cosloss_cli.core.cosine import native_kernel_in_use

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        ram = f", {kb / 1024**2:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{ram}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}; "
        f"cosloss sums with {'its C kernel' if native_kernel_in_use() else 'numpy (C kernel not built)'}"
    )


def fmt_mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MB" if nbytes < 2**30 else f"{nbytes / 2**30:.2f} GB"


def table(rows: list[Row], sizes: Sizes) -> str:
    lines = [
        "| data | peer | peer median (CPU) | peer peak RSS | cosloss run | cosloss median (CPU) | cosloss peak RSS "
        "| ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row.peer_runs:
            lines.append(f"| {describe(row.scenario, sizes)} | {row.peer} | not installed | | | | | |")
            continue
        peer_median = statistics.median(m.seconds for m in row.peer_runs)
        cos_median = statistics.median(m.seconds for m in row.cosloss_runs)
        peer_cpu = statistics.median(m.cpu_seconds for m in row.peer_runs)
        cos_cpu = statistics.median(m.cpu_seconds for m in row.cosloss_runs)
        peer_peak = max(m.peak_bytes for m in row.peer_runs)
        cos_peak = max(m.peak_bytes for m in row.cosloss_runs)
        ratio = statistics.median(row.ratios())
        lines.append(
            f"| {describe(row.scenario, sizes)} | {row.peer} "
            f"| {peer_median:.3f} s ({peer_cpu:.2f}) | {fmt_mb(peer_peak)} "
            f"| {row.cosloss_label} | {cos_median:.3f} s ({cos_cpu:.2f}) | {fmt_mb(cos_peak)} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


class Target(NamedTuple):
    """A row of the performance issue's table: a ratio to stay under, and maybe the peer's memory."""

    scenario: str
    peer: str
    cosloss_label: str
    most: float
    memory: bool = False


#: The targets docs/performance.md quotes, each checked against a baseline measured in the same run.
TARGETS = (
    Target("npy", peers.READ_PASS_NPY.name, "cosloss --json --no-losses", 1.25),
    Target("parquet-columns", peers.POLARS_COLUMNS.name, "cosloss --json --no-losses", 1.0, memory=True),
    Target("parquet-join", peers.DUCKDB_JOIN.name, "cosloss --join-on id --json --no-losses", 1.0, memory=True),
    Target("parquet-dataset", peers.DUCKDB_DATASET.name, "cosloss DIR DIR --json --no-losses", 1.0, memory=True),
    Target(
        "parquet-dataset-join", peers.DUCKDB_DATASET_JOIN.name, "cosloss DIR DIR --join-on id --json --no-losses", 1.0
    ),
    Target("jsonl", peers.PYARROW_JSON.name, "cosloss --json --no-losses", 1.0),
    Target("arrow", peers.READ_PASS_ARROW.name, "cosloss --json --no-losses", 1.25),
    Target("small", peers.IMPORT_NUMPY.name, "cosloss --json", 1.3),
    Target("batch", peers.BATCH_LOOP.name, "cosloss batch -j 2 --json -q", 0.6),
    Target("compare", peers.TWO_COMPUTES, "cosloss compare --json --no-losses", 2.0),
    Target("compare-runs", "cosloss batch -j 2 --json -q (the same 90 pairs)", "cosloss compare --runs --json -q", 2.0),
    Target(
        "compare-runs", "cosloss batch -j 2 --json -q (the same 90 pairs)", "cosloss compare --runs -j 2 --json -q", 2.0
    ),
    Target("compute-groups", "cosloss compute without --group-by", "cosloss --group-by group --json --no-losses", 1.2),
)

#: The peers that are cosloss itself without the feature measured.
BATCH_90 = TARGETS[-3].peer
WITHOUT_GROUPS = TARGETS[-1].peer


def targets_table(rows: list[Row], sizes: Sizes) -> str:
    """The targets, each with the paired-median ratio of this run (and the peak RSS when it counts)."""
    lines = ["| data | baseline | target | ratio (paired median) | CPU s ratio | met |", "|---|---|---|---|---|---|"]
    for target in TARGETS:
        row = next(
            (r for r in rows if (r.scenario, r.peer, r.cosloss_label) == target[:3] and r.peer_runs),
            None,
        )
        if row is None:
            continue
        ratio = statistics.median(row.ratios())
        cpu = statistics.median(row.ratios(cpu=True))
        goal = f"<= {target.most:g}x"
        met = ratio <= target.most
        if target.memory:
            peer_peak = max(m.peak_bytes for m in row.peer_runs)
            cos_peak = max(m.peak_bytes for m in row.cosloss_runs)
            goal += ", peak RSS <= the peer's"
            met = met and cos_peak <= peer_peak
            ratio_text = f"{ratio:.2f}x ({fmt_mb(cos_peak)} vs {fmt_mb(peer_peak)})"
        else:
            ratio_text = f"{ratio:.2f}x"
        lines.append(
            f"| {describe(row.scenario, sizes)} | {row.peer} | {goal} | {ratio_text} | {cpu:.2f}x "
            f"| {'yes' if met else '**no**'} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def scale_table(rows: list[Row], sizes: Sizes) -> str:
    """Many small pairs three ways: pairs per second, and the machine time each pair costs
    beyond what the plain loop spends on it (wall x workers - loop wall, per pair), each
    cosloss run against the loop runs paired with it."""
    batch_rows = [row for row in rows if row.scenario.startswith("batch") and row.peer_runs]
    if not batch_rows:
        return ""
    pairs = sizes.batch_pairs
    lines = [
        "| run | workers | median wall | pairs/s | per pair | overhead per pair vs the loop |",
        "|---|---|---|---|---|---|",
    ]
    for row in batch_rows:
        loop = statistics.median(m.seconds for m in row.peer_runs)
        wall = statistics.median(m.seconds for m in row.cosloss_runs)
        overhead = (wall * 2 - loop) / pairs * 1e3
        lines.append(f"| {row.peer} | 1 | {loop:.3f} s | {pairs / loop:,.0f} | {loop / pairs * 1e3:.3f} ms | - |")
        lines.append(
            f"| {row.cosloss_label} | 2 | {wall:.3f} s | {pairs / wall:,.0f} | {wall / pairs * 1e3:.3f} ms "
            f"| {overhead:+.3f} ms |"
        )
    return "\n".join(lines)


@contextmanager
def dask_cluster(folder: Path, wanted: bool) -> Iterator[None]:
    """A local two-worker Dask cluster (the tests' one) while the ``batch-cluster`` rows run."""
    global SCHEDULER_FILE
    try:
        import distributed  # noqa: F401
    except ImportError:
        wanted = False
    if not wanted:
        yield
        return
    sys.path.insert(0, str(HERE.parent))
    from tests.servers import DaskCluster

    place = folder / "dask"
    place.mkdir(exist_ok=True)
    cluster = DaskCluster(place, workers=2)
    SCHEDULER_FILE = cluster.scheduler_file
    try:
        yield
    finally:
        SCHEDULER_FILE = None
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes of issue 5 (~9 GB of temporary files)")
    parser.add_argument("--repeat", type=int, default=None, help="pairs per peer (default 3, 5 with --full)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--peers", default="", help="comma-separated words: run only peers whose name has one")
    parser.add_argument("--tmpdir", default=None, help="where to create the temporary data folder")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (its path is printed)")
    parser.add_argument(
        "--cosloss-path",
        default=None,
        help="import cosloss_cli from this folder instead (e.g. an older checkout, for before/after)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="also write the tables into docs/performance.md's results section"
    )
    parser.add_argument("--data-dir", default=None, help="use (and keep) this folder; existing data files are reused")
    for name in (
        "npy_rows",
        "npy_dim",
        "parquet_rows",
        "parquet_dim",
        "csv_rows",
        "csv_dim",
        "compare_rows",
        "compare_dim",
        "formats_rows",
        "formats_dim",
        "runs_rows",
        "groups_rows",
    ):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    args = parser.parse_args(argv)

    base = FULL if args.full else QUICK
    sizes = Sizes(**{k: getattr(args, k) or getattr(base, k) for k in vars(base) if k in vars(args)})
    repeat = args.repeat or (5 if args.full else 3)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")

    global PYCACHE, COSLOSS
    if args.cosloss_path:
        # run(), as the console script calls it: the same start and the same exit as `cosloss`
        code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from cosloss_cli.cli import run; run()"
        COSLOSS = [PYTHON, "-c", code, str(Path(args.cosloss_path).resolve())]
    if args.data_dir:
        folder = Path(args.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        args.keep = True
    else:
        folder = Path(tempfile.mkdtemp(prefix="cosloss-bench-", dir=args.tmpdir))
    PYCACHE = folder / "pycache"
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    log(f"machine: {machine()}")
    log(f"data folder: {folder}; {repeat} pairs per peer")
    rows: list[Row] = []
    try:
        run_scenarios(chosen, folder, sizes, args.peers, repeat, rows, log)
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        losses = folder / "losses.npy"
        if args.keep and losses.exists():
            losses.unlink()
    text = results_text(rows, sizes, repeat, args.full)
    print(text)
    if args.write_docs:
        command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_docs_results(PERFORMANCE_PAGE, text, command.strip())
        log(f"wrote the results into {PERFORMANCE_PAGE}")
    return 0


def results_text(rows: list[Row], sizes: Sizes, repeat: int, full: bool) -> str:
    """The report printed at the end of a run (Markdown): the machine, every row, the targets."""
    parts = [
        f"Machine: {machine()}\n",
        f"Medians of {repeat} paired runs, wall time (CPU seconds, user+sys); "
        "ratio = median over the pairs of cosloss wall time / peer wall time.\n",
        table(rows, sizes),
    ]
    targets = targets_table(rows, sizes)
    if targets:
        sized = "" if full else "; the targets are set for the --full sizes"
        parts += [f"\nTargets (load average at the end: {os.getloadavg()[0]:.1f}{sized}):\n", targets]
    scale = scale_table(rows, sizes)
    if scale:
        parts += [f"\nMany small pairs ({describe('batch', sizes)}), local processes against a Dask cluster:\n", scale]
    return "\n".join(parts)


#: The docs page whose results section ``--write-docs`` replaces.
PERFORMANCE_PAGE = HERE.parent / "docs" / "performance.md"
RESULTS_START, RESULTS_END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def write_docs_results(page: Path, text: str, command: str) -> None:
    """Put a run's report between the results markers of ``page``, with the day and the command.

    The rest of the page (how cosloss spends its time, how to read the tables) is prose
    that a rerun does not change; only this section holds figures of a run.
    """
    current = page.read_text(encoding="utf-8")
    if RESULTS_START not in current or RESULTS_END not in current:
        raise SystemExit(f"{page} has no {RESULTS_START} ... {RESULTS_END} section to write into")
    head, rest = current.split(RESULTS_START, 1)
    tail = rest.split(RESULTS_END, 1)[1]
    stamp = f"Written by `{command}` on {time.strftime('%Y-%m-%d', time.gmtime())}.\n\n"
    page.write_text(f"{head}{RESULTS_START}\n{stamp}{text.rstrip()}\n\n{RESULTS_END}{tail}", encoding="utf-8")


def run_scenarios(
    chosen: list[str],
    folder: Path,
    sizes: Sizes,
    wanted_peers: str,
    repeat: int,
    rows: list[Row],
    log: Callable[[str], None],
) -> None:
    """Run every chosen scenario's rows, appending them to ``rows`` as they finish."""
    wanted = [w.strip().lower() for w in wanted_peers.split(",") if w.strip()]
    for name in chosen:
        # The cluster runs only during its own rows: its idle scheduler and workers (event
        # loops, heartbeats) would otherwise take CPU from every other row's measurements.
        with dask_cluster(folder, name == "batch-cluster"):
            started = time.perf_counter()
            plans = scenario_rows(name, folder, sizes)
            log(f"[{name}] data ready in {time.perf_counter() - started:.1f} s")
            for label, peer, files, extra in plans:
                if wanted and not any(w in peer.name.lower() for w in wanted):
                    continue
                row = Row(name, peer.name, cosloss_label=label)
                rows.append(row)
                if not peer.available():
                    log(f"[{name}] {peer.name}: not installed, skipped")
                    continue
                log(f"[{name}] {peer.name} vs {label}")
                command = (
                    "batch" if name.startswith("batch") else "compare" if name.startswith("compare") else "compute"
                )
                given = files[2:] if name == "compare-runs" else files[:2] if name == "compute-groups" else files
                run_pairs(row, peer_command(peer, folder, files), [*COSLOSS, command, *given, *extra], repeat)
                log(table([row], sizes).splitlines()[-1])


if __name__ == "__main__":
    raise SystemExit(main())
