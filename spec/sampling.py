"""Random *valid* inputs for any family: the demo inputs of ``lrnnspec spec eval`` and a fixture for
tests. (The certifier's Hypothesis strategies cover the adversarial regimes.)

Each input is drawn from its declared domain: real → N(0, 1); log-gate ≤ 0 → logsigmoid(N(2, 1))
(decay ≈ 0.88); β → U(lo, hi) over the declared range; ≥ 0 step sizes → U(0, 0.5);
≤ 0 rates → −U(0.1, 1); step-size biases → U(0, 0.5) (Δ stays ≥ 0 without softplus); other
bounded domains → uniform inside. Unit-key inputs are L2-normalized.
A family may refine this with its ``sample`` hook (dplr draws RWKV-7-style a = −κ̂, b = κ̂ ⊙ iclr).
"""

from __future__ import annotations

import math

import numpy as np

from .family import Family, Input, get_family
from .prepare import active_state
from .roles import get_role, shape_state

DEFAULT_SIZES = {"B": 1, "T": 16, "H": 2, "HV": None, "K": 8, "V": 8, "n_h": 2, "D": 4, "NS": 4}


def _draw(rng: np.random.Generator, inp: Input, shape, options) -> np.ndarray:
    dom = inp.domain_for(options)
    kind = get_role(inp.role).regimes
    if kind == "bias":
        return rng.uniform(0.0, 0.5, shape)
    if kind == "gate":
        return -np.logaddexp(0.0, -rng.normal(2.0, 1.0, shape))  # logsigmoid
    if dom.lo == -math.inf and dom.hi == math.inf:
        return rng.standard_normal(shape)
    if dom.lo == -math.inf and dom.hi == 0.0:
        return -rng.uniform(0.1, 1.0, shape)
    if dom.lo == 0.0 and dom.hi == math.inf:
        return rng.uniform(0.0, 0.5, shape)
    lo = dom.lo if dom.lo > 0 else 0.0
    return rng.uniform(max(lo, 0.9 * dom.hi) if kind == "decay" else lo, dom.hi, shape)


def random_inputs(family: "str | Family", *, seed: int = 0, optional: bool = True, initial_state: bool = False,
                  options: dict | None = None, **sizes) -> dict:
    """Draw inputs for ``family`` (and, with ``initial_state=True``, an ``"initial_state"`` entry).

    ``sizes``: B, T, H, HV (default H), K, V, n_h, D, NS. Returns name → float64 array.
    """
    fam = get_family(family)
    unknown = set(sizes) - set(DEFAULT_SIZES)
    if unknown:
        raise TypeError(f"random_inputs: unknown sizes {sorted(unknown)}; known: {list(DEFAULT_SIZES)}")
    dims = {**DEFAULT_SIZES, **sizes}
    dims["HV"] = dims["HV"] or dims["H"]
    dims["T*n_h"] = dims["T"] * dims["n_h"]
    opts = {o.name: o.default for o in fam.options} | (options or {})
    rng = np.random.default_rng(seed)
    defaulted = set(fam.defaults(dims, opts)) if fam.defaults is not None else set()
    out = {}
    for inp in fam.inputs:
        if inp.optional and (not optional or inp.name in defaulted):
            continue
        out[inp.name] = _draw(rng, inp, tuple(dims[d] for d in inp.dims), opts)
    for name in fam.unit_keys:
        out[name] /= np.linalg.norm(out[name], axis=-1, keepdims=True)
    if fam.sample is not None:
        out.update(fam.sample(rng, out, dims))
    if initial_state:
        sizes_n = {**dims, "N": dims["B"]}
        out["initial_state"] = {c.name: shape_state(c.role, rng.standard_normal(tuple(sizes_n[d] for d in c.dims)))
                                for c in active_state(fam, opts)}
    return out
