"""The chunk-state scan: the blocked form (≈2√NC batched ops) is the sequential recurrence, values and
gradients, for every chunk count around the run length (runs of ⌊√NC⌋ plus a one-by-one tail)."""

import pytest
import torch

from lrnnspec.impls.chunks import scan_chunk_states, scan_scalar_states

F64 = dict(dtype=torch.float64)


def _inputs(nc: int, decay: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    S0 = torch.randn(2, 3, 4, 5, generator=gen, **F64).requires_grad_()
    last = (-3.0 * torch.rand(2, 3, nc, generator=gen, **F64)).requires_grad_() if decay else None
    u = torch.randn(2, 3, nc, 4, 5, generator=gen, **F64).requires_grad_()
    return S0, last, u


def _grads(loss, inputs):
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("decay", [False, True], ids=["no_decay", "decay"])
@pytest.mark.parametrize("nc", [1, 2, 3, 4, 5, 8, 9, 10, 15, 16, 17, 63, 64, 65])
def test_blocked_scan_equals_sequential_values_and_gradients(nc, decay):
    S0, last, u = _inputs(nc, decay)
    inputs = [t for t in (S0, last, u) if t is not None]
    gen = torch.Generator().manual_seed(1)
    dE, dF = torch.randn(u.shape, generator=gen, **F64), torch.randn(S0.shape, generator=gen, **F64)
    for use_entering, use_final in ((True, True), (True, False), (False, True)):
        got_E, got_F = scan_scalar_states(S0, last, u)
        want_E, want_F = scan_chunk_states(S0, None if last is None else torch.exp(last)[..., None, None], u)
        torch.testing.assert_close(got_E, want_E, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(got_F, want_F, rtol=1e-13, atol=1e-13)

        def loss(E, F):  # only the outputs in use
            terms = ([(E * dE).sum()] if use_entering else []) + ([(F * dF).sum()] if use_final else [])
            return sum(terms)

        for got, want in zip(_grads(loss(got_E, got_F), inputs), _grads(loss(want_E, want_F), inputs)):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nc", [1, 5, 10])
def test_scalar_scan_passes_gradcheck(nc):
    S0, last, u = (t.detach()[:1, :2, ..., :2, :2] if t.dim() > 3 else t.detach()[:1, :2]
                   for t in _inputs(nc, True))
    inputs = tuple(t.clone().requires_grad_() for t in (S0, last, u))
    assert torch.autograd.gradcheck(scan_scalar_states, inputs)
