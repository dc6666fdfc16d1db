"""What certifying a sequence family means: cases along a time axis, the spec evaluated on them, and
how a kernel's results are called for and judged.

:class:`SequenceDomain` gives the shared properties (:mod:`.properties`) everything they need for
one kernel: the calling convention and capabilities read from its signature, the Hypothesis
strategy per property, the references of a case (:func:`reference`: the oracle, the emulated
baseline, the magnitude shadow, the exponent mass, the conditioning), the output and state checks
against the tolerance, the perturbation of the future (causality), the permutations of batch and
heads, and the reference VJP. Everything it knows about a family it reads from the family record:
roles, dimensions, options and numerics hooks — never a family's or an input's name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from hypothesis import strategies as st

from lrnnspec.spec import evaluate
from lrnnspec.spec.numerics import conditioning, log_decay
from lrnnspec.spec.prepare import active_state
from lrnnspec.spec.roles import get_role
from lrnnspec.spec.timeaxis import slice_time
from lrnnspec.strategies import Case, case_from_json, cases
from lrnnspec.strategies.sequence import length_tiers, long_tier

from lrnnspec.spec.errors import SpecError

from .conventions import Convention, convention_for, resolve
from .scope import Scope, negotiate
from .kernel import TORCH_DTYPES, Kernel, Result, Signature
from .tolerance import CONTRACTS, compare
from .verdicts import PropertyFailure

PROPERTIES = ("scope", "forward", "final_state", "state_passing", "varlen", "causality", "chunk_size", "no_mutation",
              "nan_poison", "determinism", "contract", "finite", "negative_eigenvalues", "gradients", "permutation")
MAX_LEN = 4 * 128 + 3           # the boundary tier: up to more than three chunks of the largest plausible chunk
REQUIRED_CHUNK = 64      # the chunk size passed to a kernel whose signature requires one (the field's usual)
LONG_TIER = ("forward", "final_state", "finite")      # properties that also run the long lengths
SWEPT = ("forward", "final_state", "state_passing", "varlen", "causality", "gradients")   # and every boundary
LONG_LENGTHS = {"dev": 256, "ci": 1024, "certify": 4096}
CHUNK_SIZES = (16, 32)          # the chunk_size property's sizes besides the kernel's default


@dataclass(frozen=True)
class Capabilities:
    """What a kernel takes, read from its signature under its convention (``**kwargs`` names nothing
    on its own: a kernel without a readable signature is assumed to take everything)."""

    initial_state: bool
    final_state: bool
    varlen: bool
    chunk_size: bool


@dataclass
class Reference:
    output: np.ndarray
    state: dict[str, np.ndarray]
    emul_output: np.ndarray
    emul_state: dict[str, np.ndarray]
    mag_output: np.ndarray
    mag_state: dict[str, np.ndarray]
    exponent_mass: np.ndarray | None      # Λ [B,T,heads(,channels)], broadcast against the output
    conditioning: np.ndarray | None       # κ [B,T,heads,1] ≥ 1 (families with a conditioning hook)
    contract: str | None = None           # the baseline's precision contract (its operand term)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _state_dict(s, case: Case) -> dict:
    if isinstance(s, dict):
        return s
    (only,) = active_state(case.fam, case.all_options)
    return {only.name: s}


def reference(case: Case, dtype: str, contract: str | None = None) -> Reference:
    """For a case whose inputs are already rounded to ``dtype``: the oracle (spec fp64), the baseline
    (spec emulate under ``contract``, by default the dtype's :data:`CONTRACTS` entry), the magnitude
    shadow (spec fp64 with every non-gate input — by role — and every value state replaced by its
    absolute value: Σ|terms| for the gated families, a magnitude scale for the others; the family's
    ``shadow`` hook may add a floor), the exponent mass and the conditioning."""
    fam = case.fam
    kw = dict(cu_seqlens=case.cu_seqlens, **case.options)
    ref = evaluate(fam.name, case.arrays, engine="fp64", initial_state=case.state, **kw)
    emu = evaluate(fam.name, case.arrays, engine=f"emulate:{contract or CONTRACTS[dtype]}", initial_state=case.state,
                   **kw)
    absx = {n: (v if get_role(fam.input(n).role).gate_like else np.abs(v)) for n, v in case.arrays.items()}
    roles = {c.name: c.role for c in fam.state}
    abs_state = None if case.state is None else {n: (v if roles[n] == "stabilizer" else np.abs(v))
                                                 for n, v in case.state.items()}
    mag = evaluate(fam.name, absx, engine="fp64", initial_state=abs_state, **kw)
    mag_out, mag_state = np.abs(mag.output), {n: np.abs(v) for n, v in _state_dict(mag.final_state, case).items()}
    if fam.shadow is not None:
        extra = fam.shadow(case.arrays, absx, case.state, abs_state, case.options, case.cu_seqlens, ref.output)
        if extra is not None:
            mag_out = np.maximum(mag_out, extra)
    strengths = [i.name for i in fam.with_role("write_strength") if i.name in absx]
    if strengths and abs_state is not None:
        # delta families: the contractive transitions (‖I − βkkᵀ‖ ≤ 1) can cancel the initial state
        # down to nothing while a chunked kernel still carries |S₀|-sized terms: add |S₀|ᵀ|q| (β = 0)
        still = evaluate(fam.name, absx | {n: np.zeros_like(absx[n]) for n in strengths}, engine="fp64",
                         initial_state=abs_state, **kw)
        mag_out = np.maximum(mag_out, np.abs(still.output))
        mag_state = {n: np.maximum(v, np.abs(abs_state[n])) for n, v in mag_state.items()}
    return Reference(ref.output, _state_dict(ref.final_state, case), emu.output, _state_dict(emu.final_state, case),
                     mag_out, mag_state, exponent_mass(case, ref.output.ndim),
                     conditioning(fam, case.arrays, case.dims, case.segments), contract or CONTRACTS[dtype])


def exponent_mass(case: Case, out_ndim: int) -> np.ndarray | None:
    """Λ(t) = Σ_{s≤t} |log decay_s| per (batch, t, head[, channel]) (:func:`lrnnspec.spec.numerics.log_decay`)."""
    per_step = log_decay(case.fam, case.arrays, case.options)
    if per_step is None or per_step.shape[1] != case.dims["T"]:
        return None
    lam = np.cumsum(per_step, axis=1)
    while lam.ndim < out_ndim:
        lam = lam[..., None]
    return lam


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


def bitwise_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a − b| where they differ bitwise (∞ where only one is NaN), 0 where they are equal."""
    a, b = a.double(), b.double()
    nan_a, nan_b = a.isnan(), b.isnan()
    d = (a - b).abs().nan_to_num(nan=0.0)
    d = torch.where(nan_a != nan_b, torch.full_like(d, float("inf")), d)
    return torch.where(nan_a & nan_b, torch.zeros_like(d), d)


def _permute(a, axes: tuple[str, ...], perms: dict[str, np.ndarray], inverse: bool = False):
    """Apply ``perms`` (or their inverses) to the named axes of a NumPy array or torch tensor."""
    for axis, name in enumerate(axes):
        if name in perms:
            p = np.argsort(perms[name]) if inverse else perms[name]
            a = a.index_select(axis, torch.as_tensor(p, device=a.device)) if isinstance(a, torch.Tensor) \
                else np.take(a, p, axis=axis)
    return a


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


def capabilities(signature: Signature, conv: Convention) -> Capabilities:
    """What a signature says a kernel takes under convention ``conv``."""
    return Capabilities(initial_state=all(signature.names(n) for n in conv.initial_keywords),
                        final_state=conv.always_state or (conv.final_state is not None
                                                          and signature.names(conv.final_state)),
                        varlen=signature.names("cu_seqlens"), chunk_size=signature.names("chunk_size"))


def capabilities_of(fn, convention: str, family: str) -> Capabilities:
    """:func:`capabilities` of a function read in this process (lrnnspec's own tests)."""
    return capabilities(Signature.of(fn), convention_for(convention, family))


def _not_simplest(drawn: tuple) -> bool:
    return drawn[0] != 0


def _case(drawn: tuple) -> Case:
    return drawn[1]


class SequenceDomain:
    """The sequence-family side of one :class:`~.kernel.Kernel` (see the module docstring)."""

    kind = "sequence"
    properties = PROPERTIES
    extra_properties: dict = {}

    def __init__(self, kernel: Kernel, convention: str | None, layout: str | None = None,
                 rename: dict[str, str] | None = None):
        self.k, self.fam = kernel, kernel.fam
        self.scope, self.negotiated, self.dtypes_probed = Scope(), False, set()
        self.long_len, self.max_len = LONG_LENGTHS["ci"], MAX_LEN
        record = kernel.known
        self.convention_name = convention or (record and record.convention) or "fla"
        names = {i.name for i in self.fam.inputs} | {o.name for o in self.fam.options} | \
            {"initial_state", "output_final_state"}
        unknown = sorted(set(rename or {}) - names)
        if unknown:
            raise SpecError("rename", f"{unknown} are not inputs, options or flags of {self.fam.name!r}; "
                                      f"renamable: {', '.join(sorted(names))}")
        self.conv = resolve(convention_for(self.convention_name, self.fam.name),
                            {i.name: i.dims for i in self.fam.inputs}, kernel.signature.parameters,
                            layout=layout or (record.layout if record else None),
                            rename={**(record.rename if record else {}), **(rename or {})},
                            states=tuple(c.name for c in self.fam.state))
        if record is not None and record.always_state:
            self.conv = replace(self.conv, always_state=True)
        self.caps = capabilities(kernel.signature, self.conv)
        self.conv = replace(self.conv, none_state=self.caps.initial_state)
        self.conv_json = self.conv.to_json()

    def takes(self, name: str) -> bool:
        """Whether the kernel's signature names the keyword the convention passes ``name`` as."""
        return self.k.signature.names(self.conv.keyword(name))

    def required_optional(self) -> tuple[str, ...]:
        """The family's optional inputs that the kernel's signature requires (no default): always given."""
        required = self.k.signature.required
        return tuple(i.name for i in self.fam.inputs if i.optional and self.conv.keyword(i.name) in required)

    @property
    def returns_state(self) -> bool:
        return self.caps.final_state and self.scope.allows("final_state")

    # --- scope -----------------------------------------------------------------------------------
    def negotiate(self, required=()) -> Scope:
        """Probe the kernel's optional features (:mod:`.scope`); the cases drawn from now on stay
        inside the scope. The properties then start in a fresh process: the probes leave no trace
        (a kernel wrong on the first call of its process is judged on a property's first call)."""
        self.scope, self.negotiated = negotiate(self, required), True
        self.k.process.close()
        return self.scope

    def probe_cases(self) -> tuple:
        """Two plain cases of allowed lengths (the probes of a dtype)."""
        from .scope import Prober

        t0, prober = max(self.scope.multiple, 2), Prober(self)
        return prober.case(t0, 1), prober.case(2 * t0, 2)

    def own_chunk(self) -> int | None:
        """The kernel's default ``chunk_size``, when its signature declares one; :data:`REQUIRED_CHUNK`
        when the signature requires one (mamba_ssm's SSD functions), which every call then passes."""
        if self.conv.keyword("chunk_size") in self.k.signature.required:
            return REQUIRED_CHUNK
        default = self.k.signature.defaults.get("chunk_size")
        return default if isinstance(default, int) and not isinstance(default, bool) and default > 0 else None

    # --- what is drawn ---------------------------------------------------------------------------
    def fixed_options(self) -> dict:
        """Options the kernel cannot be told, or refuses: the spec's defaults are what it must compute."""
        return {o.name: o.default for o in self.fam.options if not o.domain_only
                and (not self.takes(o.name) or not self.scope.allows(o.name))}

    def phases(self, prop: str, examples: int) -> list:
        """(strategy, examples) to run in turn, stopping at the first failure: cases drawn freely (a
        failure found here shrinks to the smallest T that shows it); then, for :data:`SWEPT` properties
        when ``examples`` covers it (the ci and certify profiles, not dev), the sweep — one drawn case
        at every chunk-boundary length the kernel allows (Hypothesis, left to draw T itself, repeats a
        few lengths many times and can miss the one boundary where a bug lives) — which takes its
        cases from ``examples``, leaving at least half to the free draws; then for :data:`LONG_TIER`
        properties one case at every long length (:func:`~lrnnspec.strategies.sequence.long_tier`)."""
        sweep = [(self.strategy(prop, length=t), 1) for t in self.boundary_lengths()
                 if prop != "state_passing" or self.splits(t)] if self.sweeps(examples) and prop in SWEPT else []
        free = max(examples - len(sweep), (examples + 1) // 2)
        long = [(self.strategy(prop, length=t, long=True), 1)
                for t in long_tier(self.long_len, self.scope.allows_length)] if prop in LONG_TIER and self.long_len else []
        return [(self.strategy(prop), free)] + sweep + long

    def sweeps(self, examples: int) -> bool:
        """Whether a budget of ``examples`` per property runs the sweep: when it covers every length."""
        return len(self.boundary_lengths()) <= examples

    def splits(self, T: int) -> bool:
        """Whether T splits into two lengths the kernel allows (state passing)."""
        return any(self.scope.allows_length(t) and self.scope.allows_length(T - t) for t in range(1, T))

    def boundary_lengths(self) -> list[int]:
        """The lengths of the sweep: around every plausible chunk boundary and the kernel's own, above
        31, up to ``max_len``, as the kernel's declared constraints allow."""
        return length_tiers(self.own_chunk(), self.max_len, self.scope.allows_length)[1]

    def strategy(self, prop: str, long: bool = False, length: int | None = None):
        """Cases for ``prop``: T drawn from the tiers, or fixed at ``length`` (a case drawn in full
        otherwise: Hypothesis's first, simplest, case is skipped)."""
        scope = self.scope
        kw = dict(chunk_size=self.own_chunk(), max_len=self.max_len, length=length,
                  allowed_lengths=scope.allows_length, gva=scope.allows("grouped_value_heads"),
                  value_dim=scope.allows("distinct_value_dim"),
                  initial_state=scope.allows("initial_state") and prop != "causality",
                  varlen=scope.allows("varlen") and prop in ("varlen", "forward", "nan_poison", "finite", "no_mutation"),
                  empty_segments=scope.allows("empty_segments"), split=prop == "state_passing",
                  max_batch=3 if prop == "permutation" else 2, max_heads=3 if prop == "permutation" else 2,
                  options=self.fixed_options(), exclude_inputs=tuple(n for n in scope.unsupported
                                                                      if n in {i.name for i in self.fam.inputs}),
                  include_inputs=self.required_optional())
        if long:
            kw |= dict(max_batch=1, max_heads=1, varlen=False)     # the long tier is about T, not width
        if prop == "varlen":
            kw["varlen"] = True
        if prop == "negative_eigenvalues":
            kw["options"] = kw["options"] | {"eigenvalue_range": "[-1,1]"}
        base = cases(self.fam.name, **kw)
        if prop == "varlen":
            base = base.filter(lambda c: c.segments is not None)
        if prop == "state_passing":
            base = base.filter(lambda c: c.segments is None and c.split is not None)
        if prop == "causality":
            base = base.filter(lambda c: c.dims["T"] >= 2)
        if prop == "permutation":
            base = base.filter(lambda c: c.segments is None and any(c.dims.get(d, 1) > 1 for d in ("B", "H", "HV", "D")))
        if prop == "negative_eigenvalues":
            strength = [i.name for i in self.fam.with_role("write_strength")]
            base = st.tuples(base, st.sampled_from(["two", "near", "uniform"])).map(
                lambda cr: cr[0].replace(regimes=cr[0].regimes | dict.fromkeys(strength, cr[1])))
        if length is not None:
            base = st.tuples(st.integers(0, 2 ** 16), base).filter(_not_simplest).map(_case)
        return base

    def applicability(self, prop: str) -> str | None:
        """Why ``prop`` does not apply to this family, or None (what the kernel does not support is
        the scope's business: :meth:`Scope.missing`)."""
        fam = self.fam
        if prop == "negative_eigenvalues" and not (
                any(o.name == "eigenvalue_range" and "[-1,1]" in (o.choices or ()) for o in fam.options)
                and fam.with_role("write_strength")):
            return f"family {fam.name!r} has no β-parameterized negative eigenvalue range"
        return None

    # --- calling the kernel ------------------------------------------------------------------------
    def state_names(self, case: Case) -> list[str]:
        return [c.name for c in active_state(self.fam, case.all_options)]

    def options(self, case: Case) -> dict:
        """The options the kernel is passed: the case's (not the domain-only ones, not None), and the
        value a None stands for where the kernel requires the argument (a reference whose ``scale``
        has no default)."""
        out = {}
        for o in self.fam.options:
            value = case.options.get(o.name)
            if value is None and o.default_for is not None and self.conv.keyword(o.name) in self.k.signature.required:
                value = o.default_for(case.dims)
            if value is not None and not o.domain_only and self.takes(o.name):
                out[o.name] = value
        return out

    def call(self, case: Case, dtype: str, *, inputs=None, initial_state="case", chunk_size=None, want_state=None,
             poison=False, share_inputs=False, grad=None, probe_grad=False) -> Result:
        """Run the kernel on ``inputs`` (default: the case's in ``dtype``), with the case's initial
        state (or ``initial_state``), segments and options; ``want_state`` asks for the final state
        (default: when the kernel returns one)."""
        x = inputs if inputs is not None else case.torch(TORCH_DTYPES[dtype])
        init = case.torch_state() if initial_state == "case" else initial_state
        if init is not None and not self.caps.initial_state:
            raise RuntimeError("the case has an initial state but the kernel takes none (harness error)")
        kwargs = dict(self.options(case))
        if case.segments is not None:
            kwargs["cu_seqlens"] = torch.tensor(case.segments, dtype=torch.int64)
        if chunk_size is None and self.conv.keyword("chunk_size") in self.k.signature.required:
            chunk_size = REQUIRED_CHUNK
        if chunk_size is not None:
            kwargs["chunk_size"] = chunk_size
        sizes = dict(case.dims)
        for keyword, dim in self.conv.dims.items():
            if keyword in self.k.signature.parameters and dim in sizes:
                kwargs[keyword] = sizes[dim]
        want = self.returns_state if want_state is None else want_state
        tensors = list(x.values()) + list((init or {}).values())
        request = {"op": "call", "device": self.k.device, "adapter": "sequence", "inputs": x, "initial_state": init,
                   "call": {"convention": self.conv_json, "want_state": bool(want),
                            "state_names": self.state_names(case), "kwargs": kwargs},
                   "poison": poison, "grad": grad, "probe_grad": probe_grad,
                   "max_result_bytes": self.k.max_result_bytes(tensors)}
        result = self.k.request(request, share_inputs=share_inputs)
        if want and result.state is None:
            raise PropertyFailure("asked for its final state, the kernel returned none")
        return result

    def case_from_json(self, d: dict) -> Case:
        return case_from_json(d)

    def other_values(self, case: Case) -> Case:
        """The same structure (shapes, regimes, options) with values from another seed."""
        return case.replace(seed=(case.seed + 1) % 2**32)

    def inputs(self, case: Case, dtype: str) -> dict:
        return case.torch(TORCH_DTYPES[dtype])

    def split(self, case: Case, x: dict, t: int) -> tuple[dict, dict]:
        """The inputs of tokens [0, t) and [t, T)."""
        return slice_time(self.fam, x, 0, t), slice_time(self.fam, x, t, case.dims["T"])

    # --- judging results -----------------------------------------------------------------------------
    def reference(self, case: Case, dtype: str, contract: str) -> Reference:
        return reference(case, dtype, contract)

    def check_output(self, o: torch.Tensor, ref: Reference, case: Case, dtype: str, what: str = "output",
                     calls: int = 1) -> dict:
        """``calls``: how many kernel calls composed this output (state passing: 2); each may spend
        the whole budget, and contractive transitions carry the first call's error at most unamplified."""
        if tuple(o.shape) != ref.output.shape:
            raise PropertyFailure(f"{what} has shape {tuple(o.shape)}, the spec's is {ref.output.shape}")
        cmp = compare(_np(o), ref.output, ref.emul_output, dtype, time_axis=1,
                      row_axes=(-1,) if o.dim() == 4 else (), magnitude=ref.mag_output,
                      exponent_mass=_fit(ref.exponent_mass, ref.output), conditioning=_fit(ref.conditioning, ref.output),
                      contract=ref.contract)
        if cmp.worst > calls:
            raise PropertyFailure(f"{what} error {cmp.abs_error:.3e} at {list(cmp.worst_index)} is "
                                  f"{cmp.worst / calls:.3g}× the allowed", cmp.summary())
        return cmp.summary()

    def check_state(self, state: dict | None, ref: Reference, case: Case, dtype: str, calls: int = 1) -> dict:
        worst = {}
        for name, want in ref.state.items():
            got = state.get(name) if state else None
            if got is None:
                raise PropertyFailure(f"final state component {name!r} missing")
            if tuple(got.shape) != want.shape:
                raise PropertyFailure(f"final state {name!r} has shape {tuple(got.shape)}, the spec's is {want.shape}")
            cmp = compare(_np(got), want, ref.emul_state[name], dtype, time_axis=None,
                          row_axes=tuple(range(2, want.ndim)), length=case.dims["T"], magnitude=ref.mag_state[name],
                          exponent_mass=_at_end(ref.exponent_mass, want), conditioning=_at_end(ref.conditioning, want),
                          contract=ref.contract)
            if cmp.worst > calls:
                raise PropertyFailure(f"final state {name!r} error {cmp.abs_error:.3e} at {list(cmp.worst_index)} is "
                                      f"{cmp.worst / calls:.3g}× the allowed", cmp.summary())
            worst[name] = cmp.summary()
        return worst

    def state_dtypes(self, dtype: str) -> set:
        return {torch.float64 if dtype == "fp64" else torch.float32}

    def chunk_sizes(self) -> tuple[int, ...]:
        return CHUNK_SIZES

    # --- perturbations ------------------------------------------------------------------------------
    def future_changed(self, case: Case, x: dict) -> tuple[dict, int]:
        """Inputs whose steps at times ≥ t = T // 2 are changed within their domains in ways that change
        their sums, not only their order: reversed in time, then log gates made stronger (2g − ¼) and
        write strengths moved towards 1 (β/2 + ½) — a kernel that reads a later gate sum into an
        earlier output (fla #1242) shows it. Returns (inputs, t)."""
        T = case.dims["T"]
        t = T // 2
        out = {}
        for name, v in x.items():
            inp = self.fam.input(name)
            if inp.per_step:
                n_h = v.shape[1] // T if T else 1
                v = v.clone()
                tail = v[:, t * n_h:].flip(1)
                kind = get_role(inp.role).regimes
                if kind == "gate":
                    tail = 2 * tail - 0.25
                elif kind == "strength":
                    tail = tail / 2 + 0.5
                v[:, t * n_h:] = tail
            out[name] = v
        return out, t

    def check_past(self, case: Case, before: Result, after: Result, t: int, moved: dict, dtype: str) -> None:
        """The past (times < t) of both runs is bitwise equal; where it is not — a kernel may pick its
        algorithm from a whole chunk's data, which moves the past by a rounding — the run on the
        changed inputs must still be within the budget of the spec on them, whose past the future
        cannot move: a value read from the future is out of it."""
        o, o2 = before.output, after.output
        if o.shape != o2.shape:
            raise PropertyFailure(f"the output's shape changed from {tuple(o.shape)} to {tuple(o2.shape)} when only "
                                  f"inputs at times ≥ {t} changed")
        diff = bitwise_difference(o[:, :t], o2[:, :t])
        if not diff.any():
            return
        pos = [int(i) for i in torch.nonzero(diff)[0]]
        changed = case.with_values({n: v.double().numpy() for n, v in moved.items()}, case.state)
        try:
            self.check_output(o2, self.reference(changed, dtype, self.k.contracts[dtype]), changed, dtype,
                              "output on the changed future")
        except PropertyFailure as f:
            raise PropertyFailure(f"output at time {pos[1]} < {t} changed (by up to {float(diff.max()):.3g}) when only "
                                  f"inputs at times ≥ {t} changed, and is wrong: {f}",
                                  {"index": pos, "change": float(diff.max()), **f.detail}) from None

    def permuted(self, case: Case) -> tuple[Case, Case, dict]:
        """(the case with position-dependent defaults made explicit, its batch/head permutation, the
        permutations). Optional per-head inputs whose default depends on the head's position
        (retention's γ_h) are passed explicitly; when the kernel does not take them, only the
        batch is permuted."""
        fam, perms = self.fam, axis_permutations(case)
        state_dims = {c.name: c.dims for c in fam.state}
        positional = {n: a for n, a in (fam.defaults(case.dims) if fam.defaults else {}).items()
                      if n not in case.arrays}
        if all(self.takes(n) for n in positional):
            case = case.with_values({**case.arrays, **positional}, case.state)
        else:
            perms = {d: perms[d] for d in ("B", "N")}
        permuted = case.with_values({n: _permute(v, fam.input(n).dims, perms) for n, v in case.arrays.items()},
                                    None if case.state is None else
                                    {n: _permute(v, state_dims[n], perms) for n, v in case.state.items()})
        return case, permuted, perms

    def unpermute(self, o, state, perms):
        state_dims = {c.name: c.dims for c in self.fam.state}
        return (_permute(o, self.fam.output_dims, perms, inverse=True),
                {n: _permute(v, state_dims[n], perms, inverse=True) for n, v in (state or {}).items()} or None)

    # --- gradients -----------------------------------------------------------------------------------
    def reference_vjp(self, case: Case, cotangents: dict, values: dict | None = None) -> dict[str, np.ndarray]:
        """Gradients of ⟨w_o, o⟩ + Σ⟨w_s, S⟩ w.r.t. every input and the initial state (``values``:
        other values for them), by float64 autograd through the spec's own definition (the
        recurrent form, :mod:`lrnnspec.impls.driver`)."""
        from lrnnspec.impls.driver import call

        if values is not None:
            case = case.with_values({n: values[n] for n in case.arrays},
                                    None if case.state is None else
                                    {n: values[f"initial_state[{n}]"] for n in case.state})
        fam = self.fam
        x = case.torch(torch.float64, requires_grad=True)
        init = case.torch_state(dtype=torch.float64, requires_grad=True)
        opts = {k: v for k, v in case.options.items() if not any(o.name == k and o.domain_only for o in fam.options)}
        value = next((i.name for i in fam.inputs if i.dims == fam.output_dims), fam.with_role("value")[0].name)
        o, state = call("recurrent", fam.name, None, x, initial_state=init, output_final_state=True,
                        value_input=value, cu_seqlens=None if case.segments is None else torch.tensor(case.segments),
                        **opts)
        parts = state if isinstance(state, tuple) else (state,)
        names = self.state_names(case)
        loss = (o * cotangents["output"]).sum() + sum((s * cotangents[n]).sum() for n, s in zip(names, parts)
                                                      if n in cotangents)
        leaves = {**x, **{f"initial_state[{n}]": v for n, v in (init or {}).items()}}
        if not loss.requires_grad:
            return {n: np.zeros(v.shape) for n, v in leaves.items()}
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        return {n: (np.zeros(v.shape) if g is None else g.numpy()) for (n, v), g in zip(leaves.items(), grads)}

    def gradient_values(self, case: Case) -> dict[str, np.ndarray]:
        return {**case.arrays, **{f"initial_state[{n}]": v for n, v in (case.state or {}).items()}}

    def gradient_length(self, case: Case, ref: Reference) -> tuple[int, float, float]:
        """(steps, Λ, κ) of the gradient rule's factor."""
        lam = 0.0 if ref.exponent_mass is None or ref.exponent_mass.size == 0 else float(ref.exponent_mass.max())
        kappa = 1.0 if ref.conditioning is None or ref.conditioning.size == 0 else float(ref.conditioning.max())
        return case.dims["T"], lam, kappa

    def gradient_formats(self, case: Case, dtype: str) -> dict[str, str]:
        return {n: ("fp32" if n.startswith("initial_state") else dtype) for n in self.gradient_values(case)}

    def locate(self, case: Case):
        return None

    def finite_reference(self, case: Case) -> np.ndarray:
        return evaluate(self.fam.name, case.arrays, engine="fp64", initial_state=case.state,
                        cu_seqlens=case.cu_seqlens, **case.options).output

    def cotangent_shapes(self, case: Case, ref: Reference) -> dict[str, tuple]:
        shapes = {"output": ref.output.shape}
        if self.returns_state:
            shapes |= {n: v.shape for n, v in ref.state.items()}
        return shapes

    def coverage(self) -> dict | None:
        return None
