"""The README and docs/ are the user's manual: their samples and reference must match the code."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cosloss_cli.cli import cli
from cosloss_cli.status import ExitStatus

from .conftest import PIPED, assert_same_json, run_cli
from .docs_pages import DOCS, PAGES, ROOT, marked_block

README = PAGES["README.md"]

#: Piped, with ``NO_COLOR`` set: the plain text a user or a script sees off a terminal.
NO_COLOR = PIPED._replace(no_color=True)

COMMANDS = ["batch", "compare", "compute"]


def _generator() -> ModuleType:
    """scripts/gen_reference.py, imported from its file (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_reference_is_up_to_date() -> None:
    generator = _generator()
    assert generator.stale(generator.pages()) == [], "docs/reference is out of date: run 'make docs'"


def test_the_reference_check_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    monkeypatch.setattr(generator, "REFERENCE", tmp_path)
    expected = generator.pages()
    for name, text in expected.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert generator.stale(expected) == []
    (tmp_path / "compute.md").write_text(expected["compute.md"].replace("--axis", "--axes"), encoding="utf-8")
    (tmp_path / "gone.md").write_text("# a command that was removed\n", encoding="utf-8")
    assert generator.stale(expected) == ["compute.md", "gone.md"]


def _reference_help(page: str) -> str:
    return PAGES[f"docs/reference/{page}.md"].split("```text\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.parametrize("args", [[], *([name] for name in COMMANDS)], ids=["cosloss", *COMMANDS])
def test_reference_is_what_the_real_command_prints(args: list[str]) -> None:
    """Not the generator against itself: ``cosloss ... -h`` as a user types it (``-h``, not ``--help``)."""
    result = CliRunner().invoke(cli, [*args, "-h"], prog_name="cosloss", terminal_width=100)
    assert result.exit_code == ExitStatus.OK
    section = _reference_help(args[0] if args else "cosloss")
    assert section == result.output.rstrip("\n")
    assert "  -h, --help" in section


def test_every_command_has_help_a_page_and_a_reference() -> None:
    context = click.Context(cli, info_name="cosloss")
    assert cli.list_commands(context) == COMMANDS
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        assert command.help, f"{name} has no help text"
        assert f"cosloss {name}" in PAGES[f"docs/commands/{name}.md"]
        assert f"docs/reference/{name}.md" in PAGES
        assert f"commands/{name}.md" in nav and f"reference/{name}.md" in nav
        assert run_cli([name, "--help"]).exit_code == ExitStatus.OK


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        if page.startswith("docs/"):
            assert f" {page.removeprefix('docs/')}\n" in nav, f"{page} is not in mkdocs.yml's nav"


def test_json_sample_in_the_docs_is_what_the_tool_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    sample = json.loads(re.search(r"```json\n(.*?)```", marked_block("json-sample"), re.S).group(1))
    result = run_cli(["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1", "--json"])
    assert_same_json(json.loads(result.stdout), sample)


def test_quick_start_is_exactly_two_make_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in commands] == ["make demo", "make test"]


def test_the_readme_is_short_and_holds_no_benchmark_figures() -> None:
    """A newcomer reads it in minutes; figures from bench runs live in docs/performance.md."""
    assert len(README.splitlines()) <= 160
    assert re.findall(r"\d\.\d+x\b|\d+ MB\b|\d+ GB\b|CPU s", README) == []
    assert "docs/performance.md" in README


def test_the_manual_names_no_tracker_items() -> None:
    for page, text in PAGES.items():
        assert re.findall(r"\bissue \d+|#\d{2,}\b", text, re.I) == [], page


def test_the_readme_links_only_to_files_that_exist() -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), target


#: The table samples: a ``$ cosloss ...`` line and the exact stdout after it.
TABLE_SAMPLES = [
    (command, output)
    for text in PAGES.values()
    for command, output in re.findall(r"```console\n\$ (cosloss (?:compute|batch) [^|\n]*)\n(.*?)```", text, re.S)
    if "--format" not in command and "--json" not in command and "2>" not in command
]


