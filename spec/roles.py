"""Roles: what an input does in its recurrence, declared by the family and read by the harness.

Generic code — the Hypothesis strategies, the magnitude shadow and exponent mass of the
tolerance, the certifier's perturbations — never looks at an input's *name*; it reads the role:

* ``regimes``: the value regimes drawn for the input (:mod:`lrnnspec.strategies`): ``real`` (normal,
  same-sign, large), ``gate`` (log-gate strengths from none to strong), ``strength`` (exactly 0, 1, 2,
  near them, uniform over the declared range), ``bias`` (a small nonnegative offset), ``rate``
  (a decay rate ≤ 0), ``decay`` (a linear decay near 1), ``step`` (a step size ≥ 0, or a real
  preactivation under softplus), ``graph`` (the DAG strategies' own);
* ``gate_like``: the input parameterizes the transition rather than carrying a value — the
  magnitude shadow (the recurrence on |values|) keeps it as it is instead of taking |x|;
* ``exponent``: |x| adds to the per-step log-decay mass Λ (a log-space gate, an exponentiated
  gate preactivation), which the tolerance grants chunked kernels as a relative error u·Λ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    doc: str
    regimes: str = "real"
    gate_like: bool = False
    exponent: bool = False


ROLES: dict[str, Role] = {r.name: r for r in (
    Role("query", "read vector (q; Mamba's C)"),
    Role("key", "write direction (k; Mamba's B); unit-norm where the family lists it in unit_keys"),
    Role("value", "written value (v; Mamba's u / x)"),
    Role("low_rank", "low-rank read or write vector of a DPLR transition (a, b)"),
    Role("skip", "direct term added to the read-out (Mamba's D)"),
    Role("bonus", "per-key-channel weight of the current token's own write in the read-out (RWKV's u): "
                  "o_t = S_{t−1}ᵀq_t + (q_tᵀ(u ⊙ k_t)) v_t"),
    Role("log_gate", "log-space decay g ≤ 0 (decay e^g)", "gate", gate_like=True, exponent=True),
    Role("write_strength", "β of a delta update (eigenvalue 1 − β along the key)", "strength", gate_like=True),
    Role("write_gate", "gate on the written value, per value channel (GDN-2's w): scales what is written, "
                       "not the transition", "strength", gate_like=True),
    Role("gate_preactivation", "exponentiated gate preactivation (mLSTM's i, f)", gate_like=True, exponent=True),
    Role("step_size", "discretization step Δ ≥ 0, or its preactivation under softplus", "step", gate_like=True),
    Role("rate", "continuous-time decay rate A ≤ 0 (decay e^{Δ·A})", "rate", gate_like=True),
    Role("bias", "offset added to a step size before softplus", "bias", gate_like=True),
    Role("decay", "linear per-head decay γ ∈ (0, 1]", "decay", gate_like=True),
    Role("regularizer", "a positive diagonal added to a matrix the read-out solves with (Mesa-Net's λ): kept as "
                        "it is by the magnitude shadow, drawn by its domain", gate_like=True),
    Role("level_weight", "per-level weight of a multi-level read-out (log-linear attention's λ_t^{(ℓ)}): scales "
                         "what a level contributes, like a value"),
    Role("output_gate", "multiplies the read-out through silu (Mamba's z)", gate_like=True),
    Role("source_gate", "pLSTM source gate: node → outgoing edge", "graph"),
    Role("transition_gate", "pLSTM transition gate: incoming → outgoing edge", "graph"),
    Role("mark_gate", "pLSTM mark gate: incoming edge → node output", "graph"),
    Role("direct_gate", "pLSTM direct gate: node input → node output", "graph"),
)}

# roles of state components: a value state is scaled like the values; a log-scale stabilizer
# (mLSTM's m) is a logarithm and keeps its sign in the magnitude shadow; a gram state (Mesa-Net's
# H^kk = Σ β k kᵀ) is a symmetric positive semidefinite [.., K, K] matrix, which random states must be
# to stay in the family's domain (:func:`shape_state`); a position is the count of tokens a state has seen
# (log-linear attention's Fenwick buckets depend on it): a nonnegative integer, kept exact
STATE_ROLES = ("value", "stabilizer", "gram", "position")


def shape_state(role: str, normal):
    """A random state of ``role`` from standard-normal draws ``normal``: gram states [..., n, n] become X Xᵀ / n
    (symmetric positive semidefinite, of the size of a sum of n outer products of unit vectors); positions
    ⌊8·|x|⌋ (nonnegative integers); the others stay as drawn (the strategies also clip stabilizers)."""
    import numpy as np

    if role == "position":
        return np.floor(8.0 * np.abs(normal))
    if role == "gram":
        return normal @ np.swapaxes(normal, -1, -2) / max(1, normal.shape[-1])
    return normal


def get_role(name: str) -> Role:
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; known roles: {', '.join(ROLES)}")
    return ROLES[name]
