"""One route to a result, and one record of its figures.

``compute``, each pair of ``batch``, each model of ``compare`` and the library's
``compute_files`` reach their ``LossResult`` through one function
(:func:`cosloss_cli.pipeline.compute.compute_pair`); the figures beyond the summary are one
:class:`~cosloss_cli.stats.figures.Figures` record that every result holds whole.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from cosloss_cli.batch import Overall, PairResult
from cosloss_cli.pipeline.result import LossResult
from cosloss_cli.stats import figures as figures_module
from cosloss_cli.stats.figures import Figures


def saved_pair(folder: Path, rows: int = 12, width: int = 4, seed: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    labels, predictions = folder / "labels.npy", folder / "predictions.npy"
    np.save(labels, rng.normal(size=(rows, width)))
    np.save(predictions, rng.normal(size=(rows, width)))
    return str(labels), str(predictions)


@pytest.mark.parametrize("record", [LossResult, PairResult, Overall])
def test_every_result_holds_the_figures_whole_not_copies_of_their_fields(record: Any) -> None:
    assert "figures" in record._fields
    assert not set(Figures._fields) & set(record._fields)


def test_the_former_result_fields_still_read_the_figures(tmp_path: Path) -> None:
    from cosloss_cli import compute_files

    result = compute_files(*saved_pair(tmp_path), top=2, best=1, bins=3, weights=2.0, reduction="mean")
    for name in Figures._fields:
        assert getattr(result, name) is getattr(result.figures, name), name
    with pytest.raises(AttributeError, match="no attribute 'lost'"):
        result.lost  # noqa: B018


def _extended_figures() -> type:
    """Figures with one more figure (and its default), as a developer would add it."""
    fields = [(name, Figures.__annotations__[name]) for name in Figures._fields] + [("novel", float)]
    defaults = (*Figures._field_defaults.values(), -1.0)
    extended = NamedTuple("Figures", fields)  # type: ignore[misc]
    extended.__new__.__defaults__ = defaults
    return extended


def test_a_new_figure_reaches_every_result_without_other_edits(tmp_path: Path, monkeypatch) -> None:
    from cosloss_cli.batch.merge import overall
    from cosloss_cli.batch.pair import PairTask, run_pair
    from cosloss_cli.batch.pairing import Pair
    from cosloss_cli.io import ReadOptions
    from cosloss_cli.pipeline.compute import compute_files
    from cosloss_cli.pipeline.result import ComputeOptions

    monkeypatch.setattr(figures_module, "Figures", _extended_figures())
    labels, predictions = saved_pair(tmp_path)
    result = compute_files(labels, predictions, top=1)
    assert result.figures.novel == -1.0
    task = PairTask(ReadOptions(), ReadOptions(), ComputeOptions(), figures=figures_module.FigureOptions(top=1))
    pair = run_pair(task, Pair("p", labels, predictions))
    assert pair.ok and pair.figures is not None and pair.figures.novel == -1.0
    pooled = overall([pair], 1, top=1)
    assert pooled.figures.novel == -1.0 and math.isclose(pooled.figures.loss, result.figures.loss)


def grouped_pair(folder: Path) -> tuple[Path, Path]:
    """A labels CSV with a ``lang`` column and the predictions, as pandas writes them."""
    import pandas as pd

    rng = np.random.default_rng(7)
    labels = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    labels["lang"] = ["en", "fr", "de"] * 10
    predictions = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    for side in ("labels", "predictions"):
        (folder / side).mkdir()
    labels.to_csv(folder / "labels" / "x.csv", index=False)
    predictions.to_csv(folder / "predictions" / "x.csv", index=False)
    return folder / "labels" / "x.csv", folder / "predictions" / "x.csv"


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pairs that entered the route: its first step, taken once by every entry."""
    from cosloss_cli.pipeline import compute as pipeline

    entered: list[str] = []
    first_step = pipeline._small_pair

    def counted(inputs: Any, progress: Any, **kwargs: Any) -> Any:
        entered.append(Path(inputs.predictions).name)
        return first_step(inputs, progress, **kwargs)

    monkeypatch.setattr(pipeline, "_small_pair", counted)
    return entered


