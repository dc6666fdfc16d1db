"""What an executable theorem check returns, and the registry ``lrnnspec prove`` runs.

A *check* is a function ``(profile: str) -> CheckResult`` registered under a dotted name
(``parity.diagonal``, ``regular.cascade``...). ``profile`` is the Hypothesis profile name
(``dev``, ``ci``, ``certify``): checks bound their word lengths and sample counts by it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

VERDICTS = ("verified", "witnessed", "failed", "open")
# verified  — a construction recognizes the language / the identity holds, on every word checked
# witnessed — an impossibility's finite-precision witness was produced and confirmed
# failed    — the check ran and disagrees with the statement (a bug, or a wrong statement)
# open      — nothing establishes the cell; stated, never counted as a pass


@dataclass
class CheckResult:
    name: str            # dotted registry name
    result: str          # the theorem, e.g. "Parity needs a negative eigenvalue"
    source: str          # paper and theorem number; "[ours]" marks our own corollary
    hypothesis: str      # the checkable predicate, in words
    verdict: str         # one of VERDICTS
    evidence: dict[str, Any] = field(default_factory=dict)  # word lengths, formats, horizons, counts
    seconds: float = 0.0

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def ok(self) -> bool:
        return self.verdict in ("verified", "witnessed")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


CHECKS: dict[str, Callable[[str], CheckResult]] = {}


def check(name: str):
    """Decorator registering a check under ``name`` (unique)."""

    def deco(fn: Callable[[str], CheckResult]):
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return deco


def select(names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registered check names matching any of ``names`` by dotted prefix (``parity`` matches
    ``parity.diagonal``; ``parity.diag`` does not). No names → every check. An unknown name raises
    :class:`KeyError` listing the known ones."""
    known = sorted(CHECKS)
    if not names:
        return known
    chosen, unknown = [], []
    for n in names:
        hits = [c for c in known if c == n or c.startswith(n + ".")]
        if not hits:
            unknown.append(n)
        chosen.extend(h for h in hits if h not in chosen)
    if unknown:
        raise KeyError(f"unknown check name(s) {unknown}; known: {', '.join(known)}")
    return chosen


def run(name: str, profile: str) -> CheckResult:
    """Run one registered check, timing it; an exception becomes a ``failed`` result naming it."""
    import time
    import traceback

    start = time.perf_counter()
    try:
        res = CHECKS[name](profile)
    except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, reported
        return CheckResult(name, "(check raised)", "", "", "failed",
                           {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
                           time.perf_counter() - start)
    res.seconds = time.perf_counter() - start
    return res
