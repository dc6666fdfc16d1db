"""The chunk-64 corpora are sound: the bugs live beyond the first chunk, the limited kernels are correct.

``planted_chunk64.PLANTED_CHUNK64`` (kernels with the chunk hard-coded to 64, no ``chunk_size``):

* every bug is real — at a specific input beyond the first chunk (its demonstration below: the T, the
  segments, the gates, the cotangent) its observable differs from the spec's fp64 evaluation
  (``Case.reference()``; gradients: float64 autograd of the family's recurrent form), while the correct
  kernel it derives from agrees on that very input; most demonstrations also show the bug exact just
  before its boundary;
* every bug is invisible at every T ≤ 31: output, final state (and gradients, for the backward bugs)
  agree with the spec at allclose(atol=rtol=1e-3) for T in {1, 2, 5, 17, 31}, with and without an
  initial state, B = 2, H = 2, K = V = 8, plus strong gates, grouped value heads and varlen segments —
  what a certifier drawing T ≤ 48 sees of them.

``limited.LIMITED`` (correct kernels lacking one feature): each agrees with the spec on every probe
that does not use its missing feature, and refuses (an exception at the call; for the forward-only
kernel, autograd's) on the probe that does.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lrnnspec.harness.sequence import capabilities_of
from lrnnspec.harness.targets import load_target
from lrnnspec.impls import delta_rule, gated_delta_rule, gla, simple_gla
from lrnnspec.spec import get_family
from lrnnspec.spec.family import LOG_GATE
from lrnnspec.strategies import Case

from . import planted_chunk64
from .limited import LIMITED, MISSING
from .planted_chunk64 import PLANTED_CHUNK64, PROPERTIES

BY_NAME = {b.name: b for b in PLANTED_CHUNK64}
FAMILIES = ("simple_gla", "gla", "gated_delta_rule", "delta_rule")
RECURRENT = {"simple_gla": simple_gla.recurrent_simple_gla, "gla": gla.recurrent_gla,
             "gated_delta_rule": gated_delta_rule.recurrent_gated_delta_rule,
             "delta_rule": delta_rule.recurrent_delta_rule}
SHORT_T = (1, 2, 5, 17, 31)
FLA_PARAMETERS = ("scale", "initial_state", "output_final_state", "cu_seqlens")


# --- helpers ---------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def one_thread():
    """These inputs are tiny: intra-op threads only contend (2 cores, pytest-xdist workers) — 10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_case(family, *, T, B=1, H=2, HV=None, K=8, V=8, seed=0, segments=None, initial_state=None,
              regimes=None) -> Case:
    fam = get_family(family)
    dims = {"B": B, "T": T, "H": H, "HV": HV or H, "K": K, "V": V}
    reg = {}
    for inp in fam.inputs:
        if inp.optional:
            continue
        if inp.name in fam.unit_keys:
            reg[inp.name] = "random"
        elif inp.name == "beta":
            reg[inp.name] = "uniform"
        elif inp.domain_for({}) is LOG_GATE:
            reg[inp.name] = "typical"
        else:
            reg[inp.name] = "normal"
    reg.update(regimes or {})
    return Case(family, dims, reg, {}, seed, segments, initial_state)


def call_kernel(fn, case, *, x=None, h0="case", want_state=True, requires_grad=False, dtype=torch.float32):
    """``fn`` called directly with FLA's keywords; a keyword is passed only when its feature is used
    (an initial state, the final state, cu_seqlens). Returns (inputs, h0, o, final state or None)."""
    x = case.torch(dtype, requires_grad=requires_grad) if x is None else x
    if isinstance(h0, str):
        state = case.torch_state(dtype=torch.float64 if dtype == torch.float64 else torch.float32,
                                 requires_grad=requires_grad)
        h0 = None if state is None else state["S"]
    kw = dict(x)
    if h0 is not None:
        kw["initial_state"] = h0
    if want_state:
        kw["output_final_state"] = True
    if case.segments is not None:
        kw["cu_seqlens"] = torch.tensor(case.segments)
    out = fn(**kw)
    o, ht = (out, None) if isinstance(out, torch.Tensor) else out
    return x, h0, o, (ht if want_state else None)


