"""The Triton kernel tests need the ``triton`` package (the ``kernels`` and ``test`` extras install it)."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("triton") else ["test_*.py"]
