"""lightning_attn (TransNormerLLM's lightning attention, FLA ``chunk_lightning_attn``) — linear attention
with a fixed decay per head set by the layer's depth:

    S_t = e^{g_h} S_{t−1} + k_t v_tᵀ,   o_t = scale · S_tᵀ q_t,   g_h = −(8/H)·(1 − l/L)·h

for head h = 0..H−1 of H, layer index l = ``layer_idx`` of L = ``num_layers`` (0 ≤ l ≤ L): head 0 never
decays, the last head of the first layer decays by e^{−8(H−1)/H} per step, and the decays weaken with
depth (none at l = L). g_h is the float64 number nearest −8h(L − l)/(HL) (integers, one division);
FLA computes it in float32 (the tolerance grants a log decay's rounding through ``log_decay``).
The decays may instead be given as ``g_gamma`` [H] (≤ 0; FLA's simple_gla keyword), which the schedule
fills when left out (the ``defaults`` hook): a head's decay depends on its position, so head
permutations permute g_gamma with the heads.
Shapes: q, k [B,T,H,K]; v [B,T,H,V] (no grouped value heads); state S [N,H,K,V]; output [B,T,H,V].
It is simple_gla with g[b, t, h] = g_h (:func:`lrnnspec.spec.mappings.lightning_attn_to_simple_gla`),
and retention with γ_h = e^{g_h}.
Eigenvalues: e^{g_h} ∈ (0, 1]; fixed and positive.
"""

import numpy as np

from ..errors import OptionError
from ..family import LOG_GATE, SCALE, Family, Input, Option, StateComponent, register
from ._common import gated_linear_chunk_flops, readout_q


def _nonnegative_int(x) -> str | None:
    return None if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 0 else \
        "must be an integer ≥ 0"


def _positive_int(x) -> str | None:
    return None if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1 else \
        "must be an integer ≥ 1"


def log_decays(heads: int, layer_idx, num_layers) -> np.ndarray:
    """g_h = −8h(L − l)/(HL) for h = 0..H−1 [H], float64 (l = 0, L = 1 when left out)."""
    l, L = int(layer_idx or 0), int(num_layers or 1)
    return -8.0 * np.arange(heads, dtype=np.float64) * (L - l) / float(heads * L)


def default_decays(dims, options=None):
    """g_gamma left out: the schedule of (layer_idx, num_layers) for the H heads."""
    options = options or {}
    return {"g_gamma": log_decays(dims["H"], options.get("layer_idx"), options.get("num_layers"))}


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(p.g_gamma)[None, :, None, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], x["v"])))}


def check(inputs, options):
    l, L = options["layer_idx"], options["num_layers"]
    if inputs.get("g_gamma") is not None and (l is not None or L is not None):
        raise OptionError("layer_idx", "give the layer (layer_idx, num_layers) or the decays g_gamma, not both")
    if L is None and l not in (None, 0):
        raise OptionError("num_layers", f"is needed with layer_idx = {l} (the decays depend on l/L)")
    if l is not None and L is not None and l > L:
        raise OptionError("layer_idx", f"must be ≤ num_layers = {L} (else the decays exceed 1), got {l}")


def log_decay(x, options):
    """|g_h| per step [B,T,H]."""
    B, T, H = x["k"].shape[:3]
    g = x.get("g_gamma")
    g = log_decays(H, options.get("layer_idx"), options.get("num_layers")) if g is None else g
    return np.broadcast_to(np.abs(g), (B, T, H))


FAMILY = register(Family(
    name="lightning_attn",
    recurrence="S_t = exp(g_h)·S_{t-1} + k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  g_h = −(8/H)(1 − layer_idx/num_layers)·h",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
            Input("g_gamma", ("H",), LOG_GATE, optional=True, doc="per-head log decays (default: the layer's "
                  "schedule; FLA's simple_gla g_gamma)", role="log_gate")),
    state=(StateComponent("S", ("N", "H", "K", "V")),),
    chunk_flops=gated_linear_chunk_flops,
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout_q,
    options=(SCALE,
             Option("layer_idx", None, "the layer's index l (None → 0)", check=_nonnegative_int,
                    default_for=lambda dims: 0),
             Option("num_layers", None, "the model's number of layers L ≥ l (None → 1, only with l = 0)",
                    check=_positive_int, default_for=lambda dims: 1)),
    check=check, log_decay=log_decay, defaults=default_decays,
    eigenvalues="e^{g_h} ∈ (0, 1] per head, fixed by the head and the layer's depth; cannot be negative",
    flops=lambda d: 6.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],
    source="Qin et al. 2024 (TransNormerLLM, Lightning Attention-2); FLA chunk_lightning_attn / "
           "fused_recurrent_lightning_attn",
    rounding="g_h in float64; d = exp(g_h); S ← d·S (acc) + k⊗v (state); o = Σ_k S·(q·scale)",
))
