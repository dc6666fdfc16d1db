"""The properties, each written once for sequence and DAG families.

A property is a function ``(kernel, case, dtype) -> dict`` that raises
:class:`~.verdicts.PropertyFailure` when the kernel breaks it and returns the worst normalized error
it saw (or ``{}``). What differs between a time axis and a graph — the cases, the references, how an
error is budgeted, what "the future" and "a permutation" are — comes from ``kernel.domain``
(:class:`~.sequence.SequenceDomain`, :class:`~.dag.DagDomain`); which properties apply is the
domain's list plus its :meth:`applicability`.

forward · final_state · state_passing (run x[:t], feed its state to x[t:]) · varlen (packed ≡ one by
one) · causality (changing the future leaves the past bitwise unchanged) · chunk_size (every chunk
size gives the spec) · no_mutation · nan_poison (fresh allocations NaN-filled: nothing left
unwritten) · determinism · contract (shapes, dtypes, device) · finite · negative_eigenvalues ·
gradients (the kernel's VJP against the spec's) · permutation (batch and heads) · boundary (DAG:
gate entries of missing ports are never read).
"""

from __future__ import annotations

import numpy as np
import torch

from .gradients import check_gradients, gradient_sensitivity, kernel_gradients
from .kernel import TORCH_DTYPES, Kernel
from .tolerance import C_GRAD, UNIT_ROUNDOFF
from .scope import LABELS, dtype_refusal
from .verdicts import NOT_APPLICABLE, UNSUPPORTED, PropertyFailure


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal, NaN where NaN."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(torch.nan_to_num(a, nan=0.0),
                                                                     torch.nan_to_num(b, nan=0.0)) \
        and torch.equal(a.isnan(), b.isnan())


def _check_run(k: Kernel, result, case, dtype: str, calls: int = 1) -> dict:
    """Output and, when returned, final state of one call against the spec."""
    ref = k.reference(case, dtype)
    worst = k.domain.check_output(result.output, ref, case, dtype, calls=calls)
    if result.state is not None:
        k.domain.check_state(result.state, ref, case, dtype, calls=calls)
    return worst


def prop_forward(k: Kernel, case, dtype: str) -> dict:
    """The output equals the spec's within the tolerance."""
    o, _ = k.domain.call(case, dtype, want_state=False)
    return k.domain.check_output(o, k.reference(case, dtype), case, dtype)


def prop_final_state(k: Kernel, case, dtype: str) -> dict:
    """The final state equals the spec's within the tolerance."""
    _, state = k.domain.call(case, dtype, want_state=True)
    return k.domain.check_state(state, k.reference(case, dtype), case, dtype)


def prop_state_passing(k: Kernel, case, dtype: str) -> dict:
    """Run x[:t], feed the kernel's own final state to x[t:]: outputs and state equal one run. The
    split t is drawn, next to chunk boundaries more often than not (unaligned continuation)."""
    t = case.split if case.split is not None else case.dims["T"] // 2
    x = case.torch(TORCH_DTYPES[dtype])
    first, rest = k.domain.split(case, x, t)
    o1, s1 = k.domain.call(case, dtype, inputs=first, want_state=True)
    o2, s2 = k.domain.call(case, dtype, inputs=rest, initial_state=s1, want_state=True)
    ref = k.reference(case, dtype)
    if o1.dim() != o2.dim() or o1.shape[:1] + o1.shape[2:] != o2.shape[:1] + o2.shape[2:]:
        raise PropertyFailure(f"the two parts' outputs have shapes {tuple(o1.shape)} and {tuple(o2.shape)}, which do "
                              f"not join along time")
    worst = k.domain.check_output(torch.cat([o1, o2], dim=1), ref, case, dtype, "concatenated output", calls=2)
    k.domain.check_state(s2, ref, case, dtype, calls=2)
    return worst


