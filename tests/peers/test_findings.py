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

