"""``certify``: Hypothesis drives a kernel against the spec, one verdict per property.

Each property is a function ``(kernel, case) -> dict`` that raises :class:`PropertyFailure` when the
kernel breaks it; Hypothesis draws cases from :func:`lrnnspec.strategies.cases` and shrinks a failing
one to a minimal reproducer. A kernel that raises, times out, returns the wrong shape or NaN fails
the property with the triggering case; the harness itself never crashes on it. A property that
does not apply (the signature lacks ``cu_seqlens``, the family has no negative eigenvalue range...)
is *not applicable*, with the reason — never a pass, never a failure.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lrnnspec import PROFILE_EXAMPLES, conventions  # noqa: F401 - PROFILE_EXAMPLES re-exported
from lrnnspec.spec import evaluate, get_family
from lrnnspec.spec.prepare import active_state
from lrnnspec.spec.timeaxis import slice_time
from lrnnspec.strategies import Case, cases
from lrnnspec.tolerance import CONTRACTS, compare

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
PROPERTIES = ("forward", "final_state", "state_passing", "varlen", "causality", "chunk_size", "no_mutation",
              "nan_poison", "determinism", "contract", "finite", "negative_eigenvalues", "gradients", "permutation")


class PropertyFailure(Exception):
    def __init__(self, message: str, detail: dict | None = None):
        super().__init__(message)
        self.detail = detail or {}


@dataclass
class Verdict:
    property: str
    dtype: str
    status: str                      # "pass" | "fail" | "not_applicable"
    reason: str = ""
    examples: int = 0
    seconds: float = 0.0
    worst: dict = field(default_factory=dict)      # worst normalized error seen on passing examples
    counterexample: dict | None = None             # the shrunk failing case (JSON) and the discrepancy


# --- the kernel under test ------------------------------------------------------------------------
class Kernel:
    """The function under test with its calling convention, capabilities and declared precision
    contracts (dtype → spec contract name; the default for a dtype is :data:`CONTRACTS`)."""

    def __init__(self, fn: Callable, family: str, convention: str, device: str, timeout: float,
                 contracts: dict[str, str] | None = None):
        self.fn, self.family, self.convention, self.device, self.timeout = fn, family, convention, device, timeout
        self.fam = get_family(family)
        self.caps = conventions.capabilities(fn, convention, family)
        self.contracts = {**CONTRACTS, **(contracts or {})}

    def reference(self, case: Case, dtype: str) -> "Reference":
        return reference(case, dtype, self.contracts[dtype])

    def options(self, case: Case) -> dict:
        domain_only = {o.name for o in self.fam.options if o.domain_only}
        return {k: v for k, v in case.options.items() if k not in domain_only and self.caps.accepts(k)}

    def fixed_options(self) -> dict:
        """Options the kernel cannot be told: the spec's defaults are what it must compute."""
        return {o.name: o.default for o in self.fam.options if not o.domain_only and not self.caps.accepts(o.name)}

    def state_names(self, case: Case) -> list[str]:
        opts = {o.name: o.default for o in self.fam.options} | case.options
        return [c.name for c in active_state(self.fam, opts)]

    def call(self, case: Case, dtype: str, *, inputs=None, initial_state="case", chunk_size=None, want_state=None):
        """Run the kernel; returns (output, state dict or None) as tensors. Any exception, a hang past
        ``timeout`` or a non-tensor result becomes a PropertyFailure."""
        x = inputs if inputs is not None else case.torch(TORCH_DTYPES[dtype], self.device)
        init = case.torch_state(self.device) if initial_state == "case" else initial_state
        if init is not None and not self.caps.initial_state:
            raise PropertyFailure("the case has an initial state but the kernel takes none (harness error)")
        cu = None if case.segments is None else torch.tensor(case.segments, dtype=torch.int64, device=self.device)
        want = self.caps.final_state if want_state is None else want_state
        try:
            with _deadline(self.timeout):
                o, state = conventions.call(self.fn, self.convention, self.family, x, state_names=self.state_names(case),
                                            initial_state=init, want_state=want, cu_seqlens=cu, chunk_size=chunk_size,
                                            options=self.options(case))
        except PropertyFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - any kernel error is a finding
            raise PropertyFailure(f"the kernel raised {type(exc).__name__}: {exc}") from None
        if not isinstance(o, torch.Tensor):
            raise PropertyFailure(f"the kernel returned {type(o).__name__} as its output, not a tensor")
        return o, state


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float):
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):  # noqa: ARG001
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Timeout:
        raise PropertyFailure(f"the kernel did not return within {seconds:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- references --------------------------------------------------------------------------------------
@dataclass
class Reference:
    output: np.ndarray
    state: dict[str, np.ndarray]
    emul_output: np.ndarray
    emul_state: dict[str, np.ndarray]
    mag_output: np.ndarray
    mag_state: dict[str, np.ndarray]
    exponent_mass: np.ndarray | None      # Λ [B,T,heads(,channels)], broadcast against the output
    conditioning: np.ndarray | None       # κ [B,T,heads,1] ≥ 1 of the UT transform (delta families)


# inputs that act as gates or step sizes, not as values: kept as they are by the magnitude shadow
GATE_LIKE = frozenset({"g", "gk", "beta", "i", "f", "delta", "dt", "A", "gamma", "z", "delta_bias", "dt_bias"})


def _as_dict(s, case: Case):
    if isinstance(s, dict):
        return s
    fam = get_family(case.family)
    (only,) = active_state(fam, {o.name: o.default for o in fam.options} | case.options)
    return {only.name: s}


def reference(case: Case, dtype: str, contract: str | None = None) -> Reference:
    """For a case whose inputs are already rounded to ``dtype``: the oracle (spec fp64), the baseline
    (spec emulate under ``contract``, by default the dtype's :data:`CONTRACTS` entry), the magnitude
    shadow (spec fp64 with every value input and the initial state replaced by its absolute value:
    Σ|terms| for the gated families, a magnitude scale for the others), the exponent mass and the
    UT conditioning."""
    kw = dict(cu_seqlens=case.cu_seqlens, **case.options)
    ref = evaluate(case.family, case.arrays, engine="fp64", initial_state=case.state, **kw)
    emu = evaluate(case.family, case.arrays, engine=f"emulate:{contract or CONTRACTS[dtype]}",
                   initial_state=case.state, **kw)
    absx = {n: (v if n in GATE_LIKE else np.abs(v)) for n, v in case.arrays.items()}
    abs_state = None if case.state is None else {n: (v if n == "m" else np.abs(v)) for n, v in case.state.items()}
    mag = evaluate(case.family, absx, engine="fp64", initial_state=abs_state, **kw)
    mag_out, mag_state = np.abs(mag.output), {n: np.abs(v) for n, v in _as_dict(mag.final_state, case).items()}
    if case.options.get("normalize"):
        mag_out = np.maximum(mag_out, _normalized_shadow(case, absx, abs_state, ref.output, kw))
    if "beta" in absx and abs_state is not None:
        # delta families: the contractive transitions (‖I − βkkᵀ‖ ≤ 1) can cancel the initial state
        # down to nothing while a chunked kernel still carries |S₀|-sized terms: add |S₀|ᵀ|q| (β = 0)
        still = evaluate(case.family, absx | {"beta": np.zeros_like(absx["beta"])}, engine="fp64",
                         initial_state=abs_state, **kw)
        mag_out = np.maximum(mag_out, np.abs(still.output))
        mag_state = {n: np.maximum(v, np.abs(abs_state[n])) for n, v in mag_state.items()}
    return Reference(ref.output, _as_dict(ref.final_state, case), emu.output, _as_dict(emu.final_state, case),
                     mag_out, mag_state, exponent_mass(case, ref.output.ndim), ut_conditioning(case))


def _normalized_shadow(case: Case, absx: dict, abs_state, output: np.ndarray, kw: dict) -> np.ndarray:
    """Linear attention with its normalizer, o = n / d: the quotient's error is (δn + |o|·δd) / |d|,
    δn, δd of the size of Σ|terms| of n and d. Both sums come from the spec itself (normalize=False;
    d is the read-out of a value column of ones)."""
    plain = dict(kw, normalize=False)
    state = None if abs_state is None else {"S": abs_state["S"]}
    signed_state = None if case.state is None else {"S": case.state["S"]}
    num_abs = np.abs(evaluate(case.family, absx, engine="fp64", initial_state=state, **plain).output)
    ones = {**absx, "v": np.ones(absx["v"].shape[:-1] + (1,))}
    z_abs = None if abs_state is None else {"S": abs_state["z"][..., None]}
    den_abs = np.abs(evaluate(case.family, ones, engine="fp64", initial_state=z_abs, **plain).output)
    signed = {**case.arrays, "v": np.ones(case.arrays["v"].shape[:-1] + (1,))}
    z = None if signed_state is None else {"S": case.state["z"][..., None]}
    den = np.abs(evaluate(case.family, signed, engine="fp64", initial_state=z, **plain).output
                 + case.options.get("normalize_eps", 1e-10))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((num_abs + np.abs(output) * den_abs) / den, nan=0.0, posinf=np.finfo(float).max)


def exponent_mass(case: Case, out_ndim: int) -> np.ndarray | None:
    """Λ(t) = Σ_{s≤t} |log decay_s| per (batch, t, head[, channel]): log-space gates g/gk, Mamba's
    Δ·A, mLSTM's forget and input gate preactivations. None for families without log-space decay."""
    x, fam = case.arrays, get_family(case.family)
    per_step = None
    if "g" in x and fam.input("g").dims[:2] == ("B", "T"):
        per_step = np.abs(x["g"])
    elif "gk" in x:
        per_step = np.abs(x["gk"]).max(axis=-1)
    elif "i" in x and "f" in x:
        per_step = np.abs(x["f"]) + np.abs(x["i"])
    elif "dt" in x:
        dt = x["dt"] + (x["dt_bias"] if "dt_bias" in x else 0.0)
        per_step = (np.logaddexp(0.0, dt) if case.options.get("dt_softplus") else np.abs(dt)) * np.abs(x["A"])
    elif "delta" in x:
        d = x["delta"] + (x["delta_bias"] if "delta_bias" in x else 0.0)
        d = np.logaddexp(0.0, d) if case.options.get("delta_softplus") else np.abs(d)
        per_step = d * np.abs(x["A"]).max(axis=-1)
    if per_step is None:
        return None
    if per_step.ndim >= 4:  # key-channel gates already reduced; [B,T,H,K] → [B,T,H]
        per_step = per_step.max(axis=-1)
    if per_step.shape[1] != case.dims["T"]:  # interleaved micro-steps are not gated; g is per token
        return None
    lam = np.cumsum(per_step, axis=1)
    while lam.ndim < out_ndim:
        lam = lam[..., None]
    return lam


def ut_conditioning(case: Case, window: int = 64) -> np.ndarray | None:
    """κ(t) ≥ 1 per (batch, token, value head), shape [B, T, HV, 1], for the families with a β-scaled
    unit-key write (delta_rule, gated_delta_rule, delta_product); None for the others.

    Chunked delta-rule kernels solve L U = R with L = I + strict_lower(diag(β) Γ ⊙ K Kᵀ) over each
    chunk (the UT/WY transform; Γ_ts = e^{G_t − G_s} the decays). Forward substitution commits a
    relative error of the size u·cond(L) (Skeel: cond(L) = ‖ |L⁻¹| |L| ‖∞, Higham §8.2) which the
    sequential recurrence never sees: near-parallel keys with β near 2, or more micro-steps than
    key dimensions (DeltaProduct: 15 reflections in K = 3 gave ‖|L⁻¹|‖∞ = 17 and a correct chunk
    kernel at 18× the sequential error). Row t of the solution depends on the leading t × t block
    only, whose condition number is max_{s ≤ t} (|L⁻¹| |L| 1)_s: κ(t) is that running maximum over
    windows of ``window`` tokens (the kernel's chunk is unknown; 64 is FLA's and the largest the
    certifier draws) aligned to each sequence's start, continued across windows (rounding errors
    persist in the state)."""
    x = case.arrays
    if "beta" not in x or "k" not in x or case.family not in ("delta_rule", "gated_delta_rule", "delta_product"):
        return None
    k, beta = x["k"], x["beta"]                           # [B, T·n, H, K], [B, T·n, HV]
    T = case.dims["T"]
    batch, steps, heads = beta.shape
    n = steps // T if T else 1
    k = np.repeat(k, heads // k.shape[2], axis=2)
    log_decay = np.zeros_like(beta)
    if "g" in x:                                          # the token's gate acts at its first micro-step
        log_decay[:, ::n] = x["g"]
    kappa = np.ones((batch, T, heads))
    bounds = [(0, T)] if case.segments is None else list(zip(case.segments[:-1], case.segments[1:]))
    for b in range(batch):
        for start, end in bounds:
            for w0 in range(start, end, window):
                w1 = min(w0 + window, end)
                sl = slice(w0 * n, w1 * n)
                kw, bw, G = k[b, sl], beta[b, sl], np.cumsum(log_decay[b, sl], axis=0)   # [m,HV,K], [m,HV]
                gram = np.einsum("thk,shk->hts", kw, kw)
                decay = np.exp(np.minimum(G.T[:, :, None] - G.T[:, None, :], 0.0))
                L = np.eye(kw.shape[0]) + np.tril(bw.T[:, :, None] * decay * gram, -1)      # [HV, m, m]
                rows = np.sum(np.abs(np.linalg.inv(L)) @ np.abs(L), axis=-1)             # [HV, m]
                kappa[b, w0:w1] = rows.reshape(heads, w1 - w0, n).max(axis=-1).T
            kappa[b, start:end] = np.maximum.accumulate(kappa[b, start:end], axis=0)
    return kappa[..., None]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _check_output(o: torch.Tensor, ref: Reference, dtype: str, what: str = "output", calls: int = 1) -> dict:
    """``calls``: how many kernel calls composed this output (state passing: 2); each may spend the
    whole budget, and contractive transitions carry the first call's error at most unamplified."""
    if tuple(o.shape) != ref.output.shape:
        raise PropertyFailure(f"{what} has shape {tuple(o.shape)}, the spec's is {ref.output.shape}")
    cmp = compare(_np(o), ref.output, ref.emul_output, dtype, time_axis=1, row_axes=(-1,) if o.dim() == 4 else (),
                  magnitude=ref.mag_output, exponent_mass=_fit(ref.exponent_mass, ref.output),
                  conditioning=_fit(ref.conditioning, ref.output))
    if cmp.worst > calls:
        raise PropertyFailure(f"{what} error {cmp.abs_error:.3e} at {list(cmp.worst_index)} is "
                              f"{cmp.worst / calls:.3g}× the allowed", cmp.summary())
    return cmp.summary()


def _fit(lam, like):
    """Λ broadcastable to ``like`` (GVA: gates per value head already; None if shapes disagree)."""
    if lam is None:
        return None
    try:
        np.broadcast_shapes(lam.shape, like.shape)
    except ValueError:
        return None
    return lam


def _at_end(per_time: np.ndarray | None, want: np.ndarray):
    """A per-time envelope [B, T, heads, ...] at the end of each sequence, broadcast to a state
    component [N, heads, ...]."""
    if per_time is None or per_time.shape[1] == 0:
        return None
    last = per_time.max(axis=1)                      # [B, heads, 1...]: the whole sequence
    last = last.reshape(last.shape[0], *last.shape[1:2], *([1] * (want.ndim - 2)))
    if last.shape[0] != want.shape[0]:               # varlen: one B row holds every sequence
        last = np.broadcast_to(last.max(axis=0, keepdims=True), (want.shape[0], *last.shape[1:]))
    return _fit(last, want)


def _check_state(state: dict, ref: Reference, dtype: str, length: int, calls: int = 1) -> dict:
    worst = {}
    for name, want in ref.state.items():
        got = state.get(name) if state else None
        if got is None:
            raise PropertyFailure(f"final state component {name!r} missing")
        if tuple(got.shape) != want.shape:
            raise PropertyFailure(f"final state {name!r} has shape {tuple(got.shape)}, the spec's is {want.shape}")
        rows = tuple(range(2, want.ndim))
        cmp = compare(_np(got), want, ref.emul_state[name], dtype, time_axis=None, row_axes=rows, length=length,
                      magnitude=ref.mag_state[name], exponent_mass=_at_end(ref.exponent_mass, want),
                      conditioning=_at_end(ref.conditioning, want))
        if cmp.worst > calls:
            raise PropertyFailure(f"final state {name!r} error {cmp.abs_error:.3e} at {list(cmp.worst_index)} is "
                                  f"{cmp.worst / calls:.3g}× the allowed", cmp.summary())
        worst[name] = cmp.summary()
    return worst


# --- properties ---------------------------------------------------------------------------------------
def prop_forward(k: Kernel, case: Case, dtype: str) -> dict:
    o, _ = k.call(case, dtype, want_state=False)
    return _check_output(o, k.reference(case, dtype), dtype)


def prop_final_state(k: Kernel, case: Case, dtype: str) -> dict:
    _, state = k.call(case, dtype, want_state=True)
    return _check_state(state, k.reference(case, dtype), dtype, case.dims["T"])


def prop_state_passing(k: Kernel, case: Case, dtype: str) -> dict:
    """Run x[:t], feed the kernel's own final state to x[t:]: outputs and state equal one run."""
    T, tdt = case.dims["T"], TORCH_DTYPES[dtype]
    t = T // 2
    x = case.torch(tdt, k.device)
    o1, s1 = k.call(case, dtype, inputs=slice_time(k.family, x, 0, t), want_state=True)
    o2, s2 = k.call(case, dtype, inputs=slice_time(k.family, x, t, T), initial_state=s1, want_state=True)
    ref = k.reference(case, dtype)
    worst = _check_output(torch.cat([o1, o2], dim=1), ref, dtype, "concatenated output", calls=2)
    _check_state(s2, ref, dtype, T, calls=2)
    return worst


def _check_run(k: Kernel, o, state, case: Case, dtype: str) -> dict:
    """Output and, when returned, final state of one call against the spec."""
    ref = k.reference(case, dtype)
    worst = _check_output(o, ref, dtype)
    if state is not None:
        _check_state(state, ref, dtype, case.dims["T"])
    return worst


def prop_varlen(k: Kernel, case: Case, dtype: str) -> dict:
    """Packed sequences equal the same sequences run one by one (and the spec)."""
    return _check_run(k, *k.call(case, dtype, want_state=k.caps.final_state), case, dtype)


def prop_causality(k: Kernel, case: Case, dtype: str) -> dict:
    """Changing the inputs at times ≥ t leaves every output before t bitwise unchanged."""
    T = case.dims["T"]
    t = T // 2
    x = case.torch(TORCH_DTYPES[dtype], k.device)
    o, _ = k.call(case, dtype, inputs=x, want_state=False)
    future = {}
    for name, v in x.items():
        inp = k.fam.input(name)
        if inp.per_step:
            n_h = v.shape[1] // T if T else 1
            v = v.clone()
            v[:, t * n_h:] = v[:, t * n_h:].flip(1)  # a permutation of valid values stays valid
        future[name] = v
    o2, _ = k.call(case, dtype, inputs=future, want_state=False)
    if not torch.equal(o[:, :t], o2[:, :t]):
        diff = (o[:, :t].double() - o2[:, :t].double()).abs()
        pos = [int(i) for i in torch.nonzero(diff)[0]]
        raise PropertyFailure(f"output at time {pos[1]} < {t} changed when only inputs at times ≥ {t} changed",
                              {"index": pos, "change": float(diff.max())})
    return {}


def prop_chunk_size(k: Kernel, case: Case, dtype: str) -> dict:
    ref, worst = k.reference(case, dtype), {}
    for size in (16, 32):
        o, _ = k.call(case, dtype, chunk_size=size, want_state=False)
        worst[f"chunk_size={size}"] = _check_output(o, ref, dtype, f"output with chunk_size={size}")
    return worst


def prop_no_mutation(k: Kernel, case: Case, dtype: str) -> dict:
    x = case.torch(TORCH_DTYPES[dtype], k.device)
    init = case.torch_state(k.device)
    before = {n: v.clone() for n, v in x.items()} | {f"initial_state[{n}]": v.clone() for n, v in (init or {}).items()}
    k.call(case, dtype, inputs=x, initial_state=init)
    after = dict(x) | {f"initial_state[{n}]": v for n, v in (init or {}).items()}
    for name, v in before.items():
        if not torch.equal(v, after[name]) and not (torch.isnan(v).any() and torch.equal(v.isnan(), after[name].isnan())):
            raise PropertyFailure(f"the kernel modified its input {name!r} in place")
    return {}


@contextlib.contextmanager
def nan_poisoned_allocations():
    """torch.empty / empty_like / new_empty return NaN-filled floating tensors: an output element the
    kernel never writes shows up as NaN instead of whatever the allocator happened to hold."""
    originals = (torch.empty, torch.empty_like, torch.Tensor.new_empty)

    def poison(t):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            t.fill_(float("nan"))
        return t

    torch.empty = lambda *a, **kw: poison(originals[0](*a, **kw))
    torch.empty_like = lambda *a, **kw: poison(originals[1](*a, **kw))
    torch.Tensor.new_empty = lambda self, *a, **kw: poison(originals[2](self, *a, **kw))
    try:
        yield
    finally:
        torch.empty, torch.empty_like, torch.Tensor.new_empty = originals


def prop_nan_poison(k: Kernel, case: Case, dtype: str) -> dict:
    with nan_poisoned_allocations():
        o, state = k.call(case, dtype)
    return _check_run(k, o, state, case, dtype)


def prop_determinism(k: Kernel, case: Case, dtype: str) -> dict:
    runs = [k.call(case, dtype) for _ in range(3)]
    (o0, s0) = runs[0]
    for o, s in runs[1:]:
        if not _same(o, o0) or any(not _same(s[n], s0[n]) for n in (s0 or {})):
            raise PropertyFailure("two runs on the same inputs gave different results (bitwise)")
    return {}


def _same(a, b) -> bool:
    return a.shape == b.shape and torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)) \
        and torch.equal(a.isnan(), b.isnan())


