"""The optional C extensions: the streaming detectors' kernels and the KS merge of the drift
tests (everything else is in pyproject.toml).

``optional=True``: without a C compiler the install still succeeds; the detectors then use their
numba kernels (``watchkeeper --version`` says which kernels are in use) and the KS statistic
its numpy form.
"""

import sys

from setuptools import Extension, setup

# No floating-point contraction: a fused multiply-add rounds differently from the numba kernels
# (and from River), and detections must be identical.
FLAGS = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "watchkeeper.detectors._ckernels",
            ["src/watchkeeper/detectors/_ckernels.c"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "watchkeeper.stats._cstats",
            ["src/watchkeeper/stats/_cstats.c"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
    ]
)
