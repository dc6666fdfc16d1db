"""Gated-linear chunk cores: the key-gate factored scores equal the sub-chunk path; the ungated per-head
form equals the batched one."""

import pytest
import torch

from lrnnspec.impls import gated_linear


def _scores(monkeypatch, factored: bool, **kw):
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(3, 37, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    G = (-2.0 * torch.rand(3, 37, 5, generator=gen, dtype=torch.float64)).cumsum(-2)  # down to ≈ −40
    monkeypatch.setattr(gated_linear, "FACTORED_RANGE", 60.0 if factored else 0.0)
    return gated_linear.key_gate_scores(q, k, G, **kw), q, k, G


def test_factored_and_subchunk_scores_agree(monkeypatch):
    for strict in (False, True):
        fast, q, k, G = _scores(monkeypatch, True, strict=strict)
        slow, *_ = _scores(monkeypatch, False, strict=strict)
        want = torch.einsum("bik,bjk,bijk->bij", q, k, torch.exp(G[:, :, None] - G[:, None, :]))
        want = want * torch.ones(37, 37, dtype=torch.bool).tril(-1 if strict else 0)
        assert torch.allclose(fast, want, rtol=1e-12, atol=1e-12)
        assert torch.allclose(slow, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [4, 16, None])
@pytest.mark.parametrize("normalize", [False, True])
def test_ungated_by_head_form_equals_batched_form(chunk_size, normalize):
    """Linear attention on CPU runs its chunks per head on strided views when no gradient is needed and
    batched otherwise: outputs and final states agree in float64 (non-contiguous inputs, several
    sequences, an initial state, T not a multiple of the chunk, varlen with an empty segment)."""
    from lrnnspec.impls import chunk_linear_attn, parallel_linear_attn

    gen = torch.Generator().manual_seed(1)
    q, k = (torch.randn(2, 4, 23, 6, generator=gen, dtype=torch.float64).transpose(1, 2) for _ in range(2))
    v = torch.randn(2, 23, 4, 5, generator=gen, dtype=torch.float64)
    S0 = torch.randn(2, 4, 6, 5, generator=gen, dtype=torch.float64)
    z0 = torch.rand(2, 1, 4, 6, generator=gen, dtype=torch.float64)
    cu = torch.tensor([0, 9, 9, 23])
    S0_var = torch.randn(3, 4, 6, 5, generator=gen, dtype=torch.float64)
    z0_var = torch.rand(3, 1, 4, 6, generator=gen, dtype=torch.float64)

    def run(**kw):
        if chunk_size is None:
            return parallel_linear_attn(normalize=normalize, output_final_state=True, **kw)
        return chunk_linear_attn(normalize=normalize, output_final_state=True, chunk_size=chunk_size, **kw)

    for args in (dict(q=q, k=k, v=v, initial_state=(S0, z0) if normalize else S0),
                 dict(q=q[:1].contiguous(), k=k[:1].contiguous(), v=v[:1], cu_seqlens=cu,
                      initial_state=(S0_var, z0_var) if normalize else S0_var)):
        with torch.no_grad():
            o_head, s_head = run(**args)
        grad_args = {n: t.clone().requires_grad_() if n == "v" else t for n, t in args.items()}
        o_batch, s_batch = run(**grad_args)
        torch.testing.assert_close((o_head, s_head), (o_batch, s_batch), rtol=1e-12, atol=1e-12)
