"""Small LRNN stacks built on :mod:`lrnnspec.impls` (chunk forms, autograd): embedding → L blocks → readout.

A block is pre-norm, residual: ``x ← x + mixer(norm(x))``, then ``x ← x + mlp(norm(x))`` (a SwiGLU
MLP of width 2·d), as in the papers' stacks. The mixers, one per model, each a thin layer over
the project's own chunk form (shapes: x [B, T, d], heads H, head dim K = V = d / H):

==================  =====================================================================================
``deltanet``        ``chunk_delta_rule``: q, k, v = linear (k, q L2-normalized), β = σ(w_βᵀx) ∈ (0, 1),
                    doubled for the [−1, 1] range (Grazzi et al. 2025, eq. 2 — B doubles with it)
``gated_deltanet``  ``chunk_gated_delta_rule``: as above plus the log-gate
                    g = −exp(A_log)·softplus(w_gᵀx + b) ≤ 0 (eigenvalues g·(1 − β) and g)
``deltaproduct``    ``chunk_gated_delta_product`` without gate: n_h (k, v, β) triples per token, the token's
                    transition the product of n_h generalized Householder factors (Siems et al. 2025)
``mamba``           ``chunk_selective_scan`` (S6): in_proj to (u, z), causal depthwise conv (4) + SiLU,
                    Δ = softplus(dt_proj(·) + b), B, C from x_proj, A = −exp(A_log); the [−1, 1] range
                    is the impls' ``eigenvalue_range="[-1,1]"``: a = 2·exp(Δ·A) − 1 (Grazzi et al. eq. 2)
``gla``             ``chunk_gla``: log-gate g = logσ(W₂W₁x + b)/16 per key dimension (Yang et al. 2024)
``mlstm``           ``chunk_mlstm``: exponential input gate i, forget gate logσ(f) (Beck et al. 2024)
==================  =====================================================================================

GLA and mLSTM compute their decays in log space and have no [−1, 1] range (research/theorems.md
§2.4): asking for it raises. The delta mixers optionally run a causal depthwise short convolution
(kernel 4) on q, k, v (Grazzi et al.'s Chomsky-task models have one; the word-problem models of
Siems et al. do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lrnnspec.impls import (chunk_delta_rule, chunk_gated_delta_product, chunk_gated_delta_rule, chunk_gla,
                            chunk_mlstm, chunk_selective_scan)
from lrnnspec.spec.errors import DomainError, OptionError

MODELS = ("mamba", "gla", "mlstm", "deltanet", "gated_deltanet", "deltaproduct")
RANGES = ("0,1", "-1,1")
DT_MIN, DT_MAX = 1e-2, 1.0  # Δ at init; mamba_ssm: 1e-3, 1e-1 (see MambaMixer)
NEGATIVE_RANGE = ("mamba", "deltanet", "gated_deltanet", "deltaproduct")  # the others decay in log space


@dataclass(frozen=True)
class ModelConfig:
    model: str
    eigenvalues: str            # "0,1" or "-1,1"
    vocab: int
    classes: int
    layers: int = 1
    d_model: int = 64
    heads: int = 2
    n_h: int = 1                # Householder factors per token (deltaproduct only)
    short_conv: bool = False    # delta mixers: causal depthwise conv of q, k, v

    def __post_init__(self):
        if self.model not in MODELS:
            raise OptionError("model", f"must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.eigenvalues not in RANGES:
            raise OptionError("eigenvalues", f"must be one of {', '.join(RANGES)}, got {self.eigenvalues!r}")
        if self.eigenvalues == "-1,1" and self.model not in NEGATIVE_RANGE:
            raise OptionError("eigenvalues", f"model {self.model!r} computes its decay in log space and has no "
                                             f"[-1,1] range (research/theorems.md §2.4); use 0,1")
        for name in ("vocab", "classes", "layers", "d_model", "heads", "n_h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DomainError(name, f"must be a positive integer, got {value!r}")
        if self.d_model % self.heads:
            raise DomainError("heads", f"must divide d_model = {self.d_model}, got {self.heads}")
        if self.n_h > 1 and self.model != "deltaproduct":
            raise OptionError("n_h", f"only deltaproduct takes n_h > 1, got n_h = {self.n_h} for {self.model!r}")

    @property
    def negative(self) -> bool:
        return self.eigenvalues == "-1,1"


class ShortConv(nn.Module):
    """Causal depthwise convolution over time: x [B, T, C] → [B, T, C] (kernel 4, SiLU)."""

    def __init__(self, channels: int, kernel: int = 4):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, groups=channels, padding=kernel - 1)

    def forward(self, x):
        return F.silu(self.conv(x.transpose(1, 2))[..., :x.shape[1]].transpose(1, 2))


class DeltaMixer(nn.Module):
    """DeltaNet / Gated DeltaNet / DeltaProduct (n_h factors per token) on the impls' chunk forms."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, H, n = cfg.d_model, cfg.heads, cfg.n_h
        self.cfg, self.H, self.K, self.n = cfg, H, d // H, n
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, n * d, bias=False)
        self.v = nn.Linear(d, n * d, bias=False)
        self.b = nn.Linear(d, n * H)
        self.conv = nn.ModuleList(ShortConv(c) for c in (d, n * d, n * d)) if cfg.short_conv else None
        if cfg.model == "gated_deltanet":
            self.a = nn.Linear(d, H)
            self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
            self.dt_bias = nn.Parameter(torch.log(torch.expm1(torch.empty(H).uniform_(1e-3, 1e-1))))
        self.norm = nn.RMSNorm(self.K)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, _ = x.shape
        H, K, n = self.H, self.K, self.n
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.conv is not None:
            q, k, v = (c(t) for c, t in zip(self.conv, (q, k, v)))
        beta = torch.sigmoid(self.b(x)) * (2.0 if self.cfg.negative else 1.0)
        q = q.view(B, T, H, K)
        k = k.view(B, T * n, H, K)  # token t, factor j at index t·n + j
        v = v.view(B, T * n, H, K)
        beta = beta.view(B, T * n, H)
        if self.cfg.model == "deltaproduct":
            o, _ = chunk_gated_delta_product(q, k, v, None, beta, num_householder=n, use_qk_l2norm_in_kernel=True)
        elif self.cfg.model == "gated_deltanet":
            g = -self.A_log.exp() * F.softplus(self.a(x) + self.dt_bias)
            o, _ = chunk_gated_delta_rule(q, k, v, g, beta, use_qk_l2norm_in_kernel=True)
        else:
            o, _ = chunk_delta_rule(q, k, v, beta, use_qk_l2norm_in_kernel=True)
        return self.o(self.norm(o).reshape(B, T, -1))