def prop_contract(k: Kernel, case: Case, dtype: str) -> dict:
    o, state = k.call(case, dtype)
    ref = k.reference(case, dtype)
    want_dtype = TORCH_DTYPES[dtype]
    if tuple(o.shape) != ref.output.shape:
        raise PropertyFailure(f"output shape {tuple(o.shape)}, expected {ref.output.shape}")
    if o.dtype != want_dtype:
        raise PropertyFailure(f"output dtype {o.dtype}, expected the inputs' {want_dtype}")
    if o.device.type != torch.device(k.device).type:
        raise PropertyFailure(f"output on {o.device}, inputs on {k.device}")
    state_dtype = torch.float64 if dtype == "fp64" else torch.float32
    for name, want in (ref.state.items() if state is not None else ()):
        got = state.get(name)
        if got is None or tuple(got.shape) != want.shape or got.dtype != state_dtype:
            raise PropertyFailure(f"final state {name!r}: shape {None if got is None else tuple(got.shape)}, dtype "
                                  f"{None if got is None else got.dtype}; expected {want.shape} {state_dtype}")
    return {}


def prop_finite(k: Kernel, case: Case, dtype: str) -> dict:
    o, state = k.call(case, dtype)
    ref = k.reference(case, dtype)
    finite_ref = np.isfinite(ref.output) & (np.abs(ref.output) < torch.finfo(TORCH_DTYPES[dtype]).max)
    bad = finite_ref & ~np.isfinite(_np(o))
    if bad.any():
        raise PropertyFailure(f"{int(bad.sum())} output elements are NaN/inf where the spec's are finite, "
                              f"e.g. at {[int(i) for i in np.argwhere(bad)[0]]}")
    return {}


