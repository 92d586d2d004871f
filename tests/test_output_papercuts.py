"""Small things a reader of the tables trips on: a p-value of 0, pair names cut over lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosloss_cli.compare.render import _p_value
from cosloss_cli.status import ExitStatus

from .conftest import TERMINAL, run_cli


def test_an_underflowed_p_value_is_shown_as_below_1e_300(tmp_path: Path) -> None:
    """scipy's p-value of two clearly different models underflows to 0.0: the table must not say 0."""
    rng = np.random.default_rng(5)
    labels = rng.normal(size=(60, 4))
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "close.npy", labels + 0.001 * rng.normal(size=labels.shape))
    np.save(tmp_path / "far.npy", -labels + 0.001 * rng.normal(size=labels.shape))  # every loss near 2
    args = ["compare", str(tmp_path / "labels.npy"), str(tmp_path / "close.npy"), str(tmp_path / "far.npy")]
    result = run_cli([*args, "--resamples", "200"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ far") and "e-300" in line)
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[1] == "< 1e-300" and float(cells[2]) > 0  # the t-test's underflows, Wilcoxon's exact p does not


def test_a_p_value_that_is_not_zero_is_shown_as_it_is() -> None:
    assert _p_value(5e-324) == "4.94e-324"
    assert _p_value(0.0123456) == "0.0123"
    assert _p_value(None) == "n/a"


def test_batch_tables_do_not_wrap_pair_names_off_a_terminal(tmp_path: Path) -> None:
    name = "a_pair_name_long_enough_to_wrap_in_a_table_of_a_hundred_columns_" + "x" * 40
    rng = np.random.default_rng(6)
    for side in ("l", "p"):
        (tmp_path / side).mkdir()
        np.save(tmp_path / side / f"{name}.npy", rng.normal(size=(4, 3)))
    args = ["batch", str(tmp_path / "l"), str(tmp_path / "p"), "--top", "1"]
    piped = run_cli(args)
    assert piped.exit_code == ExitStatus.OK, piped.stderr
    rows = [line for line in piped.stdout.splitlines() if name in line]
    assert len(rows) == 2  # the pairs table and the worst rows, each name whole on one line
    on_terminal = run_cli(args, env=TERMINAL)
    assert not any(name in line for line in on_terminal.stdout.splitlines())  # folded to the terminal's width
