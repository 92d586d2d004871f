"""The layers of the package, from ONE table: every module in it, no import running back up.

:data:`LAYERS` lists every module of ``cosloss_cli``, layer by layer from the ground
up. A module may import a module of its own layer or of a layer below it, never one
above (lazy and type-checking imports included), and no modules may import each other
in a circle. A module that is not in the table fails here, so a new module is placed
on purpose. The diagram of ``docs/design.md`` is generated from the same table
(``python tests/test_layers.py`` rewrites it; a test checks that it is current).
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cosloss_cli"
DESIGN = ROOT / "docs" / "design.md"
START, END = "<!-- layers:start -->", "<!-- layers:end -->"

#: layer -> (what it holds, its modules, names relative to ``cosloss_cli``; "" is the package).
#: From the ground up: each layer may import its own and those above it in this table.
LAYERS: dict[str, tuple[str, list[str]]] = {
    "base": (
        "errors, exit statuses, how values are shown, the terminal, threads and processes",
        ["errors", "status", "base", "base.shown", "base.values", "base.terminal", "base.aside", "base.workers"]
        + ["base.spool"],
    ),
    "core": (
        "the math: sums and losses, the C kernel and its numpy twin, reductions, parameters",
        ["core", "core._kernel", "core._fallback", "core.params", "core.cosine", "core.reduction"],
    ),
    "io": (
        "inputs: formats, readers, datasets, object storage, frames, the output guard",
        ["io", "io.base", "io.formats", "io.streams", "io.storage", "io.guard", "io.names", "io.list_cells"]
        + ["io.wide", "io.delimited", "io.npy", "io.parquet", "io.dataset", "io.weights", "io.group_columns"]
        + ["io.frames", "io.sniff", "io.arrow_batches", "io.arrow_ipc", "io.jsonl", "io.hdf5", "io.safetensors"],
    ),
    "stats": (
        "statistics of losses: distribution, intervals, pooled, tail risk, the figures",
        ["stats", "stats.distribution", "stats.saddlepoint", "stats.paired", "stats.intervals", "stats.tail"]
        + ["stats.pooled", "stats.figures", "stats.groups"],
    ),
    "pairing": (
        "two inputs aligned: columns paired, rows matched by id or key, shapes checked",
        ["pairing", "pairing.rows", "pairing.align", "pairing.join"],
    ),
    "pipeline": (
        "one route from two inputs to a LossResult",
        ["pipeline", "pipeline.result", "pipeline.threads", "pipeline.spilled", "pipeline.small_pairs"]
        + ["pipeline.reducer", "pipeline.blocks"]
        + ["pipeline.compute"],
    ),
    "render": (
        "results as tables, JSON, NDJSON, CSV and files; progress; what every --report page shares",
        ["render", "render.output", "render.progress", "render.result", "render.writers", "render.report"],
    ),
    "batch": (
        "many pairs of files: pairing, running, merging, their renderers",
        ["batch", "batch.stop", "batch.pairing", "batch.pair", "batch.split", "batch.groups", "batch.merge"]
        + ["batch.runner", "batch.cluster", "batch.render", "batch.report"],
    ),
    "compare": (
        "models compared on the same labels, runs of them, saved baselines, their renderers",
        ["compare", "compare.baseline", "compare.models", "compare.render", "compare.runs", "compare.runs_render"]
        + ["compare.report"],
    ),
    "library": ("the public names, loaded lazily", [""]),
    "cli": (
        "one thin module per command, the option groups, the error edge",
        ["cli.edge", "cli.options", "cli.compute", "cli.batch", "cli.runs", "cli.compare", "cli", "__main__"],
    ),
}

#: Modules that must not import a third-party package (at any depth): what keeps
#: ``cosloss --help`` free of numpy, and click at the edge.
THIRD_PARTY_BANS: dict[str, list[str]] = {
    "core": ["click", "rich"],
    "io": ["click", "rich"],
    "stats": ["click"],
    "pairing": ["click", "rich"],
    "pipeline": ["click", "rich"],
    "batch": ["click"],
    "render": ["click"],
    "compare": ["click"],
    "errors": ["numpy", "click"],
    "core.params": ["numpy", "click"],
    "render.output": ["numpy", "click"],
    "cli.options": ["numpy"],
}

#: Commands never import each other (each is loaded alone by the lazy group).
COMMANDS = ["cli.compute", "cli.batch", "cli.compare"]


#: The package's own imports that stay inside a function (module -> the modules it may
#: import there, prefixes relative to ``cosloss_cli``); every other own import stands at
#: the top. Each keeps numpy (or a rarely used reader) out of a start-up that never uses
#: it, measured in bench/RESULTS.md (round 10); docs/design.md says why for each.
_LIBRARY_OF_A_COMMAND = ("pipeline", "stats", "compare", "render.result", "render.writers", "render.progress")
#: The --report pages (render.report, compare.report, batch.report) are loaded only for --report:
#: they bring the statistics they draw, and matplotlib when a chart is drawn.
_COMMAND_BODIES = (*_LIBRARY_OF_A_COMMAND, "render.report", "cli.runs", "batch.cluster", "batch.split")
KEPT_IN_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "": ("",),  # the package's public names, loaded on first use
    "cli": ("core.cosine",),  # --version
    "cli.options": ("pipeline.result",),
    **{command: (*_COMMAND_BODIES, "batch.groups", "batch.render", "batch.report") for command in COMMANDS},
    **{f"batch.{name}": ("core", "stats", "pipeline", "pairing", "render") for name in ("groups", "merge", "pair")},
    "batch.render": ("render.result",),
    "batch.runner": ("pipeline",),  # the pipeline, loaded before the workers fork
    "io": ("io.dataset",),
    "io.weights": ("io.delimited",),
    "pipeline.compute": ("pipeline.blocks",),  # any pair but a small NPY one: start-up of a small compute
    # rows matched by id, --group-by (and the dataset reader it needs): start-up of a compute by position
    "pipeline.blocks": ("pairing.join", "io.group_columns", "stats.groups"),
    "stats.intervals": ("stats.paired",),  # compare's tests: start-up of a compute
    "pipeline.reducer": ("pipeline.spilled",),  # millions of losses only: start-up of a small compute
    "core.cosine": ("core._kernel",),  # optional: the numpy twin sums where it is not built
}


def full(name: str) -> str:
    return "cosloss_cli" + (f".{name}" if name else "")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LAYER_OF = {full(module): layer for layer, (_, modules) in LAYERS.items() for module in modules}
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}
#: the modules on disk (the C kernel is one too: a Python module where it is built)
FOUND = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
KNOWN = set(FOUND) | {name for name in LAYER_OF if (PACKAGE / name.replace(".", "/")[12:]).with_suffix(".c").exists()}


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for every check here."""
    return ast.parse(path.read_text(encoding="utf-8"))


