"""Planted-bug kernels for the certifier's meta-tests, and the correct kernels it must accept.

``PLANTED``: kernels that each carry ONE realistic bug, derived from a correct kernel of
:mod:`lrnnspec.impls` with the *same signature* (the certifier discovers capabilities from it).
Every record names the certifier property that must reject it (``expected_property``; other
properties may fail too) and the inputs that expose it (``trigger``). ``hides=True`` marks the
bugs that a single fixed random input cannot see: B=1, T=64, H=2, K=V=16, fp32, no initial state,
β ≤ 1, no varlen, default scale and chunk size, allclose(atol=rtol=1e-3) on output *and* final
state (``tests/certifier/test_planted_bugs_are_real.py`` checks both directions).

``CORRECT`` (built lazily on first access): every form of :func:`lrnnspec.impls.implementations`
plus flash-linear-attention 0.6.0's pure-PyTorch references (``fla/ops/*/naive.py``) wrapped to
FLA's public conventions — see :func:`fla_references` for each wrapper's limitations.

How the bugs are planted: most go through :func:`lrnnspec.impls.driver.call` (argument checks,
GVA, varlen packing are the correct shared code) with a *copied and minimally broken* chunk core,
or a small token-loop core (:func:`_loop_core`) where the bug lives in a fused recurrent kernel.
A few are wrappers around the correct public function, where the bug is in how a kernel author
glued kernels together (state hand-off between sequences, autograd, dtype of the output buffer).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from dataclasses import dataclass
from typing import Callable

import torch

from lrnnspec.harness.sequence import PROPERTIES
from lrnnspec.harness.targets import load_module_file
from lrnnspec.impls import delta as _delta
from lrnnspec.impls import gated_delta_rule as _gdn
from lrnnspec.impls import delta_rule as _dr
from lrnnspec.impls import gla as _gla
from lrnnspec.impls import mamba2 as _m2
from lrnnspec.impls import mlstm as _ml
from lrnnspec.impls import simple_gla as _sgla
from lrnnspec.impls.chunks import causal_mask, from_chunks, masked_exp, scan_chunk_states, to_chunks
from lrnnspec.impls.driver import Chunked, call
from lrnnspec.impls.gated_linear import key_gate_scores

FILE = os.path.abspath(__file__)



@dataclass(frozen=True)
class PlantedBug:
    """One buggy kernel. ``fn`` has the signature of ``derives_from`` (``module:function``)."""

    name: str
    family: str
    convention: str
    fn: Callable
    expected_property: str
    description: str
    trigger: str
    hides: bool = False          # invisible to the single fixed random input (module docstring)
    derives_from: str = ""

    def __post_init__(self):
        if self.expected_property not in PROPERTIES:
            raise ValueError(f"{self.name}: unknown property {self.expected_property!r}")

    @property
    def target(self) -> str:
        """What the harness imports in the kernel's process: this file's function."""
        return f"{FILE}:{self.fn.__name__}"

    @property
    def base(self) -> Callable:
        """The correct function this bug derives from."""
        module, name = self.derives_from.split(":")
        return getattr(__import__(module, fromlist=[name]), name)


@dataclass(frozen=True)
class CorrectKernel:
    """A kernel the certifier must accept (``notes``: its declared limitations)."""

    name: str
    family: str
    convention: str
    fn: Callable
    notes: str = ""
    target: str = ""             # lrnnspec.impls forms: their module:function; else this file's function

    def __post_init__(self):
        if not self.target:
            object.__setattr__(self, "target", f"{FILE}:{self.fn.__name__}")


# =====================================================================================================
# helpers
# =====================================================================================================
def _tail_rows(T: int, cu_seqlens, batch: int, chunk_size: int, last_only: bool, device) -> torch.Tensor:
    """[batch, T] bool: rows in the partial last chunk of each sequence (``last_only``: only its last row).
    Sequences are the batch rows, or the ``cu_seqlens`` segments of row 0."""
    bounds = [(0, T)] if cu_seqlens is None else list(zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()))
    row = torch.zeros(T, dtype=torch.bool, device=device)
    for start, end in bounds:
        full = start + (end - start) // chunk_size * chunk_size
        if full < end:
            row[end - 1 if last_only else full:end] = True
    return row.expand(batch, T)


def _loop_core(step: Callable, init: Callable | None = None, finish: Callable | None = None):
    """A :class:`Chunked` core that runs a token loop (a 'fused recurrent' kernel) over the padded
    sequence: ``step(state, x_t, p) -> (state, o_t)``; optional ``init``/``finish`` map the state in/out."""

    def core(xs, state, p, size):
        state = dict(state) if init is None else init(dict(state), p)
        length = next(iter(xs.values())).shape[1]
        outs = []
        for t in range(length):
            state, o = step(state, {n: x[:, t] for n, x in xs.items()}, p)
            outs.append(o)
        if finish is not None:
            state = finish(state, p)
        if outs:
            return torch.stack(outs, dim=1), state
        v = xs["v"]
        return v.new_zeros(v.shape), state

    return core


def _same_signature(base: Callable):
    """Give the decorated function ``base``'s signature (checked: the parameters must be identical)."""

    def deco(fn):
        if inspect.signature(fn) != inspect.signature(base):
            raise TypeError(f"{fn.__name__}: signature differs from {base.__name__}")
        return fn

    return deco


# =====================================================================================================
# simple_gla
# =====================================================================================================
@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_dropped_tail(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                  output_final_state=False, cu_seqlens=None, chunk_size=64):
    """Off-by-one in the chunk count: ``NT = T // BT`` instead of ``cdiv(T, BT)``.

    The partial last chunk of every sequence is never processed: its output rows keep the zeros of
    the output buffer and its tokens never reach the final state. Hides whenever T is a multiple of
    the chunk size — every benchmark shape and the 64/128/2048 of a typical fixed-shape test."""
    g = _sgla._gate(g, g_gamma, v)
    tail = _tail_rows(q.shape[1], cu_seqlens, q.shape[0], chunk_size, False, q.device)
    keep = (~tail)[..., None]
    # tokens of the dropped chunk are never loaded: as if they were neutral (k = v = 0, g = 0)
    o, state = _sgla.chunk_simple_gla(q, k * keep[..., None], v * keep[..., None], g * keep, None, scale,
                                      initial_state, output_final_state, cu_seqlens, chunk_size)
    return o * keep[..., None], state


