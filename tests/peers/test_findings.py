"""Each finding of reports/conformance-peers.md checked outside the harness: a small float64 computation
written here from the paper's equations (no lrnnspec engine, no harness) gives the true value, and the
peer's function, called directly, deviates from it as the finding says. A finding that is an artefact
of the harness fails here."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from lrnnspec.peers.findings import FINDINGS, KINDS


def test_every_finding_is_well_formed_and_names_its_check():
    names = {name for name in globals() if name.startswith("test_")}
    for f in FINDINGS:
        assert f.kind in KINDS and f.targets and f.properties and f.cause
        assert f.check.startswith("tests/peers/test_findings.py::") and f.check.split("::")[1] in names, f.id


# --- mlstm_nan_input_gate_gradient --------------------------------------------------------------------
def mlstm_float64(q, k, v, i, f):
    """The stabilized mLSTM (xLSTM, Beck et al. 2024, eqs. 19-27) for one head, [S, D] / [S], float64:
    D_ts = Σ_{s<r≤t} log σ(f_r) + i_s (s ≤ t), m_t = max_s D_ts, C̃_ts = q_t·k_s / √D · e^{D_ts − m_t},
    n_t = max(|Σ_s C̃_ts|, e^{−m_t}), h_t = Σ_s C̃_ts v_s / n_t."""
    S, D = q.shape
    logf = torch.nn.functional.logsigmoid(f)
    F = torch.cumsum(logf, 0)
    rows = []
    for t in range(S):
        logd = F[t] - F[: t + 1] + i[: t + 1]
        m = logd.max()
        c = (k[: t + 1] @ q[t]) / math.sqrt(D) * torch.exp(logd - m)
        n = torch.maximum(c.sum().abs(), torch.exp(-m))
        rows.append(c @ v[: t + 1] / n)
    return torch.stack(rows)


MLSTM_CASE = dict(q=[[1.0], [0.7], [-1.2]], k=[[0.5], [1.1], [0.3]], v=[[0.9], [-0.4], [1.5]],
                  i=[0.0, 0.0, -134.0], f=[0.0, 0.0, -104.0])


def _mlstm_case(dtype):
    return [torch.tensor(MLSTM_CASE[n], dtype=dtype, requires_grad=True) for n in "qkvif"]


def test_mlstm_nan_input_gate_gradient():
    """At the third step the stabilizer is m = log σ(0) − 104 ≈ −104.7, so the normalizer's floor
    e^{−m} ≈ 3e45 is finite in float64 and the true input-gate gradient is O(1); in float32 e^{−m}
    overflows to inf, the output is still right (0 at that step), and its backward multiplies 0 · inf."""
    x = _mlstm_case(torch.float64)
    h = mlstm_float64(*x)
    h.sum().backward()
    exact = x[3].grad
    assert torch.isfinite(exact).all() and exact[1].item() == pytest.approx(-0.30800, abs=1e-4)
    assert math.isinf(math.exp(104.69)) is False and torch.isinf(torch.exp(torch.tensor(104.69))).item()

    pytest.importorskip("mlstm_kernels")
    for name in ("parallel:mlstm_parallel__native_autograd", "parallel:mlstm_parallel__native_stablef_autograd",
                 "recurrent:mlstm_recurrent_sequence__native_fw", "chunkwise:mlstm_chunkwise__native_autograd"):
        module, fn = name.split(":")
        fn = getattr(importlib.import_module(f"mlstm_kernels.torch.{module}"), fn)
        S = 64 if module == "chunkwise" else 3                       # chunkwise: T a multiple of its chunk
        pad = S - 3
        q, k, v, i, f = (torch.cat([torch.zeros(pad, *t.shape[1:]), t.detach().float()]) for t in _mlstm_case(torch.float64))
        args = [t.reshape(1, 1, *t.shape).requires_grad_(True) for t in (q, k, v, i, f)]
        out = fn(*args)
        out = out[0] if isinstance(out, tuple) else out
        assert torch.isfinite(out).all(), name
        assert torch.allclose(out[0, 0, pad:].double(), mlstm_float64(*(t.double() for t in (q, k, v, i, f)))[pad:],
                              atol=1e-6), name
        out.sum().backward()
        assert args[3].grad.isnan().any(), f"{name}: the input-gate gradient is no longer NaN — the finding is fixed"


# --- comba_naive_recurrent_decays_before_the_error ------------------------------------------------------
def comba_float64(q, k, v, p, g, beta, scale, decay_first):
    """Comba (Hu et al. 2025) for one head, float64, [T, K] / [T, V] / [T]: the error reads the state
    before this step's decay, u_t = β_t (v_t − S_{t−1}ᵀ p_t), S_t = e^{g_t} S_{t−1} + k_t u_tᵀ — or, with
    ``decay_first``, the state after it, u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀ p_t); o_t = scale · S_tᵀ q_t."""
    S = torch.zeros(k.shape[1], v.shape[1], dtype=torch.float64)
    out = []
    for t in range(k.shape[0]):
        decayed = torch.exp(g[t]) * S
        u = beta[t] * (v[t] - (decayed if decay_first else S).T @ p[t])
        S = decayed + torch.outer(k[t], u)
        out.append(scale * S.T @ q[t])
    return torch.stack(out)


def test_comba_naive_recurrent_decays_before_the_error():
    """fla-core's two Comba references disagree: ``naive_chunk_comba`` (like its Triton kernels) reads
    S_{t−1}; ``naive_recurrent_comba`` decays first. At g = −1 the two recurrences differ by O(1)."""
    gen = torch.Generator().manual_seed(0)
    T, K, V = 6, 4, 3
    q, v = torch.randn(T, K, generator=gen, dtype=torch.float64), torch.randn(T, V, generator=gen, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(T, K, generator=gen, dtype=torch.float64), dim=-1)
    p = 0.5 * k
    g, beta = torch.full((T,), -1.0, dtype=torch.float64), torch.full((T,), 0.9, dtype=torch.float64)
    paper = comba_float64(q, k, v, p, g, beta, K ** -0.5, decay_first=False)
    decay_first = comba_float64(q, k, v, p, g, beta, K ** -0.5, decay_first=True)
    assert (paper - decay_first).abs().max() > 0.05

    naive = pytest.importorskip("fla.ops.comba.naive")
    seq = {n: t.float()[None, :, None] for n, t in dict(q=q, k=k, v=v, p=p, g=g, beta=beta).items()}   # [1,T,1,·]
    recurrent, _ = naive.naive_recurrent_comba(**seq)
    chunk, _ = naive.naive_chunk_comba(**seq, chunk_size=4)
    assert torch.allclose(chunk[0, :, 0].double(), paper, atol=1e-5)
    assert torch.allclose(recurrent[0, :, 0].double(), decay_first, atol=1e-5)
    assert not torch.allclose(recurrent[0, :, 0].double(), paper, atol=1e-2), "the finding is fixed"


# --- fla_naive_float32_output -------------------------------------------------------------------------
def test_fla_naive_float32_output():
    """Called directly with bfloat16 inputs, the references return float32 (the inputs' dtype is lost)."""
    pytest.importorskip("fla")
    from lrnnspec.peers.findings import FINDINGS

    (finding,) = [f for f in FINDINGS if f.id == "fla_naive_float32_output"]
    gen = torch.Generator().manual_seed(0)
    x = {n: torch.randn(1, 4, 1, 4, generator=gen).bfloat16() for n in "qkvp"}
    x["k"] = torch.nn.functional.normalize(x["k"].float(), dim=-1).bfloat16()
    x["g"], x["beta"] = -torch.rand(1, 4, 1, generator=gen).bfloat16(), torch.rand(1, 4, 1, generator=gen).bfloat16()
    x["lamb"] = (0.25 + torch.rand(1, 4, generator=gen)).bfloat16()          # mesa_net's regularizer [H, K]
    for target in finding.targets:
        module, name = target.split(":")
        fn = getattr(importlib.import_module(module), name)
        params = inspect.signature(fn).parameters
        out = fn(**{n: t for n, t in x.items() if n in params})
        assert out[0].dtype == torch.float32, target


# --- kda_naive_chunk_nan_gradient -----------------------------------------------------------------------
def kda_float64(q, k, v, g, beta, scale):
    """KDA (Kimi Linear, 2025) for one head, float64: S_t = (I − β_t k_t k_tᵀ) Diag(e^{g_t}) S_{t−1} + β_t k_t v_tᵀ,
    o_t = scale · S_tᵀ q_t; q, k, g [T, K], v [T, V], beta [T]."""
    S = torch.zeros(k.shape[1], v.shape[1], dtype=torch.float64)
    out = []
    for t in range(k.shape[0]):
        S = torch.exp(g[t])[:, None] * S
        S = S + beta[t] * torch.outer(k[t], v[t] - S.T @ k[t])
        out.append(scale * S.T @ q[t])
    return torch.stack(out)


def test_kda_naive_chunk_nan_gradient():
    """Strong gates (log-gate −2 per step, legal: any g ≤ 0 is) make the within-chunk sum reach −128:
    ``(g - g_i).exp()`` is computed for the whole chunk before the causal mask, so the masked
    entries are e^{+128} = inf in float32. The forward masks them to 0; the backward of exp
    multiplies the mask's zero gradient by inf."""
    gen = torch.Generator().manual_seed(0)
    T, K, V = 64, 2, 2
    q, v = torch.randn(T, K, generator=gen, dtype=torch.float64), torch.randn(T, V, generator=gen, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(T, K, generator=gen, dtype=torch.float64), dim=-1)
    g, beta = torch.full((T, K), -2.0, dtype=torch.float64), torch.full((T,), 0.5, dtype=torch.float64)
    qe = q.clone().requires_grad_(True)
    exact = kda_float64(qe, k, v, g, beta, K ** -0.5)
    exact.sum().backward()
    assert torch.isfinite(qe.grad).all()

    naive = pytest.importorskip("fla.ops.kda.naive")
    x = {n: t.float()[None, :, None].clone() for n, t in dict(q=q, k=k, v=v, g=g, beta=beta).items()}   # [1,T,1,·]
    x["q"].requires_grad_(True)
    o, _ = naive.naive_chunk_kda(**x, chunk_size=64)
    assert torch.allclose(o[0, :, 0].double(), exact.detach(), atol=1e-4)            # the forward is right
    o.sum().backward()
    assert x["q"].grad.isnan().any(), "the gradient is finite: the finding is fixed"
    rec = {n: t.detach().clone().requires_grad_(n == "q") for n, t in x.items()}
    o_rec, _ = naive.naive_recurrent_kda(**rec)
    o_rec.sum().backward()
    assert torch.isfinite(rec["q"].grad).all()                 # fla-core's recurrent reference is fine


# --- fla_fused_recurrent_gva_unchecked ------------------------------------------------------------------
_GVA_SCRIPT = """
import json, torch
from lrnnspec.peers import shims
shims.install_requested()
from fla.ops.linear_attn import fused_recurrent_linear_attn
from fla.ops.gla import fused_recurrent_gla
from fla.ops.simple_gla import fused_recurrent_simple_gla
from fla.ops.retention import fused_recurrent_retention
from fla.ops.delta_rule import fused_recurrent_delta_rule
gen = torch.Generator().manual_seed(0)
q, k = (torch.randn(1, 3, 1, 2, generator=gen, dtype=torch.float64) for _ in range(2))
k = torch.nn.functional.normalize(k, dim=-1)
v = torch.randn(1, 3, 2, 2, generator=gen, dtype=torch.float64)
x = dict(q=q.float(), k=k.float(), v=v.float(), output_final_state=True)
out = {}
for name, fn, extra in (("linear_attn", fused_recurrent_linear_attn, {}),
                        ("gla", fused_recurrent_gla, {"gk": torch.zeros(1, 3, 1, 2)}),
                        ("simple_gla", fused_recurrent_simple_gla, {"g": torch.zeros(1, 3, 1)}),
                        ("retention", fused_recurrent_retention, {}),
                        ("delta_rule", fused_recurrent_delta_rule, {"beta": torch.ones(1, 3, 1)})):
    o, s = fn(**x, **extra)
    out[name] = {"o": o.double().tolist(), "state_shape": list(s.shape)}
out["inputs"] = {"q": q.tolist(), "k": k.tolist(), "v": v.tolist()}
print(json.dumps(out))
"""


def test_fla_fused_recurrent_gva_unchecked(tmp_path):
    """v with two heads and q, k with one: the kernels neither refuse nor broadcast. The output has two
    heads, the final state one; the second head's output is not linear attention's (float64 below) —
    the values read are whatever the kernel finds past the rows it owns."""
    if importlib.util.find_spec("fla") is None:
        pytest.skip("fla-core is not installed")
    env = dict(os.environ, TRITON_INTERPRET="1", LRNNSPEC_TRITON_AUTOTUNE="first")
    run = subprocess.run([sys.executable, "-c", _GVA_SCRIPT], capture_output=True, text=True, timeout=600, env=env,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    q, k, v = (torch.tensor(out["inputs"][n], dtype=torch.float64)[0] for n in "qkv")
    # linear attention (and GLA with g = 0, retention's first step, the delta rule at t = 0), each value head
    # reading the single key head: o_t = scale Σ_{s≤t} (q_t·k_s) v_s
    scores = torch.tril(q[:, 0] @ k[:, 0].T) * 2 ** -0.5                # [T, T]
    exact = torch.einsum("ts,shv->thv", scores, v)                      # [T, HV, V]
    for name in ("linear_attn", "gla", "simple_gla", "retention", "delta_rule"):
        assert out[name]["state_shape"] == [1, 1, 2, 2], name             # one state: q's head count, not v's
        o = torch.tensor(out[name]["o"], dtype=torch.float64)[0]
        assert o.shape == exact.shape
        assert torch.allclose(o[0, 0], exact[0, 0], atol=1e-5), name         # head 0 at t = 0 is right
    for name in ("linear_attn", "gla", "simple_gla"):                        # all equal linear attention here
        o = torch.tensor(out[name]["o"], dtype=torch.float64)[0]
        assert not torch.allclose(o[:, 1], exact[:, 1], atol=1e-2), f"{name}: head 1 is right — the finding is fixed"


# --- mlstm_custbw_normalizer_gradient -----------------------------------------------------------------
def test_mlstm_custbw_normalizer_gradient():
    """At ordinary inputs (T = 64 normal draws, D = 4) the custom-backward chunkwise form's forward is right
    and its v-gradient too, but its q, k, i and f gradients are off by O(1): the backward treats the
    normalizer n_t = max(|Σ_s C̃_ts|, e^{−m_t}) as a constant. The autograd form, on the same inputs, is
    right to 1e-4."""
    gen = torch.Generator().manual_seed(0)
    S, D = 64, 4
    x = [torch.randn(S, D, generator=gen, dtype=torch.float64) for _ in range(3)]
    x += [torch.randn(S, generator=gen, dtype=torch.float64) for _ in range(2)]
    leaves = [t.clone().requires_grad_(True) for t in x]
    h = mlstm_float64(*leaves)
    w = torch.randn(h.shape, generator=gen, dtype=torch.float64)
    exact = torch.autograd.grad((h * w).sum(), leaves)

    pytest.importorskip("mlstm_kernels")
    chunkwise = importlib.import_module("mlstm_kernels.torch.chunkwise")
    errors = {}
    for name in ("mlstm_chunkwise__native_autograd", "mlstm_chunkwise__native_custbw"):
        args = [t.detach().float().reshape(1, 1, *t.shape).requires_grad_(True) for t in x]
        out = getattr(chunkwise, name)(*args)
        out = out[0] if isinstance(out, tuple) else out
        assert torch.allclose(out[0, 0].double(), h.detach(), atol=1e-4), name          # the forward is right
        grads = torch.autograd.grad((out[0, 0].double() * w).sum(), args)
        errors[name] = {n: float((g.reshape(e.shape).double() - e).abs().max()) for n, g, e in zip("qkvif", grads, exact)}
    assert max(errors["mlstm_chunkwise__native_autograd"].values()) < 1e-3
    custbw = errors["mlstm_chunkwise__native_custbw"]
    assert custbw["v"] < 1e-3 and min(custbw[n] for n in "qkif") > 0.5, custbw


# --- mlstm_chunkwise_bf16_states ----------------------------------------------------------------------
def test_mlstm_chunkwise_bf16_states():
    """With bf16 inputs the chunkwise forms keep and return their states in bf16 (the recurrent form
    keeps them in fp32), so the final state is about 100× further from the float64 state than the
    recurrent form's; and a float32 initial state — the dtype they return for fp32 inputs and the
    recurrent form returns for bf16 — makes them raise."""
    pytest.importorskip("mlstm_kernels")
    chunkwise = importlib.import_module("mlstm_kernels.torch.chunkwise")
    recurrent = importlib.import_module("mlstm_kernels.torch.recurrent")
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 64, 2, generator=gen).bfloat16() for _ in range(3))
    i, f = (torch.randn(1, 1, 64, generator=gen).bfloat16() for _ in range(2))
    exact, _ = (t.double() for t in recurrent.mlstm_recurrent_sequence__native_fw(
        *(t.double() for t in (q, k, v, i, f)), return_last_states=True)[1][:2])
    _, (c_rec, _, _) = recurrent.mlstm_recurrent_sequence__native_fw(q, k, v, i, f, return_last_states=True)
    assert c_rec.dtype == torch.float32
    state = (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2), torch.zeros(1, 1, 1))
    for name in ("mlstm_chunkwise__native_autograd", "mlstm_chunkwise__native_custbw"):
        fn = getattr(chunkwise, name)
        _, (c, n, m) = fn(q, k, v, i, f, return_last_states=True)
        assert c.dtype == n.dtype == torch.bfloat16, name
        assert (c.double() - exact).abs().max() > 20 * (c_rec.double() - exact).abs().max(), name
        with pytest.raises(RuntimeError, match="expected scalar type"):
            fn(q, k, v, i, f, c_initial=state[0], n_initial=state[1], m_initial=state[2], return_last_states=True)


