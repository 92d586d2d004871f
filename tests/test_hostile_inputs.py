"""Broken and hostile inputs (issue 4): every one a clear ``Error:`` line or a right answer.

Each test makes its own inputs in ``tmp_path`` and checks the exit status, the one
``Error:`` line (file name and location where it applies) and that no traceback is
printed; inputs that can be computed are checked against an exact reference.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import pickle
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable_without_root_powers, without_paths
from .oracle import reference_loss, reference_losses

# ---------------------------------------------------------------- helpers


def run_json(*args: str, input: bytes | None = None) -> tuple[dict[str, Any], Any]:
    result = run_cli(["compute", *args, "--json"], input=input)
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout), result


def assert_error(result: Any, code: int, *fragments: str) -> str:
    """Exactly one ``Error:`` line with every fragment in it, the exit code, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "internal error" not in without_paths(result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    line = lines[0]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.stdout == "", "no partial results on stdout after an error"
    return line


def compute_error(code: int, args: list[str], *fragments: str, input: bytes | None = None) -> str:
    return assert_error(run_cli(["compute", *args], input=input), code, *fragments)


def write_csv(path: Path, rows: list[list[Any]], header: list[str] | None = None) -> Path:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


LABELS = np.array([[1.0, 4.0, 5.0], [5.0, 5.0, 7.0], [0.5, -2.0, 3.0]])
PREDS = np.array([[3.0, 2.0, 5.0], [3.0, 2.0, 7.0], [1.0, 1.0, -1.0]])
EXPECTED = reference_losses(LABELS, PREDS)


@pytest.fixture
def good_pair(tmp_path: Path) -> tuple[Path, Path]:
    labels = write_csv(tmp_path / "labels.csv", LABELS.tolist(), ["a", "b", "c"])
    preds = write_csv(tmp_path / "preds.csv", PREDS.tolist(), ["a", "b", "c"])
    return labels, preds


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---------------------------------------------------------------- CSV


def test_csv_empty_file(tmp_path, good_pair):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    compute_error(1, [str(empty), str(good_pair[1])], "empty.csv", "is empty")


def test_csv_header_only(tmp_path, good_pair):
    only = tmp_path / "only_header.csv"
    only.write_text("a,b,c\n")
    other = tmp_path / "other_header.csv"
    other.write_text("a,b,c\n")
    compute_error(1, [str(only), str(other), "--axis", "1"], "only_header.csv", "has no rows")


def test_csv_ragged_rows_name_the_line(tmp_path, good_pair):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n4,5\n7,8,9\n")
    compute_error(1, [str(ragged), str(good_pair[1])], "ragged.csv", "line 3", "2 fields", "expected 3")


def test_csv_non_numeric_cell_names_row_column_value(tmp_path, good_pair):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n4,abc,6\n7,8,9\n")
    compute_error(1, [str(bad), str(good_pair[1])], "bad.csv", "line 3", "'b'", "'abc'", "not a number")


def test_csv_non_numeric_cell_far_down(tmp_path):
    rows = [[i, i + 1, i + 2] for i in range(5000)]
    rows[4321][2] = "x7"  # type: ignore[call-overload]
    bad = write_csv(tmp_path / "far.csv", rows, ["a", "b", "c"])
    good = write_csv(tmp_path / "good.csv", [[1, 2, 3]] * 5000, ["a", "b", "c"])
    compute_error(1, [str(bad), str(good), "--axis", "1"], "far.csv", "line 4323", "'c'", "'x7'")


def test_csv_quoted_numbers(tmp_path):
    labels = tmp_path / "quoted.csv"
    labels.write_text('"a","b","c"\n' + "".join(f'"{r[0]}","{r[1]}","{r[2]}"\n' for r in LABELS.tolist()))
    preds = write_csv(tmp_path / "p.csv", PREDS.tolist(), ["a", "b", "c"])
    doc, _ = run_json(str(labels), str(preds), "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("header", [True, False])
def test_csv_utf8_bom(tmp_path, header):
    body = "".join(",".join(map(str, r)) + "\n" for r in LABELS.tolist())
    labels = tmp_path / "bom.csv"
    labels.write_bytes(b"\xef\xbb\xbf" + (("a,b,c\n" if header else "") + body).encode())
    preds = write_csv(tmp_path / "p.csv", PREDS.tolist(), ["a", "b", "c"] if header else None)
    doc, _ = run_json(str(labels), str(preds), "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)
    assert doc["shape"] == [3, 3]


@pytest.mark.parametrize("ending", ["\r\n", "\r"], ids=["windows", "old-mac"])  # \r alone: found by fuzzing
def test_csv_line_endings(tmp_path, ending):
    labels = tmp_path / "endings.csv"
    text = f"a,b,c{ending}" + "".join(",".join(map(str, r)) + ending for r in LABELS.tolist())
    labels.write_bytes(text.encode())
    preds = write_csv(tmp_path / "p.csv", PREDS.tolist(), ["a", "b", "c"])
    doc, _ = run_json(str(labels), str(preds), "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


def test_csv_blank_trailing_lines(tmp_path):
    labels = tmp_path / "trailing.csv"
    labels.write_text("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in LABELS.tolist()) + "\n\n\r\n\n")
    preds = write_csv(tmp_path / "p.csv", PREDS.tolist(), ["a", "b", "c"])
    doc, _ = run_json(str(labels), str(preds), "--axis", "1")
    assert doc["count"] == 3
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("columns", [1, 3])
def test_csv_trailing_line_of_spaces_names_the_line(tmp_path, columns):
    labels = tmp_path / "spaces.csv"
    rows = "".join(",".join(map(str, r[:columns])) + "\n" for r in LABELS.tolist())
    labels.write_text(",".join("abc"[:columns]) + "\n" + rows + "\n   \t\n")
    preds = write_csv(tmp_path / "p.csv", PREDS[:, :columns].tolist(), list("abc"[:columns]))
    compute_error(1, [str(labels), str(preds), "--axis", "1"], "spaces.csv", "line 6", "only spaces")


def test_csv_not_utf8_in_header(tmp_path, good_pair):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("caf\xe9,b,c\n1,2,3\n4,5,6\n7,8,9\n".encode("latin-1"))
    compute_error(1, [str(latin), str(good_pair[1])], "latin1.csv", "not UTF-8", "0xe9", "iconv")


def test_csv_not_utf8_in_data(tmp_path, good_pair):
    latin = tmp_path / "latin1_data.csv"
    latin.write_bytes("a,b,c\n1,2,3\n4,5,\xb56\n7,8,9\n".encode("latin-1"))
    compute_error(1, [str(latin), str(good_pair[1])], "latin1_data.csv", "line 3", "UTF-8", "0xb5")


def test_csv_thousands_of_columns(tmp_path):
    rng = np.random.default_rng(4)
    labels = rng.normal(size=(4, 3000))
    preds = rng.normal(size=(4, 3000))
    header = [f"f{i}" for i in range(3000)]
    lpath = write_csv(tmp_path / "wide_l.csv", [[repr(v) for v in r] for r in labels.tolist()], header)
    ppath = write_csv(tmp_path / "wide_p.csv", [[repr(v) for v in r] for r in preds.tolist()], header)
    doc, _ = run_json(str(lpath), str(ppath), "--axis", "1")
    assert doc["shape"] == [4, 3000]
    np.testing.assert_allclose(doc["losses"], reference_losses(labels, preds), rtol=0, atol=1e-12)


def test_csv_gz_that_is_not_gzip(tmp_path, good_pair):
    fake = tmp_path / "fake.csv.gz"
    fake.write_text("a,b,c\n1,2,3\n")
    compute_error(1, [str(fake), str(good_pair[1])], "fake.csv.gz", "not gzip-compressed", "rename")


def test_csv_truncated_gzip(tmp_path, good_pair):
    rows = "".join(f"{i},{i + 1},{i + 2}\n" for i in range(20000))
    data = gzip.compress(("a,b,c\n" + rows).encode())
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(data[: len(data) // 2])
    compute_error(1, [str(truncated), str(good_pair[1]), "--axis", "1"], "cut.csv.gz", "truncated gzip")


def test_csv_gz_good(tmp_path):
    labels = tmp_path / "l.csv.gz"
    labels.write_bytes(gzip.compress(("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in LABELS)).encode()))
    preds = write_csv(tmp_path / "p.csv", PREDS.tolist(), ["a", "b", "c"])
    doc, _ = run_json(str(labels), str(preds), "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- NPY


def test_npy_truncated_data(tmp_path):
    data = npy_bytes(np.ones((100, 8)))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(data[:-100])
    good = tmp_path / "good.npy"
    good.write_bytes(data)
    compute_error(1, [str(cut), str(good)], "cut.npy", "truncated", "fully written")


def test_npy_truncated_data_from_stdin(tmp_path):
    data = npy_bytes(np.ones((100, 8)))
    good = tmp_path / "good.npy"
    good.write_bytes(data)
    compute_error(1, [str(good), "-", "--predictions-format", "npy"], "-", "truncated", input=data[:-100])


def test_npy_corrupt_header(tmp_path):
    data = bytearray(npy_bytes(np.ones((4, 3))))
    data[10:20] = b"!!garbage!"
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(bytes(data))
    good = tmp_path / "good.npy"
    np.save(good, np.ones((4, 3)))
    compute_error(1, [str(bad), str(good)], "corrupt.npy", "not a valid .npy file")


def test_npy_not_npy_at_all(tmp_path):
    bad = tmp_path / "text.npy"
    bad.write_text("1,2,3\n")
    good = tmp_path / "good.npy"
    np.save(good, np.ones((1, 3)))
    compute_error(1, [str(bad), str(good)], "text.npy", "not a valid .npy file")


class _CreatesFile:
    """Unpickling this calls ``open(path, 'w')``: it would create a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _object_npy(payload: bytes) -> bytes:
    header = {"descr": "|O", "fortran_order": False, "shape": (1, 1)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


@pytest.mark.parametrize("where", ["npy", "npz", "stdin"])
def test_npy_pickle_is_refused_without_running(tmp_path, where):
    control = tmp_path / "control_created"
    marker = tmp_path / "pwned"
    # The payload really works: numpy itself, allowed to unpickle, creates the control file.
    np.load(io.BytesIO(_object_npy(pickle.dumps([[_CreatesFile(str(control))]], protocol=3))), allow_pickle=True)
    assert control.exists()
    # numpy writes object arrays as a pickle after the header; build the same by hand.
    evil = _object_npy(pickle.dumps([[_CreatesFile(str(marker))]], protocol=3))
    good = tmp_path / "good.npy"
    np.save(good, np.ones((1, 1)))
    if where == "npy":
        path = tmp_path / "evil.npy"
        path.write_bytes(evil)
        line = compute_error(1, [str(path), str(good)], "evil.npy", "pickle", "never loads")
    elif where == "npz":
        path = tmp_path / "evil.npz"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.npy", evil)
        line = compute_error(1, [str(path), str(good)], "evil.npz", "pickle")
    else:
        line = compute_error(1, ["-", str(good), "--labels-format", "npy"], "pickle", input=evil)
    assert "Python objects" in line
    assert not marker.exists(), "the pickle ran"


def test_npy_structured_dtype(tmp_path):
    structured = np.zeros((3,), dtype=[("x", "f8"), ("y", "f8")])
    path = tmp_path / "struct.npy"
    np.save(path, structured)
    good = tmp_path / "good.npy"
    np.save(good, np.ones((3, 2)))
    compute_error(1, [str(path), str(good)], "struct.npy", "structured dtype", "'x'", "'y'", "plain numeric array")


def test_npy_complex(tmp_path):
    path = tmp_path / "complex.npy"
    np.save(path, np.ones((3, 2), dtype=np.complex128))
    good = tmp_path / "good.npy"
    np.save(good, np.ones((3, 2)))
    compute_error(1, [str(good), str(path)], "complex.npy", "complex numbers", "real numbers")


def test_npy_zero_d(tmp_path):
    path = tmp_path / "scalar.npy"
    np.save(path, np.float64(3.0))
    compute_error(1, [str(path), str(path)], "scalar.npy", "0-d array")


def test_npy_one_d_is_one_vector(tmp_path):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, LABELS[0])
    np.save(ppath, PREDS[0])
    doc, _ = run_json(str(lpath), str(ppath))
    assert doc["count"] == 1
    assert doc["losses"] == pytest.approx([EXPECTED[0]], abs=1e-12)
    assert doc["shape"] == [3]
    # a 1-D array against a one-row 2-D array is a shape mismatch: the error shows both
    two_d = tmp_path / "two_d.npy"
    np.save(two_d, PREDS[:1])
    compute_error(1, [str(lpath), str(two_d)], "shapes differ", "(3,)", "(1, 3)")


def test_npy_one_d_axis_out_of_range(tmp_path):
    lpath = tmp_path / "l.npy"
    np.save(lpath, LABELS[0])
    compute_error(2, [str(lpath), str(lpath), "--axis", "1"], "axis 1", "1-D")


@pytest.mark.parametrize("stdin", [False, True])
def test_npy_fortran_order(tmp_path, stdin):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, np.asfortranarray(LABELS))
    np.save(ppath, np.asfortranarray(PREDS))
    assert np.load(lpath).flags.f_contiguous
    for axis, expected in ((1, EXPECTED), (0, reference_losses(LABELS, PREDS, axis=0))):
        if stdin:
            doc, _ = run_json(
                str(lpath), "-", "--predictions-format", "npy", "--axis", str(axis), input=ppath.read_bytes()
            )
        else:
            doc, _ = run_json(str(lpath), str(ppath), "--axis", str(axis))
        np.testing.assert_allclose(doc["losses"], expected, rtol=0, atol=1e-12)


def test_npy_big_endian(tmp_path):
    lpath, ppath = tmp_path / "be.npy", tmp_path / "p.npy"
    np.save(lpath, LABELS.astype(">f8"))
    np.save(ppath, PREDS.astype(">i4"))
    doc, _ = run_json(str(lpath), str(ppath), "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- NPZ


def test_npz_several_arrays_without_key(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, first=LABELS, second=PREDS)
    compute_error(2, [str(path), str(path)], "two.npz", "2 arrays", "first", "second", "--key")


def test_npz_unknown_key(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, first=LABELS, second=PREDS)
    compute_error(2, [str(path), str(path), "--key", "third"], "two.npz", "'third'", "first, second")


def test_npz_key_selects(tmp_path):
    lpath, ppath = tmp_path / "l.npz", tmp_path / "p.npz"
    np.savez(lpath, x=LABELS, other=PREDS)
    np.savez_compressed(ppath, x=PREDS, other=LABELS)
    doc, _ = run_json(str(lpath), str(ppath), "--key", "x", "--axis", "1")
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "nozip.npz"
    path.write_bytes(npy_bytes(LABELS))
    compute_error(1, [str(path), str(path)], "nozip.npz", "not a valid .npz")


def test_npz_truncated_member(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez_compressed(path, x=np.arange(30000.0).reshape(1000, 30))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = compute_error(1, [str(path), str(path)], "cut.npz")
    assert "zip" in line or "truncated" in line


# ---------------------------------------------------------------- Parquet


def write_parquet(path: Path, table: pa.Table, **kwargs: Any) -> Path:
    pq.write_table(table, path, **kwargs)
    return path


def columns_table(array: np.ndarray) -> pa.Table:
    return pa.table({f"c{i}": array[:, i] for i in range(array.shape[1])})


def test_parquet_truncated(tmp_path):
    path = write_parquet(tmp_path / "cut.parquet", columns_table(np.ones((100, 3))))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    compute_error(1, [str(path), str(path)], "cut.parquet", "not a readable Parquet file", "fully written")


def test_parquet_not_parquet(tmp_path):
    path = tmp_path / "text.parquet"
    path.write_text("a,b,c\n1,2,3\n")
    compute_error(1, [str(path), str(path)], "text.parquet", "not a readable Parquet file")


def test_parquet_nulls_in_numeric_columns(tmp_path):
    lpath = write_parquet(tmp_path / "l.parquet", pa.table({"a": [1.0, None, 3.0], "b": [2.0, 2.0, None]}))
    ppath = write_parquet(tmp_path / "p.parquet", pa.table({"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]}))
    compute_error(1, [str(lpath), str(ppath)], "l.parquet", "row 1", "'a'", "NaN", "--nan-policy")
    doc, _ = run_json(str(lpath), str(ppath), "--nan-policy", "omit")
    assert doc["omitted"] == 2 and doc["count"] == 1
    assert doc["losses"] == pytest.approx([reference_loss([1, 2], [1, 1])], abs=1e-12)
    doc, _ = run_json(str(lpath), str(ppath), "--nan-policy", "propagate")
    assert doc["losses"][1] is None and doc["losses"][2] is None and doc["mean"] is None


def test_parquet_nulls_in_list_columns(tmp_path):
    lpath = write_parquet(tmp_path / "l.parquet", pa.table({"v": [[1.0, 2.0], None, [3.0, None]]}))
    ppath = write_parquet(tmp_path / "p.parquet", pa.table({"v": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]}))
    compute_error(1, [str(lpath), str(ppath)], "l.parquet", "row 1", "NaN", "--nan-policy")
    doc, _ = run_json(str(lpath), str(ppath), "--nan-policy", "omit")
    assert doc["omitted"] == 2 and doc["count"] == 1
    assert doc["losses"] == pytest.approx([reference_loss([1, 2], [1, 1])], abs=1e-12)


def test_parquet_list_unequal_lengths(tmp_path):
    lpath = write_parquet(tmp_path / "l.parquet", pa.table({"v": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0]]}))
    ppath = write_parquet(tmp_path / "p.parquet", pa.table({"v": [[1.0, 2.0, 3.0]] * 3}))
    compute_error(1, [str(lpath), str(ppath)], "l.parquet", "row 2", "length 2", "expected 3")


def test_parquet_list_unequal_lengths_first_row_null(tmp_path):
    lpath = write_parquet(tmp_path / "l.parquet", pa.table({"v": [None, [1.0, 2.0, 3.0], [1.0, 2.0]]}))
    ppath = write_parquet(tmp_path / "p.parquet", pa.table({"v": [[1.0, 2.0, 3.0]] * 3}))
    compute_error(1, [str(lpath), str(ppath), "--nan-policy", "omit"], "l.parquet", "row 2", "length 2")


def test_parquet_nested_struct(tmp_path):
    """A column that is not numbers is left out with a note; named in --columns, it is refused."""
    table = pa.table({"a": [1.0, 2.0], "s": pa.array([{"x": 1.0}, {"x": 2.0}])})
    path = write_parquet(tmp_path / "nested.parquet", table)
    doc, result = run_json(str(path), str(path))
    assert doc["shape"] == [2, 1] and "column 's' holds struct<x: double>, not numbers" in result.stderr
    compute_error(1, [str(path), str(path), "--columns", "a,s"], "nested.parquet", "'s'", "struct", "--columns")


def test_parquet_string_column(tmp_path):
    table = pa.table({"a": [1.0, 2.0], "name": ["x", "y"]})
    path = write_parquet(tmp_path / "strings.parquet", table)
    doc, result = run_json(str(path), str(path))
    assert doc["shape"] == [2, 1] and "column 'name' holds text, not numbers" in result.stderr
    compute_error(1, [str(path), str(path), "--columns", "name,a"], "strings.parquet", "'name'", "not numbers")
    doc, _ = run_json(str(path), str(path), "--id-column", "name")
    assert doc["ids"] == ["x", "y"] and doc["losses"] == [0.0, 0.0]


def test_parquet_zero_rows(tmp_path):
    path = write_parquet(tmp_path / "none.parquet", pa.table({"a": pa.array([], pa.float64())}))
    compute_error(1, [str(path), str(path)], "none.parquet", "has no rows")


def test_parquet_multiple_row_groups(tmp_path):
    rng = np.random.default_rng(7)
    labels, preds = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4))
    lpath = write_parquet(tmp_path / "l.parquet", columns_table(labels), row_group_size=97)
    ppath = write_parquet(tmp_path / "p.parquet", pa.table({"v": list(preds)}), row_group_size=250)
    assert pq.ParquetFile(lpath).num_row_groups > 5
    doc, _ = run_json(str(lpath), str(ppath))
    np.testing.assert_allclose(doc["losses"], reference_losses(labels, preds), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- paths


def test_directory_instead_of_file(tmp_path, good_pair):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    compute_error(2, [str(folder), str(good_pair[1])], "folder.csv", "is a directory")


def test_missing_file(tmp_path, good_pair):
    compute_error(2, [str(tmp_path / "nope.csv"), str(good_pair[1])], "nope.csv", "no such file")


def test_file_without_read_permission(tmp_path):
    path = write_csv(tmp_path / "secret.csv", LABELS.tolist(), ["a", "b", "c"])
    path.chmod(0)
    try:
        proc = run_executable_without_root_powers(["compute", str(path), str(path)])
    finally:
        path.chmod(0o600)
    assert proc.returncode == ExitStatus.DATA_ERROR, proc.stderr
    assert proc.stderr.startswith("Error: ") and "secret.csv: permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_names_with_spaces_and_unicode(tmp_path):
    lpath = write_csv(tmp_path / "my labels ü 標籤.csv", LABELS.tolist(), ["a", "b", "c"])
    ppath = tmp_path / "prédictions ✓.npy"
    np.save(ppath, PREDS)
    doc, _ = run_json(str(lpath), str(ppath), "--axis", "1")
    assert doc["labels"] == str(lpath)
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)
    bad = tmp_path / "données é.csv"
    bad.write_text("a,b,c\n1,2,3\n1,2,x\n")
    compute_error(1, [str(bad), str(ppath)], "données é.csv", "line 3")


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_fifo_input(tmp_path, fmt):
    fifo = tmp_path / f"pipe.{fmt}"
    os.mkfifo(fifo)
    ppath = tmp_path / "p.npy"
    np.save(ppath, PREDS)
    payload = (
        ("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in LABELS)).encode()
        if fmt == "csv"
        else npy_bytes(LABELS)
    )

    def feed() -> None:
        with open(fifo, "wb") as writer:
            writer.write(payload)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    doc, _ = run_json(str(fifo), str(ppath), "--axis", "1")
    thread.join(timeout=10)
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", ["csv", "npy", "npz", "parquet"])
def test_stdin_input(tmp_path, fmt):
    ppath = tmp_path / "p.npy"
    np.save(ppath, PREDS)
    if fmt == "csv":
        payload = ("a,b,c\n" + "".join(",".join(map(str, r)) + "\n" for r in LABELS)).encode()
    elif fmt == "npy":
        payload = npy_bytes(LABELS)
    elif fmt == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, x=LABELS)
        payload = buffer.getvalue()
    else:
        buffer = io.BytesIO()
        pq.write_table(columns_table(LABELS), buffer)
        payload = buffer.getvalue()
    doc, _ = run_json("-", str(ppath), "--labels-format", fmt, "--axis", "1", input=payload)
    assert doc["labels"] == "-"
    np.testing.assert_allclose(doc["losses"], EXPECTED, rtol=0, atol=1e-12)


def test_stdin_twice_is_refused():
    compute_error(2, ["-", "-", "--input-format", "csv"], "only one", input=b"1,2\n")


def test_same_file_twice(good_pair):
    doc, _ = run_json(str(good_pair[0]), str(good_pair[0]), "--axis", "1")
    assert doc["losses"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-15)
    assert doc["mean"] == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------------- values


def _nonfinite_pair(tmp_path: Path, bad: float) -> tuple[Path, Path]:
    labels = LABELS.copy()
    labels[1, 2] = bad
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, PREDS)
    return lpath, ppath


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_each_policy(tmp_path, bad):
    lpath, ppath = _nonfinite_pair(tmp_path, bad)
    name = "NaN" if math.isnan(bad) else ("+Inf" if bad > 0 else "-Inf")
    compute_error(1, [str(lpath), str(ppath)], "l.npy", "row 1, column 2", name, "--nan-policy")
    doc, result = run_json(str(lpath), str(ppath), "--nan-policy", "omit")
    assert doc["omitted"] == 1 and doc["count"] == 2
    assert doc["losses"] == pytest.approx([EXPECTED[0], EXPECTED[2]], abs=1e-12)
    assert doc["mean"] == pytest.approx((EXPECTED[0] + EXPECTED[2]) / 2, abs=1e-12)
    assert "1 vector pair(s) with NaN/Inf omitted" in result.stderr
    doc, _ = run_json(str(lpath), str(ppath), "--nan-policy", "propagate")
    assert doc["losses"][1] is None and doc["mean"] is None and doc["count"] == 3
    assert doc["losses"][0] == pytest.approx(EXPECTED[0], abs=1e-12)


def test_nonfinite_in_csv_names_column(tmp_path, good_pair):
    lpath = tmp_path / "nan.csv"
    lpath.write_text("a,b,c\n1,2,3\n4,,6\n7,8,inf\n")
    compute_error(1, [str(lpath), str(good_pair[1]), "--axis", "1"], "nan.csv", "line 3, column 'b'", "NaN")


def test_nan_mean_under_propagate_fails_threshold(tmp_path):
    lpath, ppath = _nonfinite_pair(tmp_path, math.nan)
    result = run_cli(["compute", str(lpath), str(ppath), "--nan-policy", "propagate", "--fail-above", "0.5", "--json"])
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED, result.stderr
    assert json.loads(result.stdout)["mean"] is None
    assert "not a finite number: it cannot pass --fail-above" in result.stderr and "Traceback" not in result.stderr


def test_all_zero_rows_are_loss_one_and_counted(tmp_path):
    labels = LABELS.copy()
    labels[0] = 0.0
    preds = PREDS.copy()
    preds[2] = 0.0
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, preds)
    doc, result = run_json(str(lpath), str(ppath))
    assert doc["losses"][0] == 1.0 and doc["losses"][2] == 1.0
    assert doc["losses"][1] == pytest.approx(EXPECTED[1], abs=1e-12)
    assert doc["zero_vectors"] == 2
    assert "2 vector pair(s) with a zero vector" in result.stderr


def test_eps_zero_with_zero_vector_is_still_one(tmp_path):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]))
    np.save(ppath, np.array([[1.0, 2.0], [0.0, 0.0], [1e-300, 1e-300]]))
    doc, _ = run_json(str(lpath), str(ppath), "--eps", "0")
    assert doc["losses"][:2] == [1.0, 1.0]
    assert doc["losses"][2] == pytest.approx(0.0, abs=1e-12)
    assert doc["zero_vectors"] == 2


@pytest.mark.parametrize("magnitude", [1e200, 1e300, 1e307])
def test_huge_magnitudes(tmp_path, magnitude):
    rng = np.random.default_rng(11)
    labels = rng.uniform(-1, 1, size=(6, 5)) * magnitude
    preds = rng.uniform(-1, 1, size=(6, 5)) * magnitude
    preds[0] = labels[0] * 3.0 if magnitude < 1e300 else labels[0]  # same direction: loss 0
    preds[1] = -labels[1]  # opposite: loss 2
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, preds)
    expected = reference_losses(labels, preds)
    with np.errstate(all="ignore"):  # the naive formula fails here, as TF does
        naive = 1 - (labels * preds).sum(1) / np.sqrt((labels**2).sum(1)) / np.sqrt((preds**2).sum(1))
    assert not np.isfinite(naive).all() or magnitude == 1e200
    doc, _ = run_json(str(lpath), str(ppath))
    np.testing.assert_allclose(doc["losses"], expected, rtol=0, atol=1e-12)
    assert doc["losses"][0] == pytest.approx(0.0, abs=1e-15)
    assert doc["losses"][1] == pytest.approx(2.0, abs=1e-15)


def test_huge_magnitudes_in_csv(tmp_path):
    lpath = write_csv(tmp_path / "l.csv", [["1e300", "2e300", "-3e300"]], ["a", "b", "c"])
    ppath = write_csv(tmp_path / "p.csv", [["2e300", "1e300", "1e300"]], ["a", "b", "c"])
    doc, _ = run_json(str(lpath), str(ppath), "--axis", "1")
    assert doc["losses"] == pytest.approx([reference_loss([1, 2, -3], [2, 1, 1])], abs=1e-12)


def test_tiny_magnitudes_with_eps_zero(tmp_path):
    rng = np.random.default_rng(12)
    labels = rng.uniform(-1, 1, size=(5, 4)) * 1e-300
    preds = rng.uniform(-1, 1, size=(5, 4)) * 1e-300
    labels[0, :] = [5e-324, 0.0, 0.0, 0.0]  # a single subnormal entry
    preds[0, :] = [5e-324, 5e-324, 0.0, 0.0]
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, preds)
    with np.errstate(all="ignore"):
        naive = 1 - (labels * preds).sum(1) / np.sqrt((labels**2).sum(1)) / np.sqrt((preds**2).sum(1))
    assert np.isnan(naive).any()  # 0/0 in a naive formula
    doc, _ = run_json(str(lpath), str(ppath), "--eps", "0")
    np.testing.assert_allclose(doc["losses"], reference_losses(labels, preds, eps=0.0), rtol=0, atol=1e-12)
    assert doc["losses"][0] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-12)
    # with the default eps, such short vectors follow TF's l2_normalize: cos ~ 0, loss ~ 1
    doc, _ = run_json(str(lpath), str(ppath))
    np.testing.assert_allclose(doc["losses"], reference_losses(labels, preds), rtol=0, atol=1e-12)
    np.testing.assert_allclose(doc["losses"], 1.0, atol=1e-12)


def test_float16_with_zero_rows(tmp_path):
    labels = np.array([[0, 0, 0], [1, 2, 3], [60000, 60000, 60000]], dtype=np.float16)
    preds = np.array([[1, 2, 3], [0, 0, 0], [60000, -60000, 1]], dtype=np.float16)
    with np.errstate(over="ignore"):
        assert np.isinf((labels**2).sum(1)).any()  # would overflow in float16
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, preds)
    doc, _ = run_json(str(lpath), str(ppath))
    assert None not in doc["losses"]
    assert doc["losses"][:2] == [1.0, 1.0]
    assert doc["losses"][2] == pytest.approx(reference_loss(labels[2], preds[2]), abs=1e-12)
    assert doc["zero_vectors"] == 2


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint64"])
def test_integer_overflow_when_squared(tmp_path, dtype):
    info = np.iinfo(dtype)
    big = info.max
    small = info.min if info.min < 0 else 1
    labels = np.array([[big, big, small], [big, 1, 0]], dtype=dtype)
    preds = np.array([[big, small, big], [big, big, big]], dtype=dtype)
    with np.errstate(all="ignore"):
        own_type = (labels * labels).sum(1)
    assert (own_type != (labels.astype(object) ** 2).sum(1)).any()  # squaring in the own type overflows
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, labels)
    np.save(ppath, preds)
    doc, _ = run_json(str(lpath), str(ppath))
    expected = [
        reference_loss([int(v) for v in lr], [int(v) for v in pr]) for lr, pr in zip(labels, preds, strict=True)
    ]
    np.testing.assert_allclose(doc["losses"], expected, rtol=0, atol=1e-9)


# ---------------------------------------------------------------- shapes


def test_different_row_counts_npy(tmp_path):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, LABELS)
    np.save(ppath, PREDS[:2])
    compute_error(1, [str(lpath), str(ppath)], "shapes differ", "l.npy (3, 3)", "p.npy (2, 3)")


def test_different_row_counts_csv(tmp_path):
    lpath = write_csv(tmp_path / "l.csv", LABELS.tolist(), ["a", "b", "c"])
    ppath = write_csv(tmp_path / "p.csv", PREDS[:2].tolist(), ["a", "b", "c"])
    compute_error(1, [str(lpath), str(ppath), "--axis", "1"], "row counts differ", "labels has 1 more row", "p.csv")


def test_different_widths(tmp_path):
    lpath = write_csv(tmp_path / "l.csv", LABELS.tolist(), ["a", "b", "c"])
    ppath = tmp_path / "p.npy"
    np.save(ppath, PREDS[:, :2])
    compute_error(1, [str(lpath), str(ppath)], "shapes differ", "l.csv (?, 3)", "p.npy (3, 2)")


def test_different_ranks(tmp_path):
    lpath, ppath = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(lpath, np.ones((2, 3, 4)))
    np.save(ppath, np.ones((2, 12)))
    compute_error(1, [str(lpath), str(ppath)], "shapes differ", "(2, 3, 4)", "(2, 12)")


def test_zero_width_vectors(tmp_path):
    lpath = tmp_path / "empty_width.npy"
    np.save(lpath, np.ones((3, 0)))
    compute_error(1, [str(lpath), str(lpath)], "empty_width.npy", "length 0")


def test_zero_rows_npy(tmp_path):
    lpath = tmp_path / "no_rows.npy"
    np.save(lpath, np.ones((0, 3)))
    compute_error(1, [str(lpath), str(lpath)], "no_rows.npy", "has no rows")


def test_axis_out_of_range_is_usage(tmp_path):
    lpath = tmp_path / "l.npy"
    np.save(lpath, LABELS)
    compute_error(2, [str(lpath), str(lpath), "--axis", "5"], "axis 5", "-2 to 1")


# ---------------------------------------------------------------- found by fuzzing


def test_csv_bare_carriage_return_in_first_line(tmp_path, good_pair):
    bad = tmp_path / "cr0.csv"
    bad.write_bytes(b"\r0")
    result = run_cli(["compute", str(bad), str(good_pair[1])])
    assert result.exit_code == ExitStatus.DATA_ERROR and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {bad}: ")


def test_csv_ragged_line_that_is_not_utf8_prints_nothing_else(tmp_path, good_pair):
    bad = tmp_path / "bad2.csv"
    bad.write_bytes(b"a,b,c\n1,2,3\n\xff\xfe\n4,5,6\n")
    line = compute_error(1, [str(bad), str(good_pair[1])], "bad2.csv", "line 3", "not UTF-8", "0xff")
    assert run_cli(["compute", str(bad), str(good_pair[1])]).stderr == line + "\n"


def test_npy_header_promising_a_huge_array(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (2**40, 3)})
    liar = tmp_path / "liar.npy"
    liar.write_bytes(buffer.getvalue() + b"\0" * 64)
    compute_error(1, [str(liar), str(liar)], "liar.npy", "truncated", "header promises")


def test_parquet_corrupt_list_column_data(tmp_path):
    path = write_parquet(tmp_path / "list.parquet", pa.table({"v": [[1.0, 2.0]] * 50}), compression="NONE")
    data = bytearray(path.read_bytes())
    data[4:40] = b"\xff" * 36  # the first data page header
    path.write_bytes(bytes(data))
    compute_error(1, [str(path), str(path)], "list.parquet")


def _npz_with_raw_deflate(path: Path, raw: bytes, size: int) -> None:
    """An .npz whose member x.npy holds ``raw`` as its deflate stream (``size`` bytes inflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", raw)
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    for at, value in ((8, 8), (22, size)):  # local header: method, uncompressed size
        data[at : at + (2 if at == 8 else 4)] = value.to_bytes(2 if at == 8 else 4, "little")
    for at, value in ((10, 8), (24, size)):  # central directory: method, uncompressed size
        data[central + at : central + at + (2 if at == 10 else 4)] = value.to_bytes(2 if at == 10 else 4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "data"])
def test_npz_corrupt_deflate_stream(tmp_path, where):
    payload = npy_bytes(np.random.default_rng(0).normal(size=(3000, 8)))
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    cut = 0 if where == "header" else len(payload) // 2
    raw = compressor.compress(payload[:cut]) + compressor.flush(zlib.Z_FULL_FLUSH) + b"\xff" * 64  # bad block type
    path = tmp_path / "deflate.npz"
    _npz_with_raw_deflate(path, raw, len(payload))
    line = compute_error(1, [str(path), str(path)], "deflate.npz")
    assert "invalid block type" in line


def test_npz_unsupported_zip_version(tmp_path):
    path = tmp_path / "future.npz"
    np.savez_compressed(path, x=np.ones((10, 3)))
    data = bytearray(path.read_bytes())
    data[4] = 0xFF  # "version needed to extract" in the local header
    data[data.rfind(b"PK\x01\x02") + 6] = 0xFF  # and in the central directory
    path.write_bytes(bytes(data))
    compute_error(1, [str(path), str(path)], "future.npz", "zip file version")


@pytest.mark.parametrize("flag", [0x1, 0x20], ids=["encrypted", "patched"])
def test_npz_member_flags_it_cannot_read(tmp_path, flag):
    path = tmp_path / "flagged.npz"
    np.savez(path, x=np.ones((10, 3)))
    data = bytearray(path.read_bytes())
    data[6] |= flag  # general purpose flags, local header
    data[data.rfind(b"PK\x01\x02") + 8] |= flag  # and central directory
    path.write_bytes(bytes(data))
    compute_error(1, [str(path), str(path)], "flagged.npz", "cannot be read")


@pytest.mark.parametrize("how", ["plain", "gzip", "stdin"])
@pytest.mark.parametrize("header", [True, False])
def test_csv_first_line_longer_than_the_peek(tmp_path, how, header):
    """A header (or first row) over 64 KiB used to be cut: 'line 2 has 12000 fields, expected 2979'."""
    cols = 20000
    labels = np.random.default_rng(5).integers(-9, 10, size=(3, cols)).astype(np.float64)  # exact sums
    names = [f"feature_{i:05d}" for i in range(cols)] if header else None
    text = write_csv(tmp_path / "wide.csv", labels.tolist(), names).read_bytes()
    assert len(text.split(b"\n")[0]) > 64 * 1024
    preds = tmp_path / "p.npy"
    np.save(preds, labels[::-1].copy())
    if how == "stdin":
        doc, _ = run_json("-", str(preds), "--labels-format", "csv", "--axis", "1", input=text)
    else:
        lpath = tmp_path / ("wide.csv.gz" if how == "gzip" else "wide.csv")
        lpath.write_bytes(gzip.compress(text) if how == "gzip" else text)
        doc, _ = run_json(str(lpath), str(preds), "--axis", "1")
    assert doc["shape"] == [3, cols]
    reversed_ = labels[::-1]
    expected = 1 - (labels * reversed_).sum(1) / np.sqrt((labels**2).sum(1) * (reversed_**2).sum(1))
    np.testing.assert_allclose(doc["losses"], expected, rtol=0, atol=1e-12)


def test_parquet_zero_rows_list_column(tmp_path):
    path = write_parquet(tmp_path / "none_list.parquet", pa.table({"v": pa.array([], pa.list_(pa.float64()))}))
    compute_error(1, [str(path), str(path)], "none_list.parquet", "has no rows")


def test_parquet_only_null_vectors(tmp_path):
    path = write_parquet(tmp_path / "nulls.parquet", pa.table({"v": pa.array([None, None], pa.list_(pa.float64()))}))
    compute_error(1, [str(path), str(path), "--nan-policy", "omit"], "nulls.parquet", "'v'", "null")


def test_parquet_empty_vectors(tmp_path):
    path = write_parquet(tmp_path / "empty.parquet", pa.table({"v": pa.array([[], []], pa.list_(pa.float64()))}))
    compute_error(1, [str(path), str(path)], "empty.parquet", "length 0")
