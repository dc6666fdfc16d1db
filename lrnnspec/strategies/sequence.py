"""Hypothesis strategies for every family's inputs — public API, reusable in your own tests.

    from hypothesis import given
    from lrnnspec.strategies import cases

    @given(cases("gated_delta_rule", chunk_size=64))
    def test_my_kernel(case):
        x = case.torch(torch.bfloat16)          # inputs rounded to bf16, spec names and layout
        ref = case.reference()                  # the spec's fp64 evaluation of those rounded inputs
        ...

A :class:`Case` is drawn in two parts. Hypothesis draws the *structure* — sizes, the time length
T ∈ {0, 1, C−1, C, C+1, primes, several chunks}, head dims that are not powers of two, GVA,
varlen segments (with empty and length-1 ones), the value regime of every input, the initial
state, options — so failures shrink to small B, H, T and to the plainest regime. The *values*
come from a NumPy generator seeded by a drawn integer, so a case is reproducible from its
structure alone (:meth:`Case.to_json` / :func:`case_from_json`).

Regimes (DESIGN.md §5):
* real inputs: ``normal`` N(0,1), ``same_sign`` |N(0,1)| (no cancellation, error grows with
  memory), ``large`` 30·N(0,1) for vectors, 100·N(0,1) for per-head scalars such as gate
  preactivations (exp overflows without a stabilizer), ``dyadic`` multiples of
  1/4 in [−2, 2] (with dyadic gates and
  β, every operation of a linear recurrence is exact in fp32 for short sequences: bitwise tier);
* log gates: ``none`` (exactly 0), ``weak`` logσ(N(4,1)), ``typical`` logσ(N(2,1)),
  ``strong`` −U(5, 30), ``mixed`` (each element from one of the above);
* β: ``zero``/``one``/``two`` exactly, ``near`` {ε, 1±ε, 2−ε}, ``uniform`` over the declared range;
* unit keys: ``random`` directions, ``near_parallel`` (every key of a sequence within 1e-3 of
  one direction: an ill-conditioned UT transform), ``signed_basis`` ±e_i (the dyadic tier);
* initial state: none, ``zeros``, ``normal``, ``large`` (×30).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.family import Family, get_family
from lrnnspec.spec.prepare import active_state
from lrnnspec.spec.roles import get_role, shape_state

REAL_REGIMES = ("normal", "same_sign", "large", "dyadic")
GATE_REGIMES = ("typical", "none", "weak", "strong", "mixed")
BETA_REGIMES = ("uniform", "zero", "one", "two", "near")
KEY_REGIMES = ("random", "near_parallel")
STATE_REGIMES = ("normal", "zeros", "large")
PRIMES = (2, 3, 5, 7, 11, 13, 17, 31, 61, 67, 127)
PLAUSIBLE_CHUNKS = (16, 32, 64, 128)
STRUCTURE = ("family", "dims", "regimes", "options", "seed", "segments", "initial_state", "chunk_size", "split")


@dataclass
class Case:
    """One drawn input: structure (JSON-serializable) plus the values it seeds."""

    family: str
    dims: dict[str, int]
    regimes: dict[str, str]
    options: dict[str, Any]
    seed: int
    segments: list[int] | None = None      # cu_seqlens
    initial_state: str | None = None       # state regime, None = no initial state passed
    chunk_size: int | None = None
    split: int | None = None               # state passing: run [0, split), then [split, T)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    state: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self):
        if not self.arrays:
            self.arrays, self.state = _values(self)

    # --- views -------------------------------------------------------------------------------
    @property
    def fam(self) -> Family:
        return get_family(self.family)

    @property
    def all_options(self) -> dict[str, Any]:
        """Every option of the family: the case's, else the default."""
        return {o.name: o.default for o in self.fam.options} | self.options

    def replace(self, **changes) -> "Case":
        """The same case with other structure (values drawn anew from it)."""
        d = {k: getattr(self, k) for k in STRUCTURE}
        return Case(**(d | changes))

    def with_values(self, arrays: dict[str, np.ndarray], state: dict[str, np.ndarray] | None) -> "Case":
        """The same structure with other values."""
        return Case(self.family, dict(self.dims), dict(self.regimes), dict(self.options), self.seed, self.segments,
                    self.initial_state, self.chunk_size, self.split, arrays=arrays, state=state)

    @property
    def cu_seqlens(self) -> np.ndarray | None:
        return None if self.segments is None else np.asarray(self.segments, dtype=np.int64)

    def rounded(self, dtype) -> "Case":
        """A copy whose inputs and initial state are exactly representable in ``dtype`` (torch)."""
        import torch

        def rnd(a):
            return torch.from_numpy(a).to(dtype).double().numpy()

        out = Case(self.family, dict(self.dims), dict(self.regimes), dict(self.options), self.seed,
                   self.segments, self.initial_state, self.chunk_size, self.split,
                   arrays={k: rnd(v) for k, v in self.arrays.items()},
                   state=None if self.state is None else {k: v.copy() for k, v in self.state.items()})
        if get_family(self.family).unit_keys and "dyadic" not in self.regimes.values():
            # keys were unit before rounding; rounded to a narrow dtype they are unit to its eps only
            out.options["require_unit_keys"] = False
        return out

    def torch(self, dtype, device="cpu", requires_grad: bool = False) -> dict:
        """Inputs as torch tensors of ``dtype`` (round to nearest), spec names and layout."""
        import torch

        return {k: torch.tensor(v, dtype=dtype, device=device, requires_grad=requires_grad)
                for k, v in self.arrays.items()}

    def torch_state(self, device="cpu", dtype=None, requires_grad: bool = False) -> dict | None:
        import torch

        if self.state is None:
            return None
        return {k: torch.tensor(v, dtype=dtype or torch.float32, device=device, requires_grad=requires_grad)
                for k, v in self.state.items()}

    def reference(self, engine: str = "fp64"):
        from lrnnspec.spec import evaluate

        return evaluate(self.family, self.arrays, engine=engine, initial_state=self.state,
                        cu_seqlens=self.cu_seqlens, **self.options)

    def describe(self) -> str:
        d = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        r = ", ".join(f"{k}:{v}" for k, v in self.regimes.items())
        extra = f", cu_seqlens={self.segments}" if self.segments is not None else ""
        extra += f", initial_state={self.initial_state}" if self.initial_state else ""
        extra += f", options={self.options}" if self.options else ""
        extra += f", chunk_size={self.chunk_size}" if self.chunk_size else ""
        extra += f", split at {self.split}" if self.split is not None else ""
        return f"{self.family}({d}; {r}; seed={self.seed}{extra})"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("arrays"), d.pop("state")
        return d