# --- mamba2_ssd_ref_nan_dt_gradient, mamba2_ssd_ref_float32_output ----------------------------------------
def _ssd_reference():
    if importlib.util.find_spec("mamba_ssm") is None:
        pytest.skip("mamba_ssm is not installed")
    from lrnnspec.peers.shims import absent_extensions

    absent_extensions(["selective_scan_cuda"])        # mamba_ssm's CUDA extension, not built on this machine
    return importlib.import_module("mamba_ssm.ops.triton.ssd_combined").ssd_chunk_scan_combined_ref


def ssd_float64(x, dt, A, B, C):
    """Mamba-2's SSD for one head, float64: h_t = e^{dt_t·A} h_{t−1} + dt_t x_t B_tᵀ, y_t = h_t C_t;
    x [T, P], dt [T], A a scalar, B, C [T, N]."""
    h = torch.zeros(x.shape[1], B.shape[1], dtype=torch.float64)
    out = []
    for t in range(x.shape[0]):
        h = torch.exp(dt[t] * A) * h + dt[t] * torch.outer(x[t], B[t])
        out.append(h @ C[t])
    return torch.stack(out)


def test_mamba2_ssd_ref_nan_dt_gradient():
    """dt = 2, A = −1 (legal: any dt ≥ 0, A < 0): the within-chunk decay sum reaches −128 and the masked
    upper triangle of exp(segment sums) is inf in float32 before the mask."""
    ref = _ssd_reference()
    gen = torch.Generator().manual_seed(0)
    T, P, N = 64, 2, 2
    x, B, C = (torch.randn(T, d, generator=gen, dtype=torch.float64) for d in (P, N, N))
    dt = torch.full((T,), 2.0, dtype=torch.float64, requires_grad=True)
    exact = ssd_float64(x, dt, -1.0, B, C)
    exact.sum().backward()
    assert torch.isfinite(dt.grad).all()

    dt32 = dt.detach().float()[None, :, None].clone().requires_grad_(True)
    out = ref(x.float()[None, :, None], dt32, torch.tensor([-1.0]), B.float()[None, :, None], C.float()[None, :, None], 64)
    assert torch.allclose(out[0, :, 0].double(), exact.detach(), atol=1e-4)            # the forward is right
    out.sum().backward()
    assert dt32.grad.isnan().any(), "the gradient is finite: the finding is fixed"