def spec_state(ref) -> np.ndarray:
    return ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state


def mismatch(o, ht, ref, tol=1e-3) -> list[str]:
    """What differs from the spec at allclose(atol=rtol=tol); [] when everything agrees."""
    bad = []
    pairs = [("output", o, ref.output)] + ([("state", ht, spec_state(ref))] if ht is not None else [])
    for name, got, want in pairs:
        got = got.detach().double().numpy()
        if got.shape != want.shape or not np.allclose(got, want, atol=tol, rtol=tol):
            bad.append(name)
    return bad


def agrees(fn, case, ref=None, **kw) -> list[str]:
    _, _, o, ht = call_kernel(fn, case, **kw)
    return mismatch(o, ht, case.reference() if ref is None else ref)


def cotangents(case, seed=0):
    """Random cotangents of the output and the final state (float64)."""
    d = case.dims
    n = d["B"] if case.segments is None else len(case.segments) - 1
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(d["B"], d["T"], d["HV"], d["V"], generator=gen, dtype=torch.float64),
            torch.randn(n, d["HV"], d["K"], d["V"], generator=gen, dtype=torch.float64))


def gradients(fn, case, cot, *, dtype=torch.float32, through_state=True):
    """d(⟨o, w_o⟩ + ⟨ht, w_s⟩)/d(every input, h0) of ``fn`` on ``case``; also returns (o, ht)."""
    w_o, w_s = cot
    x, h0, o, ht = call_kernel(fn, case, requires_grad=True, dtype=dtype, want_state=through_state)
    loss = (o * w_o.to(o.dtype)).sum()
    if through_state:
        loss = loss + (ht * w_s.to(ht.dtype)).sum()
    leaves = [*x.values(), *([h0] if h0 is not None else [])]
    return torch.autograd.grad(loss, leaves), (o, ht)


def reference_gradients(family, case, cot, through_state=True):
    """The same VJP by float64 autograd of the family's recurrent form (the spec run by PyTorch)."""
    return gradients(RECURRENT[family], case, cot, dtype=torch.float64, through_state=through_state)[0]


def gradients_agree(got, want, tol=1e-3) -> bool:
    return all(g.shape == w.shape and np.allclose(g.double().numpy(), w.numpy(), atol=tol, rtol=tol)
               for g, w in zip(got, want))


def future_flipped(x, t):
    """The harness's causality move: every per-step input reversed in time from step t on."""
    out = {}
    for name, v in x.items():
        v = v.clone()
        v[:, t:] = v[:, t:].flip(1)
        out[name] = v
    return out


# --- the corpus itself -----------------------------------------------------------------------------
def test_corpus_shape():
    assert len(PLANTED_CHUNK64) >= 14
    assert {b.family for b in PLANTED_CHUNK64} == set(FAMILIES)
    assert len({b.name for b in PLANTED_CHUNK64}) == len(PLANTED_CHUNK64)
    assert len({b.fn for b in PLANTED_CHUNK64}) == len(PLANTED_CHUNK64)
    assert all(b.expected_property in PROPERTIES and b.convention == "fla" for b in PLANTED_CHUNK64)
    assert {"forward", "final_state", "state_passing", "varlen", "causality", "gradients", "finite"} <= \
        {b.expected_property for b in PLANTED_CHUNK64}
    assert set(DEMOS) == set(BY_NAME), "every planted bug needs a demonstration below"


@pytest.mark.parametrize("bug", PLANTED_CHUNK64, ids=lambda b: b.name)
def test_signature_is_fla_without_chunk_size(bug):
    sig = inspect.signature(bug.fn)
    assert "chunk_size" not in sig.parameters
    assert sig == inspect.signature(bug.base)
    assert list(sig.parameters)[-4:] == list(FLA_PARAMETERS)
    caps = capabilities_of(bug.fn, "fla", bug.family)
    assert caps.initial_state and caps.final_state and caps.varlen and not caps.chunk_size
    assert bug.description and bug.trigger
    # what the harness imports in the kernel's process: a module-level function of this corpus file
    assert bug.fn.__qualname__ == bug.fn.__name__ and bug.fn.__module__ == planted_chunk64.__name__
    path, name = bug.target.rsplit(":", 1)
    assert path == planted_chunk64.FILE and name == bug.fn.__name__
    assert load_target(bug.target).__name__ == bug.fn.__name__


