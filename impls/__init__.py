"""lrnnspec.impls — fast PyTorch forms (recurrent, chunkwise, parallel) of every family.

Signatures follow the peer library each family comes from (flash-linear-attention, mamba_ssm,
mlstm_kernels) with one argument order and one set of defaults across the forms of a family.
Every form is certified against :mod:`lrnnspec.spec`; :func:`implementations` lists them all.
"""

from .delta_product import chunk_gated_delta_product, recurrent_gated_delta_product
from .delta_rule import chunk_delta_rule, parallel_delta_rule, recurrent_delta_rule
from .dplr import chunk_dplr_delta_rule, recurrent_dplr_delta_rule
from .gated_delta_rule import chunk_gated_delta_rule, parallel_gated_delta_rule, recurrent_gated_delta_rule
from .gla import chunk_gla, parallel_gla, recurrent_gla
from .linear_attention import chunk_linear_attn, parallel_linear_attn, recurrent_linear_attn
from .mamba import chunk_selective_scan, recurrent_selective_scan
from .mamba2 import mamba_chunk_scan_combined, recurrent_mamba2
from .mlstm import chunk_mlstm, parallel_mlstm, recurrent_mlstm
from .registry import Implementation, implementations
from .retention import chunk_retention, parallel_retention, recurrent_retention
from .simple_gla import chunk_simple_gla, parallel_simple_gla, recurrent_simple_gla

__all__ = [
    "implementations", "Implementation",
    "recurrent_linear_attn", "chunk_linear_attn", "parallel_linear_attn",
    "recurrent_retention", "chunk_retention", "parallel_retention",
    "recurrent_simple_gla", "chunk_simple_gla", "parallel_simple_gla",
    "recurrent_gla", "chunk_gla", "parallel_gla",
    "recurrent_mamba2", "mamba_chunk_scan_combined",
    "recurrent_selective_scan", "chunk_selective_scan",
    "recurrent_mlstm", "chunk_mlstm", "parallel_mlstm",
    "recurrent_delta_rule", "chunk_delta_rule", "parallel_delta_rule",
    "recurrent_gated_delta_rule", "chunk_gated_delta_rule", "parallel_gated_delta_rule",
    "recurrent_gated_delta_product", "chunk_gated_delta_product",
    "recurrent_dplr_delta_rule", "chunk_dplr_delta_rule",
]
