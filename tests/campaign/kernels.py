"""Kernels for the campaign tests: ``linear_attention`` with FLA's signature on top of the correct
:func:`lrnnspec.impls.linear_attention.chunk_linear_attn`, one correct, one with a planted bug, one
that segfaults. Imported by path in the kernels' own worker processes."""

from __future__ import annotations

import os

from lrnnspec.impls.linear_attention import chunk_linear_attn

FILE = os.path.abspath(__file__)
FAMILY = "linear_attention"


def correct(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    return chunk_linear_attn(q, k, v, scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                             cu_seqlens=cu_seqlens)


def output_scaled(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """The planted bug: the output is 1 % too large (a stray factor in the epilogue)."""
    o, s = chunk_linear_attn(q, k, v, scale=scale, initial_state=initial_state,
                             output_final_state=output_final_state, cu_seqlens=cu_seqlens)
    return o * 1.01, s


def segfaults(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    import ctypes

    return ctypes.string_at(0)
