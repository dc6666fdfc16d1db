"""Layout helpers shared by the chunk cores: [N, T, H, ...] ↔ [N, H, NC, C, ...], masks, state scans."""

from __future__ import annotations

import torch


def chunk_view(t: torch.Tensor, size: int) -> torch.Tensor:
    """[N, T, H, *rest] → [N, H, T/size, size, *rest] as a strided view (T a multiple of ``size``).
    ``factor * chunk_view(t)`` with a contiguous [N, H, NC, C, 1] factor *first* is laid out like the
    factor (TensorIterator orders dimensions by the first operand's strides): the scaling and the
    chunk copy in one pass."""
    n, length, h, *rest = t.shape
    return t.reshape(n, length // size, size, h, *rest).movedim(3, 1)


def to_chunks(t: torch.Tensor, size: int) -> torch.Tensor:
    """[N, T, H, *rest] → [N, H, T/size, size, *rest] contiguous (T a multiple of ``size``)."""
    return chunk_view(t, size).contiguous()  # batched matmuls on strided views are several times slower


def from_chunks(t: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_chunks`."""
    n, h, nc, size, *rest = t.shape
    return t.movedim(1, 3).reshape(n, nc * size, h, *rest)


def causal_mask(size: int, device, strict: bool = False) -> torch.Tensor:
    """[size, size] boolean, True where column j ≤ row i (j < i when ``strict``)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril(-1 if strict else 0)


def masked_exp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """exp(x) where ``mask``, exactly 0 elsewhere; no overflow and no NaN gradient from masked entries."""
    return x.masked_fill(~mask, -torch.inf).exp_()


def scan_chunk_states(initial: torch.Tensor, decay: torch.Tensor | None, update: torch.Tensor):
    """S_{c+1} = decay_c ⊙ S_c + update_c over chunks c (axis 2 of ``decay``/``update``).

    initial [N, H, *s]; decay [N, H, NC, *b] broadcastable to s (or None: no decay); update
    [N, H, NC, *s]. Returns (states entering each chunk [N, H, NC, *s], final state)."""
    if update.shape[2] == 0:
        return update.new_empty(update.shape), initial
    entering, state = [], initial
    for c in range(update.shape[2]):
        entering.append(state)
        decayed = state if decay is None else decay[:, :, c] * state
        state = decayed + update[:, :, c]
    return torch.stack(entering, dim=2), state


class _ScalarScan(torch.autograd.Function):
    """E_0 = S₀, E_{c+1} = a_c E_c + u_c (a_c = e^{last_c}, or 1): every E_c and E_NC (the final state)
    written into one preallocated buffer, one fused op per chunk; the backward is the same loop
    reversed (H_c = dE_c + a_c H_{c+1}; du_c = H_{c+1}, dS₀ = H_0, dlast_c = a_c ⟨H_{c+1}, E_c⟩)
    instead of autograd through NC small steps and a stack."""

    @staticmethod
    def forward(ctx, initial, a, update):
        nc = update.shape[2]
        E = update.new_empty(update.shape)          # entering states, contiguous
        E[:, :, 0] = initial
        # per-chunk views made once (one unbind each), not by indexing at every step
        us, Es = update.unbind(2), E.unbind(2)
        As = None if a is None else a[..., None, None].unbind(2)

        def step(c, out=None):
            if a is None:
                return torch.add(us[c], Es[c], out=out)
            return torch.addcmul(us[c], As[c], Es[c], out=out)

        for c in range(nc - 1):
            step(c, Es[c + 1])
        final = step(nc - 1)
        ctx.save_for_backward(a, E)
        return E, final

    @staticmethod
    def backward(ctx, d_entering, d_final):
        a, E = ctx.saved_tensors
        nc = E.shape[2]
        H = E.new_empty(E.shape)                    # H[c]: gradient reaching the state after chunk c
        H[:, :, nc - 1] = 0 if d_final is None else d_final
        for c in range(nc - 1, 0, -1):              # H[c−1] = dE_c + a_c H[c]
            nxt = H[:, :, c] if a is None else H[:, :, c] * a[:, :, c, None, None]
            if d_entering is None:
                H[:, :, c - 1] = nxt
            else:
                torch.add(d_entering[:, :, c], nxt, out=H[:, :, c - 1])
        nxt = H[:, :, 0] if a is None else H[:, :, 0] * a[:, :, 0, None, None]
        d_init = nxt if d_entering is None else d_entering[:, :, 0] + nxt
        d_a = None
        if a is not None and ctx.needs_input_grad[1]:
            d_a = (H * E).sum((-2, -1))
        return d_init, d_a, H


def scan_scalar_states(initial: torch.Tensor, last: torch.Tensor | None, update: torch.Tensor):
    """:func:`scan_chunk_states` for a scalar log decay per chunk (``last`` [N, H, NC], ≤ 0, or None
    for no decay): S_{c+1} = e^{last_c} S_c + u_c. initial [N, H, K, V]; update [N, H, NC, K, V].
    The same sequential recurrence, as one autograd node (:class:`_ScalarScan`).
    Returns (entering [N, H, NC, K, V], final state)."""
    if update.shape[2] == 0:
        return update.new_empty(update.shape), initial
    a = None if last is None else torch.exp(last)
    return _ScalarScan.apply(initial, a, update)


class _OverflowSafeExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.where(grad == 0, grad, grad * y)


def overflow_safe_exp(x: torch.Tensor) -> torch.Tensor:
    """exp(x) whose backward gives 0, not 0·inf = NaN, where an overflowed e^x meets a zero
    cotangent. mLSTM's max(|nᵀq|, e^{−m}) overflows to inf in float32 once m < −88; the read-out
    divides by it, so the cotangent reaching e^{−m} is −h/den ≈ 0 and the true product is ≈ 0."""
    return _OverflowSafeExp.apply(x)