def test_mamba2_ssd_ref_float32_output():
    ref = _ssd_reference()
    gen = torch.Generator().manual_seed(0)
    x, B, C = (torch.randn(1, 8, 1, 2, generator=gen).bfloat16() for _ in range(3))
    dt, A = torch.rand(1, 8, 1, generator=gen).bfloat16(), -torch.rand(1, generator=gen).bfloat16()
    assert ref(x, dt, A, B, C, 8).dtype == torch.float32



# --- mlstm_parallel_bf16_log_gates --------------------------------------------------------------------
def _bf16_exact(*ts):
    return [t.bfloat16().double() for t in ts]


def test_mlstm_parallel_bf16_log_gates():
    """f = 3 at every step (a forget gate of 0.95), T = 1024: the prefix sums F_t = Σ log σ(f) reach −50,
    where bf16's spacing is 0.25 — five steps' worth of log-gate (−0.049 each). Rounded to bf16, as the
    native parallel form does, the decays of nearby tokens are off by tens of percent and the output by
    far more than its own rounding; the stable form rounds each exponent instead, a smaller error that
    still exceeds the output rounding several times. Both functions on fp32 inputs are right."""
    gen = torch.Generator().manual_seed(0)
    T, D = 1024, 4
    q, k, v = _bf16_exact(*(torch.randn(T, D, generator=gen) for _ in range(3)))
    i, f = torch.zeros(T, dtype=torch.float64), torch.full((T,), 3.0, dtype=torch.float64)
    exact = mlstm_float64(q, k, v, i, f)
    F = torch.cumsum(torch.nn.functional.logsigmoid(f), 0)
    F_bf16 = torch.cumsum(torch.nn.functional.logsigmoid(f.bfloat16()).float(), 0).bfloat16().double()
    assert (F_bf16 - F).abs().max() > 0.05 and F.min() < -49          # the mechanism: prefix sums on bf16's grid

    pytest.importorskip("mlstm_kernels")
    parallel = importlib.import_module("mlstm_kernels.torch.parallel")

    def run(fn, dtype):
        return fn(*(x.to(dtype).reshape(1, 1, *x.shape) for x in (q, k, v, i, f)))[0, 0].double()

    for name, factor in (("mlstm_parallel__native_autograd", 20.0), ("mlstm_parallel__native_stablef_autograd", 3.0)):
        fn = getattr(parallel, name)
        rounding = float((run(fn, torch.float32).bfloat16().double() - exact).abs().max())   # fp32 inside, rounded once
        error = float((run(fn, torch.bfloat16) - exact).abs().max())
        assert rounding < 0.05 * float(exact.abs().max()), name
        assert error > factor * rounding, f"{name}: bf16 error {error:.3g} vs its output rounding {rounding:.3g}"


