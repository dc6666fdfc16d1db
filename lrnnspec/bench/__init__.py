"""Benchmarks: what ``lrnnspec bench`` times and how it reports it.

:mod:`.suite` (CPU: our forms against each other and against fla-core's pure-PyTorch references,
timed alternately in one run) and :mod:`.report` (``reports/bench.md``); :mod:`.gpu_suite` and
:mod:`.gpu_report` the same on a CUDA device (``reports/bench-gpu.md``). Rates count the family's
nominal FLOPs (:func:`lrnnspec.spec.numerics.nominal_flops`); ratios are only ever taken between
measurements of one run.
"""
