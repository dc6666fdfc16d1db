"""Shared helpers of the delta-family tests (delta_rule, gated_delta_rule, delta_product, dplr)."""

from __future__ import annotations

import numpy as np
import torch

from lrnnspec.impls import delta_product, delta_rule, dplr, gated_delta_rule
from lrnnspec.spec import evaluate
from lrnnspec.strategies import Case

CHUNK = 4
MODULES = {"delta_rule": delta_rule, "gated_delta_rule": gated_delta_rule, "delta_product": delta_product,
           "dplr": dplr}
# positional inputs of every form, FLA's chunk order
ARGS = {"delta_rule": ("q", "k", "v", "beta"), "gated_delta_rule": ("q", "k", "v", "g", "beta"),
        "delta_product": ("q", "k", "v", "g", "beta"), "dplr": ("q", "k", "v", "a", "b", "gk")}


def call(family, form, x, init=None, cu_seqlens=None, chunk=CHUNK, scale=None, **kw):
    """Call one form with spec-named tensors ``x``; returns (o, final state)."""
    fn = MODULES[family].FORMS[form]
    args = [x.get(n) for n in ARGS[family]]
    if family == "delta_product":
        args.append(max(x["k"].shape[1] // max(x["q"].shape[1], 1), 1))
    if form == "chunk":
        kw["chunk_size"] = chunk
    if cu_seqlens is not None:
        kw["cu_seqlens"] = torch.as_tensor(cu_seqlens, dtype=torch.long)
    return fn(*args, scale=scale, initial_state=init, output_final_state=True, **kw)


def run_case(case: Case, form, dtype=torch.float64, requires_grad=False, chunk=CHUNK):
    """(leaves, o, state) of ``form`` on a drawn case."""
    x = case.torch(dtype, requires_grad=requires_grad)
    init = None
    if case.state is not None:
        init = torch.tensor(case.state["S"], dtype=torch.float64 if dtype == torch.float64 else torch.float32,
                            requires_grad=requires_grad)
    o, S = call(case.family, form, x, init, case.segments, chunk, case.options.get("scale"))
    leaves = dict(x)
    if init is not None:
        leaves["initial_state"] = init
    return leaves, o, S


def spec(family, x, init=None, cu_seqlens=None, **options):
    ref = evaluate(family, {k: (v.detach().double().numpy() if isinstance(v, torch.Tensor) else v)
                            for k, v in x.items() if v is not None},
                   engine="fp64", initial_state=None if init is None else np.asarray(init.detach().double()),
                   cu_seqlens=None if cu_seqlens is None else np.asarray(cu_seqlens, dtype=np.int64), **options)
    S = ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state
    return ref.output, S


def rel_err(got, want) -> float:
    """max |got − want| / max(1, max |want|)."""
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    return float(np.max(np.abs(got - want), initial=0.0)) / max(1.0, float(np.max(np.abs(want), initial=0.0)))


def assert_close(name, got, want, tol):
    err = rel_err(got, want)
    assert err <= tol, f"{name}: relative error {err:.3e} > {tol:.0e}"


def vjp(leaves, o, S, seed=0):
    """Gradients of a random linear functional of (o, S) with respect to every leaf."""
    gen = torch.Generator().manual_seed(seed)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    loss = loss + (S * torch.randn(S.shape, generator=gen, dtype=S.dtype)).sum()
    if not loss.requires_grad:
        return {k: torch.zeros_like(v) for k, v in leaves.items()}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(leaves.items(), grads)}
