"""Swap-in compatibility: our forms take and return states in flash-linear-attention's layouts."""

import importlib.util
import os

import pytest
import torch

from lrnnspec.impls import linear_attention
from lrnnspec.harness.targets import load_module_file


def _fla_naive(op: str):
    root = importlib.util.find_spec("fla")
    if root is None:
        pytest.skip("fla-core is not installed")
    path = os.path.join(list(root.submodule_search_locations)[0], "ops", op, "naive.py")
    return load_module_file(path, f"_compat_fla_naive_{op}")


@pytest.mark.parametrize("form", ["recurrent", "chunk", "parallel"])
def test_normalized_linear_attention_state_matches_fla_layout(form):
    fla = _fla_naive("linear_attn")
    gen = torch.Generator().manual_seed(0)
    B, T, H, K, V = 2, 7, 2, 4, 3
    q, k = (torch.randn(B, T, H, K, generator=gen, dtype=torch.float64) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=gen, dtype=torch.float64)
    S0 = torch.randn(B, H, K, V, generator=gen, dtype=torch.float64)
    z0 = torch.rand(B, 1, H, K, generator=gen, dtype=torch.float64) + 2.0
    f32 = [t.float() for t in (q, k, v, S0, z0)]  # fla's naive reference computes in float32
    want_o, (want_S, want_z) = fla.naive_recurrent_linear_attn(*f32[:3], initial_state=tuple(f32[3:]),
                                                                output_final_state=True, normalize=True)
    fn = linear_attention.FORMS[form]
    o, (S, z) = fn(q, k, v, initial_state=(S0, z0), output_final_state=True, normalize=True)
    assert z.shape == (B, 1, H, K)
    assert torch.allclose(o, want_o.double(), rtol=1e-5, atol=1e-5)
    assert torch.allclose(S, want_S.double(), rtol=1e-5, atol=1e-5)
    assert torch.allclose(z, want_z.double(), rtol=1e-5, atol=1e-5)