# --- mlstm_recurrent_bf16_log_forget_gate -------------------------------------------------------------
def test_mlstm_recurrent_bf16_log_forget_gate():
    """The stabilizer m returned by the recurrent form is the float32 sum of log σ(f) rounded to bf16 step by
    step (here the forget path wins every step: i = −20), not the sum of the log-gates: 64 steps of f = 3
    leave it 64 × (bf16 rounding of log σ(3)) away. That rounding is smaller than what one bf16 rounding of f
    itself does to log σ(f): the exact mLSTM of slightly perturbed gates."""
    pytest.importorskip("mlstm_kernels")
    recurrent = importlib.import_module("mlstm_kernels.torch.recurrent")
    T = 64
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, T, 2, generator=gen).bfloat16() for _ in range(3))
    i, f = torch.full((1, 1, T), -20.0).bfloat16(), torch.full((1, 1, T), 3.0).bfloat16()
    _, (_, _, m) = recurrent.mlstm_recurrent_sequence__native_fw(q, k, v, i, f, return_last_states=True)
    assert m.dtype == torch.float32
    logf = torch.nn.functional.logsigmoid(torch.tensor(3.0, dtype=torch.float64))
    logf_bf16 = logf.bfloat16().double()
    exact, rounded = T * logf, T * logf_bf16                 # m_T = Σ log σ(f_t) when the forget path wins
    assert abs(float(m) - float(rounded)) < 1e-5 < abs(float(m) - float(exact)), (float(m), float(exact), float(rounded))
    one_rounding_of_f = torch.nn.functional.logsigmoid(torch.tensor(3.0 + 3.0 * 2 ** -8, dtype=torch.float64)) - logf
    assert abs(logf_bf16 - logf) < abs(one_rounding_of_f)


