"""``python -m cosloss_cli``: the same as the ``cosloss`` command."""

from .cli import run

run()
