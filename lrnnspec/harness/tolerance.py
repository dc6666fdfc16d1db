"""The certifier's tolerance: when is a kernel's result *correct within its precision*?

Inputs are first rounded to the kernel's dtype; the oracle y is the spec's fp64 evaluation of those
rounded inputs (its own error, ~1e-16 relative, is negligible next to any kernel format), and the
baseline ŷ_e is the spec's ``emulate`` engine under the kernel's precision contract
(:data:`CONTRACTS`): the error a careful *sequential* evaluation in that precision commits.

For an output element i in row ρ = (batch or segment, head) at time t, the allowed error is

    b_i = C_BASE · E_ρ(t)  +  C_MAG · u · √(t + 1) · M_ρ(t)  +  ulp_out(y_i)

* E_ρ(t) = max_{s ≤ t} |ŷ_e − y| over the row: the baseline ratio (FlashAttention's rule), as an
  envelope in time because rounding errors committed at s persist in the state afterwards;
* M_ρ(t) = max_{s ≤ t} max(|y|, |ŷ_e|, m) over the row, m the *magnitude shadow* (the recurrence
  run on the absolute values of its value inputs: Σ|terms|, what cancellation hides from |y|):
  a floor for when the sequential evaluation is exact by luck (dyadic inputs, zero gates). Chunked kernels reassociate sums of up
  to t + 1 terms; with random rounding the error grows like √(t+1) (Higham §2.8, probabilistic
  bound), deterministically like (t+1) — √ is the calibrated middle;
* + C_OP · u_op · M_ρ(t) when the contract's dot operands are narrower than its accumulator
  (mixed-bf16: operands bf16, u_op = 2⁻⁸): a chunked or parallel kernel forms intermediates the
  sequential evaluation never forms — the intra-chunk score matrix P = q kᵀ (decayed), the chunk
  state — and rounds them to the operand format before its MMA, as the contract allows (FLA's
  chunk_o: ``tl.dot(b_A.to(b_v.dtype), b_v)``). Rounding one factor of every product of Σ_j a_j b_j
  moves it by at most u_op · Σ|a_j b_j| ≤ u_op · M; the sequential baseline only rounds the state
  and q, an error relative to |S| — under cancellation (|S| ≪ Σ|k v|) far below what the
  contract-conforming chunked order commits, so C_BASE·E alone rejected it;
* ulp_out(y) = the spacing of the output format at y: the last rounding to the output dtype, plus
  C_MAG of the format's smallest normals (flush-to-zero of subnormal results or intermediates is no
  error: mlstm_kernels' parallel form flushes an output of 2 smallest normals to 0);
* for the delta families, the floor term is multiplied by κ_ρ(t) ≥ 1, the condition number of the
  triangular UT/WY system a chunked kernel solves (``certifier.ut_conditioning``): forward
  substitution amplifies rounding by it, the sequential recurrence does not;
* for log-space decays, + C_EXP · u · Λ_ρ(t) · M_ρ(t), Λ_ρ(t) = Σ_{s≤t} |log decay_s| (the
  *exponent mass*): chunked kernels form e^{G_i − G_j} from prefix sums G, whose difference carries
  an absolute error u·|G| — a relative error u·Λ on every decayed term. This is the accuracy of a
  correct chunked kernel with very strong gates (FLA's gate-gradient errors near 1e-2 are the
  backward face of it), so the tolerance grants it, and no more.
A kernel passes a property iff max_i |ŷ_i − y_i| / b_i ≤ 1. The normalized error r_i is reported
(percentiles, per-row maxima, versus time), never a global RMS.

Constants (calibrated on every correct implementation in impls/ and fla-core's references, and
against the planted bugs, in fp32/fp16/bf16 — see tests/certifier):
C_BASE = 24 — chunked forms reassociate every sum and read the state through different paths. The
conformance run over all 29 implementations (fp32, ci profile) found the worst correct kernel at
16.5× the sequential error (chunk DeltaProduct with reflections β = 2 and same-sign values);
24 leaves a 1.5× margin, and still rejects a GLA state kept in bf16 (≈ 50× the sequential error).
C_MAG = 4 — the floor only matters when E is ≈ 0; 4·u·√(t+1)·M is a few ulps per accumulated term.
C_OP = 1 — the first-order bound for one rounded factor per product. A float64 model of fla-core's
naive_chunk_linear_attn rounding only P to bf16 (everything else exact) reached 1.13× the budget
without the term (normalized read-out, q large, K = 1: the quotient's cancellation) and 0.04× with
it; the mLSTM forms that keep log-gate prefix sums in bf16 stay rejected (exponent error, not M).
Final states use the same rule with the whole sequence as the row (t + 1 = its length).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

C_BASE = 24.0
C_MAG = 4.0
C_EXP = 4.0
C_OP = 1.0      # dot operands narrower than the accumulator: one rounding of a formed factor, × M
C_GRAD = 64.0   # gradients, normwise per input (no emulated backward to take a baseline from)
# gradients: × the gradient's own sensitivity σ to a one-rounding perturbation of the inputs (the
# backward analogue of the emulated baseline). A correct fp32 mLSTM backward reached 3σ on cases
# where |nᵀq| cancels to 1/600 of Σ|n||q|; 8 leaves margin and is still ≪ a dropped cotangent.
C_SENS = 8.0



def constants() -> dict[str, float]:
    """The rule's constants, as every certificate records them."""
    return {"C_BASE": C_BASE, "C_MAG": C_MAG, "C_EXP": C_EXP, "C_OP": C_OP, "C_GRAD": C_GRAD, "C_SENS": C_SENS}


