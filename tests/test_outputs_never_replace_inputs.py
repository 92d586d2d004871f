"""An output never replaces an input; ``-o`` keeps a file's mode and writes through a symlink.

Every refusal happens before anything is read (exit 2), names both files, and leaves the
input byte for byte as it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses

LABELS = np.array([[1.0, 4.0, 5.0], [5.0, 5.0, 7.0], [0.5, -2.0, 3.0]])
PREDS = np.array([[3.0, 2.0, 5.0], [3.0, 2.0, 7.0], [1.0, 1.0, -1.0]])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    found = {"labels": tmp_path / "labels.npy", "preds": tmp_path / "preds.npy", "weights": tmp_path / "w.npy"}
    np.save(found["labels"], LABELS)
    np.save(found["preds"], PREDS)
    np.save(found["weights"], np.array([1.0, 2.0, 3.0]))
    return found


def refused(result, output: str, input_name: str) -> None:
    assert result.exit_code == ExitStatus.USAGE_ERROR, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert output in errors[0] and "would replace the input" in errors[0] and input_name in errors[0], errors[0]
    assert result.stdout == ""


def unchanged(files: dict[str, Path]) -> None:
    np.testing.assert_array_equal(np.load(files["labels"]), LABELS)
    np.testing.assert_array_equal(np.load(files["preds"]), PREDS)


@pytest.mark.parametrize("which", ["labels", "preds", "weights"])
def test_compute_refuses_an_output_that_is_an_input(files: dict[str, Path], which: str) -> None:
    args = ["compute", str(files["labels"]), str(files["preds"]), "--weights", str(files["weights"])]
    result = run_cli([*args, "-o", str(files[which])])
    refused(result, files[which].name, files[which].name)
    unchanged(files)
    assert np.load(files["weights"]).tolist() == [1.0, 2.0, 3.0]


def test_compute_refuses_a_symlink_or_a_hard_link_to_an_input(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "soft.npy").symlink_to(files["preds"])
    os.link(files["labels"], tmp_path / "hard.npy")
    for link, target in (("soft.npy", "preds.npy"), ("hard.npy", "labels.npy")):
        result = run_cli(["compute", str(files["labels"]), str(files["preds"]), "-o", str(tmp_path / link)])
        refused(result, link, target)
    unchanged(files)


def test_compute_refuses_the_file_redirected_to_stdin(files: dict[str, Path]) -> None:
    with open(files["preds"], "rb") as stdin:
        result = run_executable(
            ["compute", str(files["labels"]), "-", "--predictions-format", "npy", "-o", str(files["preds"])],
            stdin=stdin,
        )
    assert result.returncode == ExitStatus.USAGE_ERROR, result.stderr
    assert "would replace the input - (stdin)" in result.stderr
    unchanged(files)


def test_compare_refuses_an_output_that_is_a_model(files: dict[str, Path]) -> None:
    result = run_cli(
        ["compare", str(files["labels"]), str(files["preds"]), str(files["labels"]), "-o", str(files["preds"])]
    )
    refused(result, "preds.npy", "preds.npy")
    unchanged(files)


def test_compare_refuses_an_output_that_is_the_saved_baseline(files: dict[str, Path], tmp_path: Path) -> None:
    saved = tmp_path / "baseline.npy"
    assert run_cli(["compute", str(files["labels"]), str(files["labels"]), "-o", str(saved), "-q"]).exit_code == 0
    before = saved.read_bytes()
    args = ["compare", str(files["labels"]), str(files["preds"]), "--baseline-losses", str(saved), "-o", str(saved)]
    refused(run_cli(args), "baseline.npy", "baseline.npy")
    assert saved.read_bytes() == before


def test_an_output_beside_the_inputs_is_still_written(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "losses.npy"
    result = run_cli(["compute", str(files["labels"]), str(files["preds"]), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(out), reference_losses(LABELS, PREDS, axis=1), rtol=1e-12)


def _batch_folders(root: Path) -> tuple[Path, Path]:
    labels, preds = root / "labels", root / "preds"
    for folder, frame in ((labels, LABELS), (preds, PREDS)):
        (folder / "run").mkdir(parents=True)
        for name in ("a", "run/b"):
            pd.DataFrame(frame, columns=["x", "y", "z"]).to_csv(folder / f"{name}.csv", index=False)
    return labels, preds


def _batch_inputs(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*.csv"))}


@pytest.mark.parametrize("where", ["preds", "labels", "preds_symlink", "parent_of_preds", "child_of_preds"])
def test_batch_refuses_an_output_dir_whose_files_would_replace_inputs(tmp_path: Path, where: str) -> None:
    labels, preds = _batch_folders(tmp_path / "data")
    before = _batch_inputs(tmp_path / "data")
    if where == "preds_symlink":
        (tmp_path / "out").symlink_to(preds)
        output_dir = tmp_path / "out"
    elif where == "parent_of_preds":  # the inputs of a manifest pair named preds/a
        output_dir = tmp_path / "data"
    elif where == "child_of_preds":
        output_dir = preds / "run"
    else:
        output_dir = {"preds": preds, "labels": labels}[where]
    if where in ("parent_of_preds", "child_of_preds"):  # pair names from a manifest reach into them
        name, rel = ("preds/a", "a.csv") if where == "parent_of_preds" else ("b", "run/b.csv")
        manifest = tmp_path / "pairs.csv"
        pairs = {"labels": [str(labels / rel)], "predictions": [str(preds / rel)], "name": [name]}
        pd.DataFrame(pairs).to_csv(manifest, index=False)
        args = ["batch", "--manifest", str(manifest)]
    else:
        args = ["batch", str(labels), str(preds), "-r"]
    result = run_cli([*args, "--output-dir", str(output_dir), "--json"])
    assert result.exit_code == ExitStatus.USAGE_ERROR, (result.stdout, result.stderr)
    assert "would replace the input" in result.stderr and result.stdout == ""
    assert _batch_inputs(tmp_path / "data") == before


def test_batch_refuses_an_output_file_hard_linked_to_an_input(tmp_path: Path) -> None:
    labels, preds = _batch_folders(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    os.link(preds / "a.csv", out / "a.csv")
    before = _batch_inputs(tmp_path / "data")
    result = run_cli(["batch", str(labels), str(preds), "-r", "--output-dir", str(out)])
    assert result.exit_code == ExitStatus.USAGE_ERROR, result.stderr
    assert "a.csv" in result.stderr and "would replace the input" in result.stderr
    assert _batch_inputs(tmp_path / "data") == before


def test_batch_output_dir_beside_the_inputs_is_written(tmp_path: Path) -> None:
    labels, preds = _batch_folders(tmp_path / "data")
    out = tmp_path / "data" / "losses"
    result = run_cli(["batch", str(labels), str(preds), "-r", "--output-dir", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    written = pd.read_csv(out / "run" / "b.csv")["loss"].to_numpy()
    np.testing.assert_allclose(written, reference_losses(LABELS, PREDS, axis=1), rtol=1e-12)


def test_output_over_a_private_file_keeps_its_mode(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "losses.csv"
    out.write_text("old\n")
    out.chmod(0o600)
    result = run_cli(["compute", str(files["labels"]), str(files["preds"]), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert pd.read_csv(out)["loss"].size == 3


def test_output_through_a_symlink_writes_its_target(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "losses.npy"
    target.write_bytes(b"old")
    link = tmp_path / "latest.npy"
    link.symlink_to(target)
    result = run_cli(["compute", str(files["labels"]), str(files["preds"]), "-o", str(link), "-q"])
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_allclose(np.load(target), reference_losses(LABELS, PREDS, axis=1), rtol=1e-12)
    assert sorted(p.name for p in target.parent.iterdir()) == ["losses.npy"]  # no temporary left


def test_compute_refuses_an_output_inside_an_input_dataset(tmp_path: Path) -> None:
    for side, values in (("labels", LABELS), ("preds", PREDS)):
        (tmp_path / side).mkdir()
        for part, rows in enumerate((values[:2], values[2:])):
            pd.DataFrame(rows, columns=["x", "y", "z"]).to_parquet(tmp_path / side / f"part-{part}.parquet")
    before = (tmp_path / "preds" / "part-0.parquet").read_bytes()
    for output, labels in (
        (tmp_path / "preds" / "part-0.parquet", tmp_path / "labels"),  # a member of the predictions folder
        (tmp_path / "preds" / "new.csv", tmp_path / "labels"),  # a new file in it
        (tmp_path / "labels" / "part-1.parquet", tmp_path / "labels" / "*.parquet"),  # a member of a glob
    ):
        result = run_cli(["compute", str(labels), str(tmp_path / "preds"), "-o", str(output)])
        assert result.exit_code == ExitStatus.USAGE_ERROR, (result.stdout, result.stderr)
        assert output.name in result.stderr and "input" in result.stderr
    assert (tmp_path / "preds" / "part-0.parquet").read_bytes() == before
    assert not (tmp_path / "preds" / "new.csv").exists()
