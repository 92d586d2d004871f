"""Results as the user sees them: tables, JSON, NDJSON, CSV, files and progress bars.

Holds :mod:`.output` (one registry of writers per result kind), :mod:`.result` (a
:class:`~cosloss_cli.pipeline.compute.LossResult` rendered), :mod:`.writers` (``--output``
files, written whole or not at all), :mod:`.progress` and :mod:`.report` (what every
``--report`` page shares, and the page of ``compute``). May import the pipeline and
every layer below it; never :mod:`cosloss_cli.batch`, :mod:`cosloss_cli.compare` or the
commands (their renderers live with them).
"""