def prop_negative_eigenvalues(k: Kernel, case: Case, dtype: str) -> dict:
    return prop_forward(k, case, dtype)


def axis_permutations(case: Case) -> dict[str, np.ndarray]:
    """A non-identity permutation of every batch/head axis of size ≥ 2, keyed by dimension name:
    B (and N, the state's batch), H, HV, D (Mamba's channels). Under GVA, HV follows H block-wise
    (value head j reads key head j // (HV/H)), so every value head keeps its key head."""
    rng = np.random.default_rng(case.seed % 2**32 + 1)

    def draw(n: int) -> np.ndarray:
        p = rng.permutation(n)
        return np.roll(p, 1) if n > 1 and np.array_equal(p, np.arange(n)) else p

    dims, perms = case.dims, {}
    perms["B"] = perms["N"] = draw(dims["B"])
    if "H" in dims:
        perms["H"] = draw(dims["H"])
        if "HV" in dims:
            group = dims["HV"] // dims["H"]
            perms["HV"] = (perms["H"][:, None] * group + np.arange(group)).reshape(-1)
    elif "HV" in dims:
        perms["HV"] = draw(dims["HV"])
    if "D" in dims:
        perms["D"] = draw(dims["D"])
    return perms


def _permute(a, axes: tuple[str, ...], perms: dict[str, np.ndarray], inverse: bool = False):
    """Apply ``perms`` (or their inverses) to the named axes of a NumPy array or torch tensor."""
    for axis, name in enumerate(axes):
        if name in perms:
            p = np.argsort(perms[name]) if inverse else perms[name]
            a = a.index_select(axis, torch.as_tensor(p, device=a.device)) if isinstance(a, torch.Tensor) \
                else np.take(a, p, axis=axis)
    return a


