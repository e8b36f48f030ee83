"""Build script: compiles etcd3/_speedups when Cython and a C compiler are available.

Without them the package installs with the pure-Python codec and says so; set
``ETCD3_REQUIRE_EXTENSIONS=1`` to make a missing extension a build error (wheels).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("ETCD3_REQUIRE_EXTENSIONS", "") not in ("", "0")
SKIP = os.environ.get("ETCD3_NO_EXTENSIONS", "") not in ("", "0") and not REQUIRE


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the C build is impossible."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler, missing headers, ...
            self._fallback(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._fallback(error)

    @staticmethod
    def _fallback(error: Exception) -> None:
        if REQUIRE:
            raise
        sys.stderr.write(
            "WARNING: etcd3's compiled codec could not be built "
            f"({error}); installing the pure-Python codec instead.\n")


def extensions() -> list:
    if SKIP:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        sys.stderr.write("WARNING: Cython is not installed; etcd3 installs with its "
                         "pure-Python codec.\n")
        return []
    return cythonize(
        [Extension("etcd3._speedups._codec", ["etcd3/_speedups/_codec.pyx"],
                   extra_compile_args=["-O3"] if sys.platform != "win32" else [])],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
