"""A kernel whose module imports a compiled extension this machine lacks (as mamba_ssm's does)."""

import mamba_ssm_cuda_ext  # noqa: F401

from lrnnspec.impls.gated_delta_rule import chunk_gated_delta_rule as kernel  # noqa: F401