def prop_permutation(k: Kernel, case: Case, dtype: str) -> dict:
    """Permuting the batch and the heads permutes the results: k(πx) = π k(x). Bitwise is what a
    kernel whose rows are independent gives; a difference within rounding (both runs within the
    forward budget against the spec) passes, a larger one means rows leak into or depend on
    their neighbours' positions. Optional per-head inputs whose default depends on the head's
    position (retention's γ_h) are passed explicitly; a kernel that does not take them is only
    permuted over the batch."""
    fam, perms = k.fam, axis_permutations(case)
    state_dims = {c.name: c.dims for c in fam.state}
    positional = {n: a for n, a in (fam.defaults(case.dims) if fam.defaults else {}).items() if n not in case.arrays}
    if all(k.caps.accepts(n) for n in positional):
        case = _with_values(case, {**case.arrays, **positional}, case.state)
    else:
        perms = {d: perms[d] for d in ("B", "N")}
    permuted = _with_values(case, {n: _permute(v, fam.input(n).dims, perms) for n, v in case.arrays.items()},
                            None if case.state is None else
                            {n: _permute(v, state_dims[n], perms) for n, v in case.state.items()})
    o, s = k.call(case, dtype)
    o_p, s_p = k.call(permuted, dtype)
    if tuple(o_p.shape) != tuple(o.shape):
        raise PropertyFailure(f"output shape {tuple(o_p.shape)} on permuted inputs, {tuple(o.shape)} on the originals")
    back = _permute(o_p, fam.output_dims, perms, inverse=True)
    back_state = {n: _permute(v, state_dims[n], perms, inverse=True) for n, v in (s_p or {}).items()}
    if _same(back, o) and all(n in back_state and _same(back_state[n], v) for n, v in (s or {}).items()):
        return {}
    try:
        return _check_run(k, back, back_state or None, case, dtype)
    except PropertyFailure as f:
        moved = ", ".join(f"{d} by {[int(i) for i in p]}" for d, p in perms.items() if d != "N" and len(p) > 1)
        raise PropertyFailure(f"permuting {moved} does not permute the results: {f}", f.detail) from None


