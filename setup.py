"""The compiled kernels (numfmt.{float,fixed,posit,block}._ckernel); everything else is in pyproject.toml.

The extensions are optional: where one cannot be built, the package still installs
and numfmt uses its NumPy path (with one warning on first use).
"""

import sys
import sysconfig

from setuptools import Extension, setup

# -O3 where the compiler takes GCC-style flags (gcc, clang); MSVC keeps its defaults. The
# kernels' few float operations never trap (numfmt enables no FP traps): -fno-trapping-math
# lets gcc vectorize the loops that hold them (MAGIC_NE of numfmt/float/_ckernel.c).
_GCC_LIKE = sysconfig.get_config_var("CC") is not None and "cl.exe" not in str(sysconfig.get_config_var("CC"))
_ARGS = ["-O3", "-std=c99", "-fno-trapping-math"] if _GCC_LIKE else []
# POSIX threads (numfmt/core/_threads.h); a build without them runs one thread.
_THREADS = ["-pthread"] if _GCC_LIKE and sys.platform != "win32" else []

setup(
    ext_modules=[
        Extension(
            f"numfmt.{family}._ckernel",
            sources=[f"numfmt/{family}/_ckernel.c"],
            depends=[
                "numfmt/core/_rounding.h",
                "numfmt/core/_threads.h",
                "numfmt/core/_call.h",
                "numfmt/float/_element.h",
                "numfmt/block/_nvfp4.h",
                "numfmt/block/_direct.h",
            ],
            extra_compile_args=_ARGS + _THREADS,
            extra_link_args=_THREADS,
            optional=True,
        )
        for family in ("float", "fixed", "posit", "block")
    ]
)
