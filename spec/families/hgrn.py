"""hgrn (HGRN, Qin et al. 2023) — an element-wise gated recurrence, its state the output:

    h_t = e^{g_t} ⊙ h_{t−1} + x_t,   o_t = h_t.

Shapes: x, g [B,T,D] (g ≤ 0, the per-channel log decay); state h [N,D]; output [B,T,D]. No heads, no
read-out vector and no scale (FLA's fused_recurrent_hgrn, chunk_hgrn, naive_recurrent_hgrn; the layer
passes x = i ⊙ (1 − e^{g}) after its input gate, which is the caller's business here).
It is gla with one key and one value channel per head, D heads, q = k = 1, v = x and scale 1
(:func:`lrnnspec.spec.mappings.hgrn_to_gla`).
Eigenvalues: e^{g} ∈ [0, 1] per channel; log-space, cannot be negative.
"""

from ..family import LOG_GATE, Family, Input, StateComponent, register


def step(ar, s, x, p):
    return {"h": ar.state(ar.add(ar.mul(ar.exp(x["g"]), s["h"]), x["x"]))}


def readout(ar, s, x, p):
    return s["h"]


def chunk_flops(d: dict, c: int) -> float:
    """The chunk form's work per channel and token: the prefix products and sums within a chunk
    (about 4 operations) — no matmul."""
    return 4.0 * d["B"] * d["T"] * d["D"]


FAMILY = register(Family(
    name="hgrn",
    recurrence="h_t = exp(g_t) ⊙ h_{t-1} + x_t;  o_t = h_t;  x, g: [B,T,D]",
    inputs=(Input("x", ("B", "T", "D"), doc="inputs (written values)", role="value"),
            Input("g", ("B", "T", "D"), LOG_GATE, doc="per-channel log decay", role="log_gate")),
    state=(StateComponent("h", ("N", "D")),),
    output_dims=("B", "T", "D"),
    step=step, readout=readout,
    eigenvalues="exp(g) ∈ [0, 1] per channel; log-space, cannot be negative",
    flops=lambda d: 3.0 * d["B"] * d["T"] * d["D"],
    source="Qin et al. 2023 (HGRN); FLA fused_recurrent_hgrn / chunk_hgrn / naive_recurrent_hgrn",
    rounding="d = exp(g); h ← d·h + x (state); o = h",
))