# --- mlstm_bf16_autograd_gradients --------------------------------------------------------------------
def _bf16_ulp(x: float) -> float:
    return 2.0 ** (math.floor(math.log2(abs(x))) - 7)


def _gradient_ulps(fn, xs, w, exact, dtype) -> float:
    """The largest error of ``fn``'s gradients (inputs in ``dtype``; fp32 gradients rounded once to bf16),
    in bf16 ulps of each input's largest exact gradient."""
    args = [x.to(dtype).reshape(1, 1, *x.shape).requires_grad_(True) for x in xs]
    out = fn(*args)
    out = out[0] if isinstance(out, tuple) else out
    (out * w.to(dtype).reshape(out.shape)).sum().backward()
    worst = 0.0
    for a, e in zip(args, exact):
        g = a.grad.reshape(e.shape).bfloat16().double()
        worst = max(worst, float((g - e).abs().max()) / _bf16_ulp(float(e.abs().max())))
    return worst


def test_mlstm_bf16_autograd_gradients():
    """Eight small draws (T = 2, K = 3, V = 4): with bf16 inputs the gradients are typically more than one
    bf16 ulp of the gradient's largest element off the float64 gradient; computed from fp32 inputs and
    rounded once to bf16 they are within half an ulp."""
    pytest.importorskip("mlstm_kernels")
    fns = [getattr(importlib.import_module(f"mlstm_kernels.torch.{m}"), n) for m, n in (
        ("parallel", "mlstm_parallel__native_autograd"), ("parallel", "mlstm_parallel__native_stablef_autograd"),
        ("recurrent", "mlstm_recurrent_sequence__native_fw"))]
    bf16, fp32 = {fn: [] for fn in fns}, {fn: [] for fn in fns}
    for seed in range(8):
        gen = torch.Generator().manual_seed(seed)
        xs = _bf16_exact(torch.randn(2, 3, generator=gen), torch.randn(2, 3, generator=gen),
                         torch.randn(2, 4, generator=gen), torch.randn(2, generator=gen), torch.randn(2, generator=gen))
        (w,) = _bf16_exact(torch.randn(2, 4, generator=gen))
        leaves = [x.clone().requires_grad_(True) for x in xs]
        exact = torch.autograd.grad((mlstm_float64(*leaves) * w).sum(), leaves)
        for fn in fns:
            bf16[fn].append(_gradient_ulps(fn, xs, w, exact, torch.bfloat16))
            fp32[fn].append(_gradient_ulps(fn, xs, w, exact, torch.float32))
    for fn in fns:
        assert max(fp32[fn]) <= 0.5 + 1e-6, (fn.__name__, fp32[fn])
        assert sorted(bf16[fn])[4] > 1.0, (fn.__name__, bf16[fn])            # the median draw: over one ulp


