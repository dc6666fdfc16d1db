"""Each finding of reports/conformance-peers.md checked outside the harness: a small float64 computation
written here from the paper's equations (no lrnnspec engine, no harness) gives the true value, and the
peer's function, called directly, deviates from it as the finding says. A finding that is an artefact
of the harness fails here."""

from __future__ import annotations

import importlib
import inspect
import math

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
