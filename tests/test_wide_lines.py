"""CSV/TSV lines of very many cells: read with memory that follows their bytes, or refused.

pyarrow's CSV reader keeps kilobytes per column, so a file of 125,000 columns took
gigabytes; such files are read by :mod:`cosloss_cli.io.wide`, which must give the
same numbers and the same errors as the pyarrow path. A line over ``--max-line-bytes``
is refused with its line number, width and the limit.
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.io import delimited
from tests.conftest import property_settings, run_cli, run_executable
from tests.oracle import reference_losses

GIB = 1 << 30


def limited(gib: float = 1.0):
    """A ``preexec_fn`` that caps the child's address space (RLIMIT_AS)."""
    size = int(gib * GIB)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def _write(path: Path, rows: np.ndarray, header: bool = True) -> Path:
    lines = [",".join(f"c{i}" for i in range(rows.shape[1]))] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _compute(*args: str) -> tuple[int, dict | None, str]:
    result = run_cli(["compute", *args, "--json", "--confidence", "0"])
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def test_wide_file_matches_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    labels, predictions = rng.standard_normal((2, 5, 3000))
    code, document, _ = _compute(str(_write(tmp_path / "l.csv", labels)), str(_write(tmp_path / "p.csv", predictions)))
    assert code == 0
    assert document is not None
    np.testing.assert_allclose(document["losses"], reference_losses(labels, predictions, axis=1), rtol=1e-12)


def test_wide_file_with_ids_quotes_gzip_and_empty_lines(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    labels, predictions = rng.standard_normal((2, 4, 2500))
    header = "id," + ",".join(f"c{i}" for i in range(2500))
    for name, rows in (("l", labels), ("p", predictions)):
        lines = [header]
        for r, row in enumerate(rows):
            cells = [repr(float(v)) for v in row]
            if r == 1:
                cells = [f'"{c}"' for c in cells]  # quoted numbers, as csv.QUOTE_ALL writes them
            lines.append(f'"row,{r}",' + ",".join(cells))
            lines.append("")  # empty lines are skipped, as pyarrow skips them
        with gzip.open(tmp_path / f"{name}.csv.gz", "wt") as handle:
            handle.write("\r\n".join(lines) + "\r\n")
    result = run_cli(["compute", str(tmp_path / "l.csv.gz"), str(tmp_path / "p.csv.gz"), "--json", "--top", "1"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    expected = reference_losses(labels, predictions, axis=1)
    np.testing.assert_allclose(document["losses"], expected, rtol=1e-12)
    assert document["worst"][0]["id"] == f"row,{int(np.argmax(expected))}"


def test_wide_file_from_stdin(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    labels, predictions = rng.standard_normal((2, 3, 2100))
    _write(tmp_path / "l.csv", labels)
    p = _write(tmp_path / "p.csv", predictions)
    result = run_cli(
        ["compute", "-", str(p), "--labels-format", "csv", "--json"], input=(tmp_path / "l.csv").read_bytes()
    )
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(
        json.loads(result.stdout)["losses"], reference_losses(labels, predictions, axis=1), rtol=1e-12
    )


def test_wide_file_names_a_bad_cell_and_a_ragged_line(tmp_path: Path) -> None:
    rows = np.ones((6, 3000))
    good = _write(tmp_path / "good.csv", rows)
    lines = good.read_text().splitlines()
    cells = lines[4].split(",")
    cells[2500] = "abc"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:4], ",".join(cells), *lines[5:]]) + "\n")
    code, _, stderr = _compute(str(bad), str(good))
    assert code == 1
    assert "line 5, column 'c2500': 'abc' is not a number" in stderr
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join([*lines[:3], lines[3] + ",1", *lines[4:]]) + "\n")
    code, _, stderr = _compute(str(good), str(ragged))
    assert code == 1
    assert "line 4 has 3001 fields, expected 3000" in stderr


@pytest.mark.parametrize("where", ["header", "data", "narrow file"])
def test_a_line_over_the_limit_is_refused_with_its_line_width_and_limit(tmp_path: Path, where: str) -> None:
    rows = np.ones((4, 3 if where == "narrow file" else 3000))
    good = _write(tmp_path / "good.csv", rows)
    lines = good.read_text().splitlines()
    if where == "header":
        lines[0] += ",x" * 300_000
        number = 1
    else:
        lines[2] += ",1" * 300_000
        number = 3
    long = tmp_path / "long.csv"
    long.write_text("\n".join(lines) + "\n")
    result = run_cli(["compute", str(long), str(good), "--max-line-bytes", "500000"])
    assert result.exit_code == 1
    assert f"line {number} is " in result.stderr
    assert "over the limit of 500,000 bytes per line" in result.stderr
    assert "--max-line-bytes" in result.stderr
    assert [line.startswith("Error:") for line in result.stderr.splitlines()].count(True) == 1


def test_a_gzip_bomb_without_line_ends_is_refused_after_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        handle.write(b"1," * (8 << 20))  # 16 MB of one line, 16 KB on disk
    result = run_cli(["compute", str(bomb), str(bomb), "--max-line-bytes", "1000000"])
    assert result.exit_code == 1
    assert "line 1 is more than 1,000,000 bytes long" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_a_line_of_125000_cells_fits_in_a_gibibyte(tmp_path: Path) -> None:
    """On pyarrow's reader this line cost over a gigabyte per file (kilobytes per column)."""
    rng = np.random.default_rng(10)
    labels, predictions = rng.standard_normal((2, 2, 125_000)).round(3)
    l_path = _write(tmp_path / "l.csv", labels, header=False)
    p_path = _write(tmp_path / "p.csv", predictions, header=False)
    proc = run_executable(["compute", str(l_path), str(p_path), "--json"], preexec_fn=limited())
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(
        json.loads(proc.stdout)["losses"], reference_losses(labels, predictions, axis=1), rtol=1e-12
    )


_CELLS = st.sampled_from(
    ["1", "-2.5", "3e2", ".5", " 4", "5 ", "", "NA", "nan", "inf", "x", '"6"', "1,5", "\x01", "0x1", "+7", "1_0"]
)


@given(st.lists(st.lists(_CELLS, min_size=3, max_size=3), min_size=1, max_size=4), st.sampled_from([",", ";"]))
@property_settings(60)
def test_the_wide_reader_agrees_with_pyarrows(rows: list[list[str]], delimiter: str) -> None:
    """Each file gives the same losses or the same exit status through both readers."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.csv"
        body = "\n".join(delimiter.join(row) for row in rows)
        path.write_text(delimiter.join(["a", "b", "c"]) + "\n" + body + "\n")
        other = Path(folder) / "y.csv"
        other.write_text("a,b,c\n" + "\n".join("1,2,3" for _ in rows) + "\n")
        args = [str(path), str(other), "--delimiter", delimiter, "--nan-policy", "propagate"]
        narrow = _compute(*args)
        saved = delimited.WIDE_COLUMNS
        delimited.WIDE_COLUMNS = 2
        try:
            wide = _compute(*args)
        finally:
            delimited.WIDE_COLUMNS = saved
    assert wide[0] == narrow[0], (wide[2], narrow[2])
    if narrow[1] is not None and wide[1] is not None:
        assert wide[1]["losses"] == narrow[1]["losses"]
