"""``--group-by`` in NDJSON and CSV: a record per group (per group and candidate in compare).

The records hold the same figures under the same names as the JSON's groups, key columns
first; ``-o`` files keep a record per loss. A group column of the predictions files is
never a vector component, and no note calls it one.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.status import ExitStatus

from .conftest import property_settings, run_cli, run_executable
from .oracle import reference_losses
from .test_schemas import validate_lines

ROWS, DIM = 120, 5
COLUMNS = [f"f{i}" for i in range(DIM)]
#: The other key column, left out when grouping by ``lang`` alone.
BUCKET = ["--exclude-columns", "bucket"]
FIGURES = ("count", "mean", "std", "min", "median", "max", "p05", "p25", "p75", "p95", "p99", "ci_low", "ci_high")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Labels and two predictions written by pandas, every file holding the text key ``lang`` and ``bucket``."""
    root = tmp_path_factory.mktemp("group-forms")
    rng = np.random.default_rng(21)
    labels = rng.normal(size=(ROWS, DIM))
    keys = pd.DataFrame(
        {"lang": rng.choice(np.array(["en", "de", None], dtype=object), ROWS), "bucket": rng.integers(0, 2, ROWS)}
    )
    paths = {}
    for name, noise in (("labels", 0.0), ("a", 0.6), ("b", 0.8)):
        vectors = labels + noise * rng.normal(size=labels.shape)
        frame = pd.concat([pd.DataFrame(vectors, columns=COLUMNS), keys], axis=1)
        frame.to_parquet(root / f"{name}.parquet", index=False)
        frame.drop(columns=["lang", "bucket"]).to_parquet(root / f"{name}-plain.parquet", index=False)
        paths[name] = str(root / f"{name}.parquet")
        paths[f"{name}-plain"] = str(root / f"{name}-plain.parquet")
    (root / "L").mkdir()
    (root / "P").mkdir()
    for half, rows in enumerate((slice(0, 70), slice(70, None))):
        frame = pd.read_parquet(paths["labels"]).iloc[rows]
        frame.to_parquet(root / "L" / f"part{half}.parquet", index=False)
        pd.read_parquet(paths["a"]).iloc[rows].to_parquet(root / "P" / f"part{half}.parquet", index=False)
    a = pd.read_parquet(paths["a"])[COLUMNS].to_numpy()
    return {
        **paths,
        "root": root,
        "keys": keys,
        "losses": reference_losses(labels, a),
        "L": str(root / "L"),
        "P": str(root / "P"),
    }


