"""The compiled kernels (numfmt.{float,fixed,block}._ckernel); everything else is in pyproject.toml.

The extensions are optional: where one cannot be built, the package still installs
and numfmt uses its NumPy path (with one warning on first use).
"""

import sysconfig

from setuptools import Extension, setup

# -O3 where the compiler takes GCC-style flags (gcc, clang); MSVC keeps its defaults.
_GCC_LIKE = sysconfig.get_config_var("CC") is not None and "cl.exe" not in str(sysconfig.get_config_var("CC"))
_ARGS = ["-O3", "-std=c99"] if _GCC_LIKE else []

setup(
    ext_modules=[
        Extension(
            f"numfmt.{family}._ckernel",
            sources=[f"numfmt/{family}/_ckernel.c"],
            depends=[
                "numfmt/core/_rounding.h",
                "numfmt/float/_element.h",
                "numfmt/block/_nvfp4.h",
                "numfmt/block/_direct.h",
            ],
            extra_compile_args=_ARGS,
            optional=True,
        )
        for family in ("float", "fixed", "block")
    ]
)
