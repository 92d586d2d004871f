"""Two inputs aligned: columns paired by name, rows matched by id or key, and joined.

Holds :mod:`.align` (columns and rows of two sources paired, shapes and row counts
checked) and :mod:`.join` (rows matched by id: the labels streamed, the predictions
gathered by id). May import :mod:`cosloss_cli.stats`, :mod:`cosloss_cli.io`,
:mod:`cosloss_cli.core` and the base; never the pipeline that drives it.
"""