def test_the_docs_have_both_table_samples() -> None:
    commands = [command.split()[1] for command, _ in TABLE_SAMPLES]
    assert "compute" in commands and "batch" in commands


@pytest.mark.parametrize(("command", "expected"), TABLE_SAMPLES, ids=[c for c, _ in TABLE_SAMPLES])
def test_table_sample_is_exactly_what_the_tool_prints(command: str, expected: str, monkeypatch) -> None:
    """A golden test of the table's text: every character, no colour, the fixed width off a terminal."""
    monkeypatch.chdir(ROOT)
    result = run_cli(command.split()[1:], env=NO_COLOR)
    assert result.stdout == expected
    status = ExitStatus.DATA_ERROR if "batch" in command else ExitStatus.OK  # the batch sample has a broken pair
    assert result.exit_code == status


def _run_pycon(block: str) -> None:
    """Run the ``pycon`` examples of a block as doctests, in the current folder."""
    import doctest

    for source in re.findall(r"```pycon\n(.*?)```", block, re.S):
        test = doctest.DocTestParser().get_doctest(source, {}, "docs", "docs", 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"a documented example printed something else:\n{source}"


def test_matching_sample_is_what_the_tool_prints(tmp_path: Any, monkeypatch: Any) -> None:
    import shlex

    monkeypatch.chdir(tmp_path)
    block = marked_block("matching-sample")
    _run_pycon(block)
    session = re.search(r"```console\n(.*?)```", block, re.S).group(1).splitlines()
    command, expected = shlex.split(session[0].removeprefix("$ ")), session[1:]
    assert command[0] == "cosloss"
    result = run_cli(command[1:])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert (result.stderr + result.stdout).splitlines() == expected


def test_library_sample_runs(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    _run_pycon(marked_block("library-sample"))


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None, reason="no mkdocs")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """``make docs``'s build: a broken link, a missing page or anchor fails it."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert DOCS.is_dir()


def _bench() -> ModuleType:
    """bench/run.py, imported from its file (registered first: its dataclasses need that)."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_benchmark_writes_its_tables_into_the_performance_page(tmp_path: Path) -> None:
    """``bench/run.py --write-docs`` replaces the results section and nothing else of the page."""
    bench = _bench()
    assert bench.PERFORMANCE_PAGE == DOCS / "performance.md"
    page = tmp_path / "performance.md"
    page.write_text(PAGES["docs/performance.md"], encoding="utf-8")
    report = "Machine: test\n\n| data | peer |\n|---|---|\n| 2 x NPY | numpy |"
    bench.write_docs_results(page, report, "python bench/run.py --full --write-docs")
    before = PAGES["docs/performance.md"].split(bench.RESULTS_START)
    after = page.read_text(encoding="utf-8").split(bench.RESULTS_START)
    assert after[0] == before[0] and after[1].split(bench.RESULTS_END)[1] == before[1].split(bench.RESULTS_END)[1]
    section = after[1].split(bench.RESULTS_END)[0]
    assert "Written by `python bench/run.py --full --write-docs` on " in section and report in section
    bench.write_docs_results(page, report, "python bench/run.py")  # a second run replaces the first
    assert page.read_text(encoding="utf-8").count("Machine: test") == 1


def test_every_exit_status_is_documented_and_in_the_man_pages() -> None:
    table = PAGES["docs/outputs.md"].split("## Errors and exit codes", 1)[1]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    manual = {int(code) for code, _ in _generator().EXIT_STATUS}
    assert documented == manual == {int(status) for status in ExitStatus}


def test_no_text_is_glued_to_a_table() -> None:
    """A line right after a table's last row would be read as one more row of it."""
    for page, text in PAGES.items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        glued = re.findall(r"^\|.*\|\n([^|\n<].*)$", prose, re.M)
        assert glued == [], f"{page}: a blank line is needed before {glued[0]!r}"
