"""plstm — parallelizable Linear Source Transition Mark networks on a DAG (Pöppel et al.,
arXiv 2506.11997, §3, eqs. 5–6). Evaluated node by node over a :class:`~lrnnspec.spec.graph.Graph`
by :func:`lrnnspec.spec.dag.evaluate_dag` (or ``evaluate("plstm", inputs, graph=...)``).

Cell states live on **edges**, inputs and outputs on **nodes**. For node n with incoming edges
e' (in-port i) and outgoing edges e (out-port o), per batch and head::

    C_e   = Σ_{e' ∈ in(n)} T^n[o, i] · C_{e'}  +  S^n[o] · k^n (v^n)ᵀ                 (eq. 5)
    h^n   = Σ_{e' ∈ in(n)} M^n[i] · C_{e'}ᵀ (scale·q^n)  +  D^n · ((scale·q^n)·k^n) · v^n   (eq. 6)

(``scale = 1`` is the paper's eq. 6; the default K^-1/2 is the harness convention.) Unrolled, this
is the masked linear-attention form (eq. 7)::

    h^n = Σ_{n' ≺ n} G[n, n'] ((scale·q^n)·k^{n'}) v^{n'} + D^n ((scale·q^n)·k^n) v^n,
    G[n, n'] = Σ_{e' ∈ out(n'), e ∈ in(n)} M^n_e (Σ_{paths e' → e} Π_{nodes m inside} T^m) S^{n'}_{e'}

(implemented in :mod:`lrnnspec.impls.plstm`).

Shapes (``P…`` = the graph's node axes, ``(n,)`` chain / ``(h, w)`` grid, or ``P`` flat;
O / I = the graph's out-/in-ports: 1/1 on a chain, 2/2 on a grid):
q, k [B,P…,H,K]; v [B,P…,H,V]; S [B,P…,H,O]; T [B,P…,H,O,I]; M [B,P…,H,I]; D [B,P…,H] (optional,
default 0). Output [B,P…,H,V]; final state: every edge's C [B,E,H,K,V]. Gate entries of ports a
node does not have (chain ends, grid borders) are never read.

Modes (option ``mode``; arXiv 2506.11997 §4, eqs. 8–9): ``None`` — any real T (unstable in general:
all-ones transitions grow with the number of paths); ``"P"`` (propagation) — for every node and
every existing in-port i, Σ_{existing o} |T^n[o, i]| ≤ 1 (+ 2·O·eps of T's dtype for the rounding of
the caller's own parameterization); ``"D"`` (distribution) — every existing |T^n[o, i]| ≤ 1 and the
line graph restricted to the nonzero transitions is a multitree (at most one path between two
edges), e.g. a grid with one turn transition zero everywhere. A violation raises ``DomainError``
naming ``T``, the node, the ports and the value; nothing is clamped.

1-D: on ``chain(n)`` the edge state is a diagonal linear RNN, C_t = T_t C_{t−1} + S_t k_t v_tᵀ, and
with M = T, D = S the output is read after the update, o_t = C_tᵀ(scale q_t): with T ∈ (−1, 1) it
*is* mamba with eigenvalue_range '[-1,1]' (:func:`chain_as_mamba`), with T ∈ (0, 1] simple_gla
(:func:`chain_as_simple_gla`) [ours].
"""

from __future__ import annotations

import numpy as np

from ..errors import DomainError
from ..family import SCALE, Family, Input, Option, StateComponent, register


def step(ar, incoming, out_ports, x, p):
    """Eq. 5. Rounds: kv = k⊗v; per out-port o: Σ_i T[o,i]·C_i (left to right), + S[o]·kv (state)."""
    kv = ar.outer(x["k"], x["v"])
    out = {}
    for o in out_ports:
        acc = None
        for i, C in incoming:
            term = ar.mul(x["T"][..., o, i, None, None], C)
            acc = term if acc is None else ar.add(acc, term)
        src = ar.mul(x["S"][..., o, None, None], kv)
        out[o] = ar.state(src if acc is None else ar.add(acc, src))
    return out


def readout(ar, incoming, x, p):
    """Eq. 6. Rounds: qs = q·scale; per in-port i: r = Σ_k C_i·qs, M[i]·r, partial sums in port
    order; then + (D·(qs·k))·v."""
    qs = ar.mul(x["q"], p.scale)
    y = None
    for i, C in incoming:
        term = ar.mul(x["M"][..., i, None], ar.dot(C, qs[..., :, None], axis=-2))
        y = term if y is None else ar.add(y, term)
    direct = ar.mul(ar.mul(x["D"], ar.dot(qs, x["k"], axis=-1))[..., None], x["v"])
    return direct if y is None else ar.add(y, direct)


