"""Hypothesis drives one property of one kernel in one dtype to a :class:`~.verdicts.Verdict`.

Cases come from the domain's strategies for the property (:meth:`phases`, each run with a seed of its
own: for a sequence family the free draws, one case at every chunk-boundary length, one case at every
long length), are rounded to the dtype, and go through
the property function; a :class:`~.verdicts.PropertyFailure` is a counterexample that Hypothesis
shrinks to a minimal one. Three things stop a run early, without shrinking further:

* the kernel's process had to be restarted more than ``max_restarts`` times (it hangs, dies or
  loses its device): the smallest failing case so far is the counterexample, so a hang costs at
  most ``(max_restarts + 1) × timeout`` per property;
* an exception in the harness's own code (a reference that cannot be computed, a bug of ours):
  verdict ``error`` with the traceback and the case — never a pass, never blamed on the kernel;
* Hypothesis cannot draw cases (a filter rejects everything): ``error``.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, HypothesisException

from lrnnspec.spec.errors import SpecError

from .examples import ExampleStore
from .kernel import TORCH_DTYPES, Kernel, KernelFailure
from .properties import applicability, property_function
from .verdicts import ERROR, FAIL, PASS, PropertyFailure, Verdict

MAX_RESTARTS = 3
SINGLE_SHOT = ("scope",)


class _Stop(BaseException):
    """Ends a Hypothesis run at once (Hypothesis shrinks Exceptions, not BaseExceptions)."""


def _largest(result, key: str) -> float | None:
    """The largest ``key`` in a property's result and the summaries nested in it."""
    if not isinstance(result, dict):
        return None
    vals = [result[key]] if key in result else []
    vals += [v for v in (_largest(v, key) for v in result.values() if isinstance(v, dict)) if v is not None]
    return max(vals) if vals else None


def _counterexample(case, failure: PropertyFailure | None, message: str) -> dict:
    return {"case": case.to_json(), "description": case.describe(),
            "detail": {} if failure is None else failure.detail, "message": message}


def _single_shot(fn, k: Kernel, prop: str, dtype: str, start: float) -> Verdict:
    """A property judged once, on no drawn case (the scope)."""
    try:
        fn(k, None, dtype)
    except PropertyFailure as failure:
        return Verdict(prop, dtype, FAIL, str(failure), 1, time.perf_counter() - start,
                       counterexample={"case": None, "description": "the negotiated scope", "detail": failure.detail,
                                       "message": str(failure)})
    except Exception as exc:  # noqa: BLE001
        return Verdict(prop, dtype, ERROR, f"the harness failed: {type(exc).__name__}: {exc}", 1,
                       time.perf_counter() - start, traceback=traceback.format_exc())
    return Verdict(prop, dtype, PASS, "", 1, time.perf_counter() - start)


def _replay_stored(k: Kernel, fn, prop: str, dtype: str, examples: ExampleStore, start: float) -> Verdict | None:
    """The stored counterexamples of this (kernel, property, dtype), tried first: the first that still
    fails is the verdict; those that pass now leave the store."""
    for stored in examples.fetch(k.family, k.target, prop, dtype):
        examples.replayed += 1
        try:
            case = k.domain.case_from_json(stored).rounded(TORCH_DTYPES[dtype])
        except Exception:  # noqa: BLE001 - a stale record (an older case format): dropped
            examples.drop(k.family, k.target, prop, dtype, stored)
            continue
        try:
            fn(k, case, dtype)
        except PropertyFailure as failure:
            msg = f"{failure} (a stored counterexample, replayed from the example database)"
            return Verdict(prop, dtype, FAIL, msg, 1, time.perf_counter() - start,
                           counterexample=_counterexample(case, failure, msg))
        examples.drop(k.family, k.target, prop, dtype, stored)
    return None


