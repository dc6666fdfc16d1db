"""delta_product (Gated DeltaProduct) — n_h generalized Householder steps per token.

Per token t: S ← e^{g_t} S (when g is given), then for j = 0..n_h−1
S ← (I − β_{t,j} k_{t,j} k_{t,j}ᵀ) S + β_{t,j} k_{t,j} v_{t,j}ᵀ; o_t = scale · S_tᵀ q_t.

FLA ``chunk_gated_delta_product``'s argument order (fla-core 0.6.0) for every form:
q [B,T,H,K]; k [B,T·n_h,H,K] (unit-norm, or ``use_qk_l2norm_in_kernel=True``), v [B,T·n_h,HV,V],
beta [B,T·n_h,HV] ∈ [0, 2], interleaved with index t·n_h + j; g [B,T,HV] ≤ 0 or None (plain
DeltaProduct); ``num_householder`` = n_h (checked against k's length T·n_h; None infers it from
k and q). FLA's positions, with defaults so that keyword calls may omit g (beta stays required:
omitting it raises SpecError);
initial_state / final state [N,HV,K,V]; ``cu_seqlens`` counts tokens. Returns (o [B,T,HV,V],
final_state or None).

Chunk form: the UT core of :mod:`.delta` on the interleaved micro-step sequence (length T·n_h)
with g_t at micro-step 0 and 0 at the others, read out only at each token's last micro-step.
``chunk_size`` counts **tokens** (like ``cu_seqlens``): one chunk is chunk_size·n_h micro-steps.
FLA's ``chunk_gated_delta_product`` takes no chunk size: its UT (WY) blocks are 64 micro-steps
and it stores the state / computes outputs every 64 tokens. The default ``chunk_size=None`` takes
max(1, 64 // n_h) tokens, i.e. UT blocks of ≈ 64 micro-steps like FLA's (64 tokens at n_h = 2,
128 micro-steps per block, was 1.5× slower on CPU).
"""

from __future__ import annotations

import torch

from lrnnspec.spec.errors import SpecError

from .delta import ut_core
from .delta_rule import normalize_qk
from .driver import Chunked, call, default_chunk_size
from .registry import register_forms


def _prepare(x, p):
    # k [B,T,n_h,HV,K], v [B,T,n_h,HV,V], beta [B,T,n_h,HV] (driver split T·n_h), q [B,T,HV,K], g [B,T,HV]
    out = {n: x[n] for n in ("q", "k", "v", "beta")}
    if x.get("g") is not None:
        g = x["g"]
        out["g"] = torch.cat([g[:, :, None], g.new_zeros((g.shape[0], g.shape[1], x["k"].shape[2] - 1,
                                                           g.shape[2]))], dim=2)          # [B,T,n_h,HV]
    return out


def _core(xs, state, p, size):
    k = xs["k"]
    n, length = k.shape[2], k.shape[1]

    def flat(t):
        return None if t is None else t.reshape(t.shape[0], length * n, *t.shape[3:])

    o, S = ut_core(xs["q"], flat(k), flat(xs["v"]), flat(xs["beta"]), flat(xs.get("g")), state["S"], p.scale,
                   size * n, every=n)
    return o, {"S": S}


CHUNKED = Chunked(prepare=_prepare, core=_core)


def _check_householder(q, k, num_householder):
    """``num_householder`` against k's interleaved length; None infers it from k and q. Returns it."""
    if num_householder is None:
        if isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and q.dim() >= 2 and k.dim() >= 2:
            if q.shape[1] == 0:
                return 1
            if k.shape[1] % q.shape[1] == 0 and k.shape[1] >= q.shape[1]:
                return k.shape[1] // q.shape[1]
            raise SpecError("num_householder", f"cannot infer it: k has {k.shape[1]} interleaved steps, not a "
                                               f"multiple of q's {q.shape[1]} tokens")
        return 1   # bind reports the bad q / k
    if isinstance(num_householder, bool) or not isinstance(num_householder, int) or num_householder < 1:
        raise SpecError("num_householder", f"must be a positive integer, got {num_householder!r}")
    if isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and q.dim() >= 2 and k.dim() >= 2:
        if k.shape[1] != q.shape[1] * num_householder:
            raise SpecError("num_householder", f"k has {k.shape[1]} interleaved steps but q has {q.shape[1]} "
                                               f"tokens: k's time axis must be T·num_householder = "
                                               f"{q.shape[1]}·{num_householder} = {q.shape[1] * num_householder}")
    return num_householder


def _run(form, q, k, v, g, beta, num_householder, scale, initial_state, output_final_state,
         use_qk_l2norm_in_kernel, cu_seqlens, chunk_size=None):
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call(form, "delta_product", CHUNKED, dict(q=q, k=k, v=v, beta=beta, g=g), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_gated_delta_product(q, k, v, g=None, beta=None, num_householder=None, scale=None, initial_state=None,
                                  output_final_state=False, use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    num_householder = _check_householder(q, k, num_householder)
    return _run("recurrent", q, k, v, g, beta, num_householder, scale, initial_state, output_final_state,
                use_qk_l2norm_in_kernel, cu_seqlens)


def chunk_gated_delta_product(q, k, v, g=None, beta=None, num_householder=None, scale=None, initial_state=None,
                              output_final_state=False, use_qk_l2norm_in_kernel=False, cu_seqlens=None,
                              chunk_size=None):
    num_householder = _check_householder(q, k, num_householder)
    if chunk_size is None:
        chunk_size = default_chunk_size(num_householder)
    return _run("chunk", q, k, v, g, beta, num_householder, scale, initial_state, output_final_state,
                use_qk_l2norm_in_kernel, cu_seqlens, chunk_size)


FORMS = register_forms("delta_product", {"recurrent": recurrent_gated_delta_product, "chunk": chunk_gated_delta_product})
