"""Benchmarks of dltune against Optuna, run side by side: ``python -m benchmarks --help``.

Each benchmark measures both tools on the same work in one run and writes its section of
``benchmarks/RESULTS.md``: ratios and PASS/MISS against the targets first, absolute times second.
"""

from __future__ import annotations

import os

# One thread per process, set before numpy loads here or in any child (children inherit it).
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"