# unit roundoff u = 2^-p of each compute format (fp16/bf16 kernels accumulate in fp32)
UNIT_ROUNDOFF = {"fp64": 2.0 ** -53, "fp32": 2.0 ** -24, "fp16": 2.0 ** -24, "bf16": 2.0 ** -24}
# spec emulation contract modelling each kernel dtype (inputs/outputs in the dtype, fp32 inside)
CONTRACTS = {"fp64": "fp64", "fp32": "fp32", "fp16": "mixed-fp16", "bf16": "mixed-bf16"}


@functools.lru_cache(maxsize=None)
def operand_roundoff(contract: str) -> float:
    """u of the contract's dot-operand format where it is narrower than the accumulator (the rounding a
    kernel may apply to a formed intermediate before an MMA), else 0."""
    from lrnnspec.spec.contract import PrecisionContract

    c = PrecisionContract.parse(contract)
    return 2.0 ** -c.operand.precision if c.operand.precision < c.accumulate.precision else 0.0


def smallest_normal(fmt: str) -> float:
    """The format's smallest normal magnitude: errors of a few of it are allowed — a kernel that
    flushes subnormal results (or intermediates) to zero, as GPUs do by default, is not wrong for it."""
    from lrnnspec.spec.formats import get_format

    return float(np.ldexp(1.0, get_format(fmt).emin))


def ulp(x: np.ndarray, fmt: str) -> np.ndarray:
    """Spacing of format ``fmt`` at |x| (the distance to the next representable magnitude)."""
    from lrnnspec.spec.formats import get_format

    f = get_format(fmt)
    e = np.floor(np.log2(np.maximum(np.abs(x), np.ldexp(1.0, f.emin))))
    return np.ldexp(1.0, (e - (f.precision - 1)).astype(np.int64))


@dataclass
class Comparison:
    """Normalized errors r = |ŷ − y| / b of one tensor, with the statistics the certificate reports."""

    r: np.ndarray
    worst: float
    worst_index: tuple[int, ...]
    abs_error: float
    percentiles: dict[str, float]
    max_abs_error: float = 0.0         # the largest |ŷ − y| anywhere (not where r is largest)
    expected: float = 0.0              # y at the worst index (the oracle)
    observed: float = 0.0              # ŷ there (the kernel)
    allowed: float = 0.0               # the budget b there

    @property
    def ok(self) -> bool:
        return bool(self.worst <= 1.0)

    def summary(self) -> dict:
        return {"worst_normalized": self.worst, "worst_index": list(self.worst_index),
                "worst_abs_error": self.abs_error, "max_abs_error": self.max_abs_error,
                "expected": self.expected, "observed": self.observed, "allowed": self.allowed,
                "percentiles": self.percentiles}


