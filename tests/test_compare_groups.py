"""``compare --group-by``: each group's figures equal pandas' groupby and scipy's paired tests.

The losses come from the float64 oracle; each group's counts and means are pandas'
``groupby``, its p-values scipy's ``ttest_rel`` and ``wilcoxon`` on the group's rows,
its interval the overall method on them, and Holm's adjustment an independent one over
every group and candidate. Keys are text, integers, booleans and nulls; rows shuffled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cosloss_cli.stats.intervals import mean_ci
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses

ROWS, DIM = 240, 5
COLUMNS = [f"f{i}" for i in range(DIM)]
MODELS = ("a", "b", "c")


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    rng = np.random.default_rng(21)
    labels = rng.normal(size=(ROWS, DIM))
    keys = pd.DataFrame(
        {
            "lang": rng.choice(np.array(["en", "de", "fr", None], dtype=object), ROWS),
            "bucket": rng.integers(0, 3, ROWS),
            "flag": rng.random(ROWS) < 0.4,
        }
    )
    noise = {"a": 1.0, "b": 0.8, "c": 1.1}
    predictions = {name: labels + scale * rng.normal(size=labels.shape) for name, scale in noise.items()}
    # b is worse on the French rows: a slice the overall mean hides
    french = (keys["lang"] == "fr").to_numpy()
    predictions["b"][french] = labels[french] + 2.0 * rng.normal(size=(int(french.sum()), DIM))
    losses = {name: reference_losses(labels, values) for name, values in predictions.items()}
    return {"labels": labels, "predictions": predictions, "keys": keys, "losses": losses}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, written from its definition."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def plain(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def check(document: dict, data: dict, names: list[str], models: tuple[str, ...], confidence: float = 0.95) -> None:
    """Every figure of ``document["groups"]`` against pandas, scipy and the overall interval method."""
    frame = data["keys"][names].assign(**{f"loss_{m}": data["losses"][m] for m in models})
    grouped = list(frame.groupby(names, dropna=False, sort=True))
    groups = document["groups"]
    assert len(groups) == len(grouped)
    p_values, found = [], []
    for group, (key, rows) in zip(groups, grouped, strict=True):
        key = key if isinstance(key, tuple) else (key,)
        assert group["key"] == {name: plain(value) for name, value in zip(names, key, strict=True)}
        assert group["count"] == len(rows)
        for model, entry in zip(models, group["models"], strict=True):
            assert entry["name"] == model
            assert entry["mean"] == pytest.approx(rows[f"loss_{model}"].mean(), rel=1e-12, abs=1e-15)
        base = rows[f"loss_{models[0]}"].to_numpy()
        for candidate, item in zip(models[1:], group["comparisons"], strict=True):
            c = rows[f"loss_{candidate}"].to_numpy()
            d = c - base
            assert item["candidate"] == candidate
            assert item["mean_difference"] == pytest.approx(d.mean(), rel=1e-12, abs=1e-15)
            low, high = mean_ci(d, confidence=confidence, resamples=None, seed=0)
            assert (item["ci_low"], item["ci_high"]) == pytest.approx((low, high), rel=1e-12, abs=1e-15)
            assert item["p_value_t"] == pytest.approx(stats.ttest_rel(c, base).pvalue, rel=1e-12)
            assert item["p_value_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)
            assert item["worse_count"] == int((d > 0.1).sum())
            assert item["worse_share"] == pytest.approx((d > 0.1).mean(), rel=1e-12)
            verdict = "better" if high < 0 else "worse" if low > 0 else "no clear difference"
            assert item["verdict"] == verdict
            p_values.append(stats.ttest_rel(c, base).pvalue)
            found.append(item["p_value_holm"])
    assert found == pytest.approx(holm(p_values), rel=1e-12)


def write(data: dict, folder: Path, keys: list[str], *, shuffle: bool = False, ids: bool = False) -> list[str]:
    """Labels (with the key columns) and a Parquet file per model, rows shuffled per file if asked."""
    ident = [f"r{i:04d}" for i in range(ROWS)]
    labels = pd.DataFrame(data["labels"], columns=COLUMNS)
    labels = pd.concat([labels, data["keys"][keys]], axis=1)
    if ids:
        labels["id"] = ident
    labels.to_parquet(folder / "labels.parquet", index=False)
    paths = [str(folder / "labels.parquet")]
    for seed, name in enumerate(MODELS):
        frame = pd.DataFrame(data["predictions"][name], columns=COLUMNS)
        if ids:
            frame["id"] = ident
        if shuffle:
            frame = frame.sample(frac=1.0, random_state=seed)
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        paths.append(str(folder / f"{name}.parquet"))
    return paths


@pytest.mark.parametrize("names", [["lang"], ["bucket", "flag"]], ids=["text-null", "int-bool"])
def test_each_group_equals_pandas_and_scipy(data: dict, tmp_path: Path, names: list[str]) -> None:
    paths = write(data, tmp_path, names)
    result = run_cli(["compare", *paths, "--group-by", ",".join(names), "--json", "-q"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    np.testing.assert_allclose(document["losses"]["a"], data["losses"]["a"], rtol=1e-12)  # keys not in vectors
    check(document, data, names, MODELS)


def test_rows_matched_by_id_in_shuffled_files(data: dict, tmp_path: Path) -> None:
    paths = write(data, tmp_path, ["lang"], shuffle=True, ids=True)
    result = run_executable(["compare", *paths, "--join-on", "id", "--group-by", "lang", "--json", "--no-losses"])
    assert result.returncode == ExitStatus.OK, result.stderr
    check(json.loads(result.stdout), data, ["lang"], MODELS)


def test_with_saved_baseline_losses_the_groups_come_from_the_labels(data: dict, tmp_path: Path) -> None:
    labels, a, b, _ = write(data, tmp_path, ["bucket"])
    saved = run_cli(["compute", labels, a, "--group-by", "bucket", "-o", str(tmp_path / "a_losses.parquet"), "-q"])
    assert saved.exit_code == ExitStatus.OK, saved.stderr
    args = ["compare", labels, b, "--baseline-losses", str(tmp_path / "a_losses.parquet"), "--group-by", "bucket"]
    result = run_cli([*args, "--names", "a_losses,b", "--json", "-q"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    renamed = {**data, "losses": {"a_losses": data["losses"]["a"], "b": data["losses"]["b"]}}
    check(document, renamed, ["bucket"], ("a_losses", "b"))


def test_a_gate_failing_in_one_group_names_it_and_exits_3(data: dict, tmp_path: Path) -> None:
    paths = write(data, tmp_path, ["lang"])[:3]
    overall = run_cli(["compare", *paths, "--max-worse-share", "0.45", "--json", "--no-losses", "-q"])
    assert overall.exit_code == ExitStatus.OK, overall.stderr  # the whole passes ...
    result = run_executable(["compare", *paths, "--group-by", "lang", "--max-worse-share", "0.45"])
    assert result.returncode == ExitStatus.THRESHOLD_EXCEEDED  # ... its French rows do not
    failing = [line for line in result.stderr.splitlines() if "--max-worse-share" in line and "group" in line]
    assert failing and all("lang='fr'" in line for line in failing)
    assert "by lang: 4 groups" in result.stdout and "failed" in result.stdout
    document = json.loads(
        run_cli(["compare", *paths, "--group-by", "lang", "--max-worse-share", "0.45", "--json", "-q"]).stdout
    )
    assert document["gates_passed"] is False
    french = next(group for group in document["groups"] if group["key"] == {"lang": "fr"})
    assert french["comparisons"][0]["gates"][0]["passed"] is False


def test_beyond_the_interval_limit_only_intervals_and_tests_are_null(
    data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cosloss_cli.compare.models.MAX_GROUPS_WITH_CI", 3)
    paths = write(data, tmp_path, ["lang"])[:3]
    result = run_cli(["compare", *paths, "--group-by", "lang", "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert "4 groups: each group's interval" in result.stderr
    document = json.loads(result.stdout)
    frame = data["keys"].assign(d=data["losses"]["b"] - data["losses"]["a"])
    expected = frame.groupby("lang", dropna=False, sort=True)["d"].mean().tolist()
    for group, mean in zip(document["groups"], expected, strict=True):
        item = group["comparisons"][0]
        assert item["mean_difference"] == pytest.approx(mean, rel=1e-12)
        assert item["ci_low"] is item["p_value_t"] is item["p_value_holm"] is item["verdict"] is None
    gated = run_cli(["compare", *paths, "--group-by", "lang", "--fail-if-worse", "0"])
    assert gated.exit_code == ExitStatus.USAGE_ERROR and "up to 3 groups" in gated.stderr


def test_refusals_and_schema(data: dict, tmp_path: Path) -> None:
    from .test_schemas import validate

    paths = write(data, tmp_path, ["lang"])
    runs = run_cli(["compare", str(tmp_path), "--runs", "--group-by", "lang"])
    assert runs.exit_code == ExitStatus.USAGE_ERROR and "--runs" in runs.stderr
    missing = run_cli(["compare", *paths, "--group-by", "nope"])
    assert missing.exit_code == ExitStatus.USAGE_ERROR and "'nope'" in missing.stderr
    document = run_cli(["compare", *paths, "--group-by", "lang", "--fail-if-worse", "0.5", "--json", "-q"])
    validate(json.loads(document.stdout), "compare")


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, -1, 3, 7, -1, 0], dtype=np.int64),
        np.array([5, 1, 5, 2], dtype=np.uint8),
        np.array([True, False, True]),
        np.array([0.5, -2.0, 0.5, 1e300]),
    ],
    ids=["int64", "uint8", "bool", "float"],
)
def test_one_numeric_key_groups_as_pandas_does(values: np.ndarray) -> None:
    """The path without pandas (one column of numbers) gives pandas' groups, codes and order."""
    from cosloss_cli.stats.groups import group_rows

    found = group_rows({"k": values})
    grouped = pd.DataFrame({"k": values}).groupby("k", dropna=False, sort=True)
    assert found.codes.tolist() == grouped.ngroup().tolist()
    assert [key[0] for key in found.keys] == [plain(key) for key in grouped.groups]
    assert all(type(key[0]) in (int, float, bool) for key in found.keys)
