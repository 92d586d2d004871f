"""One route from two inputs to a :class:`~.result.LossResult`.

Holds :mod:`.result` (the records: :class:`~.result.ComputeOptions` in,
:class:`~.result.LossResult` out), :mod:`.compute` (the route, ``compute_pair``: open
both inputs, align their row blocks, reduce them in the core), :mod:`.threads` (blocks mapped in order, read ahead),
:mod:`.small_pairs` (the fast route of a small pair of NPY files) and :mod:`.spilled`
(losses kept on disk beyond a bound). May import every layer below it: pairing, stats,
io, core, base; never a renderer or a command.
"""