def prop_varlen(k: Kernel, case, dtype: str) -> dict:
    """Packed sequences equal the same sequences run one by one (and the spec)."""
    return _check_run(k, k.domain.call(case, dtype), case, dtype)


def prop_causality(k: Kernel, case, dtype: str) -> dict:
    """Changing the inputs of the future (later times, with their sums moved; on a graph, nodes that
    are not ancestors) leaves every output and state of the past unchanged: bitwise — or, on a time
    axis, moved by no more than the rounding the spec's budget allows (a kernel may choose its
    algorithm from a whole chunk), never by a value read from the future."""
    x = k.domain.inputs(case, dtype)
    before = k.domain.call(case, dtype, inputs=x, initial_state=None)
    moved, past = k.domain.future_changed(case, x)
    after = k.domain.call(case, dtype, inputs=moved, initial_state=None)
    k.domain.check_past(case, before, after, past, moved, dtype)
    return {}


def prop_chunk_size(k: Kernel, case, dtype: str) -> dict:
    """Every chunk size the property draws gives the spec's output."""
    ref, worst = k.reference(case, dtype), {}
    for size in k.domain.chunk_sizes():
        o, _ = k.domain.call(case, dtype, chunk_size=size, want_state=False)
        worst[f"chunk_size={size}"] = k.domain.check_output(o, ref, case, dtype, f"output with chunk_size={size}")
    return {"worst_normalized": max(w.get("worst_normalized", 0.0) for w in worst.values()), "per_chunk_size": worst}


def prop_no_mutation(k: Kernel, case, dtype: str) -> dict:
    """The kernel leaves its inputs and initial state as they were (read back from the memory the
    kernel computed on)."""
    result = k.domain.call(case, dtype, share_inputs=True)
    sent, after = result.request_before, result.request_after
    for group in ("inputs", "initial_state"):
        for name, v in (sent.get(group) or {}).items():
            label = name if group == "inputs" else f"initial_state[{name}]"
            if not _same(v, after[group][name]):
                raise PropertyFailure(f"the kernel modified its input {label!r} in place")
    return {}


def prop_nan_poison(k: Kernel, case, dtype: str) -> dict:
    """With torch.empty & co. returning NaN-filled memory, results still match the spec: no output
    element or state is left unwritten."""
    return _check_run(k, k.domain.call(case, dtype, poison=True), case, dtype)


def prop_determinism(k: Kernel, case, dtype: str) -> dict:
    """Three runs on the same inputs give bitwise the same results; a run on other values of the same
    shapes in between gives the spec's (no result reused across calls, no state carried between them)."""
    runs = [k.domain.call(case, dtype)]
    other = k.domain.other_values(case)
    if other is not None:
        other = other.rounded(TORCH_DTYPES[dtype])
        try:
            _check_run(k, k.domain.call(other, dtype), other, dtype)
        except PropertyFailure as f:
            raise PropertyFailure(f"on other values of the same shapes, called after these: {f}", f.detail) from None
    runs += [k.domain.call(case, dtype) for _ in range(2)]
    o0, s0 = runs[0]
    for o, s in runs[1:]:
        if not _same(o, o0) or any(not _same(s[n], s0[n]) for n in (s0 or {})):
            raise PropertyFailure("two runs on the same inputs gave different results (bitwise)")
    return {}