def case_from_json(d: dict) -> Case:
    """Rebuild a case (values included: they are a function of the structure). A regime this module
    does not draw for that input is refused: it would silently generate other values."""
    case = Case(**{k: d.get(k) for k in STRUCTURE})
    fam = get_family(case.family)
    inputs = {i.name: i for i in fam.inputs}
    for name, regime in (case.regimes or {}).items():
        if name == "sample":
            allowed: tuple = ("family",)
        elif name in inputs:
            allowed = (*regime_choices(fam, inputs[name]), "dyadic", "signed_basis")
        else:
            raise SpecError(f"regimes.{name}", f"is not an input of family {fam.name!r}; its inputs: "
                                               f"{', '.join(inputs)}")
        if regime not in allowed:
            raise SpecError(f"regimes.{name}", f"must be one of {', '.join(allowed)}, got {regime!r}")
    if case.initial_state not in (None, *STATE_REGIMES):
        raise SpecError("initial_state", f"must be null or one of {', '.join(STATE_REGIMES)}, "
                                         f"got {case.initial_state!r}")
    return case


# --- values ----------------------------------------------------------------------------------------
def _real(rng, regime, shape, large: float = 30.0):
    if regime == "same_sign":
        return np.abs(rng.standard_normal(shape))
    if regime == "large":
        return large * rng.standard_normal(shape)
    if regime == "dyadic":
        return rng.integers(-8, 9, shape) / 4.0
    return rng.standard_normal(shape)


