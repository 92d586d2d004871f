"""The JSON Schemas of docs/schemas/ describe what the commands really print.

Each document (and NDJSON line) of ``compute``, ``batch`` and ``compare`` is validated
against its schema, made strict for the test: an object may hold only the keys its schema
declares, so a key added to the output without being documented fails here. The published
schemas stay open (new keys may be added without a new ``schema_version``).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator, ValidationError

from .conftest import run_cli
from .docs_pages import DOCS, PAGES, ROOT, console_examples, marked_block

SCHEMAS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in (DOCS / "schemas").glob("*.json")}


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever an object lists its properties."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def validator(name: str, definition: str | None = None) -> Draft202012Validator:
    """For ``docs/schemas/NAME.json`` (strict), or for one of its ``$defs``."""
    schema = strict(SCHEMAS[name])
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def validate(document: Any, name: str) -> None:
    validator(name).validate(document)


#: The NDJSON line of each command with --group-by: a line per group (per group and candidate in compare).
GROUP_LINES = {"compute": "group", "batch": "group", "compare": "group_line"}


def validate_lines(text: str, name: str, groups: bool = False) -> int:
    """Validate each NDJSON line of ``name``'s output (with ``groups``, of ``--group-by``); how many there were."""
    lines = validator(name, GROUP_LINES[name] if groups else "pair" if name == "batch" else "line")
    for line in text.splitlines():
        lines.validate(json.loads(line))
    return len(text.splitlines())


def test_the_schemas_are_valid_json_schemas() -> None:
    assert set(SCHEMAS) == {"compute", "batch", "compare", "compare-runs"}
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
        Draft202012Validator.check_schema(strict(schema))


def test_the_outputs_page_links_every_schema() -> None:
    for name in SCHEMAS:
        assert f"schemas/{name}.json" in PAGES["docs/outputs.md"]


def test_a_key_the_schema_does_not_declare_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run_cli(["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--json"])
    document = json.loads(result.stdout)
    validate(document, "compute")
    with pytest.raises(ValidationError):
        validate({**document, "undocumented": 1}, "compute")
    with pytest.raises(ValidationError):
        validate({**document, "mean": "0.07"}, "compute")


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    """Files for the keys the samples do not show: NaN rows, N-D arrays, ids and weights."""
    rng = np.random.default_rng(3)
    labels = pd.DataFrame(rng.normal(size=(6, 3)), columns=["a", "b", "c"]).assign(id=[f"r{i}" for i in range(6)])
    predictions = labels.assign(a=labels["a"] + 0.5)
    predictions.loc[2, "b"] = np.nan
    labels.to_csv(tmp_path / "labels.csv", index=False)
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    np.save(tmp_path / "l3.npy", rng.normal(size=(2, 3, 4)))
    np.save(tmp_path / "p3.npy", rng.normal(size=(2, 3, 4)))
    return {name: str(tmp_path / name) for name in ("labels.csv", "predictions.csv", "l3.npy", "p3.npy")}


def test_compute_json_and_ndjson_follow_the_schema(inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    runs = [
        ["sample_data/weighted_labels.csv", "sample_data/weighted_predictions.csv", "--weight-column", "weight"]
        + ["--top", "2", "--best", "1", "--bins", "4", "--reduction", "none"],
        ["sample_data/join_labels.csv", "sample_data/join_predictions.csv", "--join-on", "id", "-q"],
        [inputs["labels.csv"], inputs["predictions.csv"], "--nan-policy", "omit", "-q"],
        [inputs["labels.csv"], inputs["predictions.csv"], "--nan-policy", "propagate", "--top", "1", "-q"],
        [inputs["l3.npy"], inputs["p3.npy"], "--axis", "1", "--top", "2"],
    ]
    for args in runs:
        result = run_cli(["compute", *args, "--json"])
        assert result.exit_code == 0, result.stderr
        validate(json.loads(result.stdout), "compute")
        lines = run_cli(["compute", *args, "--format", "ndjson"]).stdout
        assert validate_lines(lines, "compute") >= 2


def test_batch_json_and_ndjson_follow_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    folders = ["sample_data/batch/labels", "sample_data/batch/predictions", "-r", "-j", "1", "-q"]
    result = run_cli(["batch", *folders, "--json", "--losses", "--top", "2", "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 1  # the sample's deliberately broken pair
    document = json.loads(result.stdout)
    validate(document, "batch")
    assert document["overall"]["worst"] and document["pairs"][1]["output"]
    joined = run_cli(["batch", "--manifest", "sample_data/batch/pairs.csv", "--weight-column", "0", "--json", "-q"])
    validate(json.loads(joined.stdout), "batch")
    assert validate_lines(run_cli(["batch", *folders, "--format", "ndjson", "--losses"]).stdout, "batch") == 5


def test_compare_json_and_ndjson_follow_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    third = np.load("sample_data/embeddings_predictions_b.npy")
    np.save(tmp_path / "c.npy", third + np.random.default_rng(5).normal(scale=0.05, size=third.shape))
    files = ["sample_data/embeddings_labels.parquet", "sample_data/embeddings_predictions.parquet"]
    three = [*files, "sample_data/embeddings_predictions_b.npy", str(tmp_path / "c.npy")]
    result = run_cli(["compare", *three, "--id-column", "id", "--names", "a,b,c", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    validate(document, "compare")
    assert "p_value_holm" in document["comparisons"][0] and document["ids"]
    lines = run_cli(["compare", *three, "--id-column", "id", "--names", "a,b,c", "--format", "ndjson"]).stdout
    assert validate_lines(lines, "compare") == 300


def test_the_documented_json_samples_follow_the_schemas() -> None:
    for marker, name in [("json-sample", "compute"), ("batch-json-sample", "batch")]:
        sample = json.loads(re.search(r"```json\n(.*?)```", marked_block(marker), re.S).group(1))
        validate(sample, name)


JSON_EXAMPLES = [
    example
    for example in console_examples()
    if example.command.startswith("cosloss ")
    and re.search(r"--json|--format (?:json|ndjson)|-f ndjson", example.command)
    and not re.search(r"\| (?!head -\d+$)", example.command)  # jq makes other documents; head keeps lines
]


@pytest.mark.parametrize("example", JSON_EXAMPLES, ids=[example.id for example in JSON_EXAMPLES])
def test_each_json_example_follows_its_schema(example: Any) -> None:
    """Its shown output is a document (or NDJSON lines) of its command; test_readme_examples runs it."""
    words = shlex.split(example.command)
    name = "compare-runs" if words[1] == "compare" and "--runs" in words else words[1]
    if "ndjson" in example.command:
        assert validate_lines(example.expected, name, groups="--group-by" in words) >= 1
    else:
        validate(json.loads(example.expected), name)