class MambaMixer(nn.Module):
    """S6 (Gu & Dao 2023) on ``chunk_selective_scan``: d_inner = d, d_state 8.

    Two departures from mamba_ssm's defaults, the same for every seed and range: the Δ projection
    has full rank d (mamba_ssm: ⌈d/16⌉) and Δ starts in [0.01, 1] (mamba_ssm: [0.001, 0.1]). With
    the defaults, 400 steps of parity did not move the loss off ln 2 in either range; with these,
    Mamba [−1, 1] learns it (research/theorems.md §2.9: Grazzi et al. train 20k–100k steps).
    """

    def __init__(self, cfg: ModelConfig, d_state: int = 8):
        super().__init__()
        d = cfg.d_model
        self.cfg, self.N, self.R = cfg, d_state, d
        self.inp = nn.Linear(d, 2 * d, bias=False)
        self.conv = ShortConv(d)
        self.x_proj = nn.Linear(d, self.R + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.R, d, bias=False)
        dt = torch.exp(torch.empty(d).uniform_(math.log(DT_MIN), math.log(DT_MAX)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d, 1))
        self.D = nn.Parameter(torch.ones(d))
        self.out = nn.Linear(d, d, bias=False)

    def forward(self, x):
        u, z = self.inp(x).chunk(2, dim=-1)
        u = self.conv(u)
        dt, Bm, Cm = self.x_proj(u).split([self.R, self.N, self.N], dim=-1)
        y = chunk_selective_scan(u.transpose(1, 2), self.dt_proj(dt).transpose(1, 2), -self.A_log.exp(),
                                 Bm.transpose(1, 2), Cm.transpose(1, 2), self.D, z.transpose(1, 2),
                                 self.dt_bias, delta_softplus=True, chunk_size=16,
                                 eigenvalue_range="[-1,1]" if self.cfg.negative else "[0,1]")
        return self.out(y.transpose(1, 2))


class GLAMixer(nn.Module):
    """Gated linear attention: log-gate logσ(W₂W₁x + b)/16 per key dimension, swish output gate."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, H = cfg.d_model, cfg.heads
        self.H, self.K = H, d // H
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.g = nn.Sequential(nn.Linear(d, 16, bias=False), nn.Linear(16, d))
        self.r = nn.Linear(d, d)
        self.norm = nn.RMSNorm(self.K)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = (t.view(B, T, self.H, self.K) for t in self.qkv(x).chunk(3, dim=-1))
        g = (F.logsigmoid(self.g(x)) / 16).view(B, T, self.H, self.K)
        o, _ = chunk_gla(q, k, v, g)
        return self.o(self.norm(o).reshape(B, T, d) * F.silu(self.r(x)))


class MLSTMMixer(nn.Module):
    """mLSTM (Beck et al. 2024): exponential input gate, sigmoid forget gate, max-stabilized."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, H = cfg.d_model, cfg.heads
        self.H, self.K = H, d // H
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.i = nn.Linear(d, H)
        self.f = nn.Linear(d, H)
        with torch.no_grad():
            self.f.bias.copy_(torch.linspace(3.0, 6.0, H))
            self.i.bias.fill_(-3.0)
        self.norm = nn.RMSNorm(self.K)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = (t.view(B, T, self.H, self.K).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        h = chunk_mlstm(q, k, v, self.i(x).transpose(1, 2), self.f(x).transpose(1, 2))
        return self.o(self.norm(h.transpose(1, 2)).reshape(B, T, d))


MIXERS = {"deltanet": DeltaMixer, "gated_deltanet": DeltaMixer, "deltaproduct": DeltaMixer, "mamba": MambaMixer,
          "gla": GLAMixer, "mlstm": MLSTMMixer}


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.mixer = MIXERS[cfg.model](cfg)
        self.up = nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(2 * d, d, bias=False)

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        a, b = self.up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(a) * b)


class LRNNStack(nn.Module):
    """Embedding → ``layers`` blocks → RMSNorm → linear readout: tokens [B, T] → logits [B, T, classes]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
