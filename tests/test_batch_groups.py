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


DRAWN = ["--resamples", "300", "--seed", "7", "--confidence", "0.9"]


@pytest.mark.parametrize("draw", [[], DRAWN], ids=["computed", "drawn"])
def test_each_pooled_group_has_the_interval_compute_draws_on_the_rows_together(
    pairs: tuple[Path, pd.DataFrame], tmp_path: Path, draw: list[str]
) -> None:
    """Every figure of each pooled group, its interval too, is compute's on the pairs' rows in one file."""
    root, _ = pairs
    for side in ("labels", "predictions"):  # the pairs in name order, as one file
        frames = [pd.read_parquet(path) for path in sorted((root / side).glob("p*.parquet"))]
        pd.concat(frames, ignore_index=True).to_parquet(tmp_path / f"{side}.parquet", index=False)
    options = ["--group-by", "lang", "--exclude-columns", "bucket,flag", *draw, "--json", "-q"]
    batch = run_cli(["batch", str(root / "labels"), str(root / "predictions"), "-j", "1", *options])
    assert batch.exit_code == ExitStatus.OK, batch.stderr
    compute = run_cli(["compute", str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), *options])
    assert compute.exit_code == ExitStatus.OK, compute.stderr
    pooled, alone = json.loads(batch.stdout)["overall"]["groups"], json.loads(compute.stdout)["groups"]
    assert [group["key"] for group in pooled] == [group["key"] for group in alone]
    for mine, theirs in zip(pooled, alone, strict=True):
        assert mine["ci_low"] is not None and mine["ci_low"] < mine["mean"] < mine["ci_high"]
        for figure in (*FIGURES, "ci_low", "ci_high"):
            assert mine[figure] == pytest.approx(theirs[figure], rel=1e-12, abs=1e-15), figure


def _pair_groups(rng: np.random.Generator, rows: int, groups: int) -> tuple[list[tuple[int]], np.ndarray, np.ndarray]:
    """One pair's keys (a shuffled subset, as a pair has its own), codes into them and losses."""
    keys = rng.permutation(groups)[: max(1, groups - 1)]
    codes = rng.integers(0, keys.size, rows)
    return [(int(key),) for key in keys], codes, rng.gamma(2.0, 0.05, rows)


def _pooled(memory: int, pairs: int, rows: int, groups: int, confidence: float = 0.95) -> tuple[dict, ...]:
    from cosloss_cli.batch.groups import PooledGroups

    rng = np.random.default_rng(3)
    store = PooledGroups(memory_losses=memory)
    try:
        for number in range(pairs):
            keys, codes, losses = _pair_groups(rng, rows, groups)
            store.add(f"p{number}", ("g",), keys, codes, losses)
        found, _ = store.figures(confidence=confidence, resamples=None, seed=0)
    finally:
        store.close()
    assert found is not None
    return found


def test_spilled_buckets_give_the_figures_held_in_memory() -> None:
    """Spilled to disk and summarized a bucket of groups at a time: the same figures to the bit."""
    held = _pooled(memory=10**9, pairs=12, rows=300, groups=30)
    spilled = _pooled(memory=500, pairs=12, rows=300, groups=30)
    assert held == spilled
    assert held[0]["ci_low"] is not None


def test_a_group_larger_than_a_bucket_is_summarized_from_its_file() -> None:
    """Its percentiles exact, its sums to rounding, its interval the normal one (a relative 1/n off)."""
    held = _pooled(memory=10**9, pairs=6, rows=400, groups=2)
    spilled = _pooled(memory=300, pairs=6, rows=400, groups=2)
    for mine, theirs in zip(spilled, held, strict=True):
        assert mine["key"] == theirs["key"] and mine["count"] == theirs["count"] > 300
        for figure in ("min", "median", "max", "p05", "p25", "p75", "p95", "p99"):
            assert mine[figure] == theirs[figure], figure
        for figure in ("mean", "std"):
            assert mine[figure] == pytest.approx(theirs[figure], rel=1e-12), figure
        for figure in ("ci_low", "ci_high"):
            assert mine[figure] == pytest.approx(theirs[figure], rel=0.02), figure


def test_the_memory_of_pooled_groups_does_not_grow_with_the_pairs() -> None:
    """Peak of adding the pairs and summarizing them: 4 times the pairs, about the same peak."""
    import tracemalloc

    def peak(pairs: int) -> int:
        tracemalloc.start()
        try:
            _pooled(memory=20_000, pairs=pairs, rows=5_000, groups=200, confidence=0.0)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    once, four = peak(10), peak(40)
    assert four < 1.3 * once, (once, four)
