"""Kernels for the scope tests: one that ignores an input it accepts, one that cannot run here."""

from lrnnspec.impls.gated_delta_rule import chunk_gated_delta_rule as _gdn


def ignores_scale(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """Takes ``scale`` and never passes it on (fla #47)."""
    return _gdn(q, k, v, g, beta, None, initial_state, output_final_state, chunk_size=64)


def needs_a_gpu_driver(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """What a Triton kernel's autotuner says on a machine without a GPU driver."""
    raise RuntimeError("0 active drivers ([]). There should only be one.")
