"""Many pairs of files at once: pairing, running, merging, and the batch's output formats.

No click and no terminal here: the ``batch`` command (:mod:`cosloss_cli.cli.batch`)
turns what this package returns into output. :mod:`.pairing` finds the pairs (folders
or a manifest), :mod:`.pair` computes one, :mod:`.runner` runs them on an executor
(here or on worker processes; :mod:`.cluster` on a Dask cluster, imported only for
``--scheduler``), :mod:`.merge` pools their figures, :mod:`.render` writes the report
(:mod:`.report` its ``--report`` page).

Parallelism: at most ``jobs`` pairs are in flight, so memory is bounded whatever the
number of pairs. Workers send back summaries (and losses only when they are asked
for); every number of the report is computed from per-pair results combined in name
order, so results are identical for any number of jobs.

Imports: ``cosloss batch --help`` loads this package (the command imports it at its
top), so its modules import no numpy at their top. What needs numpy (the core, the
statistics, the pipeline, the writers of ``--output-dir``) is imported inside the
functions that run a pair or merge the figures; every other import stands at the top.
"""

from __future__ import annotations

from ..io.formats import natural_key
from .merge import Overall, Report, in_name_order, overall
from .pair import PairResult, PairTask, run_pair
from .pairing import MAX_LISTED, Discovery, Pair, discover_pairs, is_safe_name, read_manifest
from .runner import BatchRunner, Executor, InProcess, LocalPool, default_jobs, local_executor

__all__ = [
    "MAX_LISTED",
    "BatchRunner",
    "Discovery",
    "Executor",
    "InProcess",
    "LocalPool",
    "Overall",
    "Pair",
    "PairResult",
    "PairTask",
    "Report",
    "default_jobs",
    "discover_pairs",
    "in_name_order",
    "is_safe_name",
    "local_executor",
    "natural_key",
    "overall",
    "read_manifest",
    "run_pair",
]