def _existing(graph):
    """Masks of the ports each node has: out [P,O], in [P,I]."""
    return graph.out_edges >= 0, graph.in_edges >= 0


def check(inputs, options, graph, eps):
    """The declared mode's constraint on T (see the module docstring)."""
    mode = options["mode"]
    if mode is None:
        return
    T = inputs["T"]  # [B,P,H,O,I]
    has_out, has_in = _existing(graph)
    live = has_out[None, :, None, :, None] & has_in[None, :, None, None, :]
    absT = np.where(live, np.abs(T), 0.0)
    where = lambda idx: f"node {idx[1]} (batch {idx[0]}, head {idx[2]})"  # noqa: E731
    if mode == "P":
        col = absT.sum(axis=-2)  # [B,P,H,I]
        tol = 2 * graph.out_ports * eps.get("T", 0.0)
        bad = (col > 1.0 + tol) & has_in[None, :, None, :]
        if np.any(bad):
            idx = tuple(int(v) for v in np.argwhere(bad)[0])
            raise DomainError("T", f"mode 'P' needs Σ_o |T[o, i]| ≤ 1 for every in-port i (column sums of the "
                                   f"node's transition, eq. 8); {int(bad.sum())} columns break it, e.g. {where(idx)}, "
                                   f"in-port {idx[3]}: Σ_o |T| = {col[idx]!r}")
        return
    bad = absT > 1.0
    if np.any(bad):
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise DomainError("T", f"mode 'D' needs |T[o, i]| ≤ 1; {where(idx)} has T[{idx[3]}, {idx[4]}] = "
                               f"{T[idx]!r}")
    nonzero = (T != 0) & live
    patterns = {}
    for b in range(T.shape[0]):
        for h in range(T.shape[2]):
            patterns.setdefault(nonzero[b, :, h].tobytes(), (b, h))
    for key, (b, h) in patterns.items():
        ok, pair = graph.line_graph_is_multitree(nonzero[b, :, h])
        if not ok:
            e1, e2 = (graph.edges[j] for j in pair)
            raise DomainError("T", f"mode 'D' needs the line graph of the nonzero transitions to be a multitree "
                                   f"(one path between any two edges); batch {b}, head {h}: edges {pair[0]} "
                                   f"{e1[0]}→{e1[2]} and {pair[1]} {e2[0]}→{e2[2]} are joined by ≥ 2 paths. Set one "
                                   f"turn transition to zero (e.g. T[..., 1, 0] = 0 on a grid)")


def defaults(dims, options=None):
    return {"D": np.zeros((dims["B"], dims["P"], dims["H"]))}


def sample(rng, graph, dims, options):
    """Random valid inputs (flat node axis): q, k, v ~ N(0,1); S, M, D = sigmoid(N(0,1)) as in the
    paper; T = tanh(N(1,1)) (mode None), scaled to P-mode column sums γ ∈ (0.5, 1) ("P"), or
    tanh with the turn T[1,0] = 0 ("D", grids; chains are multitrees anyway)."""
    B, P, H, K, V, O, I = (dims[s] for s in ("B", "P", "H", "K", "V", "O", "I"))
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    x = {"q": rng.standard_normal((B, P, H, K)), "k": rng.standard_normal((B, P, H, K)),
         "v": rng.standard_normal((B, P, H, V)), "S": sig(rng.standard_normal((B, P, H, O))),
         "T": np.tanh(rng.normal(1.0, 1.0, (B, P, H, O, I))), "M": sig(rng.standard_normal((B, P, H, I))),
         "D": sig(rng.standard_normal((B, P, H)))}
    mode = options.get("mode")
    if mode == "P":
        T = np.abs(x["T"]) * np.sign(rng.standard_normal((B, P, H, O, I)))
        x["T"] = T / np.abs(T).sum(axis=-2, keepdims=True) * rng.uniform(0.5, 1.0, (B, P, H, 1, I))
    elif mode == "D" and O > 1 and I > 1:
        x["T"][..., 1, 0] = 0.0
    return x