@pytest.mark.parametrize("family", FAMILIES)
def test_correct_kernels_and_the_unbroken_core_copies_agree_with_spec(family):
    cases = [make_case(family, T=130, B=2, initial_state="normal", seed=1),
             make_case(family, T=150, segments=[0, 0, 40, 100, 150], initial_state="normal", seed=2),
             make_case(family, T=70, H=1, HV=2, initial_state="normal", seed=3,
                       regimes={} if family == "delta_rule" else {"g": "mixed"})]
    for case in cases:
        ref = case.reference()
        for fn in (planted_chunk64.CORRECT_CHUNK64[family], planted_chunk64.CORE_COPIES[family]):
            assert agrees(fn, case, ref) == [], (fn.__name__, case.describe())


# --- (b) invisible at every T ≤ 31 ------------------------------------------------------------------
def short_cases(family) -> list[Case]:
    """T ∈ {1, 2, 5, 17, 31} with and without an initial state (B = 2, H = 2, K = V = 8), plus strong
    gates, grouped value heads and varlen segments (with an empty one) at T ≤ 31."""
    out = [make_case(family, T=T, B=2, seed=10 * T + bool(init), initial_state=init)
           for T in SHORT_T for init in (None, "normal")]
    gates = {} if family == "delta_rule" else {"g": "mixed"}
    out += [make_case(family, T=31, B=2, seed=7, initial_state="normal", regimes=gates),
            make_case(family, T=17, B=2, H=1, HV=2, seed=8, initial_state="normal"),
            make_case(family, T=17, segments=[0, 3, 3, 17], seed=9, initial_state="normal"),
            make_case(family, T=31, segments=[0, 10, 11, 31], seed=11, initial_state="normal", regimes=gates)]
    return out


@pytest.mark.parametrize("bug", PLANTED_CHUNK64, ids=lambda b: b.name)
def test_bug_is_invisible_at_every_T_up_to_31(bug):
    backward = bug.expected_property == "gradients"
    for case in short_cases(bug.family):
        assert case.dims["T"] <= 31
        assert agrees(bug.fn, case) == [], f"{bug.name} is visible at {case.describe()}"
        if backward:
            cot = cotangents(case, seed=case.seed)
            got, _ = gradients(bug.fn, case, cot)
            assert gradients_agree(got, reference_gradients(bug.family, case, cot)), \
                f"{bug.name}: gradients visible at {case.describe()}"


# --- (a) visible beyond the first chunk --------------------------------------------------------------
@pytest.mark.parametrize("bug", PLANTED_CHUNK64, ids=lambda b: b.name)
def test_bug_is_real_beyond_the_first_chunk(bug):
    DEMOS[bug.name](bug)


def _visible(bug, case, expect, **kw):
    """The bug's output/state mismatch at ``case`` is exactly ``expect``; the correct kernel agrees."""
    ref = case.reference()
    assert agrees(bug.base, case, ref, **kw) == [], case.describe()
    got = agrees(bug.fn, case, ref, **kw)
    assert got == expect, (case.describe(), got)


def _exact(bug, *cases):
    for case in cases:
        assert agrees(bug.fn, case) == [], f"{bug.name} should be exact at {case.describe()}"


def _demo(*visible, exact=()):
    """Visible at each (case, expected mismatch); exact at each case of ``exact``."""
    def demo(bug):
        for case, expect in visible:
            _visible(bug, case, expect)
        _exact(bug, *exact)
    return demo


def demo_prefix_sum_states(bug):
    def outputs(fn, case):
        return call_kernel(fn, case)[2]

    for case in (make_case("simple_gla", T=70, B=2, seed=1, regimes={"g": "strong"}, initial_state="normal"),
                 make_case("simple_gla", T=800, H=1, seed=2)):                          # typical gates
        ref = case.reference()
        assert np.isfinite(ref.output).all()
        assert agrees(bug.base, case, ref) == []
        assert not torch.isfinite(outputs(bug.fn, case)).all(), case.describe()
    _exact(bug, make_case("simple_gla", T=64, B=2, seed=1, regimes={"g": "strong"}, initial_state="normal"),
           make_case("simple_gla", T=300, B=2, seed=3))                                 # finite while Σg > −88


