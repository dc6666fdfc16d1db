"""Helpers of the tests of the families added for the rest of the field (kda, gdn2, comba, rwkv6,
lightning_attn, hgrn): run a registered form on a drawn case through its calling convention, and
compare with the spec's fp64 evaluation."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lrnnspec.harness import conventions
from lrnnspec.harness.kernel import Signature
from lrnnspec.impls import implementations
from lrnnspec.spec import get_family
from lrnnspec.spec.prepare import active_state
from lrnnspec.strategies import Case


@dataclass(frozen=True)
class Form:
    family: str
    form: str
    fn: Callable
    convention: str = "fla"

    @property
    def id(self) -> str:
        return f"{self.family}-{self.form}"


def form(family: str, name: str) -> Form:
    """The registered ``name`` form of ``family`` (its module's ``FORMS``; every form here takes FLA's
    convention)."""
    (impl,) = implementations(family, name)
    module = importlib.import_module(impl.target.split(":")[0])
    return Form(family, name, module.FORMS[name], impl.convention or "fla")


def run(impl, case: Case, dtype=torch.float64, chunk: int | None = None, requires_grad: bool = False):
    """(leaves, output, state dict) of ``impl`` on ``case`` (inputs in ``dtype``, state in float64 for
    float64 inputs, else float32)."""
    fam = get_family(impl.family)
    x = case.torch(dtype, requires_grad=requires_grad)
    init = case.torch_state(dtype=torch.float64 if dtype == torch.float64 else torch.float32,
                            requires_grad=requires_grad)
    sig = Signature.of(impl.fn)
    opts = {k: v for k, v in case.options.items()
            if sig.names(k) and not any(o.name == k and o.domain_only for o in fam.options)}
    names = [c.name for c in active_state(fam, case.all_options)]
    o, state = conventions.call(impl.fn, impl.convention, impl.family, x, state_names=names, initial_state=init,
                                want_state=True, cu_seqlens=None if case.segments is None else torch.tensor(case.segments),
                                chunk_size=chunk if impl.form == "chunk" else None, options=opts, dims=case.dims)
    leaves = {**x, **{f"initial_state[{k}]": v for k, v in (init or {}).items()}}
    return leaves, o, state


def rel_err(got, want) -> float:
    """max |got − want| / max(1, max |want|)."""
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    return float(np.max(np.abs(got - want), initial=0.0)) / max(1.0, float(np.max(np.abs(want), initial=0.0)))


def assert_matches_spec(impl, case: Case, tol: float, chunk: int | None = None, dtype=torch.float64):
    """Output and final state of ``impl`` on ``case`` within ``tol`` (relative to max(1, max |spec|)) of the
    spec's fp64 evaluation of the same (rounded) inputs."""
    ref = case.reference()
    _, o, state = run(impl, case, dtype, chunk)
    err = rel_err(o, ref.output)
    assert err <= tol, f"{impl.id} output: relative error {err:.3e} > {tol:.0e} ({case.describe()})"
    want = ref.final_state if isinstance(ref.final_state, dict) else \
        {get_family(impl.family).state[0].name: ref.final_state}
    for name, s in want.items():
        err = rel_err(state[name], s)
        assert err <= tol, f"{impl.id} state {name}: relative error {err:.3e} > {tol:.0e} ({case.describe()})"


def vjp(leaves, o, state, seed=0):
    """Gradients of a fixed random linear functional of (o, state) with respect to every leaf."""
    gen = torch.Generator().manual_seed(seed)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    for s in state.values():
        loss = loss + (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum()
    if not loss.requires_grad:
        return {k: torch.zeros_like(v) for k, v in leaves.items()}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(leaves.items(), grads)}


def strong_gate_case(family, T, seed):
    """A drawn-shape case whose log gates (optional ones included: lightning attention's per-head g_gamma)
    are, per element, exactly 0 or −30 (every chunk's total decay leaves float32's range, so the chunk form
    takes the exact sub-chunk scores)."""
    fam = get_family(family)
    names = {d for i in fam.inputs for d in i.dims}
    dims = {"B": 1, "T": T} | {d: n for d, n in {"H": 1, "HV": 2, "K": 5, "V": 3, "D": 4}.items() if d in names}
    regimes = {i.name: ("random" if i.name in fam.unit_keys else "typical" if i.role == "log_gate" else "uniform"
                        if i.role in ("write_strength", "write_gate") else "normal")
               for i in fam.inputs if not i.optional}
    base = Case(family, dims, regimes, {}, seed, initial_state="normal")
    rng = np.random.default_rng(seed)
    arrays = dict(base.arrays)
    for i in fam.with_role("log_gate"):
        shape = tuple(base.dims[d] for d in i.dims)
        arrays[i.name] = np.where(rng.random(shape) < 0.5, 0.0, -30.0)
    return base.with_values(arrays, base.state)
