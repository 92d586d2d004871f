"""Build the optional C kernel; everything else about the package is in pyproject.toml.

``cosloss_cli/core/_kernel.c`` sums float32/float64 vectors in one pass (see its header).
It is optional: where no C compiler is found the install still succeeds, with a
warning, and cosloss uses its pure-numpy path, which gives the same results to the
last few bits and is about twice as slow on large files.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: -ffp-contract=off: no fused multiply-add, so the AVX2 and baseline builds of the
#: kernel round identically; -Wno-psabi: the vector types are only passed inside the file.
UNIX_FLAGS = ["-O3", "-ffp-contract=off", "-Wno-psabi"]


class BuildExtension(build_ext):
    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for extension in self.extensions:
                extension.extra_compile_args = [*extension.extra_compile_args, *UNIX_FLAGS]
        super().build_extensions()


KERNEL = "cosloss_cli/core/_kernel.c"

#: The kernel's source hash, compiled in as ``_kernel.SOURCE``: a test compares it with the
#: file, so a kernel built from an older version of it is noticed.
SOURCE = hashlib.sha256((Path(__file__).parent / KERNEL).read_bytes()).hexdigest()

setup(
    ext_modules=[
        Extension("cosloss_cli.core._kernel", [KERNEL], define_macros=[("KERNEL_SOURCE", f'"{SOURCE}"')], optional=True)
    ],
    cmdclass={"build_ext": BuildExtension},
)