def demo_full_tile_future_gates(bug):
    for T in (100, 130):
        case = make_case("simple_gla", T=T, B=2, seed=T)
        t = T // 2

        def past_unchanged(fn):
            x = case.torch(torch.float32)
            before = call_kernel(fn, case, x=x, want_state=False)[2]
            after = call_kernel(fn, case, x=future_flipped(x, t), want_state=False)[2]
            return torch.equal(before[:, :t], after[:, :t])

        assert past_unchanged(bug.base) and not past_unchanged(bug.fn), T
        _visible(bug, case, ["output"])
    _visible(bug, make_case("simple_gla", T=64, B=2, seed=64), ["output"])
    _exact(bug, make_case("simple_gla", T=63, B=2, seed=1, initial_state="normal"))      # one partial tile


def demo_h0_decayed_by_wrong_chunk(bug):
    case = make_case("gla", T=130, B=2, seed=4)                 # no initial state: the split hands one over
    split = 65
    ref = case.reference()

    def state_passing(fn):
        x = case.torch(torch.float32)
        head = make_case("gla", T=split, B=2)                   # shapes only: inputs are passed explicitly
        tail = make_case("gla", T=case.dims["T"] - split, B=2)
        _, _, o1, s1 = call_kernel(fn, head, x={n: v[:, :split] for n, v in x.items()}, h0=None)
        _, _, o2, s2 = call_kernel(fn, tail, x={n: v[:, split:] for n, v in x.items()}, h0=s1)
        return mismatch(torch.cat([o1, o2], dim=1), s2, ref)

    assert state_passing(bug.base) == []
    assert state_passing(bug.fn) == ["output"]
    _visible(bug, make_case("gla", T=130, B=2, seed=5, initial_state="normal"), ["output"])
    _exact(bug, case, make_case("gla", T=128, B=2, seed=6, initial_state="normal"),
           make_case("gla", T=64, B=2, seed=7, initial_state="normal"))


def demo_tail_skipped_long(bug):
    case = make_case("gla", T=513, H=1, seed=1, initial_state="normal")
    _visible(bug, case, ["output", "state"])
    o = call_kernel(bug.fn, case)[2]
    assert torch.all(o[:, 512:] == 0)
    assert torch.allclose(o[:, :512], call_kernel(bug.base, case)[2][:, :512], atol=1e-5, rtol=1e-5)
    _exact(bug, make_case("gla", T=512, H=1, seed=2, initial_state="normal"),
           make_case("gla", T=130, B=2, seed=3, initial_state="normal"))


def demo_bf16_gate_cumsum(bug):
    def error(fn, case):
        o = call_kernel(fn, case)[2]
        return float(np.max(np.abs(o.double().numpy() - case.reference().output)))

    _visible(bug, make_case("gated_delta_rule", T=128, B=2, seed=1, initial_state="normal"), ["output"])
    _exact(bug, make_case("gated_delta_rule", T=64, B=2, seed=1, initial_state="normal"))
    short = [error(bug.fn, make_case("gated_delta_rule", T=128, H=1, seed=s)) for s in range(3)]
    long = [error(bug.fn, make_case("gated_delta_rule", T=1024, H=1, seed=s)) for s in range(3)]
    base = [error(bug.base, make_case("gated_delta_rule", T=1024, H=1, seed=s)) for s in range(3)]
    assert np.mean(long) > 10 * np.mean(short) and max(base) < 1e-4, (short, long, base)