# --- fla_naive_chunk_linear_attn_bf16_backward --------------------------------------------------------
def linear_attention_float64(q, k, v):
    """Linear attention for one head, float64: o_t = K^{-1/2} Σ_{s≤t} (q_t·k_s) v_s."""
    return torch.tril(q @ k.T) @ v * q.shape[1] ** -0.5


def test_fla_naive_chunk_linear_attn_bf16_backward():
    """Eight draws (T = 128, two chunks, K = V = 2): with bf16 inputs the chunk reference's gradients are up
    to well over one bf16 ulp of the gradient's largest element off the float64 gradient, about twice or
    more the error of its fp32 gradients rounded once to bf16 (within half an ulp)."""
    naive = pytest.importorskip("fla.ops.linear_attn.naive")

    def fn(q, k, v):                        # [1, 1, T, ·] from _gradient_ulps → fla's [B, T, H, ·]
        return naive.naive_chunk_linear_attn(*(x.transpose(1, 2) for x in (q, k, v)))

    bf16, fp32 = [], []
    for seed in range(8):
        gen = torch.Generator().manual_seed(seed)
        xs = _bf16_exact(*(torch.randn(128, 2, generator=gen) for _ in range(3)))
        (w,) = _bf16_exact(torch.randn(128, 2, generator=gen))
        leaves = [x.clone().requires_grad_(True) for x in xs]
        exact = torch.autograd.grad((linear_attention_float64(*leaves) * w).sum(), leaves)
        bf16.append(_gradient_ulps(fn, xs, w, exact, torch.bfloat16))
        fp32.append(_gradient_ulps(fn, xs, w, exact, torch.float32))
    assert max(fp32) <= 0.5 + 1e-6, fp32
    assert max(bf16) > 1.25 and max(bf16) > 2 * max(fp32), (bf16, fp32)


