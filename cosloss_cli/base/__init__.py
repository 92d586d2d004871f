"""Plumbing that knows nothing of losses: how values are shown, the terminal, work aside.

Holds :mod:`.shown` (paths, URLs and values as printed), :mod:`.values` (scalars as
JSON values), :mod:`.terminal`, :mod:`.aside` (work on a thread), :mod:`.workers`
(worker processes) and :mod:`.spool` (losses spooled to files). May import only
:mod:`cosloss_cli.errors` and :mod:`cosloss_cli.status`, the ground floor with it.
"""
