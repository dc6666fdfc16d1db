"""hgrn — h_t = e^{g_t} ⊙ h_{t−1} + x_t, o_t = h_t.

FLA ``fused_recurrent_hgrn`` / ``chunk_hgrn``'s signature for every form: x, g [B,T,D] (g ≤ 0);
initial_state / final state [N,D]; ``cu_seqlens`` (FLA's chunk_hgrn lacks it; here every form takes it).
Returns (o [B,T,D] in x's dtype, final_state or None).

**Chunk** (:func:`hgrn_core`). Per chunk of C steps entering with h₀, G_t = Σ_{j≤t} g_j (chunk-local,
per channel, non-increasing):

    o_t = e^{G_t} ⊙ h₀ + Σ_{s≤t} e^{G_t − G_s} ⊙ x_s,     h_C = o_C.

When every |G| < ``FACTORED_RANGE`` (one host check) the sum is e^{G_t} ⊙ cumsum_s(e^{−G_s} ⊙ x_s) (both
factors normal floats, exact to rounding; its rounding error u·Σ e^{G_t − G_s}|x_s| is the sequential
one's); otherwise the pairwise decays e^{G_t − G_s} [C, C, D] are formed with the mask before the exp
(every exponent ≤ 0). The chunks are coupled through h₀ (:func:`.chunks.scan_chunk_states`, decay
e^{G_C}). Cost O(C·D) per chunk (O(C²·D) on the exact path).
"""

from __future__ import annotations

import torch

from .chunks import causal_mask, masked_exp, scan_chunk_states
from .driver import Chunked, call
from .gated_linear import FACTORED_RANGE
from .registry import register_forms


def hgrn_core(xs, state, p, size):
    """The chunk form (module docstring). xs: x, g [N, T, D]; state h₀ [N, D]; T % size == 0.
    Returns (o [N, T, D], {"h": final state})."""
    n, length, dim = xs["x"].shape
    x, g = (xs[name].reshape(n, length // size, size, dim) for name in ("x", "g"))        # [N,NC,C,D]
    G = g.cumsum(-2)
    if G.numel() and float(G.detach().abs().max()) < FACTORED_RANGE:
        intra = torch.exp(G) * (torch.exp(-G) * x).cumsum(-2)
    else:
        mask = causal_mask(size, x.device)[..., None]                                      # [C,C,1]
        intra = (masked_exp(G[..., :, None, :] - G[..., None, :, :], mask) * x[..., None, :, :]).sum(-2)
    entering, final = scan_chunk_states(state["h"][:, None], torch.exp(G[:, None, :, -1]), intra[:, None, :, -1])
    o = intra + torch.exp(G) * entering[:, 0, :, None, :]
    return o.reshape(n, length, dim), {"h": final[:, 0]}


CHUNKED = Chunked(prepare=lambda x, p: {"x": x["x"], "g": x["g"]}, core=hgrn_core)


def _run(form, x, g, initial_state, output_final_state, cu_seqlens, chunk_size=None):
    return call(form, "hgrn", CHUNKED, dict(x=x, g=g), initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, value_input="x")


def recurrent_hgrn(x, g, initial_state=None, output_final_state=False, cu_seqlens=None):
    return _run("recurrent", x, g, initial_state, output_final_state, cu_seqlens)


def chunk_hgrn(x, g, initial_state=None, output_final_state=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", x, g, initial_state, output_final_state, cu_seqlens, chunk_size)


FORMS = register_forms("hgrn", {"recurrent": recurrent_hgrn, "chunk": chunk_hgrn})
