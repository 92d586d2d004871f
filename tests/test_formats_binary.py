"""Arrow IPC / Feather, HDF5, safetensors and gzip-compressed NPY inputs, written by their own libraries."""

from __future__ import annotations

import builtins
import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses

ROWS, WIDTH = 50, 6
RNG = np.random.default_rng(21)
LABELS = RNG.normal(size=(ROWS, WIDTH))
PREDICTIONS = RNG.normal(size=(ROWS, WIDTH))
IDS = [f"doc-{i}" for i in range(ROWS)]
ORDER = RNG.permutation(ROWS)
EXPECTED = reference_losses(LABELS, PREDICTIONS).mean()


def mean(args, **kwargs) -> float:
    result = run_cli([*args, "--json", "--no-losses"], **kwargs)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["mean"]


def table(values: np.ndarray, order=None) -> pa.Table:
    order = np.arange(ROWS) if order is None else order
    vectors = pa.array([values[i].tolist() for i in order], type=pa.list_(pa.float64()))
    return pa.table({"id": [IDS[i] for i in order], "text": ["t"] * len(order), "embedding": vectors})


# Arrow IPC ------------------------------------------------------------------------------


def test_feather_from_pandas_against_a_shuffled_ipc_file_through_the_executable(tmp_path):
    frame = pd.DataFrame({"doc_id": IDS, "embedding": [row for row in LABELS]})
    frame.to_feather(tmp_path / "l.feather")  # lz4-compressed Feather v2
    shuffled = table(PREDICTIONS, ORDER).rename_columns(["doc_id", "text", "embedding"])
    with ipc.new_file(tmp_path / "p.arrow", shuffled.schema) as writer:
        writer.write_table(shuffled, max_chunksize=9)
    proc = run_executable(
        [
            "compute",
            str(tmp_path / "l.feather"),
            str(tmp_path / "p.arrow"),
            "--join-on",
            "doc_id",
            "--json",
            "--no-losses",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert abs(json.loads(proc.stdout)["mean"] - EXPECTED) < 1e-12


def test_polars_ipc_numeric_columns_and_weight_column(tmp_path):
    pl = pytest.importorskip("polars")
    columns = {f"f{j}": LABELS[:, j] for j in range(WIDTH)}
    weights = np.arange(ROWS) % 4
    pl.DataFrame({**columns, "w": weights}).write_ipc(tmp_path / "l.arrow")
    pl.DataFrame({f"f{j}": PREDICTIONS[:, j] for j in range(WIDTH)}).write_ipc_stream(tmp_path / "p.ipc")
    result = run_cli(["compute", str(tmp_path / "l.arrow"), str(tmp_path / "p.ipc"), "--weight-column", "w", "--json"])
    assert result.exit_code == 0, result.stderr
    losses = reference_losses(LABELS, PREDICTIONS)
    assert abs(json.loads(result.stdout)["loss"] - (losses * weights).sum() / np.count_nonzero(weights)) < 1e-12
    columns = "f5,f4,f3,f2,f1,f0"
    got = mean(["compute", str(tmp_path / "l.arrow"), str(tmp_path / "p.ipc"), "--columns", columns])
    assert abs(got - reference_losses(LABELS[:, ::-1], PREDICTIONS[:, ::-1]).mean()) < 1e-12


def test_arrow_stream_on_stdin(tmp_path):
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table(PREDICTIONS).schema) as writer:
        writer.write_table(table(PREDICTIONS))
    ipc_file = tmp_path / "l.arrow"
    with ipc.new_file(ipc_file, table(LABELS).schema) as writer:
        writer.write_table(table(LABELS))
    args = ["compute", str(ipc_file), "-", "--predictions-format", "arrow"]
    assert abs(mean(args, input=sink.getvalue().to_pybytes()) - EXPECTED) < 1e-12


def test_truncated_arrow_file_is_a_data_error(tmp_path):
    with ipc.new_file(tmp_path / "l.arrow", table(LABELS).schema) as writer:
        writer.write_table(table(LABELS))
    data = (tmp_path / "l.arrow").read_bytes()
    (tmp_path / "cut.arrow").write_bytes(data[: len(data) // 2])
    np.save(tmp_path / "p.npy", PREDICTIONS)
    result = run_cli(["compute", str(tmp_path / "cut.arrow"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR and "Traceback" not in result.stderr


# HDF5 -----------------------------------------------------------------------------------


def test_hdf5_keys_per_side_through_the_executable(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "eval.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("labels", data=LABELS.astype(np.float32), chunks=(8, WIDTH), compression="gzip")
        handle.create_dataset("group/predictions", data=PREDICTIONS)
    proc = run_executable(
        [
            "compute",
            str(path),
            str(path),
            "--labels-key",
            "labels",
            "--predictions-key",
            "group/predictions",
            "--json",
            "--no-losses",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    expected = reference_losses(LABELS.astype(np.float32), PREDICTIONS).mean()
    assert abs(json.loads(proc.stdout)["mean"] - expected) < 1e-12
    result = run_cli(["compute", str(path), str(path)])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "2 datasets (group/predictions, labels)" in result.stderr and "--key" in result.stderr


def test_hdf5_single_dataset_in_small_blocks(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "l.hdf5", "w") as handle:
        handle.create_dataset("embeddings", data=LABELS)
    np.save(tmp_path / "p.npy", PREDICTIONS)
    from cosloss_cli import compute_files

    result = compute_files(str(tmp_path / "l.hdf5"), str(tmp_path / "p.npy"), block_bytes=WIDTH * 8 * 7)
    assert abs(result.summary.mean - EXPECTED) < 1e-12


def test_hdf5_without_h5py_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "l.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    np.save(tmp_path / "p.npy", PREDICTIONS)
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    result = run_cli(["compute", str(tmp_path / "l.h5"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "pip install 'cosloss[hdf5]'" in result.stderr


# safetensors -----------------------------------------------------------------------------


def test_safetensors_tensor_by_key_through_the_executable(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "eval.safetensors"
    st.save_file({"labels": LABELS.astype(np.float32), "predictions": PREDICTIONS}, str(path))
    proc = run_executable(
        [
            "compute",
            str(path),
            str(path),
            "--labels-key",
            "labels",
            "--predictions-key",
            "predictions",
            "--json",
            "--no-losses",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    expected = reference_losses(LABELS.astype(np.float32), PREDICTIONS).mean()
    assert abs(json.loads(proc.stdout)["mean"] - expected) < 1e-12
    result = run_cli(["compute", str(path), str(path), "--key", "nope"])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "labels, predictions" in result.stderr


def test_safetensors_on_stdin_and_bfloat16(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"x": PREDICTIONS}, str(tmp_path / "p.safetensors"))
    bits = (LABELS.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)  # bfloat16, truncated
    header = json.dumps({"x": {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [0, bits.nbytes]}})
    header += " " * (-len(header) % 8)
    (tmp_path / "l.safetensors").write_bytes(len(header).to_bytes(8, "little") + header.encode() + bits.tobytes())
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    data = (tmp_path / "p.safetensors").read_bytes()
    args = ["compute", str(tmp_path / "l.safetensors"), "-", "--predictions-format", "safetensors"]
    assert abs(mean(args, input=data) - reference_losses(widened, PREDICTIONS).mean()) < 1e-12


def test_truncated_safetensors_is_a_data_error(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"x": LABELS}, str(tmp_path / "l.safetensors"))
    data = (tmp_path / "l.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    np.save(tmp_path / "p.npy", PREDICTIONS)
    result = run_cli(["compute", str(tmp_path / "cut.safetensors"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR and "truncated" in result.stderr


# gzip-compressed NPY ----------------------------------------------------------------------


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_npy_gz_file_and_gzip_on_stdin(tmp_path):
    with gzip.open(tmp_path / "l.npy.gz", "wb") as handle:
        handle.write(npy_bytes(LABELS))
    np.save(tmp_path / "p.npy", PREDICTIONS)
    proc = run_executable(["compute", str(tmp_path / "l.npy.gz"), str(tmp_path / "p.npy"), "--json", "--no-losses"])
    assert proc.returncode == 0, proc.stderr
    assert abs(json.loads(proc.stdout)["mean"] - EXPECTED) < 1e-12
    data = gzip.compress(npy_bytes(PREDICTIONS))
    args = ["compute", str(tmp_path / "l.npy.gz"), "-", "--predictions-format", "npy"]
    assert abs(mean(args, input=data) - EXPECTED) < 1e-12
    proc = run_executable(args + ["--json"], input=data.decode("latin-1"), encoding="latin-1")
    assert proc.returncode == 0, proc.stderr
    assert abs(json.loads(proc.stdout)["mean"] - EXPECTED) < 1e-12
