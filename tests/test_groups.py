"""``--group-by``: each group's figures equal pandas' groupby on the oracle's losses.

Files are written by pandas, polars and pyarrow with text, integer, boolean and null
keys, rows shuffled; a group column is never a vector component.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.stats.groups import MAX_GROUPS_WITH_CI, group_rows, summaries
from cosloss_cli.stats.intervals import mean_ci
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses

ROWS, DIM = 400, 6
COLUMNS = [f"f{i}" for i in range(DIM)]


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    rng = np.random.default_rng(8)
    labels = rng.normal(size=(ROWS, DIM))
    predictions = labels + rng.normal(size=labels.shape)
    keys = pd.DataFrame(
        {
            "lang": rng.choice(np.array(["en", "de", "fr", None], dtype=object), ROWS),
            "bucket": rng.integers(0, 3, ROWS),
            "flag": rng.random(ROWS) < 0.3,
        }
    )
    return {"labels": labels, "predictions": predictions, "keys": keys, "losses": reference_losses(labels, predictions)}


def expected_groups(losses: np.ndarray, keys: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    frame = keys[names].assign(loss=losses)
    grouped = frame.groupby(names, dropna=False, sort=True)["loss"]
    return pd.DataFrame(
        {
            "count": grouped.count(),
            "mean": grouped.mean(),
            "std": grouped.std(ddof=0),
            "min": grouped.min(),
            "median": grouped.median(),
            "max": grouped.max(),
            "p05": grouped.quantile(0.05),
            "p95": grouped.quantile(0.95),
            "p99": grouped.quantile(0.99),
        }
    ).reset_index()


def check(document: dict, expected: pd.DataFrame, names: list[str]) -> None:
    groups = document["groups"]
    assert len(groups) == len(expected)
    for group, (_, row) in zip(groups, expected.iterrows(), strict=True):
        for name in names:
            want = row[name]
            want = None if (isinstance(want, float) and np.isnan(want)) or want is None else want
            assert group["key"][name] == (want.item() if isinstance(want, np.generic) else want)
        assert group["count"] == row["count"]
        for key in ("mean", "std", "min", "median", "max", "p05", "p95", "p99"):
            assert group[key] == pytest.approx(row[key], rel=1e-12, abs=1e-15), key


@pytest.mark.parametrize("writer", ["pandas-parquet", "polars-parquet", "pandas-csv", "pyarrow-feather"])
def test_groups_equal_pandas_groupby(data: dict, tmp_path: Path, writer: str) -> None:
    labels = pd.DataFrame(data["labels"], columns=COLUMNS)
    frame = pd.concat([labels, data["keys"][["lang", "bucket"]]], axis=1)
    predictions = pd.DataFrame(data["predictions"], columns=COLUMNS)
    if writer == "pyarrow-feather":
        pytest.importorskip("pyarrow.feather")
        from cosloss_cli.io import detect_format

        try:
            detect_format("x.feather", None)
        except Exception:
            pytest.skip("Feather input is not read here")
    suffix = {
        "pandas-parquet": "parquet",
        "polars-parquet": "parquet",
        "pandas-csv": "csv",
        "pyarrow-feather": "feather",
    }[writer]
    label_path, prediction_path = tmp_path / f"l.{suffix}", tmp_path / f"p.{suffix}"
    if writer == "pandas-parquet":
        frame.to_parquet(label_path, index=False)
        predictions.to_parquet(prediction_path, index=False)
    elif writer == "polars-parquet":
        import polars as pl

        pl.from_pandas(frame).write_parquet(label_path)
        pl.from_pandas(predictions).write_parquet(prediction_path)
    elif writer == "pandas-csv":
        frame.to_csv(label_path, index=False)
        predictions.to_csv(prediction_path, index=False)
    else:
        frame.to_feather(label_path)
        predictions.to_feather(prediction_path)
    names = ["lang", "bucket"]
    result = run_cli(["compute", str(label_path), str(prediction_path), "--group-by", ",".join(names), "--json", "-q"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    np.testing.assert_allclose(document["losses"], data["losses"], rtol=1e-12, atol=1e-15)  # keys not in the vectors
    keys = data["keys"].copy()
    if writer == "pandas-csv":  # CSV reads back an empty cell: the null group
        keys["lang"] = keys["lang"].where(keys["lang"].notna(), None)
    check(document, expected_groups(data["losses"], keys, names), names)


def test_boolean_keys_and_rows_matched_by_id(data: dict, tmp_path: Path) -> None:
    ids = [f"q{i:03d}" for i in range(ROWS)]
    labels = pd.DataFrame(data["labels"], columns=COLUMNS).assign(id=ids, flag=data["keys"]["flag"])
    predictions = pd.DataFrame(data["predictions"], columns=COLUMNS).assign(id=ids)
    labels.to_parquet(tmp_path / "l.parquet", index=False)
    predictions.sample(frac=1.0, random_state=3).to_parquet(tmp_path / "p.parquet", index=False)
    args = ["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--join-on", "id"]
    result = run_executable([*args, "--group-by", "flag", "--json", "--no-losses", "-q"])
    assert result.returncode == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    check(document, expected_groups(data["losses"], data["keys"], ["flag"]), ["flag"])
    assert [group["key"]["flag"] for group in document["groups"]] == [False, True]


def test_each_groups_interval_is_the_overall_method(data: dict) -> None:
    losses = data["losses"]
    groups = group_rows({"bucket": data["keys"]["bucket"].to_numpy()})
    found = summaries(losses, groups, confidence=0.9, resamples=None, seed=0)
    for group, entry in enumerate(found):
        low, high = mean_ci(losses[groups.codes == group], confidence=0.9, resamples=None, seed=0)
        assert (entry["ci_low"], entry["ci_high"]) == pytest.approx((low, high), rel=1e-12)


def test_omitted_rows_are_left_out_of_their_group(data: dict) -> None:
    losses = data["losses"].copy()
    losses[:10] = np.nan
    groups = group_rows({"bucket": data["keys"]["bucket"].to_numpy()})
    found = summaries(losses, groups, confidence=0.0, resamples=None, seed=0)
    expected = expected_groups(losses, data["keys"], ["bucket"])
    assert [entry["count"] for entry in found] == expected["count"].tolist()
    assert [entry["mean"] for entry in found] == pytest.approx(expected["mean"].tolist(), rel=1e-12)


def test_table_errors_and_limits(data: dict, tmp_path: Path) -> None:
    frame = pd.concat([pd.DataFrame(data["labels"], columns=COLUMNS), data["keys"][["lang"]]], axis=1)
    frame.to_parquet(tmp_path / "l.parquet", index=False)
    pd.DataFrame(data["predictions"], columns=COLUMNS).to_parquet(tmp_path / "p.parquet", index=False)
    base = ["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")]
    table = run_cli([*base, "--group-by", "lang", "-q"])
    assert table.exit_code == ExitStatus.OK
    assert "by lang: 4 groups" in table.stdout and "│ null" in table.stdout
    missing = run_cli([*base, "--group-by", "nope"])
    assert missing.exit_code == ExitStatus.USAGE_ERROR and "'nope'" in missing.stderr
    np.save(tmp_path / "l.npy", data["labels"])
    np.save(tmp_path / "p.npy", data["predictions"])
    npy = run_cli(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--group-by", "lang"])
    assert npy.exit_code == ExitStatus.USAGE_ERROR and "no named columns" in npy.stderr
    rows = pd.DataFrame(data["labels"], columns=COLUMNS).assign(row=np.arange(ROWS))
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    many = run_cli(["compute", str(tmp_path / "rows.parquet"), str(tmp_path / "p.parquet"), "--group-by", "row"])
    assert many.exit_code == ExitStatus.OK
    assert f"the interval of each group's mean is computed for up to {MAX_GROUPS_WITH_CI} groups" in many.stderr


def test_the_json_with_groups_matches_its_schema(data: dict, tmp_path: Path) -> None:
    from .test_schemas import validate

    frame = pd.concat([pd.DataFrame(data["labels"], columns=COLUMNS), data["keys"][["lang"]]], axis=1)
    frame.to_parquet(tmp_path / "l.parquet", index=False)
    pd.DataFrame(data["predictions"], columns=COLUMNS).to_parquet(tmp_path / "p.parquet", index=False)
    result = run_cli(
        ["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--group-by", "lang", "--json"]
    )
    validate(json.loads(result.stdout), "compute")


@pytest.mark.parametrize("max_rows", [0, 1, 2])
def test_the_table_and_the_report_cut_the_same_groups(tmp_path: Path, max_rows: int) -> None:
    """Many groups: the first and last ``--max-rows`` (at least one) and a row of dots, in both places."""
    from cosloss_cli.render.result import first_and_last

    groups = list(range(9))
    head, tail, left_out = first_and_last(groups, max_rows)
    keep = max(max_rows, 1)
    assert (head, tail, left_out) == (groups[:keep], groups[-keep:], 9 - 2 * keep)
    assert first_and_last(groups[:4], 2) == ([0, 1, 2, 3], [], 0)

    rng = np.random.default_rng(7)
    labels = rng.standard_normal((45, 3))
    frame = pd.DataFrame(labels, columns=["a", "b", "c"])
    frame["g"] = np.repeat(np.arange(9), 5)
    frame.to_parquet(tmp_path / "l.parquet")
    frame.assign(a=frame["a"] + 0.1).to_parquet(tmp_path / "p.parquet")
    table = run_cli(
        ["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--group-by", "g"]
        + ["--max-rows", str(max_rows), "-q"]
    )
    assert table.exit_code == 0, table.output
    groups_table = table.output.split("by g: 9 groups", 1)[1]
    keys = [line.split("│")[1].strip() for line in groups_table.splitlines() if line.count("│") > 2]
    assert keys == [*map(str, range(keep)), "...", *map(str, range(9 - keep, 9))]