def _gate(rng, regime, shape):
    logsig = lambda z: -np.logaddexp(0.0, -z)  # noqa: E731
    parts = {
        "none": lambda: np.zeros(shape),
        "weak": lambda: logsig(rng.normal(4.0, 1.0, shape)),
        "typical": lambda: logsig(rng.normal(2.0, 1.0, shape)),
        "strong": lambda: -rng.uniform(5.0, 30.0, shape),
        "dyadic": lambda: -rng.integers(0, 3, shape) / 8.0,
    }
    if regime == "mixed":
        pick = rng.integers(0, 4, shape)
        vals = [parts[n]() for n in ("none", "weak", "typical", "strong")]
        return np.choose(pick, vals)
    return parts[regime]()


def _beta(rng, regime, shape, hi):
    if regime in ("zero", "one", "two"):
        return np.full(shape, {"zero": 0.0, "one": 1.0, "two": min(2.0, hi)}[regime])
    if regime == "near":
        eps = 1e-3
        choices = np.array([eps, 1 - eps, 1 + eps, 2 - eps] if hi >= 2 else [eps, 1 - eps])
        return rng.choice(choices, shape)
    if regime == "dyadic":
        return rng.integers(0, int(4 * hi) + 1, shape) / 4.0
    return rng.uniform(0.0, hi, shape)


def _keys(rng, regime, shape):
    if regime == "signed_basis":  # ±e_i: unit and exact in every format
        k = np.zeros(shape)
        idx = rng.integers(0, shape[-1], shape[:-1])
        np.put_along_axis(k, idx[..., None], rng.choice([-1.0, 1.0], shape[:-1])[..., None], axis=-1)
        return k
    k = rng.standard_normal(shape)
    if regime == "near_parallel" and len(shape) >= 2 and shape[1] > 0:
        base = rng.standard_normal((shape[0], 1, *shape[2:]))
        k = base + 1e-3 * k
    return k / np.linalg.norm(k, axis=-1, keepdims=True)


def _values(case: Case):
    """Every input with a regime, drawn by its role (unit keys, log gates, β, biases, rates, linear
    decays) or else by its domain; then the family's own refinement and the initial state."""
    fam = get_family(case.family)
    rng = np.random.default_rng(case.seed)
    dims = dict(case.dims)
    dims["T*n_h"] = dims["T"] * dims.get("n_h", 1)
    opts = {o.name: o.default for o in fam.options} | case.options
    arrays = {}
    for inp in fam.inputs:
        regime = case.regimes.get(inp.name)
        if regime is None:
            continue
        shape = tuple(dims[d] for d in inp.dims)
        dom = inp.domain_for(opts)
        sampler = "keys" if inp.name in fam.unit_keys else get_role(inp.role).regimes
        if sampler == "keys":
            arrays[inp.name] = _keys(rng, regime, shape)
        elif sampler == "strength":
            arrays[inp.name] = _beta(rng, regime, shape, dom.hi)
        elif sampler == "gate":
            arrays[inp.name] = _gate(rng, regime, shape)
        elif sampler == "bias":
            arrays[inp.name] = rng.uniform(0.0, 0.5, shape) if regime != "dyadic" else rng.integers(0, 3, shape) / 4.0
        elif sampler == "decay":
            arrays[inp.name] = rng.uniform(max(dom.lo, 0.8), dom.hi, shape)
        else:
            arrays[inp.name] = _bounded(rng, inp, dom, regime, shape)
    if fam.sample is not None and case.regimes.get("sample") == "family":
        arrays.update(fam.sample(rng, arrays, dims))
    state = None
    if case.initial_state is not None:
        sizes = {**dims, "N": len(case.segments) - 1 if case.segments is not None else dims["B"]}
        state = {}
        for c in active_state(fam, opts):
            shape = tuple(sizes[d] for d in c.dims)
            s = np.zeros(shape) if case.initial_state == "zeros" else rng.standard_normal(shape)
            if case.initial_state == "large":
                s *= 30.0
            if c.role == "stabilizer":  # a logarithm: moderate values
                s = np.clip(s, -5, 5)
            s = shape_state(c.role, s)      # gram: X Xᵀ/n (SPD); position: nonnegative integers
            state[c.name] = s
    return arrays, state


