"""Hypothesis drives one property of one kernel in one dtype to a :class:`~.verdicts.Verdict`.

Cases come from the domain's strategy for the property, are rounded to the dtype, and go through
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

from .kernel import TORCH_DTYPES, Kernel, KernelFailure
from .properties import applicability, property_function
from .verdicts import ERROR, FAIL, NOT_APPLICABLE, PASS, PropertyFailure, Verdict

MAX_RESTARTS = 3


class _Stop(BaseException):
    """Ends a Hypothesis run at once (Hypothesis shrinks Exceptions, not BaseExceptions)."""


def _worst_of(result) -> float | None:
    if not isinstance(result, dict):
        return None
    vals = [result["worst_normalized"]] if "worst_normalized" in result else []
    vals += [v["worst_normalized"] for v in result.values() if isinstance(v, dict) and "worst_normalized" in v]
    return max(vals) if vals else None


def _counterexample(case, failure: PropertyFailure | None, message: str) -> dict:
    return {"case": case.to_json(), "description": case.describe(),
            "detail": {} if failure is None else failure.detail, "message": message}


def run_property(k: Kernel, prop: str, dtype: str, *, max_examples: int, seed: int,
                 progress: Callable[[str], None] | None = None, max_restarts: int = MAX_RESTARTS) -> Verdict:
    """The verdict of ``prop`` for kernel ``k`` in ``dtype`` (see the module docstring)."""
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
        why = applicability(k, prop)
    except Exception as exc:  # noqa: BLE001 - the harness failed to decide: an error, not a pass
        return Verdict(prop, dtype, ERROR, f"the harness failed deciding applicability: {type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc())
    if why is not None:
        return Verdict(prop, dtype, NOT_APPLICABLE, why)
    fn = property_function(k, prop)
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
        w = _worst_of(result)
        if w is not None and w >= worst.get("worst_normalized", -1.0):
            worst.update(worst_normalized=w, case=rounded.to_json())

    def verdict(status, reason="", counterexample=None, trace=""):
        extra = {"coverage": coverage} if coverage else {}
        return Verdict(prop, dtype, status, reason, count[0], time.perf_counter() - start, worst | extra,
                       counterexample, trace)

    test = settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                    print_blob=False, report_multiple_bugs=False)(given(k.domain.strategy(prop))(one))
    test = hypothesis_seed(seed)(test)
    try:
        try:
            test()
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
