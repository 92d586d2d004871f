"""Build the optional C kernel; everything else about the package is in pyproject.toml.

``cosloss_cli/core/_kernel.c`` sums float32/float64 vectors in one pass (see its header).
It is optional: where no C compiler is found the install still succeeds, with a
warning, and cosloss uses its pure-numpy path, which gives the same results to the
last few bits and is about twice as slow on large files.
"""

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


setup(
    ext_modules=[Extension("cosloss_cli.core._kernel", ["cosloss_cli/core/_kernel.c"], optional=True)],
    cmdclass={"build_ext": BuildExtension},
)
