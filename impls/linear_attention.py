"""linear_attention — S_t = S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t (FLA ``chunk_linear_attn``).

q, k [B,T,H,K]; v [B,T,HV,V]; state S [N,HV,K,V]. With ``normalize=True`` the state is the pair
(S [N,HV,K,V], z [N,HV,K]), z_t = z_{t−1} + k_t, and o_t = scale·S_tᵀq_t / (scale·q_tᵀz_t + 1e-10).
The default is ``normalize=False`` in every form (FLA's chunk form defaults to True, its
fused_recurrent form to False). The normalizer rides along the value columns: v' = [v, 1],
S' = [S, z], so one scalar-gate core computes numerator and denominator.
Returns (o [B,T,HV,V], final_state or None; a tuple (S, z) when normalizing). As in FLA, the
public z is [N,1,HV,K] (the spec's z [N,HV,K] with a singleton time axis).
"""

from __future__ import annotations

import torch

from lrnnspec.spec.errors import ShapeError

from .driver import Chunked, call
from .gated_linear import scalar_gate_core
from .registry import register_forms


def _core(xs, state, p, size):
    if not p.normalize:
        return scalar_gate_core(xs, state, p, size)
    v = torch.cat([xs["v"], torch.ones_like(xs["v"][..., :1])], dim=-1)
    S = torch.cat([state["S"], state["z"][..., None]], dim=-1)
    o, final = scalar_gate_core({**xs, "v": v}, {"S": S}, p, size)
    o = o[..., :-1] / (o[..., -1:] + p.normalize_eps)
    return o, {"S": final["S"][..., :-1], "z": final["S"][..., -1]}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v")}, core=_core)


def _run(form, q, k, v, scale, initial_state, output_final_state, normalize, cu_seqlens, chunk_size=None):
    if normalize and isinstance(initial_state, (tuple, list)) and len(initial_state) == 2:
        S, z = initial_state
        if getattr(z, "dim", lambda: 0)() != 4 or z.shape[1] != 1:
            raise ShapeError("initial_state", f"z must have FLA's shape [N,1,HV,K], "
                                              f"got {tuple(getattr(z, 'shape', ()))}")
        initial_state = (S, z[:, 0])
    o, state = call(form, "linear_attention", CHUNKED, dict(q=q, k=k, v=v), scale=scale, normalize=normalize,
                    initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                    chunk_size=chunk_size)
    if normalize and state is not None:
        state = (state[0], state[1][:, None])
    return o, state


def recurrent_linear_attn(q, k, v, scale=None, initial_state=None, output_final_state=False, normalize=False,
                          cu_seqlens=None):
    return _run("recurrent", q, k, v, scale, initial_state, output_final_state, normalize, cu_seqlens)


def chunk_linear_attn(q, k, v, scale=None, initial_state=None, output_final_state=False, normalize=False,
                      cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, scale, initial_state, output_final_state, normalize, cu_seqlens, chunk_size)


def parallel_linear_attn(q, k, v, scale=None, initial_state=None, output_final_state=False, normalize=False,
                         cu_seqlens=None):
    return _run("parallel", q, k, v, scale, initial_state, output_final_state, normalize, cu_seqlens)


FORMS = register_forms("linear_attention", {"recurrent": recurrent_linear_attn, "chunk": chunk_linear_attn, "parallel": parallel_linear_attn})