def _gradient_demo(family, T_bad, T_exact):
    def demo(bug):
        for T, visible in ((T_bad, True), (T_exact, False)):
            case = make_case(family, T=T, B=2, seed=T, initial_state="normal")
            cot = cotangents(case, seed=T)
            want = reference_gradients(family, case, cot)
            ref = case.reference()
            for fn, wrong in ((bug.base, False), (bug.fn, visible)):
                got, (o, ht) = gradients(fn, case, cot)
                assert mismatch(o, ht, ref) == []                      # the forward is exact either way
                assert gradients_agree(got, want) != wrong, (fn.__name__, T)
        # the loss through the outputs alone shows it too
        case = make_case(family, T=T_bad, B=1, seed=3)
        cot = cotangents(case, seed=3)
        got, _ = gradients(bug.fn, case, cot, through_state=False)
        assert not gradients_agree(got, reference_gradients(family, case, cot, through_state=False))
    return demo


def demo_chunk_index_wraps(bug):
    case = make_case("delta_rule", T=520, H=1, seed=1, initial_state="normal")
    _visible(bug, case, ["output"])                                   # the final state is right
    ref = case.reference().output
    o = call_kernel(bug.fn, case)[2].double().numpy()
    rows_bad = ~np.isclose(o, ref, atol=1e-3, rtol=1e-3).all(axis=(0, 2, 3))
    assert rows_bad[:64].any() and not rows_bad[64:512].any()         # chunk 0 reads chunk 8's state
    _exact(bug, make_case("delta_rule", T=512, H=1, seed=2, initial_state="normal"))


def demo_varlen(family):
    def demo(bug):
        _visible(bug, make_case(family, T=100, segments=[0, 40, 100], seed=1, initial_state="normal"), ["output"])
        _visible(bug, make_case(family, T=100, segments=[0, 40, 100], seed=2), ["output"])
        _exact(bug, make_case(family, T=100, segments=[0, 64, 100], seed=3, initial_state="normal"),
               make_case(family, T=100, B=2, seed=4, initial_state="normal"),
               make_case(family, T=64, segments=[0, 5, 5, 40, 64], seed=5, initial_state="normal"))
    return demo


def _c(family, T, **kw):
    return make_case(family, T=T, B=2, seed=T, initial_state="normal", **kw)


DEMOS = {
    "simple_gla.cumsum_block_128": _demo((_c("simple_gla", 100), ["output", "state"]),
                                         (_c("simple_gla", 192), ["output"]), exact=[_c("simple_gla", 64)]),
    "simple_gla.undecayed_carry": _demo((_c("simple_gla", 65), ["state"]), (_c("simple_gla", 130), ["output", "state"]),
                                        exact=[_c("simple_gla", 64)]),
    "simple_gla.prefix_sum_states": demo_prefix_sum_states,
    "simple_gla.full_tile_future_gates": demo_full_tile_future_gates,
    "simple_gla.varlen_start_aligned_down": demo_varlen("simple_gla"),
    "gla.state_halved_at_chunk2": _demo((_c("gla", 130), ["output", "state"]), exact=[_c("gla", 128)]),
    "gla.state_frozen_after_chunk1": _demo((_c("gla", 100), ["state"]), (_c("gla", 130), ["output", "state"]),
                                           exact=[_c("gla", 64)]),
    "gla.final_state_full_chunks_only": _demo((_c("gla", 65), ["state"]), exact=[_c("gla", 63), _c("gla", 128)]),
    "gla.h0_decayed_by_wrong_chunk": demo_h0_decayed_by_wrong_chunk,
    "gla.tail_skipped_long": demo_tail_skipped_long,
    "gated_delta_rule.final_state_second_to_last": _demo(
        (_c("gated_delta_rule", 64), ["state"]), (_c("gated_delta_rule", 128), ["state"]),
        exact=[_c("gated_delta_rule", 63), _c("gated_delta_rule", 65)]),
    "gated_delta_rule.varlen_reset_at_tiles": demo_varlen("gated_delta_rule"),
    "gated_delta_rule.decay_hoisted": _demo((_c("gated_delta_rule", 65), ["state"]),
                                            (_c("gated_delta_rule", 130, regimes={"g": "weak"}), ["output", "state"]),
                                            exact=[_c("gated_delta_rule", 64)]),
    "gated_delta_rule.bf16_gate_cumsum": demo_bf16_gate_cumsum,
    "gated_delta_rule.backward_stale_state": _gradient_demo("gated_delta_rule", 130, 64),
    "delta_rule.backward_drops_state_grad": _gradient_demo("delta_rule", 130, 64),
    "delta_rule.chunk_index_wraps": demo_chunk_index_wraps,
    "delta_rule.stale_entering_state": _demo((_c("delta_rule", 65), ["output"]), exact=[_c("delta_rule", 64)]),
}