MODE = Option("mode", None,
              "declared stability mode: None (unconstrained), 'P' (Σ_o |T[o,i]| ≤ 1), 'D' (|T| ≤ 1 and a "
              "multitree line graph)", choices=(None, "P", "D"))

FAMILY = register(Family(
    name="plstm",
    recurrence="C_e = Σ_{e'→n} T^n[o,i]·C_{e'} + S^n[o]·k^n v^nᵀ (edge e leaves n at port o);  "
               "h^n = Σ_{e'→n} M^n[i]·C_{e'}ᵀ(scale·q^n) + D^n·(scale·q^n·k^n)·v^n;  on a DAG (chain, 2-D grid)",
    inputs=(
        Input("q", ("B", "P", "H", "K"), doc="queries (P = the graph's node axes)", role="query"),
        Input("k", ("B", "P", "H", "K"), doc="keys", role="key"),
        Input("v", ("B", "P", "H", "V"), doc="values", role="value"),
        Input("S", ("B", "P", "H", "O"), doc="source gate: node → outgoing edge (out-port)", role="source_gate"),
        Input("T", ("B", "P", "H", "O", "I"), doc="transition gate: incoming (in-port) → outgoing (out-port) edge",
              role="transition_gate"),
        Input("M", ("B", "P", "H", "I"), doc="mark gate: incoming edge (in-port) → node output", role="mark_gate"),
        Input("D", ("B", "P", "H"), optional=True, doc="direct gate (default 0)", role="direct_gate"),
    ),
    state=(StateComponent("C", ("N", "E", "H", "K", "V"), doc="one cell state per edge"),),
    output_dims=("B", "P", "H", "V"),
    step=step, readout=readout, options=(SCALE, MODE),
    eigenvalues="scalar transitions, any real; mode 'P': column sums ≤ 1; mode 'D': |T| ≤ 1 on a multitree; "
                "1-D chain: a diagonal LRNN (tanh-gated T ∈ (−1, 1))",
    check=check, defaults=defaults, sample=sample, kind="dag",
    source="Pöppel et al. 2025, pLSTM (arXiv 2506.11997) eqs. 5–9; ml-jku/plstm",
    rounding="kv = k⊗v; C_e = Σ_i T[o,i]·C_i (+ in port order) + S[o]·kv (state); "
             "h = Σ_i M[i]·(Σ_k C_i·(q·scale)) + (D·(qs·k))·v",
))


def chain_as_mamba(q, k, v, S, T, scale=None):
    """A 1-D pLSTM with M = T and D = S, single head, as mamba (S6) with eigenvalue_range '[-1,1]'
    [ours]: channel d ↔ value index, state index n ↔ key index; A = −1, Δ_t = −log((1 + T_t)/2)
    so that a_t = 2e^{−Δ_t} − 1 = T_t; B_t = S_t k_t / Δ_t; u_t = v_t; C_t = scale·q_t.
    Needs T ∈ (−1, 1) (Δ finite and > 0). Shapes: q, k [B,n,K]; v [B,n,V]; S, T [B,n]."""
    q, k, v, S, T = (np.asarray(a, dtype=np.float64) for a in (q, k, v, S, T))
    if np.any(np.abs(T) >= 1):
        raise DomainError("T", "chain_as_mamba needs every transition in (−1, 1) (a tanh gate)")
    K, V = k.shape[-1], v.shape[-1]
    scale = K ** -0.5 if scale is None else scale
    delta = -np.log1p(T) + np.log(2.0)  # −log((1+T)/2)
    Bm = S[..., None] * k / delta[..., None]
    inputs = {"u": v, "delta": np.repeat(delta[..., None], V, axis=-1), "A": -np.ones((V, K)),
              "B": Bm, "C": scale * q}
    return "mamba", inputs, {"eigenvalue_range": "[-1,1]"}


def chain_as_simple_gla(q, k, v, S, T, scale=None):
    """A 1-D pLSTM with M = T and D = S and T ∈ (0, 1] as simple_gla [ours]: g = log T, k ← S·k.
    Shapes: q, k [B,n,H,K]; v [B,n,H,V]; S, T [B,n,H]."""
    T = np.asarray(T, dtype=np.float64)
    if np.any(T <= 0) or np.any(T > 1):
        raise DomainError("T", "chain_as_simple_gla needs every transition in (0, 1]")
    return "simple_gla", {"q": q, "k": np.asarray(S)[..., None] * k, "v": v, "g": np.log(T)}, {"scale": scale}
