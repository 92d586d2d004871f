"""``batch --group-by``: each group's figures over every pair's losses, as pandas' groupby of them all.

A group seen in several pairs is one group; its percentiles are those of all its losses
together, not averages of the pairs'. Pairs written by pandas and pyarrow, rows shuffled,
keys text with nulls, integers and booleans.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses

DIM = 4
COLUMNS = [f"f{i}" for i in range(DIM)]
FIGURES = ("mean", "std", "min", "median", "max", "p05", "p25", "p75", "p95", "p99")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Three pairs (one with a language the others lack); every row's keys and oracle loss."""
    root = tmp_path_factory.mktemp("batch-groups")
    (root / "labels").mkdir()
    (root / "predictions").mkdir()
    rng = np.random.default_rng(5)
    rows = []
    for number, (size, languages) in enumerate([(70, ["en", "de", None]), (50, ["en", "fr"]), (40, ["de", None])]):
        labels = rng.normal(size=(size, DIM))
        predictions = labels + rng.normal(size=labels.shape)
        keys = pd.DataFrame(
            {
                "lang": rng.choice(np.array(languages, dtype=object), size),
                "bucket": rng.integers(0, 3, size),
                "flag": rng.random(size) < 0.5,
            }
        )
        frame = pd.concat([pd.DataFrame(labels, columns=COLUMNS), keys], axis=1)
        if number == 1:  # pyarrow, the rest pandas
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), root / "labels" / f"p{number}.parquet")
        else:
            frame.to_parquet(root / "labels" / f"p{number}.parquet", index=False)
        pd.DataFrame(predictions, columns=COLUMNS).to_parquet(root / "predictions" / f"p{number}.parquet")
        rows.append(keys.assign(loss=reference_losses(labels, predictions)))
    return root, pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)  # order must not matter


def check(groups: list[dict], rows: pd.DataFrame, names: list[str]) -> None:
    grouped = rows.groupby(names, dropna=False, sort=True)["loss"]
    expected = pd.DataFrame(
        {
            "count": grouped.count(),
            "mean": grouped.mean(),
            "std": grouped.std(ddof=0),
            "min": grouped.min(),
            "median": grouped.median(),
            "max": grouped.max(),
            **{f"p{q:02d}": grouped.quantile(q / 100) for q in (5, 25, 75, 95, 99)},
        }
    ).reset_index()
    assert len(groups) == len(expected)
    for group, (_, row) in zip(groups, expected.iterrows(), strict=True):
        for name in names:
            want = row[name]
            want = None if want is None or (isinstance(want, float) and np.isnan(want)) else want
            assert group["key"][name] == (want.item() if isinstance(want, np.generic) else want)
        assert group["count"] == row["count"]
        for figure in FIGURES:
            assert group[figure] == pytest.approx(row[figure], rel=1e-12, abs=1e-15), figure


@pytest.mark.parametrize("names", [["lang"], ["bucket", "flag"]], ids=["text-null", "int-bool"])
def test_pooled_groups_equal_pandas_over_all_pairs(pairs: tuple[Path, pd.DataFrame], names: list[str]) -> None:
    from .test_schemas import validate

    root, rows = pairs
    others = [name for name in ("lang", "bucket", "flag") if name not in names]
    args = ["batch", str(root / "labels"), str(root / "predictions"), "--group-by", ",".join(names)]
    result = run_cli([*args, "--exclude-columns", ",".join(others), "-j", "1", "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    validate(document, "batch")
    assert document["overall"]["count"] == len(rows)  # the key columns are no vector components
    check(document["overall"]["groups"], rows, names)


def test_worker_processes_and_the_table(pairs: tuple[Path, pd.DataFrame]) -> None:
    root, rows = pairs
    args = ["batch", str(root / "labels"), str(root / "predictions"), "--group-by", "lang"]
    args += ["--exclude-columns", "bucket,flag", "-j", "2"]
    result = run_executable([*args, "--json"])
    assert result.returncode == ExitStatus.OK, result.stderr
    check(json.loads(result.stdout)["overall"]["groups"], rows, ["lang"])
    table = run_cli(args)
    assert table.exit_code == ExitStatus.OK, table.stderr
    assert "by lang: 4 groups, pooled over every pair" in table.stdout and "│ null" in table.stdout


def test_a_pair_without_the_column_fails_alone(pairs: tuple[Path, pd.DataFrame]) -> None:
    root, _ = pairs
    result = run_cli(["batch", str(root / "labels"), str(root / "predictions"), "--group-by", "nope", "-j", "1"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "'nope'" in result.stdout + result.stderr