# --- (c) the limited kernels ------------------------------------------------------------------------
def test_limited_corpus_covers_every_feature():
    assert {k.missing for k in LIMITED} == set(MISSING)
    assert len({k.name for k in LIMITED}) == len(LIMITED)
    for k in LIMITED:
        assert "chunk_size" not in inspect.signature(k.fn).parameters
        assert k.fn.__qualname__ == k.fn.__name__ and load_target(k.target).__name__ == k.fn.__name__
        assert k.description and k.convention == "fla"


def probes(family) -> dict[str, Case]:
    """One input per feature, each using that feature and no other optional one."""
    return {
        "plain": make_case(family, T=128, B=2, seed=1),
        "grouped_value_heads": make_case(family, T=64, B=2, H=1, HV=2, seed=2),
        "varlen": make_case(family, T=192, segments=[0, 64, 64, 192], seed=3),
        "t_multiple_of_64": make_case(family, T=65, B=2, seed=4),
        "empty_sequence": make_case(family, T=0, B=2, seed=5),
        "initial_state": make_case(family, T=64, B=2, seed=6, initial_state="normal"),
        "final_state": make_case(family, T=128, B=2, seed=7),
        "backward": make_case(family, T=128, B=2, seed=8),
    }


def use(kernel, feature, case):
    """Use ``feature`` of ``kernel`` on ``case`` and check the result against the spec; raises whatever
    the kernel (or autograd) raises."""
    want_state = feature == "final_state"
    if feature == "backward":
        cot = cotangents(case, seed=1)
        through_state = kernel.missing != "final_state"
        got, (o, ht) = gradients(kernel.fn, case, cot, through_state=through_state)
        assert gradients_agree(got, reference_gradients(kernel.family, case, cot, through_state=through_state))
        return
    _, _, o, ht = call_kernel(kernel.fn, case, want_state=want_state)
    assert mismatch(o, ht, case.reference()) == [], (kernel.name, feature)


REFUSALS = {"grouped_value_heads": NotImplementedError, "varlen": NotImplementedError,
            "t_multiple_of_64": ValueError, "empty_sequence": ValueError, "backward": RuntimeError,
            "final_state": TypeError, "initial_state": TypeError}


@pytest.mark.parametrize("kernel", LIMITED, ids=lambda k: k.name)
def test_limited_kernel_is_correct_wherever_it_works(kernel):
    for feature, case in probes(kernel.family).items():
        if feature != kernel.missing:
            use(kernel, feature, case)


@pytest.mark.parametrize("kernel", LIMITED, ids=lambda k: k.name)
def test_limited_kernel_refuses_exactly_its_missing_feature(kernel):
    case = probes(kernel.family)[kernel.missing]
    base = planted_chunk64.CORRECT_CHUNK64[kernel.family]
    assert agrees(base, case) == []                                   # the feature is valid: the spec has it
    with pytest.raises(REFUSALS[kernel.missing]) as info:
        use(kernel, kernel.missing, case)
    caps = capabilities_of(kernel.fn, "fla", kernel.family)
    if kernel.missing in ("final_state", "initial_state"):                # not in the signature
        keyword = {"final_state": "output_final_state", "initial_state": "initial_state"}[kernel.missing]
        assert keyword not in inspect.signature(kernel.fn).parameters
        assert not getattr(caps, kernel.missing)
    elif kernel.missing == "backward":
        _, _, o, ht = call_kernel(kernel.fn, case, requires_grad=True)
        assert not o.requires_grad and not ht.requires_grad
    else:                                                             # a message naming the feature
        assert caps.varlen and caps.initial_state and caps.final_state
        words = {"grouped_value_heads": "grouped value heads", "varlen": "cu_seqlens",
                 "t_multiple_of_64": "multiple of the chunk size 64", "empty_sequence": "T = 0"}
        assert words[kernel.missing] in str(info.value), str(info.value)