def imported(path: Path) -> set[str]:
    """Every name ``path`` imports (relative imports resolved), ``module.name`` for each name of a ``from``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def own_modules(names: set[str]) -> set[str]:
    """The package's modules among imported names (``pkg.mod.name`` -> ``pkg.mod``)."""
    modules = set()
    for name in names:
        while name and name not in KNOWN:
            name = name.rpartition(".")[0]
        if name:
            modules.add(name)
    return modules


IMPORTS = {name: own_modules(imported(path)) - {name} for name, path in FOUND.items()}


def test_every_module_is_in_the_table_once() -> None:
    listed = [full(module) for _, modules in LAYERS.values() for module in modules]
    assert len(listed) == len(set(listed)), "a module is in two layers"
    assert sorted(set(FOUND) - set(listed)) == [], "new modules: place each in a layer of LAYERS"
    assert sorted(set(listed) - KNOWN) == [], "modules of LAYERS that are gone"


def back_imports(imports: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYER_OF[module]}) -> {target} ({LAYER_OF[target]})"
        for module, targets in imports.items()
        for target in targets
        if module in LAYER_OF and target in LAYER_OF and RANK[LAYER_OF[target]] > RANK[LAYER_OF[module]]
    )


def circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(imports.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(imports):
        if node not in index:
            visit(node)
    return found


def test_no_import_runs_back_up() -> None:
    assert back_imports(IMPORTS) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circles(IMPORTS) == []


def test_a_back_import_or_a_circle_is_found() -> None:
    """The checks above would pass vacuously if they could not see one: add one on paper."""
    assert back_imports({**IMPORTS, "cosloss_cli.core.cosine": {"cosloss_cli.pipeline.compute"}}) == [
        "cosloss_cli.core.cosine (core) -> cosloss_cli.pipeline.compute (pipeline)"
    ]
    looped = {**IMPORTS, "cosloss_cli.io.base": IMPORTS["cosloss_cli.io.base"] | {"cosloss_cli.io.npy"}}
    assert ["cosloss_cli.io.base", "cosloss_cli.io.npy"] in circles(looped)


def test_the_import_graph_is_read() -> None:
    assert "cosloss_cli.batch" in IMPORTS["cosloss_cli.cli.batch"]
    assert "cosloss_cli.io" in IMPORTS["cosloss_cli.pipeline.compute"]
    assert "cosloss_cli.core._kernel" in IMPORTS["cosloss_cli.core.cosine"]


@pytest.mark.parametrize("place", sorted(THIRD_PARTY_BANS))
def test_third_party_packages_stay_where_they_belong(place: str) -> None:
    members = [name for name in FOUND if name == full(place) or name.startswith(full(place) + ".")]
    assert members
    banned = THIRD_PARTY_BANS[place]
    found = sorted(
        (name, target)
        for name in members
        for target in imported(FOUND[name])
        if any(target == ban or target.startswith(ban + ".") for ban in banned)
    )
    assert found == []


def test_commands_do_not_import_each_other() -> None:
    commands = {full(name) for name in COMMANDS}
    assert [(name, sorted(IMPORTS[name] & commands)) for name in sorted(commands) if IMPORTS[name] & commands] == []


def private_crossings(names: set[str]) -> list[str]:
    """The private names (``_name``, not a module) among the package's own imported names."""
    return sorted(
        name
        for name in names
        if name.startswith("cosloss_cli.") and name not in KNOWN and name.rpartition(".")[2][:1] == "_"
        if not name.rpartition(".")[2].startswith("__")
    )


def test_no_private_name_crosses_modules() -> None:
    """A name one module shares with another is public (no leading underscore): a module's private
    names are its own to change. Private modules (``core._kernel``) may be imported."""
    crossing = {name: private_crossings(imported(path)) for name, path in FOUND.items()}
    assert {name: found for name, found in crossing.items() if found} == {}
    assert private_crossings({"cosloss_cli.render.report._cell", "cosloss_cli.core._kernel", "numpy._core"}) == [
        "cosloss_cli.render.report._cell"
    ]


def test_the_readme_shows_the_layers_in_order() -> None:
    """The contributor's map in the README: one line of layers, the ground first, in the order of
    :data:`LAYERS` (without ``library``, the package's own ``__init__``), each a folder."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("## Where things live") < readme.index("## Development")
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    line = next(text for text in section.splitlines() if "<-" in text)
    shown = [name.strip() for step in line.split("<-") for name in step.split(",")]
    assert shown == [layer for layer in LAYERS if layer != "library"]
    assert all((PACKAGE / layer).is_dir() for layer in shown)
    assert "(docs/design.md)" in section


def in_functions(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each own import inside a function, outside ``if TYPE_CHECKING``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                continue
            if isinstance(child, ast.ImportFrom) and in_function and child.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1])
                targets = [f"{base}.{child.module}"] if child.module else [f"{base}.{a.name}" for a in child.names]
                found.extend((child.lineno, target) for target in targets)
            elif isinstance(child, ast.Import) and in_function:
                found.extend((child.lineno, a.name) for a in child.names if a.name.startswith("cosloss_cli"))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(parsed(path), False)
    return found


def test_own_imports_stand_at_the_top() -> None:
    """A new import of the package's own modules inside a function fails here: move it to the
    top, or add it to :data:`KEPT_IN_FUNCTIONS` with the start-up cost that it spares."""
    misplaced = []
    for name, path in FOUND.items():
        allowed = [full(prefix) for prefix in KEPT_IN_FUNCTIONS.get(name[12:], ())]
        for line, target in in_functions(path):
            if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed):
                misplaced.append(f"{path.relative_to(ROOT)}:{line} imports {target} in a function")
    assert misplaced == []


def diagram() -> str:
    """The layers as text, the top one first: what ``docs/design.md`` shows."""
    lines = ["```text"]
    for layer, (holds, modules) in reversed(LAYERS.items()):
        folders: dict[str, list[str]] = {}
        for module in modules:
            folder, _, name = module.rpartition(".") if "." in module else ("", "", module)
            if module and (PACKAGE / module.replace(".", "/")).is_dir():
                folder, name = module.replace(".", "/"), "__init__"
            folders.setdefault(folder.replace(".", "/"), []).append(name or "__init__")
        places = "; ".join(
            f"{folder}/: {', '.join(names)}" if folder else ", ".join(names) for folder, names in folders.items()
        )
        lines += [f"{layer:<9}{holds}", f"{'':<9}  {places}", f"{'':<9}  | imports only from the layers below"]
    lines[-1:] = ["```"]
    return "\n".join(lines)


def test_the_design_page_shows_the_table() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    assert START in text and END in text
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == diagram(), "run: python tests/test_layers.py"


if __name__ == "__main__":
    text = DESIGN.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DESIGN.write_text(f"{before}{START}\n{diagram()}\n{END}{after}", encoding="utf-8")
    sys.exit(0)
