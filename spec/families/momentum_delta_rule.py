"""momentum_delta_rule — the delta rule's error step with heavy-ball momentum: two states, S and M,

    w_t = S_{t−1}ᵀ p̂_t − v_t                    (the error of reading S with p̂_t; [V])
    M_t = μ_t M_{t−1} + η_t k_t w_tᵀ           (momentum of the gradient k_t w_tᵀ)
    S_t = α_t S_{t−1} − β_t M_t                  o_t = scale · S_tᵀ q_t

with α = e^{log_alpha}, μ = e^{log_mu} (log decays ≤ 0), the read key p̂_t = p_t, or α_t p_t with
``use_p_times_alpha`` (FLA's public ops, which default to it; their naive reference reads with p_t).
Shapes: q, k, p [B,T,H,K] (k and p unit-norm: FLA's ops normalize them by default); v [B,T,H,V];
log_alpha, log_mu, beta, eta [B,T,H] (β, η ∈ [0, 1]); states S, M [N,H,K,V]; output [B,T,H,V] (no
grouped value heads). Without momentum (μ = 0, η = 1) it is comba:
S_t = α_t S_{t−1} − β_t k_t (S_{t−1}ᵀp̂_t − v_t)ᵀ = (α_t I − β_t k_t p̂_tᵀ) S_{t−1} + β_t k_t v_tᵀ
(:func:`lrnnspec.spec.mappings.momentum_delta_rule_to_comba`); with p̂ = k also the gated delta rule read
before its decay.
Eigenvalues: the pair (S, M) evolves by [[α I − βη k p̂ᵀ, −βμ I], [η k p̂ᵀ, μ I]] — complex in general
(momentum oscillates); not bounded by the parameterization.
"""

import numpy as np

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Domain, Family, Input, Option, StateComponent, register
from ._common import readout_q

# β, η ∈ [0, 1] (FLA's layer: sigmoids): random unit k, p with β, η up to 2 grow like e^{0.2 t} (heavy-ball
# momentum past its stable step size), up to 1 they stay of order one over T = 1000
RATE = Domain(0.0, 1.0, "a rate in [0, 1]")


def sample_aligned(rng, arrays, dims):
    """Stable draws: the read key p on the write key's side, p·k ≥ 0 (p flipped where not). Along k the
    pair (S, M) then evolves by [[α − c, −βμ], [η, μ]] with c = βη p̂·k ∈ [0, 1]: trace α + μ − c and
    determinant αμ keep both eigenvalues in the unit disk; p·k < 0 makes the heavy-ball step ascend
    (|α − c| > 1), and such draws overflow float32 within a few hundred steps."""
    k, p = arrays["k"], arrays["p"]
    return {"p": np.where(np.sum(k * p, axis=-1, keepdims=True) < 0, -p, p)}


def step(ar, s, x, p):
    S, M = s["S"], s["M"]
    alpha = ar.exp(x["log_alpha"])[..., None]
    read = ar.mul(alpha, x["p"]) if p.use_p_times_alpha else x["p"]
    w = ar.sub(ar.dot(S, read[..., :, None], axis=-2), x["v"])
    M = ar.state(ar.add(ar.mul(ar.exp(x["log_mu"])[..., None, None], M),
                        ar.outer(ar.mul(x["eta"][..., None], x["k"]), w)))
    S = ar.state(ar.sub(ar.mul(alpha[..., None], S), ar.mul(x["beta"][..., None, None], M)))
    return {"S": S, "M": M}


FAMILY = register(Family(
    name="momentum_delta_rule",
    recurrence="M_t = μ_t M_{t-1} + η_t k_t (S_{t-1}ᵀp̂_t − v_t)ᵀ;  S_t = α_t S_{t-1} − β_t M_t;  "
               "o_t = scale·S_tᵀq_t;  "
               "α = exp(log_alpha), μ = exp(log_mu);  p̂ = p or α·p",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys (the momentum's write direction)", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values (targets)", role="value"),
            Input("log_alpha", ("B", "T", "H"), LOG_GATE, doc="log decay of S", role="log_gate"),
            Input("log_mu", ("B", "T", "H"), LOG_GATE, doc="log decay of the momentum M", role="log_gate"),
            Input("p", ("B", "T", "H", "K"), doc="the error's read key (FLA: k when left out)", role="key"),
            Input("beta", ("B", "T", "H"), RATE, doc="step size of S along −M", role="write_strength"),
            Input("eta", ("B", "T", "H"), RATE, doc="scale of the gradient entering M", role="write_gate")),
    state=(StateComponent("S", ("N", "H", "K", "V")), StateComponent("M", ("N", "H", "K", "V"), "momentum")),
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout_q,
    options=(SCALE, UNIT_KEYS,
             Option("use_p_times_alpha", False, "read the error with α_t·p_t (FLA's public ops' default) instead "
                    "of p_t (FLA's naive reference)", choices=(False, True))),
    eigenvalues="of [[αI − βη k p̂ᵀ, −βμ I], [η k p̂ᵀ, μ I]] on (S, M): complex in general (heavy-ball momentum); "
                "not bounded by the parameterization",
    unit_keys=("k", "p"), sample=sample_aligned,
    flops=lambda d: 10.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],
    source="FLA fused_recurrent_momentum_delta_rule / recurrent_momentum_delta_rule_ref",
    rounding="α = exp(log_alpha); p̂ = α·p or p; w = Σ_k S·p̂ − v; M ← exp(log_mu)·M + (η·k)⊗w (state); "
             "S ← α·S − β·M (state); o = Σ_k S·(q·scale)",
))