def test_compute_batch_compare_and_the_library_take_the_one_route(tmp_path: Path, routes: list[str]) -> None:
    import json

    from cosloss_cli import compute_files
    from tests.conftest import run_cli

    labels, predictions = grouped_pair(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text(predictions.read_text())

    alone = run_cli(["compute", str(labels), str(predictions), "--json", "--group-by", "lang"])
    assert alone.exit_code == 0, alone.stderr
    assert routes == ["x.csv"]
    batch = run_cli(
        ["batch", str(labels.parent), str(predictions.parent), "--json", "--group-by", "lang", "--jobs", "1"]
    )
    assert batch.exit_code == 0, batch.stderr
    assert routes == ["x.csv"] * 2
    compare = run_cli(["compare", str(labels), str(predictions), str(other), "--json"])
    assert compare.exit_code == 0, compare.stderr
    assert routes == ["x.csv"] * 3 + ["other.csv"]
    library = compute_files(str(labels), str(predictions), exclude_columns=["lang"])
    assert routes[-1] == "x.csv" and len(routes) == 5

    document = json.loads(alone.stdout)
    pair = json.loads(batch.stdout)["pairs"][0]
    models = json.loads(compare.stdout)["models"]
    assert document["mean"] == pair["mean"] == models[0]["mean"] == library.summary.mean
    pooled = json.loads(batch.stdout)["overall"]["groups"]

    def figures(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:  # a batch draws no intervals
        return [{key: value for key, value in group.items() if not key.startswith("ci_")} for group in groups]

    assert figures(document["groups"]) == figures(pooled)


def test_the_route_forms_the_groups_from_the_names_it_is_given(tmp_path: Path) -> None:
    import pandas as pd

    from cosloss_cli.io import ReadOptions
    from cosloss_cli.pipeline.compute import compute_files, compute_pair
    from cosloss_cli.pipeline.result import ComputeOptions
    from tests.oracle import reference_losses

    labels, predictions = grouped_pair(tmp_path)
    figures = figures_module.FigureOptions(confidence=0)
    result = compute_pair(
        str(labels), str(predictions), ReadOptions(), ComputeOptions(axis=1), figures, group_by=("lang",)
    )
    left, right = pd.read_csv(labels), pd.read_csv(predictions)
    expected = reference_losses(left[["a", "b", "c"]].to_numpy(), right.to_numpy(), axis=1)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    assert result.grouping is not None and result.groups is not None
    assert [group["key"] for group in result.groups] == [{"lang": "de"}, {"lang": "en"}, {"lang": "fr"}]
    for group in result.groups:
        mine = expected[(left["lang"] == group["key"]["lang"]).to_numpy()]
        assert group["count"] == mine.size and group["mean"] == pytest.approx(mine.mean(), rel=1e-12)
    library = compute_files(str(labels), str(predictions), axis=1, confidence=0, group_by="lang")
    assert library.groups == result.groups
    np.testing.assert_array_equal(library.grouping.codes, result.grouping.codes)
    pooled_later = compute_pair(  # what a batch's pair asks: the groups of its rows, not their figures
        str(labels),
        str(predictions),
        ReadOptions(),
        ComputeOptions(axis=1),
        figures,
        group_by=("lang",),
        group_figures=False,
    )
    assert pooled_later.groups is None and pooled_later.grouping is not None
    np.testing.assert_array_equal(pooled_later.grouping.codes, result.grouping.codes)


@pytest.mark.parametrize("name", ["pair.npy", "pair.csv"])
def test_progress_is_sized_by_the_inputs_and_told_every_row(tmp_path: Path, name: str) -> None:
    """The small-pair road and the general one both size the caller's progress and report each row."""
    from contextlib import contextmanager

    from cosloss_cli.io import ReadOptions
    from cosloss_cli.pipeline.compute import compute_pair
    from cosloss_cli.pipeline.result import ComputeOptions

    rng = np.random.default_rng(3)
    paths = [tmp_path / f"l-{name}", tmp_path / f"p-{name}"]
    for path in paths:
        values = rng.normal(size=(40, 5))
        np.save(path, values) if name.endswith(".npy") else np.savetxt(path, values, delimiter=",")
    sized: list[tuple[int | None, int]] = []
    told: list[int] = []

    @contextmanager
    def progress(rows: int | None, size_bytes: int) -> Any:
        sized.append((rows, size_bytes))
        yield told.append

    figures = figures_module.FigureOptions()
    compute_pair(*map(str, paths), ReadOptions(), ComputeOptions(axis=1), figures, progress=progress)
    assert len(sized) == 1 and sized[0][1] == sum(path.stat().st_size for path in paths)
    assert sized[0][0] in (40, None) and sum(told) == 40