def _envelope(a: np.ndarray, time_axis: int | None) -> np.ndarray:
    return a if time_axis is None else np.maximum.accumulate(a, axis=time_axis)


def compare(got: np.ndarray, ref: np.ndarray, emulated: np.ndarray, dtype: str, *, time_axis: int | None,
            row_axes: tuple[int, ...] = (), length: int | None = None,
            magnitude: np.ndarray | None = None, exponent_mass: np.ndarray | None = None,
            conditioning: np.ndarray | None = None, contract: str | None = None) -> Comparison:
    """Normalized error of ``got`` against the oracle ``ref``, with the baseline ``emulated``.

    ``time_axis``: the axis along which envelopes accumulate (None for final states, whose
    ``length`` is the sequence length). ``row_axes``: axes reduced inside a row (e.g. the value
    dimension): errors and magnitudes are shared across them. ``contract``: the kernel's precision
    contract (default: the dtype's :data:`CONTRACTS` entry), for its operand term."""
    got, ref, emulated = (np.asarray(a, dtype=np.float64) for a in (got, ref, emulated))
    if got.shape != ref.shape:
        raise ValueError(f"shape {got.shape} != reference {ref.shape}")
    if ref.size == 0:
        return Comparison(np.zeros(ref.shape), 0.0, (), 0.0, {})
    base_err = np.abs(emulated - ref)
    mag = np.maximum(np.abs(ref), np.abs(emulated))
    if magnitude is not None:
        mag = np.maximum(mag, np.abs(magnitude))
    if row_axes:
        base_err = np.max(base_err, axis=row_axes, keepdims=True)
        mag = np.max(mag, axis=row_axes, keepdims=True)
    E, M = _envelope(base_err, time_axis), _envelope(mag, time_axis)
    if time_axis is None:
        steps = np.full(ref.shape, float(max(length or 1, 1)))
    else:
        shape = [1] * ref.ndim
        shape[time_axis] = ref.shape[time_axis]
        steps = np.arange(1, ref.shape[time_axis] + 1, dtype=np.float64).reshape(shape)
    out_fmt = {"fp64": "fp64", "fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}[dtype]
    u = UNIT_ROUNDOFF[dtype]
    floor = (C_MAG * u * np.sqrt(steps) + C_OP * operand_roundoff(contract or CONTRACTS[dtype])) * M
    if conditioning is not None:
        floor = floor * np.broadcast_to(conditioning, ref.shape)
    budget = C_BASE * E + floor + ulp(ref, out_fmt) + C_MAG * smallest_normal(out_fmt)
    if exponent_mass is not None:
        mass = _envelope(np.broadcast_to(exponent_mass, ref.shape), time_axis)
        # no mass, or no magnitude, adds nothing — also when the other factor overflowed (0·∞)
        with np.errstate(invalid="ignore"):
            budget = budget + np.where((mass == 0) | (M == 0), 0.0, C_EXP * u * mass * M)
    err = np.abs(got - ref)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = err / budget
    # where the emulated sequential evaluation overflowed (budget ∞ or NaN), this format cannot judge
    # the element: it is not compared (an overflow of the oracle itself is handled below)
    r = np.where(np.isfinite(budget), r, 0.0)
    r = np.where(np.isnan(got), np.inf, r)
    # an oracle beyond the output format's range overflows in any correct kernel: not compared
    from lrnnspec.spec.formats import get_format

    r = np.where(np.abs(ref) > get_format(out_fmt).largest, 0.0, r)
    idx = np.unravel_index(int(np.argmax(r)), r.shape)
    flat = r.reshape(-1)
    with np.errstate(invalid="ignore"):  # inf entries (NaN outputs) make percentiles inf, as they should
        pct = {f"p{q}": float(np.percentile(flat, q)) for q in (50, 90, 99)} | {"max": float(np.max(flat))}
    return Comparison(r, float(r[idx]), tuple(int(i) for i in idx), float(err[idx]), pct,
                      float(np.nan_to_num(np.max(err), nan=np.inf)), float(ref[idx]), float(got[idx]), float(budget[idx]))