def _core_global_cumsum(xs, state, p, size):
    """scalar_gate_core with the log-gate cumsum taken over the whole sequence (not reset per chunk)."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    q = q * p.scale
    mask = causal_mask(size, q.device)
    scores = q @ k.transpose(-1, -2)
    G = to_chunks(xs["g"].cumsum(1), size)                       # BUG: should be to_chunks(g).cumsum(-1)
    intra = (scores * masked_exp(G[..., :, None] - G[..., None, :], mask)) @ v
    last = G[..., -1:]
    q_in = q * torch.exp(G)[..., None]
    k_out = k * torch.exp(last - G)[..., None]
    decay = torch.exp(last)[..., None]
    entering, final = scan_chunk_states(state["S"], decay, k_out.transpose(-1, -2) @ v)
    return from_chunks(intra.add_(q_in @ entering)), {"S": final}


_GLOBAL_CUMSUM = Chunked(prepare=_sgla.CHUNKED.prepare, core=_core_global_cumsum)


@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_cumsum_not_reset(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                      output_final_state=False, cu_seqlens=None, chunk_size=64):
    """The cumulative log gate G is computed once over the sequence instead of per chunk.

    Intra-chunk terms only use differences G_i − G_j and stay right; but the inter-chunk read
    ``q·e^{G}·S_enter`` and the chunk decay ``e^{G_last}`` then decay the entering state again from
    the start of the sequence. Exact when the sequence fits in one chunk (T ≤ chunk_size), so a test
    at T = chunk_size = 64 passes; any T > chunk_size, or a smaller chunk_size, exposes it."""
    return call("chunk", "simple_gla", _GLOBAL_CUMSUM, dict(q=q, k=k, v=v, g=_sgla._gate(g, g_gamma, v)),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=chunk_size)


@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_scale_ignored(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                   output_final_state=False, cu_seqlens=None, chunk_size=64):
    """``scale`` is accepted but never forwarded to the kernel, which always uses K^-1/2 (fla#47).

    Hides from every test that calls with the default scale."""
    return call("chunk", "simple_gla", _sgla.CHUNKED, dict(q=q, k=k, v=v, g=_sgla._gate(g, g_gamma, v)),
                scale=None, initial_state=initial_state, output_final_state=output_final_state,  # BUG: scale
                cu_seqlens=cu_seqlens, chunk_size=chunk_size)


@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_unwritten_row(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                   output_final_state=False, cu_seqlens=None, chunk_size=64):
    """Output buffer from ``torch.empty``; the partial last chunk's store mask is ``t < T − 1``.

    The last row of every sequence whose length is not a multiple of the chunk size is never
    written and returns whatever the allocator handed out (often a plausible stale value, or the
    right one left over from a previous identical call). Full chunks are stored correctly, so
    T % chunk_size == 0 hides it; NaN-filled fresh allocations show it."""
    o_tiles, state = _sgla.chunk_simple_gla(q, k, v, g, g_gamma, scale, initial_state, output_final_state,
                                            cu_seqlens, chunk_size)
    o = torch.empty(o_tiles.shape, dtype=o_tiles.dtype, device=o_tiles.device)
    unwritten = _tail_rows(q.shape[1], cu_seqlens, q.shape[0], chunk_size, True, q.device)
    written = (~unwritten)[..., None, None]
    return torch.where(written, o_tiles, o), state


class _ForgetsFinalStateGrad(torch.autograd.Function):
    """Recompute-in-backward wrapper whose backward drops the cotangent of the final state."""

    @staticmethod
    def forward(ctx, run, *tensors):
        ctx.run = run
        ctx.save_for_backward(*tensors)
        with torch.no_grad():
            o, state = run(*tensors)
        return o, state

    @staticmethod
    def backward(ctx, d_o, d_state):
        saved = ctx.saved_tensors
        leaves = [None if t is None else t.detach().requires_grad_(t.requires_grad) for t in saved]
        wrt = [t for t in leaves if t is not None and t.requires_grad]
        grads = iter(())
        if wrt:
            with torch.enable_grad():
                o, _state = ctx.run(*leaves)
            # BUG: should be autograd.grad((o, _state), wrt, (d_o, d_state)) — d_state is ignored
            grads = iter(torch.autograd.grad(o, wrt, d_o, allow_unused=True) if o.requires_grad else [None] * len(wrt))
        return (None, *[next(grads) if (t is not None and t.requires_grad) else None for t in leaves])


@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_no_final_state_grad(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                         output_final_state=False, cu_seqlens=None, chunk_size=64):
    """Custom autograd.Function whose backward ignores the gradient flowing into the final state
    (fla#459: simple_gla's fused_recurrent ``dg`` missed the ``dht`` term).

    The forward is exact and so is every gradient of a loss on the output alone — which is what a
    typical gradient test (``(o * do).sum().backward()``) checks. Only a loss through the final
    state (a chunked prefill that feeds the state onward) exposes it."""
    g = _sgla._gate(g, g_gamma, v)

    def run(q, k, v, g, h0):
        o, state = _sgla.chunk_simple_gla(q, k, v, g, None, scale, h0, True, cu_seqlens, chunk_size)
        return o, state

    o, state = _ForgetsFinalStateGrad.apply(run, q, k, v, g, initial_state)
    return o, (state if output_final_state else None)


# =====================================================================================================
# gla
# =====================================================================================================
@_same_signature(_sgla.chunk_simple_gla)
def chunk_simple_gla_gate_batch_stride(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                                       output_final_state=False, cu_seqlens=None, chunk_size=64):
    """The gate pointer misses the batch stride: ``g + i_h`` where it should be ``g + i_b·T·H + i_h``.

    Every batch row decays with row 0's gates. Invisible at B = 1 (every fixed-shape test with one
    sequence, and every varlen call, which packs into B = 1); moving row 0 elsewhere changes the
    results of every other row."""
    g = _sgla._gate(g, g_gamma, v)
    return _sgla.chunk_simple_gla(q, k, v, g[:1].expand_as(g), None, scale, initial_state,  # BUG: g[0] for all b
                                  output_final_state, cu_seqlens, chunk_size)


def _core_strict_mask(xs, state, p, size):
    """key_gate_core with the intra-chunk causal mask excluding the diagonal."""
    q, k, v, g = (to_chunks(xs[n], size) for n in ("q", "k", "v", "g"))
    q = q * p.scale
    G = g.cumsum(-2)
    intra = key_gate_scores(q, k, G, strict=True) @ v                # BUG: strict=False (j ≤ i)
    last = G[..., -1:, :]
    q_in = q * torch.exp(G)
    k_out = k * torch.exp(last - G)
    decay = torch.exp(last).transpose(-1, -2)
    entering, final = scan_chunk_states(state["S"], decay, k_out.transpose(-1, -2) @ v)
    return from_chunks(intra + q_in @ entering), {"S": final}


_STRICT_MASK = Chunked(prepare=_gla.CHUNKED.prepare, core=_core_strict_mask)


@_same_signature(_gla.chunk_gla)
def chunk_gla_readout_before_update(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                    cu_seqlens=None, chunk_size=64):
    """Reads the output before the step's own update: intra-chunk causal mask ``j < i`` (the
    convention of the *exclusive* decay kernels, e.g. RWKV's) instead of ``j ≤ i``.

    o_t misses q_t·k_t v_t; the final state is right. Visible on any input."""
    return call("chunk", "gla", _STRICT_MASK, dict(q=q, k=k, v=v, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def _gla_step(state, x, p, *, store_dtype):
    S = torch.exp(x["g"])[..., None] * state["S"] + x["k"][..., :, None] * x["v"][..., None, :]
    S = S.to(store_dtype).to(S.dtype)                                # BUG: state kept in the input dtype
    o = (S * (x["q"] * p.scale)[..., :, None]).sum(-2)
    return {"S": S}, o


@_same_signature(_gla.recurrent_gla)
def fused_recurrent_gla_lowp_state(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                   cu_seqlens=None):
    """Fused recurrent GLA whose state ``b_h`` lives in the input dtype (``tl.zeros(..., dtype=q.dtype)``
    / ``b_h.to(k.dtype)`` on every store) instead of float32.

    In float32 it is exact; in bf16/fp16 the state is rounded after every token, so the error grows
    with the memory length far beyond the precision contract (fp32 state): correct kernels in bf16
    only see input/output rounding. A fixed-shape test in fp32 (or with a loose bf16 tolerance) passes."""
    core = _loop_core(functools.partial(_gla_step, store_dtype=v.dtype))
    return call("parallel", "gla", Chunked(prepare=_gla.CHUNKED.prepare, core=core), dict(q=q, k=k, v=v, g=g),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens)


@_same_signature(_gla.chunk_gla)
def chunk_gla_initial_state_ignored(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                                    cu_seqlens=None, chunk_size=64):
    """``initial_state`` is accepted but never reaches the kernel (the ``USE_INITIAL_STATE`` flag is
    computed from a variable that is always None), so every sequence starts from zeros.

    Invisible to every test without an initial state, and to one whose initial state is zero."""
    return call("chunk", "gla", _gla.CHUNKED, dict(q=q, k=k, v=v, g=g), scale=scale,
                initial_state=None, output_final_state=output_final_state,  # BUG: initial_state dropped
                cu_seqlens=cu_seqlens, chunk_size=chunk_size)


# =====================================================================================================
# gated_delta_rule
# =====================================================================================================
def _gdn_step_decay_after_error(state, x, p):
    S = state["S"]
    k, beta = x["k"], x["beta"]
    err = x["v"] - (S * k[..., :, None]).sum(-2)                     # BUG: error on S, not on e^{g}·S
    u = beta[..., None] * err
    S = torch.exp(x["g"])[..., None, None] * S + k[..., :, None] * u[..., None, :]
    o = (S * (x["q"] * p.scale)[..., :, None]).sum(-2)
    return {"S": S}, o


_DECAY_AFTER_ERROR = Chunked(prepare=_gdn.CHUNKED.prepare, core=_loop_core(_gdn_step_decay_after_error))


@_same_signature(_gdn.recurrent_gated_delta_rule)
def fused_recurrent_gated_delta_rule_decay_after_error(q, k, v, g, beta, scale=None, initial_state=None,
                                                       output_final_state=False, use_qk_l2norm_in_kernel=False,
                                                       cu_seqlens=None):
    """Gated DeltaNet with the decay applied *after* the error term: u_t = β_t (v_t − S_{t−1}ᵀk_t),
    S_t = e^{g_t} S_{t−1} + k_t u_tᵀ, instead of u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀk_t).

    The two orders agree when g = 0 (plain DeltaNet) or at the first step from a zero state — so a
    test with gates switched off, or one comparing against DeltaNet, passes; any real gate shows it."""
    q, k = _dr.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("parallel", "gated_delta_rule", _DECAY_AFTER_ERROR, dict(q=q, k=k, v=v, g=g, beta=beta),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens)


def _core_state_before_last_chunk(xs, state, p, size):
    o, final = _delta.delta_rule_core(xs, state, p, size)
    length = xs["k"].shape[1]
    if length <= size:
        return o, dict(state)                                        # BUG: ht stored before the chunk loop body
    head = {n: x[:, :length - size] for n, x in xs.items()}
    _, before_last = _delta.delta_rule_core(head, state, p, size)
    return o, before_last


_STATE_BEFORE_LAST = Chunked(prepare=_gdn.CHUNKED.prepare, core=_core_state_before_last_chunk)


@_same_signature(_gdn.chunk_gated_delta_rule)
def chunk_gated_delta_rule_stale_final_state(q, k, v, g, beta, scale=None, initial_state=None,
                                             output_final_state=False, use_qk_l2norm_in_kernel=False,
                                             cu_seqlens=None, chunk_size=64):
    """The final state ``ht`` is stored at the top of the chunk loop, i.e. before the last chunk's
    update: it is the state *entering* the last chunk.

    Outputs are exact, so every output-only test passes."""
    q, k = _dr.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "gated_delta_rule", _STATE_BEFORE_LAST, dict(q=q, k=k, v=v, g=g, beta=beta),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state,
                cu_seqlens=cu_seqlens, chunk_size=chunk_size)


@_same_signature(_gdn.chunk_gated_delta_rule)
def chunk_gated_delta_rule_varlen_leak(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                       use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """Varlen: the state is not reset at sequence boundaries — sequence i starts from the final state
    of sequence i − 1 (only sequence 0 gets its ``initial_state``).

    Without ``cu_seqlens`` it is the correct kernel; with one sequence too."""
    if cu_seqlens is None:
        return _gdn.chunk_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state,
                                           use_qk_l2norm_in_kernel, None, chunk_size)
    bounds = cu_seqlens.tolist()
    state = None if initial_state is None else initial_state[:1]
    outs, finals = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        o, state = _gdn.chunk_gated_delta_rule(q[:, a:b], k[:, a:b], v[:, a:b], g[:, a:b], beta[:, a:b], scale,
                                               state, True, use_qk_l2norm_in_kernel, None, chunk_size)
        outs.append(o)
        finals.append(state)          # BUG: the next sequence starts from this state, not from h0[i]
    o = torch.cat(outs, dim=1)
    return o, (torch.cat(finals, dim=0) if output_final_state else None)


@_same_signature(_gdn.chunk_gated_delta_rule)
def chunk_gated_delta_rule_scales_q_in_place(q, k, v, g, beta, scale=None, initial_state=None,
                                             output_final_state=False, use_qk_l2norm_in_kernel=False,
                                             cu_seqlens=None, chunk_size=64):
    """Pre-scales the caller's ``q`` in place (``q.mul_(scale)``, to save a buffer) and runs the
    kernel with scale 1.

    The returned output is right, so any single-call test passes; the caller's q is now scaled, and
    a second call (a rerun, the backward's recompute, the next layer's reuse) is wrong."""
    s = q.shape[-1] ** -0.5 if scale is None else scale
    out = _gdn.chunk_gated_delta_rule(q.clone(), k, v, g, beta, scale, initial_state, output_final_state,
                                      use_qk_l2norm_in_kernel, cu_seqlens, chunk_size)
    with torch.no_grad():
        q.mul_(s)                                                    # BUG: writes into an input
    return out


# =====================================================================================================
# delta_rule
# =====================================================================================================
@_same_signature(_dr.chunk_delta_rule)
def chunk_delta_rule_beta_clamped(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                                  use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """β clamped to [0, 1] "for stability" — the author assumed β = sigmoid(·).

    DeltaNet's β ∈ [0, 2] gives the transition eigenvalue 1 − β ∈ [−1, 1] along k (negative
    eigenvalues: parity/state tracking, Grazzi et al. 2025). Exact for every β ≤ 1, i.e. for every
    test that draws β as a sigmoid or from U(0, 1)."""
    return _dr.chunk_delta_rule(q, k, v, beta.clamp(0.0, 1.0), scale, initial_state, output_final_state,
                                use_qk_l2norm_in_kernel, cu_seqlens, chunk_size)


def _rerun_entropy_generator() -> torch.Generator:
    # the schedule of a GPU kernel's atomics is not a function of its inputs: neither is this
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)


def _core_split_k_atomic(xs, state, p, size):
    """delta_rule_core whose read-out o = Σ_kblocks q_blk·(…) is reduced in an arbitrary order."""
    dk = xs["q"].shape[-1]
    nblk = min(dk, 8)
    edges = [round(i * dk / nblk) for i in range(nblk + 1)]
    parts = []
    final = None
    for a, b in zip(edges[:-1], edges[1:]):
        q_blk = torch.zeros_like(xs["q"])
        q_blk[..., a:b] = xs["q"][..., a:b]
        o_blk, final = _delta.delta_rule_core({**xs, "q": q_blk}, state, p, size)
        parts.append(o_blk)
    order = torch.randperm(len(parts), generator=_rerun_entropy_generator()).tolist()
    o = parts[order[0]]
    for i in order[1:]:                                              # BUG: atomic_add order = schedule order
        o = o + parts[i]
    return o, final


_SPLIT_K = Chunked(prepare=_dr.CHUNKED.prepare, core=_core_split_k_atomic)


@_same_signature(_dr.chunk_delta_rule)
def chunk_delta_rule_atomic_split_k(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                                    use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """Split-K read-out: each key block's partial output is ``atomic_add``-ed into o, so the
    floating-point summation order — and the last bits of o — change from run to run.

    The error is at the level of fp32 rounding: every tolerance-based test passes; only a bitwise
    rerun comparison (FlashAttention's deterministic-backward check) sees it."""
    q, k = _dr.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "delta_rule", _SPLIT_K, dict(q=q, k=k, v=v, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def _ut_core_peeks_next(q, k, v, beta, state, scale, size):
    """ut_core (no gate, read-out every step) with the output mask built as ``tril(diagonal=1)``."""
    batch, dk, dv = k.shape[0], k.shape[-1], v.shape[-1]
    nc = k.shape[1] // size
    if nc == 0:
        return q.new_zeros((*q.shape[:-1], dv)), state
    kc, vc = _delta.chunk_major(k, size), _delta.chunk_major(v, size)
    bc = _delta.chunk_major(beta[..., None], size)[..., 0]
    qc = _delta.chunk_major(q, size) * scale
    mask = torch.ones(size, size, dtype=k.dtype, device=k.device).tril(1)   # BUG: tril(0)
    kT = kc.transpose(-1, -2).contiguous()
    Tb = _delta.unit_lower_inverse((kc @ kT) * bc[..., None]) * bc[..., None, :]
    UW = Tb @ torch.cat([vc, kc], dim=-1)
    U0s, Ws, kTs = UW[..., :dv].unbind(0), UW[..., dv:].unbind(0), kT.unbind(0)
    S = state.reshape(-1, dk, dv)
    entering, writes = [], []
    for c in range(nc):
        entering.append(S)
        U = torch.baddbmm(U0s[c], Ws[c], S, alpha=-1.0)
        writes.append(U)
        S = torch.baddbmm(S, kTs[c], U)
    scores = (qc @ kT) * mask
    o = torch.cat([scores, qc], dim=-1) @ torch.cat([torch.stack(writes), torch.stack(entering)], dim=-2)
    return _delta.from_chunk_major(o, batch), S.reshape(state.shape)


_PEEKS_NEXT = Chunked(prepare=_dr.CHUNKED.prepare,
                      core=lambda xs, s, p, size: (lambda o, S: (o, {"S": S}))(
                          *_ut_core_peeks_next(xs["q"], xs["k"], xs["v"], xs["beta"], s["S"], p.scale, size)))


@_same_signature(_dr.chunk_delta_rule)
def chunk_delta_rule_mask_peeks_next(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                                     use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """Intra-chunk output mask off by one (``tril(1)``): o_t also reads token t + 1's write u_{t+1}
    whenever t + 1 is in the same chunk. A future token changes the past: non-causal."""
    q, k = _dr.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "delta_rule", _PEEKS_NEXT, dict(q=q, k=k, v=v, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


# =====================================================================================================
# mlstm (mlstm_kernels convention)
# =====================================================================================================
@_same_signature(_ml.chunk_mlstm)
def chunk_mlstm_m_initial_ignored(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None,
                                  return_last_states=False, eps=1e-6, *, cu_seqlens=None, scale=None, chunk_size=64):
    """Loads ``c_initial`` and ``n_initial`` but starts the stabilizer from 0 (``m_initial`` is not
    wired to the kernel). The stabilized C, n are only meaningful with their m, so every output
    after a state hand-off is off by e^{m_initial}-ish factors — unless m_initial happens to be 0,
    e.g. the zero initial states of a typical test."""
    if m_initial is not None:
        m_initial = torch.zeros_like(m_initial)                     # BUG
    return _ml.chunk_mlstm(q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps,
                           cu_seqlens=cu_seqlens, scale=scale, chunk_size=chunk_size)


def _mlstm_raw_init(state, p):
    e = torch.exp(state["m"])                                        # un-stabilize the given state
    return {"C": state["C"] * e[..., None, None], "n": state["n"] * e[..., None], "m": state["m"]}


def _mlstm_raw_step(state, x, p):
    ia = torch.exp(x["i"])                                           # BUG: e^{i} without subtracting m
    fa = torch.exp(x["lam"])
    C = fa[..., None, None] * state["C"] + (ia[..., None] * x["k"])[..., :, None] * x["v"][..., None, :]
    n = fa[..., None] * state["n"] + ia[..., None] * x["k"]
    m = torch.maximum(x["lam"] + state["m"], x["i"])                # tracked for the returned state only
    q = x["q"] * p.scale
    den = torch.maximum((n * q).sum(-1).abs(), torch.ones_like(m)) + p.eps * torch.exp(m)
    return {"C": C, "n": n, "m": m}, (C * q[..., :, None]).sum(-2) / den[..., None]


def _mlstm_raw_finish(state, p):
    e = torch.exp(-state["m"])
    return {"C": state["C"] * e[..., None, None], "n": state["n"] * e[..., None], "m": state["m"]}


_UNSTABILIZED = Chunked(prepare=_ml.CHUNKED.prepare, pads=_ml.CHUNKED.pads,
                        core=_loop_core(_mlstm_raw_step, _mlstm_raw_init, _mlstm_raw_finish))


@_same_signature(_ml.recurrent_mlstm)
def recurrent_mlstm_unstabilized(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None,
                                 return_last_states=False, eps=1e-6, *, cu_seqlens=None, scale=None):
    """mLSTM without the max-stabilizer in the recurrence: C ← σ(f)·C + e^{i}·k vᵀ (and n), read-out
    Cᵀq / max(|nᵀq|, 1) — algebraically identical to the stabilized form (the stabilizer cancels),
    and the returned (C, n, m) are re-stabilized, so they match too.

    But e^{i} overflows float32 at i ≳ 88.7 (and the raw state grows like e^{Σ i}): inf/NaN
    outputs on valid inputs. With i ~ N(0, 1) nothing overflows."""
    inputs, initial = _ml._bind(q, k, v, i, f, c_initial, n_initial, m_initial, cu_seqlens)
    o, last = call("parallel", "mlstm", _UNSTABILIZED, inputs, initial_state=initial, output_final_state=True,
                   cu_seqlens=cu_seqlens, scale=scale, eps=eps)
    o = o.transpose(1, 2)
    if not return_last_states:
        return o
    c, n, m = last
    return o, (c, n, m[..., None])


# =====================================================================================================
# mamba2 (mamba_ssm convention)
# =====================================================================================================
@_same_signature(_m2.mamba_chunk_scan_combined)
def mamba_chunk_scan_combined_unmasked_tail(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None,
                                            initial_states=None, seq_idx=None, cu_seqlens=None, dt_softplus=False,
                                            dt_limit=(0.0, math.inf), return_final_states=False):
    """The last, partial chunk is loaded without the ``t < T`` mask: its padding rows read the
    memory that follows the sequence (the next sequence of the batch / packed buffer; past the end
    of the buffer, its start — whatever is there) as if they were tokens.

    Outputs are causal, so the valid rows are exact; the chunk-end state and therefore the final
    state absorb the garbage tokens. Hides when T % chunk_size == 0 or when the final state is
    not checked."""
    if x.shape[0] * x.shape[1] == 0 or seq_idx is not None:
        return _m2.mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx,
                                             cu_seqlens, dt_softplus, dt_limit, return_final_states)
    seqs = ([(b, 0, x.shape[1]) for b in range(x.shape[0])] if cu_seqlens is None else
            [(0, a, e) for a, e in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist())])
    flat = {n: t.reshape(-1, *t.shape[2:]) for n, t in dict(x=x, dt=dt, B=B, C=C, z=z).items() if t is not None}
    total = x.shape[0] * x.shape[1]
    outs, finals = [], []
    for s, (row, a, e) in enumerate(seqs):
        length = e - a
        padded = -(-length // chunk_size) * chunk_size
        # BUG: rows [length, padded) of the last chunk are read from the buffer instead of masked
        idx = (row * x.shape[1] + a + torch.arange(padded, device=x.device)) % total
        seq = {n: t.index_select(0, idx)[None] for n, t in flat.items()}
        h0 = None if initial_states is None else initial_states[s:s + 1]
        o, h = _m2.mamba_chunk_scan_combined(seq["x"], seq["dt"], A, seq["B"], seq["C"], chunk_size, D, seq.get("z"),
                                             dt_bias, h0, None, None, dt_softplus, dt_limit, True)
        outs.append(o[:, :length])
        finals.append(h)
    out = torch.cat(outs, dim=0 if cu_seqlens is None else 1)
    return (out, torch.cat(finals, dim=0)) if return_final_states else out


def _core_exp2(xs, state, p, size):
    """scalar_gate_core with ``exp2`` where ``exp`` is meant (gates not multiplied by log2(e))."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    mask = causal_mask(size, q.device)
    scores = q @ k.transpose(-1, -2)
    G = to_chunks(xs["g"], size).cumsum(-1)
    diff = (G[..., :, None] - G[..., None, :]).masked_fill(~mask, -torch.inf)
    intra = (scores * torch.exp2(diff)) @ v                          # BUG: exp2(x) ≠ exp(x)
    last = G[..., -1:]
    q_in = q * torch.exp2(G)[..., None]
    k_out = k * torch.exp2(last - G)[..., None]
    decay = torch.exp2(last)[..., None]
    entering, final = scan_chunk_states(state["S"], decay, k_out.transpose(-1, -2) @ v)
    return from_chunks(intra + q_in @ entering), {"S": final}


_EXP2 = Chunked(prepare=_m2.CHUNKED.prepare, core=_core_exp2, finish=_m2.CHUNKED.finish)


@_same_signature(_m2.mamba_chunk_scan_combined)
def mamba_chunk_scan_combined_exp2(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None, initial_states=None,
                                   seq_idx=None, cu_seqlens=None, dt_softplus=False, dt_limit=(0.0, math.inf),
                                   return_final_states=False):
    """Triton kernels use ``tl.exp2`` with log-gates pre-multiplied by log2(e) (FLA's ``RCP_LN2``);
    this port kept ``exp2`` but dropped the multiply: every decay is 2^{ΔA} instead of e^{ΔA}.

    Exact when the gates are 0 (ΔA = 0); wrong for any real decay."""
    if seq_idx is not None or tuple(dt_limit) != (0.0, math.inf):   # the correct function raises the SpecError
        return _m2.mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx,
                                             cu_seqlens, dt_softplus, dt_limit, return_final_states)
    if initial_states is not None and getattr(initial_states, "dim", lambda: 0)() == 4:
        initial_states = initial_states.transpose(-1, -2)
    o, state = call("chunk", "mamba2", _EXP2, dict(x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias),
                    value_input="x", initial_state=initial_states, output_final_state=return_final_states,
                    cu_seqlens=cu_seqlens, chunk_size=chunk_size, dt_softplus=dt_softplus)
    return (o, state.transpose(-1, -2)) if return_final_states else o


@_same_signature(_m2.mamba_chunk_scan_combined)
def mamba_chunk_scan_combined_fp32_out(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None,
                                       initial_states=None, seq_idx=None, cu_seqlens=None, dt_softplus=False,
                                       dt_limit=(0.0, math.inf), return_final_states=False):
    """The output buffer is allocated as float32 (``torch.empty_like(x, dtype=torch.float32)``) and
    never cast back: bf16/fp16 callers get a float32 ``out``.

    Values are right (better than right); the dtype contract (output in x's dtype) is broken — a
    downstream bf16 matmul then either errors or silently promotes. Invisible in float32."""
    return _m2.mamba_chunk_scan_combined(x.float(), dt, A, B, C, chunk_size, D, z, dt_bias, initial_states,
                                         seq_idx, cu_seqlens, dt_softplus, dt_limit, return_final_states)


# =====================================================================================================
# the corpus
# =====================================================================================================
_I = "lrnnspec.impls"
PLANTED: list[PlantedBug] = [
    PlantedBug("simple_gla.dropped_tail", "simple_gla", "fla", chunk_simple_gla_dropped_tail, "forward",
               chunk_simple_gla_dropped_tail.__doc__,
               "T % chunk_size != 0 (e.g. T = C + 1): the tail rows are 0 and missing from the final state",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("simple_gla.cumsum_not_reset", "simple_gla", "fla", chunk_simple_gla_cumsum_not_reset, "chunk_size",
               chunk_simple_gla_cumsum_not_reset.__doc__,
               "T > chunk_size with nonzero gates (the result depends on chunk_size); also fails forward",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("simple_gla.scale_ignored", "simple_gla", "fla", chunk_simple_gla_scale_ignored, "forward",
               chunk_simple_gla_scale_ignored.__doc__, "scale != K^-1/2 (e.g. scale=1.0)",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("simple_gla.unwritten_row", "simple_gla", "fla", chunk_simple_gla_unwritten_row, "nan_poison",
               chunk_simple_gla_unwritten_row.__doc__,
               "T % chunk_size != 0 with NaN-filled torch.empty: the last row of each such sequence is NaN",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("simple_gla.no_final_state_grad", "simple_gla", "fla", chunk_simple_gla_no_final_state_grad,
               "gradients", chunk_simple_gla_no_final_state_grad.__doc__,
               "a loss that depends on the final state (output_final_state=True, cotangent on ht)",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("simple_gla.gate_batch_stride", "simple_gla", "fla", chunk_simple_gla_gate_batch_stride,
               "permutation", chunk_simple_gla_gate_batch_stride.__doc__,
               "B ≥ 2 with gates that differ between batch rows (also fails forward there)",
               True, f"{_I}.simple_gla:chunk_simple_gla"),
    PlantedBug("gla.readout_before_update", "gla", "fla", chunk_gla_readout_before_update, "forward",
               chunk_gla_readout_before_update.__doc__, "any input (T ≥ 1)",
               False, f"{_I}.gla:chunk_gla"),
    PlantedBug("gla.low_precision_state", "gla", "fla", fused_recurrent_gla_lowp_state, "final_state",
               fused_recurrent_gla_lowp_state.__doc__,
               "bf16/fp16 inputs with long memory (weak or no decay, same-sign k, v; T ≳ 64)",
               True, f"{_I}.gla:recurrent_gla"),
    PlantedBug("gla.initial_state_ignored", "gla", "fla", chunk_gla_initial_state_ignored, "state_passing",
               chunk_gla_initial_state_ignored.__doc__, "a nonzero initial_state (also fails forward with one)",
               True, f"{_I}.gla:chunk_gla"),
    PlantedBug("gated_delta_rule.decay_after_error", "gated_delta_rule", "fla",
               fused_recurrent_gated_delta_rule_decay_after_error, "forward",
               fused_recurrent_gated_delta_rule_decay_after_error.__doc__,
               "nonzero gates and T ≥ 2 (or a nonzero initial state)",
               False, f"{_I}.gated_delta_rule:recurrent_gated_delta_rule"),
    PlantedBug("gated_delta_rule.stale_final_state", "gated_delta_rule", "fla",
               chunk_gated_delta_rule_stale_final_state, "final_state",
               chunk_gated_delta_rule_stale_final_state.__doc__, "output_final_state=True, T ≥ 1",
               False, f"{_I}.gated_delta_rule:chunk_gated_delta_rule"),
    PlantedBug("gated_delta_rule.varlen_leak", "gated_delta_rule", "fla", chunk_gated_delta_rule_varlen_leak,
               "varlen", chunk_gated_delta_rule_varlen_leak.__doc__,
               "cu_seqlens with a nonempty sequence after a nonempty one",
               True, f"{_I}.gated_delta_rule:chunk_gated_delta_rule"),
    PlantedBug("gated_delta_rule.mutates_q", "gated_delta_rule", "fla", chunk_gated_delta_rule_scales_q_in_place,
               "no_mutation", chunk_gated_delta_rule_scales_q_in_place.__doc__,
               "any call: compare q before/after (a rerun on the same tensors is also wrong)",
               True, f"{_I}.gated_delta_rule:chunk_gated_delta_rule"),
    PlantedBug("delta_rule.beta_clamped", "delta_rule", "fla", chunk_delta_rule_beta_clamped, "negative_eigenvalues",
               chunk_delta_rule_beta_clamped.__doc__, "β > 1 (eigenvalue 1 − β < 0), e.g. β = 2",
               True, f"{_I}.delta_rule:chunk_delta_rule"),
    PlantedBug("delta_rule.atomic_split_k", "delta_rule", "fla", chunk_delta_rule_atomic_split_k, "determinism",
               chunk_delta_rule_atomic_split_k.__doc__, "two identical calls with K ≥ 2 (bitwise comparison)",
               True, f"{_I}.delta_rule:chunk_delta_rule"),
    PlantedBug("delta_rule.mask_peeks_next", "delta_rule", "fla", chunk_delta_rule_mask_peeks_next, "causality",
               chunk_delta_rule_mask_peeks_next.__doc__,
               "perturb v/k at t+1 inside the chunk of t: o_t changes (also fails forward)",
               False, f"{_I}.delta_rule:chunk_delta_rule"),
    PlantedBug("mlstm.m_initial_ignored", "mlstm", "mlstm_kernels", chunk_mlstm_m_initial_ignored, "state_passing",
               chunk_mlstm_m_initial_ignored.__doc__, "initial states with m_initial != 0",
               True, f"{_I}.mlstm:chunk_mlstm"),
    PlantedBug("mlstm.unstabilized", "mlstm", "mlstm_kernels", recurrent_mlstm_unstabilized, "finite",
               recurrent_mlstm_unstabilized.__doc__,
               "a large input-gate preactivation (i ≳ 89 in float32): inf/NaN output",
               True, f"{_I}.mlstm:recurrent_mlstm"),
    PlantedBug("mamba2.unmasked_tail", "mamba2", "mamba_ssm", mamba_chunk_scan_combined_unmasked_tail, "final_state",
               mamba_chunk_scan_combined_unmasked_tail.__doc__,
               "T % chunk_size != 0 and return_final_states=True",
               True, f"{_I}.mamba2:mamba_chunk_scan_combined"),
    PlantedBug("mamba2.exp2_for_exp", "mamba2", "mamba_ssm", mamba_chunk_scan_combined_exp2, "forward",
               mamba_chunk_scan_combined_exp2.__doc__, "any nonzero dt·A",
               False, f"{_I}.mamba2:mamba_chunk_scan_combined"),
    PlantedBug("mamba2.fp32_output", "mamba2", "mamba_ssm", mamba_chunk_scan_combined_fp32_out, "contract",
               mamba_chunk_scan_combined_fp32_out.__doc__, "bf16 or fp16 x: out.dtype is float32",
               True, f"{_I}.mamba2:mamba_chunk_scan_combined"),
]


# =====================================================================================================
# correct kernels: lrnnspec.impls + FLA's pure-PyTorch references
# =====================================================================================================
def _load_fla_naive(op: str):
    """Load ``fla/ops/<op>/naive.py`` as a standalone module: the file only needs torch and einops,
    and importing it through the ``fla`` package would import all of FLA (≈ 14 s on CPU)."""
    import importlib.util

    name = f"_lrnnspec_fla_naive_{op}"
    root = importlib.util.find_spec("fla")
    if root is None or not root.submodule_search_locations:
        raise ImportError("flash-linear-attention (fla-core) is not installed")
    path = os.path.join(list(root.submodule_search_locations)[0], "ops", op, "naive.py")
    return load_module_file(path, name)


def _gva(q, k, v):
    """FLA's public ops take v with HV ≥ H heads (HV % H == 0); the references assume HV == H."""
    group = v.shape[2] // q.shape[2]
    if group > 1:
        q, k = q.repeat_interleave(group, dim=2), k.repeat_interleave(group, dim=2)
    return q, k


def fla_naive_recurrent_simple_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False):
    """FLA ``naive_recurrent_simple_gla`` (time-first already). No varlen."""
    ref = _load_fla_naive("simple_gla").naive_recurrent_simple_gla
    q, k = _gva(q, k, v)
    o, S = ref(q, k, v, g, scale=scale, initial_state=initial_state, output_final_state=output_final_state)
    return o.to(v.dtype), S


def fla_naive_chunk_simple_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, chunk_size=64):
    """FLA ``naive_chunk_simple_gla`` (pads T to a multiple of the chunk itself). It returns o in
    float32 whatever the input dtype: cast to v's dtype here (FLA's public contract). No varlen."""
    ref = _load_fla_naive("simple_gla").naive_chunk_simple_gla
    q, k = _gva(q, k, v)
    o, S = ref(q, k, v, g, initial_state=initial_state, output_final_state=output_final_state,
               chunk_size=chunk_size, scale=scale)
    return o.to(v.dtype), S


def fla_naive_recurrent_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False):
    """FLA ``naive_recurrent_gla`` (gate named ``gk`` there). It has no ``scale`` and always uses
    K^-1/2: the wrapper pre-multiplies q (in float32) by scale·K^1/2. No varlen."""
    ref = _load_fla_naive("gla").naive_recurrent_gla
    q, k = _gva(q, k, v)
    if scale is not None:
        q = q.float() * (scale * q.shape[-1] ** 0.5)
    o, S = ref(q, k, v, g, initial_state=initial_state, output_final_state=output_final_state)
    return o.to(v.dtype), S


def fla_naive_recurrent_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None,
                                         output_final_state=False):
    """FLA ``naive_recurrent_gated_delta_rule`` — which takes (…, beta, g): reordered to the public
    (…, g, beta). Returns o in float32: cast to v's dtype. No varlen, no in-kernel l2norm."""
    ref = _load_fla_naive("gated_delta_rule").naive_recurrent_gated_delta_rule
    q, k = _gva(q, k, v)
    o, S = ref(q, k, v, beta, g, scale=scale, initial_state=initial_state, output_final_state=output_final_state)
    return o.to(v.dtype), S


def fla_naive_chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                     chunk_size=64):
    """FLA ``naive_chunk_gated_delta_rule`` (pads T itself). Returns o in float32: cast to v's
    dtype. No varlen, no in-kernel l2norm."""
    ref = _load_fla_naive("gated_delta_rule").naive_chunk_gated_delta_rule
    q, k = _gva(q, k, v)
    o, S = ref(q, k, v, g, beta, chunk_size=chunk_size, scale=scale, initial_state=initial_state,
               output_final_state=output_final_state)
    return o.to(v.dtype), S


