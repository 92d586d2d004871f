"""Hostile inputs through the real executable under an address-space limit of 1 GiB.

Each example writes a labels file meant to hurt: CSV lines of thousands of cells, empty
cells, control characters, huge and tiny ids, JSON Lines records of long vectors, nulls
and odd ids, NPY and Parquet bytes mutated or cut short mid-file. The only outcomes
allowed: the right answer (against the float64 reference, whenever a strict reading of
the bytes has one), or exit 1 or 2 with exactly one ``Error:`` line and nothing on
stdout; never a signal, a traceback or partial output.
Examples are few by default (each starts a process); ``make fuzz`` raises them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import property_settings, run_executable
from tests.oracle import reference_losses
from tests.test_fuzz import (
    csv_reference,
    matrices,
    mutated,
    npy_bytes,
    npy_reference,
    parquet_bytes,
    parquet_reference,
    predictions_like,
)
from tests.test_wide_lines import limited

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")

_IDS = st.sampled_from(["9223372036854775807", "-9223372036854775808", "1e308", "5e-324", "0", "", "\x01x", "é"])
_CELLS = st.sampled_from(["", "NA", "\x00", "\x07", "1e308", "-5e-324", "nan", "1.5"])


@st.composite
def hostile_csv(draw: st.DrawFn) -> bytes:
    """A CSV file: narrow or of thousands of columns, with odd cells and ids, maybe cut short."""
    wide = draw(st.booleans())
    rows = draw(st.integers(1, 4))
    width = draw(st.integers(2100, 3000)) if wide else draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal((rows, width))
    with_ids = draw(st.booleans())
    lines = [("id," if with_ids else "") + ",".join(f"c{i}" for i in range(width))]
    for row in values.tolist():
        cells = [repr(v) for v in row]
        for _ in range(draw(st.integers(0, 2))):
            cells[draw(st.integers(0, width - 1))] = draw(_CELLS)
        lines.append((f"{draw(_IDS)}," if with_ids else "") + ",".join(cells))
    data = ("\n".join(lines) + "\n").encode()
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]  # truncated mid-file
    return data


def jsonl_reference(data: bytes) -> np.ndarray | None:
    """The vectors of strict JSON Lines records ``{"id": ..., "embedding": [numbers]}``, or None."""
    try:
        lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
        records = [json.loads(line) for line in lines]
    except (UnicodeDecodeError, ValueError):
        return None
    if not records or not all(isinstance(r, dict) and isinstance(r.get("embedding"), list) for r in records):
        return None
    vectors = [r["embedding"] for r in records]
    if len({len(v) for v in vectors}) != 1 or not vectors[0]:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for v in vectors for x in v):
        return None
    return np.array(vectors, dtype=np.float64)


@st.composite
def hostile_jsonl(draw: st.DrawFn) -> bytes:
    """JSON Lines of ``{"id", "embedding"}`` records: long vectors, nulls, odd ids, maybe cut short."""
    rows = draw(st.integers(1, 4))
    width = draw(st.sampled_from([1, 3, 5, 20_000]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lines = []
    for row in rng.standard_normal((rows, width)).tolist():
        if draw(st.booleans()):
            row[draw(st.integers(0, width - 1))] = None
        ident = draw(st.sampled_from([2**63 - 1, -(2**63), 10**30, 1e308, 5e-324, "", "\x01", None]))
        lines.append(json.dumps({"id": ident, "embedding": row}))
    data = ("\n".join(lines) + "\n").encode()
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return data


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, bytes, np.ndarray | None]:
    """(suffix, bytes, the values a strict reading finds in them or None)."""
    kind = draw(st.sampled_from(["csv", "jsonl", "npy", "parquet"]))
    if kind == "jsonl":
        data = draw(hostile_jsonl())
        return ".jsonl", data, jsonl_reference(data)
    if kind == "csv":
        data = draw(hostile_csv())
        reference = csv_reference(data)
        return ".csv", data, reference
    array = draw(matrices())
    if kind == "npy":
        data = draw(mutated(npy_bytes(array)))
        return ".npy", data, npy_reference(data)
    names = [f"c{i}" for i in range(array.shape[1])]
    data = draw(mutated(parquet_bytes(pa.table({name: array[:, i] for i, name in enumerate(names)}))))
    return ".parquet", data, parquet_reference(data, names, False)


@property_settings(6)
@given(hostile_files())
def test_hostile_inputs_under_a_memory_limit(case: tuple[str, bytes, np.ndarray | None]) -> None:
    suffix, data, reference = case
    with tempfile.TemporaryDirectory(prefix="cosloss-limit-") as folder:
        labels = Path(folder) / f"labels{suffix}"
        labels.write_bytes(data)
        shape = reference.shape if reference is not None and reference.size else (2, 3)
        predictions = predictions_like(shape)
        np.save(Path(folder) / "predictions.npy", predictions)
        args = ["compute", str(labels), str(Path(folder) / "predictions.npy"), "--json", "--nan-policy", "propagate"]
        proc = run_executable([*args, "--no-detect-ids"], preexec_fn=limited())
    assert proc.returncode in (0, 1, 2), (proc.returncode, proc.stderr)  # a signal is negative
    assert "Traceback" not in proc.stderr
    if proc.returncode:
        assert proc.stdout == ""
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, proc.stderr
        return
    assert not any(line.startswith("Error:") for line in proc.stderr.splitlines())
    document = json.loads(proc.stdout)
    if reference is None or reference.ndim != 2:
        return  # the strict reading refused the bytes: any clean outcome is fine
    expected = reference_losses(reference, predictions, axis=1)
    got = np.array([np.nan if v is None else v for v in document["losses"]], dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)