def _bounded(rng, inp, dom, regime, shape):
    """An input drawn by its domain: unbounded → the real regime (per-head scalars such as gate
    preactivations at 100·N under ``large``: exp overflows unless stabilized); ≤ 0 → rates;
    ≥ 0 → step sizes; an interval → uniform inside."""
    if dom.lo == -math.inf and dom.hi == math.inf:
        vector = inp.dims[-1] in ("K", "V", "D", "NS")
        return _real(rng, regime, shape, 30.0 if vector else 100.0)
    if dom.lo == -math.inf and dom.hi == 0.0:  # rates A ≤ 0
        return -rng.uniform(0.05, 2.0, shape) if regime != "dyadic" else -rng.integers(0, 5, shape) / 4.0
    if dom.lo == 0.0 and dom.hi == math.inf:  # step sizes Δ ≥ 0
        return rng.uniform(0.0, 1.0, shape) if regime != "dyadic" else rng.integers(0, 5, shape) / 8.0
    return rng.uniform(max(dom.lo, 0.0), dom.hi, shape)


# --- strategies ------------------------------------------------------------------------------------
def regime_choices(fam: Family, inp) -> tuple[str, ...]:
    """The value regimes drawn for input ``inp`` of ``fam``, by its role (unit keys: key regimes)."""
    if inp.name in fam.unit_keys:
        return KEY_REGIMES
    return {"strength": BETA_REGIMES, "gate": GATE_REGIMES}.get(get_role(inp.role).regimes, REAL_REGIMES[:3])


def chunk_boundaries(chunk_size: int | None = None) -> set[int]:
    """Lengths around the boundaries of every plausible chunk C ∈ {16, 32, 64, 128} and the kernel's own:
    C − 1, C, C + 1, 2C − 1, 2C + 1, 3C + 1, and more than three chunks of the largest."""
    chunks = set(PLAUSIBLE_CHUNKS) | ({chunk_size} if chunk_size else set())
    out = {n for c in chunks for n in (c - 1, c, c + 1, 2 * c - 1, 2 * c + 1, 3 * c + 1)}
    return out | {4 * max(chunks) + 3}


def length_tiers(chunk_size: int | None = None, max_len: int = 4 * 128 + 3, allowed=None) -> tuple[list, list]:
    """(short, boundary): T in 0, 1, the primes and chunk boundaries ≤ 31; and the lengths around
    chunk boundaries (:func:`chunk_boundaries`) up to ``max_len``. ``allowed(T)`` restricts both (a
    kernel's declared constraints); when it leaves fewer than 6 boundaries (T a multiple of 64), the
    first lengths above 31 it allows join them."""
    ok = allowed or (lambda t: True)
    edges = chunk_boundaries(chunk_size)
    short = [t for t in sorted({0, 1} | set(PRIMES) | edges) if t <= min(31, max_len) and ok(t)]
    boundary = [t for t in sorted(edges) if 31 < t <= max_len and ok(t)]
    if len(boundary) < 6:
        boundary = sorted(set(boundary) | set([t for t in range(32, max_len + 1) if ok(t)][:8]))
    return short, boundary


