"""Fuzzing the readers: random and mutated CSV, NPY and Parquet bytes through ``compute_files``.

The only outcomes allowed are a correct result or a :class:`CoslossError`. "Correct" is
checked against an independent reference parse (numpy's ``np.load``, pyarrow's
``read_table``, a strict CSV reading) whenever that reference accepts the bytes.

``COSLOSS_FUZZ_EXAMPLES`` sets the examples per test (``make fuzz`` sets 5000); the
default keeps the whole file to a few hundred examples.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.errors import CoslossError
from cosloss_cli.io import ReadOptions, open_source
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.pipeline.result import ComputeOptions

from .conftest import property_settings
from .oracle import reference_losses

# An "Exception ignored in ..." report (a callback failing inside pyarrow) would reach the user's stderr.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

FUZZ = property_settings(50)
OPTIONS = ComputeOptions(nan_policy="propagate", threads=2)

# ---------------------------------------------------------------- strategies

finite = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-(10**6), 10**6)


@st.composite
def matrices(draw: st.DrawFn, max_rows: int = 12, max_cols: int = 6) -> np.ndarray:
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    values = draw(st.lists(finite, min_size=rows * cols, max_size=rows * cols))
    return np.array(values, dtype=np.float64).reshape(rows, cols)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Up to four byte edits: flip, insert, delete, truncate or duplicate a slice."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if not buffer:
            buffer.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        at = draw(st.integers(0, len(buffer) - 1))
        if kind == "flip":
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            buffer[at] = draw(st.sampled_from([0, 0x0A, 0x0D, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x39, 0x65, 0x7F, 0xFF]))
        elif kind == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif kind == "delete":
            del buffer[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del buffer[at:]
        else:
            end = min(len(buffer), at + draw(st.integers(1, 32)))
            buffer[at:at] = buffer[at:end]
    return bytes(buffer)


# ---------------------------------------------------------------- the harness


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cosloss-fuzz-") as name:
        yield Path(name)


def predictions_like(shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    return (np.sin(np.arange(1, count + 1, dtype=np.float64)) * 3.0).reshape(shape)


def check(data: bytes, suffix: str, reference: np.ndarray | None) -> None:
    """Run ``data`` as the labels file: a CoslossError, or losses equal to the reference."""
    with workdir() as folder:
        labels = folder / f"labels{suffix}"
        labels.write_bytes(data)
        shape = reference.shape if reference is not None and reference.size else (2, 3)
        predictions = predictions_like(shape)
        ppath = folder / "predictions.npy"
        np.save(ppath, predictions)
        try:
            result = compute_files(str(labels), str(ppath), ReadOptions(), OPTIONS)
        except CoslossError as exc:
            assert str(exc) and "\n" not in str(exc), "errors are one line with a message"
            return
        if reference is None:
            return  # the reference reader refused: any clean outcome is fine
        expected = reference_losses(reference.reshape(-1, reference.shape[-1]), predictions.reshape(-1, shape[-1]))
        got = np.asarray(result.losses, dtype=np.float64).ravel()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)


def drain(data: bytes, suffix: str) -> None:
    """open_source and read every block: only CoslossError may escape."""
    with workdir() as folder:
        path = folder / f"input{suffix}"
        path.write_bytes(data)
        try:
            source = open_source(str(path), ReadOptions())
            for block in source.blocks:
                assert block.values.shape[0] == len(block)
        except CoslossError:
            return


# ---------------------------------------------------------------- NPY


def npy_reference(data: bytes) -> np.ndarray | None:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:
        return None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf" or array.ndim == 0 or array.size == 0:
        return None
    return array.reshape(1, -1) if array.ndim == 1 else array


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


npy_arrays = st.one_of(
    matrices(),
    matrices().map(lambda a: np.clip(a, -3e38, 3e38).astype(np.float32)),
    matrices().map(lambda a: np.asfortranarray(a)),
    matrices().map(lambda a: a.astype(">f8")),
    matrices().map(lambda a: np.clip(a, -(2**31), 2**31 - 1).astype(np.int32)),
    matrices().map(lambda a: a.reshape(-1)),
    matrices().map(lambda a: a.reshape(1, *a.shape)),
)


@FUZZ
@given(st.data())
def test_fuzz_npy_mutated(data: st.DataObject) -> None:
    original = npy_bytes(data.draw(npy_arrays))
    blob = data.draw(mutated(original))
    reference = npy_reference(blob)
    if reference is not None and reference.ndim > 2:
        reference = reference.reshape(-1, reference.shape[-1])
        check_nd = False
    else:
        check_nd = True
    if check_nd:
        check(blob, ".npy", reference)
    else:
        drain(blob, ".npy")


@FUZZ
@given(
    st.binary(max_size=400), st.sampled_from([b"", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"\x93NUMPY\x03\x00"])
)
def test_fuzz_npy_random_bytes(blob: bytes, prefix: bytes) -> None:
    data = prefix + blob
    check(data, ".npy", npy_reference(data))


@FUZZ
@given(st.data())
def test_fuzz_npz_mutated(data: st.DataObject) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    ) as zf:
        zf.writestr("x.npy", npy_bytes(data.draw(matrices())))
    blob = data.draw(mutated(buffer.getvalue()))
    drain(blob, ".npz")


# ---------------------------------------------------------------- CSV

_STRICT_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _python_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_reference(data: bytes) -> np.ndarray | None:
    """A strict reading of simple CSV; None for anything it is not sure about."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    if any(ch in text for ch in '"\x00\ufeff') or re.search(r"\r(?!\n)", text):
        return None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None
    rows = list(csv.reader(lines))
    width = len(rows[0])
    first = [c.strip() for c in rows[0]]
    header = any(c and not _python_number(c) for c in first) or any("_" in c for c in first)
    if not header and not all(c == "" or _STRICT_NUMBER.fullmatch(c) for c in rows[0]):
        return None  # python and pyarrow may disagree about such numbers
    if header and (len(set(first)) != width or any(c != c.strip() for c in rows[0])):
        return None
    body = rows[1:] if header else rows
    if not body or width == 0:
        return None
    values = []
    for row in body:
        if len(row) != width:
            return None
        for cell in row:
            if cell != "" and not _STRICT_NUMBER.fullmatch(cell):
                return None
        values.append([float(c) if c else np.nan for c in row])
    if width == 1 and any(line.strip() != line for line in lines):
        return None
    return np.array(values, dtype=np.float64)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    array = draw(matrices())
    header = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(f"c{i}" for i in range(array.shape[1]))] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in array]
    text = newline.join(lines) + newline * draw(st.integers(0, 2))
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