def prop_contract(k: Kernel, case, dtype: str) -> dict:
    """The output has the spec's shape and the inputs' dtype, on the inputs' device; the states have
    the spec's shapes, in a state dtype the family allows, on the same device."""
    result = k.domain.call(case, dtype)
    ref = k.reference(case, dtype)
    o, state = result
    want_dtype, device = TORCH_DTYPES[dtype], torch.device(k.device).type
    if tuple(o.shape) != ref.output.shape:
        raise PropertyFailure(f"output shape {tuple(o.shape)}, expected {ref.output.shape}")
    if o.dtype != want_dtype:
        raise PropertyFailure(f"output dtype {o.dtype}, expected the inputs' {want_dtype}")
    if result.device != device:
        raise PropertyFailure(f"output on {result.device}, inputs on {device}")
    allowed = k.domain.state_dtypes(dtype)
    for name, want in (ref.state.items() if state is not None else ()):
        got = state.get(name)
        if got is None or tuple(got.shape) != want.shape or got.dtype not in allowed:
            raise PropertyFailure(f"final state {name!r}: shape {None if got is None else tuple(got.shape)}, dtype "
                                  f"{None if got is None else got.dtype}; expected {want.shape} in "
                                  f"{' or '.join(sorted(map(str, allowed)))}")
        if result.state_devices.get(name, device) != device:
            raise PropertyFailure(f"final state {name!r} on {result.state_devices[name]}, inputs on {device}")
    return {}


def prop_finite(k: Kernel, case, dtype: str) -> dict:
    """No NaN or infinity where the spec's output is finite and within the dtype's range."""
    o, _ = k.domain.call(case, dtype)
    ref = k.domain.finite_reference(case)
    got = o.detach().double().numpy()
    if got.shape != ref.shape:
        raise PropertyFailure(f"output has shape {got.shape}, the spec's is {ref.shape}")
    finite_ref = np.isfinite(ref) & (np.abs(ref) < torch.finfo(TORCH_DTYPES[dtype]).max)
    bad = finite_ref & ~np.isfinite(got)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        locate = k.domain.locate(case)
        raise PropertyFailure(f"{int(bad.sum())} output elements are NaN/inf where the spec's are finite, "
                              f"e.g. at {locate(where) if locate else list(where)}")
    return {}


def prop_negative_eigenvalues(k: Kernel, case, dtype: str) -> dict:
    """The forward property on cases with write strengths up to 2 (eigenvalues down to −1)."""
    return prop_forward(k, case, dtype)


def prop_permutation(k: Kernel, case, dtype: str) -> dict:
    """Permuting the batch and the heads permutes the results: k(πx) = π k(x). Bitwise is what a
    kernel whose rows are independent gives; a difference within rounding (both runs within the
    forward budget against the spec) passes, a larger one means rows leak into or depend on their
    neighbours' positions."""
    case, permuted, perms = k.domain.permuted(case)
    ref = k.reference(case, dtype)
    o, s = k.domain.call(case, dtype)
    o_p, s_p = k.domain.call(permuted, dtype)
    for got, where in ((o, "the originals"), (o_p, "permuted inputs")):
        if tuple(got.shape) != ref.output.shape:
            raise PropertyFailure(f"output shape {tuple(got.shape)} on {where}, the spec's is {ref.output.shape}")
    for name, want in ref.state.items():
        for got, where in ((s, "the originals"), (s_p, "permuted inputs")):
            if got is not None and (name not in got or tuple(got[name].shape) != want.shape):
                raise PropertyFailure(f"final state {name!r} on {where} is not shaped {want.shape}")
    back, back_state = k.domain.unpermute(o_p, s_p, perms)
    if _same(back, o) and all(back_state is not None and n in back_state and _same(back_state[n], v)
                              for n, v in (s or {}).items()):
        return {}
    try:
        worst = k.domain.check_output(back, ref, case, dtype)
        if back_state is not None:
            k.domain.check_state(back_state, ref, case, dtype)
        return worst
    except PropertyFailure as f:
        moved = ", ".join(f"{d} by {[int(i) for i in p]}" for d, p in perms.items() if d != "N" and len(p) > 1)
        raise PropertyFailure(f"permuting {moved} does not permute the results: {f}", f.detail) from None