def lengths(chunk_size: int | None = None, max_len: int = 4 * 128 + 3, allowed=None) -> st.SearchStrategy[int]:
    """T from the two :func:`length_tiers`, drawn about evenly. A failure shrinks to the short tier,
    then to the smallest T of its tier, that shows it (a failure first found in the boundary tier stays
    there)."""
    tiers = [tier for tier in length_tiers(chunk_size, max_len, allowed) if tier]
    if not tiers:
        raise SpecError("lengths", f"no length up to {max_len} satisfies the constraints")
    return st.sampled_from(range(len(tiers))).flatmap(lambda i: st.sampled_from(tiers[i]))


def long_tier(long_len: int, allowed=None) -> list[int]:
    """The long lengths: T = 256, 512, … doubling up to ``long_len`` (accumulation over many chunks:
    growing states, underflowing gates), every other one less one (a partial last chunk of every
    plausible size: 256, 511, 1024, 2047, 4096), each moved up to the nearest length ``allowed`` admits."""
    ok = allowed or (lambda t: True)
    values = []
    tops = sorted({min(256 * 2 ** i, long_len) for i in range(16) if 256 * 2 ** (i - 1) < long_len})
    for i, top in enumerate(tops):
        t = top - i % 2
        t = next((u for u in range(t, 2 * t + 1) if ok(u)), None) if not ok(t) else t
        if t is not None and t not in values:
            values.append(t)
    if not values:
        raise SpecError("long_len", f"no length from 256 to {long_len} satisfies the constraints")
    return values


def long_lengths(long_len: int, allowed=None) -> st.SearchStrategy[int]:
    """T from :func:`long_tier`; a failure shrinks to the shortest that shows it."""
    return st.sampled_from(long_tier(long_len, allowed))


def segments(total: int, max_segments: int = 5, chunk_size: int | None = None, empty: bool = True,
             allowed=None) -> st.SearchStrategy[list[int]]:
    """cu_seqlens for packed sequences summing to ``total``, with empty (unless ``empty=False``) and
    length-1 segments likely, and cut points next to chunk boundaries likely (segments that start
    inside one chunk and end in another). ``allowed(n)``: the segment lengths a kernel takes (cut
    points then fall where both sides are allowed: T % 64 == 0 per segment)."""
    ok = allowed or (lambda n: True)
    fits = [c for c in range(total + 1) if (c == 0 or ok(c)) and (c == total or ok(total - c))]
    near = sorted({m + d for c in (*PLAUSIBLE_CHUNKS, chunk_size or 64) for m in range(c, total, c)
                   for d in (-1, 0, 1) if 0 <= m + d <= total} & set(fits))

    @st.composite
    def draw(draw):
        n = draw(st.integers(1, max_segments))
        anywhere = st.integers(0, total) if len(fits) == total + 1 else st.sampled_from(fits)
        cut = st.one_of(anywhere, st.sampled_from(near)) if near else anywhere
        cuts = sorted(draw(st.lists(cut, min_size=n - 1, max_size=n - 1)))
        if not empty:
            cuts = sorted({c for c in cuts if 0 < c < total})
        return [0, *cuts, total]

    return draw()


