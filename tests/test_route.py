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
