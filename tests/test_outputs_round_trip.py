"""Outputs read back as written: CSV fields quoted when they must be, names escaped in tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import run_cli
from .oracle import reference_losses

IDS = ["plain", "car\rriage", "new\nline", "com,ma", 'quo"te', "esc\x1b[31mape"]
LABELS = np.random.default_rng(5).normal(size=(len(IDS), 3))
PREDS = np.random.default_rng(6).normal(size=(len(IDS), 3))


@pytest.fixture
def with_ids(tmp_path: Path) -> tuple[str, str]:
    paths = []
    for name, values in (("labels", LABELS), ("preds", PREDS)):
        table = pa.table({"id": IDS, **{f"f{i}": values[:, i] for i in range(3)}})
        pq.write_table(table, tmp_path / f"{name}.parquet")
        paths.append(str(tmp_path / f"{name}.parquet"))
    return paths[0], paths[1]


def test_compute_csv_quotes_a_lone_carriage_return(with_ids: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "losses.csv"
    result = run_cli(["compute", *with_ids, "--id-column", "id", "--format", "csv", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    for text in (out.read_bytes(), result.stdout.encode()):
        back = pd.read_csv(pd.io.common.BytesIO(text), dtype={"id": str}, keep_default_na=False)
        assert back["id"].tolist() == IDS
        np.testing.assert_allclose(back["loss"], reference_losses(LABELS, PREDS, axis=1), rtol=1e-15)


def test_csv_without_special_characters_is_unchanged(tmp_path: Path) -> None:
    from cosloss_cli.render.output import csv_writer

    text = __import__("io").StringIO()
    csv_writer(text).writerows([["id", "loss"], ["a b", "0.5"], ["c,d", "1.0"], ["e\rf", "2"]])
    assert text.getvalue() == 'id,loss\na b,0.5\n"c,d",1.0\n"e\rf",2\n'


def test_compare_csv_round_trips_ids(with_ids: tuple[str, str]) -> None:
    labels, preds = with_ids
    result = run_cli(
        ["compare", labels, preds, labels, "--id-column", "id", "--format", "csv", "-q", "--resamples", "100"]
    )
    assert result.exit_code == 0, result.stderr
    back = pd.read_csv(pd.io.common.StringIO(result.stdout), dtype={"id": str}, keep_default_na=False)
    assert back["id"].tolist() == IDS and len(back) == len(IDS)


def test_batch_csv_round_trips_a_pair_name_with_a_carriage_return(tmp_path: Path) -> None:
    for folder, values in (("labels", LABELS), ("preds", PREDS)):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "odd\r\x1b[31mname.npy", values)
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "preds"), "--format", "csv", "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    back = pd.read_csv(pd.io.common.StringIO(result.stdout), keep_default_na=False)
    table = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "preds"), "--jobs", "1"]).stdout
    assert "\x1b" not in table and "\r" not in table and "\\x1b" in table
    assert back["name"].tolist() == ["odd\r\x1b[31mname"] and len(back) == 1
    assert back["mean"][0] == pytest.approx(reference_losses(LABELS, PREDS, axis=1).mean(), rel=1e-12)


@pytest.mark.parametrize("command", ["compute", "compare"])
def test_tables_escape_control_characters_in_ids_and_names(with_ids: tuple[str, str], command: str) -> None:
    labels, preds = with_ids
    args = (
        [labels, preds]
        if command == "compute"
        else [labels, preds, labels, "--names", "a\x1b]0;x\x07,b", "--resamples", "100"]
    )
    result = run_cli([command, *args, "--id-column", "id", "--top", "6"] if command == "compute" else [command, *args])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b" in result.stdout


def test_an_archive_of_10000_arrays_gives_a_short_error_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "many.npz", **{f"member_{i}": np.zeros(1) for i in range(10_000)})
    np.save(tmp_path / "p.npy", PREDS)
    for extra in ([], ["--key", "k" * 5000]):
        result = run_cli(["compute", str(tmp_path / "many.npz"), str(tmp_path / "p.npy"), *extra])
        assert result.exit_code == 2
        (line,) = result.stderr.splitlines()
        assert len(line) < 400 + len(str(tmp_path)), line
        assert "member_0" in line and "(10000 in all)" in line


def test_a_huge_cell_is_quoted_in_part(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n1,2\n" + "x" * 100_000 + ",3\n")
    (tmp_path / "p.csv").write_text("a,b\n1,2\n2,3\n")
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert len(line) < 400 + len(str(tmp_path)) and "(100000 characters)" in line, line
