"""The delta-type families with a key-channel decay or a separate erase key — kda, gdn2, comba — share
one chunk core (:func:`lrnnspec.impls.kda.erase_core`; their forms against the spec are in
test_field_forms.py): ``use_qk_l2norm_in_kernel`` normalizes q and k (and comba's p) as FLA does.
"""

from __future__ import annotations

import pytest
import torch

from ._families import form, strong_gate_case

FAMILIES = ("kda", "gdn2", "comba")


@pytest.mark.parametrize("family", FAMILIES)
def test_qk_l2norm_in_kernel_normalizes_queries_and_keys(family):
    fn = form(family, "chunk").fn
    case = strong_gate_case(family, 9, seed=7)
    x = case.torch(torch.float64)
    normalized = ("q", "k", "p") if family == "comba" else ("q", "k")          # FLA's comba normalizes p too
    raw = {**x, **{n: (2.0 + i) * x[n] for i, n in enumerate(normalized)}}
    o, _ = fn(**raw, use_qk_l2norm_in_kernel=True, chunk_size=4)
    unit = {**x, **{n: raw[n] / torch.sqrt((raw[n] ** 2).sum(-1, keepdim=True) + 1e-6) for n in normalized}}
    want, _ = fn(**unit, chunk_size=4)
    assert torch.allclose(o, want, rtol=1e-12, atol=1e-12)