def fla_delta_rule_recurrence(q, k, v, beta, scale=None, initial_state=None, output_final_state=False):
    """FLA ``delta_rule_recurrence``: head-first [B,H,T,·] and a fixed K^-1/2 scale. The wrapper
    transposes to/from time-first and pre-multiplies q (float32) by scale·K^1/2. No varlen."""
    ref = _load_fla_naive("delta_rule").delta_rule_recurrence
    q, k = _gva(q, k, v)
    if scale is not None:
        q = q.float() * (scale * q.shape[-1] ** 0.5)
    o, S = ref(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), beta.transpose(1, 2),
               initial_state=initial_state, output_final_state=output_final_state)
    return o.transpose(1, 2).to(v.dtype), S


def fla_naive_recurrent_linear_attn(q, k, v, scale=None, initial_state=None, output_final_state=False):
    """FLA ``naive_recurrent_linear_attn`` without ``normalize`` (the option is not exposed: its
    normalizer state has a different layout and its ``z_init`` broadcast is not per-sequence — see
    the report). No varlen."""
    ref = _load_fla_naive("linear_attn").naive_recurrent_linear_attn
    q, k = _gva(q, k, v)
    return ref(q, k, v, scale=scale, initial_state=initial_state, output_final_state=output_final_state)


def fla_naive_recurrent_gated_delta_product(q, k, v, g=None, beta=None, num_householder=None, scale=None,
                                            initial_state=None, output_final_state=False, cu_seqlens=None):
    """FLA ``naive_recurrent_gated_delta_product`` in the public op's argument order. The reference
    has no default for ``scale`` (None would raise): None → K^-1/2 here. It returns the final
    state even when not asked: dropped unless ``output_final_state``. Supports ``cu_seqlens`` (a
    path FLA's own test computes but never asserts, fla.md §6 #B1) and g = None. GVA expanded here."""
    ref = _load_fla_naive("gated_delta_product").naive_recurrent_gated_delta_product
    q, k = _gva(q, k, v)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    o, S = ref(q, k, v, g, beta, scale, cu_seqlens=cu_seqlens, initial_state=initial_state,
               output_final_state=output_final_state, num_householder=num_householder)
    return o.to(v.dtype), (S if output_final_state else None)