def _with_values(case: Case, arrays: dict, state: dict | None) -> Case:
    return Case(case.family, dict(case.dims), dict(case.regimes), dict(case.options), case.seed, case.segments,
                case.initial_state, case.chunk_size, arrays=arrays, state=state)


def reference_vjp(case: Case, cotangents: dict, names: list[str]) -> dict[str, np.ndarray]:
    """Gradients of ⟨w_o, o⟩ + Σ⟨w_s, S⟩ w.r.t. every input and the initial state, by float64 autograd
    through the spec's own definition (the recurrent form, :mod:`lrnnspec.impls.driver`)."""
    from lrnnspec.impls.driver import call

    fam = get_family(case.family)
    x = case.torch(torch.float64, requires_grad=True)
    init = case.torch_state(dtype=torch.float64, requires_grad=True)
    opts = {k: v for k, v in case.options.items() if not any(o.name == k and o.domain_only for o in fam.options)}
    value = next((i.name for i in fam.inputs if i.dims == fam.output_dims), "v")
    o, state = call("recurrent", case.family, None, x, initial_state=init, output_final_state=True, value_input=value,
                    cu_seqlens=None if case.segments is None else torch.tensor(case.segments), **opts)
    parts = state if isinstance(state, tuple) else (state,)
    loss = (o * cotangents["output"]).sum() + sum((s * cotangents[n]).sum() for n, s in zip(names, parts)
                                                  if n in cotangents)
    leaves = {**x, **{f"initial_state[{n}]": v for n, v in (init or {}).items()}}
    if not loss.requires_grad:
        return {n: np.zeros(v.shape) for n, v in leaves.items()}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {n: (np.zeros(v.shape) if g is None else g.numpy()) for (n, v), g in zip(leaves.items(), grads)}


