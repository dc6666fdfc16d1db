"""The planted-bug corpus is sound: every bug is real, the hiding ones hide, the correct kernels agree.

For every planted bug, a specific small input on which the bug's observable differs from the
spec (or, for reruns/mutation/poisoning, from what a correct kernel does) while the correct kernel
it derives from passes the very same check. For every bug, the single fixed random input (B=1,
T=64, H=2, K=V=16, fp32, no initial state, β ≤ 1, no varlen, defaults) agrees with the spec at
atol=rtol=1e-3 — output and final state — exactly when the record says ``hides``. Every kernel in
``CORRECT`` agrees with the spec in float32 on a few cases (GVA, initial state, odd T, varlen).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lrnnspec.harness import conventions
from lrnnspec.harness.kernel import Signature
from lrnnspec.harness.sequence import capabilities_of
from lrnnspec.spec import get_family
from lrnnspec.spec.family import LOG_GATE
from lrnnspec.spec.prepare import active_state
from lrnnspec.strategies import Case

from . import planted
from .planted import PLANTED, PROPERTIES

BY_NAME = {b.name: b for b in PLANTED}


# --- helpers ---------------------------------------------------------------------------------------
def make_case(family, *, T, B=1, H=2, HV=None, K=8, V=8, n_h=2, seed=0, segments=None, initial_state=None, options=None,
              regimes=None, optional=()) -> Case:
    fam = get_family(family)
    dims = {"B": B, "T": T, "H": H, "HV": HV or H, "K": K, "V": V, "D": 3, "NS": 4, "n_h": n_h}
    defaults = {o.name: o.default for o in fam.options}
    reg = {}
    for inp in fam.inputs:
        if inp.optional and inp.name not in optional:
            continue
        if inp.name in fam.unit_keys:
            reg[inp.name] = "random"
        elif inp.name == "beta":
            reg[inp.name] = "uniform"
        elif inp.domain_for(defaults) is LOG_GATE:
            reg[inp.name] = "typical"
        else:
            reg[inp.name] = "normal"
    reg.update(regimes or {})
    return Case(family, dims, reg, dict(options or {}), seed, segments, initial_state)


def plain_case(family) -> Case:
    """The single fixed random input of a typical fixed-shape test."""
    case = make_case(family, T=64, B=1, H=2, K=16, V=16, seed=1234)
    if "beta" in case.arrays:
        case.arrays["beta"] = case.arrays["beta"] / 2.0          # β ∈ [0, 1]
    return case


def run(fn, family, convention, case, *, dtype=torch.float32, chunk_size=None, want_state=True, x=None, init=None,
        requires_grad=False):
    """Call ``fn`` on ``case`` (spec layout in and out); returns (inputs, initial state, o, state)."""
    fam = get_family(family)
    caps = capabilities_of(fn, convention, family)
    x = case.torch(dtype, requires_grad=requires_grad) if x is None else x
    init = case.torch_state(requires_grad=requires_grad) if init is None else init
    opts = {k: v for k, v in case.options.items() if Signature.of(fn).names(k)}
    names = [c.name for c in active_state(fam, {o.name: o.default for o in fam.options} | case.options)]
    o, state = conventions.call(fn, convention, family, x, state_names=names, initial_state=init,
                                want_state=want_state and caps.final_state,
                                cu_seqlens=None if case.segments is None else torch.tensor(case.segments),
                                chunk_size=chunk_size, options=opts, dims=case.dims)
    return x, init, o, state


def spec_states(ref) -> dict:
    if isinstance(ref.final_state, dict):
        return ref.final_state
    fam = get_family(ref.family)
    (only,) = active_state(fam, {o.name: o.default for o in fam.options})
    return {only.name: ref.final_state}


def mismatch(o, state, ref, tol=1e-3) -> list[str]:
    """What differs from the spec at allclose(atol=rtol=tol); [] when everything agrees."""
    bad = []
    pairs = [("output", o, ref.output)]
    if state is not None:
        pairs += [(f"state {n}", state[n], want) for n, want in spec_states(ref).items()]
    for name, got, want in pairs:
        got = got.detach().double().numpy()
        if got.shape != want.shape or not np.allclose(got, want, atol=tol, rtol=tol):
            bad.append(name)
    return bad


def agrees(fn, family, convention, case, **kw) -> list[str]:
    _, _, o, state = run(fn, family, convention, case, **kw)
    return mismatch(o, state, case.reference())


def both(bug: planted.PlantedBug, check):
    """``check(fn)`` on the correct kernel and on the bug: returns (correct's result, bug's result)."""
    return check(bug.base), check(bug.fn)


# --- the corpus itself -----------------------------------------------------------------------------
def test_corpus_shape():
    assert len(PLANTED) >= 16
    assert len({b.family for b in PLANTED}) >= 4
    assert len({b.name for b in PLANTED}) == len(PLANTED)
    assert all(b.expected_property in PROPERTIES for b in PLANTED)
    assert sum(b.hides for b in PLANTED) >= 5
    assert set(DEMOS) == set(BY_NAME), "every planted bug needs a demonstration below"


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_signature_identical_to_the_correct_function(bug):
    assert inspect.signature(bug.fn) == inspect.signature(bug.base)
    caps = capabilities_of(bug.fn, bug.convention, bug.family)
    assert caps == capabilities_of(bug.base, bug.convention, bug.family)
    assert bug.description and bug.trigger


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_fixed_random_input_sees_the_bug_iff_it_does_not_hide(bug):
    case = plain_case(bug.family)
    assert agrees(bug.base, bug.family, bug.convention, case) == []
    bad = agrees(bug.fn, bug.family, bug.convention, case)
    if bug.hides:
        assert bad == [], f"{bug.name} is declared hiding but the fixed input sees {bad}"
    else:
        assert bad, f"{bug.name} is declared visible but the fixed input passes"


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_bug_is_real(bug, monkeypatch):
    DEMOS[bug.name](bug, monkeypatch)


# --- one demonstration per bug ---------------------------------------------------------------------
def _forward_demo(case, **kw):
    def demo(bug, _mp):
        ok, bad = both(bug, lambda fn: agrees(fn, bug.family, bug.convention, case, **kw))
        assert ok == [] and bad, (ok, bad)
    return demo


def _state_passing(fn, family, convention, case, split, chunk_size=None):
    """run(x) vs run(x[:split]) then run(x[split:], initial_state = the first part's final state)."""
    fam = get_family(family)
    x = case.torch(torch.float32)
    _, _, full, _ = run(fn, family, convention, case, x=x, chunk_size=chunk_size, want_state=False)
    per_step = {i.name for i in fam.inputs if i.per_step}
    head = {n: (t[:, :split] if n in per_step else t) for n, t in x.items()}
    tail = {n: (t[:, split:] if n in per_step else t) for n, t in x.items()}
    _, _, o1, s1 = run(fn, family, convention, case, x=head, chunk_size=chunk_size)
    _, _, o2, _ = run(fn, family, convention, case, x=tail, init=s1, chunk_size=chunk_size, want_state=False)
    return torch.allclose(torch.cat([o1, o2], dim=1), full, atol=1e-4, rtol=1e-4)


def _state_passing_demo(case, split, chunk_size=None):
    def demo(bug, _mp):
        ok, bad = both(bug, lambda fn: _state_passing(fn, bug.family, bug.convention, case, split, chunk_size))
        assert ok and not bad
        assert agrees(bug.base, bug.family, bug.convention, case, chunk_size=chunk_size) == []
    return demo


def demo_cumsum_not_reset(bug, _mp):
    case = make_case("simple_gla", T=12)

    def invariant(fn):
        outs = [run(fn, "simple_gla", "fla", case, chunk_size=c)[2] for c in (3, 4, 12)]
        return all(torch.allclose(o, outs[-1], atol=1e-5, rtol=1e-5) for o in outs)

    ok, bad = both(bug, invariant)
    assert ok and not bad
    assert agrees(bug.fn, "simple_gla", "fla", case, chunk_size=12) == []        # one chunk: exact
    assert agrees(bug.fn, "simple_gla", "fla", case, chunk_size=4) == ["output", "state S"]


def demo_unwritten_row(bug, monkeypatch):
    case = make_case("simple_gla", T=11, B=2)
    real_empty = torch.empty

    def nan_empty(*args, **kw):
        t = real_empty(*args, **kw)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    clean = run(bug.fn, "simple_gla", "fla", case, chunk_size=4)[2]
    monkeypatch.setattr(torch, "empty", nan_empty)
    base = run(bug.base, "simple_gla", "fla", case, chunk_size=4)[2]
    got = run(bug.fn, "simple_gla", "fla", case, chunk_size=4)[2]
    assert torch.isfinite(base).all() and torch.isfinite(clean[:, :-1]).all()
    nan_rows = torch.isnan(got).all(-1).all(-1)
    assert nan_rows[:, -1].all() and not nan_rows[:, :-1].any()
    # with T a multiple of the chunk size every row is written
    full = make_case("simple_gla", T=12, B=2)
    assert torch.isfinite(run(bug.fn, "simple_gla", "fla", full, chunk_size=4)[2]).all()


def demo_no_final_state_grad(bug, _mp):
    case = make_case("simple_gla", T=9, initial_state="normal")
    gen = torch.Generator().manual_seed(0)
    w_o = torch.randn(1, 9, 2, 8, generator=gen)
    w_s = torch.randn(1, 2, 8, 8, generator=gen)

    def grads(fn, through_state):
        x, init, o, state = run(fn, "simple_gla", "fla", case, chunk_size=4, requires_grad=True)
        loss = (o * w_o).sum() + ((state["S"] * w_s).sum() if through_state else 0.0)
        leaves = [x["q"], x["k"], x["v"], x["g"], init["S"]]
        return torch.autograd.grad(loss, leaves, allow_unused=True)

    for through_state in (False, True):
        want, got = grads(bug.base, through_state), grads(bug.fn, through_state)
        same = all(g is not None and torch.allclose(g, w, atol=1e-5, rtol=1e-5) for g, w in zip(got, want))
        assert same == (not through_state), through_state


def demo_low_precision_state(bug, _mp):
    # no decay, same-sign inputs: the state grows with t and each bf16 rounding of it is kept
    regimes = {"g": "none", "k": "same_sign", "v": "same_sign", "q": "same_sign"}
    case = make_case("gla", T=128, B=1, H=1, K=8, V=8, seed=3, regimes=regimes).rounded(torch.bfloat16)
    ref = case.reference()

    def rel_err(fn):
        _, _, o, state = run(fn, "gla", "fla", case, dtype=torch.bfloat16)
        assert o.dtype == torch.bfloat16 and state["S"].dtype == torch.float32
        return [float(np.max(np.abs(got.double().numpy() - want)) / np.max(np.abs(want)))
                for got, want in ((o, ref.output), (state["S"], ref.final_state))]

    (ok_o, ok_s), (bad_o, bad_s) = both(bug, rel_err)
    assert bad_o > 4 * ok_o, (ok_o, bad_o)          # correct: bf16 output rounding only
    assert bad_s > 1000 * ok_s, (ok_s, bad_s)        # correct: fp32 accumulation only
    fp32 = make_case("gla", T=128, seed=3, regimes={"g": "weak"})
    assert agrees(bug.fn, "gla", "fla", fp32) == []


def demo_stale_final_state(bug, _mp):
    case = make_case("gated_delta_rule", T=10, B=2, initial_state="normal")
    ok, bad = both(bug, lambda fn: agrees(fn, bug.family, "fla", case, chunk_size=4))
    assert ok == [] and bad == ["state S"]


def demo_varlen_leak(bug, _mp):
    case = make_case("gated_delta_rule", T=12, segments=[0, 3, 3, 8, 12], initial_state="normal")
    ok, bad = both(bug, lambda fn: agrees(fn, bug.family, "fla", case, chunk_size=4))
    assert ok == [] and bad == ["output", "state S"]
    single = make_case("gated_delta_rule", T=12, segments=[0, 12], initial_state="normal")
    assert agrees(bug.fn, bug.family, "fla", single, chunk_size=4) == []


def demo_mutates_q(bug, _mp):
    case = make_case("gated_delta_rule", T=7)

    def mutated(fn):
        x = case.torch(torch.float32)
        before = {n: t.clone() for n, t in x.items()}
        o1 = run(fn, bug.family, "fla", case, x=x, chunk_size=4)[2]
        o2 = run(fn, bug.family, "fla", case, x=x, chunk_size=4)[2]
        changed = sorted(n for n in x if not torch.equal(x[n], before[n]))
        return changed, torch.allclose(o1, o2, atol=1e-5, rtol=1e-5)

    ok, bad = both(bug, mutated)
    assert ok == ([], True) and bad == (["q"], False)


def demo_beta_clamped(bug, _mp):
    big = make_case("delta_rule", T=9, regimes={"beta": "two"})
    ok, bad = both(bug, lambda fn: agrees(fn, bug.family, "fla", big, chunk_size=4))
    assert ok == [] and bad
    one = make_case("delta_rule", T=9, regimes={"beta": "one"})
    assert agrees(bug.fn, bug.family, "fla", one, chunk_size=4) == []


def demo_atomic_split_k(bug, _mp):
    case = make_case("delta_rule", T=16, K=8, V=8, regimes={"v": "large"})

    def distinct_outputs(fn):
        x = case.torch(torch.float32)
        outs = [run(fn, bug.family, "fla", case, x=x, chunk_size=8)[2] for _ in range(5)]
        return sum(not torch.equal(o, outs[0]) for o in outs[1:])

    ok, bad = both(bug, distinct_outputs)
    assert ok == 0 and bad >= 1
    assert agrees(bug.fn, bug.family, "fla", case, chunk_size=8) == []


def demo_mask_peeks_next(bug, _mp):
    case = make_case("delta_rule", T=8)
    t = 1                                                          # t + 1 = 2 is in t's chunk [0, 4)

    def past_unchanged(fn):
        x = case.torch(torch.float32)
        o = run(fn, bug.family, "fla", case, x=x, chunk_size=4)[2]
        y = {n: v.clone() for n, v in x.items()}
        y["v"][:, t + 1:] += 1.0
        o2 = run(fn, bug.family, "fla", case, x=y, chunk_size=4)[2]
        return torch.equal(o[:, :t + 1], o2[:, :t + 1])

    ok, bad = both(bug, past_unchanged)
    assert ok and not bad


def demo_unstabilized(bug, _mp):
    case = make_case("mlstm", T=6)
    case.arrays["i"][0, 2, 0] = 100.0                              # a valid, if large, input gate
    ok, bad = both(bug, lambda fn: run(fn, "mlstm", "mlstm_kernels", case)[2])
    assert torch.isfinite(ok).all() and not torch.isfinite(bad).all()
    assert agrees(bug.base, "mlstm", "mlstm_kernels", case) == []


def demo_unmasked_tail(bug, _mp):
    case = make_case("mamba2", T=10, B=2, initial_state="normal")
    ok, bad = both(bug, lambda fn: agrees(fn, "mamba2", "mamba_ssm", case, chunk_size=4))
    assert ok == [] and bad == ["state S"]
    varlen = make_case("mamba2", T=10, segments=[0, 3, 10], initial_state="normal")
    assert agrees(bug.fn, "mamba2", "mamba_ssm", varlen, chunk_size=4) == ["state S"]
    even = make_case("mamba2", T=8, B=2, initial_state="normal")
    assert agrees(bug.fn, "mamba2", "mamba_ssm", even, chunk_size=4) == []


def demo_fp32_output(bug, _mp):
    case = make_case("mamba2", T=5).rounded(torch.bfloat16)
    ok, bad = both(bug, lambda fn: run(fn, "mamba2", "mamba_ssm", case, dtype=torch.bfloat16)[2].dtype)
    assert ok == torch.bfloat16 and bad == torch.float32


DEMOS = {
    "simple_gla.dropped_tail": _forward_demo(make_case("simple_gla", T=11, B=2, initial_state="normal"), chunk_size=4),
    "simple_gla.cumsum_not_reset": demo_cumsum_not_reset,
    "simple_gla.scale_ignored": _forward_demo(make_case("simple_gla", T=5, options={"scale": 1.0})),
    "simple_gla.unwritten_row": demo_unwritten_row,
    "simple_gla.no_final_state_grad": demo_no_final_state_grad,
    "simple_gla.gate_batch_stride": _forward_demo(make_case("simple_gla", T=5, B=2)),
    "gla.readout_before_update": _forward_demo(make_case("gla", T=7), chunk_size=4),
    "gla.low_precision_state": demo_low_precision_state,
    "gla.initial_state_ignored": _state_passing_demo(make_case("gla", T=9), split=5, chunk_size=4),
    "gated_delta_rule.decay_after_error": _forward_demo(make_case("gated_delta_rule", T=7)),
    "gated_delta_rule.stale_final_state": demo_stale_final_state,
    "gated_delta_rule.varlen_leak": demo_varlen_leak,
    "gated_delta_rule.mutates_q": demo_mutates_q,
    "delta_rule.beta_clamped": demo_beta_clamped,
    "delta_rule.atomic_split_k": demo_atomic_split_k,
    "delta_rule.mask_peeks_next": demo_mask_peeks_next,
    "mlstm.m_initial_ignored": _state_passing_demo(make_case("mlstm", T=9), split=4, chunk_size=4),
    "mlstm.unstabilized": demo_unstabilized,
    "mamba2.unmasked_tail": demo_unmasked_tail,
    "mamba2.exp2_for_exp": _forward_demo(make_case("mamba2", T=7), chunk_size=4),
    "mamba2.fp32_output": demo_fp32_output,
}


# --- the correct kernels ---------------------------------------------------------------------------
def _correct_cases(kernel):
    fam = get_family(kernel.family)
    caps = capabilities_of(kernel.fn, kernel.convention, kernel.family)
    names = {d for i in fam.inputs for d in i.dims}
    gva = 2 if "HV" in names and "H" in names else 1
    init = "normal" if caps.initial_state else None
    opts = {"scale": 0.7} if Signature.of(kernel.fn).names("scale") and any(o.name == "scale" for o in fam.options) \
        else {}
    chunk = 4 if caps.chunk_size else None
    optional = ("g",) if kernel.family == "delta_product" else ()    # g is positional there (FLA's order)
    gate = {"g": "mixed"} if any(i.name == "g" and i.domain_for({}) is LOG_GATE for i in fam.inputs) else None
    out = [(make_case(kernel.family, T=7, B=2, H=2, HV=2 * gva, K=5, V=3, seed=11, initial_state=init,
                      options=opts, optional=optional), chunk),
           (make_case(kernel.family, T=9, B=1, H=1, K=4, V=4, seed=12, initial_state=init, regimes=gate,
                      optional=optional), chunk)]
    if caps.varlen:
        out.append((make_case(kernel.family, T=8, seed=13, segments=[0, 0, 1, 8], initial_state=init,
                              optional=optional), chunk))
    return out


def _correct_kernels():
    return planted.correct_kernels()


@pytest.mark.parametrize("kernel", _correct_kernels(), ids=lambda k: k.name)
def test_correct_kernel_agrees_with_spec_fp32(kernel):
    for case, chunk in _correct_cases(kernel):
        assert agrees(kernel.fn, kernel.family, kernel.convention, case, chunk_size=chunk) == [], case.describe()


def test_correct_list_covers_every_impl_form_and_the_fla_references():
    from lrnnspec.impls import implementations

    names = {k.name for k in planted.CORRECT}
    assert {i.id for i in implementations()} <= names
    fla = {k.name for k in planted.fla_references()}
    assert {"fla_naive_recurrent_simple_gla", "fla_naive_chunk_simple_gla", "fla_naive_recurrent_gated_delta_rule",
            "fla_naive_chunk_gated_delta_rule", "fla_naive_recurrent_gla", "fla_delta_rule_recurrence",
            "fla_naive_recurrent_linear_attn", "fla_naive_recurrent_gated_delta_product"} <= fla


def test_fla_wrappers_declare_their_limits_in_the_signature():
    for k in planted.fla_references():
        caps, sig = capabilities_of(k.fn, k.convention, k.family), Signature.of(k.fn)
        assert caps.varlen == (k.family == "delta_product")        # only that reference loops over cu_seqlens
        assert caps.initial_state and caps.final_state and sig.names("scale") and not sig.var_keyword


def test_raw_fla_references_break_the_output_dtype_contract_the_wrappers_restore():
    """Why the wrappers cast: these references return float32 whatever the input dtype."""
    naive = planted._load_fla_naive("simple_gla")
    x = make_case("simple_gla", T=5).torch(torch.bfloat16)
    o, _ = naive.naive_chunk_simple_gla(x["q"], x["k"], x["v"], x["g"], chunk_size=4)
    assert o.dtype == torch.float32
    assert planted.fla_naive_chunk_simple_gla(x["q"], x["k"], x["v"], x["g"], chunk_size=4)[0].dtype == torch.bfloat16
