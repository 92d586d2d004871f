"""Measure a speed trick: the same cosloss command from two checkouts, paired, in one run.

``run.py`` pairs cosloss with a peer; this pairs cosloss with itself without one trick.
Each checkout (a worktree with the trick, another with it replaced by the standard tool)
runs the cosloss command of a ``run.py`` row, or ``cosloss --version`` (row
``version``), started as the console script starts it (``run()``). The two alternate,
which one goes first flipping each round, after one warm-up each; the report gives the
medians, the paired-median ratios (without / with: above 1, the trick pays) of wall
time and CPU seconds, and their noise: half the interquartile range of the paired
ratios. The load average is printed before and after.

    python bench/ab.py --with . --without /tmp/no-trick --only small,batch,version --repeat 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

#: Starts cosloss from the checkout given first, as the console script does.
LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from cosloss_cli.cli import run; run()"


def launch(tree: str) -> list[str]:
    return [run.PYTHON, "-c", LAUNCH, str(Path(tree).resolve())]


def commands(name: str, folder: Path, sizes: run.Sizes) -> list[tuple[str, list[str]]]:
    """(label, cosloss arguments) of each distinct cosloss command of a row."""
    if name == "version":
        return [("cosloss --version", ["--version"])]
    if name == "batch-large":  # batch over compare-runs' 90 pairs of 2,000 x 384
        _, labels, predictions = run.make_runs(folder, sizes.runs, sizes.runs_rows, sizes.runs_dim)
        return [("cosloss batch -j 2 --json -q (90 pairs)", ["batch", labels, predictions, "-j", "2", "--json", "-q"])]
    verb = "batch" if name.startswith("batch") else "compare" if name.startswith("compare") else "compute"
    seen: dict[str, list[str]] = {}
    for label, _peer, files, extra in run.scenario_rows(name, folder, sizes):
        given = files[2:] if name == "compare-runs" else files[:2] if name == "compute-groups" else files
        seen.setdefault(label, [verb, *given, *extra])
    return list(seen.items())


def spread(values: list[float]) -> float:
    """Half the interquartile range: how far a typical pair strays from the median."""
    if len(values) < 4:
        return (max(values) - min(values)) / 2
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / 2


def measure_pairs(with_cmd: list[str], without_cmd: list[str], repeat: int) -> dict[str, float]:
    run.measure(with_cmd)
    run.measure(without_cmd)
    a: list[run.Measurement] = []
    b: list[run.Measurement] = []
    for i in range(repeat):
        first, second = (with_cmd, without_cmd) if i % 2 == 0 else (without_cmd, with_cmd)
        m1, m2 = run.measure(first), run.measure(second)
        (a if first is with_cmd else b).append(m1)
        (b if first is with_cmd else a).append(m2)
    wall = [y.seconds / x.seconds for x, y in zip(a, b, strict=True)]
    cpu = [y.cpu_seconds / x.cpu_seconds for x, y in zip(a, b, strict=True)]
    return {
        "with": statistics.median(m.seconds for m in a),
        "with_cpu": statistics.median(m.cpu_seconds for m in a),
        "without": statistics.median(m.seconds for m in b),
        "without_cpu": statistics.median(m.cpu_seconds for m in b),
        "ratio": statistics.median(wall),
        "noise": spread(wall),
        "cpu_ratio": statistics.median(cpu),
        "cpu_noise": spread(cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with", dest="with_tree", required=True, help="checkout with the trick")
    parser.add_argument("--without", dest="without_tree", required=True, help="checkout with the standard tool")
    parser.add_argument("--only", required=True, help="comma-separated run.py rows, version, or batch-large")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--full", action="store_true", help="run.py's --full sizes")
    parser.add_argument("--data-dir", default=None, help="reuse (and keep) run.py's data files here")
    parser.add_argument("--trick", default="the trick", help="its name, for the table")
    args = parser.parse_args(argv)

    sizes = run.FULL if args.full else run.QUICK
    folder = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="cosloss-ab-"))
    folder.mkdir(parents=True, exist_ok=True)
    run.PYCACHE = folder / "pycache"
    print(f"Machine: {run.machine()}; load average before: {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| trick | row | with (CPU) | without (CPU) | ratio without/with | noise | CPU ratio | CPU noise |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name in (n.strip() for n in args.only.split(",") if n.strip()):
        for label, arguments in commands(name, folder, sizes):
            r = measure_pairs(
                [*launch(args.with_tree), *arguments], [*launch(args.without_tree), *arguments], args.repeat
            )
            print(
                f"| {args.trick} | {name}: {label} | {r['with']:.3f} s ({r['with_cpu']:.3f}) "
                f"| {r['without']:.3f} s ({r['without_cpu']:.3f}) | {r['ratio']:.3f}x | ±{r['noise']:.3f} "
                f"| {r['cpu_ratio']:.3f}x | ±{r['cpu_noise']:.3f} |",
                flush=True,
            )
    print(f"\nLoad average after: {os.getloadavg()[0]:.1f}; {args.repeat} pairs per row.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