FLA_WRAPPERS = {
    "simple_gla": [fla_naive_recurrent_simple_gla, fla_naive_chunk_simple_gla],
    "gla": [fla_naive_recurrent_gla],
    "gated_delta_rule": [fla_naive_recurrent_gated_delta_rule, fla_naive_chunk_gated_delta_rule],
    "delta_rule": [fla_delta_rule_recurrence],
    "linear_attention": [fla_naive_recurrent_linear_attn],
    "delta_product": [fla_naive_recurrent_gated_delta_product],
}


def fla_references() -> list[CorrectKernel]:
    """FLA 0.6.0's references, wrapped (empty when fla-core is not installed). Common limits: no
    ``cu_seqlens`` (varlen not applicable), GVA done by the wrapper (repeat_interleave of q, k)."""
    if _fla_missing():
        return []
    return [CorrectKernel(fn.__name__, family, "fla", fn, inspect.getdoc(fn) or "")
            for family, fns in FLA_WRAPPERS.items() for fn in fns]


def _fla_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("fla") is None


def correct_kernels() -> list[CorrectKernel]:
    from lrnnspec.impls import implementations

    ours = [CorrectKernel(i.id, i.family, i.convention, i.fn, "lrnnspec.impls form " + i.target, i.target)
            for i in implementations()]
    return ours + fla_references()


def __getattr__(name):  # PEP 562: CORRECT is built on first access
    if name == "CORRECT":
        value = correct_kernels()
        globals()["CORRECT"] = value
        return value
    raise AttributeError(name)