@FUZZ
@given(st.data())
def test_fuzz_csv_mutated(data: st.DataObject) -> None:
    blob = data.draw(mutated(data.draw(csv_files())))
    check(blob, ".csv", csv_reference(blob))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list('0123456789.,-+eE \t\r\n"naifNAIF#x_')), max_size=120))
def test_fuzz_csv_random_text(text: str) -> None:
    blob = text.encode()
    check(blob, ".csv", csv_reference(blob))


@FUZZ
@given(st.data())
def test_fuzz_csv_gzip_mutated(data: st.DataObject) -> None:
    plain = data.draw(csv_files())
    blob = data.draw(mutated(gzip.compress(plain)))
    try:
        reference = csv_reference(gzip.decompress(blob))
    except Exception:
        reference = None
    check(blob, ".csv.gz", reference)


# ---------------------------------------------------------------- Parquet


def parquet_bytes(table: pa.Table, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def parquet_reference(data: bytes, names: list[str], list_column: bool) -> np.ndarray | None:
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception:
        return None
    if table.column_names != names or table.num_rows == 0:
        return None
    if list_column:
        column = table.column(0)
        if not pa.types.is_list(column.type) or not pa.types.is_floating(column.type.value_type):
            return None
        rows = column.to_pylist()
        if any(r is None for r in rows) or len({len(r) for r in rows}) != 1 or len(rows[0]) == 0:
            return None
        return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    if not all(pa.types.is_floating(t) for t in table.schema.types):
        return None
    return np.column_stack([np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float64) for c in table.columns])


@FUZZ
@given(st.data())
def test_fuzz_parquet_mutated(data: st.DataObject) -> None:
    array = data.draw(matrices())
    as_list = data.draw(st.booleans())
    if as_list:
        table = pa.table({"v": pa.array(list(array), type=pa.list_(pa.float64()))})
        names = ["v"]
    else:
        names = [f"c{i}" for i in range(array.shape[1])]
        table = pa.table({name: array[:, i] for i, name in enumerate(names)})
    compression = data.draw(st.sampled_from(["NONE", "SNAPPY", "ZSTD"]))
    original = parquet_bytes(table, compression=compression, row_group_size=data.draw(st.integers(1, 8)))
    blob = data.draw(mutated(original))
    check(blob, ".parquet", parquet_reference(blob, names, as_list))


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_parquet_random_bytes(blob: bytes, framed: bool) -> None:
    data = b"PAR1" + blob + b"PAR1" if framed else blob
    check(data, ".parquet", None)


# ---------------------------------------------------------------- the harness itself can fail


def test_fuzz_harness_detects_wrong_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that returned wrong numbers would be caught by ``check``."""
    array = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    blob = npy_bytes(array)
    check(blob, ".npy", npy_reference(blob))
    with pytest.raises(AssertionError):
        check(blob, ".npy", array[:, ::-1].copy())
