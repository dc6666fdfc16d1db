"""The key-channel gate scores: the factored fast path equals the always-stable sub-chunk path."""

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
