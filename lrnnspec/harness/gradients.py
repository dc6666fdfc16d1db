"""The gradient rule, shared by sequence and DAG families: the kernel's VJP against the reference's.

For each input X and element i (:func:`check_gradients`):

    |ĝ_i − g_i| ≤ factor·s_i + C_SENS·σ_X + ulp_X(s_i),   s_i = max(‖g_X‖_∞, L / |X_i|),

L = max_Y ‖g_Y ⊙ Y‖_∞ (|X_i| = 0: ‖X‖_∞, or 1). By the chain rule g_i·X_i is a sum of terms of at
most L, so ∂L/∂X_i is computed from terms up to L / |X_i| even where it cancels to ≈ 0 (a quotient's
gradient: the normalized read-outs of linear attention and mLSTM). ``factor`` is
C_GRAD·u·(√(length + 1) + Λ)·κ, the forward's terms for a reassociated backward; σ_X
(:func:`gradient_sensitivity`) is how far the exact gradient moves when the inputs move by one
rounding — the backward analogue of the emulated baseline, which the normwise scale misses when
the gradient is ill-conditioned.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lrnnspec.spec.formats import get_format

from .tolerance import C_SENS, smallest_normal, ulp
from .verdicts import PropertyFailure


def gradient_sensitivity(values: dict[str, np.ndarray], vjp: Callable[[dict], dict], want: dict, u: float,
                         seed: int, trials: int = 2) -> dict[str, float]:
    """σ_X = max over ``trials`` of ‖g_X(x ⊙ (1 + u·ξ)) − g_X(x)‖_∞, ξ random signs on every entry of
    ``values`` (the inputs and initial state; ``vjp`` maps moved values to the reference gradients).
    mLSTM's read-out divides by |nᵀq|, which can cancel to 1/1000 of Σ|n||q|: the gradient of a
    quotient amplifies that cancellation, and a backward-stable kernel's error is of this size."""
    worst = dict.fromkeys(want, 0.0)
    for trial in range(trials):
        rng = np.random.default_rng([seed % 2**32, trial])
        moved = {n: v * (1.0 + u * rng.choice([-1.0, 1.0], v.shape)) for n, v in values.items()}
        for n, g in vjp(moved).items():
            worst[n] = max(worst[n], float(np.max(np.abs(g - want[n]), initial=0.0)))
    return worst


def kernel_gradients(reply: dict, want: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The kernel's gradients from a worker's reply (zeros for a leaf its results do not reach);
    None when its results carry no graph and the reference gradient ``want`` is zero too. A missing
    backward where the results depend on the inputs is a :class:`PropertyFailure`."""
    if not reply.get("loss_requires_grad"):
        if any(np.any(w != 0) for w in want.values()):
            raise PropertyFailure("the results do not require grad although they depend on the inputs (no backward)")
        return None
    got = {}
    for name, w in want.items():
        g = reply["values"].get(name)
        if g is None:
            got[name] = np.zeros(w.shape)
            continue
        if tuple(g.shape) != w.shape:
            raise PropertyFailure(f"the gradient w.r.t. {name} has shape {tuple(g.shape)}, the input's is {w.shape}")
        got[name] = g.double().numpy()
    return got


def check_gradients(got: dict[str, np.ndarray], want: dict[str, np.ndarray], values: dict[str, np.ndarray], *,
                    factor: float, sensitivity: dict[str, float], formats: dict[str, str],
                    locate: Callable[[tuple[int, ...]], str] | None = None, exclude_overflow: bool = True) -> dict:
    """Apply the rule of the module docstring. ``formats``: the format of each gradient (its ulp,
    its range: with ``exclude_overflow`` a gradient beyond the range overflows in any correct
    kernel and is not compared); ``locate(index)`` names an element in the failure message."""
    loss_scale = max((float(np.max(np.abs(want[n] * values[n]), initial=0.0)) for n in want), default=0.0)
    worst = {}
    for name, g in got.items():
        w, x_abs = want[name], np.abs(values[name])
        norm = float(np.max(np.abs(w), initial=0.0))
        size = np.where(x_abs > 0, x_abs, float(np.max(x_abs, initial=0.0)) or 1.0)
        scale = np.maximum(norm, loss_scale / size)                          # per element
        allowed = factor * scale + C_SENS * sensitivity[name] + ulp(np.maximum(scale, norm), formats[name]) \
            + smallest_normal(formats[name])
        with np.errstate(invalid="ignore"):
            ratio = np.where(np.isfinite(g), np.abs(g - w), np.inf) / allowed
        if exclude_overflow:
            ratio = np.where(np.abs(w) + allowed > get_format(formats[name]).largest, 0.0, ratio)
        if ratio.size == 0:
            worst[name] = 0.0
            continue
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        worst[name] = float(ratio[i])
        if ratio[i] > 1.0:
            where = locate(i) if locate else str([int(j) for j in i])
            raise PropertyFailure(f"gradient w.r.t. {name} at {where}: error {abs(g[i] - w[i]):.3e} > allowed "
                                  f"{allowed[i]:.3e} (got {g[i]:.6g}, reference {w[i]:.6g}, ‖g‖∞ = {norm:.3e})",
                                  {"input": name, "index": [int(j) for j in i], "error": float(abs(g[i] - w[i])),
                                   "allowed": float(allowed[i])})
    return {"worst_normalized": max(worst.values(), default=0.0), "per_input": worst}