@st.composite
def cases(draw, family: "str | Family", *, chunk_size: int | None = None, max_len: int = 40, max_batch: int = 2,
          max_heads: int = 2, varlen: bool = True, initial_state: bool = True, gva: bool = True,
          dyadic: bool = False, options: dict[str, Any] | None = None, vary_options: bool = True,
          optional_inputs: bool | None = None, family_sample: bool | None = True,
          head_dims: tuple[int, ...] = (1, 3, 4, 5, 8), long_len: int | None = None, allowed_lengths=None,
          split: bool = False, empty_segments: bool = True, exclude_inputs: tuple[str, ...] = (),
          include_inputs: tuple[str, ...] = (), length: int | None = None, value_dim: bool = True) -> Case:
    """Inputs for ``family``. T comes from :func:`lengths` (``chunk_size``: the kernel's own chunk,
    besides 16, 32, 64, 128; ``max_len``; ``allowed_lengths(T)``: the kernel's constraints) or, with
    ``long_len``, from the long tier :func:`long_lengths`; ``length`` fixes it. ``options`` fixes options; the others are drawn from their choices
    (unless ``vary_options=False``). ``optional_inputs``: None draws whether each optional input
    is given, True gives all, False none. ``family_sample``: apply the family's own refinement of
    its inputs (dplr: RWKV-7's stable a = −κ̂, b = κ̂ ⊙ iclr) always (True), never (False) or
    drawn (None). ``dyadic=True`` draws only the exact-in-fp32 tier. ``split``: also draw a split
    point 1 ≤ t < T for state passing (``case.split``, both parts of allowed lengths; None when there
    is none), next to a chunk boundary more often than not.
    ``empty_segments=False`` keeps every varlen segment non-empty; ``exclude_inputs`` are never given,
    ``include_inputs`` always (optional inputs a kernel's signature requires). ``value_dim=False``
    draws V equal to K (a kernel that refuses other value widths)."""
    fam = get_family(family)
    fixed = dict(options or {})
    opts = {}
    for o in fam.options:
        if o.name in fixed:
            opts[o.name] = fixed[o.name]
        elif vary_options and o.choices is not None and o.name != "require_unit_keys":
            opts[o.name] = draw(st.sampled_from(o.choices))
        elif o.name == "scale" and vary_options:
            s = draw(st.sampled_from([None, None, 0.5, 1.0, 1.7]))
            if s is not None:
                opts[o.name] = s
    T = length if length is not None else draw(
        long_lengths(long_len, allowed_lengths) if long_len else lengths(chunk_size, max_len, allowed_lengths))
    use_varlen = varlen and draw(st.booleans())
    B = 1 if use_varlen else draw(st.integers(1, max_batch))
    names = {d for i in fam.inputs for d in i.dims}
    dims = {"B": B, "T": T}
    if "H" in names:
        dims["H"] = draw(st.integers(1, max_heads))
    if "HV" in names:
        dims["HV"] = dims.get("H", 1) * (draw(st.sampled_from([1, 2])) if gva and "H" in names else 1)
        if "H" not in names:
            dims["HV"] = draw(st.integers(1, max_heads))
    for d in ("K", "V", "D", "NS"):
        if d in names:
            dims[d] = draw(st.sampled_from(head_dims))
    if not value_dim and {"K", "V"} <= names:
        dims["V"] = dims["K"]
    if "T*n_h" in names:
        dims["n_h"] = draw(st.integers(1, 3))
    regimes = {}
    for inp in fam.inputs:
        if inp.name in exclude_inputs:
            continue
        if inp.optional and inp.name not in include_inputs and not (
                optional_inputs if optional_inputs is not None else draw(st.booleans())):
            continue
        if dyadic:
            regimes[inp.name] = "signed_basis" if inp.name in fam.unit_keys else "dyadic"
        else:
            regimes[inp.name] = draw(st.sampled_from(regime_choices(fam, inp)))
    if fam.sample is not None and (family_sample if family_sample is not None else draw(st.booleans())):
        regimes["sample"] = "family"
    cu = draw(segments(T, chunk_size=chunk_size, empty=empty_segments, allowed=allowed_lengths)) \
        if use_varlen else None
    init = draw(st.sampled_from((None, *STATE_REGIMES))) if initial_state else None
    seed = draw(st.integers(0, 2**32 - 1))
    cut = None
    ok = allowed_lengths or (lambda t: True)
    valid = [t for t in range(1, T) if ok(t) and ok(T - t)] if split else []
    if valid:
        near = sorted({m + d for c in (*PLAUSIBLE_CHUNKS, chunk_size or 64) for m in range(c, T, c)
                       for d in (-1, 0, 1)} & set(valid))
        cut = draw(st.one_of(st.sampled_from(near), st.sampled_from(valid)) if near else st.sampled_from(valid))
    return Case(fam.name, dims, regimes, opts, seed, cu, init, chunk_size, split=cut)


def to_json(case: Case) -> str:
    return json.dumps(case.to_json())
