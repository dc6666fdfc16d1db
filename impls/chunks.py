"""Layout helpers shared by the chunk cores: [N, T, H, ...] ↔ [N, H, NC, C, ...], masks, state scans."""

from __future__ import annotations

import torch


def to_chunks(t: torch.Tensor, size: int) -> torch.Tensor:
    """[N, T, H, *rest] → [N, H, T/size, size, *rest] (T a multiple of ``size``)."""
    n, length, h, *rest = t.shape
    t = t.reshape(n, length // size, size, h, *rest)
    return t.movedim(3, 1).contiguous()  # batched matmuls on strided views are several times slower


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
