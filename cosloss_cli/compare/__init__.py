"""Compare models: several predictions files against the same labels, and runs of them.

Holds :mod:`.models` (``compare_files``), :mod:`.runs` (``compare --runs``),
:mod:`.baseline` (saved per-row losses as a baseline) and their renderers
(:mod:`.render`, :mod:`.runs_render`; :mod:`.report` the ``--report`` pages). May
import :mod:`cosloss_cli.render`, the pipeline and every layer below; never
:mod:`cosloss_cli.batch` or the commands.
"""