def prop_gradients(k: Kernel, case, dtype: str) -> dict:
    """Kernel VJP vs the reference VJP, per element i of each input X (:mod:`.gradients`):
    |ĝ_i − g_i| ≤ C_GRAD·u·(√(L+1) + Λ)·κ·s_i + C_SENS·σ_X + ulp, L the length (steps or nodes), Λ
    the exponent mass, κ the conditioning. Cotangents are exactly representable in the dtypes
    autograd hands the kernel's backward (the output's, the state's), so both sides differentiate
    the very same loss. The output of that call (autograd on: a kernel's training path) must match
    the spec too."""
    dom = k.domain
    ref = k.reference(case, dtype)
    gen = np.random.default_rng(case.seed % 2**32)
    cot_dtypes = {"output": TORCH_DTYPES[dtype]}
    state_dtype = torch.float64 if dtype == "fp64" else torch.float32
    cot = {name: torch.from_numpy(gen.standard_normal(shape)).to(cot_dtypes.get(name, state_dtype)).double()
           for name, shape in dom.cotangent_shapes(case, ref).items()}
    want = dom.reference_vjp(case, cot)
    values = dom.gradient_values(case)
    u = UNIT_ROUNDOFF[dtype]
    sensitivity = gradient_sensitivity(values, lambda moved: dom.reference_vjp(case, cot, moved), want, u, case.seed)
    result = dom.call(case, dtype, want_state=len(cot) > 1, grad=cot)
    dom.check_output(result.output, ref, case, dtype, "output with autograd on")   # training may take another path
    got = kernel_gradients(result.grads, want)
    if got is None:
        return {}
    steps, lam, kappa = dom.gradient_length(case, ref)
    factor = C_GRAD * u * (np.sqrt(steps + 1) + lam) * kappa
    return check_gradients(got, want, values, factor=factor, sensitivity=sensitivity,
                           formats=dom.gradient_formats(case, dtype), locate=dom.locate(case))


def prop_scope(k: Kernel, case, dtype: str) -> dict:
    """Within the negotiated scope (:mod:`.scope`): every feature the kernel accepts reaches its
    output, and every feature required (``--require``) is supported. Run once, on no drawn case."""
    scope = k.domain.scope
    problems = [f"the required feature {LABELS.get(f, f)!r} is unsupported: {scope.unsupported[f]}"
                for f in scope.required if not scope.allows(f)]
    problems += list(scope.ignored.values())
    if problems:
        raise PropertyFailure("; ".join(problems), {"ignored": sorted(scope.ignored),
                                                    "required_unsupported": [f for f in scope.required
                                                                             if not scope.allows(f)]})
    return {}


PROPERTY_FUNCTIONS = {
    "scope": prop_scope, "forward": prop_forward, "final_state": prop_final_state, "state_passing": prop_state_passing,
    "varlen": prop_varlen, "causality": prop_causality, "chunk_size": prop_chunk_size,
    "no_mutation": prop_no_mutation, "nan_poison": prop_nan_poison, "determinism": prop_determinism,
    "contract": prop_contract, "finite": prop_finite, "negative_eigenvalues": prop_negative_eigenvalues,
    "gradients": prop_gradients, "permutation": prop_permutation,
}


def applicability(k: Kernel, prop: str, dtype: str | None = None) -> tuple[str, str] | None:
    """None if ``prop`` applies to the kernel within its scope; else (``not_applicable``, why) — the
    family or the kind has no such property — or (``unsupported``, why) — it needs a feature outside
    the kernel's scope, or the kernel refuses ``dtype``."""
    if prop not in k.domain.properties:
        return NOT_APPLICABLE, f"not a property of {k.domain.kind} families"
    why = k.domain.applicability(prop)
    if why is not None:
        return NOT_APPLICABLE, why
    missing = k.domain.scope.missing(prop)
    if missing is not None:
        return UNSUPPORTED, missing
    refused = None if dtype is None else dtype_refusal(k.domain, dtype)
    return None if refused is None else (UNSUPPORTED, f"{dtype} unsupported ({refused})")


def property_function(k: Kernel, prop: str):
    return k.domain.extra_properties.get(prop) or PROPERTY_FUNCTIONS[prop]
