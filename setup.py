"""The optional C extension of the streaming detectors (everything else is in pyproject.toml).

``optional=True``: without a C compiler the install still succeeds and the detectors use their
numba kernels instead (``watchkeeper --version`` says which kernels are in use).
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
        )
    ]
)
