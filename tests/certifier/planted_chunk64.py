"""Planted bugs that live beyond the first chunk: kernels with the chunk size hard-coded to 64.

``PLANTED_CHUNK64``: kernels with FLA's public signatures *without* ``chunk_size`` (``chunk_gla(q, k, v,
g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None)``, ...), each carrying ONE
realistic bug that only shows beyond the first chunk boundary (T > 64, or T = 64 for the bugs of a
full chunk), or only at long T (T > 512). Every one of them agrees with the spec at every T ≤ 31 —
with and without an initial state, with varlen segments, gradients included —, so a certifier that
draws T ≤ 48 certifies all of them (``tests/certifier/test_chunk64_bugs_are_real.py`` checks both
directions: each bug is visible at its trigger, invisible at T ≤ 31, and the correct kernel it derives
from agrees at the trigger).

Every record names the certifier property that must reject it (``expected_property``; others may
fail too) and the smallest input that shows it (``trigger``). ``base`` is the correct kernel with the
same signature (:data:`CORRECT_CHUNK64`: the :mod:`lrnnspec.impls` chunk forms with chunk_size=64).

How the bugs are planted, as in :mod:`tests.certifier.planted`:

* through :func:`lrnnspec.impls.driver.call` (argument checks, GVA, varlen packing and padding are
  the correct shared code) with a copied, unfactored chunk core — :func:`_gl_core` for the gated
  linear families (simple GLA, GLA), :func:`_ut_core` (the UT transform) for the delta families —
  broken in one line marked ``# BUG``; the unbroken copies are kept as :data:`CORE_COPIES` and
  checked against the spec too;
* as wrappers around the correct public function where the bug is in how a kernel author glued
  launches together: which sequence slice feeds the final state, where the varlen state is
  (re)loaded, which state a backward recompute starts from (:class:`_ChunkwiseRecompute`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from lrnnspec.harness.sequence import PROPERTIES
from lrnnspec.impls import delta_rule as _dr
from lrnnspec.impls import gated_delta_rule as _gdn
from lrnnspec.impls import gla as _gla
from lrnnspec.impls import simple_gla as _sgla
from lrnnspec.impls.chunks import causal_mask, from_chunks, masked_exp, to_chunks
from lrnnspec.impls.delta import unit_lower_inverse
from lrnnspec.impls.driver import Chunked, bind, call, result
from lrnnspec.impls.gated_linear import key_gate_scores

FILE = os.path.abspath(__file__)
CHUNK = 64                     # every kernel of this file: FLA's BT = 64, not a parameter


@dataclass(frozen=True)
class Chunk64Bug:
    """One buggy kernel with the chunk hard-coded to 64. ``base``: the correct kernel with the same
    signature (one of :data:`CORRECT_CHUNK64`)."""

    name: str
    family: str
    convention: str
    fn: Callable
    expected_property: str
    description: str
    trigger: str
    base: Callable

    def __post_init__(self):
        if self.expected_property not in PROPERTIES:
            raise ValueError(f"{self.name}: unknown property {self.expected_property!r}")

    @property
    def target(self) -> str:
        """What the harness imports in the kernel's process: this file's function."""
        return f"{FILE}:{self.fn.__name__}"

    @property
    def base_target(self) -> str:
        return f"{FILE}:{self.base.__name__}"


# =====================================================================================================
# the correct kernels the bugs derive from: lrnnspec.impls chunk forms, chunk fixed at 64
# =====================================================================================================
def chunk_simple_gla_64(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """lrnnspec.impls.simple_gla.chunk_simple_gla with chunk_size=64 (correct)."""
    return _sgla.chunk_simple_gla(q, k, v, g, None, scale, initial_state, output_final_state, cu_seqlens, CHUNK)


def chunk_gla_64(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """lrnnspec.impls.gla.chunk_gla with chunk_size=64 (correct)."""
    return _gla.chunk_gla(q, k, v, g, scale, initial_state, output_final_state, cu_seqlens, CHUNK)


def chunk_gated_delta_rule_64(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                              cu_seqlens=None):
    """lrnnspec.impls.gated_delta_rule.chunk_gated_delta_rule with chunk_size=64 (correct)."""
    return _gdn.chunk_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, False,
                                       cu_seqlens, CHUNK)


def chunk_delta_rule_64(q, k, v, beta, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """lrnnspec.impls.delta_rule.chunk_delta_rule with chunk_size=64 (correct)."""
    return _dr.chunk_delta_rule(q, k, v, beta, scale, initial_state, output_final_state, False, cu_seqlens, CHUNK)


CORRECT_CHUNK64 = {"simple_gla": chunk_simple_gla_64, "gla": chunk_gla_64,
                   "gated_delta_rule": chunk_gated_delta_rule_64, "delta_rule": chunk_delta_rule_64}


# =====================================================================================================
# helpers
# =====================================================================================================
def _prep_valid(names):
    """A Chunked ``prepare`` passing ``names`` through plus ``valid`` [B,T,HV]: 1 at every real token.
    The driver pads it with 0 (past a sequence's end, and in varlen rows past each segment), so a
    core can tell a full chunk (every step valid) from a partial one, as a kernel's masks do."""

    def prepare(x, p):
        return {**{n: x[n] for n in names}, "valid": torch.ones_like(x["v"][..., 0])}

    return prepare


def _stack_chunks(outs: list, v: torch.Tensor) -> torch.Tensor:
    """Per-chunk outputs [N,H,C,V] → [N,T,H,V]; no chunk → the empty output."""
    if not outs:
        return v.new_zeros(v.shape)
    return from_chunks(torch.stack(outs, dim=2))


def _sequences(T: int, cu_seqlens):
    """(start, end, state rows) of every sequence: the whole batch at once, or each cu_seqlens segment."""
    if cu_seqlens is None:
        return [(0, T, slice(None))]
    bounds = cu_seqlens.tolist()
    return [(a, b, slice(i, i + 1)) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def _run_slice(base, x: dict, scale, a: int, b: int, h0):
    """The correct kernel on steps [a, b) of the per-step inputs ``x`` (keyword → [B,T,...]) from ``h0``."""
    return base(**{n: t[:, a:b] for n, t in x.items()}, scale=scale, initial_state=h0, output_final_state=True)


def _per_sequence(run_seq, base, x: dict, scale, initial_state, output_final_state, cu_seqlens):
    """Glue: ``run_seq(base, x, scale, a, b, h0) -> (o, ht)`` on every sequence, outputs concatenated in
    time (varlen) and final states along N. The arguments are first checked by one call of ``base``."""
    full = base(**x, scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens)                                   # argument checks: the correct code
    outs, finals = [], []
    for a, b, rows in _sequences(next(iter(x.values())).shape[1], cu_seqlens):
        h0 = None if initial_state is None else initial_state[rows]
        o, ht = run_seq(base, x, scale, a, b, h0)
        outs.append(o)
        finals.append(ht)
    if not outs:
        return full
    return torch.cat(outs, dim=1), (torch.cat(finals, dim=0) if output_final_state else None)


# =====================================================================================================
# the copied chunk cores (unfactored; loop over chunks), unbroken — the bugs below copy them again
# =====================================================================================================
def _gl_G(xs, size):
    """Chunk-local cumulative log gate [N,H,NC,C,1] (scalar gate) or [N,H,NC,C,K] (key gate)."""
    g = xs["g"] if xs["g"].dim() == 4 else xs["g"][..., None]
    return to_chunks(g, size).cumsum(-2)


def _gl_intra_scores(q, k, G):
    """A[t, s] = Σ_k q_tk k_sk e^{G_tk − G_sk} for s ≤ t (else 0); q already scaled."""
    if G.shape[-1] == 1:
        G1 = G[..., 0]
        return (q @ k.transpose(-1, -2)) * masked_exp(G1[..., :, None] - G1[..., None, :],
                                                      causal_mask(G1.shape[-1], q.device))
    return key_gate_scores(q, k, G)


def _gl_pieces(xs, p, size, G):
    """Everything of the gated linear chunk recurrence but the state loop:
    o_c = intra_c + q_in_c S_c,  S_{c+1} = decay_c ⊙ S_c + U_c."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    q = q * p.scale
    intra = _gl_intra_scores(q, k, G) @ v
    last = G[..., -1:, :]                                          # [N,H,NC,1,Kg]
    q_in = q * torch.exp(G)
    U = (k * torch.exp(last - G)).transpose(-1, -2) @ v            # [N,H,NC,K,V]
    decay = torch.exp(last).transpose(-1, -2)                      # [N,H,NC,Kg,1]
    return intra, q_in, U, decay


def _gl_core(xs, state, p, size):
    """Gated linear attention (simple GLA's scalar gate or GLA's key gate), chunk by chunk."""
    intra, q_in, U, decay = _gl_pieces(xs, p, size, _gl_G(xs, size))
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = decay[:, :, c] * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def _ut_pieces(xs, p, size, G=None):
    """Everything of the (gated) delta rule's UT-transform chunk recurrence but the state loop
    (:mod:`lrnnspec.impls.delta`, the unfactored path):
    U_c = U0_c − W_c S_c,  o_c = q_in_c S_c + scores_c U_c,  S_{c+1} = d_c S_c + ktT_c U_c."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    beta = to_chunks(xs["beta"], size)                             # [N,H,NC,C]
    if G is None:
        G = to_chunks(xs["g"], size).cumsum(-1) if "g" in xs else torch.zeros_like(beta)
    mask = causal_mask(size, k.device)
    gamma = torch.exp((G[..., :, None] - G[..., None, :]).clamp_max(0.0)) * mask
    A = (k @ k.transpose(-1, -2)) * gamma * beta[..., :, None]
    Tm = unit_lower_inverse(A)                                     # (I + strict_lower(A))⁻¹
    U0 = Tm @ (beta[..., None] * v)
    W = Tm @ ((beta * torch.exp(G))[..., None] * k)
    q = q * p.scale
    q_in = q * torch.exp(G)[..., None]
    scores = (q @ k.transpose(-1, -2)) * gamma
    last = G[..., -1:]
    ktT = (k * torch.exp(last - G)[..., None]).transpose(-1, -2)
    d = torch.exp(last)[..., None]                                 # [N,H,NC,1,1]
    return U0, W, q_in, scores, ktT, d


def _ut_core(xs, state, p, size):
    """The (gated) delta rule, chunk by chunk."""
    U0, W, q_in, scores, ktT, d = _ut_pieces(xs, p, size)
    S, outs = state["S"], []
    for c in range(U0.shape[2]):
        U = U0[:, :, c] - W[:, :, c] @ S
        outs.append(q_in[:, :, c] @ S + scores[:, :, c] @ U)
        S = d[:, :, c] * S + ktT[:, :, c] @ U
    return _stack_chunks(outs, xs["v"]), {"S": S}


_SGLA_NAMES, _GLA_NAMES = ("q", "k", "v", "g"), ("q", "k", "v", "g")
_GDN_NAMES, _DR_NAMES = ("q", "k", "v", "g", "beta"), ("q", "k", "v", "beta")


def chunk_simple_gla_core_copy(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False,
                               cu_seqlens=None):
    """The unbroken copy of the gated linear core, simple GLA (a check that the copies are right)."""
    return call("chunk", "simple_gla", Chunked(_prep_valid(_SGLA_NAMES), _gl_core), dict(q=q, k=k, v=v, g=g),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=CHUNK)


def chunk_gla_core_copy(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """The unbroken copy of the gated linear core, GLA."""
    return call("chunk", "gla", Chunked(_prep_valid(_GLA_NAMES), _gl_core), dict(q=q, k=k, v=v, g=g),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=CHUNK)


def chunk_gated_delta_rule_core_copy(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                     cu_seqlens=None):
    """The unbroken copy of the UT core, Gated DeltaNet."""
    return call("chunk", "gated_delta_rule", Chunked(_prep_valid(_GDN_NAMES), _ut_core),
                dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=CHUNK)


def chunk_delta_rule_core_copy(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                               cu_seqlens=None):
    """The unbroken copy of the UT core, DeltaNet."""
    return call("chunk", "delta_rule", Chunked(_prep_valid(_DR_NAMES), _ut_core), dict(q=q, k=k, v=v, beta=beta),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=CHUNK)


CORE_COPIES = {"simple_gla": chunk_simple_gla_core_copy, "gla": chunk_gla_core_copy,
               "gated_delta_rule": chunk_gated_delta_rule_core_copy, "delta_rule": chunk_delta_rule_core_copy}


def _run_sgla(core, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens):
    return call("chunk", "simple_gla", Chunked(_prep_valid(_SGLA_NAMES), core), dict(q=q, k=k, v=v, g=g),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=CHUNK)


def _run_gla(core, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens):
    return call("chunk", "gla", Chunked(_prep_valid(_GLA_NAMES), core), dict(q=q, k=k, v=v, g=g), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=CHUNK)


def _run_gdn(core, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens):
    return call("chunk", "gated_delta_rule", Chunked(_prep_valid(_GDN_NAMES), core),
                dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=CHUNK)


def _run_dr(core, q, k, v, beta, scale, initial_state, output_final_state, cu_seqlens):
    return call("chunk", "delta_rule", Chunked(_prep_valid(_DR_NAMES), core), dict(q=q, k=k, v=v, beta=beta),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=CHUNK)


# =====================================================================================================
# simple_gla
# =====================================================================================================
def _core_cumsum_block_128(xs, state, p, size):
    g = to_chunks(xs["g"][..., None], size)
    G = g.cumsum(-2)
    # BUG: chunk_local_cumsum launched with BT = 128 (the default of the cumsum helper) while every chunk
    # kernel uses BT = 64: the cumulative gate restarts every 128 tokens, so in odd chunks it still holds
    # the previous chunk's total
    odd = (torch.arange(G.shape[2], device=G.device) % 2 == 1).to(G.dtype)[:, None, None]
    prev_total = torch.cat([torch.zeros_like(G[:, :, :1, -1:]), G[:, :, :-1, -1:]], dim=2)
    G = G + odd * prev_total
    intra, q_in, U, decay = _gl_pieces(xs, p, size, G)
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = decay[:, :, c] * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_simple_gla_cumsum_block_128(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False,
                                      cu_seqlens=None):
    """The cumulative log gate is not reset per chunk: ``chunk_local_cumsum`` runs with its own block
    of 128 tokens while the chunk kernels use 64, so in every odd chunk G still includes the previous
    chunk's total.

    Intra-chunk terms only use differences G_t − G_s and stay exact; the read of the entering state
    (q e^{G_t} S_c) and the chunk decay e^{G_C} of every odd chunk are decayed once more by the
    previous chunk's gates. Chunk 0 is exact, so every T ≤ 64 is."""
    return _run_sgla(_core_cumsum_block_128, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


def _core_decay_first_chunk_only(xs, state, p, size):
    intra, q_in, U, decay = _gl_pieces(xs, p, size, _gl_G(xs, size))
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = (decay[:, :, c] * S if c == 0 else S) + U[:, :, c]        # BUG: decay only where h0 is loaded
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_simple_gla_undecayed_carry(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False,
                                     cu_seqlens=None):
    """Undecayed inter-chunk state: the multiply ``b_h *= exp(b_g_last)`` was folded into the block that
    loads the initial state (the first iteration of the chunk loop), so from the second chunk on the
    carried state enters the next chunk without its chunk's decay e^{G_C}.

    Exact for one chunk (h0 is decayed there); wrong for T > 64 whenever the gates are nonzero."""
    return _run_sgla(_core_decay_first_chunk_only, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


def _core_prefix_sum_states(xs, state, p, size):
    G = _gl_G(xs, size)
    intra, q_in, U, decay = _gl_pieces(xs, p, size, G)
    if U.shape[2] == 0:
        return xs["v"].new_zeros(xs["v"].shape), dict(state)
    L = G[:, :, :, -1, 0]                                            # [N,H,NC] chunk totals (≤ 0)
    O = torch.cat([torch.zeros_like(L[..., :1]), torch.cumsum(L, dim=-1)[..., :-1]], dim=-1)   # before chunk c
    # BUG: entering states as one prefix sum, E_c = e^{O_c} (S₀ + Σ_{c'<c} e^{−O_{c'+1}} U_{c'}), instead of
    # the sequential scan: algebraically the same, but e^{−O} overflows float32 once O < −88.7 (inf · 0 = NaN)
    rescaled = torch.exp(-(O + L))[:, :, :-1, None, None] * U[:, :, :-1]          # e^{−O_{c+1}} U_c, c < NC − 1
    prefix = torch.cat([torch.zeros_like(U[:, :, :1]), torch.cumsum(rescaled, dim=2)], dim=2)
    E = torch.exp(O)[..., None, None] * (state["S"][:, :, None] + prefix)
    o = intra + q_in @ E
    final = decay[:, :, -1] * E[:, :, -1] + U[:, :, -1]             # the last chunk's own step
    return from_chunks(o), {"S": final}


def chunk_simple_gla_prefix_sum_states(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False,
                                       cu_seqlens=None):
    """The chunk states come from a prefix sum (a parallel scan) instead of the sequential
    recurrence: E_c = e^{O_c}·(S₀ + Σ_{c'<c} e^{−O_{c'+1}} U_{c'}), O_c = Σ of the log gates before chunk c.

    Algebraically exact (and within rounding while |O| is small), but e^{−O_c} overflows float32 as soon
    as the gates before a chunk sum below −88.7 and e^{O_c}·inf is NaN: strong gates from the second
    chunk on, typical gates (≈ −0.18 per step) from ≈ 500 tokens on (fla #122: NaN at long T). The first
    chunk (O = 0) and the final state (the last chunk's own step) are computed directly: T ≤ 64 is exact
    for every gate."""
    return _run_sgla(_core_prefix_sum_states, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


SUB = 16                       # rows of a sub-tile of the intra-chunk kernels (FLA's BC)


def _core_full_tile_leak(xs, state, p, size):
    G = _gl_G(xs, size)
    intra, q_in, U, decay = _gl_pieces(xs, p, size, G)
    full = to_chunks(xs["valid"], size).amin(-1) > 0                 # [N,H,NC]: all 64 steps are tokens
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    G1 = G[..., 0]
    rows = torch.arange(size, device=G1.device)
    # BUG: the row gate is loaded once per 16-row sub-tile, at the sub-tile's LAST row
    # (g + i_i·BC + BC − 1, a scalar load where the per-row vector was meant): row t is decayed
    # with G_r, r ≥ t, i.e. also by the gates of the steps after it in its sub-tile
    G_row = G1[..., torch.clamp(rows // SUB * SUB + SUB - 1, max=size - 1)]
    leak = ((q * p.scale) @ k.transpose(-1, -2)) * masked_exp(G_row[..., :, None] - G1[..., None, :],
                                                              causal_mask(size, q.device))
    intra = torch.where(full[..., None, None], leak @ v, intra)
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = decay[:, :, c] * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_simple_gla_full_tile_future_gates(q, k, v, g=None, scale=None, initial_state=None,
                                            output_final_state=False, cu_seqlens=None):
    """Future gates leak into earlier outputs (fla #1242/#1244, made visible): the unmasked fast path
    for full 64-token tiles loads the row gate of the intra-chunk decay once per 16-row sub-tile, at
    the sub-tile's last row r, so it computes e^{G_r − G_s} where e^{G_t − G_s} is meant: o_t depends
    on g_{t+1}, …, g_r.

    The masked path for a partial tile (every sequence of at most 63 tokens, and the partial trailing
    tile of longer ones) is right. Two notes on reaching it with a causality check that reverses the
    inputs from t = T // 2 on: a leak confined to a trailing partial tile beyond the first can never be
    seen that way (that tile starts at 64·⌊T/64⌋ ≥ T/2), hence the full tiles; and neither can a leak
    through a sum of gates that the reversal maps onto itself (the whole future: the total of the last
    tile at T = 64, FLA's normalization by G_C). Here the reversal sees it when a 16-row sub-tile of a
    full tile straddles T // 2 (T = 100, 130, …); the forward check sees it at every T ≥ 64."""
    return _run_sgla(_core_full_tile_leak, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


def _seq_start_aligned_down(base, x, scale, a, b, h0):
    first_boundary = (a // CHUNK + 1) * CHUNK
    if a % CHUNK == 0 or first_boundary >= b:
        return _run_slice(base, x, scale, a, b, h0)
    head, _ = _run_slice(base, x, scale, a, first_boundary, h0)
    # BUG: the state carried out of the sequence's first tile is accumulated from the tile's start
    # (a // 64 · 64), not from the sequence's start a: the previous sequence's tokens in that tile get in
    _, carried = _run_slice(base, x, scale, a // CHUNK * CHUNK, first_boundary, h0)
    tail, final = _run_slice(base, x, scale, first_boundary, b, carried)
    return torch.cat([head, tail], dim=1), final


def chunk_simple_gla_varlen_start_aligned_down(q, k, v, g=None, scale=None, initial_state=None,
                                               output_final_state=False, cu_seqlens=None):
    """Varlen: the state kernel walks the packed buffer in 64-token tiles and, for a sequence's first
    tile, starts loading at the tile's start (cu_seqlens[i] aligned down to 64) instead of at
    cu_seqlens[i]. The output kernel masks correctly, so the rows of that tile are right, but the state
    carried out of it has absorbed the tokens of the previous sequence(s) sharing the tile.

    Only a sequence that starts inside a tile and crosses the next multiple of 64 of the packed buffer
    is affected (its outputs after the crossing and its final state); packed T ≤ 64 never is, and
    without cu_seqlens this is the correct kernel."""
    if cu_seqlens is None:
        return chunk_simple_gla_64(q, k, v, g, scale, initial_state, output_final_state)
    return _per_sequence(_seq_start_aligned_down, chunk_simple_gla_64, dict(q=q, k=k, v=v, g=g), scale,
                         initial_state, output_final_state, cu_seqlens)


# =====================================================================================================
# gla
# =====================================================================================================
def _core_state_halved_at_chunk2(xs, state, p, size):
    intra, q_in, U, decay = _gl_pieces(xs, p, size, _gl_G(xs, size))
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        if c == 2:
            S = 0.5 * S                                  # BUG: seam of the two halves combined as a mean
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = decay[:, :, c] * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_gla_state_halved_at_chunk2(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                     cu_seqlens=None):
    """The state is halved at the second chunk boundary (t = 128): for occupancy the state kernel scans
    chunks 0–1 (from h0) and chunks 2… (from zero) in two programs and merges the seam as the *mean*
    (E_A + E_B)/2 of the two partial states instead of carrying E_A on.

    Exact up to T = 128 (the final state of two chunks is taken before the seam); every output and the
    final state after t = 128 see half the carried state."""
    return _run_gla(_core_state_halved_at_chunk2, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


def _core_state_frozen_after_chunk1(xs, state, p, size):
    intra, q_in, U, decay = _gl_pieces(xs, p, size, _gl_G(xs, size))
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        if c == 0:                                       # BUG: the update indented into the h0 block
            S = decay[:, :, c] * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_gla_state_frozen_after_chunk1(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                        cu_seqlens=None):
    """Stale inter-chunk state: the state update (decay and k̃ᵀv) got indented into the ``if i_t == 0``
    block that loads the initial state, so the carried state is updated after chunk 0 and never again.

    T ≤ 64 is exact. For 64 < T ≤ 128 the outputs are right and the final state is the state after
    chunk 0; from T > 128 on every chunk ≥ 2 also reads that state."""
    return _run_gla(_core_state_frozen_after_chunk1, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)


def _seq_final_state_full_chunks(base, x, scale, a, b, h0):
    o, ht = _run_slice(base, x, scale, a, b, h0)
    length = b - a
    last_full = max(length // CHUNK, 1) - 1                  # BUG: floor, not cdiv(length, 64) − 1
    if (last_full + 1) * CHUNK < length:
        _, ht = _run_slice(base, x, scale, a, a + (last_full + 1) * CHUNK, h0)
    return o, ht


def chunk_gla_final_state_full_chunks_only(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                           cu_seqlens=None):
    """The final state is the state after the last FULL chunk: ``ht`` is stored in the chunk loop at
    ``i_t == max(T // BT, 1) - 1`` (floor division, guarded for short sequences) instead of at the last
    chunk ``cdiv(T, BT) - 1``. The partial tail is missing from the final state only; the outputs come
    from the output kernel and are exact.

    Sequences shorter than a chunk (the guard), and T a multiple of 64, are exact; T = 65 is not."""
    return _per_sequence(_seq_final_state_full_chunks, chunk_gla_64, dict(q=q, k=k, v=v, g=g), scale,
                         initial_state, output_final_state, cu_seqlens)


def _gla_remainder_first(x, state, p, length):
    """GLA with the partial chunk FIRST (chunks [0, r), [r, r + 64), … with r = T % 64): the sequence is
    front-padded with neutral tokens, so every chunk after the first is full and needs no mask."""
    r = length % CHUNK
    pad = CHUNK - r
    xs = {n: torch.cat([t.new_zeros((t.shape[0], pad, *t.shape[2:])), t], dim=1) for n, t in x.items()
          if n in _GLA_NAMES}
    intra, q_in, U, decay = _gl_pieces(xs, p, CHUNK, _gl_G(xs, CHUNK))
    # BUG: the initial state's decay over the first chunk is loaded at index min(BT, T) − 1 of the
    # unpadded sequence — the last index of a FULL first chunk — instead of r − 1: h0 is also decayed by
    # the first 64 − r gates of the second chunk
    decay0 = torch.exp(x["g"][:, :min(CHUNK, length)].sum(1))[..., None]          # [N,H,K,1]
    S, outs = state["S"], []
    for c in range(U.shape[2]):
        outs.append(intra[:, :, c] + q_in[:, :, c] @ S)
        S = (decay0 if c == 0 else decay[:, :, c]) * S + U[:, :, c]
    return _stack_chunks(outs, xs["v"])[:, pad:], {"S": S}


def chunk_gla_h0_decayed_by_wrong_chunk(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                        cu_seqlens=None):
    """State passing at an unaligned split: when T % 64 ≠ 0 the kernel processes the partial chunk
    first (remainder-first layout, so that the later chunks are full and unmasked), and decays the
    initial state across that first chunk by the gate sum of tokens 0..63 — the index of a full first
    chunk, ``min(BT, T) − 1`` — instead of 0..r−1.

    Only the initial state's contribution is wrong: without h0 (or with h0 = 0) every T is exact, and
    so are T ≤ 64 (``min`` gives T − 1) and T % 64 == 0. The second half of a state-passing split at an
    unaligned point (T = 130 split at 65: a call with T = 65 and the first half's state) is exactly such
    a call. The varlen path keeps the aligned layout and is correct."""
    T = q.shape[1]
    if cu_seqlens is not None or T <= CHUNK or T % CHUNK == 0:
        return chunk_gla_64(q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)
    b = bind("gla", dict(q=q, k=k, v=v, g=g), value_input="v", initial_state=initial_state,
             options={"scale": scale})
    o, state = _gla_remainder_first(b.x, b.state, b.p, T)
    return result(o.to(b.out_dtype), state, output_final_state)


def _seq_tail_skipped(base, x, scale, a, b, h0):
    length = b - a
    nt = -(-length // CHUNK)
    if nt <= 8 or length % CHUNK == 0:
        return _run_slice(base, x, scale, a, b, h0)
    # BUG: beyond 8 chunks the tail launch is skipped (``if NT <= 8``): the partial last chunk's rows
    # keep the zeros of the output buffer, its tokens never reach the final state
    full = a + (length // CHUNK) * CHUNK
    o, ht = _run_slice(base, x, scale, a, full, h0)
    return torch.cat([o, o.new_zeros((o.shape[0], b - full, *o.shape[2:]))], dim=1), ht


def chunk_gla_tail_skipped_long(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                cu_seqlens=None):
    """The partial last chunk is skipped for long sequences (fla #906: rwkv7 skipped the tail for
    T > 65536): the full chunks run in the main launch and the partial tail in a second one, which is
    guarded by ``if NT <= 8`` (a bound copied from the 8-slot state buffer of the decode path). For
    sequences of more than 8 chunks (T > 512) with T % 64 ≠ 0 the tail rows keep the zeros of the
    output buffer and the tail tokens are missing from the final state."""
    return _per_sequence(_seq_tail_skipped, chunk_gla_64, dict(q=q, k=k, v=v, g=g), scale, initial_state,
                         output_final_state, cu_seqlens)


# =====================================================================================================
# gated_delta_rule
# =====================================================================================================
def _seq_final_second_to_last(base, x, scale, a, b, h0):
    o, ht = _run_slice(base, x, scale, a, b, h0)
    length = b - a
    if length > 0 and length % CHUNK == 0:
        # BUG: ht = h[min(T // BT, NT − 1)] advanced by the tokens of "the chunk holding T": when T is a
        # multiple of 64 there is no such chunk, the index is clamped, and ht is the state entering the
        # last chunk
        _, ht = _run_slice(base, x, scale, a, b - CHUNK, h0)
    return o, ht


def chunk_gated_delta_rule_final_state_second_to_last(q, k, v, g, beta, scale=None, initial_state=None,
                                                      output_final_state=False, cu_seqlens=None):
    """The final state is taken as the saved chunk state h[T // 64] (the state entering the chunk that
    holds position T) advanced by that chunk's tokens before T. When T is a multiple of 64 there is no
    such chunk: the index is clamped to NT − 1 and nothing is advanced, so ``ht`` is the final state of
    the second-to-last chunk (h0 at T = 64).

    Outputs are exact; so is every final state with T % 64 ≠ 0, T ≤ 63 included."""
    return _per_sequence(_seq_final_second_to_last, chunk_gated_delta_rule_64, dict(q=q, k=k, v=v, g=g, beta=beta),
                         scale, initial_state, output_final_state, cu_seqlens)


def _seq_reset_at_tiles(base, x, scale, a, b, h0):
    cuts = [a, *range((a // CHUNK + 1) * CHUNK, b, CHUNK), b]
    outs, ht = [], None
    for start, end in zip(cuts[:-1], cuts[1:]):
        o, ht = _run_slice(base, x, scale, start, end, h0)  # BUG: h0 reloaded at every tile, not only at a
        outs.append(o)
    if ht is None:
        return _run_slice(base, x, scale, a, b, h0)
    return torch.cat(outs, dim=1), ht


def chunk_gated_delta_rule_varlen_reset_at_tiles(q, k, v, g, beta, scale=None, initial_state=None,
                                                 output_final_state=False, cu_seqlens=None):
    """Varlen: the state kernel walks the packed buffer in 64-token tiles and loads the sequence's initial
    state at the start of every tile the sequence touches (the test is ``tile_start >= bos`` where it
    should be ``tile_start <= bos``): the state is reset at the packed buffer's chunk boundaries instead of
    only at the starts in cu_seqlens.

    A sequence crossing a multiple of 64 of the packed buffer restarts there from its initial state;
    packed T ≤ 64 never crosses one, and without cu_seqlens this is the correct kernel."""
    if cu_seqlens is None:
        return chunk_gated_delta_rule_64(q, k, v, g, beta, scale, initial_state, output_final_state)
    return _per_sequence(_seq_reset_at_tiles, chunk_gated_delta_rule_64, dict(q=q, k=k, v=v, g=g, beta=beta),
                         scale, initial_state, output_final_state, cu_seqlens)


def _core_decay_hoisted(xs, state, p, size):
    U0, W, q_in, scores, ktT, d = _ut_pieces(xs, p, size)
    S, outs = state["S"], []
    for c in range(U0.shape[2]):
        U = U0[:, :, c] - W[:, :, c] @ S
        outs.append(q_in[:, :, c] @ S + scores[:, :, c] @ U)
        S = d[:, :, 0] * S + ktT[:, :, c] @ U             # BUG: b_g_last loaded once, before the chunk loop
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_gated_delta_rule_decay_hoisted(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                         cu_seqlens=None):
    """The carried state is decayed by the wrong chunk's gate: the load of the chunk's total log gate
    ``b_g_last`` was hoisted out of the chunk loop, so every chunk decays the state it carries by chunk
    0's e^{G_C}. Exact for one chunk; wrong for T > 64 with gates that differ between chunks."""
    return _run_gdn(_core_decay_hoisted, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens)


def _core_bf16_gate_offsets(xs, state, p, size):
    G = to_chunks(xs["g"], size).cumsum(-1)                        # chunk-local, float32: [N,H,NC,C]
    totals = G[..., -1]
    offsets, z = [], totals.new_zeros(totals.shape[:-1])
    for c in range(G.shape[2]):
        if c == 0:
            offsets.append(torch.zeros_like(z))
        else:
            exact = z + totals[..., c - 1]
            z = exact.to(torch.bfloat16).to(exact.dtype)          # BUG: the running offset kept in bf16
            offsets.append(z - exact)
        # the chunk kernel recovers the local gate as G_global − G_global[chunk start − 1]: exact but for
        # the rounding of the running offset
    G = G + torch.stack(offsets, dim=-1).detach()[..., None] if offsets else G
    U0, W, q_in, scores, ktT, d = _ut_pieces(xs, p, size, G)
    S, outs = state["S"], []
    for c in range(U0.shape[2]):
        U = U0[:, :, c] - W[:, :, c] @ S
        outs.append(q_in[:, :, c] @ S + scores[:, :, c] @ U)
        S = d[:, :, c] * S + ktT[:, :, c] @ U
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_gated_delta_rule_bf16_gate_cumsum(q, k, v, g, beta, scale=None, initial_state=None,
                                            output_final_state=False, cu_seqlens=None):
    """Gates accumulated in low precision over the whole sequence: the global cumsum of the log gates keeps
    its running offset (the sum of the previous chunks' totals) in bfloat16 — the buffer was allocated in
    the model's dtype — and the chunk kernel recovers each chunk's local gate as G − G[chunk start − 1].

    Within a chunk the offset cancels; across a boundary its rounding does not: chunk c's entering state
    is read and decayed with an error of up to half a bf16 ulp of |Σ g| — 0.03 at T = 128, 0.5 at
    T ≈ 1000 with typical gates — so the error grows with T, in float32 as in bf16. Chunk 0 (offset 0)
    is exact."""
    return _run_gdn(_core_bf16_gate_offsets, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens)


# =====================================================================================================
# backward bugs: a recompute-in-backward autograd.Function (forward = the correct kernel, one call)
# =====================================================================================================
class _ChunkwiseRecompute(torch.autograd.Function):
    """Forward: the correct kernel on the whole input. Backward: the chunks are recomputed one by one,
    last to first, each from its entering state, and the VJP of each chunk is taken with the state
    gradient handed back from the chunk after it — with one of two bugs (``mode``):

    ``"drop_state_grad"``  the gradient of the carried state is not handed back across a chunk boundary;
    ``"stale_state"``      every chunk is recomputed from the state entering chunk 0.

    spec = (correct kernel, per-step input names, scale, cu_seqlens, mode)."""

    @staticmethod
    def forward(ctx, spec, h0, *xs):
        base, names, scale, cu_seqlens, _mode = spec
        with torch.no_grad():
            o, ht = base(**dict(zip(names, xs)), scale=scale, initial_state=h0, output_final_state=True,
                         cu_seqlens=cu_seqlens)
        ctx.spec = spec
        ctx.has_h0 = h0 is not None
        ctx.save_for_backward(*xs, *([h0] if h0 is not None else []))
        ctx.state_shape, ctx.state_dtype = ht.shape, ht.dtype
        return o.clone(), ht.clone()

    @staticmethod
    def backward(ctx, d_o, d_ht):
        base, names, scale, cu_seqlens, mode = ctx.spec
        saved = ctx.saved_tensors
        xs = [t.detach() for t in saved[:len(names)]]
        h0 = saved[len(names)].detach() if ctx.has_h0 else None
        grads = [torch.zeros_like(t) for t in xs]
        d_h0 = torch.zeros(ctx.state_shape, dtype=ctx.state_dtype, device=xs[0].device)
        if d_ht is None:
            d_ht = torch.zeros_like(d_h0)
        if d_o is None:
            d_o = torch.zeros_like(xs[2])                                 # o has v's shape and dtype
        for a, b, rows in _sequences(xs[0].shape[1], cu_seqlens):
            start = d_h0.new_zeros(d_h0[rows].shape) if h0 is None else h0[rows].to(d_h0.dtype)
            cuts = [*range(a, b, CHUNK), b]
            entering = [start]
            with torch.no_grad():                                    # the saved chunk states h[i_t]
                for lo, hi in zip(cuts[:-2], cuts[1:-1]):
                    _, s = base(**{n: t[:, lo:hi] for n, t in zip(names, xs)}, scale=scale,
                                initial_state=entering[-1], output_final_state=True)
                    entering.append(s)
            d_state = d_ht[rows]
            for i in range(len(cuts) - 2, -1, -1):
                lo, hi = cuts[i], cuts[i + 1]
                leaves = [t[:, lo:hi].clone().requires_grad_() for t in xs]
                state_in = (entering[0] if mode == "stale_state" else entering[i]).clone().requires_grad_()
                with torch.enable_grad():
                    o, s = base(**dict(zip(names, leaves)), scale=scale, initial_state=state_in,
                                output_final_state=True)
                    got = torch.autograd.grad((o, s), [*leaves, state_in], (d_o[:, lo:hi], d_state),
                                              allow_unused=True)
                for buf, gr in zip(grads, got[:-1]):
                    if gr is not None:
                        buf[:, lo:hi] += gr
                d_state = got[-1]
                if mode == "drop_state_grad" and i > 0:
                    d_state = torch.zeros_like(d_state)   # BUG: dh not handed back across the boundary
            d_h0[rows] = d_state
        needs = ctx.needs_input_grad
        return (None, d_h0.to(h0.dtype) if (h0 is not None and needs[1]) else None,
                *[gr if needs[2 + i] else None for i, gr in enumerate(grads)])


def chunk_gated_delta_rule_backward_stale_state(q, k, v, g, beta, scale=None, initial_state=None,
                                                output_final_state=False, cu_seqlens=None):
    """A backward that is right only for the first chunk: the backward kernel recomputes each chunk from
    its saved entering state h[i_t], but the pointer into the saved states is never advanced, so every
    chunk is recomputed (and differentiated) from the state entering chunk 0. The state gradient is
    handed back correctly. The forward is the correct kernel, exact."""
    o, ht = _ChunkwiseRecompute.apply((chunk_gated_delta_rule_64, _GDN_NAMES, scale, cu_seqlens, "stale_state"),
                                      initial_state, q, k, v, g, beta)
    return o, (ht if output_final_state else None)


def chunk_delta_rule_backward_drops_state_grad(q, k, v, beta, scale=None, initial_state=None,
                                               output_final_state=False, cu_seqlens=None):
    """An inter-chunk backward that drops the state gradient: a recompute-in-backward autograd.Function
    whose backward differentiates each chunk with the cotangent of its outputs (and of ht for the last
    chunk) but never hands the gradient of the chunk's entering state back to the chunk before it. The
    forward is the correct kernel, exact; so is every gradient of a one-chunk sequence (dh0 included)."""
    o, ht = _ChunkwiseRecompute.apply((chunk_delta_rule_64, _DR_NAMES, scale, cu_seqlens, "drop_state_grad"),
                                      initial_state, q, k, v, beta)
    return o, (ht if output_final_state else None)


# =====================================================================================================
# delta_rule
# =====================================================================================================
RING = 8


def _core_chunk_index_wraps(xs, state, p, size):
    U0, W, q_in, scores, ktT, d = _ut_pieces(xs, p, size)
    nc = U0.shape[2]
    S, entering, writes = state["S"], [], []
    for c in range(nc):                                   # the state kernel
        entering.append(S)
        U = U0[:, :, c] - W[:, :, c] @ S
        writes.append(U)
        S = d[:, :, c] * S + ktT[:, :, c] @ U
    # BUG: h holds RING = 8 slots indexed i_t % 8: the output kernel, which runs after the state kernel,
    # reads for chunk c the state of the LAST chunk written to slot c % 8
    slot = [max(j for j in range(nc) if j % RING == c % RING) for c in range(nc)]
    outs = [q_in[:, :, c] @ entering[slot[c]] + scores[:, :, c] @ writes[c] for c in range(nc)]
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_delta_rule_chunk_index_wraps(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                                       cu_seqlens=None):
    """Chunk index overflow after 8 chunks: the buffer of chunk states ``h`` has 8 slots (sized for the
    512-token training length) and is indexed ``i_t % 8``. The state kernel's own recurrence and the
    final state are right, but for T > 512 the output kernel reads chunk c's entering state from a slot a
    later chunk has overwritten — a long prefill corrupts its EARLY outputs (chunk 0 reads chunk 8's)."""
    return _run_dr(_core_chunk_index_wraps, q, k, v, beta, scale, initial_state, output_final_state, cu_seqlens)


def _core_lagged_read(xs, state, p, size):
    U0, W, q_in, scores, ktT, d = _ut_pieces(xs, p, size)
    S, entering, outs = state["S"], [], []
    for c in range(U0.shape[2]):
        entering.append(S)
        U = U0[:, :, c] - W[:, :, c] @ S
        outs.append(q_in[:, :, c] @ entering[max(c - 1, 0)] + scores[:, :, c] @ U)   # BUG: h[i_t − 1]
        S = d[:, :, c] * S + ktT[:, :, c] @ U
    return _stack_chunks(outs, xs["v"]), {"S": S}


def chunk_delta_rule_stale_entering_state(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                                          cu_seqlens=None):
    """Stale inter-chunk state: the output kernel reads the entering state of chunk c from h[i_t − 1]
    (clamped at 0) — the slot the state kernel wrote before its pointer increment — i.e. the state after
    chunk c − 2. The state recurrence, the writes U_c and the final state are right; chunk 0 is exact."""
    return _run_dr(_core_lagged_read, q, k, v, beta, scale, initial_state, output_final_state, cu_seqlens)


# =====================================================================================================
# the corpus
# =====================================================================================================
def _bug(name, family, fn, prop, trigger):
    return Chunk64Bug(name, family, "fla", fn, prop, fn.__doc__, trigger, CORRECT_CHUNK64[family])


PLANTED_CHUNK64: list[Chunk64Bug] = [
    _bug("simple_gla.cumsum_block_128", "simple_gla", chunk_simple_gla_cumsum_block_128, "forward",
         "T ≥ 65 with nonzero gates and a nonzero state entering chunk 1 (odd chunks are over-decayed)"),
    _bug("simple_gla.undecayed_carry", "simple_gla", chunk_simple_gla_undecayed_carry, "forward",
         "T ≥ 129 with nonzero gates (the state entering chunk 2 misses chunk 1's decay); T ≥ 65 for the final "
         "state"),
    _bug("simple_gla.prefix_sum_states", "simple_gla", chunk_simple_gla_prefix_sum_states, "finite",
         "T ≥ 65 with strong gates (Σ g over chunk 0 < −88.7), or T ≳ 500 with typical gates: NaN outputs"),
    _bug("simple_gla.full_tile_future_gates", "simple_gla", chunk_simple_gla_full_tile_future_gates, "causality",
         "a 16-row sub-tile of a full 64-token tile straddling T // 2 (T = 100 or 130): the past outputs change "
         "with the future gates (also fails forward at any T ≥ 64)"),
    _bug("simple_gla.varlen_start_aligned_down", "simple_gla", chunk_simple_gla_varlen_start_aligned_down, "varlen",
         "cu_seqlens with a sequence starting inside a 64-token tile and crossing the next multiple of 64, e.g. "
         "[0, 40, 100]"),
    _bug("gla.state_halved_at_chunk2", "gla", chunk_gla_state_halved_at_chunk2, "forward",
         "T ≥ 129 (a nonzero state entering chunk 2)"),
    _bug("gla.state_frozen_after_chunk1", "gla", chunk_gla_state_frozen_after_chunk1, "final_state",
         "T ≥ 65 with output_final_state=True (the final state misses chunk 1); outputs from T ≥ 129"),
    _bug("gla.final_state_full_chunks_only", "gla", chunk_gla_final_state_full_chunks_only, "final_state",
         "T > 64 with T % 64 ≠ 0 (e.g. T = 65) and output_final_state=True"),
    _bug("gla.h0_decayed_by_wrong_chunk", "gla", chunk_gla_h0_decayed_by_wrong_chunk, "state_passing",
         "a nonzero initial state with T > 64, T % 64 ≠ 0: the second half of T = 130 split at 65 (also fails "
         "forward with an initial state)"),
    _bug("gla.tail_skipped_long", "gla", chunk_gla_tail_skipped_long, "forward",
         "T > 512 with T % 64 ≠ 0 (e.g. T = 513): the tail rows are 0"),
    _bug("gated_delta_rule.final_state_second_to_last", "gated_delta_rule",
         chunk_gated_delta_rule_final_state_second_to_last, "final_state",
         "T a nonzero multiple of 64 (T = 64: ht is the initial state) and output_final_state=True"),
    _bug("gated_delta_rule.varlen_reset_at_tiles", "gated_delta_rule", chunk_gated_delta_rule_varlen_reset_at_tiles,
         "varlen", "cu_seqlens with a sequence crossing a multiple of 64 of the packed buffer, e.g. [0, 40, 100]"),
    _bug("gated_delta_rule.decay_hoisted", "gated_delta_rule", chunk_gated_delta_rule_decay_hoisted, "final_state",
         "T ≥ 65 with output_final_state=True (chunk 1 decays the state by chunk 0's total); the outputs from "
         "T ≥ 129, clearly with weak gates (typical gates leave e^{-10} of a chunk's entering state)"),
    _bug("gated_delta_rule.bf16_gate_cumsum", "gated_delta_rule", chunk_gated_delta_rule_bf16_gate_cumsum, "forward",
         "T ≥ 65 with nonzero gates, in float32; the error grows with T (≈ 30× larger at T = 1024 than at 128)"),
    _bug("gated_delta_rule.backward_stale_state", "gated_delta_rule", chunk_gated_delta_rule_backward_stale_state,
         "gradients", "T ≥ 65: any cotangent on the outputs of chunk ≥ 1 (gradients of q, k, β, g there)"),
    _bug("delta_rule.backward_drops_state_grad", "delta_rule", chunk_delta_rule_backward_drops_state_grad,
         "gradients", "T ≥ 65 with a cotangent on chunk 1's outputs (or on ht): the gradients of chunk 0's inputs "
         "and of h0 miss it"),
    _bug("delta_rule.chunk_index_wraps", "delta_rule", chunk_delta_rule_chunk_index_wraps, "forward",
         "T ≥ 513 (9 chunks): chunk 0's outputs read chunk 8's entering state"),
    _bug("delta_rule.stale_entering_state", "delta_rule", chunk_delta_rule_stale_entering_state, "forward",
         "T ≥ 65: chunk 1's outputs read the state entering chunk 0"),
]