def gradient_sensitivity(values: dict[str, np.ndarray], vjp: Callable[[dict], dict], want: dict, u: float,
                         seed: int, trials: int = 2) -> dict[str, float]:
    """σ_X = max over ``trials`` of ‖g_X(x ⊙ (1 + u·ξ)) − g_X(x)‖_∞, ξ random signs on every entry of
    ``values`` (the inputs and initial state; ``vjp`` maps moved values to the reference gradients):
    how far the exact gradient moves when the inputs move by one rounding. A backward-stable
    kernel's error is of this size; it is what the normwise scale misses when the gradient is
    ill-conditioned (mLSTM's read-out divides by |nᵀq|, which can cancel to 1/1000 of Σ|n||q|, and
    the gradient of a quotient amplifies that cancellation)."""
    worst = dict.fromkeys(want, 0.0)
    for trial in range(trials):
        rng = np.random.default_rng([seed % 2**32, trial])
        moved = {n: v * (1.0 + u * rng.choice([-1.0, 1.0], v.shape)) for n, v in values.items()}
        for n, g in vjp(moved).items():
            worst[n] = max(worst[n], float(np.max(np.abs(g - want[n]), initial=0.0)))
    return worst


def prop_gradients(k: Kernel, case: Case, dtype: str) -> dict:
    """Kernel VJP vs the reference VJP, per element i of each input X:
    |ĝ_i − g_i| ≤ C_GRAD·u·(√(T+1) + Λ)·κ·s_i + C_SENS·σ_X + ulp, with
    s_i = max(‖g_X‖_∞, max_Y ‖g_Y ⊙ Y‖_∞ / |X_i|) (|X_i| = 0: ‖X‖_∞, or 1), Λ the exponent mass, κ the UT conditioning,
    σ_X the gradient's sensitivity to a u-relative perturbation of the inputs
    (:func:`gradient_sensitivity`, :mod:`lrnnspec.tolerance`)."""
    from lrnnspec.tolerance import C_GRAD, UNIT_ROUNDOFF

    tdt = TORCH_DTYPES[dtype]
    ref = k.reference(case, dtype)
    names = k.state_names(case)
    gen = np.random.default_rng(case.seed % 2**32)
    # cotangents exactly representable in the dtype autograd hands the kernel (the output's, the
    # state's): the reference then differentiates the very loss the kernel's backward sees
    state_dtype = torch.float64 if dtype == "fp64" else torch.float32
    cot = {"output": torch.from_numpy(gen.standard_normal(ref.output.shape)).to(tdt).double()}
    if k.caps.final_state:
        cot |= {n: torch.from_numpy(gen.standard_normal(v.shape)).to(state_dtype).double() for n, v in ref.state.items()}
    want = reference_vjp(case, cot, names)
    initial = {f"initial_state[{n}]": v for n, v in (case.state or {}).items()}

    def moved_vjp(moved):
        inputs = {n: moved[n] for n in case.arrays}
        init = None if case.state is None else {n: moved[f"initial_state[{n}]"] for n in case.state}
        return reference_vjp(_with_values(case, inputs, init), cot, names)

    sensitivity = gradient_sensitivity({**case.arrays, **initial}, moved_vjp, want, UNIT_ROUNDOFF[dtype], case.seed)
    x = case.torch(tdt, k.device, requires_grad=True)
    init = case.torch_state(k.device, requires_grad=True)
    o, state = k.call(case, dtype, inputs=x, initial_state=init)
    loss = (o.double() * cot["output"].to(o.device)).sum()
    for n, s in (state or {}).items():
        if n in cot:
            loss = loss + (s.double() * cot[n].to(s.device)).sum()
    leaves = {**x, **{f"initial_state[{n}]": v for n, v in (init or {}).items()}}
    got = kernel_vjp(loss, leaves, want)
    if got is None:
        return {}
    lam = 0.0 if ref.exponent_mass is None or ref.exponent_mass.size == 0 else float(ref.exponent_mass.max())
    kappa = 1.0 if ref.conditioning is None or ref.conditioning.size == 0 else float(ref.conditioning.max())
    factor = C_GRAD * UNIT_ROUNDOFF[dtype] * (np.sqrt(case.dims["T"] + 1) + lam) * kappa
    formats = {n: "fp32" if n.startswith("initial_state") else dtype for n in leaves}
    return check_gradients(got, want, {n: _np(v) for n, v in leaves.items()}, factor=factor,
                           sensitivity=sensitivity, formats=formats)


