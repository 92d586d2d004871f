"""Statistics of losses: the figures a result gains beyond its mean.

Holds :mod:`.distribution` (percentiles, worst rows, histogram), :mod:`.intervals`
(bootstrap intervals and paired comparisons), :mod:`.paired` (their t-test and
Wilcoxon test), :mod:`.saddlepoint`, :mod:`.tail`,
:mod:`.pooled` (exact percentiles of many pairs), :mod:`.figures` (what a result asks
for). May import
:mod:`cosloss_cli.core`, :mod:`cosloss_cli.io` (weights files) and the base.
"""