def run_property(k: Kernel, prop: str, dtype: str, *, max_examples: int, seed: int,
                 progress: Callable[[str], None] | None = None, max_restarts: int = MAX_RESTARTS,
                 examples: ExampleStore | None = None) -> Verdict:
    """The verdict of ``prop`` for kernel ``k`` in ``dtype`` (see the module docstring); with
    ``examples``, the stored counterexamples are tried first and a new one is stored."""
    if prop not in k.domain.properties:
        raise SpecError("prop", f"unknown property {prop!r} for {k.domain.kind} families; known: "
                                f"{', '.join(k.domain.properties)}")
    if dtype not in TORCH_DTYPES:
        raise SpecError("dtype", f"must be one of {', '.join(TORCH_DTYPES)}, got {dtype!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise SpecError("max_examples", f"must be a positive integer, got {max_examples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError("seed", f"must be an integer, got {seed!r}")
    start = time.perf_counter()
    try:
        if not k.domain.negotiated:
            k.domain.negotiate()
        outside = applicability(k, prop, dtype)
    except Exception as exc:  # noqa: BLE001 - the harness failed to decide: an error, not a pass
        return Verdict(prop, dtype, ERROR, f"the harness failed deciding applicability: {type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc())
    if outside is not None:
        return Verdict(prop, dtype, *outside)
    fn = property_function(k, prop)
    if prop in SINGLE_SHOT:
        return _single_shot(fn, k, prop, dtype, start)
    if examples is not None:
        stored = _replay_stored(k, fn, prop, dtype, examples, start)
        if stored is not None:
            return stored
    verdict = _explore(k, fn, prop, dtype, max_examples, seed, progress, max_restarts, start)
    if examples is not None and verdict.status == FAIL and verdict.counterexample:
        examples.save(k.family, k.target, prop, dtype, verdict.counterexample["case"])
    return verdict


def _explore(k: Kernel, fn, prop: str, dtype: str, max_examples: int, seed: int, progress, max_restarts: int,
             start: float) -> Verdict:
    """Hypothesis draws, runs and shrinks (see the module docstring)."""
    failures: list[tuple[Any, PropertyFailure]] = []
    harness: list[tuple[Any, str, str]] = []
    worst: dict[str, Any] = {}
    coverage: dict[str, int] = {}
    count = [0]
    restarts_before = k.restarts

    def one(case):
        count[0] += 1
        try:
            rounded = case.rounded(TORCH_DTYPES[dtype])
            result = fn(k, rounded, dtype)
        except PropertyFailure as failure:
            failures.append((rounded, failure))
            if isinstance(failure, KernelFailure) and failure.fatal and k.restarts - restarts_before > max_restarts:
                raise _Stop() from None
            raise AssertionError(str(failure)) from None
        except Exception as exc:  # noqa: BLE001 - lrnnspec's own code failed on this case
            harness.append((locals().get("rounded", case), f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            raise _Stop() from None
        key = getattr(rounded, "layout", None)
        if key is not None:
            key += f":{rounded.direction}" if rounded.direction else ""
            coverage[key] = coverage.get(key, 0) + 1
        w = _largest(result, "worst_normalized")
        if w is not None and w >= worst.get("worst_normalized", -1.0):
            worst.update(worst_normalized=w, case=rounded.to_json())
        a = _largest(result, "max_abs_error")
        if a is not None:
            worst["max_abs_error"] = max(a, worst.get("max_abs_error", 0.0))

    def verdict(status, reason="", counterexample=None, trace=""):
        extra = {"coverage": coverage} if coverage else {}
        return Verdict(prop, dtype, status, reason, count[0], time.perf_counter() - start, worst | extra,
                       counterexample, trace)

    def runs():
        for phase, (strategy, examples) in enumerate(k.domain.phases(prop, max_examples)):
            test = settings(max_examples=examples, derandomize=False, database=None, deadline=None,
                            suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                            print_blob=False, report_multiple_bugs=False)(given(strategy)(one))
            hypothesis_seed(f"{seed}/{phase}")(test)()       # phases of one length each draw different cases

    try:
        try:
            runs()
        finally:
            if progress:
                progress(f"{prop} [{dtype}]: {count[0]} examples")
    except _Stop:
        pass
    except AssertionError:
        pass
    except Flaky as exc:
        if not failures:
            return verdict(ERROR, f"Hypothesis reported a flaky test without a failure: {exc}".splitlines()[0],
                           trace=traceback.format_exc())
        case, failure = failures[-1]
        msg = f"{failure} (and the failure did not reproduce: the kernel is nondeterministic)"
        return verdict(FAIL, msg, _counterexample(case, failure, msg))
    except HypothesisException as exc:
        return verdict(ERROR, f"the harness could not draw cases: {type(exc).__name__}: {exc}".splitlines()[0],
                       trace=traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - outside the property function: the harness's own failure
        return verdict(ERROR, f"the harness failed: {type(exc).__name__}: {exc}".splitlines()[0],
                       trace=traceback.format_exc())
    if harness:
        case, message, trace = harness[-1]
        msg = f"the harness failed on a case (not the kernel's fault): {message}".splitlines()[0]
        return verdict(ERROR, msg, _counterexample(case, None, msg), trace)
    if failures:
        case, failure = failures[-1]
        msg = str(failure)
        if isinstance(failure, KernelFailure) and failure.fatal and k.restarts - restarts_before > max_restarts:
            msg += f" (not shrunk further: the kernel process was restarted {k.restarts - restarts_before} times)"
        return verdict(FAIL, msg, _counterexample(case, failure, msg))
    return verdict(PASS)
