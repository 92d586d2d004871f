"""Shell completion (click's, through the real executable) and the generated man pages."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import EXECUTABLE, ROOT

BIN = str(Path(EXECUTABLE).parent)


def complete(words: str, cword: int) -> list[str]:
    """What ``cosloss`` answers bash for the command line ``words``, the cursor on word ``cword``."""
    env = {**os.environ, "_COSLOSS_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    proc = subprocess.run([EXECUTABLE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_completes_the_commands() -> None:
    assert complete("cosloss ", 1) == ["plain,batch", "plain,compare", "plain,compute"]
    assert complete("cosloss co", 1) == ["plain,compare", "plain,compute"]


def test_completes_options_and_their_choices() -> None:
    assert complete("cosloss compute --nan", 2) == ["plain,--nan-policy"]
    assert {"plain,--manifest", "plain,--recursive"} <= set(complete("cosloss batch --", 2))
    assert complete("cosloss compute --nan-policy ", 3) == ["plain,raise", "plain,omit", "plain,propagate"]
    assert "plain,ndjson" in complete("cosloss compare --format ", 3)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_bash_script_completes_in_bash() -> None:
    """The documented line, in a real bash: the function it defines fills COMPREPLY (emptied
    before each call, as bash does)."""
    script = """
        eval "$(_COSLOSS_COMPLETE=bash_source cosloss)"
        complete -p cosloss
        COMPREPLY=(); COMP_WORDS=(cosloss compute --red); COMP_CWORD=2; _cosloss_completion cosloss
        printf '%s\\n' "${COMPREPLY[@]}"
        COMPREPLY=(); COMP_WORDS=(cosloss b); COMP_CWORD=1; _cosloss_completion cosloss
        printf '%s\\n' "${COMPREPLY[@]}"
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["complete -o nosort -F _cosloss_completion cosloss", "--reduction", "batch"]


SCRIPTS = [("zsh", "#compdef cosloss"), ("fish", "complete --no-files --command cosloss")]


@pytest.mark.parametrize(("shell", "marker"), SCRIPTS)
def test_zsh_and_fish_scripts(shell: str, marker: str) -> None:
    env = {**os.environ, "_COSLOSS_COMPLETE": f"{shell}_source"}
    proc = subprocess.run([EXECUTABLE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and marker in proc.stdout


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_man_pages_are_produced(tmp_path: Path) -> None:
    """``make man``'s generator: a page per command, holding every option; groff reads them without warnings."""
    from cosloss_cli.cli import cli

    written = _generator().write_man(tmp_path)
    assert sorted(path.name for path in written) == [
        "cosloss-batch.1",
        "cosloss-compare.1",
        "cosloss-compute.1",
        "cosloss.1",
    ]
    import click

    context = click.Context(cli, info_name="cosloss")
    for name in ["batch", "compare", "compute"]:
        page = (tmp_path / "man1" / f"cosloss-{name}.1").read_text(encoding="utf-8")
        assert page.startswith(f".TH COSLOSS-{name.upper()} 1")
        command = cli.get_command(context, name)
        assert command is not None
        for param in command.params:
            for option in getattr(param, "opts", []) if isinstance(param, click.Option) else []:
                assert option.replace("-", "\\-") in page, (name, option)
    if shutil.which("groff"):
        for path in written:
            proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True, text=True)
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_make_man_writes_the_pages(tmp_path: Path) -> None:
    """The script as ``make man`` runs it."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--man", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "man1" / "cosloss.1").read_text(encoding="utf-8").startswith(".TH COSLOSS 1")