def records(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def assert_rows_equal_groups(table: pd.DataFrame, groups: list[dict], names: list[str], fields: tuple) -> None:
    """Each CSV row is the JSON group at the same place: its key, then its figures."""
    assert len(table) == len(groups)
    for (_, row), group in zip(table.iterrows(), groups, strict=True):
        for name in names:
            want = group["key"][name]
            assert (pd.isna(row[name]) and want is None) or row[name] == want
        for field in fields:
            want = group[field]
            assert (pd.isna(row[field]) and want is None) or row[field] == pytest.approx(want, rel=1e-15, abs=0)


def test_compute_writes_a_record_per_group(files: dict) -> None:
    args = ["compute", files["labels"], files["a"], "--group-by", "lang,bucket", "-q"]
    document = json.loads(run_cli([*args, "--json"]).stdout)
    ndjson = run_cli([*args, "--format", "ndjson"])
    assert ndjson.exit_code == ExitStatus.OK, ndjson.stderr
    assert [json.loads(line) for line in ndjson.stdout.splitlines()] == document["groups"]
    assert validate_lines(ndjson.stdout, "compute", groups=True) == len(document["groups"]) == 6
    csv = run_cli([*args, "--format", "csv"])
    table = records(csv.stdout)
    assert list(table.columns) == ["lang", "bucket", *FIGURES]
    assert_rows_equal_groups(table, document["groups"], ["lang", "bucket"], FIGURES)
    frame = files["keys"].assign(loss=files["losses"])  # and the figures are pandas' groupby
    expected = frame.groupby(["lang", "bucket"], dropna=False, sort=True)["loss"].agg(["count", "mean", "median"])
    assert table["count"].tolist() == expected["count"].tolist()
    np.testing.assert_allclose(table["mean"], expected["mean"], rtol=1e-12)
    np.testing.assert_allclose(table["median"], expected["median"], rtol=1e-12)


def test_an_output_file_keeps_a_record_per_loss(files: dict, tmp_path: Path) -> None:
    out = tmp_path / "losses.csv"
    result = run_cli(
        ["compute", files["labels"], files["a"], "--group-by", "lang", "--format", "csv", "-o", str(out)] + BUCKET
    )
    assert result.exit_code == ExitStatus.OK, result.stderr
    losses = pd.read_csv(out)
    assert list(losses.columns) == ["index", "loss"] and len(losses) == ROWS
    np.testing.assert_allclose(losses["loss"], files["losses"], rtol=1e-12, atol=1e-15)
    assert len(records(result.stdout)) == 3


def test_a_key_named_as_a_figure_is_written_key_dot_name(files: dict, tmp_path: Path) -> None:
    frame = pd.read_parquet(files["labels"]).rename(columns={"bucket": "count"})
    frame.to_parquet(tmp_path / "labels.parquet", index=False)
    result = run_cli(["compute", str(tmp_path / "labels.parquet"), files["a-plain"], "--group-by", "count"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    csv = run_cli(["compute", str(tmp_path / "labels.parquet"), files["a-plain"], "--group-by", "count", "-f", "csv"])
    table = records(csv.stdout)
    assert list(table.columns)[:2] == ["key.count", "count"]
    assert table["key.count"].tolist() == [0, 1]


def test_compare_writes_a_record_per_group_and_candidate(files: dict) -> None:
    args = ["compare", files["labels"], files["a"], files["b"], files["a"], "--names", "a,b,c"]
    args += ["--group-by", "lang", "--max-worse-share", "0.9", "--resamples", "200", "-q", *BUCKET]
    document = json.loads(run_cli([*args, "--json"]).stdout)
    flat = [
        {"key": group["key"], "count": group["count"], "baseline": "a", **item}
        for group in document["groups"]
        for item in group["comparisons"]
    ]
    ndjson = run_cli([*args, "--format", "ndjson"])
    assert ndjson.exit_code == ExitStatus.OK, ndjson.stderr
    lines = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert len(lines) == 3 * 2 and validate_lines(ndjson.stdout, "compare", groups=True) == 6
    for line, want in zip(lines, flat, strict=True):
        assert line.pop("gates_passed") is all(gate["passed"] for gate in want["gates"])
        assert line == want
    table = records(run_cli([*args, "--format", "csv"]).stdout)
    assert list(table.columns[:4]) == ["lang", "count", "baseline", "candidate"]
    assert table["candidate"].tolist() == ["b", "c"] * 3
    fields = ("count", "mean_difference", "ci_low", "ci_high", "p_value_t", "p_value_holm", "worse_share")
    assert_rows_equal_groups(table, flat, ["lang"], fields)
    assert table["verdict"].tolist() == [item["verdict"] for item in flat]


def test_a_group_failing_a_gate_still_exits_3_in_csv(files: dict) -> None:
    args = ["compare", files["labels"], files["a"], files["b"], "--group-by", "lang", "--max-worse-share", "0"]
    result = run_executable([*args, "--format", "csv", *BUCKET])
    assert result.returncode == ExitStatus.THRESHOLD_EXCEEDED, result.stderr
    table = records(result.stdout)
    assert len(table) == 3 and not table["gates_passed"].any()
    assert "in group lang='en'" in result.stderr


def test_batch_writes_a_record_per_pooled_group(files: dict) -> None:
    args = ["batch", files["L"], files["P"], "--group-by", "lang", "-j", "1", "-q", *BUCKET]
    document = json.loads(run_cli([*args, "--json"]).stdout)
    groups = document["overall"]["groups"]
    ndjson = run_cli([*args, "--format", "ndjson"])
    assert ndjson.exit_code == ExitStatus.OK, ndjson.stderr
    assert [json.loads(line) for line in ndjson.stdout.splitlines()] == groups  # no pair lines
    assert validate_lines(ndjson.stdout, "batch", groups=True) == 3
    table = records(run_cli([*args, "--format", "csv"]).stdout)
    assert list(table.columns) == ["lang", *FIGURES]
    assert_rows_equal_groups(table, groups, ["lang"], FIGURES[:-2])
    expected = files["keys"].assign(loss=files["losses"]).groupby("lang", dropna=False)["loss"].mean()
    np.testing.assert_allclose(table["mean"], expected, rtol=1e-12)


@pytest.mark.parametrize("command", ["compute", "compare", "batch"])
def test_the_predictions_group_column_is_no_vector_component(files: dict, command: str) -> None:
    """Every file holds ``lang``: read from the labels, it is left out of the predictions too, silently."""
    if command == "batch":
        args = ["batch", files["L"], files["P"], "-j", "1"]
        plain = args
    else:
        models = [files["a"], files["b"]] if command == "compare" else [files["a"]]
        args = [command, files["labels"], *models]
        plain = [command, files["labels-plain"], *(path.replace(".parquet", "-plain.parquet") for path in models)]
    grouped = run_cli([*args, "--group-by", "lang", "--exclude-columns", "bucket", "--json"])
    assert grouped.exit_code == ExitStatus.OK, grouped.stderr
    assert "not a vector component" not in grouped.stderr
    document = json.loads(grouped.stdout)
    if command != "batch":
        reference = json.loads(run_cli([*plain, "--json"]).stdout)
        assert document["count"] == reference["count"] == ROWS
        assert document.get("mean", 0) == reference.get("mean", 0)
        assert document.get("comparisons", [{}])[0].get("mean_difference") == reference.get("comparisons", [{}])[0].get(
            "mean_difference"
        )
    else:
        assert document["overall"]["count"] == ROWS
        assert document["overall"]["mean"] == pytest.approx(float(np.mean(files["losses"])), rel=1e-12)


@property_settings(30)
@given(
    dtype=st.sampled_from(["int8", "int16", "int64", "uint8", "uint64", "bool"]),
    data=st.data(),
)
def test_integer_keys_group_as_pandas_does(dtype: str, data: st.DataObject) -> None:
    """Integer and boolean keys grouped without a sort: pandas' groups, codes and order, at the type's ends too."""
    from cosloss_cli.stats.groups import group_rows

    info = np.iinfo(dtype) if dtype != "bool" else None
    low = data.draw(st.integers(info.min, info.max)) if info else 0
    width = data.draw(st.sampled_from([1, 5, 300, 1 << 40]))
    high = min(low + width, info.max) if info else 1
    values = np.array(data.draw(st.lists(st.integers(low, high), min_size=1, max_size=40)), dtype=dtype)
    found = group_rows({"k": values})
    grouped = pd.DataFrame({"k": values}).groupby("k", sort=True)
    assert found.codes.tolist() == grouped.ngroup().tolist()
    assert [key[0] for key in found.keys] == [
        key.item() if isinstance(key, np.generic) else key for key in grouped.groups
    ]
    assert all(type(key[0]) is (bool if dtype == "bool" else int) for key in found.keys)


def test_a_numeric_key_is_read_without_pandas(tmp_path: Path) -> None:
    """pyarrow's to_numpy imports pandas (a second of a run); an integer or boolean key never needs it."""
    table = pa.table({"f0": [1.0, 2.0, 3.0], "bucket": pa.array([3, 1, 3]), "flag": [True, False, True]})
    pq.write_table(table, tmp_path / "keys.parquet")
    script = (
        "import sys\n"
        "from cosloss_cli.io import ReadOptions\n"
        "from cosloss_cli.io.group_columns import read_key_columns\n"
        "from cosloss_cli.stats.groups import group_rows\n"
        f"columns = read_key_columns({str(tmp_path / 'keys.parquet')!r}, ['bucket', 'flag'], ReadOptions())\n"
        "print(group_rows({'bucket': columns['bucket']}).keys, group_rows({'flag': columns['flag']}).keys)\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[(1,), (3,)] [(False,), (True,)]", "False"]


def test_batch_says_which_options_group_by_leaves_unused(files: dict) -> None:
    args = ["batch", files["L"], files["P"], "-j", "1"]
    alone = run_cli([*args, "--exclude-columns", "bucket,lang", "--resamples", "500", "--json"])
    assert alone.exit_code == ExitStatus.OK, alone.stderr
    assert "--resamples and --seed draw the interval of each --group-by group; ignored" in alone.stderr
    lines = run_cli([*args, *BUCKET, "--group-by", "lang", "--format", "ndjson", "--losses"])
    assert lines.exit_code == ExitStatus.OK, lines.stderr
    assert "NDJSON is a line per group" in lines.stderr and len(lines.stdout.splitlines()) == 3