# --- log_linear_attn_naive_needs_every_level ----------------------------------------------------------
def log_linear_attn_float64(q, k, v, g, lam, scale=1.0):
    """Log-linear attention (Guo et al. 2025) for one head, float64: o_t = scale Σ_{s≤t} (q_t·k_s)
    e^{G_t − G_s} λ_t^{(ℓ)} v_s with ℓ = bit_length(t ⊕ s) and λ^{(ℓ)} = 0 past the given levels."""
    G = torch.cumsum(g, 0)
    out = []
    for t in range(q.shape[0]):
        o = torch.zeros(v.shape[1], dtype=torch.float64)
        for s in range(t + 1):
            level = (t ^ s).bit_length()
            if level < lam.shape[1]:
                o = o + (q[t] @ k[s]) * torch.exp(G[t] - G[s]) * lam[t, level] * v[s]
        out.append(scale * o)
    return torch.stack(out)


def test_log_linear_attn_naive_needs_every_level():
    """T = 5 needs levels 0 … 3 (bit_length(4 ⊕ 0) = 3): with ⌈log₂5⌉ + 1 = 4 levels or more the reference
    is log-linear attention to 1e-12; with fewer — which the formula, the spec and chunk_log_linear_attn
    read as weight 0 — it raises IndexError."""
    naive = pytest.importorskip("fla.ops.log_linear_attn.naive")
    gen = torch.Generator().manual_seed(0)
    T, K, V = 5, 2, 3
    q, k = (torch.randn(T, K, generator=gen, dtype=torch.float64) for _ in range(2))
    v, g = torch.randn(T, V, generator=gen, dtype=torch.float64), -torch.rand(T, generator=gen, dtype=torch.float64)
    for levels in (4, 6):
        lam = torch.randn(T, levels, generator=gen, dtype=torch.float64)
        o = naive.naive_log_linear_attn(q[None, :, None], k[None, :, None], v[None, :, None], g[None, :, None],
                                        lam[None, :, None])
        assert torch.allclose(o[0, :, 0], log_linear_attn_float64(q, k, v, g, lam), atol=1e-12), levels
    lam = torch.randn(T, 2, generator=gen, dtype=torch.float64)
    assert log_linear_attn_float64(q, k, v, g, lam).isfinite().all()          # well defined with two levels
    with pytest.raises(IndexError):
        naive.naive_log_linear_attn(q[None, :, None], k[None, :, None], v[None, :, None], g[None, :, None],
                                    lam[None, :, None])