def kernel_vjp(loss: torch.Tensor, leaves: dict[str, torch.Tensor], want: dict) -> dict[str, np.ndarray] | None:
    """The kernel's gradients of ``loss`` w.r.t. ``leaves`` (zeros for an unused leaf), shared by the
    sequence and DAG certifiers; None when the results carry no graph and the reference gradient
    ``want`` is zero too. A missing backward where the results depend on the inputs, or a backward
    that raises, is a :class:`PropertyFailure`."""
    if not loss.requires_grad:
        if any(np.any(w != 0) for w in want.values()):
            raise PropertyFailure("the results do not require grad although they depend on the inputs (no backward)")
        return None
    try:
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    except Exception as exc:  # noqa: BLE001
        raise PropertyFailure(f"the backward raised {type(exc).__name__}: {exc}") from None
    return {n: np.zeros(leaf.shape) if g is None else _np(g) for (n, leaf), g in zip(leaves.items(), grads)}


def check_gradients(got: dict[str, np.ndarray], want: dict[str, np.ndarray], values: dict[str, np.ndarray], *,
                    factor: float, sensitivity: dict[str, float], formats: dict[str, str],
                    locate: Callable[[tuple[int, ...]], str] | None = None, exclude_overflow: bool = True) -> dict:
    """The per-element gradient rule shared by the sequence and DAG certifiers: for each input X,

        |ĝ_i − g_i| ≤ factor·s_i + C_SENS·σ_X + ulp_X(s_i),   s_i = max(‖g_X‖_∞, L / |X_i|),

    L = max_Y ‖g_Y ⊙ Y‖_∞ (|X_i| = 0: ‖X‖_∞, or 1). By the chain rule g_i·X_i is a sum of terms of at
    most L, so ∂L/∂X_i is computed from terms up to L / |X_i| even where it cancels to ≈ 0 (a
    quotient's gradient: the normalized read-outs of linear attention and mLSTM). ``factor`` is
    C_GRAD·u·(√(length + 1) + Λ)·κ; ``formats`` the format of each gradient (its ulp, its range:
    with ``exclude_overflow`` a gradient beyond the range overflows in any correct kernel and is
    not compared); ``locate(index)`` names an element in the failure message."""
    from lrnnspec.spec.formats import get_format
    from lrnnspec.tolerance import C_SENS, ulp

    loss_scale = max((float(np.max(np.abs(want[n] * values[n]), initial=0.0)) for n in want), default=0.0)
    worst = {}
    for name, g in got.items():
        w, x_abs = want[name], np.abs(values[name])
        norm = float(np.max(np.abs(w), initial=0.0))
        size = np.where(x_abs > 0, x_abs, float(np.max(x_abs, initial=0.0)) or 1.0)
        scale = np.maximum(norm, loss_scale / size)                          # per element
        allowed = factor * scale + C_SENS * sensitivity[name] + ulp(np.maximum(scale, norm), formats[name])
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


PROPERTY_FUNCTIONS = {
    "forward": prop_forward, "final_state": prop_final_state, "state_passing": prop_state_passing,
    "varlen": prop_varlen, "causality": prop_causality, "chunk_size": prop_chunk_size,
    "no_mutation": prop_no_mutation, "nan_poison": prop_nan_poison, "determinism": prop_determinism,
    "contract": prop_contract, "finite": prop_finite, "negative_eigenvalues": prop_negative_eigenvalues,
    "gradients": prop_gradients, "permutation": prop_permutation,
}


def applicability(k: Kernel, prop: str) -> str | None:
    """None if ``prop`` applies to the kernel, else the reason it does not."""
    caps, fam = k.caps, k.fam
    needs = {
        "final_state": (caps.final_state, "the kernel does not return a final state"),
        "state_passing": (caps.initial_state and caps.final_state, "needs both initial_state and a final state"),
        "varlen": (caps.varlen, "the signature has no cu_seqlens"),
        "chunk_size": (caps.chunk_size, "the signature has no chunk_size"),
        "negative_eigenvalues": (any(o.name == "eigenvalue_range" and "[-1,1]" in (o.choices or ())
                                     for o in fam.options) and any(i.name == "beta" for i in fam.inputs),
                                 f"family {fam.name!r} has no β-parameterized negative eigenvalue range"),
    }
    if prop == "gradients" and not _has_backward(k):
        return "the kernel's output does not require grad for inputs that do (no backward)"
    ok, why = needs.get(prop, (True, ""))
    return None if ok else why


