"""mlstm (xLSTM's matrix LSTM), stabilized, as in NX-AI/mlstm_kernels' native recurrent step.

Per head, with input-gate preactivation i_t and forget-gate preactivation f_t (both real):
    log f_t = logsigmoid(f_t)
    m_t  = max(log f_t + m_{t−1}, i_t)                         (stabilizer)
    f'_t = exp(log f_t + m_{t−1} − m_t),   i'_t = exp(i_t − m_t)
    C_t  = f'_t C_{t−1} + i'_t k_t v_tᵀ,   n_t = f'_t n_{t−1} + i'_t k_t
    h_t  = C_tᵀ q̃_t / (max(|n_tᵀ q̃_t|, exp(−m_t)) + eps),   q̃_t = scale · q_t
The stabilized (C, n) equal the unstabilized ones times e^{−m_t}, so h_t is the xLSTM paper's
C q / max(|nᵀq|, 1) up to eps. mlstm_kernels scales q (not k) by DHQK^-1/2 and uses eps = 1e-6;
the original xlstm package scales k instead (its stored C, n differ by that factor).

Shapes (time-first; mlstm_kernels is head-first [B,NH,S,DH]): q, k [B,T,H,K]; v [B,T,HV,V];
i, f [B,T,HV]; state C [N,HV,K,V], n [N,HV,K], m [N,HV] (mlstm_kernels: m [B,NH,1]); zeros by default.
Eigenvalues: forget gate sigmoid(f) ∈ (0, 1); log-space, cannot be negative.
"""

from ..family import SCALE, Family, Input, Option, StateComponent, nonnegative_finite, register
from ._common import K_, Q, S_KV, V_


def step(ar, s, x, p):
    logf = ar.logsigmoid(x["f"])
    carried = ar.add(logf, s["m"])
    m = ar.maximum(carried, x["i"])
    fa = ar.exp(ar.sub(carried, m))
    ia = ar.exp(ar.sub(x["i"], m))
    ik = ar.mul(ia[..., None], x["k"])
    C = ar.add(ar.mul(fa[..., None, None], s["C"]), ar.outer(ik, x["v"]))
    n = ar.add(ar.mul(fa[..., None], s["n"]), ik)
    return {"C": ar.state(C), "n": ar.state(n), "m": ar.state(m)}


def readout(ar, s, x, p):
    q = ar.mul(x["q"], p.scale)
    num = ar.dot(s["C"], q[..., :, None], axis=-2)
    den = ar.add(ar.maximum(ar.abs(ar.dot(s["n"], q, axis=-1)), ar.exp(ar.neg(s["m"]))), ar.const(p.eps))
    return ar.div(num, den[..., None])


FAMILY = register(Family(
    name="mlstm",
    recurrence="m_t = max(logσ(f_t)+m_{t-1}, i_t);  C_t = e^{logσ(f_t)+m_{t-1}−m_t}C_{t-1} + e^{i_t−m_t}k_tv_tᵀ;  "
               "h_t = C_tᵀq̃_t / (max(|n_tᵀq̃_t|, e^{−m_t}) + eps)",
    inputs=(Q, K_, V_,
            Input("i", ("B", "T", "HV"), doc="input-gate preactivation (log-space input gate)",
                  role="gate_preactivation"),
            Input("f", ("B", "T", "HV"), doc="forget-gate preactivation (forget gate = sigmoid(f))",
                  role="gate_preactivation")),
    state=(StateComponent("C", S_KV, "stabilized matrix memory"),
           StateComponent("n", ("N", "HV", "K"), "stabilized normalizer"),
           StateComponent("m", ("N", "HV"), "log-scale stabilizer", role="stabilizer")),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout,
    options=(SCALE, Option("eps", 1e-6, "added to the denominator (mlstm_kernels default)", check=nonnegative_finite)),
    eigenvalues="sigmoid(f) ∈ (0, 1); log-space, cannot be negative",
    source="Beck et al. 2024 (xLSTM) eq. 19–27; NX-AI/mlstm_kernels mlstm_recurrent_step__native",
    rounding="logσ(f) = −softplus(−f); m; f' = exp(·), i' = exp(·); C ← f'·C + (i'·k)⊗v; n ← f'·n + i'·k; "
             "h = Σ_k C·q̃ ÷ (max(|Σ_k n·q̃|, exp(−m)) + eps)",
))
