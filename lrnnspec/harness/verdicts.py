"""Verdicts: what one property concluded about one kernel in one dtype.

``pass``            every drawn case satisfied the property;
``fail``            the kernel broke it; ``counterexample`` holds the shrunk case and the discrepancy;
``not_applicable``  the property does not apply to this family or signature (``reason`` says why);
``unsupported``     the property needs a feature the kernel refuses (reserved for scope negotiation);
``error``           the harness itself failed (an exception in lrnnspec's code, a reference that
                    could not be computed): never a pass, never the kernel's fault; ``traceback``
                    holds where.

A certificate is granted iff no verdict is ``fail`` or ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrnnspec.errors import Picklable

PASS, FAIL, NOT_APPLICABLE, UNSUPPORTED, ERROR = "pass", "fail", "not_applicable", "unsupported", "error"
STATUSES = (PASS, FAIL, NOT_APPLICABLE, UNSUPPORTED, ERROR)
BLOCKING = (FAIL, ERROR)


class PropertyFailure(Picklable, Exception):
    """The kernel broke a property: the message says how, ``detail`` holds the numbers."""

    def __init__(self, message: str, detail: dict | None = None):
        super().__init__(message)
        self.detail = detail or {}


@dataclass
class Verdict:
    property: str
    dtype: str
    status: str
    reason: str = ""
    examples: int = 0
    seconds: float = 0.0
    worst: dict = field(default_factory=dict)      # worst normalized error seen on passing examples
    counterexample: dict | None = None             # the shrunk failing case (JSON) and the discrepancy
    traceback: str = ""                            # status "error": where the harness failed

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