def _has_backward(k: Kernel) -> bool:
    from lrnnspec.strategies import Case as _Case

    fam = k.fam
    dims = {"B": 1, "T": 2}
    for d in {d for i in fam.inputs for d in i.dims} - {"B", "T", "T*n_h"}:
        dims[d] = 1
    from lrnnspec.spec.family import LOG_GATE

    regimes = {i.name: ("random" if i.name in fam.unit_keys else "uniform" if i.name == "beta"
                        else "typical" if i.domain_for({o.name: o.default for o in fam.options}) is LOG_GATE
                        else "normal") for i in fam.inputs if not i.optional}
    probe = _Case(k.family, dims, regimes, k.fixed_options(), 0)
    try:
        o, _ = k.call(probe, "fp32", inputs=probe.torch(torch.float32, k.device, requires_grad=True),
                      initial_state=None, want_state=False)
    except PropertyFailure:
        return True  # let the property itself report the failure on drawn cases
    return bool(o.requires_grad)


def _strategy(k: Kernel, prop: str, chunk_size: int | None):
    caps = k.caps
    kw = dict(chunk_size=chunk_size or 64, max_len=48 if chunk_size is None else 3 * chunk_size + 1,
              initial_state=caps.initial_state and prop not in ("causality",),
              varlen=caps.varlen and prop in ("varlen", "forward", "nan_poison", "finite", "no_mutation"),
              max_batch=3 if prop == "permutation" else 2, max_heads=3 if prop == "permutation" else 2,
              options=k.fixed_options())
    if prop == "varlen":
        kw["varlen"] = True
    if prop == "negative_eigenvalues":
        kw["options"] = kw["options"] | {"eigenvalue_range": "[-1,1]"}
    base = cases(k.family, **kw)
    if prop == "varlen":
        base = base.filter(lambda c: c.segments is not None)
    if prop == "state_passing":
        base = base.filter(lambda c: c.segments is None and c.dims["T"] >= 2)
    if prop == "causality":
        base = base.filter(lambda c: c.dims["T"] >= 2)
    if prop == "permutation":
        base = base.filter(lambda c: c.segments is None and any(c.dims.get(d, 1) > 1 for d in ("B", "H", "HV", "D")))
    if prop == "negative_eigenvalues":
        base = st.tuples(base, st.sampled_from(["two", "near", "uniform"])).map(
            lambda cr: Case(cr[0].family, cr[0].dims, cr[0].regimes | {"beta": cr[1]}, cr[0].options, cr[0].seed,
                            cr[0].segments, cr[0].initial_state, cr[0].chunk_size))
    return base


def run_property(k: Kernel, prop: str, dtype: str, *, max_examples: int, seed: int,
                 chunk_size: int | None = None, progress: Callable[[str], None] | None = None) -> Verdict:
    why = applicability(k, prop)
    if why is not None:
        return Verdict(prop, dtype, "not_applicable", why)
    fn = PROPERTY_FUNCTIONS[prop]
    failures: list[tuple[Case, PropertyFailure]] = []
    worst: dict[str, Any] = {}
    count = [0]

    def one(case: Case):
        count[0] += 1
        rounded = case.rounded(TORCH_DTYPES[dtype])
        try:
            result = fn(k, rounded, dtype)
        except PropertyFailure as f:
            failures.append((rounded, f))
            raise AssertionError(str(f)) from None
        w = _worst_of(result)
        if w is not None and w >= worst.get("worst_normalized", -1.0):
            worst.update(worst_normalized=w, case=rounded.to_json())

    test = settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                    print_blob=False, report_multiple_bugs=False)(given(_strategy(k, prop, chunk_size))(one))
    test = _seeded(test, seed)
    start = time.perf_counter()
    try:
        test()
    except AssertionError:
        case, failure = failures[-1]
        return Verdict(prop, dtype, "fail", str(failure), count[0], time.perf_counter() - start, worst,
                       {"case": case.to_json(), "description": case.describe(), "detail": failure.detail,
                        "message": str(failure)})
    except Exception as exc:  # noqa: BLE001 - Hypothesis errors (unsatisfiable filters, flaky kernels)
        status = "fail" if failures else "not_applicable"
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        cex = None
        if failures:
            case, failure = failures[-1]
            cex = {"case": case.to_json(), "description": case.describe(), "detail": failure.detail,
                   "message": str(failure)}
            msg = f"{failure} (and the failure did not reproduce: {msg})"
        return Verdict(prop, dtype, status, msg, count[0], time.perf_counter() - start, worst, cex)
    finally:
        if progress:
            progress(f"{prop} [{dtype}]: {count[0]} examples")
    return Verdict(prop, dtype, "pass", "", count[0], time.perf_counter() - start, worst)


def _seeded(test, seed: int):
    from hypothesis import seed as hseed

    return hseed(seed)(test)


def _worst_of(result) -> float | None:
    if not isinstance(result, dict):
        return None
    vals = [v for key, v in result.items() if key == "worst_normalized"]
    for v in result.values():
        if isinstance(v, dict) and "worst_normalized" in v:
            vals.append(v["worst_normalized"])
    return max(vals) if vals else None
