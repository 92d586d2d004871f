"""The math: TensorFlow's cosine distance loss on arrays, no files and no terminals.

Holds :mod:`.cosine` (sums, losses, summary), the C kernel ``_kernel.c`` and its numpy
twin :mod:`._fallback` (chosen once, in :mod:`.cosine`), :mod:`.reduction` (TF's weights
and reductions) and :mod:`.params` (the allowed values of the public parameters). May
import only :mod:`cosloss_cli.base` and the errors.
"""