# --- certifier_bf16_operand_rounding ------------------------------------------------------------------
def test_certifier_bf16_operand_rounding():
    """The recorded bf16 failures were the certifier's: (1) fla-core's naive_chunk_linear_attn (normalized,
    K = 1, q large: the read-out cancels) errs by thousands of output ulps where a contract-conforming
    evaluation — the scores q kᵀ rounded to bf16 as an MMA operand, everything else exact — errs as much, and
    both stay within u_bf16·Σ|terms| (the operand term); (2) mlstm_kernels' recurrent form writes
    i·bf16(k vᵀ): its final state C is one bf16 rounding of each written product away from the float64
    state, within u_bf16·|terms|."""
    naive = pytest.importorskip("fla.ops.linear_attn.naive")
    gen = torch.Generator().manual_seed(124)
    T = 64
    q, k, v = _bf16_exact(30 * torch.randn(T, 1, generator=gen, dtype=torch.float64),
                          *(torch.randn(T, 1, generator=gen, dtype=torch.float64) for _ in range(2)))
    scores = torch.tril(q @ k.T)                                              # scale K^{-1/2} = 1
    num, den = scores @ v, scores.sum(-1, keepdim=True)
    exact = num / (den + 1e-10)
    conforming = (torch.tril((q @ k.T).bfloat16().double()) @ v / (den + 1e-10)).bfloat16().double()
    bound = 2 ** -8 * (torch.tril((q @ k.T).abs()) @ v.abs() + exact.abs() * torch.tril((q @ k.T).abs()).sum(-1, keepdim=True)) / den.abs()
    o = naive.naive_chunk_linear_attn(*(x.reshape(1, T, 1, 1).bfloat16() for x in (q, k, v)), normalize=True)
    err = (o[0, :, 0].double() - exact).abs()
    ulps = torch.tensor([_bf16_ulp(float(x)) for x in exact[:, 0]], dtype=torch.float64)[:, None]
    t = int((err / ulps).argmax())
    assert err[t] > 100 * ulps[t]                                            # far beyond one output rounding
    assert err[t] <= 1.1 * (conforming[t] - exact[t]).abs() + ulps[t]
    assert (err <= bound + 2 * ulps).all()

    pytest.importorskip("mlstm_kernels")
    recurrent = importlib.import_module("mlstm_kernels.torch.recurrent")
    gen = torch.Generator().manual_seed(0)
    qm, km, vm = _bf16_exact(*(torch.randn(1, 1, 1, 3, generator=gen) for _ in range(3)))
    i, f = _bf16_exact(torch.randn(1, 1, 1, generator=gen), torch.randn(1, 1, 1, generator=gen))
    _, (C, _, m) = recurrent.mlstm_recurrent_sequence__native_fw(*(x.bfloat16() for x in (qm, km, vm, i, f)),
                                                                  return_last_states=True)
    logf = torch.nn.functional.logsigmoid(f)
    m_exact = torch.maximum(logf, i)                                        # one step from m = 0
    written = torch.exp(i - m_exact)[..., None, None] * km[..., 0, :, None] * vm[..., 0, None, :]
    err = (C.double() - written).abs()
    assert err.max() > 1e-5 * written.abs().max()                            # not fp32 rounding alone ...
    assert (err <= 2 ** -8 * written.abs() + 1e-6 * written.abs().max()).all()   # ... one bf16 rounding per product
